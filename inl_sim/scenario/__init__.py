"""Wing 1, scenario: the boundary. YAML/dict -> validated frozen dataclasses.

Lives here: the schema (``spec``: one frozen dataclass per section, with the defaults of
``shared/METHOD.md``; the paradigms' sections in ``paradigms``; the ``experts``
section in ``experts``; and the names of the registries right of this wing), field-by-field
conversion and validation (``convert``), value ranges, size caps and generator parameters
(``limits``), the resource estimate checked before anything is built (``budget``), YAML
read within limits on size, depth, aliases and integers (``yamlsafe``), the shipped
scenarios and topologies as package data (``library``), and loading, ``--set`` overrides
and the resolved-dict round trip (``load``); the ``faults:`` section, its
dataclasses and checks (``faults``).
May import: ``inl_sim.errors`` only (no torch, no networkx: errors come fast).
Add a scenario option: a field in ``spec`` with its default, a check in ``convert``.
"""

from inl_sim.scenario.spec import (DISTRIBUTIONS, FUSION_RULES, GENERATORS, SENSOR_RULES, CompareSpec, DataSpec,
                                   Distribution, GateSpec, LimitsSpec, MessageSpec, MethodSpec, ModelSpec, NodeId,
                                   RoutingSpec, Scenario, SensorSpec, SimulationSpec, TopologySpec,
                                   TrainingSpec)
from inl_sim.scenario.load import apply_overrides, load_scenario, parse_override, scenario_to_dict, with_overrides

__all__ = [
    "Distribution", "SensorSpec", "TopologySpec", "DataSpec", "ModelSpec", "RoutingSpec",
    "GateSpec", "MessageSpec", "TrainingSpec", "SimulationSpec", "MethodSpec", "CompareSpec", "LimitsSpec",
    "Scenario",
    "load_scenario", "scenario_to_dict", "apply_overrides", "parse_override", "with_overrides",
    "NodeId", "FUSION_RULES", "SENSOR_RULES", "GENERATORS", "DISTRIBUTIONS",
]

"""Tests of inl_sim.scenario (and of input errors found when a run is prepared).

A table of invalid scenarios, overrides and files: each must raise the right
:class:`InlSimError` subclass, and its message must name the field (dotted path, node or
file) so that a user knows what to fix.  Then valid inputs: documented defaults (from
``shared/METHOD.md``), overrides, YAML's ``1e6`` strings, and round trips.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from inl_sim.errors import DataError, InlSimError, RoutingError, ScenarioError, TopologyError
from inl_sim.scenario import (
    Distribution, SensorSpec, apply_overrides, load_scenario, parse_override, scenario_to_dict,
    with_overrides,
)

from conftest import MESH9, explicit_topology, tiny_scenario

LINK = {"capacity_bps": 1.0e7, "latency_s": 1.0e-3}
PATH3 = [[0, 1, LINK], [1, 2, LINK]]


def edit(**dotted: object) -> Callable[[dict], None]:
    """An edit of the raw scenario: dotted keys with '__' for '.'; the value DELETE removes."""
    def apply(raw: dict) -> None:
        for key, value in dotted.items():
            *parents, last = key.split("__")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
    return apply


def topo(**kwargs: Any) -> Callable[[dict], None]:
    def apply(raw: dict) -> None:
        raw["topology"] = kwargs
    return apply


def explicit(edges: list, **kwargs: Any) -> Callable[[dict], None]:
    def apply(raw: dict) -> None:
        raw["topology"] = explicit_topology(edges, **kwargs)
    return apply


# (id, edit of the tiny scenario, overrides, stage, error class, substrings the message must hold)
# stage "load": load_scenario raises; "prepare": load or prepare(load_scenario(...), 0) raises.
CASES: list[tuple] = [
    ("unknown-top-key", edit(epochs=3), None, "load", ScenarioError, ["epochs", "unknown key", "training"]),
    ("unknown-nested-key", edit(training__epoch=3), None, "load", ScenarioError, ["training.epoch", "epochs"]),
    ("unknown-topology-key", edit(topology__radius=0.3), None, "load", ScenarioError, ["topology.radius"]),
    ("string-epochs", edit(training__epochs="ten"), None, "load", ScenarioError, ["training.epochs", "'ten'"]),
    ("bool-epochs", edit(training__epochs=True), None, "load", ScenarioError, ["training.epochs"]),
    ("fractional-epochs", edit(training__epochs=2.5), None, "load", ScenarioError, ["training.epochs", "2.5"]),
    ("zero-epochs", edit(training__epochs=0), None, "load", ScenarioError, ["training.epochs", ">= 1"]),
    ("zero-batch", edit(training__batch_size=0), None, "load", ScenarioError, ["training.batch_size"]),
    ("list-beta", edit(gate__beta=[1, 2]), None, "load", ScenarioError, ["gate.beta"]),
    ("negative-beta", edit(gate__beta=-0.1), None, "load", ScenarioError, ["gate.beta", ">= 0"]),
    ("zero-lr", edit(training__lr=0), None, "load", ScenarioError, ["training.lr", "> 0"]),
    ("negative-lr", edit(training__lr=-1e-3), None, "load", ScenarioError, ["training.lr"]),
    ("nan-lr", edit(training__lr="nan"), None, "load", ScenarioError, ["training.lr", "finite"]),
    ("unknown-mode", edit(routing__mode="tree"), None, "load", ScenarioError, ["routing.mode", "'tree'", "spt"]),
    ("unknown-ties", edit(routing__dense_ties="maybe"), None, "load", ScenarioError, ["routing.dense_ties"]),
    ("unknown-optimizer", edit(training__optimizer="lbfgs"), None, "load", ScenarioError, ["training.optimizer"]),
    ("unknown-aggregation", edit(model__aggregation="max"), None, "load", ScenarioError, ["model.aggregation"]),
    ("unknown-data-kind", edit(data__kind="mnist"), None, "load", ScenarioError, ["data.kind", "digits"]),
    ("groups-over-classes", edit(data__groups_per_view=9), None, "load", ScenarioError,
     ["data.groups_per_view", "n_classes"]),
    ("one-class", edit(data__n_classes=1, data__groups_per_view=1), None, "load", ScenarioError, ["data.n_classes"]),
    ("bits-out-of-range", edit(message__bits=1), None, "load", ScenarioError, ["message.bits"]),
    ("zero-temperature", edit(gate__temperature=0), None, "load", ScenarioError, ["gate.temperature"]),
    ("negative-seed", edit(seed=-1), None, "load", ScenarioError, ["seed"]),
    ("section-not-mapping", edit(training=5), None, "load", ScenarioError, ["training", "mapping"]),
    ("zero-capacity", edit(topology__capacity_bps=0), None, "load", ScenarioError, ["topology.capacity_bps", "> 0"]),
    ("negative-capacity", edit(topology__capacity_bps=-5.0e6), None, "load", ScenarioError,
     ["topology.capacity_bps"]),
    ("negative-latency", edit(topology__latency_s=-1.0e-3), None, "load", ScenarioError, ["topology.latency_s"]),
    ("unknown-distribution", edit(topology__capacity_bps={"normal": [1.0e6, 2.0e6]}), None, "load", ScenarioError,
     ["topology.capacity_bps", "uniform"]),
    ("swapped-uniform", edit(topology__capacity_bps={"uniform": [5.0e6, 1.0e6]}), None, "load", ScenarioError,
     ["topology.capacity_bps.uniform", "low <= high"]),
    ("empty-choice", edit(topology__latency_s={"choice": []}), None, "load", ScenarioError,
     ["topology.latency_s.choice"]),
    ("two-topology-sources", edit(topology__generator="star"), None, "load", ScenarioError,
     ["topology", "generator", "file", "exactly one"]),
    ("no-topology-source", topo(), None, "load", ScenarioError, ["topology", "exactly one source"]),
    ("empty-graph", topo(nodes=[0, 1], edges=[]), None, "load", ScenarioError, ["topology"]),
    ("unknown-generator", topo(generator="scale_free"), None, "load", ScenarioError, ["topology.generator"]),
    ("empty-sensor-list", edit(topology__sensors=[]), None, "load", ScenarioError, ["topology.sensors"]),
    ("k-random-without-k", edit(topology__sensors={"rule": "k_random"}), None, "load", ScenarioError,
     ["topology.sensors.k"]),
    ("float-fusion", edit(topology__fusion=1.5), None, "load", ScenarioError, ["topology.fusion"]),
    ("duplicate-methods", edit(compare__methods=[{"name": "a", "set": {}}, {"name": "a", "set": {}}]), None,
     "load", ScenarioError, ["compare.methods", "duplicate"]),
    ("nameless-method", edit(compare__methods=[{"set": {"routing.mode": "dense"}}]), None, "load", ScenarioError,
     ["compare.methods[0]"]),
    ("unknown-reference", edit(compare__reference="sparse"), None, "load", ScenarioError,
     ["compare.reference", "'sparse'", "dense"]),
    ("unknown-rate-reference", edit(compare__rate_reference="x"), None, "load", ScenarioError,
     ["compare.rate_reference"]),
    # overrides
    ("override-typo", None, {"gate.bta": 1e-3}, "load", ScenarioError, ["gate.bta", "beta"]),
    ("override-unknown-section", None, {"gates.beta": 1e-3}, "load", ScenarioError, ["gates.beta"]),
    ("override-bad-value", None, {"training.epochs": "many"}, "load", ScenarioError, ["training.epochs"]),
    ("override-bad-method-set", None, {"compare.methods": [{"name": "x", "set": 3}]}, "load", ScenarioError,
     ["compare.methods[0].set"]),
    # found when the run is prepared
    ("missing-fusion-id", explicit(PATH3, fusion=99), None, "prepare", TopologyError, ["topology.fusion", "99"]),
    ("disconnected-sensor", explicit([[0, 1, LINK], [2, 3, LINK]], sensors=[1, 3]), None, "prepare",
     TopologyError, ["node 3", "fusion node 0"]),
    ("link-negative-capacity", explicit([[0, 1, {"capacity_bps": -1.0, "latency_s": 0.0}]]), None, "prepare",
     TopologyError, ["topology.edges[0].capacity_bps", "-1"]),
    ("link-zero-capacity", explicit([[0, 1, LINK], [1, 2, {"capacity_bps": 0, "latency_s": 0.0}]]), None,
     "prepare", TopologyError, ["topology.edges[1].capacity_bps"]),
    ("link-unknown-key", explicit([[0, 1, {"capacity": 1.0e6}]]), None, "prepare", TopologyError,
     ["topology.edges[0]", "capacity"]),
    ("self-loop", explicit([[0, 1, LINK], [1, 1, LINK]]), None, "prepare", TopologyError, ["topology.edges[1]"]),
    ("duplicate-link", explicit([[0, 1, LINK], [1, 0, LINK]]), None, "prepare", TopologyError,
     ["topology.edges[1]", "twice"]),
    ("link-to-unlisted-node", explicit([[0, 1, LINK], [1, 7, LINK]], nodes=[0, 1]), None, "prepare",
     TopologyError, ["topology.edges[1]", "7"]),
    ("sensor-is-fusion", explicit(PATH3, sensors=[0, 2]), None, "prepare", TopologyError,
     ["topology.sensors", "node 0", "fusion"]),
    ("sensor-not-a-node", explicit(PATH3, sensors=[42]), None, "prepare", TopologyError, ["topology.sensors", "42"]),
    ("single-node-generator", topo(generator="star", n_nodes=1), None, "prepare", TopologyError,
     ["topology.n_nodes"]),
    ("unknown-generator-param", topo(generator="random_geometric", params={"radios": 0.3}), None, "prepare",
     TopologyError, ["topology.params.radios", "radius"]),
    ("topology-file-not-found", topo(file="no_such_topology.yaml"), None, "prepare", TopologyError,
     ["topology.file", "no_such_topology.yaml"]),
    ("unknown-gate", edit(gate__kind="laplace"), None, "prepare", ScenarioError, ["gate.kind", "'laplace'", "gumbel"]),
    ("unknown-encoding", edit(message__encoding="bf16"), None, "prepare", ScenarioError,
     ["message.encoding", "'bf16'", "float16"]),
    pytest.param("unknown-grad-encoding", edit(message__grad_encoding="bf16"), None, "prepare", ScenarioError,
                 ["message.grad_encoding", "'bf16'"]),
    ("unknown-cost", edit(routing__cost="fastest"), None, "prepare", RoutingError, ["routing.cost", "'fastest'"]),
    ("too-many-digits", edit(data__kind="digits", data__n_train=1500, data__n_test=400), None, "prepare",
     DataError, ["data.n_train", "data.n_test", "1797"]),
    pytest.param("node-beta-not-a-number", edit(gate__kind="gaussian", gate__node_beta={1: "lots"}), None,
                 "prepare", ScenarioError, ["gate.node_beta"]),
    pytest.param("node-beta-negative", edit(gate__kind="gaussian", gate__node_beta={1: -0.5}), None,
                 "prepare", ScenarioError, ["gate.node_beta"]),
    pytest.param("seed-too-large", edit(seed=2 ** 64), None, "prepare", ScenarioError, ["seed"]),
]


def _case_id(case: Any) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize("name,change,overrides,stage,error,names", CASES, ids=[_case_id(c) for c in CASES])
def test_invalid_scenario_names_the_field(name: str, change: Callable | None, overrides: dict | None,
                                          stage: str, error: type, names: list[str]) -> None:
    raw = tiny_scenario()
    if change is not None:
        change(raw)
    before = copy.deepcopy(raw)
    with pytest.raises(InlSimError) as info:
        sc = load_scenario(raw, overrides)
        assert stage == "prepare", f"{name}: load_scenario accepted it"
        from inl_sim.study.experiment import prepare
        prepare(sc, sc.seed)
    assert isinstance(info.value, error), f"{name}: {type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for part in names:
        assert part in message, f"{name}: {part!r} not in {message!r}"
    assert "\n" not in message, "an error message is one line"
    assert raw == before, "loading must not modify the caller's dict"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 25


# --------------------------------------------------------------------------- files and --set

def test_malformed_set_names_the_option() -> None:
    for text in ("gate.beta", "=1", " =1"):
        with pytest.raises(ScenarioError, match="--set") as info:
            parse_override(text)
        assert "dotted.key=value" in str(info.value)


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- name: a\n- name: b\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "mapping" in str(info.value)


def test_missing_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_invalid_yaml_syntax_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("training: {epochs: 3\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_errors_in_a_file_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny_scenario(training={"lr": 0})))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "training.lr" in str(info.value)



def test_binary_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00name: x\n")
    with pytest.raises(ScenarioError, match="binary.yaml"):
        load_scenario(path)



def test_binary_topology_file_is_a_topology_error(tmp_path: Path) -> None:
    path = tmp_path / "binary_topo.yaml"
    path.write_bytes(b"\xff\xfe\x00edges: []\n")
    sc = load_scenario(tiny_scenario({"file": str(path)}))
    from inl_sim.study.experiment import prepare
    with pytest.raises(TopologyError, match="binary_topo.yaml"):
        prepare(sc, 0)


def test_empty_topology_file(tmp_path: Path) -> None:
    path = tmp_path / "empty_topo.yaml"
    path.write_text("name: empty\nedges: []\n")
    sc = load_scenario(tiny_scenario({"file": str(path)}))
    from inl_sim.study.experiment import prepare
    with pytest.raises(TopologyError) as info:
        prepare(sc, 0)
    assert str(path) in str(info.value) and "edges" in str(info.value)


# --------------------------------------------------------------------------- valid input

def test_documented_defaults() -> None:
    """The modelling defaults METHOD.md gives."""
    sc = load_scenario({"topology": {"file": str(MESH9)}})
    assert (sc.routing.mode, sc.routing.cost, sc.routing.dense_ties) == ("spt", "payload_over_capacity", "keep")
    assert (sc.gate.kind, sc.gate.beta) == ("none", 0.0)
    assert (sc.message.encoding, sc.message.grad_encoding) == ("float32", "float32")
    assert sc.model.aggregation == "concat"
    assert [m.name for m in sc.compare.methods] == ["dense", "spt"]


def test_override_values_are_parsed_as_yaml_and_numbers_coerced() -> None:
    key, value = parse_override("gate.beta=1e-3")
    assert key == "gate.beta"
    sc = load_scenario(tiny_scenario(), dict([(key, value), parse_override("training.lr=2.5e-3"),
                                              parse_override("routing.mode=dense"),
                                              parse_override("topology.capacity_bps=1e6"),
                                              parse_override("training.epochs=3")]))
    assert isinstance(sc.gate.beta, float) and sc.gate.beta == 0.001
    assert sc.training.lr == 0.0025 and sc.routing.mode == "dense" and sc.training.epochs == 3
    assert sc.topology.capacity_bps == Distribution("constant", (1.0e6,))
    assert parse_override("name=a=b") == ("name", "a=b")
    assert parse_override("gate.node_beta={3: 0.5}") == ("gate.node_beta", {3: 0.5})


def test_yaml_1e6_strings_are_accepted_for_floats(tmp_path: Path) -> None:
    path = tmp_path / "strings.yaml"
    path.write_text(f"topology:\n  file: {MESH9}\n  capacity_bps: 1e6\n  latency_s: {{uniform: [1e-4, 2e-3]}}\n"
                    "training:\n  lr: 1e-3\ngate:\n  beta: 5e-4\n")
    assert isinstance(yaml.safe_load(path.read_text())["training"]["lr"], str), "PyYAML premise"
    sc = load_scenario(path)
    assert sc.training.lr == 1e-3 and sc.gate.beta == 5e-4
    assert sc.topology.capacity_bps == Distribution("constant", (1.0e6,))
    assert sc.topology.latency_s == Distribution("uniform", (1.0e-4, 2.0e-3))


def test_overrides_below_free_form_mappings_and_file_precedence(tmp_path: Path) -> None:
    raw = tiny_scenario({"generator": "random_geometric", "n_nodes": 10})
    sc = load_scenario(raw, {"topology.params.radius": 0.5, "gate.node_beta.3": 0.25})
    assert sc.topology.params == {"radius": 0.5} and sc.gate.node_beta == {"3": 0.25}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_scenario(training={"epochs": 4})))
    assert load_scenario(path, {"training.epochs": 2}).training.epochs == 2


def test_apply_overrides_does_not_touch_its_input() -> None:
    raw = tiny_scenario()
    before = copy.deepcopy(raw)
    out = apply_overrides(raw, {"training.epochs": 7, "topology.params.k": 2})
    assert raw == before and out["training"]["epochs"] == 7


def test_scenario_is_frozen_and_round_trips() -> None:
    raw = tiny_scenario(explicit_topology(PATH3, nodes=[0, 1, {"id": 2, "flops_per_s": 2.0e9}], sensors=[2]),
                        topology__capacity_bps={"loguniform": [1.0e6, 1.0e8]},
                        compare__reference="spt")
    sc = load_scenario(raw)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.seed = 3  # type: ignore[misc]
    plain = scenario_to_dict(sc)
    assert load_scenario(plain) == sc
    assert load_scenario(yaml.safe_load(yaml.safe_dump(plain))) == sc
    assert load_scenario(sc) == sc
    assert with_overrides(sc, {"seed": 4}) == dataclasses.replace(sc, seed=4)
    assert with_overrides(sc, {}) is sc


@pytest.mark.parametrize("sensors,expected", [
    ("all", SensorSpec("all")), ([1, 2], SensorSpec("ids", (1, 2))), ("leaves", SensorSpec("leaves")),
    ({"rule": "k_random", "k": 2}, SensorSpec("k_random", (), 2)), ({"rule": "farthest", "k": 1},
                                                                     SensorSpec("farthest", (), 1)),
])
def test_sensor_forms(sensors: object, expected: SensorSpec) -> None:
    sc = load_scenario(tiny_scenario(topology__sensors=sensors))
    assert sc.topology.sensors == expected
    assert load_scenario(scenario_to_dict(sc)).topology.sensors == expected

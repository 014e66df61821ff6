"""Scenario conversion: raw YAML values -> validated, frozen dataclasses (schema in ``spec``).

This is the boundary of the package.  Raw YAML is normalised, validated and turned into
frozen dataclasses once, here; nothing downstream reads raw YAML.  Every option that the
D-INL paper leaves open is a field with the default given in ``shared/METHOD.md``, and a
run writes the fully resolved scenario next to its results, so a results folder always
says which modelling choices produced it.

Errors name the file, the dotted field path, the value, the rule and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from typing import Any, Callable, Collection, Mapping, Union

from inl_sim.errors import RoutingError, ScenarioError, short
from inl_sim.scenario.budget import check_budget
from inl_sim.scenario.faults import FaultsSpec, check_faults_engine, to_faults
from inl_sim.scenario.experts import EXPERTS_CONVERTERS, ExpertsSpec, validate_experts
from inl_sim.scenario.limits import (MAX_ID_CHARS, MAX_INT, MAX_SIZE, check_generator_params, clip, in_range,
                                     spec_error, valid_node_id)
from inl_sim.scenario.rules import CHOICES, RULES
from inl_sim.scenario.spec import (DISTRIBUTIONS, EDGE_COSTS, RATE_CHOICES, SENSOR_RULES, CompareSpec, DataSpec,
                                   Distribution, GateSpec, MethodSpec, NodeId, RoutingSpec, Scenario, SensorSpec,
                                   TopologySpec)

__all__ = ["build_spec", "validate_spec", "spec_error", "short", "clip"]

# --------------------------------------------------------------------------- conversion

_RULES, _CHOICES = RULES, CHOICES


# Registries right of this wing, by field: a gate or codec registered at run time (a
# plugin: ``GATES["mine"] = MyGate``) is honoured once its module is imported; the name
# tuples of ``spec`` serve the check that runs before torch is imported.
_LIVE_REGISTRIES = {"gate.kind": ("inl_sim.learning.gating", "GATES"),
                    "message.encoding": ("inl_sim.learning.coding", "CODECS"),
                    "message.grad_encoding": ("inl_sim.learning.coding", "CODECS")}


def _registered(where: str) -> Collection:
    module, name = _LIVE_REGISTRIES.get(where, ("", ""))
    return getattr(sys.modules.get(module), name, ())


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_float(value: object, path: str) -> float:
    """Accept ints, floats and numeric strings: PyYAML reads ``1e6`` as a string."""
    if isinstance(value, str):
        try:
            value = float(value) if len(value) <= 64 else math.nan
        except ValueError:
            raise spec_error(path, value, "is not a number", "write a number such as 1.0e6") from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise spec_error(path, value, "is too large", "write a number below 9.2e18")
    if not _is_number(value) or not math.isfinite(value):
        raise spec_error(path, value, "must be a finite number", "write a number such as 0.5")
    return float(value)


def _to_int(value: object, path: str) -> int:
    """Integers only: ``1.5`` is not silently cut to 1, and ``2.0`` is refused as well, so
    the rule is simple; sizes are bounded by :data:`MAX_INT` (then by each field's rule)."""
    if isinstance(value, float):
        raise spec_error(path, value, "must be an integer, not a float", "write a whole number such as 5 (no point)")
    if not isinstance(value, int) or isinstance(value, bool):
        raise spec_error(path, value, "must be an integer", "write a whole number such as 5")
    if abs(value) > MAX_INT:
        raise spec_error(path, value, "is too large (|value| must be <= 2**63 - 1)", "write a smaller number")
    return value


def _to_distribution(value: object, path: str) -> Distribution:
    if isinstance(value, Distribution):
        return value
    if not isinstance(value, Mapping):
        number = _to_float(value, path)
        if number <= 0 and not path.endswith("latency_s"):
            raise spec_error(path, value, "must be > 0", "give a positive value")
        if number < 0:
            raise spec_error(path, value, "must be >= 0", "give a non-negative value")
        return Distribution("constant", (in_range(number, path, value),))
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS[1:]:
        raise spec_error(path, dict(value), "must be a number or one of {uniform|loguniform|choice: [...]}",
                    "write e.g. {uniform: [1.0e6, 1.0e7]}")
    kind, params = next(iter(value.items()))
    if not isinstance(params, (list, tuple)) or not params:
        raise spec_error(f"{path}.{kind}", params, "must be a non-empty list", "write e.g. [1.0e6, 1.0e7]")
    nums = tuple(_to_float(p, f"{path}.{kind}") for p in params)
    if kind in ("uniform", "loguniform") and (len(nums) != 2 or nums[0] > nums[1]):
        raise spec_error(f"{path}.{kind}", list(params), "must be [low, high] with low <= high", "swap or fix the bounds")
    floor_ok = all(n >= 0 for n in nums) if path.endswith("latency_s") else all(n > 0 for n in nums)
    if not floor_ok:
        raise spec_error(f"{path}.{kind}", list(params), "must be positive (latency: non-negative)", "fix the bounds")
    return Distribution(kind, tuple(in_range(n, path, list(params)) for n in nums))


def _to_sensors(value: object, path: str) -> SensorSpec:
    if isinstance(value, SensorSpec):
        return value
    if value == "all":
        return SensorSpec("all")
    if isinstance(value, (list, tuple)):
        if not value:
            raise spec_error(path, value, "is an empty list", "list at least one sensor node")
        return SensorSpec("ids", tuple(_to_node(v, path) for v in value))
    if isinstance(value, str) and value in SENSOR_RULES:
        return SensorSpec(value)
    if isinstance(value, Mapping):
        extra = set(value) - {"rule", "k"}
        rule = value.get("rule")
        if extra or rule not in SENSOR_RULES[:-1]:
            raise spec_error(path, dict(value), f"must be {{rule: one of {list(SENSOR_RULES[:-1])}, k: int}}",
                        "write e.g. {rule: k_random, k: 4}")
        k = value.get("k")
        k = None if k is None else _to_int(k, f"{path}.k")
        if rule in ("k_random", "farthest") and (k is None or k < 1):
            raise spec_error(f"{path}.k", k, f"must be >= 1 for rule {rule}", "give the number of sensors")
        return SensorSpec(rule, (), k)
    raise spec_error(path, value, "must be 'all', a list of node ids or {rule: ..., k: ...}",
                "write e.g. sensors: [1, 2, 3]")


def _to_node(value: object, path: str) -> NodeId:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise spec_error(path, value, "must be a node id (integer or string)", "use an id from the topology")
    if not valid_node_id(value):
        raise spec_error(path, value, f"is too long for a node id (integers up to 2**63 - 1, names up to "
                         f"{MAX_ID_CHARS} characters)", "use a shorter id")
    return value


def _to_methods(value: object, path: str) -> tuple[MethodSpec, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise spec_error(path, value, "must be a non-empty list of {name, set}", "write e.g. [{name: dense, set: {routing.mode: dense}}]")
    methods = []
    for i, item in enumerate(value):
        if isinstance(item, MethodSpec):
            methods.append(item)
            continue
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"name", "set", "budget_of"} or not isinstance(item.get("name"), str):
            raise spec_error(where, item, "must be {name: str, set: {dotted.key: value}, budget_of: method (optional)}",
                             "give each method a name")
        budget_of = item.get("budget_of")
        if budget_of is not None and (not isinstance(budget_of, str) or budget_of == item["name"]):
            raise spec_error(f"{where}.budget_of", budget_of, "must name another method",
                             "write e.g. budget_of: D-INL")
        overrides = item.get("set") or {}
        if not isinstance(overrides, Mapping):
            raise spec_error(f"{where}.set", overrides, "must be a mapping of dotted keys", "write e.g. {gate.beta: 1.0e-3}")
        methods.append(MethodSpec(item["name"], dict(overrides), budget_of))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise spec_error(path, names, "has duplicate method names", "give every method its own name")
    return tuple(methods)


_SPECIAL: dict[object, Callable[[object, str], object]] = {
    Distribution: _to_distribution,
    SensorSpec: _to_sensors,
    NodeId: _to_node,
    Union[NodeId, None]: lambda v, p: None if v is None else _to_node(v, p),
    Union[SensorSpec, None]: lambda v, p: None if v is None else _to_sensors(v, p),
    tuple[MethodSpec, ...]: _to_methods,
    FaultsSpec: to_faults,
    **EXPERTS_CONVERTERS,
}


def _convert(tp: Any, value: object, path: str) -> object:
    """Coerce one raw value to the annotated type ``tp`` or raise a ScenarioError."""
    if tp in _SPECIAL:
        return _SPECIAL[tp](value, path)
    if dataclasses.is_dataclass(tp):
        return build_spec(tp, value, path)
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if Callable in args or any(typing.get_origin(a) is typing.get_origin(Callable) for a in args):
            if callable(value) and not isinstance(value, str):
                return value
        return _convert(next(a for a in args if a is not type(None) and a is not Callable
                             and typing.get_origin(a) is None), value, path)
    if tp is float:
        return _to_float(value, path)
    if tp is int:
        return _to_int(value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise spec_error(path, value, "must be true or false", "write true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise spec_error(path, value, "must be a string", "quote the value")
        return value
    if tp is dict:
        if not isinstance(value, Mapping):
            raise spec_error(path, value, "must be a mapping", "write key: value pairs")
        return dict(value)
    if tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise spec_error(path, value, "must be a list", "write a YAML list")
        return tuple(value)
    raise TypeError(f"internal: no converter for {tp!r} at {path}")  # a bug in inl-sim, not input


def build_spec(cls: type, raw: object, path: str) -> object:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    if isinstance(raw, cls):
        return raw
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise spec_error(path or "scenario", raw, "must be a mapping", "write key: value pairs")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise ScenarioError(f"{clip(where)}: unknown key; known keys here: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name in known:
        if name in raw:
            kwargs[name] = _convert(hints[name], raw[name], f"{path}.{name}" if path else name)
    obj = cls(**kwargs)
    validate_spec(obj, path)
    return obj


def validate_spec(obj: object, path: str) -> None:
    """Apply the value rules of ``_RULES`` and ``_CHOICES`` to one built dataclass."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        where = f"{path}.{f.name}" if path else f.name
        if f.name in _RULES and _is_number(value) or (f.name == "seed" and value is None):
            check, rule, fix = _RULES[f.name]
            if not check(value):
                raise spec_error(where, value, rule, fix)
            if f.name in MAX_SIZE and _is_number(value) and value > MAX_SIZE[f.name]:
                raise spec_error(where, value, f"must be <= {MAX_SIZE[f.name]:,}", f"{fix} (a sane size)")
        if where in _CHOICES and value not in _CHOICES[where] and value not in _registered(where):
            options = [c for c in _CHOICES[where] if c is not None]
            raise spec_error(where, value, f"is not one of {options}", f"choose one of {options}")
    if isinstance(obj, Scenario):
        _validate_topology(obj.topology, "topology")
        check_faults_engine(obj.faults, obj.simulation.engine, obj.paradigm)
        check_budget(obj)
    if isinstance(obj, CompareSpec):
        names = [m.name for m in obj.methods]
        for key in ("reference", "rate_reference"):
            value = getattr(obj, key)
            if value is not None and value not in names:
                raise spec_error(f"{path}.{key}", value, f"is not a method name {names}", "use one of the method names")
        for m in obj.methods:
            if m.budget_of is not None and m.budget_of not in names:
                raise spec_error(f"{path}.methods.{m.name}.budget_of", m.budget_of, f"is not a method name {names}",
                                 "use one of the method names")
    if isinstance(obj, GateSpec):
        if obj.rate != RATE_CHOICES[0] and obj.kind != "gaussian":
            raise spec_error(f"{path}.rate", obj.rate, f"applies to the gaussian gate only (gate.kind is {obj.kind!r})",
                             "set gate.kind: gaussian or leave gate.rate at kl_standard_normal")
        for key, value in obj.node_beta.items():
            if _to_float(value, f"{path}.node_beta.{key}") < 0:
                raise spec_error(f"{path}.node_beta.{key}", value, "must be >= 0", "the rate penalty weight cannot be negative")
    if isinstance(obj, ExpertsSpec):
        validate_experts(obj, path)
    if isinstance(obj, RoutingSpec) and isinstance(obj.cost, str) and obj.cost not in EDGE_COSTS:
        raise spec_error(f"{path}.cost", obj.cost, f"is not one of {list(EDGE_COSTS)}",
                         "choose one of them, or pass a callable (u, v, attrs) -> float from Python", RoutingError)
    if isinstance(obj, DataSpec) and obj.groups_per_view > obj.n_classes:
        raise spec_error(f"{path}.groups_per_view", obj.groups_per_view, f"must be <= n_classes ({obj.n_classes})",
                    "lower groups_per_view or raise n_classes")


def _validate_topology(spec: TopologySpec, path: str) -> None:
    sources = [name for name, given in (("generator", spec.generator), ("file", spec.file),
                                         ("library", spec.library), ("edges", spec.edges)) if given]
    if len(sources) != 1:
        raise spec_error(path or "topology", sources, "must name exactly one source: generator, file, library or edges",
                    "set topology.generator, topology.file, topology.library or topology.nodes/edges (and only one)")
    if spec.library is not None and spec.library.count("/") < 1:
        raise spec_error(f"{path}.library", spec.library, "must be a topohub key <collection>/<name>",
                         "write e.g. sndlib/abilene or gabriel/25/0 (python run.py topologies list --library)")
    rule = spec.capacity_rule
    if rule is not None and rule.low_bps > rule.high_bps:
        raise spec_error(f"{path}.capacity_rule", [rule.low_bps, rule.high_bps], "needs low_bps <= high_bps",
                         "swap or fix the bounds")
    if spec.generator:
        check_generator_params(spec.generator, spec.params, spec.n_nodes, f"{path}.params")
    if spec.nodes and not spec.edges:
        raise spec_error(f"{path}.edges", [], "is empty while nodes are given", "list the links as [u, v, {...}]")

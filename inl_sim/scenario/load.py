"""Loading scenarios: YAML file, dict or Scenario -> one validated frozen :class:`Scenario`.

Reading, ``--set`` overrides and the resolved-dict round trip live here; the field by
field conversion and validation live in :mod:`inl_sim.scenario.convert`.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Mapping

from inl_sim.errors import ScenarioError
from inl_sim.scenario.convert import build_spec, clip, spec_error
from inl_sim.scenario.library import resolve_scenario
from inl_sim.scenario.spec import Distribution, MethodSpec, Scenario, SensorSpec
from inl_sim.scenario.yamlsafe import LIMITS, load_yaml

__all__ = ["load_scenario", "scenario_to_dict", "apply_overrides", "parse_override", "with_overrides"]


def parse_override(text: str) -> tuple[str, object]:
    """Split a CLI override ``gate.beta=1e-3`` into its key and YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise spec_error("--set", text, "must look like dotted.key=value", "write e.g. --set gate.beta=1e-3")
    value = load_yaml(raw, f"--set {clip(key.strip())}") if raw.strip() else ""
    return key.strip(), value


def _schema_step(cls: type, key: str, dotted: str) -> object:
    names = [f.name for f in dataclasses.fields(cls)]
    if key not in names:
        raise ScenarioError(f"override {dotted}: unknown key {key!r}; known keys here: {', '.join(names)}")
    return typing.get_type_hints(cls)[key]


def apply_overrides(raw: Mapping, overrides: Mapping[str, object] | None) -> dict:
    """Return a copy of the raw scenario mapping with dotted overrides applied.

    Keys are checked against the schema so that a typo (``gate.bta``) fails loudly
    instead of being silently ignored.  Keys below a free-form mapping field
    (``topology.params.radius``, ``gate.node_beta.3``) are accepted as given.
    """
    result = _deep_copy(raw)
    for dotted, value in (overrides or {}).items():
        parts = dotted.split(".")
        cls: object = Scenario
        node = result
        for i, part in enumerate(parts):
            if cls is not dict:
                cls = _schema_step(cls, part, dotted)
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                if cls is not dict and not dataclasses.is_dataclass(cls):
                    raise ScenarioError(f"override {clip(dotted)}: {'.'.join(parts[:i + 1])} is a value, not a "
                                        f"section; write --set {'.'.join(parts[:i + 1])}=VALUE")
                child = node.get(part)
                node[part] = child = _deep_copy(child) if isinstance(child, Mapping) else {}
                node = child
    return result


def _deep_copy(raw: Mapping, depth: int = 0) -> dict:
    """Copy the nested mappings (lists stay shared); bounded so that a self-referencing
    dict handed to the API is an error, not a RecursionError."""
    if depth > LIMITS.max_depth:
        raise ScenarioError(f"scenario: mappings nested deeper than {LIMITS.max_depth} levels (or a mapping "
                            "that contains itself); flatten it")
    return {k: _deep_copy(v, depth + 1) if isinstance(v, Mapping) else v for k, v in raw.items()}


def load_scenario(source: str | Path | Mapping | Scenario,
                  overrides: Mapping[str, object] | None = None, *, force: bool = False) -> Scenario:
    """Load and validate a scenario from a YAML file, a mapping or a Scenario.

    Parameters
    ----------
    source
        Path to a YAML file, a shipped scenario's name (``"quickstart"``), a dict with
        the same layout, or an existing Scenario.
    overrides
        Dotted keys to replace, e.g. ``{"routing.mode": "spt", "gate.beta": 1e-3}``.
    force
        Accept a scenario whose resource estimate exceeds its budget (sets ``limits.force``).

    Raises
    ------
    ScenarioError
        Naming the file (when there is one), the field path, the value, the rule and the fix.
    """
    where = None
    if force:
        overrides = {**(overrides or {}), "limits.force": True}
    if isinstance(source, Scenario):
        raw: Mapping = scenario_to_dict(source, keep_callables=True)
    elif isinstance(source, Mapping):
        raw = source
    else:
        path = resolve_scenario(source)
        where = str(path)
        raw = _next_to(_read_yaml(path), path.parent)
    try:
        return build_spec(Scenario, apply_overrides(raw, overrides), "")
    except ScenarioError as exc:
        if where is None:
            raise
        raise ScenarioError(f"{where}: {exc}") from None


def _read_yaml(path: Path) -> Mapping:
    try:
        size = path.stat().st_size
        if size > LIMITS.max_bytes:
            raise ScenarioError(f"{path}: file of {size:,} bytes exceeds the limit of {LIMITS.max_bytes:,}; "
                                "a scenario is a few KB, use topology.file for large graphs")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text; save the scenario as UTF-8") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc.strerror}); check the path and permissions") from None
    raw = load_yaml(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: top level is a {type(raw).__name__}; a scenario must be a mapping of sections")
    return raw


def _next_to(raw: Mapping, folder: Path) -> Mapping:
    """Resolve a relative ``topology.file`` next to the scenario file first (as
    topologies/README.md says); left as given when no such file is there, so the CWD and
    the shipped topologies are tried next when the network is built."""
    topology = raw.get("topology")
    name = topology.get("file") if isinstance(topology, Mapping) else None
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        return raw
    candidate = folder / name
    if not candidate.is_file():
        return raw
    return {**raw, "topology": {**topology, "file": str(candidate.resolve())}}


def scenario_to_dict(scenario: Scenario, *, keep_callables: bool = False) -> dict:
    """Plain nested dict of a scenario (YAML-safe unless ``keep_callables``)."""
    return _plain(scenario, keep_callables)


def _plain(value: object, keep_callables: bool) -> object:
    if isinstance(value, (Distribution, SensorSpec)):
        return value.to_yaml()
    if isinstance(value, MethodSpec):
        plain = {"name": value.name, "set": dict(value.set)}
        return plain if value.budget_of is None else {**plain, "budget_of": value.budget_of}
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name), keep_callables) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, keep_callables) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v, keep_callables) for k, v in value.items()}
    if callable(value) and not keep_callables:
        return f"<callable {getattr(value, '__qualname__', repr(value))}>"
    return value


def with_overrides(scenario: Scenario, overrides: Mapping[str, object] | None) -> Scenario:
    """A new Scenario equal to ``scenario`` with dotted overrides applied."""
    if not overrides:
        return scenario
    return load_scenario(scenario, overrides)

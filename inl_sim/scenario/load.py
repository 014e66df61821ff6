"""Loading scenarios: YAML file, dict or Scenario -> one validated frozen :class:`Scenario`.

Reading, ``--set`` overrides and the resolved-dict round trip live here; the field by
field conversion and validation live in :mod:`inl_sim.scenario.convert`.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Mapping

import yaml

from inl_sim.errors import ScenarioError
from inl_sim.scenario.convert import build_spec, spec_error
from inl_sim.scenario.spec import Distribution, MethodSpec, Scenario, SensorSpec

__all__ = ["load_scenario", "scenario_to_dict", "apply_overrides", "parse_override", "with_overrides"]


def parse_override(text: str) -> tuple[str, object]:
    """Split a CLI override ``gate.beta=1e-3`` into its key and YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise spec_error("--set", text, "must look like dotted.key=value", "write e.g. --set gate.beta=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise spec_error(key.strip(), raw, f"is not valid YAML ({exc.__class__.__name__})", "quote the value") from None
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
                child = node.get(part)
                node[part] = child = _deep_copy(child) if isinstance(child, Mapping) else {}
                node = child
                if cls is not dict and not dataclasses.is_dataclass(cls):
                    cls = dict
    return result


def _deep_copy(raw: Mapping) -> dict:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


def load_scenario(source: str | Path | Mapping | Scenario,
                  overrides: Mapping[str, object] | None = None) -> Scenario:
    """Load and validate a scenario from a YAML file, a mapping or a Scenario.

    Parameters
    ----------
    source
        Path to a YAML file, a dict with the same layout, or an existing Scenario.
    overrides
        Dotted keys to replace, e.g. ``{"routing.mode": "spt", "gate.beta": 1e-3}``.

    Raises
    ------
    ScenarioError
        Naming the file (when there is one), the field path, the value, the rule and the fix.
    """
    where = None
    if isinstance(source, Scenario):
        raw: Mapping = scenario_to_dict(source, keep_callables=True)
    elif isinstance(source, Mapping):
        raw = source
    else:
        where = str(source)
        raw = _read_yaml(Path(source))
    try:
        return build_spec(Scenario, apply_overrides(raw, overrides), "")
    except ScenarioError as exc:
        if where is None:
            raise
        raise ScenarioError(f"{where}: {exc}") from None


def _read_yaml(path: Path) -> Mapping:
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found; check the path (scenarios/ holds the shipped ones)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid UTF-8 YAML: {exc}".replace("\n", " ")) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: top level is a {type(raw).__name__}; a scenario must be a mapping of sections")
    return raw


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

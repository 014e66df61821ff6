"""The topologies of a survey: shipped files, generators with a node count, and
networks of the topohub library, each as the dotted overrides that put it in place of a
scenario's own topology (see :mod:`inl_sim.study.survey`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.network import GENERATORS, shipped_topologies

__all__ = ["TopologyChoice", "DEFAULT_GENERATORS", "file_choice", "generator_choice", "library_choice",
           "parse_topology", "parse_choices", "default_choices", "parse_sensors"]

DEFAULT_GENERATORS = ("random_geometric:20", "random_geometric:50")
_RESET = {"topology.params": {}, "topology.nodes": [], "topology.edges": [], "topology.library": None,
          "topology.fusion": None, "topology.sensors": None}


@dataclass(frozen=True)
class TopologyChoice:
    """One topology of a survey: its table label and the dotted overrides that put it
    in place of the scenario's own topology (see the module docstring)."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


def file_choice(name: str) -> TopologyChoice:
    """A topology file: a shipped name (``mesh9.yaml``) or a path; the file's own roles."""
    return TopologyChoice(name, {**_RESET, "topology.generator": None, "topology.file": name})


def library_choice(name: str) -> TopologyChoice:
    """A topohub network, ``<collection>/<name>`` (``sndlib/abilene``, ``gabriel/25/0``):
    default roles, capacities and latencies as ``topology.library`` documents them."""
    key = name.strip()
    if key.count("/") < 1:
        raise TopologyError(f"--library: {name!r} is not <collection>/<name>; write e.g. sndlib/abilene "
                            "(python run.py topologies list --library)")
    return TopologyChoice(key, {**_RESET, "topology.file": None, "topology.generator": None, "topology.library": key})


def generator_choice(text: str) -> TopologyChoice:
    """``name:n_nodes[:key=value...]``, e.g. ``random_geometric:20`` or ``knn:50:k=4``.

    Raises
    ------
    TopologyError
        For an unknown generator, a node count that is not an integer >= 2 or a
        parameter that is not ``key=value``; the message gives a valid example.
    """
    name, _, rest = text.strip().partition(":")
    parts = rest.split(":") if rest else []
    if name not in GENERATORS:
        raise TopologyError(f"--generators: {text!r} names an unknown generator {name!r}; choose one of "
                            f"{', '.join(sorted(GENERATORS))}, e.g. random_geometric:20")
    if not parts or not re.fullmatch(r"\d+", parts[0].strip()) or int(parts[0]) < 2:
        raise TopologyError(f"--generators: {text!r} needs a node count >= 2 after the name; "
                            f"write name:n_nodes, e.g. {name}:20")
    params = {}
    for item in parts[1:]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise TopologyError(f"--generators: {item!r} in {text!r} is not key=value; "
                                f"write e.g. {name}:{parts[0]}:{key.strip() or 'radius'}=0.4")
        params[key.strip()] = value.strip()  # network checks the key and converts the number
    return TopologyChoice(text.strip(), {**_RESET, "topology.file": None, "topology.generator": name,
                                         "topology.n_nodes": int(parts[0]), "topology.params": params})


def parse_topology(text: str) -> TopologyChoice:
    """A generator spec when ``text`` contains ``:``, else a file name."""
    return generator_choice(text) if ":" in text else file_choice(text.strip())


def default_choices() -> tuple[TopologyChoice, ...]:
    """Every shipped topology file, then :data:`DEFAULT_GENERATORS`."""
    return tuple(file_choice(n) for n in shipped_topologies()) + tuple(generator_choice(g) for g in DEFAULT_GENERATORS)


def parse_choices(files: str | None, generators: str | None,
                  library: str | None = None) -> tuple[TopologyChoice, ...]:
    """The CLI's ``--files a,b``, ``--generators g:n,...`` and ``--library c/n,...``;
    none given: the defaults."""
    if files is None and generators is None and library is None:
        return default_choices()
    chosen = [file_choice(f.strip()) for f in (files or "").split(",") if f.strip()]
    chosen += [generator_choice(g) for g in (generators or "").split(",") if g.strip()]
    chosen += [library_choice(k) for k in (library or "").split(",") if k.strip()]
    if not chosen:
        raise TopologyError("--files/--generators/--library: all are empty; name at least one topology, "
                            "e.g. --files mesh9.yaml, --generators random_geometric:20 or --library sndlib/abilene")
    return tuple(chosen)


def parse_sensors(value: Any) -> Any:
    """The CLI shorthand ``all``, ``leaves``, ``k_random:K`` or ``farthest:K`` -> the value
    of ``topology.sensors``; anything that is not a string is passed on as it is."""
    if not isinstance(value, str):
        return value
    rule, sep, k = value.strip().partition(":")
    if rule in ("all", "leaves") and not sep:
        return rule if rule == "all" else {"rule": rule}
    if rule in ("k_random", "farthest") and re.fullmatch(r"\d+", k.strip()) and int(k) >= 1:
        return {"rule": rule, "k": int(k)}
    raise ScenarioError(f"--sensors: {value!r} is not a sensor rule; write all, leaves, k_random:K or "
                        "farthest:K with K >= 1, e.g. k_random:8")

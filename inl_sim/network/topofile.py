"""Topology files: ``*.yaml`` / ``*.graphml`` <-> an ``nx.Graph`` plus the file's roles.

Shipped files live in ``inl_sim/assets/topologies/`` (package data, found by name).

Split out of :mod:`inl_sim.network` so that module keeps one noun (building a
:class:`~inl_sim.network.Network` from a spec: generators, attributes, roles) and this
one keeps another: the on-disk formats.  Everything here reads or writes text and
validates what it read; nothing draws random values or resolves roles, which is why it
sits left of ``network`` in the data flow and imports only ``errors`` and ``scenario``.

A file (or an explicit ``topology.nodes`` / ``topology.edges`` list, which has the same
shape as a YAML file) gives a graph in file order with its attributes validated and the
missing ones left missing (``network`` fills them with seeded draws), and a ``meta``
dict with the file's optional ``fusion``, ``sensors``, ``name`` and ``description``.
:func:`write_topology_file` writes a built network back as YAML, the way to freeze a
generated draw.  ``network`` re-exports the public names, so either import works.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Hashable, Mapping, Protocol, Sequence

import networkx as nx
import yaml

from inl_sim.errors import TopologyError, short
from inl_sim.scenario import SensorSpec
from inl_sim.scenario.limits import ATTRIBUTE_RANGES, MAX_ID_CHARS, valid_node_id
from inl_sim.scenario.library import TOPOLOGY_DIR
from inl_sim.scenario.yamlsafe import LIMITS, load_yaml

__all__ = ["TOPOLOGY_DIR", "FILE_SUFFIXES", "read_topology_file", "write_topology_file", "shipped_topologies"]

NodeId = Hashable
FILE_SUFFIXES = (".yaml", ".yml", ".graphml")
FILE_KEYS = ("name", "description", "nodes", "edges", "fusion", "sensors")
NODE_KEYS = ("id", "flops_per_s", "pos", "label")
EDGE_KEYS = ("capacity_bps", "latency_s")


class _NetworkLike(Protocol):
    """What :func:`write_topology_file` reads of a :class:`~inl_sim.network.Network`
    (named structurally: this module sits left of ``network`` and cannot import it)."""

    graph: nx.Graph
    fusion: NodeId
    sensors: tuple[NodeId, ...]
    name: str


# --------------------------------------------------------------------------- values

def _number(value: object, key: str, where: str, *, positive: bool) -> float:
    """Validate a link/node value from a file or list: numeric strings allowed (YAML's 1e6)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    lo, hi, unit = ATTRIBUTE_RANGES[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi or (positive and value <= 0):
        raise TopologyError(f"{where}.{key}: {short(value)} must be a number in [{lo:g}, {hi:g}]; give {unit}")
    return float(value)


def _coordinate(value: object, key: str, where: str) -> float:
    """A GraphML position attribute (``x``, ``Latitude``, ...): a finite number, or an error
    naming the element and attribute (``Latitude=''`` was a bare ValueError)."""
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise TopologyError(f"{where}: attribute {key}={short(value)} is not a finite number; "
                            "give a number (degrees for Latitude/Longitude) or remove the attribute")
    return number


def _normal_id(node: NodeId) -> str:
    """The form two ids must not share: ``1``, ``'01'`` and ``'1'`` (and ``0``/``-0``/``'0'``)
    name one node to a reader, to GraphML's integer relabelling and to JSON outputs."""
    text = str(node).strip()
    body = text.lstrip("+-")
    return str(int(body)) if body.isdigit() and len(body) < 40 else text


def _check_collisions(ids: Sequence[NodeId], where: str) -> None:
    seen: dict[str, NodeId] = {}
    for node in ids:
        key = _normal_id(node)
        if key in seen:  # graph nodes are unique, so the same form twice is two different ids
            raise TopologyError(f"{where}: node ids {short(seen[key])} and {short(node)} collide (both read as "
                                f"{short(key)}); give every node a distinct id")
        seen[key] = node


def _attrs(raw: Mapping, known: Sequence[str], where: str, *, strict: bool) -> dict:
    """Validate the known numeric attributes; unknown keys are errors when ``strict``."""
    if strict:
        for key in raw:
            if key not in known:
                raise TopologyError(f"{where}: unknown key {short(key)}; known keys: {', '.join(known)}")
    out = dict(raw)
    for key in ("capacity_bps", "flops_per_s", "latency_s"):
        if key in raw and key in known:
            out[key] = _number(raw[key], key, where, positive=key != "latency_s")
    return out


def _node_id(value: object, where: str) -> NodeId:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TopologyError(f"{where}: {short(value)} is not a node id; use an integer or a string")
    if not valid_node_id(value):
        raise TopologyError(f"{where}: {short(value)} is too long for a node id; use an integer below 2**63 "
                            f"or a name of at most {MAX_ID_CHARS} characters")
    return value


def _few(graph: nx.Graph) -> str:
    ids = [repr(v) for v in list(graph)[:6]]
    return ", ".join(ids) + (", ..." if graph.number_of_nodes() > 6 else "")


# --------------------------------------------------------------------------- lists and files

def _parse_node(item: object, where: str) -> tuple[NodeId, dict]:
    if not isinstance(item, Mapping):
        return _node_id(item, where), {}
    if "id" not in item:
        raise TopologyError(f"{where}: {short(dict(item))} has no id; write {{id: 3, flops_per_s: 1.0e+9}}")
    attrs = _attrs({k: v for k, v in item.items() if k != "id"}, NODE_KEYS, where, strict=True)
    if "pos" in attrs:
        pos = attrs["pos"]
        if not isinstance(pos, (list, tuple)) or len(pos) != 2:
            raise TopologyError(f"{where}.pos: {short(pos)} must be [x, y]; write e.g. pos: [0.5, 0.25]")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in pos):
            raise TopologyError(f"{where}.pos: {short(pos)} must hold two finite numbers; write e.g. pos: [0.5, 0.25]")
        attrs["pos"] = (float(pos[0]), float(pos[1]))
    return _node_id(item["id"], f"{where}.id"), attrs


def _parse_edge(item: object, where: str) -> tuple[NodeId, NodeId, dict]:
    if not isinstance(item, (list, tuple)) or len(item) not in (2, 3) or (
            len(item) == 3 and not isinstance(item[2], Mapping)):
        raise TopologyError(f"{where}: {short(item)} is not a link; write [u, v] or "
                            "[u, v, {capacity_bps: 1.0e+7, latency_s: 2.0e-3}]")
    attrs = _attrs(item[2], EDGE_KEYS, where, strict=True) if len(item) == 3 else {}
    return _node_id(item[0], f"{where}[0]"), _node_id(item[1], f"{where}[1]"), attrs


def _graph_from_lists(nodes: Sequence, edges: Sequence, prefix: str) -> nx.Graph:
    """Build a graph from explicit node/edge lists; ``prefix`` locates errors
    (``'topology.'`` for a scenario, ``'<file>: '`` for a file)."""
    if not isinstance(nodes, (list, tuple)) or not isinstance(edges, (list, tuple)) or not edges:
        raise TopologyError(f"{prefix}edges: missing, empty or not a list; list the links as "
                            "[u, v, {capacity_bps: ..., latency_s: ...}] (and nodes as a list)")
    graph = nx.Graph()
    for i, item in enumerate(nodes):
        node, attrs = _parse_node(item, f"{prefix}nodes[{i}]")
        if node in graph:
            raise TopologyError(f"{prefix}nodes[{i}]: node {short(node)} is listed twice; list each node once")
        graph.add_node(node, **attrs)
    for i, item in enumerate(edges):
        where = f"{prefix}edges[{i}]"
        u, v, attrs = _parse_edge(item, where)
        for end in (u, v):
            if nodes and end not in graph:
                raise TopologyError(f"{where}: node {short(end)} is not in nodes; add it to nodes or fix the link "
                                    f"(nodes include {_few(graph)})")
        if u == v:
            raise TopologyError(f"{where}: [{short(u)}, {short(v)}] is a self-loop; a link must join two different nodes")
        if graph.has_edge(u, v):
            raise TopologyError(f"{where}: link {short(u)}-{short(v)} is listed twice; links are undirected, list each once")
        graph.add_edge(u, v, **attrs)
    _check_collisions(list(graph), f"{prefix}nodes")
    return graph


def _file_sensors(value: object, where: str) -> SensorSpec:
    """A file's own ``sensors``: a list, ``all``/``leaves``, ``{rule, k}`` or (GraphML) 'a, b'."""
    if isinstance(value, str) and value in ("all", "leaves"):
        return SensorSpec(value)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and value:
        return SensorSpec("ids", tuple(_node_id(v, f"{where}sensors") for v in value))
    if isinstance(value, Mapping) and value.get("rule") in ("all", "leaves", "k_random", "farthest"):
        return SensorSpec(value["rule"], (), value.get("k"))
    raise TopologyError(f"{where}sensors: {short(value)} must be a list of ids, 'all', 'leaves' or {{rule, k}}; "
                        "write e.g. sensors: [1, 2, 3]")


def _meta(raw: Mapping, where: str) -> dict:
    meta = {k: raw[k] for k in ("name", "description") if raw.get(k) is not None}
    if raw.get("fusion") is not None:
        meta["fusion"] = _node_id(raw["fusion"], f"{where}fusion")
    if raw.get("sensors") is not None:
        meta["sensors"] = _file_sensors(raw["sensors"], where)
    return meta


def _read_yaml(path: Path) -> tuple[nx.Graph, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: not UTF-8 text; save the topology file as UTF-8") from None
    raw = load_yaml(text, str(path), TopologyError)
    if not isinstance(raw, Mapping):
        raise TopologyError(f"{path}: top level is a {type(raw).__name__}; a topology file is a mapping "
                            "with nodes, edges and optional name, description, fusion, sensors")
    for key in raw:
        if key not in FILE_KEYS:
            raise TopologyError(f"{path}: unknown key {short(key)}; known keys: {', '.join(FILE_KEYS)}")
    graph = _graph_from_lists(raw.get("nodes") or [], raw.get("edges"), f"{path}: ")
    return graph, _meta(raw, f"{path}: ")


def _read_graphml(path: Path) -> tuple[nx.Graph, dict]:
    if path.stat().st_size > LIMITS.max_bytes:
        raise TopologyError(f"{path}: file of {path.stat().st_size:,} bytes exceeds the limit of "
                            f"{LIMITS.max_bytes:,}; use a generator for very large graphs")
    try:
        raw = nx.read_graphml(path)
    except (nx.NetworkXError, ElementTree.ParseError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise TopologyError(f"{path}: not a readable GraphML file ({short(str(exc))}); check the XML "
                            "(an attribute whose value does not parse as its declared attr.type?)") from None
    if raw.is_multigraph() or raw.is_directed():
        raise TopologyError(f"{path}: GraphML graph is {'a multigraph' if raw.is_multigraph() else 'directed'}; "
                            "give an undirected graph with one <edge> per link (edgedefault=\"undirected\")")
    _check_collisions(list(raw), f"{path}")
    if raw.number_of_nodes() and all(str(v).lstrip("-").isdigit() and len(str(v)) < 19 for v in raw):
        raw = nx.relabel_nodes(raw, {v: int(v) for v in raw})  # Topology Zoo style '0', '1', ...
    graph = nx.Graph()
    for v, data in raw.nodes(data=True):
        where = f"{path}: node {short(v)}"
        attrs = _attrs(data, ("flops_per_s",), where, strict=False)
        keys = [("x", "y"), ("lon", "lat"), ("Longitude", "Latitude")]
        pair = next((k for k in keys if k[0] in attrs and k[1] in attrs), None)
        for key in (k for k in ("x", "y", "lon", "lat", "Longitude", "Latitude") if k in attrs):
            attrs[key] = _coordinate(attrs[key], key, where)
        if pair is not None:
            attrs["pos"] = (attrs[pair[0]], attrs[pair[1]])
        graph.add_node(v, **attrs)
    for u, v, data in raw.edges(data=True):
        if u == v:
            raise TopologyError(f"{path}: link {short(u)}-{short(v)} is a self-loop; remove it")
        graph.add_edge(u, v, **_attrs(data, EDGE_KEYS, f"{path}: link {short(u)}-{short(v)}", strict=False))
    return graph, _meta(raw.graph, f"{path}: ")


def read_topology_file(path: str | Path) -> tuple[nx.Graph, dict]:
    """Read a ``.graphml`` or ``.yaml``/``.yml`` topology file.

    Parameters
    ----------
    path
        The file.  GraphML: node ids kept as text (all-digit ids become ints), link
        attributes ``capacity_bps``/``latency_s``, optional graph attributes ``fusion``
        and ``sensors`` (comma-separated ids).  YAML: the same shape as an explicit
        scenario topology (``nodes``, ``edges``, ``fusion``, ``sensors``, ``name``,
        ``description``).

    Returns
    -------
    graph, meta
        The graph in file order (attributes validated, missing ones left missing) and
        the file's optional ``fusion`` (id or rule), ``sensors`` (a SensorSpec),
        ``name`` and ``description``.

    Raises
    ------
    TopologyError
        Naming the file, the node or link, and the fix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise TopologyError(f"{path}: unknown topology file extension {short(suffix)}; "
                            f"use one of {', '.join(FILE_SUFFIXES)} (see topologies/README.md)")
    if not path.is_file():
        raise TopologyError(f"{path}: topology file not found; shipped: {', '.join(shipped_topologies())}")
    return _read_graphml(path) if suffix == ".graphml" else _read_yaml(path)


def write_topology_file(network: _NetworkLike, path: str | Path, *, description: str = "") -> Path:
    """Write ``network`` as a YAML edge list that :func:`read_topology_file` reads back
    (the way to freeze a generated draw, or to hand-edit one)."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise TopologyError(f"{path}: can only write .yaml/.yml topology files; change the extension")
    graph = network.graph
    nodes = [{"id": v, **{k: (list(d[k]) if k == "pos" else d[k]) for k in NODE_KEYS[1:] if k in d}}
             for v, d in graph.nodes(data=True)]
    edges = [[u, v, {k: d[k] for k in EDGE_KEYS}] for u, v, d in graph.edges(data=True)]
    doc = {"name": network.name, "description": description, "nodes": nodes, "edges": edges,
           "fusion": network.fusion, "sensors": list(network.sensors)}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return path


def shipped_topologies() -> list[str]:
    """File names of the topologies shipped with the package (``inl_sim/assets/topologies/``)."""
    if not TOPOLOGY_DIR.is_dir():
        return []
    return sorted(p.name for p in TOPOLOGY_DIR.iterdir() if p.suffix.lower() in FILE_SUFFIXES)


def _resolve_file(name: str, base_dir: Path | None) -> Path:
    """Absolute path of ``topology.file``: tried against base_dir, the CWD, then the shipped
    topologies by name (so ``topologies/mesh9.yaml`` and ``mesh9`` work from any directory).
    A scenario loaded from a file has its relative ``topology.file`` resolved next to it
    already (:func:`inl_sim.scenario.load_scenario`)."""
    given = Path(name)
    roots = [None] if given.is_absolute() else [
        r for r in (base_dir, Path.cwd(), TOPOLOGY_DIR) if r is not None]
    names = [given] if given.suffix else [given.with_suffix(s) for s in FILE_SUFFIXES]
    if not given.is_absolute():
        names.append(Path(given.name))
    for root in roots:
        for candidate in names:
            path = candidate if root is None else Path(root) / candidate
            if path.is_file():
                return path
    if given.suffix and given.suffix.lower() not in FILE_SUFFIXES:
        return given  # read_topology_file names the bad extension
    raise TopologyError(f"topology.file: {short(name)} not found (looked in {', '.join(str(r) for r in roots)}); "
                        f"shipped topologies: {', '.join(shipped_topologies()) or 'none'}; fix the path")

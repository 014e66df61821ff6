"""Networks: a :class:`~inl_sim.scenario.TopologySpec` -> an undirected graph with roles.

A :class:`Network` is what every later stage consumes: an ``nx.Graph`` whose links carry
``capacity_bps`` (> 0) and ``latency_s`` (>= 0) and whose nodes carry ``flops_per_s``
and a ``role`` (``fusion``, ``sensor`` or ``relay``), plus the fusion node and the
sensors.  The graph's node order is the stable order used to break every tie
downstream, so it is fixed here once: ``0..n-1`` for generated graphs, file order for
files and explicit lists.

Graphs come from three sources: a seeded generator (:data:`GENERATORS`), a file under
``topologies/`` (GraphML or a YAML edge list, :func:`read_topology_file`) or explicit
``topology.nodes`` / ``topology.edges``.  Every random choice (the draw, link
attributes, ``k_random`` sensors) derives from one topology seed, each from its own
stream, so changing the capacity distribution does not move the nodes.

Roles are resolved last: ``topology.fusion`` (an id or a rule of :data:`FUSION_RULES`)
else the file's own ``fusion`` else ``most_central``; ``topology.sensors`` else the
file's own ``sensors`` else every non-fusion node.  Rule names win over node ids of
the same spelling, so ``fusion: first`` always means the rule.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import networkx as nx
import numpy as np
import yaml

from inl_sim.errors import TopologyError
from inl_sim.scenario import Distribution, SensorSpec, TopologySpec

__all__ = [
    "Network", "GENERATORS", "FUSION_RULES", "TOPOLOGY_DIR", "build_network",
    "read_topology_file", "write_topology_file", "describe_network", "shipped_topologies",
]

log = logging.getLogger(__name__)

NodeId = Hashable
TOPOLOGY_DIR = Path(__file__).resolve().parent.parent / "topologies"
FILE_SUFFIXES = (".yaml", ".yml", ".graphml")
FILE_KEYS = ("name", "description", "nodes", "edges", "fusion", "sensors")
NODE_KEYS = ("id", "flops_per_s", "pos", "label")
EDGE_KEYS = ("capacity_bps", "latency_s")
MAX_DRAWS = 100
# One RNG stream per random quantity: changing one distribution leaves the others alone.
_STREAMS = {"capacity_bps": 1, "latency_s": 2, "flops_per_s": 3, "sensors": 4}


@dataclass(frozen=True)
class Network:
    """A topology with its roles, ready for routing.

    ``graph`` is frozen (no nodes or links can be added); its node order is the stable
    tie-breaking order.  Links carry ``capacity_bps`` and ``latency_s``; nodes carry
    ``flops_per_s``, ``role`` and optionally ``pos`` (x, y) and ``label``.
    ``sensors`` are listed in node order; ``name`` is the file stem, the generator's
    name or ``'explicit'``.
    """

    graph: nx.Graph
    fusion: NodeId
    sensors: tuple[NodeId, ...]
    name: str


# --------------------------------------------------------------------------- generators

def _params(generator: str, params: Mapping, defaults: Mapping[str, float]) -> dict:
    """Merge ``params`` over ``defaults``, rejecting unknown keys and non-numbers."""
    for key in params:
        if key not in defaults:
            raise TopologyError(f"topology.params.{key}: unknown parameter of generator {generator!r}; "
                                f"known: {', '.join(defaults) or 'none'}")
    merged = {}
    for key, default in defaults.items():
        value = params.get(key, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TopologyError(f"topology.params.{key}: {value!r} must be a finite number; write e.g. {default}")
        merged[key] = value
    return merged


def _require(ok: bool, key: str, value: object, rule: str, fix: str) -> None:
    if not ok:
        raise TopologyError(f"topology.params.{key}: {value!r} {rule}; {fix}")


def _integer(key: str, value: float, low: int) -> int:
    _require(float(value).is_integer() and value >= low, key, value, f"must be an integer >= {low}",
             f"write a whole number such as {max(low, 2)}")
    return int(value)


def _random_geometric(n: int, params: Mapping, seed: int) -> nx.Graph:
    # ~ the connectivity threshold of a random geometric graph in the unit square, plus a margin.
    p = _params("random_geometric", params, {"radius": round(math.sqrt(2 * math.log(n) / n) + 0.05, 4)})
    _require(p["radius"] > 0, "radius", p["radius"], "must be > 0", "use e.g. 0.5")
    graph = nx.random_geometric_graph(n, p["radius"], seed=seed)
    graph.graph["params"] = p
    return graph


def _knn(n: int, params: Mapping, seed: int) -> nx.Graph:
    p = _params("knn", params, {"k": 3})
    k = _integer("k", p["k"], 1)
    _require(k < n, "k", k, f"must be < n_nodes ({n})", "lower k or raise n_nodes")
    points = np.random.default_rng(seed).random((n, 2))  # (n, 2) in the unit square
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)  # (n, n)
    np.fill_diagonal(dist, np.inf)
    graph = nx.Graph(params={"k": k})
    graph.add_nodes_from((i, {"pos": tuple(points[i])}) for i in range(n))
    for i in range(n):  # symmetrised: i-j is a link when either is among the other's k nearest
        graph.add_edges_from((i, int(j)) for j in np.argsort(dist[i], kind="stable")[:k])
    return graph


def _waxman(n: int, params: Mapping, seed: int) -> nx.Graph:
    # networkx's alpha=0.1 leaves most small draws disconnected; 0.4 gives Waxman-like meshes.
    p = _params("waxman", params, {"alpha": 0.4, "beta": 0.4})
    for key in ("alpha", "beta"):
        _require(0 < p[key] <= 1, key, p[key], "must be in (0, 1]", "use e.g. 0.4")
    graph = nx.waxman_graph(n, beta=p["beta"], alpha=p["alpha"], seed=seed)
    graph.graph["params"] = p
    return graph


def _erdos_renyi(n: int, params: Mapping, seed: int) -> nx.Graph:
    p = _params("erdos_renyi", params, {"p": round(min(1.0, 2 * math.log(n) / n), 4)})
    _require(0 <= p["p"] <= 1, "p", p["p"], "must be in [0, 1]", "use e.g. 0.5")
    graph = nx.gnp_random_graph(n, p["p"], seed=seed)
    graph.graph["params"] = p
    return graph


def _grid(n: int, params: Mapping, seed: int) -> nx.Graph:
    """rows x cols lattice.  Both given: they define the grid and n_nodes is ignored; one
    given: the other is n_nodes / it; none: a square grid, n_nodes a perfect square."""
    p = _params("grid", params, {"rows": 0, "cols": 0})
    rows_given, cols_given = _integer("rows", p["rows"], 0), _integer("cols", p["cols"], 0)
    if rows_given and cols_given:
        rows, cols = rows_given, cols_given
    elif rows_given or cols_given:
        rows = rows_given or n // cols_given
        cols = cols_given or n // rows_given
    else:
        rows = cols = math.isqrt(n)
    if not (rows_given and cols_given) and rows * cols != n:
        raise TopologyError(f"topology.n_nodes: {n} cannot fill a grid with rows={rows_given or '?'}, "
                            f"cols={cols_given or '?'}; set both topology.params.rows and topology.params.cols")
    graph = nx.grid_2d_graph(rows, cols)
    nx.set_node_attributes(graph, {(r, c): (float(c), float(r)) for r, c in graph}, "pos")
    graph.graph["params"] = {"rows": rows, "cols": cols}
    return graph


def _star(n: int, params: Mapping, seed: int) -> nx.Graph:
    _params("star", params, {})
    return nx.star_graph(n - 1)  # hub 0 and n-1 leaves


def _balanced_tree(n: int, params: Mapping, seed: int) -> nx.Graph:
    """r-ary tree of height h, (r^(h+1)-1)/(r-1) nodes.  With ``height`` given, n_nodes
    is ignored; without it, the height is derived and n_nodes must fit exactly."""
    p = _params("balanced_tree", params, {"branching": 2, "height": -1})
    r = _integer("branching", p["branching"], 1)
    sizes = [sum(r ** i for i in range(h + 1)) for h in range(64 if r == 1 else 40)]
    height = int(p["height"]) if p["height"] != -1 else (sizes.index(n) if n in sizes else None)
    if height is None:
        near = [s for s in sizes if s <= 4 * n][-4:]
        raise TopologyError(f"topology.n_nodes: {n} is not the size of a balanced tree of branching {r}; "
                            f"use one of {near} or set topology.params.height")
    graph = nx.balanced_tree(r, _integer("height", height, 0))
    graph.graph["params"] = {"branching": r, "height": height}
    return graph


#: name -> (generator(n, params, seed) -> nx.Graph, the parameter to raise when draws are disconnected)
GENERATORS: dict[str, tuple[Callable[[int, Mapping, int], nx.Graph], str]] = {
    "random_geometric": (_random_geometric, "raise topology.params.radius"),
    "knn": (_knn, "raise topology.params.k"),
    "waxman": (_waxman, "raise topology.params.alpha or topology.params.beta"),
    "erdos_renyi": (_erdos_renyi, "raise topology.params.p"),
    "grid": (_grid, "check topology.params.rows/cols"),
    "star": (_star, "use another generator"),
    "balanced_tree": (_balanced_tree, "use another generator"),
}


def _canonical(graph: nx.Graph) -> nx.Graph:
    """Relabel to 0..n-1 in sorted node order and insert links sorted, keeping only ``pos``."""
    mapping = {v: i for i, v in enumerate(sorted(graph))}
    out = nx.Graph()
    for v, i in mapping.items():
        pos = graph.nodes[v].get("pos")
        out.add_node(i, **({"pos": tuple(float(x) for x in pos)} if pos is not None else {}))
    out.add_edges_from(sorted(tuple(sorted((mapping[u], mapping[v]))) for u, v in graph.edges))
    return out


def _generate(spec: TopologySpec, topo_seed: int) -> nx.Graph:
    """Draw from ``spec.generator``; redraw with derived seeds until connected if asked."""
    if spec.generator not in GENERATORS:
        raise TopologyError(f"topology.generator: {spec.generator!r} is unknown; choose one of {sorted(GENERATORS)}")
    make, fix = GENERATORS[spec.generator]
    n = spec.n_nodes
    if n < 2:
        raise TopologyError(f"topology.n_nodes: {n} gives fewer than 2 nodes; INL needs a fusion node "
                            "and at least one sensor: use n_nodes >= 2")
    for attempt in range(MAX_DRAWS):
        # attempt 0 uses the seed itself, so a draw matches networkx's own generator call.
        draw_seed = topo_seed if attempt == 0 else int(np.random.SeedSequence([topo_seed, 0, attempt]).generate_state(1)[0])
        raw = make(n, dict(spec.params), draw_seed)
        graph = _canonical(raw)
        if not spec.ensure_connected or nx.is_connected(graph):
            return graph
    raise TopologyError(f"topology.generator: {spec.generator!r} with n_nodes={n} and params "
                        f"{raw.graph.get('params', {})} gave a disconnected graph in {MAX_DRAWS} seeded draws; "
                        f"{fix} or set topology.ensure_connected: false")


# --------------------------------------------------------------------------- values

def _number(value: object, key: str, where: str, *, positive: bool) -> float:
    """Validate a link/node value from a file or list: numeric strings allowed (YAML's 1e6)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    rule = "must be a number > 0" if positive else "must be a number >= 0"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        unit = {"capacity_bps": "bits per second, e.g. 1.0e+7", "latency_s": "seconds, e.g. 2.0e-3",
                "flops_per_s": "FLOP/s, e.g. 1.0e+9"}.get(key, "a number")
        raise TopologyError(f"{where}.{key}: {value!r} {rule}; give {unit}")
    return float(value)


def _attrs(raw: Mapping, known: Sequence[str], where: str, *, strict: bool) -> dict:
    """Validate the known numeric attributes; unknown keys are errors when ``strict``."""
    if strict:
        for key in raw:
            if key not in known:
                raise TopologyError(f"{where}: unknown key {key!r}; known keys: {', '.join(known)}")
    out = dict(raw)
    for key in ("capacity_bps", "flops_per_s", "latency_s"):
        if key in raw and key in known:
            out[key] = _number(raw[key], key, where, positive=key != "latency_s")
    return out


def _node_id(value: object, where: str) -> NodeId:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TopologyError(f"{where}: {value!r} is not a node id; use an integer or a string")
    return value


def _few(graph: nx.Graph) -> str:
    ids = [repr(v) for v in list(graph)[:6]]
    return ", ".join(ids) + (", ..." if graph.number_of_nodes() > 6 else "")


def _match(graph: nx.Graph, value: object) -> object:
    """``value`` as a node id of ``graph``: GraphML stores ids as text, so '3' may mean 3."""
    if isinstance(value, str) and value not in graph and value.strip().lstrip("-").isdigit():
        return int(value) if int(value) in graph else value
    return value


def _sample(dist: Distribution, size: int, rng: np.random.Generator, key: str) -> list[float]:
    """``size`` draws of ``dist`` in order (constant, uniform, loguniform, choice)."""
    lo, hi = (dist.params + dist.params)[:2]
    if dist.kind == "constant":
        values = np.full(size, dist.params[0])
    elif dist.kind == "uniform":
        values = rng.uniform(lo, hi, size)
    elif dist.kind == "loguniform":
        if lo <= 0:
            raise TopologyError(f"topology.{key}.loguniform: {list(dist.params)} needs low > 0; "
                                "use uniform or a positive lower bound")
        values = np.exp(rng.uniform(math.log(lo), math.log(hi), size))
    elif dist.kind == "choice":
        values = rng.choice(np.asarray(dist.params, dtype=float), size)
    else:
        raise TopologyError(f"topology.{key}: distribution {dist.kind!r} is unknown; "
                            "use a number or {uniform|loguniform|choice: [...]}")
    return [float(x) for x in values]


def _rng(topo_seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([topo_seed, _STREAMS[stream]])


def _fill(graph: nx.Graph, spec: TopologySpec, topo_seed: int) -> None:
    """Give every link/node lacking an attribute a seeded draw (drawn for all, in order,
    so a value does not depend on which other links the file already specified)."""
    edges = list(graph.edges)
    for key, dist in (("capacity_bps", spec.capacity_bps), ("latency_s", spec.latency_s)):
        for (u, v), value in zip(edges, _sample(dist, len(edges), _rng(topo_seed, key), key)):
            graph.edges[u, v].setdefault(key, value)
    flops = _sample(spec.node_flops_per_s, graph.number_of_nodes(), _rng(topo_seed, "flops_per_s"), "node_flops_per_s")
    for v, value in zip(list(graph), flops):
        graph.nodes[v].setdefault("flops_per_s", value)


# --------------------------------------------------------------------------- lists and files

def _parse_node(item: object, where: str) -> tuple[NodeId, dict]:
    if not isinstance(item, Mapping):
        return _node_id(item, where), {}
    if "id" not in item:
        raise TopologyError(f"{where}: {dict(item)!r} has no id; write {{id: 3, flops_per_s: 1.0e+9}}")
    attrs = _attrs({k: v for k, v in item.items() if k != "id"}, NODE_KEYS, where, strict=True)
    if "pos" in attrs:
        pos = attrs["pos"]
        if not isinstance(pos, (list, tuple)) or len(pos) != 2:
            raise TopologyError(f"{where}.pos: {pos!r} must be [x, y]; write e.g. pos: [0.5, 0.25]")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in pos):
            raise TopologyError(f"{where}.pos: {pos!r} must hold two finite numbers; write e.g. pos: [0.5, 0.25]")
        attrs["pos"] = (float(pos[0]), float(pos[1]))
    return _node_id(item["id"], f"{where}.id"), attrs


def _parse_edge(item: object, where: str) -> tuple[NodeId, NodeId, dict]:
    if not isinstance(item, (list, tuple)) or len(item) not in (2, 3) or (
            len(item) == 3 and not isinstance(item[2], Mapping)):
        raise TopologyError(f"{where}: {item!r} is not a link; write [u, v] or "
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
            raise TopologyError(f"{prefix}nodes[{i}]: node {node!r} is listed twice; list each node once")
        graph.add_node(node, **attrs)
    for i, item in enumerate(edges):
        where = f"{prefix}edges[{i}]"
        u, v, attrs = _parse_edge(item, where)
        for end in (u, v):
            if nodes and end not in graph:
                raise TopologyError(f"{where}: node {end!r} is not in nodes; add it to nodes or fix the link "
                                    f"(nodes include {_few(graph)})")
        if u == v:
            raise TopologyError(f"{where}: [{u!r}, {v!r}] is a self-loop; a link must join two different nodes")
        if graph.has_edge(u, v):
            raise TopologyError(f"{where}: link {u!r}-{v!r} is listed twice; links are undirected, list each once")
        graph.add_edge(u, v, **attrs)
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
    raise TopologyError(f"{where}sensors: {value!r} must be a list of ids, 'all', 'leaves' or {{rule, k}}; "
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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the syntax "
                            "(see topologies/README.md for the format)") from None
    if not isinstance(raw, Mapping):
        raise TopologyError(f"{path}: top level is a {type(raw).__name__}; a topology file is a mapping "
                            "with nodes, edges and optional name, description, fusion, sensors")
    for key in raw:
        if key not in FILE_KEYS:
            raise TopologyError(f"{path}: unknown key {key!r}; known keys: {', '.join(FILE_KEYS)}")
    graph = _graph_from_lists(raw.get("nodes") or [], raw.get("edges"), f"{path}: ")
    return graph, _meta(raw, f"{path}: ")


def _read_graphml(path: Path) -> tuple[nx.Graph, dict]:
    try:
        raw = nx.read_graphml(path)
    except (nx.NetworkXError, ElementTree.ParseError, ValueError, KeyError, TypeError) as exc:
        raise TopologyError(f"{path}: not a readable GraphML file ({exc}); check the XML") from None
    if raw.is_multigraph() or raw.is_directed():
        raise TopologyError(f"{path}: GraphML graph is {'a multigraph' if raw.is_multigraph() else 'directed'}; "
                            "give an undirected graph with one <edge> per link (edgedefault=\"undirected\")")
    if raw.number_of_nodes() and all(str(v).lstrip("-").isdigit() for v in raw):
        raw = nx.relabel_nodes(raw, {v: int(v) for v in raw})  # Topology Zoo style '0', '1', ...
    graph = nx.Graph()
    for v, data in raw.nodes(data=True):
        attrs = _attrs(data, ("flops_per_s",), f"{path}: node {v!r}", strict=False)
        lon, lat = attrs.get("lon", attrs.get("Longitude")), attrs.get("lat", attrs.get("Latitude"))
        if "x" in attrs and "y" in attrs:
            attrs["pos"] = (float(attrs["x"]), float(attrs["y"]))
        elif lon is not None and lat is not None:
            attrs["pos"] = (float(lon), float(lat))
        graph.add_node(v, **attrs)
    for u, v, data in raw.edges(data=True):
        if u == v:
            raise TopologyError(f"{path}: link {u!r}-{v!r} is a self-loop; remove it")
        graph.add_edge(u, v, **_attrs(data, EDGE_KEYS, f"{path}: link {u!r}-{v!r}", strict=False))
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
        raise TopologyError(f"{path}: unknown topology file extension {suffix!r}; "
                            f"use one of {', '.join(FILE_SUFFIXES)} (see topologies/README.md)")
    if not path.is_file():
        raise TopologyError(f"{path}: topology file not found; shipped: {', '.join(shipped_topologies())}")
    return _read_graphml(path) if suffix == ".graphml" else _read_yaml(path)


def write_topology_file(network: Network, path: str | Path, *, description: str = "") -> Path:
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
    """File names of the topologies shipped under ``topologies/``."""
    if not TOPOLOGY_DIR.is_dir():
        return []
    return sorted(p.name for p in TOPOLOGY_DIR.iterdir() if p.suffix.lower() in FILE_SUFFIXES)


def _resolve_file(name: str, base_dir: Path | None) -> Path:
    """Absolute path of ``topology.file``: tried against base_dir, CWD, the checkout root
    (so ``topologies/mesh9.yaml`` works from any directory), then ``topologies/`` by name."""
    given = Path(name)
    roots = [None] if given.is_absolute() else [
        r for r in (base_dir, Path.cwd(), TOPOLOGY_DIR.parent, TOPOLOGY_DIR) if r is not None]
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
    raise TopologyError(f"topology.file: {name!r} not found (looked in {', '.join(str(r) for r in roots)}); "
                        f"shipped topologies: {', '.join(shipped_topologies()) or 'none'}; fix the path")


# --------------------------------------------------------------------------- roles

#: fusion rules: graph -> node; max() keeps the first maximum, i.e. ties go by node order.
FUSION_RULES: dict[str, Callable[[nx.Graph], NodeId]] = {
    "most_central": lambda g: max(g, key=nx.closeness_centrality(g).__getitem__),
    "max_degree": lambda g: max(g, key=g.degree),
    "first": lambda g: next(iter(g)),
}


def _pick_fusion(graph: nx.Graph, choice: object) -> NodeId:
    if isinstance(choice, str) and choice in FUSION_RULES:
        return FUSION_RULES[choice](graph)
    node = _match(graph, choice)
    if node not in graph:
        raise TopologyError(f"topology.fusion: {choice!r} is not a node of the graph nor a rule; "
                            f"valid ids include {_few(graph)}; rules: {', '.join(FUSION_RULES)}")
    return node


def _take_k(candidates: list, k: int | None, rule: str) -> int:
    if k is None or k < 1:
        raise TopologyError(f"topology.sensors.k: {k!r} must be >= 1 for rule {rule!r}; give the number of sensors")
    if k > len(candidates):
        raise TopologyError(f"topology.sensors.k: {k} is larger than the {len(candidates)} candidate nodes "
                            f"of rule {rule!r}; lower k to at most {len(candidates)}")
    return k


def _sensor_ids(graph: nx.Graph, fusion: NodeId, ids: Sequence) -> list:
    chosen: list = []
    for raw in ids:
        node = _match(graph, raw)
        if node not in graph:
            raise TopologyError(f"topology.sensors: {raw!r} is not a node of the graph; "
                                f"valid ids include {_few(graph)}")
        if node == fusion:
            raise TopologyError(f"topology.sensors: node {node!r} is the fusion node; a sensor must be "
                                "another node: remove it from topology.sensors or choose another topology.fusion")
        if node in chosen:
            raise TopologyError(f"topology.sensors: node {node!r} is listed twice; list each sensor once")
        chosen.append(node)
    return chosen


def _pick_sensors(graph: nx.Graph, fusion: NodeId, spec: SensorSpec, topo_seed: int) -> tuple[NodeId, ...]:
    others = [v for v in graph if v != fusion]
    if spec.rule in ("all", "leaves") and spec.k is not None:
        raise TopologyError(f"topology.sensors.k: {spec.k} has no meaning for rule {spec.rule!r}; "
                            "drop k or use rule k_random or farthest")
    if spec.rule == "ids":
        chosen = _sensor_ids(graph, fusion, spec.ids)
    elif spec.rule == "all":
        chosen = others
    elif spec.rule == "leaves":
        chosen = [v for v in others if graph.degree(v) == 1]
    elif spec.rule == "k_random":
        picks = _rng(topo_seed, "sensors").choice(len(others), _take_k(others, spec.k, spec.rule), replace=False)
        chosen = [others[i] for i in picks]
    elif spec.rule == "farthest":  # reachable nodes only; sorted() is stable, so ties go by node order
        hops = nx.single_source_shortest_path_length(graph, fusion)
        reachable = [v for v in others if v in hops]
        chosen = sorted(reachable, key=lambda v: -hops[v])[:_take_k(reachable, spec.k, spec.rule)]
    else:
        raise TopologyError(f"topology.sensors.rule: {spec.rule!r} is unknown; "
                            "use all, ids, leaves, k_random or farthest")
    if not chosen:
        raise TopologyError(f"topology.sensors: rule {spec.rule!r} selects no sensor on this graph; "
                            "use sensors: all or list the sensor ids")
    rank = {v: i for i, v in enumerate(graph)}
    return tuple(sorted(chosen, key=rank.__getitem__))


def _check_reachable(graph: nx.Graph, fusion: NodeId, sensors: Sequence, fix: str) -> None:
    component = nx.node_connected_component(graph, fusion)
    for s in sensors:
        if s not in component:
            raise TopologyError(f"node {s!r} cannot reach fusion node {fusion!r} (graph has "
                                f"{nx.number_connected_components(graph)} components); {fix}")


# --------------------------------------------------------------------------- public API

def _source(spec: TopologySpec, topo_seed: int, base_dir: Path | None) -> tuple[nx.Graph, dict, str, str]:
    """The raw graph, the file's roles, the network name and the fix for unreachable sensors."""
    if spec.generator:
        fix = f"{GENERATORS.get(spec.generator, (None, 'fix the generator'))[1]} or set topology.ensure_connected: true"
        return _generate(spec, topo_seed), {}, spec.generator, fix
    fix = "add a link joining it to the fusion node's component or remove it from topology.sensors"
    if spec.file:
        path = _resolve_file(spec.file, base_dir)
        graph, meta = read_topology_file(path)
        return graph, meta, path.stem, fix
    if spec.edges:
        return _graph_from_lists(spec.nodes, spec.edges, "topology."), {}, "explicit", fix
    raise TopologyError("topology: no source; set topology.generator, topology.file or topology.nodes/edges")


def build_network(spec: TopologySpec, *, seed: int, base_dir: Path | None = None) -> Network:
    """Build the network a scenario describes: graph, link/node attributes and roles.

    Parameters
    ----------
    spec
        The validated topology section of a scenario.
    seed
        The run seed; used for the topology only when ``spec.seed`` is None, so that by
        default a comparison over run seeds varies training, not the network.
    base_dir
        Folder against which a relative ``spec.file`` is resolved first (the scenario
        file's folder); then the current directory, then the shipped ``topologies/``.

    Returns
    -------
    Network
        With a frozen graph in the stable node order.

    Raises
    ------
    TopologyError
        For bad files, bad lists, bad generator parameters, bad roles, too few nodes,
        or a sensor that cannot reach the fusion node; the message names the field,
        the value and the fix.
    """
    topo_seed = spec.seed if spec.seed is not None else seed
    if isinstance(topo_seed, bool) or not isinstance(topo_seed, int) or topo_seed < 0:
        raise TopologyError(f"topology.seed: {topo_seed!r} must be an integer >= 0; use e.g. 0")
    graph, meta, name, fix = _source(spec, topo_seed, base_dir)
    if graph.number_of_nodes() < 2:
        raise TopologyError(f"topology ({name}): graph has {graph.number_of_nodes()} node(s); INL needs a "
                            "fusion node and at least one sensor: give at least 2 nodes and a link")
    if nx.number_of_selfloops(graph):
        u, v = next(iter(nx.selfloop_edges(graph)))
        raise TopologyError(f"topology ({name}): link {u!r}-{v!r} is a self-loop; remove it")
    _fill(graph, spec, topo_seed)
    fusion = _pick_fusion(graph, spec.fusion if spec.fusion is not None else meta.get("fusion", "most_central"))
    sensors = _pick_sensors(graph, fusion, spec.sensors or meta.get("sensors") or SensorSpec("all"), topo_seed)
    _check_reachable(graph, fusion, sensors, fix)
    sensor_set = set(sensors)
    for v in graph:
        graph.nodes[v]["role"] = "fusion" if v == fusion else "sensor" if v in sensor_set else "relay"
    log.debug("built network %s: %d nodes, %d links, fusion %r", name, graph.number_of_nodes(),
              graph.number_of_edges(), fusion)
    return Network(nx.freeze(graph), fusion, sensors, name)


def describe_network(network: Network) -> dict[str, Any]:
    """A flat, JSON-friendly summary of ``network`` (for ``inl-sim show`` and run folders)."""
    graph = network.graph
    degrees = [d for _, d in graph.degree]
    capacity = [d["capacity_bps"] for _, _, d in graph.edges(data=True)] or [math.nan]
    latency = [d["latency_s"] for _, _, d in graph.edges(data=True)] or [math.nan]
    return {
        "name": network.name, "n_nodes": graph.number_of_nodes(), "n_edges": graph.number_of_edges(),
        "fusion": network.fusion, "sensors": list(network.sensors), "n_sensors": len(network.sensors),
        "n_relays": graph.number_of_nodes() - len(network.sensors) - 1,
        "connected": nx.is_connected(graph),
        "degree_min": min(degrees), "degree_mean": sum(degrees) / len(degrees), "degree_max": max(degrees),
        "capacity_bps_min": min(capacity), "capacity_bps_max": max(capacity),
        "latency_s_min": min(latency), "latency_s_max": max(latency),
    }

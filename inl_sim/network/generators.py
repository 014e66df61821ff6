"""Seeded topology generators: (n_nodes, params, seed) -> an undirected graph on 0..n-1.

Each entry of :data:`GENERATORS` is one function plus the hint shown when its draws stay
disconnected; a new generator is one function and one entry here.  :func:`generate`
draws, relabels canonically and redraws with derived seeds until connected if asked.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Mapping

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from inl_sim.errors import TopologyError
from inl_sim.scenario import TopologySpec

__all__ = ["GENERATORS", "MAX_DRAWS", "generate"]

MAX_DRAWS = 100


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
    """Nodes uniform in the unit square, a link where two lie within ``radius``.

    The points are networkx's own draw (``random.Random(seed)``, x then y per node) and
    the links come from a KD-tree (``scipy.spatial.cKDTree.query_pairs``, as networkx
    does when scipy is present), so the graph equals ``nx.random_geometric_graph(n,
    radius, seed=seed)`` in O(n log n + E log E) time and O(n + E) memory.
    ``join_components: 1`` joins every other component to the largest by its shortest
    link to it (longer than ``radius``): connected by construction, at the cost of a few
    long links, for sizes where a radius giving the wanted degree is below the
    connectivity threshold (10,000 nodes at mean degree 8 give about 12 components).
    """
    # ~ the connectivity threshold of a random geometric graph in the unit square, plus a margin.
    p = _params("random_geometric", params, {"radius": round(math.sqrt(2 * math.log(n) / n) + 0.05, 4),
                                             "join_components": 0})
    _require(p["radius"] > 0, "radius", p["radius"], "must be > 0", "use e.g. 0.5")
    join = _integer("join_components", p["join_components"], 0)
    _require(join <= 1, "join_components", join, "must be 0 or 1", "write 1 to join components, 0 not to")
    draw = random.Random(seed)
    points = np.array([[draw.random(), draw.random()] for _ in range(n)])  # (n, 2), networkx's order
    pairs = cKDTree(points).query_pairs(p["radius"], output_type="ndarray").reshape(-1, 2)  # (E, 2), i < j
    if join:
        pairs = np.concatenate([pairs, _joining_links(points, pairs)])
    return _geometric_graph(points, pairs, p)


def _joining_links(points: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(C - 1, 2) links, one per component but the largest: its shortest link to the largest.

    Ties go to the earliest component (labels follow node order) and the lowest node.
    """
    n = len(points)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_components, label = connected_components(adjacency, directed=False)
    giant = int(np.argmax(np.bincount(label)))  # first maximum: the earliest of equal sizes
    giant_nodes = np.flatnonzero(label == giant)
    tree = cKDTree(points[giant_nodes])
    links = []
    for c in range(n_components):
        if c == giant:
            continue
        members = np.flatnonzero(label == c)
        dist, nearest = tree.query(points[members], k=1)  # (m,), (m,)
        i = int(np.argmin(dist))
        u, v = int(members[i]), int(giant_nodes[nearest[i]])
        links.append((min(u, v), max(u, v)))
    return np.asarray(links, dtype=pairs.dtype).reshape(-1, 2)


def _geometric_graph(points: np.ndarray, pairs: np.ndarray, params: Mapping) -> nx.Graph:
    """Nodes 0..n-1 with ``pos`` and the (u < v) links in sorted order: already canonical."""
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]  # (E, 2) sorted by (u, v)
    graph = nx.Graph(params=dict(params), canonical=True)
    graph.add_nodes_from((i, {"pos": (x, y)}) for i, (x, y) in enumerate(points.tolist()))
    graph.add_edges_from(pairs.tolist())
    return graph


def _knn(n: int, params: Mapping, seed: int) -> nx.Graph:
    """Nodes uniform in the unit square; i-j is a link when either is among the other's k
    nearest (ties by node order).  A KD-tree gives k + 1 candidates per node besides
    itself; they are re-ranked by the same float distance the O(n^2) version computed
    (``np.linalg.norm`` of the difference), so the graph is that version's bit for bit
    (barring float near-ties across more than one extra candidate), in O(n k log n)
    time and O(n k) memory."""
    p = _params("knn", params, {"k": 3})
    k = _integer("k", p["k"], 1)
    _require(k < n, "k", k, f"must be < n_nodes ({n})", "lower k or raise n_nodes")
    points = np.random.default_rng(seed).random((n, 2))  # (n, 2) in the unit square
    _, candidates = cKDTree(points).query(points, k=min(n, k + 2))  # (n, m), each node itself included
    dist = np.linalg.norm(points[:, None, :] - points[candidates], axis=-1)  # (n, m)
    dist[candidates == np.arange(n)[:, None]] = np.inf
    ranked = np.lexsort((candidates, dist), axis=-1)[:, :k]  # (n, k): by distance, then node id
    nearest = np.take_along_axis(candidates, ranked, axis=-1).ravel()  # (n k,)
    source = np.repeat(np.arange(n), k)  # (n k,)
    pairs = np.unique(np.stack([np.minimum(source, nearest), np.maximum(source, nearest)], axis=1), axis=0)
    return _geometric_graph(points, pairs, {"k": k})


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
    """Relabel to 0..n-1 in sorted node order and insert links sorted, keeping only ``pos``.

    A graph its generator built canonical (``graph.graph["canonical"]``) is kept as it is,
    less its graph attributes: relabelling 100,000 nodes would cost more than drawing them.
    """
    if graph.graph.get("canonical"):
        graph.graph.clear()
        return graph
    mapping = {v: i for i, v in enumerate(sorted(graph))}
    out = nx.Graph()
    for v, i in mapping.items():
        pos = graph.nodes[v].get("pos")
        out.add_node(i, **({"pos": tuple(float(x) for x in pos)} if pos is not None else {}))
    out.add_edges_from(sorted(tuple(sorted((mapping[u], mapping[v]))) for u, v in graph.edges))
    return out


def generate(spec: TopologySpec, topo_seed: int) -> nx.Graph:
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
        params = raw.graph.get("params", {})
        graph = _canonical(raw)
        if not spec.ensure_connected or nx.is_connected(graph):
            return graph
    raise TopologyError(f"topology.generator: {spec.generator!r} with n_nodes={n} and params "
                        f"{params} gave a disconnected graph in {MAX_DRAWS} seeded draws; "
                        f"{fix} or set topology.ensure_connected: false")

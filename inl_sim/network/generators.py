"""Seeded topology generators: (n_nodes, params, seed) -> an undirected graph on 0..n-1.

Each entry of :data:`GENERATORS` is one function plus the hint shown when its draws stay
disconnected; a new generator is one function and one entry here.  :func:`generate`
draws, relabels canonically and redraws with derived seeds until connected if asked.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import networkx as nx
import numpy as np

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
        graph = _canonical(raw)
        if not spec.ensure_connected or nx.is_connected(graph):
            return graph
    raise TopologyError(f"topology.generator: {spec.generator!r} with n_nodes={n} and params "
                        f"{raw.graph.get('params', {})} gave a disconnected graph in {MAX_DRAWS} seeded draws; "
                        f"{fix} or set topology.ensure_connected: false")

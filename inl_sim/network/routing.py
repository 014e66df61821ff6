"""Training graphs: which directed links carry messages during training.

Pure functions over a :class:`~inl_sim.network.Network`.  Two modes, plus the control
trees of :mod:`inl_sim.network.trees` (``bfs``, ``random_tree``, ``mst``):

* ``dense`` (INL): every usable link, oriented from the endpoint farther from the fusion
  node (by routing distance) to the nearer one, so the graph is a DAG toward the fusion
  node.  Links between equally distant nodes are kept by default, oriented by the total
  order (distance, depth, node order); ``dense_ties: drop`` drops them.
* ``spt`` (D-INL): only the shortest-path tree rooted at the fusion node, computed by
  networkx's Dijkstra on the chosen edge cost.

Nodes that neither sense nor receive anything are pruned: they would send nothing.
One Dijkstra (predecessors, not paths) and linear passes: O(V + E log V) time, O(V + E)
memory; the graphs are those of 0.1's path-based, O(V * E) assembly (tests/test_scale.py).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

import networkx as nx

from inl_sim.errors import RoutingError
from inl_sim.network.gcpause import paused_gc
from inl_sim.network.trees import TREES, tree_keys

__all__ = ["TrainingGraph", "TRAINING_GRAPHS", "Routes", "Candidate", "EDGE_COSTS", "edge_cost_function",
           "build_training_graph", "routing_distances", "routing_tree"]

NodeId = Hashable
CostFunction = Callable[[NodeId, NodeId, Mapping[str, Any]], float]


def _payload_over_capacity(payload_bits: float) -> CostFunction:
    return lambda u, v, d: payload_bits / d["capacity_bps"]


EDGE_COSTS: dict[str, Callable[[float], CostFunction]] = {
    "payload_over_capacity": _payload_over_capacity,
    "inv_capacity": lambda _bits: (lambda u, v, d: 1.0 / d["capacity_bps"]),
    "hops": lambda _bits: (lambda u, v, d: 1.0),
    "latency": lambda _bits: (lambda u, v, d: d["latency_s"]),
}


@dataclass(frozen=True)
class TrainingGraph:
    """The directed links used for training and the order nodes process in.

    ``edges`` are (child, parent) pairs: activations flow child -> parent, errors flow
    back parent -> child over the same link.  ``order`` lists live nodes so that every
    node comes after all its children (leaves first, fusion last).
    """

    mode: str
    fusion: NodeId
    sensors: tuple[NodeId, ...]
    order: tuple[NodeId, ...]
    edges: tuple[tuple[NodeId, NodeId], ...]
    parents: Mapping[NodeId, tuple[NodeId, ...]]
    children: Mapping[NodeId, tuple[NodeId, ...]]
    distance: Mapping[NodeId, float]

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def to_dict(self) -> dict:
        """JSON-friendly description (written next to the results)."""
        return {
            "mode": self.mode, "fusion": self.fusion, "sensors": list(self.sensors),
            "order": list(self.order), "edges": [list(e) for e in self.edges],
            "distance": {str(k): v for k, v in self.distance.items()},
        }


def edge_cost_function(cost: str | CostFunction, payload_bits: float) -> CostFunction:
    """Resolve ``routing.cost`` to a networkx weight callable ``(u, v, attrs) -> cost``.

    A user callable is used as given, like networkx's own ``weight=`` argument.
    """
    if callable(cost):
        return cost
    if cost not in EDGE_COSTS:
        raise RoutingError(f"routing.cost: {cost!r} is not a known edge cost; "
                           f"choose one of {sorted(EDGE_COSTS)} or pass a callable (u, v, attrs) -> float")
    return EDGE_COSTS[cost](payload_bits)


def routing_distances(graph: nx.Graph, fusion: NodeId, weight: CostFunction) -> tuple[dict, dict]:
    """Dijkstra distances and paths from every node to ``fusion`` (graph is undirected).

    Paths cost O(V * depth) memory; :func:`build_training_graph` uses
    :func:`routing_tree` (O(V + E)) instead.
    """
    return nx.single_source_dijkstra(graph, fusion, weight=_checked(weight))


def routing_tree(graph: nx.Graph, fusion: NodeId, weight: CostFunction) -> tuple[dict, dict, dict]:
    """One Dijkstra from ``fusion``: distances, tree parents and hop depths, O(V + E) memory.

    ``parent[v]`` is networkx's own path parent (``single_source_dijkstra``'s ``paths[v][-2]``,
    the first predecessor found at v's final distance) and ``depth[v]`` its path's hop
    count; ``dist`` lists nodes in the order Dijkstra settled them, parents first.
    """
    return _tree(graph, fusion, _checked(weight))


def _tree(graph: nx.Graph, fusion: NodeId, checked: CostFunction) -> tuple[dict, dict, dict]:
    pred, dist = nx.dijkstra_predecessor_and_distance(graph, fusion, weight=checked)
    parent = {v: pred[v][0] for v in dist if v != fusion}
    depth = {fusion: 0}
    for v in parent:  # settle order: a parent's depth is known before its children's
        depth[v] = depth[parent[v]] + 1
    return dist, parent, depth


def _checked(weight: CostFunction) -> CostFunction:
    def checked(u: NodeId, v: NodeId, d: Mapping[str, Any]) -> float:
        w = weight(u, v, d)
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or w != w or w < 0:
            raise RoutingError(f"routing.cost: edge ({u}, {v}) has cost {w!r}; "
                               "edge costs must be non-negative numbers (Dijkstra's rule)")
        return float(w)
    return checked


@dataclass(frozen=True)
class Routes:
    """What every training-graph builder starts from: one Dijkstra from the fusion node.

    ``dist``, ``tree`` (child -> parent) and ``key`` (distance, depth, node order: the
    processing order, larger first) cover the nodes that reach the fusion node;
    ``weight`` is the checked edge cost and ``seed`` the run seed (for seeded builders).
    """

    graph: nx.Graph
    fusion: NodeId
    dist: Mapping[NodeId, float]
    tree: Mapping[NodeId, NodeId]
    key: Mapping[NodeId, tuple]
    weight: CostFunction
    dense_ties: str = "keep"
    seed: int = 0


#: a builder's answer: candidate (child, parent) links, and the distance and order key
#: of each node (a builder may keep ``routes.dist`` and ``routes.key`` or give its own).
Candidate = tuple[list, Mapping[NodeId, float], Mapping[NodeId, tuple]]


def _tree_edges(routes: Routes) -> Candidate:
    """D-INL: the shortest-path tree's (child, parent) links."""
    return list(routes.tree.items()), routes.dist, routes.key


def _dense_edges(routes: Routes) -> Candidate:
    """Orient every reachable link from the larger (distance, depth, order) key to the smaller."""
    dist, key, tree = routes.dist, routes.key, routes.tree
    if routes.dense_ties not in ("drop", "keep"):
        raise RoutingError(f"routing.dense_ties: {routes.dense_ties!r} is not allowed; choose 'drop' or 'keep'")
    drop = routes.dense_ties == "drop"
    edges = []
    for u, v in routes.graph.edges:
        if u not in dist or v not in dist:
            continue
        child, parent = (u, v) if key[u] > key[v] else (v, u)
        if drop and dist[u] == dist[v] and tree.get(child) != parent:
            continue
        edges.append((child, parent))
    return edges, dist, key


#: routing.mode -> builder(routes) -> (candidate links, dist, key); a new training graph is
#: one function and one entry here (nodes with nothing to send are pruned after).
def _control_tree(name: str) -> Callable[[Routes], Candidate]:
    """A control spanning tree of :data:`inl_sim.network.trees.TREES`, with distances and
    order measured along the tree itself."""
    def build(routes: Routes) -> Candidate:
        parents = TREES[name](routes.graph, routes.fusion, seed=routes.seed)
        dist, key = tree_keys(parents, routes.fusion, routes.weight, routes.graph)
        return list(parents.items()), dist, key
    build.__name__ = f"_{name}_edges"
    return build


TRAINING_GRAPHS: dict[str, Callable[[Routes], Candidate]] = {
    "dense": _dense_edges,
    "spt": _tree_edges,
    **{name: _control_tree(name) for name in TREES},
}


def build_training_graph(network: Any, mode: str, *, cost: str | CostFunction = "payload_over_capacity",
                         payload_bits: float = 256.0, dense_ties: str = "keep", seed: int = 0) -> TrainingGraph:
    """Build the dense DAG or the shortest-path tree of ``network``.

    One Dijkstra and linear passes: O(V + E log V) time, O(V + E) memory.

    Parameters
    ----------
    network
        A :class:`~inl_sim.network.Network` (graph, fusion, sensors).
    mode
        A key of :data:`TRAINING_GRAPHS`: ``"dense"``, ``"spt"`` or a control tree of
        :data:`inl_sim.network.trees.TREES` (``"bfs"``, ``"random_tree"``, ``"mst"``).
    cost, payload_bits
        Dijkstra edge cost; ``payload_bits`` is the message size that
        ``payload_over_capacity`` divides by each link's capacity.
    dense_ties
        ``"keep"`` (default; oriented by (distance, depth, node order)) or ``"drop"``
        links between equally distant nodes in dense mode.
    seed
        Run seed; ``random_tree`` draws from its own stream derived from it.
    """
    graph, fusion = network.graph, network.fusion
    if mode not in TRAINING_GRAPHS:
        raise RoutingError(f"routing.mode: {mode!r} is not a training graph; choose one of "
                           f"{', '.join(repr(m) for m in TRAINING_GRAPHS)}")
    weight = _checked(edge_cost_function(cost, payload_bits))
    with paused_gc():
        dist, tree, depth = _tree(graph, fusion, weight)
        for s in network.sensors:
            if s not in dist:
                raise RoutingError(f"sensor {s!r} cannot reach fusion node {fusion!r}; "
                                   "connect it (add a link) or remove it from topology.sensors")
        key = {v: (dist[v], depth[v], i) for i, v in enumerate(graph.nodes) if v in dist}
        candidate, dist, key = TRAINING_GRAPHS[mode](Routes(graph, fusion, dist, tree, key, weight, dense_ties, seed))
        return _assemble(mode, fusion, tuple(network.sensors), candidate, key, dist)


def _assemble(mode: str, fusion: NodeId, sensors: tuple, candidate: list, key: dict, dist: dict) -> TrainingGraph:
    """Prune nodes with nothing to send and fix the processing order (O(E + V log V))."""
    sensor_set = set(sensors)
    incoming: dict[NodeId, list] = {}
    for child, parent in candidate:
        incoming.setdefault(parent, []).append(child)
    live: set = set()
    for v in sorted(key, key=key.__getitem__, reverse=True):  # children before parents
        if v in sensor_set or any(c in live for c in incoming.get(v, ())):
            live.add(v)
    live.add(fusion)
    order = tuple(sorted(live, key=key.__getitem__, reverse=True))
    position = {v: i for i, v in enumerate(order)}
    edges = tuple(sorted(((c, p) for c, p in candidate if c in live),
                         key=lambda e: (position[e[0]], position[e[1]])))
    parents: dict[NodeId, list] = {v: [] for v in order}
    children: dict[NodeId, list] = {v: [] for v in order}
    for c, p in edges:  # edges are sorted, so each list comes out in edge order
        parents[c].append(p)
        children[p].append(c)
    return TrainingGraph(mode, fusion, sensors, order, edges,
                         {v: tuple(ps) for v, ps in parents.items()},
                         {v: tuple(cs) for v, cs in children.items()}, {v: dist[v] for v in order})

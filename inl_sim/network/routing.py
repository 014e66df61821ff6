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
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

import networkx as nx

from inl_sim.errors import RoutingError
from inl_sim.network.trees import TREES, tree_keys

__all__ = ["TrainingGraph", "EDGE_COSTS", "edge_cost_function", "build_training_graph", "routing_distances"]

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
    """Dijkstra distances and paths from every node to ``fusion`` (graph is undirected)."""
    def checked(u: NodeId, v: NodeId, d: Mapping[str, Any]) -> float:
        w = weight(u, v, d)
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or w != w or w < 0:
            raise RoutingError(f"routing.cost: edge ({u}, {v}) has cost {w!r}; "
                               "edge costs must be non-negative numbers (Dijkstra's rule)")
        return float(w)
    return nx.single_source_dijkstra(graph, fusion, weight=checked)


def build_training_graph(network: Any, mode: str, *, cost: str | CostFunction = "payload_over_capacity",
                         payload_bits: float = 256.0, dense_ties: str = "keep", seed: int = 0) -> TrainingGraph:
    """Build the dense DAG or the shortest-path tree of ``network``.

    Parameters
    ----------
    network
        A :class:`~inl_sim.network.Network` (graph, fusion, sensors).
    mode
        ``"dense"``, ``"spt"`` or a control tree of :data:`inl_sim.network.trees.TREES`
        (``"bfs"``, ``"random_tree"``, ``"mst"``).
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
    dist, paths = routing_distances(graph, fusion, edge_cost_function(cost, payload_bits))
    for s in network.sensors:
        if s not in dist:
            raise RoutingError(f"sensor {s!r} cannot reach fusion node {fusion!r}; "
                               "connect it (add a link) or remove it from topology.sensors")
    tree = {v: p[-2] for v, p in paths.items() if v != fusion}
    depth = {v: len(p) - 1 for v, p in paths.items()}
    rank = {v: i for i, v in enumerate(graph.nodes)}
    key = {v: (dist[v], depth[v], rank[v]) for v in dist}
    if mode == "spt":
        candidate = [(v, p) for v, p in tree.items()]
    elif mode == "dense":
        candidate = _dense_edges(graph, dist, key, tree, dense_ties)
    elif mode in TREES:  # control trees: distances and order along the tree itself
        parents = TREES[mode](graph, fusion, seed=seed)
        dist, key = tree_keys(parents, fusion, edge_cost_function(cost, payload_bits), graph)
        candidate = list(parents.items())
    else:
        raise RoutingError(f"routing.mode: {mode!r} is not a training graph; choose one of "
                           f"{['dense', 'spt', *TREES]}")
    return _assemble(mode, fusion, tuple(network.sensors), candidate, key, dist)


def _dense_edges(graph: nx.Graph, dist: dict, key: dict, tree: dict, dense_ties: str) -> list:
    """Orient every reachable link from the larger (distance, depth, order) key to the smaller."""
    if dense_ties not in ("drop", "keep"):
        raise RoutingError(f"routing.dense_ties: {dense_ties!r} is not allowed; choose 'drop' or 'keep'")
    edges = []
    for u, v in graph.edges:
        if u not in dist or v not in dist:
            continue
        child, parent = (u, v) if key[u] > key[v] else (v, u)
        is_tree_edge = tree.get(child) == parent
        if dist[u] == dist[v] and dense_ties == "drop" and not is_tree_edge:
            continue
        edges.append((child, parent))
    return edges


def _assemble(mode: str, fusion: NodeId, sensors: tuple, candidate: list, key: dict, dist: dict) -> TrainingGraph:
    """Prune nodes with nothing to send and fix the processing order."""
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
    parents = {v: tuple(p for c, p in edges if c == v) for v in order}
    children = {v: tuple(c for c, p in edges if p == v) for v in order}
    return TrainingGraph(mode, fusion, sensors, order, edges,
                         parents, children, {v: dist[v] for v in order})

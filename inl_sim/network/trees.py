"""Spanning trees other than Dijkstra's, as controls for D-INL's training graph.

D-INL keeps the shortest-path tree; any tree with n - 1 links gives the same exchange
(n - 1 messages per step), so to separate "a tree" from "*this* tree" a study compares
against other spanning trees of the same network:

* ``bfs``: the hop-count shortest-path tree (breadth-first from the fusion node,
  neighbours visited in the stable node order, so ties go to the earliest node);
* ``random_tree``: a uniform random spanning tree (networkx's ``random_spanning_tree``
  with ``weight=None``), drawn from its own seed stream derived from the run seed;
* ``mst``: the maximum-capacity spanning tree (networkx's ``maximum_spanning_tree`` on
  ``capacity_bps``; Kruskal, ties by edge order).

Every builder returns a parent map ``{child: parent}`` over the fusion node's
connected component; :mod:`inl_sim.network.routing` orients it toward the fusion node
and prunes nodes with nothing to send, exactly as for ``spt``.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

import networkx as nx
import numpy as np

from inl_sim.errors import RoutingError

__all__ = ["TREES", "TreeBuilder", "random_tree_seed", "tree_keys"]

NodeId = Hashable
TreeBuilder = Callable[..., dict]

RANDOM_TREE_STREAM = 0x7EE5  # spawn key of the random-tree stream: independent of data and weights


def _component(graph: nx.Graph, fusion: NodeId) -> nx.Graph:
    return graph.subgraph(nx.node_connected_component(graph, fusion))


def _parents_from_tree(tree: nx.Graph, fusion: NodeId) -> dict:
    """Orient an undirected spanning tree toward ``fusion``: {child: parent}."""
    return {child: parent for parent, child in nx.bfs_edges(tree, fusion)}


def bfs_tree(graph: nx.Graph, fusion: NodeId, *, seed: int = 0) -> dict:
    """Hop-count shortest-path tree; a node's parent is its first-visited neighbour one hop nearer."""
    rank = {v: i for i, v in enumerate(graph.nodes)}
    return dict(nx.bfs_predecessors(graph, fusion, sort_neighbors=lambda ns: sorted(ns, key=rank.__getitem__)))


def random_tree_seed(seed: int) -> int:
    """The integer seed networkx gets for run seed ``seed`` (its own stream, reproducible)."""
    return int(np.random.SeedSequence([int(seed), RANDOM_TREE_STREAM]).generate_state(1)[0])


def random_tree(graph: nx.Graph, fusion: NodeId, *, seed: int = 0) -> dict:
    """Uniform random spanning tree of the fusion node's component (seeded)."""
    component = _component(graph, fusion)
    if component.number_of_nodes() == 1:
        return {}
    tree = nx.random_spanning_tree(component, weight=None, seed=random_tree_seed(seed))
    return _parents_from_tree(tree, fusion)


def max_capacity_tree(graph: nx.Graph, fusion: NodeId, *, seed: int = 0) -> dict:
    """Maximum spanning tree on ``capacity_bps`` (the widest links), oriented to the fusion node."""
    component = _component(graph, fusion)
    return _parents_from_tree(nx.maximum_spanning_tree(component, weight="capacity_bps"), fusion)


TREES: dict[str, TreeBuilder] = {
    "bfs": bfs_tree,
    "random_tree": random_tree,
    "mst": max_capacity_tree,
}


def tree_keys(parents: Mapping[NodeId, NodeId], fusion: NodeId, weight: Callable[[Any, Any, Any], float],
              graph: nx.Graph) -> tuple[dict, dict]:
    """Distance along the tree (with the routing cost) and the ordering key of every node.

    The key ``(tree distance, tree depth, node order)`` grows strictly from parent to
    child, so sorting by it puts every child before its parent (what the engine needs),
    as Dijkstra's key does for ``spt``.
    """
    rank = {v: i for i, v in enumerate(graph.nodes)}
    dist, depth = {fusion: 0.0}, {fusion: 0}

    def resolve(v: NodeId) -> None:
        chain = []
        while v not in dist:
            chain.append(v)
            v = parents[v]
        for u in reversed(chain):
            p = parents[u]
            dist[u] = dist[p] + float(weight(u, p, graph.edges[u, p]))
            depth[u] = depth[p] + 1

    for v in parents:
        if v not in graph or parents[v] not in graph or not graph.has_edge(v, parents[v]):
            raise RoutingError(f"training tree: ({v!r}, {parents[v]!r}) is not a link of the network; "
                               "a tree builder must return links of the graph it was given")
        resolve(v)
    return dist, {v: (dist[v], depth[v], rank[v]) for v in dist}

"""Sensor <-> fusion routes: the multi-hop paths that paradigms other than INL send over.

Centralised, federated and split learning move whole messages between each sensor and
the fusion (server) node.  They follow the routing cost's shortest-path tree (the same
Dijkstra as D-INL's training graph, :func:`~inl_sim.network.routing.build_training_graph`
with mode ``spt``), so every paradigm on a network uses the same routes; on a tree the
routes are the unique paths.  Pure functions; never touches a tensor.
"""

from __future__ import annotations

from typing import Hashable

from inl_sim.network.routing import TrainingGraph

__all__ = ["sensor_routes", "route_hops"]

NodeId = Hashable


def sensor_routes(tree: TrainingGraph) -> dict[NodeId, tuple[NodeId, ...]]:
    """Each sensor's path up the tree to the fusion node: ``(sensor, ..., fusion)``.

    ``tree`` must give every node one parent (an ``spt`` training graph); intermediate
    nodes are relays that store and forward.
    """
    routes = {}
    for s in tree.sensors:
        path = [s]
        while path[-1] != tree.fusion:
            parents = tree.parents[path[-1]]
            if len(parents) != 1:
                raise ValueError(f"internal: node {path[-1]!r} has {len(parents)} parents; routes need a tree "
                                 "(build the training graph with mode 'spt')")
            path.append(parents[0])
        routes[s] = tuple(path)
    return routes


def route_hops(routes: dict[NodeId, tuple[NodeId, ...]]) -> dict[NodeId, int]:
    """Number of links each sensor's route crosses."""
    return {s: len(path) - 1 for s, path in routes.items()}

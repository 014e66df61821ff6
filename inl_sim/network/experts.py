"""Where a bank of experts sits on the network, and the routes its traffic takes.

Three roles: the *router* node (sees each sample and gates it), K *expert* nodes, and
the network's *fusion* node (collects the experts' outputs and the router's choices).
Routes are Dijkstra paths of networkx under ``routing.cost`` (the edge costs of
:mod:`inl_sim.network.routing`), so each message crosses the network hop by hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

import networkx as nx
import numpy as np

from inl_sim.errors import TopologyError
from inl_sim.network.build import Network
from inl_sim.network.routing import CostFunction, edge_cost_function
from inl_sim.scenario.experts import ExpertsSpec

__all__ = ["ExpertPlacement", "place_experts"]

NodeId = Hashable


@dataclass(frozen=True)
class ExpertPlacement:
    """The roles and the node paths of every kind of message (paths include both ends)."""

    router: NodeId
    experts: tuple[NodeId, ...]
    fusion: NodeId
    to_expert: tuple[tuple[NodeId, ...], ...]     # router -> expert k
    to_fusion: tuple[tuple[NodeId, ...], ...]     # expert k -> fusion
    choice: tuple[NodeId, ...]                    # router -> fusion (the coded choices)

    def hops(self) -> dict[str, list[int]]:
        return {"to_expert": [len(p) - 1 for p in self.to_expert], "to_fusion": [len(p) - 1 for p in self.to_fusion],
                "choice": [len(self.choice) - 1]}


def _router(network: Network, spec: ExpertsSpec) -> NodeId:
    if spec.router is not None:
        return _known(network, spec.router, "experts.router")
    others = [v for v in network.graph.nodes if v != network.fusion]
    return network.sensors[0] if network.sensors else others[0]


def _known(network: Network, node: object, field: str) -> NodeId:
    for v in network.graph.nodes:
        if v == node or str(v) == str(node):
            return v
    raise TopologyError(f"{field}: {node!r} is not a node of the topology ({network.graph.number_of_nodes()} "
                        f"nodes, e.g. {list(network.graph.nodes)[:5]}); use an id from the topology")


def _expert_nodes(network: Network, spec: ExpertsSpec, router: NodeId, seed: int) -> tuple[NodeId, ...]:
    if spec.nodes:
        nodes = tuple(_known(network, v, "experts.nodes") for v in spec.nodes)
        if router in nodes:
            raise TopologyError(f"experts.nodes: {list(spec.nodes)} holds the router {router!r}; "
                                "put the experts on other nodes (the router sends to them)")
        return nodes
    order = {v: i for i, v in enumerate(network.graph.nodes)}
    candidates = [v for v in network.graph.nodes if v not in (router, network.fusion)]
    if len(candidates) < spec.n_experts:
        raise TopologyError(f"experts.n_experts: {spec.n_experts} experts but only {len(candidates)} nodes besides "
                            f"the router and the fusion node; lower n_experts or use a larger topology")
    if spec.placement == "random":
        pick = np.random.default_rng(seed).choice(len(candidates), spec.n_experts, replace=False)
        return tuple(candidates[i] for i in sorted(pick.tolist()))
    hops = nx.single_source_shortest_path_length(network.graph, router)
    return tuple(sorted(candidates, key=lambda v: (-hops.get(v, -1), order[v]))[:spec.n_experts])


def _path(graph: nx.Graph, src: NodeId, dst: NodeId, weight: CostFunction) -> tuple[NodeId, ...]:
    try:
        return tuple(nx.dijkstra_path(graph, src, dst, weight=weight))
    except nx.NetworkXNoPath:
        raise TopologyError(f"experts: node {dst!r} cannot be reached from {src!r}; connect the topology "
                            "(topology.ensure_connected: true) or place the experts elsewhere") from None


def place_experts(network: Network, spec: ExpertsSpec, *, cost: str | CostFunction = "hops",
                  payload_bits: float = 0.0, seed: int = 0) -> ExpertPlacement:
    """Choose the router and expert nodes and route router -> experts -> fusion.

    Parameters
    ----------
    network
        The built network (its fusion node collects the outputs).
    spec
        The ``experts`` section: explicit ``nodes`` or a ``placement`` rule, ``router``.
    cost, payload_bits
        Edge cost of the routes, as ``routing.cost`` (see :mod:`inl_sim.network.routing`).
    seed
        For ``placement: random``.
    """
    router = _router(network, spec)
    experts = _expert_nodes(network, spec, router, seed)
    weight = edge_cost_function(cost, payload_bits)
    g = network.graph
    return ExpertPlacement(router, experts, network.fusion,
                           tuple(_path(g, router, e, weight) for e in experts),
                           tuple(_path(g, e, network.fusion, weight) for e in experts),
                           _path(g, router, network.fusion, weight))

"""Tests of inl_sim.network.routing: shortest-path trees, dense DAGs, ties, pruning and errors.

The oracle is networkx itself, called here with weight functions written in this file:
the D-INL tree must be the parent map of ``nx.single_source_dijkstra``'s paths, and the
dense DAG must orient every link from the farther endpoint to the nearer one by those
same distances.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable

import networkx as nx
import numpy as np
import pytest

from inl_sim.errors import InlSimError, RoutingError
from inl_sim.network import Network, build_network
from inl_sim.network.routing import build_training_graph
from inl_sim.scenario import load_scenario

from conftest import MESH9, explicit_topology, tiny_scenario

PAYLOAD_BITS = 8 * 32  # latent_dim 8, float32

# The oracle's own edge costs, written from the definitions in METHOD.md.
ORACLE_COSTS: dict[str, Callable[[Any, Any, dict], float]] = {
    "payload_over_capacity": lambda u, v, d: PAYLOAD_BITS / d["capacity_bps"],
    "inv_capacity": lambda u, v, d: 1.0 / d["capacity_bps"],
    "hops": lambda u, v, d: 1.0,
    "latency": lambda u, v, d: d["latency_s"],
}


def user_cost(u: Any, v: Any, d: dict) -> float:
    """A user callable mixing latency and transmission time of a 64-sample batch."""
    return d["latency_s"] + 64 * PAYLOAD_BITS / d["capacity_bps"]


COSTS = [*ORACLE_COSTS, "callable"]

RANDOM_LINKS = {"capacity_bps": {"uniform": [1.0e6, 1.0e8]}, "latency_s": {"uniform": [1.0e-4, 5.0e-3]}}
TOPOLOGIES: dict[str, dict] = {
    "mesh9": {"file": str(MESH9)},
    "abilene": {"file": "abilene.graphml"},
    **{f"random_geometric-{s}": {"generator": "random_geometric", "n_nodes": 14, "params": {"radius": 0.45},
                                 "seed": s, **RANDOM_LINKS} for s in (1, 2)},
    **{f"waxman-{s}": {"generator": "waxman", "n_nodes": 12, "params": {"alpha": 0.6, "beta": 0.6},
                       "seed": s, **RANDOM_LINKS} for s in (3, 4)},
    **{f"knn-{s}": {"generator": "knn", "n_nodes": 13, "params": {"k": 3}, "seed": s, **RANDOM_LINKS}
       for s in (5, 6)},
    "grid": {"generator": "grid", "n_nodes": 12, "params": {"rows": 3, "cols": 4}, "seed": 7, **RANDOM_LINKS},
    "grid-constant": {"generator": "grid", "n_nodes": 16, "seed": 8},
    "balanced_tree": {"generator": "balanced_tree", "n_nodes": 15, "seed": 9, **RANDOM_LINKS},
}


def network_of(topology: dict) -> Network:
    return build_network(load_scenario(tiny_scenario(topology)).topology, seed=0)


def weight_of(cost: str) -> Callable:
    return user_cost if cost == "callable" else ORACLE_COSTS[cost]


def routing_cost(cost: str) -> Any:
    return user_cost if cost == "callable" else cost


def oracle_tree(graph: nx.Graph, fusion: Any, cost: str) -> tuple[dict, set]:
    """Distances and the (child, parent) edges of networkx's own Dijkstra tree."""
    dist, paths = nx.single_source_dijkstra(graph, fusion, weight=weight_of(cost))
    return dist, {(v, p[-2]) for v, p in paths.items() if v != fusion}


def digraph(edges: Any) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_edges_from(edges)
    return g


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def network(request: pytest.FixtureRequest) -> Network:
    return network_of(TOPOLOGIES[request.param])


# --------------------------------------------------------------------------- trees and DAGs

@pytest.mark.parametrize("cost", COSTS)
def test_spt_is_networkx_dijkstra_tree(network: Network, cost: str) -> None:
    assert set(network.sensors) == set(network.graph) - {network.fusion}, "fixture: every non-fusion node senses"
    tg = build_training_graph(network, "spt", cost=routing_cost(cost), payload_bits=PAYLOAD_BITS)
    _, expected = oracle_tree(network.graph, network.fusion, cost)
    assert set(tg.edges) == expected
    assert len(tg.edges) == network.graph.number_of_nodes() - 1
    assert nx.is_arborescence(digraph(tg.edges).reverse())


@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("ties", ["drop", "keep"])
def test_dense_dag_orients_links_toward_the_fusion_node(network: Network, cost: str, ties: str) -> None:
    graph, fusion = network.graph, network.fusion
    tg = build_training_graph(network, "dense", cost=routing_cost(cost), payload_bits=PAYLOAD_BITS,
                              dense_ties=ties)
    dist, tree = oracle_tree(graph, fusion, cost)
    dag = digraph(tg.edges)
    assert nx.is_directed_acyclic_graph(dag)
    # Independent expectation: every link between endpoints at different distances, far -> near;
    # links between equally distant endpoints only when kept (or when they are tree links).
    far_to_near = {(u, v) if dist[u] > dist[v] else (v, u) for u, v in graph.edges if dist[u] != dist[v]}
    tied = {frozenset(e) for e in graph.edges if dist[e[0]] == dist[e[1]]}
    assert far_to_near <= set(tg.edges)
    extra = {frozenset(e) for e in tg.edges} - {frozenset(e) for e in far_to_near}
    if ties == "keep":
        assert extra == tied and len(tg.edges) == graph.number_of_edges()
    else:
        assert extra == {frozenset(e) for e in tree if frozenset(e) in tied}
    for child, parent in tg.edges:
        assert dist[child] >= dist[parent], f"dense edge {child}->{parent} goes away from the fusion node"
    assert tree <= set(tg.edges), "the dense DAG contains the shortest-path tree"


@pytest.mark.parametrize("mode", ["dense", "spt"])
@pytest.mark.parametrize("cost", COSTS)
def test_every_sensor_reaches_fusion_and_order_is_topological(network: Network, mode: str, cost: str) -> None:
    tg = build_training_graph(network, mode, cost=routing_cost(cost), payload_bits=PAYLOAD_BITS)
    dag = digraph(tg.edges)
    for s in network.sensors:
        assert nx.has_path(dag, s, network.fusion), f"sensor {s!r} cannot reach the fusion node in {mode}"
    assert tg.order[-1] == network.fusion
    assert sorted(tg.order, key=str) == sorted(dag.nodes, key=str)
    position = {v: i for i, v in enumerate(tg.order)}
    assert all(position[c] < position[p] for c, p in tg.edges)
    assert set(tg.edges) == {(c, p) for c in tg.order for p in tg.parents[c]}
    assert set(tg.edges) == {(c, p) for p in tg.order for c in tg.children[p]}


def test_scenario_callable_cost_reaches_routing() -> None:
    """``routing.cost`` may be a callable in a dict scenario, as networkx's ``weight=``."""
    from inl_sim.study.experiment import prepare
    setup = prepare(load_scenario(tiny_scenario(routing={"mode": "spt", "cost": user_cost})), 0)
    _, expected = oracle_tree(setup.network.graph, setup.network.fusion, "callable")
    assert set(setup.graph.edges) == expected


# --------------------------------------------------------------------------- mesh9, the paper's figure

def test_mesh9_gives_the_papers_70_4_percent() -> None:
    net = network_of({"file": str(MESH9)})
    assert net.sensors == tuple(range(1, 9)) and net.fusion == 0
    spt = build_training_graph(net, "spt", payload_bits=PAYLOAD_BITS)
    dense = build_training_graph(net, "dense", payload_bits=PAYLOAD_BITS)
    assert (spt.n_edges, dense.n_edges) == (8, 27)
    ratio = Fraction(spt.n_edges, dense.n_edges)
    assert ratio == Fraction(8, 27)
    assert round(100 * float(1 - ratio), 1) == 70.4


# --------------------------------------------------------------------------- hand-made graphs

EQUAL = {"capacity_bps": 1.0e7, "latency_s": 1.0e-3}


def square_with_chord() -> Network:
    """0-1-2-3-0 plus the chord 1-3: nodes 1 and 3 are both one link from fusion 0."""
    edges = [[0, 1, EQUAL], [1, 2, EQUAL], [2, 3, EQUAL], [3, 0, EQUAL], [1, 3, EQUAL]]
    return network_of(explicit_topology(edges, nodes=[0, 1, 2, 3]))


@pytest.mark.parametrize("cost", COSTS)
def test_dense_ties_drop_and_keep_exact_edges(cost: str) -> None:
    net = square_with_chord()
    dropped = build_training_graph(net, "dense", cost=routing_cost(cost), dense_ties="drop")
    kept = build_training_graph(net, "dense", cost=routing_cost(cost), dense_ties="keep")
    assert set(dropped.edges) == {(1, 0), (3, 0), (2, 1), (2, 3)}
    # kept: the tied link is oriented by the stable node order, the later node sends.
    assert set(kept.edges) == {(1, 0), (3, 0), (2, 1), (2, 3), (3, 1)}
    assert kept.order == (2, 3, 1, 0)
    # D-INL on the same graph: node 2's two equal paths; networkx's Dijkstra keeps the first.
    spt = build_training_graph(net, "spt", cost=routing_cost(cost))
    assert set(spt.edges) == {(1, 0), (3, 0), (2, 1)}


def test_four_cycle_has_no_tied_link_and_spt_tie_goes_to_node_order() -> None:
    edges = [[0, 1, EQUAL], [1, 2, EQUAL], [2, 3, EQUAL], [3, 0, EQUAL]]
    net = network_of(explicit_topology(edges, nodes=[0, 1, 2, 3]))
    for ties in ("drop", "keep"):
        dense = build_training_graph(net, "dense", dense_ties=ties)
        assert set(dense.edges) == {(1, 0), (3, 0), (2, 1), (2, 3)}
    assert set(build_training_graph(net, "spt").edges) == {(1, 0), (3, 0), (2, 1)}


def test_relays_with_nothing_to_send_are_pruned() -> None:
    """Sensor 3 behind relays 2 and 1; node 4 is a relay leaf; node 5 a relay hanging off 4."""
    edges = [[0, 1, EQUAL], [1, 2, EQUAL], [2, 3, EQUAL], [0, 4, EQUAL], [4, 5, EQUAL], [1, 4, EQUAL]]
    net = network_of(explicit_topology(edges, nodes=[0, 1, 2, 3, 4, 5], sensors=[3]))
    assert net.sensors == (3,)
    spt = build_training_graph(net, "spt")
    assert set(spt.edges) == {(3, 2), (2, 1), (1, 0)}
    assert set(spt.order) == {0, 1, 2, 3}
    dense = build_training_graph(net, "dense")
    # 1-4 joins two nodes at distance 1: dropped; nothing reaches 4 or 5, so they send nothing.
    assert set(dense.edges) == {(3, 2), (2, 1), (1, 0)}
    assert 4 not in dense.order and 5 not in dense.order
    kept = build_training_graph(net, "dense", dense_ties="keep")
    # kept, 1-4 is oriented 4 -> 1: 4 still receives nothing, so it stays pruned.
    assert set(kept.edges) == {(3, 2), (2, 1), (1, 0)}


@pytest.mark.parametrize("name", ["random_geometric-1", "waxman-3", "knn-5", "abilene"])
def test_pruning_matches_sensor_paths_on_generated_graphs(name: str) -> None:
    """With a few sensors only, the tree is the union of their Dijkstra paths, and the dense
    DAG keeps exactly the links whose child a sensor can reach in the unpruned DAG."""
    full = network_of(TOPOLOGIES[name])
    others = [v for v in full.graph if v != full.fusion]
    sensors = others[:: max(1, len(others) // 3)][:3]
    net = network_of({**TOPOLOGIES[name], "sensors": list(sensors)})
    dist, paths = nx.single_source_dijkstra(net.graph, net.fusion, weight=ORACLE_COSTS["payload_over_capacity"])
    on_paths = {v for s in sensors for v in paths[s]}
    spt = build_training_graph(net, "spt", payload_bits=PAYLOAD_BITS)
    assert set(spt.edges) == {(v, paths[v][-2]) for v in on_paths if v != net.fusion}
    unpruned = build_training_graph(full, "dense", payload_bits=PAYLOAD_BITS)
    reached = set(sensors).union(*(nx.descendants(digraph(unpruned.edges), s) for s in sensors))
    dense = build_training_graph(net, "dense", payload_bits=PAYLOAD_BITS)
    assert set(dense.edges) == {(c, p) for c, p in unpruned.edges if c in reached}
    assert set(dense.order) == reached


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("bad", [-1.0, math.nan, None, "cheap"])
def test_bad_callable_cost_raises_routing_error(bad: object) -> None:
    net = square_with_chord()
    with pytest.raises(RoutingError, match=r"routing\.cost") as info:
        build_training_graph(net, "spt", cost=lambda u, v, d: bad)
    assert "non-negative" in str(info.value)


def test_negative_cost_on_one_link_only_is_caught() -> None:
    net = square_with_chord()
    cost = lambda u, v, d: -1.0 if {u, v} == {2, 3} else 1.0  # noqa: E731
    with pytest.raises(RoutingError, match=r"routing\.cost: edge \((2, 3|3, 2)\)"):
        build_training_graph(net, "dense", cost=cost)



def test_numpy_scalar_cost_is_a_number() -> None:
    net = square_with_chord()
    tg = build_training_graph(net, "spt", cost=lambda u, v, d: np.float32(1.0))
    assert set(tg.edges) == {(1, 0), (3, 0), (2, 1)}


def test_unknown_cost_names_the_field() -> None:
    net = square_with_chord()
    with pytest.raises(RoutingError, match=r"routing\.cost") as info:
        build_training_graph(net, "spt", cost="fastest")
    assert "'fastest'" in str(info.value) and "hops" in str(info.value)


def test_unknown_cost_in_a_scenario_fails_when_the_run_is_prepared() -> None:
    from inl_sim.study.experiment import prepare
    with pytest.raises(InlSimError, match=r"routing\.cost"):  # since 0.2: already when loading
        prepare(load_scenario(tiny_scenario(routing={"cost": "fastest"})), 0)


def test_unknown_mode_and_ties_raise_routing_error() -> None:
    net = square_with_chord()
    with pytest.raises(RoutingError, match=r"routing\.mode"):
        build_training_graph(net, "tree")
    with pytest.raises(RoutingError, match=r"routing\.dense_ties"):
        build_training_graph(net, "dense", dense_ties="maybe")

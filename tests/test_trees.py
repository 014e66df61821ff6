"""Tests of inl_sim.network.trees and the control modes of build_training_graph.

Oracles are networkx's own algorithms, called here directly: ``bfs_tree`` and
``shortest_path_length`` for ``bfs``, ``random_spanning_tree`` with the documented seed
for ``random_tree``, ``maximum_spanning_tree`` for ``mst``.
"""

from __future__ import annotations

import networkx as nx
import pytest

from inl_sim.errors import RoutingError
from inl_sim.network import Network, build_network
from inl_sim.network.routing import build_training_graph
from inl_sim.network.trees import TREES, random_tree_seed
from inl_sim.scenario import load_scenario
from inl_sim.scenario.convert import _CHOICES

from conftest import MESH9

RANDOM_LINKS = {"capacity_bps": {"uniform": [1.0e6, 1.0e8]}, "latency_s": {"uniform": [1.0e-4, 5.0e-3]}}
TOPOLOGIES = {
    "mesh9": {"file": str(MESH9)},
    "abilene": {"file": "abilene.graphml"},
    "rgg-14": {"generator": "random_geometric", "n_nodes": 14, "params": {"radius": 0.45}, "seed": 1, **RANDOM_LINKS},
    "waxman-12": {"generator": "waxman", "n_nodes": 12, "params": {"alpha": 0.6, "beta": 0.6}, "seed": 3,
                  **RANDOM_LINKS},
    "grid-constant": {"generator": "grid", "n_nodes": 16, "seed": 8},
}


def network_of(name: str) -> Network:
    sc = load_scenario({"name": "t", "topology": {**TOPOLOGIES[name], "sensors": "all"}})
    return build_network(sc.topology, seed=0)


def with_links(g: nx.Graph) -> nx.Graph:
    nx.set_edge_attributes(g, 1.0e6, "capacity_bps")
    nx.set_edge_attributes(g, 1.0e-3, "latency_s")
    return g


def undirected(edges) -> set[frozenset]:
    return {frozenset(e) for e in edges}


def check_spanning_tree_toward_fusion(net: Network, edges) -> None:
    """n - 1 links of the graph, connected, every node's parent chain reaches the fusion node."""
    g = net.graph
    assert len(edges) == g.number_of_nodes() - 1
    assert all(g.has_edge(c, p) for c, p in edges)
    assert nx.is_tree(nx.Graph(list(edges)))
    parent = dict(edges)
    assert len(parent) == len(edges), "each node has exactly one parent"
    for v in g.nodes:
        hops = 0
        while v != net.fusion:
            v, hops = parent[v], hops + 1
            assert hops <= g.number_of_nodes()


def test_scenario_choices_name_every_tree() -> None:
    assert set(_CHOICES["routing.mode"]) == {"dense", "spt", *TREES}


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_bfs_is_networkx_bfs_tree_and_a_hop_shortest_path_tree(name: str) -> None:
    net = network_of(name)
    g, fusion = net.graph, net.fusion
    tg = build_training_graph(net, "bfs")
    check_spanning_tree_toward_fusion(net, tg.edges)
    rank = {v: i for i, v in enumerate(g.nodes)}
    oracle = nx.bfs_tree(g, fusion, sort_neighbors=lambda ns: sorted(ns, key=rank.__getitem__))
    assert set(tg.edges) == {(child, parent) for parent, child in oracle.edges}
    hops = nx.single_source_shortest_path_length(g, fusion)
    for child, parent in tg.edges:
        assert hops[child] == hops[parent] + 1, "every bfs link goes exactly one hop nearer"
        earlier = [u for u in g[child] if hops[u] == hops[child] - 1]
        assert parent == min(earlier, key=rank.__getitem__), "ties go to the earliest node"


def test_bfs_on_a_graph_in_node_order_equals_plain_bfs_tree() -> None:
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(3, 4))
    ordered = nx.Graph()
    ordered.add_nodes_from(range(12))
    ordered.add_edges_from(sorted(g.edges))  # adjacency in node order: networkx's default BFS is the same
    g = with_links(ordered)
    net = Network(g, 0, tuple(range(1, 12)), "grid")
    tg = build_training_graph(net, "bfs")
    assert set(tg.edges) == {(c, p) for p, c in nx.bfs_tree(g, 0).edges}


@pytest.mark.parametrize("name", TOPOLOGIES)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_tree_is_networkx_random_spanning_tree_for_the_seed(name: str, seed: int) -> None:
    net = network_of(name)
    tg = build_training_graph(net, "random_tree", seed=seed)
    check_spanning_tree_toward_fusion(net, tg.edges)
    oracle = nx.random_spanning_tree(net.graph, weight=None, seed=random_tree_seed(seed))
    assert undirected(tg.edges) == undirected(oracle.edges)
    again = build_training_graph(net, "random_tree", seed=seed)
    assert again.edges == tg.edges, "same seed, same tree"


def test_random_tree_seeds_give_different_trees() -> None:
    net = network_of("mesh9")
    trees = {frozenset(undirected(build_training_graph(net, "random_tree", seed=s).edges)) for s in range(10)}
    assert len(trees) >= 8, "mesh9 has ~10^6 spanning trees; 10 seeds should rarely repeat"
    assert random_tree_seed(0) != random_tree_seed(1)


def test_random_tree_is_uniform_on_a_4_cycle() -> None:
    """A 4-cycle has 4 spanning trees (drop one link each): each should appear ~1/4 of the time."""
    g = with_links(nx.cycle_graph(4))
    net = Network(g, 0, (1, 2, 3), "cycle")
    counts: dict[frozenset, int] = {}
    n = 400
    for s in range(n):
        missing = undirected(g.edges) - undirected(build_training_graph(net, "random_tree", seed=s).edges)
        counts[frozenset(missing)] = counts.get(frozenset(missing), 0) + 1
    assert len(counts) == 4
    # binomial(400, 1/4): std ~ 8.7; 5 std either side
    assert all(abs(c - n / 4) < 5 * (n * 0.25 * 0.75) ** 0.5 for c in counts.values())


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_mst_is_networkx_maximum_spanning_tree(name: str) -> None:
    net = network_of(name)
    tg = build_training_graph(net, "mst")
    check_spanning_tree_toward_fusion(net, tg.edges)
    oracle = nx.maximum_spanning_tree(net.graph, weight="capacity_bps")
    assert undirected(tg.edges) == undirected(oracle.edges)
    total = sum(net.graph.edges[e]["capacity_bps"] for e in tg.edges)
    assert total == pytest.approx(sum(d["capacity_bps"] for *_, d in oracle.edges(data=True)))


@pytest.mark.parametrize("mode", sorted(TREES))
def test_control_trees_order_children_before_parents_and_prune(mode: str) -> None:
    """A path 0-1-2-3 with only node 1 sensing: nodes 2 and 3 have nothing to send."""
    g = with_links(nx.path_graph(4))
    tg = build_training_graph(Network(g, 0, (1,), "path"), mode)
    assert tg.edges == ((1, 0),) and tg.order == (1, 0)
    full = build_training_graph(Network(g, 0, (1, 2, 3), "path"), mode, cost="hops")
    assert full.order == (3, 2, 1, 0) and full.distance == {3: 3.0, 2: 2.0, 1: 1.0, 0: 0.0}
    position = {v: i for i, v in enumerate(full.order)}
    assert all(position[c] < position[p] for c, p in full.edges)


@pytest.mark.parametrize("name", TOPOLOGIES)
@pytest.mark.parametrize("mode", sorted(TREES))
def test_every_tree_has_the_same_link_count_as_spt(name: str, mode: str) -> None:
    net = network_of(name)
    assert build_training_graph(net, mode, seed=3).n_edges == build_training_graph(net, "spt").n_edges


def test_unknown_mode_lists_the_trees() -> None:
    net = network_of("mesh9")
    with pytest.raises(RoutingError, match=r"random_tree"):
        build_training_graph(net, "steiner")


def test_dense_uses_every_link_by_default_abilene() -> None:
    """Abilene: 14 links; ``drop`` removed 3 links between equally distant nodes (11), ``keep`` none."""
    net = network_of("abilene")
    assert build_training_graph(net, "dense").n_edges == net.graph.number_of_edges() == 14
    assert build_training_graph(net, "dense", dense_ties="drop").n_edges == 11
    mesh = network_of("mesh9")
    assert build_training_graph(mesh, "dense").n_edges == build_training_graph(mesh, "dense", dense_ties="drop").n_edges

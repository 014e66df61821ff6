"""Tests of the linear setup: KD-tree generators, the sweep centre, linear routing, ``show``.

Oracles: networkx's own ``random_geometric_graph``, ``center`` and Dijkstra; a brute-force
O(n^2) neighbour list (the 0.1 knn generator, kept here); the 0.1 routing (paths and
quadratic assembly, kept here verbatim); distances computed here with numpy.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from inl_sim.errors import TopologyError
from inl_sim.network import Network, build_network, centrality
from inl_sim.network.generators import _canonical, _knn, _random_geometric
from inl_sim.network.routing import TrainingGraph, build_training_graph
from inl_sim.scenario import load_scenario
from inl_sim.study.show import describe

ROOT = Path(__file__).resolve().parents[1]
RGG10K = ROOT / "scenarios" / "rgg10k.yaml"


def topo(**fields: object):
    return load_scenario({"topology": fields}).topology


# --------------------------------------------------------------------------- generators

def brute_force_knn(n: int, k: int, seed: int) -> nx.Graph:
    """The 0.1 generator: all n^2 distances, each row's k smallest (stable: ties by id)."""
    points = np.random.default_rng(seed).random((n, 2))
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    graph = nx.Graph()
    graph.add_nodes_from((i, {"pos": tuple(points[i])}) for i in range(n))
    for i in range(n):
        graph.add_edges_from((i, int(j)) for j in np.argsort(dist[i], kind="stable")[:k])
    return _canonical(graph)


def same_graph(a: nx.Graph, b: nx.Graph) -> None:
    assert list(a.nodes) == list(b.nodes)
    assert list(a.edges) == list(b.edges)
    assert {v: tuple(p) for v, p in a.nodes(data="pos")} == {v: tuple(p) for v, p in b.nodes(data="pos")}


@pytest.mark.parametrize("n, k", [(4, 3), (13, 3), (60, 1), (250, 6)])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_knn_equals_brute_force_neighbour_lists(n: int, k: int, seed: int) -> None:
    same_graph(_knn(n, {"k": k}, seed), brute_force_knn(n, k, seed))


@pytest.mark.parametrize("n, radius", [(2, 0.01), (40, 0.3), (400, 0.08)])
@pytest.mark.parametrize("seed", [0, 5])
def test_random_geometric_equals_networkx(n: int, radius: float, seed: int) -> None:
    expected = _canonical(nx.random_geometric_graph(n, radius, seed=seed))
    same_graph(_random_geometric(n, {"radius": radius}, seed), expected)


def test_join_components_adds_each_components_shortest_link_to_the_largest() -> None:
    loose = _random_geometric(300, {"radius": 0.05}, 3)
    joined = _random_geometric(300, {"radius": 0.05, "join_components": 1}, 3)
    components = sorted(nx.connected_components(loose), key=lambda c: (-len(c), min(c)))
    assert len(components) > 3  # the test needs several components
    assert nx.is_connected(joined)
    added = set(joined.edges) - set(loose.edges)
    assert set(loose.edges) <= set(joined.edges) and len(added) == len(components) - 1
    pos = np.array([loose.nodes[v]["pos"] for v in range(300)])
    giant = sorted(components[0])
    for comp in components[1:]:
        members = sorted(comp)
        dist = np.linalg.norm(pos[members][:, None, :] - pos[giant][None, :, :], axis=-1)  # (m, g)
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        assert tuple(sorted((members[i], giant[j]))) in added


@pytest.mark.parametrize("value", [2, -1, 0.5])
def test_join_components_must_be_0_or_1(value: float) -> None:
    with pytest.raises(TopologyError, match="join_components"):
        _random_geometric(20, {"join_components": value}, 0)


# --------------------------------------------------------------------------- sweep centre

def sweep_centre_by_definition(graph: nx.Graph, sweeps: int) -> object:
    """The docstring's rule, with networkx's shortest_path_length and eccentricity."""
    order = list(graph)
    comp = max(nx.connected_components(graph), key=len)
    nodes = [v for v in order if v in comp]
    sources = [nodes[0]]
    while len(sources) < sweeps:
        last = nx.shortest_path_length(graph, sources[-1])
        if len(sources) % 2:
            sources.append(max(nodes, key=last.get))
        else:
            dists = [nx.shortest_path_length(graph, s) for s in sources]
            unswept = [v for v in nodes if v not in sources]
            if not unswept:
                break
            sources.append(min(unswept, key=lambda v: max(d[v] for d in dists)))
    sub = graph.subgraph(comp)
    return min(sources, key=lambda v: (nx.eccentricity(sub, v), order.index(v)))


@pytest.mark.parametrize("seed", range(4))
def test_sweep_centre_follows_its_definition(seed: int) -> None:
    graph = nx.random_geometric_graph(200, 0.09, seed=seed)  # often disconnected: largest component
    for sweeps in (1, 2, 5, 8):
        assert centrality.sweep_centre(graph, sweeps) == sweep_centre_by_definition(graph, sweeps)


@pytest.mark.parametrize("graph", [nx.path_graph(101), nx.convert_node_labels_to_integers(nx.grid_2d_graph(21, 31))])
def test_sweep_centre_is_the_exact_centre_of_paths_and_grids(graph: nx.Graph) -> None:
    assert [centrality.sweep_centre(graph)] == nx.center(graph)


def test_sweep_centre_is_nearly_as_close_as_the_closeness_maximum() -> None:
    graph = nx.random_geometric_graph(600, 0.07, seed=11)
    closeness = nx.closeness_centrality(graph)
    assert closeness[centrality.sweep_centre(graph)] >= 0.95 * max(closeness.values())


def test_most_central_is_closeness_up_to_the_threshold_and_sweeps_above(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    real = nx.closeness_centrality
    monkeypatch.setattr(centrality.nx, "closeness_centrality", lambda g: calls.append(real(g)) or calls[-1])
    limit = centrality.EXACT_CENTRALITY_MAX_NODES
    at = nx.random_geometric_graph(limit, 0.06, seed=2)
    chosen = centrality.most_central(at)
    assert len(calls) == 1 and len(calls[0]) == limit and chosen == max(at, key=calls[0].get)
    above = nx.random_geometric_graph(limit + 1, 0.06, seed=2)
    assert centrality.most_central(above) == centrality.sweep_centre(above) and len(calls) == 1


# --------------------------------------------------------------------------- routing vs 0.1

def old_training_graph(network: Network, mode: str, weight, dense_ties: str = "drop") -> TrainingGraph:
    """The 0.1 routing, verbatim but for names: paths from Dijkstra, O(V * E) assembly."""
    graph, fusion = network.graph, network.fusion
    dist, paths = nx.single_source_dijkstra(graph, fusion, weight=weight)
    tree = {v: p[-2] for v, p in paths.items() if v != fusion}
    depth = {v: len(p) - 1 for v, p in paths.items()}
    rank = {v: i for i, v in enumerate(graph.nodes)}
    key = {v: (dist[v], depth[v], rank[v]) for v in dist}
    if mode == "spt":
        candidate = list(tree.items())
    else:
        candidate = []
        for u, v in graph.edges:
            if u not in dist or v not in dist:
                continue
            child, parent = (u, v) if key[u] > key[v] else (v, u)
            if dist[u] == dist[v] and dense_ties == "drop" and tree.get(child) != parent:
                continue
            candidate.append((child, parent))
    sensor_set = set(network.sensors)
    incoming: dict = {}
    for child, parent in candidate:
        incoming.setdefault(parent, []).append(child)
    live: set = set()
    for v in sorted(key, key=key.__getitem__, reverse=True):
        if v in sensor_set or any(c in live for c in incoming.get(v, ())):
            live.add(v)
    live.add(fusion)
    order = tuple(sorted(live, key=key.__getitem__, reverse=True))
    position = {v: i for i, v in enumerate(order)}
    edges = tuple(sorted(((c, p) for c, p in candidate if c in live), key=lambda e: (position[e[0]], position[e[1]])))
    parents = {v: tuple(p for c, p in edges if c == v) for v in order}
    children = {v: tuple(c for c, p in edges if p == v) for v in order}
    return TrainingGraph(mode, fusion, tuple(network.sensors), order, edges, parents, children,
                         {v: dist[v] for v in order})


def fields(tg: TrainingGraph) -> tuple:
    return (tg.mode, tg.fusion, tg.sensors, tg.order, tg.edges, list(tg.parents.items()),
            list(tg.children.items()), list(tg.distance.items()))


LINKS = {"capacity_bps": {"choice": [1.0e6, 2.0e6, 4.0e6]}, "latency_s": {"choice": [0.0, 1.0e-3]}}
RANDOM_NETWORKS = {
    "rgg": {"generator": "random_geometric", "n_nodes": 150, "params": {"radius": 0.15}},
    "knn": {"generator": "knn", "n_nodes": 120, "params": {"k": 4}},
    "er": {"generator": "erdos_renyi", "n_nodes": 80, "params": {"p": 0.08}},
    "rgg-few-sensors": {"generator": "random_geometric", "n_nodes": 150, "params": {"radius": 0.15},
                        "sensors": {"rule": "k_random", "k": 12}},
}
COSTS = {  # choice-valued capacities and zero latencies make many equal distances (ties)
    "payload_over_capacity": lambda u, v, d: 256.0 / d["capacity_bps"],
    "hops": lambda u, v, d: 1.0,
    "latency": lambda u, v, d: d["latency_s"],
}


@pytest.mark.parametrize("name", sorted(RANDOM_NETWORKS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_routing_equals_the_0_1_implementation(name: str, seed: int) -> None:
    net = build_network(topo(**RANDOM_NETWORKS[name], **LINKS, seed=seed), seed=0)
    for cost, weight in COSTS.items():
        for mode, ties in (("spt", "drop"), ("dense", "drop"), ("dense", "keep")):
            new = build_training_graph(net, mode, cost=cost, payload_bits=256.0, dense_ties=ties)
            assert fields(new) == fields(old_training_graph(net, mode, weight, ties)), (cost, mode, ties)
    user = lambda u, v, d: d["latency_s"] + 1.0e3 / d["capacity_bps"] + (u < v) * 1e-4  # direction-dependent
    assert fields(build_training_graph(net, "spt", cost=user)) == fields(old_training_graph(net, "spt", user))


# --------------------------------------------------------------------------- 10,000 nodes and show

@pytest.fixture(scope="module")
def rgg10k() -> tuple:
    sc = load_scenario(RGG10K)
    net = build_network(sc.topology, seed=sc.seed)
    return sc, net


def test_rgg10k_is_connected_with_mean_degree_about_8(rgg10k: tuple) -> None:
    sc, net = rgg10k
    g = net.graph
    assert g.number_of_nodes() == 10_000 and nx.is_connected(g)
    assert 7.5 < 2 * g.number_of_edges() / 10_000 < 8.5
    assert len(net.sensors) == 9_999 and sc.data.n_train == 1024 and sc.training.batch_size == 64


def test_rgg10k_training_graphs_against_dijkstra(rgg10k: tuple) -> None:
    _, net = rgg10k
    cost = lambda u, v, d: 256.0 / d["capacity_bps"]  # noqa: E731
    dist = nx.single_source_dijkstra_path_length(net.graph, net.fusion, weight=cost)
    spt = build_training_graph(net, "spt", payload_bits=256.0)
    assert spt.n_edges == 9_999 and set(spt.order) == set(net.graph)
    assert all(dist[c] == pytest.approx(dist[p] + 256.0 / net.graph.edges[c, p]["capacity_bps"]) for c, p in spt.edges)
    dense = build_training_graph(net, "dense", payload_bits=256.0)  # dense_ties: keep, every link
    assert dense.n_edges == net.graph.number_of_edges() and all(dist[c] >= dist[p] for c, p in dense.edges)
    dropped = build_training_graph(net, "dense", payload_bits=256.0, dense_ties="drop")
    tree = set(spt.edges)
    kept = [(u, v) for u, v in net.graph.edges if dist[u] != dist[v] or (u, v) in tree or (v, u) in tree]
    assert dropped.n_edges == len(kept) and all(dist[c] >= dist[p] for c, p in dropped.edges)


def test_show_summarises_long_lists_with_statistics_from_the_training_graph() -> None:
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    text = describe(sc, limit=5)
    assert "sensors (8): 1, 2, 3, 4, 5, ... (3 more; lists stop at 5 items)" in text
    net = build_network(sc.topology, seed=0)
    spt = build_training_graph(net, "spt", payload_bits=256.0)
    hops = nx.shortest_path_length(nx.DiGraph(spt.edges), target=net.fusion)
    leaves = sum(1 for v in spt.order if not spt.children[v])
    assert (f"spt: 8 active directed links, 9 live nodes; {leaves} leaves; children min/mean/max "
            f"0/{8 / 9:.2f}/{max(len(c) for c in spt.children.values())}") in text
    assert f"hops to fusion min/mean/max 0/{np.mean(list(hops.values())):.2f}/{max(hops.values())}" in text
    assert "edges (child->parent)" in describe(sc)  # short lists are still printed in full


def test_show_imports_no_torch() -> None:
    code = ("import sys; from inl_sim.cli import main; main(['show', 'scenarios/quickstart.yaml']); "
            "print('torch' in sys.modules, 'simpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_builds_restore_the_garbage_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(TopologyError):
        build_network(topo(generator="knn", n_nodes=4, params={"k": 4}), seed=0)
    assert gc.isenabled()
    gc.disable()
    try:
        build_network(topo(generator="grid", n_nodes=9), seed=0)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()

"""Tests of inl_sim.network: generators, files, attributes, roles and errors.

Expected values come from independent oracles (networkx's own generators, closeness
centrality and Dijkstra, a haversine written here) or from tiny hand-made graphs.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import pytest

from inl_sim import scenario as scenario_module
from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.network import (
    FUSION_RULES, GENERATORS, TOPOLOGY_DIR, Network, build_network, describe_network,
    read_topology_file, shipped_topologies, write_topology_file,
)
from inl_sim.scenario import Distribution, SensorSpec, TopologySpec, load_scenario

RANDOM_GENERATORS = {
    "random_geometric": {"radius": 0.45},
    "knn": {"k": 3},
    "waxman": {"alpha": 0.5, "beta": 0.8},
    "erdos_renyi": {"p": 0.4},
}
UNIFORM_CAPACITY = Distribution("uniform", (1.0e6, 5.0e6))


def topo(**fields: object) -> TopologySpec:
    """A validated TopologySpec from scenario-style fields (the real boundary)."""
    return load_scenario({"topology": fields}).topology


def snapshot(net: Network) -> tuple:
    return (list(net.graph.nodes(data=True)), list(net.graph.edges(data=True)), net.fusion, net.sensors)


# --------------------------------------------------------------------------- generators

@pytest.mark.parametrize("generator", sorted(RANDOM_GENERATORS))
def test_generators_are_seeded(generator: str) -> None:
    spec = TopologySpec(generator=generator, n_nodes=12, params=RANDOM_GENERATORS[generator],
                        capacity_bps=UNIFORM_CAPACITY, seed=None)
    first, again = build_network(spec, seed=3), build_network(spec, seed=3)
    other = build_network(spec, seed=4)
    assert snapshot(first) == snapshot(again)
    assert list(first.graph.edges) != list(other.graph.edges)
    assert list(first.graph) == list(range(12))
    assert nx.is_connected(first.graph)


def test_spec_seed_fixes_topology_whatever_the_run_seed() -> None:
    spec = TopologySpec(generator="erdos_renyi", n_nodes=10, params={"p": 0.5}, seed=7)
    assert snapshot(build_network(spec, seed=0)) == snapshot(build_network(spec, seed=99))


def test_random_geometric_is_networkx_draw() -> None:
    # seed 3 draws 4 components with 0 and 1 together: other nodes may be cut off when
    # ensure_connected is false, as long as every sensor reaches the fusion node.
    spec = TopologySpec(generator="random_geometric", n_nodes=15, params={"radius": 0.3},
                        seed=3, ensure_connected=False, sensors=SensorSpec("ids", (1,)), fusion=0)
    expected = nx.random_geometric_graph(15, 0.3, seed=3)
    net = build_network(spec, seed=0)
    assert sorted(net.graph.edges) == sorted(tuple(sorted(e)) for e in expected.edges)
    assert nx.number_connected_components(net.graph) == 4
    assert net.graph.nodes[3]["pos"] == tuple(expected.nodes[3]["pos"])


def test_grid_sizes() -> None:
    net = build_network(topo(generator="grid", params={"rows": 3, "cols": 4}), seed=0)
    assert (net.graph.number_of_nodes(), net.graph.number_of_edges()) == (12, 17)
    square = build_network(topo(generator="grid", n_nodes=9), seed=0)
    assert (square.graph.number_of_nodes(), square.graph.number_of_edges()) == (9, 12)
    assert square.fusion == 4  # the centre cell
    derived = build_network(topo(generator="grid", n_nodes=8, params={"rows": 2}), seed=0)
    assert derived.graph.number_of_nodes() == 8


@pytest.mark.parametrize("r, h", [(2, 2), (3, 2), (2, 3), (1, 4)])
def test_balanced_tree_sizes(r: int, h: int) -> None:
    net = build_network(topo(generator="balanced_tree", params={"branching": r, "height": h}), seed=0)
    n = h + 1 if r == 1 else (r ** (h + 1) - 1) // (r - 1)
    assert (net.graph.number_of_nodes(), net.graph.number_of_edges()) == (n, n - 1)


def test_balanced_tree_height_from_n_nodes() -> None:
    net = build_network(topo(generator="balanced_tree", n_nodes=15), seed=0)
    assert net.fusion == 0 and len(net.graph) == 15
    assert sorted(net.sensors)[-8:] == list(range(7, 15))


def test_star() -> None:
    net = build_network(topo(generator="star", n_nodes=6), seed=0)
    assert net.graph.number_of_edges() == 5 and net.graph.degree(0) == 5
    assert net.fusion == 0 and net.sensors == (1, 2, 3, 4, 5)


def test_knn_degrees_and_nearest() -> None:
    net = build_network(topo(generator="knn", n_nodes=15, params={"k": 3}, ensure_connected=False,
                             sensors=[1]), seed=0)
    graph = net.graph
    assert min(d for _, d in graph.degree) >= 3
    for v in graph:  # oracle: each node links to its 3 nearest points
        px, py = graph.nodes[v]["pos"]
        dist = sorted((math.hypot(px - graph.nodes[u]["pos"][0], py - graph.nodes[u]["pos"][1]), u)
                      for u in graph if u != v)
        assert all(graph.has_edge(v, u) for _, u in dist[:3])


def test_generator_names_match_scenario() -> None:
    assert sorted(GENERATORS) == sorted(scenario_module.GENERATORS)


# --------------------------------------------------------------------------- attributes

def test_capacity_uniform_bounds_and_constant_latency() -> None:
    net = build_network(TopologySpec(generator="erdos_renyi", n_nodes=12, params={"p": 0.5},
                                     capacity_bps=UNIFORM_CAPACITY), seed=0)
    caps = [d["capacity_bps"] for *_, d in net.graph.edges(data=True)]
    assert all(1.0e6 <= c <= 5.0e6 for c in caps) and len(set(caps)) == len(caps)
    assert {d["latency_s"] for *_, d in net.graph.edges(data=True)} == {1.0e-3}
    assert {d["flops_per_s"] for _, d in net.graph.nodes(data=True)} == {1.0e9}


def test_loguniform_and_choice() -> None:
    spec = topo(generator="star", n_nodes=20, capacity_bps={"loguniform": [1.0e6, 1.0e8]},
                latency_s={"choice": [1.0e-3, 5.0e-3]})
    data = [d for *_, d in build_network(spec, seed=0).graph.edges(data=True)]
    assert all(1.0e6 <= d["capacity_bps"] <= 1.0e8 for d in data)
    assert {d["latency_s"] for d in data} == {1.0e-3, 5.0e-3}


def test_attribute_streams_are_independent() -> None:
    base = TopologySpec(generator="grid", n_nodes=9, capacity_bps=UNIFORM_CAPACITY)
    changed = TopologySpec(generator="grid", n_nodes=9, capacity_bps=UNIFORM_CAPACITY,
                           latency_s=Distribution("uniform", (0.0, 1.0e-2)))
    caps = [[d["capacity_bps"] for *_, d in build_network(s, seed=0).graph.edges(data=True)] for s in (base, changed)]
    assert caps[0] == caps[1]


def test_explicit_lists_keep_given_attributes_and_fill_missing() -> None:
    spec = topo(nodes=[0, 1, {"id": 2, "flops_per_s": 5.0e9, "pos": [1, -2], "label": "edge"}],
                edges=[[0, 1, {"capacity_bps": "2e6"}], [1, 2]], fusion=0, capacity_bps=3.0e6)
    net = build_network(spec, seed=0)
    assert net.graph.edges[0, 1]["capacity_bps"] == 2.0e6
    assert net.graph.edges[1, 2]["capacity_bps"] == 3.0e6
    assert net.graph.nodes[2] == {"flops_per_s": 5.0e9, "pos": (1.0, -2.0), "label": "edge", "role": "sensor"}
    assert net.name == "explicit" and nx.is_frozen(net.graph)


# --------------------------------------------------------------------------- roles

KITE = [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4], [4, 5]]  # 0..3 a diamond, tail 3-4-5


def test_fusion_rules() -> None:
    graph = nx.Graph([tuple(e) for e in KITE])
    closeness = nx.closeness_centrality(graph)
    net = build_network(topo(edges=KITE), seed=0)
    assert net.fusion == max(graph, key=closeness.get) == 3
    assert build_network(topo(edges=KITE, fusion="max_degree"), seed=0).fusion == 1  # 1, 2, 3 tie: order
    assert build_network(topo(edges=KITE, fusion="first"), seed=0).fusion == 0
    assert build_network(topo(edges=KITE, fusion=5), seed=0).fusion == 5
    assert set(FUSION_RULES) == {"most_central", "max_degree", "first"}


def test_most_central_matches_closeness_on_generated_graph() -> None:
    net = build_network(TopologySpec(generator="waxman", n_nodes=14, params={"alpha": 0.5, "beta": 0.8}), seed=0)
    closeness = nx.closeness_centrality(net.graph)
    assert net.fusion == max(net.graph, key=closeness.get)


def test_sensor_rules() -> None:
    def sensors(value: object, fusion: object = 0) -> tuple:
        return build_network(topo(edges=KITE, fusion=fusion, sensors=value), seed=0).sensors
    assert sensors("all") == (1, 2, 3, 4, 5)
    assert sensors([5, 2]) == (2, 5)  # always in node order
    assert sensors("leaves") == (5,)
    assert sensors({"rule": "farthest", "k": 2}) == (4, 5)
    assert sensors({"rule": "farthest", "k": 3}) == (3, 4, 5)
    assert sensors({"rule": "farthest", "k": 2}, fusion=3) == (0, 5)  # 0 and 5 both 2 hops: order
    picked = sensors({"rule": "k_random", "k": 3})
    assert len(picked) == 3 and 0 not in picked and picked == sensors({"rule": "k_random", "k": 3})


def test_roles_are_node_attributes() -> None:
    net = build_network(topo(edges=KITE, fusion=0, sensors=[4, 5]), seed=0)
    roles = {v: d["role"] for v, d in net.graph.nodes(data=True)}
    assert roles == {0: "fusion", 1: "relay", 2: "relay", 3: "relay", 4: "sensor", 5: "sensor"}


# --------------------------------------------------------------------------- shipped files

def test_mesh9_has_unique_distances_and_tree() -> None:
    net = build_network(topo(file="mesh9.yaml"), seed=0)
    graph = net.graph
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (9, 27)
    assert net.fusion == 0 and net.sensors == tuple(range(1, 9))
    dist, paths = nx.single_source_dijkstra(graph, 0, weight=lambda u, v, d: 1.0 / d["capacity_bps"])
    values = sorted(dist.values())
    assert all(b - a > 0.05 * b for a, b in zip(values, values[1:]))  # unique, with margin
    for v in graph:
        if v != 0:  # exactly one neighbour on a shortest path: the tree is unique
            via = [u for u in graph[v] if math.isclose(dist[u] + 1.0 / graph.edges[u, v]["capacity_bps"], dist[v])]
            assert via == [paths[v][-2]]
    tree = {(paths[v][-2], v) for v in graph if v != 0}
    assert len(tree) == 8
    assert round(1 - len(tree) / graph.number_of_edges(), 3) == 0.704


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = [(math.radians(x), math.radians(y)) for x, y in (a, b)]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0e3 * math.asin(math.sqrt(h))


def test_abilene() -> None:
    net = build_network(topo(file="abilene"), seed=0)
    graph = net.graph
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (11, 14) and nx.is_connected(graph)
    assert net.fusion == "KansasCity" == max(graph, key=nx.closeness_centrality(graph).get)
    assert len(net.sensors) == 10
    slow = {frozenset(e) for e, c in nx.get_edge_attributes(graph, "capacity_bps").items() if c < 9.0e9}
    assert slow == {frozenset({"Indianapolis", "Atlanta"})}
    assert graph.edges["Indianapolis", "Atlanta"]["capacity_bps"] == 2.488e9
    for u, v, d in graph.edges(data=True):
        nu, nv = graph.nodes[u], graph.nodes[v]
        expected = haversine_m((nu["lat"], nu["lon"]), (nv["lat"], nv["lon"])) / 2.0e8
        assert d["latency_s"] == pytest.approx(expected, rel=1e-3)


def test_shipped_files_listed() -> None:
    assert {"mesh9.yaml", "abilene.graphml"} <= set(shipped_topologies())
    assert (TOPOLOGY_DIR / "README.md").is_file()


def test_describe_network_mesh9() -> None:
    info = describe_network(build_network(topo(file="mesh9.yaml"), seed=0))
    assert info["n_nodes"] == 9 and info["n_edges"] == 27 and info["fusion"] == 0
    assert info["sensors"] == list(range(1, 9)) and info["n_relays"] == 0 and info["connected"]
    assert (info["degree_min"], info["degree_mean"], info["degree_max"]) == (6, 6.0, 6)
    assert (info["capacity_bps_min"], info["capacity_bps_max"]) == (9.0e6, 95.4e6)


# --------------------------------------------------------------------------- file formats

def test_yaml_round_trip(tmp_path: Path) -> None:
    spec = TopologySpec(generator="knn", n_nodes=10, capacity_bps=UNIFORM_CAPACITY,
                        latency_s=Distribution("uniform", (1.0e-4, 1.0e-2)),
                        sensors=SensorSpec("k_random", (), 4))
    net = build_network(spec, seed=0)
    path = write_topology_file(net, tmp_path / "frozen.yaml")
    again = build_network(TopologySpec(file="frozen.yaml"), seed=123, base_dir=tmp_path)
    assert snapshot(again) == snapshot(net) and again.name == "frozen"
    graph, meta = read_topology_file(path)
    assert meta["fusion"] == net.fusion and meta["sensors"] == SensorSpec("ids", net.sensors)


def test_graphml_string_and_digit_ids(tmp_path: Path) -> None:
    graph = nx.Graph(fusion="b", sensors="a, c")
    graph.add_edge("a", "b", capacity_bps=1.0e6, latency_s=0.0)
    graph.add_edge("b", "c", capacity_bps=2.0e6)
    nx.write_graphml(graph, tmp_path / "abc.graphml")
    net = build_network(TopologySpec(file="abc.graphml"), seed=0, base_dir=tmp_path)
    assert (net.fusion, net.sensors, list(net.graph)) == ("b", ("a", "c"), ["a", "b", "c"])
    assert net.graph.edges["b", "c"]["latency_s"] == 1.0e-3  # filled from the spec
    digits = nx.relabel_nodes(graph, {"a": "0", "b": "1", "c": "2"})
    digits.graph.update(fusion="1", sensors="2")
    nx.write_graphml(digits, tmp_path / "digits.graphml")
    net = build_network(TopologySpec(file="digits.graphml"), seed=0, base_dir=tmp_path)
    assert (net.fusion, net.sensors, list(net.graph)) == (1, (2,), [0, 1, 2])


def test_spec_roles_override_file_roles() -> None:
    net = build_network(topo(file="mesh9.yaml", fusion=8, sensors={"rule": "farthest", "k": 1}), seed=0)
    assert net.fusion == 8 and len(net.sensors) == 1


# --------------------------------------------------------------------------- invalid inputs

BAD_FILES = {
    "neg.yaml": "edges: [[0, 1, {capacity_bps: -5.0}]]\n",
    "slow.yaml": "edges: [[0, 1, {latency_s: fast}]]\n",
    "empty.yaml": "nodes: []\nedges: []\n",
    "broken.yaml": "edges: [[0, 1\nfusion: 0\n",
    "list.yaml": "- [0, 1]\n",
    "extra.yaml": "edges: [[0, 1]]\nlinks: []\n",
    "bw.yaml": "edges: [[0, 1, {bandwidth: 1.0e+6}]]\n",
    "shape.yaml": "edges: [[0, 1, 2, 3]]\n",
    "x.csv": "0,1\n",
    "bad.graphml": "<graphml><graph edgedefault='undirected'><node id='a'>",
}

INVALID = [
    ("fusion-missing", {"edges": [[0, 1]], "fusion": 9}, TopologyError, "topology.fusion: 9"),
    ("disconnected-sensor", {"edges": [[0, 1], [2, 3]], "fusion": 0},
     TopologyError, "node 2 cannot reach fusion node 0 (graph has 2 components)"),
    ("negative-capacity-file", {"file": "neg.yaml"}, TopologyError, "neg.yaml: edges[0].capacity_bps: -5.0"),
    ("latency-not-number", {"file": "slow.yaml"}, TopologyError, "edges[0].latency_s: 'fast'"),
    ("sensor-is-fusion", {"edges": [[0, 1]], "fusion": 0, "sensors": [0]}, TopologyError, "node 0 is the fusion node"),
    ("unknown-sensor", {"edges": [[0, 1]], "sensors": [7]}, TopologyError, "topology.sensors: 7 is not a node"),
    ("duplicate-sensor", {"edges": [[0, 1], [1, 2]], "fusion": 0, "sensors": [1, 1]}, TopologyError, "listed twice"),
    ("empty-graph", {"file": "empty.yaml"}, TopologyError, "empty.yaml: edges: missing, empty"),
    ("self-loop", {"edges": [[0, 1], [1, 1]]}, TopologyError, "topology.edges[1]: [1, 1] is a self-loop"),
    ("duplicate-edge", {"edges": [[0, 1], [1, 0]]}, TopologyError, "topology.edges[1]: link 1-0 is listed twice"),
    ("unknown-node-in-edge", {"nodes": [0, 1], "edges": [[0, 2]]}, TopologyError, "node 2 is not in nodes"),
    ("bad-extension", {"file": "x.csv"}, TopologyError, "unknown topology file extension '.csv'"),
    ("malformed-yaml", {"file": "broken.yaml"}, TopologyError, "broken.yaml: not valid YAML"),
    ("yaml-not-mapping", {"file": "list.yaml"}, TopologyError, "list.yaml: top level is a list"),
    ("yaml-unknown-key", {"file": "extra.yaml"}, TopologyError, "unknown key 'links'"),
    ("edge-unknown-attr", {"file": "bw.yaml"}, TopologyError, "unknown key 'bandwidth'; known keys: capacity_bps"),
    ("edge-bad-shape", {"file": "shape.yaml"}, TopologyError, "shape.yaml: edges[0]: [0, 1, 2, 3] is not a link"),
    ("malformed-graphml", {"file": "bad.graphml"}, TopologyError, "bad.graphml: not a readable GraphML"),
    ("file-not-found", {"file": "nowhere.yaml"}, TopologyError, "shipped topologies: abilene.graphml"),
    ("k-too-large", {"edges": [[0, 1], [1, 2]], "sensors": {"rule": "k_random", "k": 5}},
     TopologyError, "topology.sensors.k: 5 is larger than the 2 candidate"),
    ("no-leaves", {"edges": [[0, 1], [1, 2], [2, 0]], "sensors": "leaves"}, TopologyError, "selects no sensor"),
    ("one-node", {"generator": "star", "n_nodes": 1}, TopologyError, "topology.n_nodes: 1 gives fewer than 2"),
    ("never-connected", {"generator": "random_geometric", "n_nodes": 10, "params": {"radius": 0.01}},
     TopologyError, "raise topology.params.radius"),
    ("unknown-param", {"generator": "knn", "params": {"kk": 2}}, TopologyError, "topology.params.kk: unknown"),
    ("knn-k-too-large", {"generator": "knn", "n_nodes": 4, "params": {"k": 4}}, TopologyError, "must be < n_nodes"),
    ("grid-not-square", {"generator": "grid", "n_nodes": 10}, TopologyError, "topology.n_nodes: 10 cannot fill"),
    ("tree-bad-size", {"generator": "balanced_tree", "n_nodes": 10}, TopologyError, "not the size of a balanced tree"),
    ("loguniform-zero", {"generator": "star", "latency_s": {"loguniform": [0.0, 1.0]}},
     TopologyError, "topology.latency_s.loguniform"),
    ("two-sources", {"generator": "star", "file": "mesh9.yaml"}, ScenarioError, "exactly one source"),
    ("negative-capacity-spec", {"generator": "star", "capacity_bps": -1.0}, ScenarioError, "topology.capacity_bps"),
]


@pytest.mark.parametrize("raw, error, message", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_topologies(tmp_path: Path, raw: dict, error: type, message: str) -> None:
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(error) as info:
        build_network(load_scenario({"topology": raw}).topology, seed=0, base_dir=tmp_path)
    assert message in str(info.value)


def test_graphml_directed_is_rejected(tmp_path: Path) -> None:
    nx.write_graphml(nx.DiGraph([("a", "b")]), tmp_path / "d.graphml")
    with pytest.raises(TopologyError, match="directed"):
        read_topology_file(tmp_path / "d.graphml")


# --------------------------------------------------------------------------- layering

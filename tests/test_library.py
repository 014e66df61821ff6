"""The topohub topology library: offline loading, lengths -> latency, capacity rules, errors."""

from __future__ import annotations

import json
import math
import socket

import networkx as nx
import numpy as np
import pytest

from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.network import build_network
from inl_sim.network.library import (EARTH_RADIUS_KM, PROPAGATION_M_PER_S, apply_capacity_rule, great_circle_km,
                                     library_keys, list_library, read_library)
from inl_sim.scenario import load_scenario
from inl_sim.scenario.spec import CapacityRule

from conftest import tiny_scenario


def _topohub_json(key: str) -> dict:
    """The raw file, read independently of inl_sim (the oracle for counts and lengths)."""
    import importlib.resources
    import topohub
    return json.loads((importlib.resources.files(topohub) / "data" / f"{key}.json").read_text(encoding="utf-8"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is blocked in this test")
    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)


def test_library_network_loads_with_no_network_access(no_network: None) -> None:
    with pytest.raises(OSError):
        socket.socket()  # the block is real
    net = build_network(load_scenario(tiny_scenario({"library": "sndlib/abilene"})).topology, seed=0)
    stats = _topohub_json("sndlib/abilene")["graph"]["stats"]
    assert net.graph.number_of_nodes() == stats["nodes"] == 12
    assert net.graph.number_of_edges() == stats["links"] == 15
    assert net.name == "sndlib/abilene"
    assert net.graph.nodes[0]["label"] == "ATLAM5"


@pytest.mark.parametrize("key", ["topozoo/Abilene", "gabriel/25/0", "backbone/europe"])
def test_counts_match_topohub_stats(key: str) -> None:
    graph = read_library(key)
    raw = _topohub_json(key)
    assert graph.number_of_nodes() == raw["graph"]["stats"]["nodes"]
    assert graph.number_of_edges() == len({frozenset((e["source"], e["target"])) for e in raw["edges"]})


def test_great_circle_closed_forms() -> None:
    assert great_circle_km(0, 0, 90, 0) == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM)
    assert great_circle_km(10, -90, 170, 90) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(5, 5, 5, 5) == 0.0


def test_latency_is_link_length_at_two_thirds_c() -> None:
    graph = read_library("sndlib/abilene")
    raw = _topohub_json("sndlib/abilene")
    for e in raw["edges"]:
        u, v = e["source"], e["target"]
        assert graph.edges[u, v]["latency_s"] == pytest.approx(e["dist"] * 1e3 / (2 / 3 * 299_792_458.0))
        # topohub's length is the great-circle one between the saved (lon, lat) positions
        pu, pv = graph.nodes[u]["pos"], graph.nodes[v]["pos"]
        assert great_circle_km(*pu, *pv) == pytest.approx(e["dist"], rel=5e-3, abs=1.0)
    assert PROPAGATION_M_PER_S * 5e-6 == pytest.approx(999.3, abs=0.1)  # ~5 us per km


def test_scenario_latency_overrides_lengths() -> None:
    net = build_network(load_scenario(tiny_scenario({"library": "sndlib/abilene", "latency_s": 0.005})).topology,
                        seed=0)
    assert {d["latency_s"] for _, _, d in net.graph.edges(data=True)} == {0.005}


def _chain() -> nx.Graph:
    g = nx.path_graph(4)  # degrees 1, 2, 2, 1
    g.add_edge(1, 3)      # degrees 1, 3, 2, 2
    for u, v in g.edges:
        g.edges[u, v]["dist_km"] = 50.0 * (u + v)
    return g


def test_capacity_rules_against_hand_values() -> None:
    g = _chain()
    apply_capacity_rule(g, CapacityRule("by_degree", bps=1e6), np.random.default_rng(0))
    assert {e: g.edges[e]["capacity_bps"] for e in g.edges} == {
        (u, v): 1e6 * min(g.degree(u), g.degree(v)) for u, v in g.edges}
    g = _chain()
    apply_capacity_rule(g, CapacityRule("by_distance", bps=1e9, ref_km=100.0, exponent=2.0), np.random.default_rng(0))
    assert g.edges[0, 1]["capacity_bps"] == 1e9              # 50 km < ref: capped at bps
    assert g.edges[1, 3]["capacity_bps"] == pytest.approx(1e9 * (100 / 200) ** 2)
    g = _chain()
    g.edges[0, 1]["capacity_bps"] = 7.0                       # the data's own capacity wins
    apply_capacity_rule(g, CapacityRule("uniform", low_bps=1e6, high_bps=2e6), np.random.default_rng(3))
    draws = np.random.default_rng(3).uniform(1e6, 2e6, 4)
    assert [g.edges[e]["capacity_bps"] for e in g.edges] == [7.0, *draws[1:].tolist()]


def test_capacity_rule_in_a_scenario_and_seeded() -> None:
    topo = {"library": "gabriel/25/0", "capacity_rule": {"rule": "uniform", "low_bps": 1e6, "high_bps": 1e7}}
    a = build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)
    b = build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)
    caps = [d["capacity_bps"] for _, _, d in a.graph.edges(data=True)]
    assert caps == [d["capacity_bps"] for _, _, d in b.graph.edges(data=True)]
    assert all(1e6 <= c <= 1e7 for c in caps) and len(set(caps)) == len(caps)


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(TopologyError, match="close matches: sndlib/abilene"):
        build_network(load_scenario(tiny_scenario({"library": "sndlib/abilen"})).topology, seed=0)


@pytest.mark.parametrize("topology, message", [
    ({"library": "abilene"}, "collection"),
    ({"library": "sndlib/abilene", "generator": "grid"}, "exactly one source"),
    ({"library": "sndlib/abilene", "capacity_rule": {"rule": "by_magic"}}, "capacity_rule.rule"),
    ({"library": "sndlib/abilene", "capacity_rule": {"rule": "uniform", "low_bps": 5.0, "high_bps": 1.0}}, "low_bps"),
    ({"library": "sndlib/abilene", "capacity_rule": {"bps": -1}}, "capacity_rule.bps"),
    ({"library": "sndlib/abilene", "capacity_rule": {"speed": 1}}, "unknown key"),
])
def test_bad_library_sections(topology: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(tiny_scenario(topology))


def test_list_library_filters_and_counts() -> None:
    import importlib.resources
    import topohub
    files = [p for p in (importlib.resources.files(topohub) / "data" / "sndlib").iterdir() if p.name.endswith(".json")]
    rows = list_library("SNDLIB/")
    assert len(rows) == len(files) and all(r["name"].startswith("sndlib/") for r in rows)
    abilene = next(r for r in rows if r["name"] == "sndlib/abilene")
    assert (abilene["nodes"], abilene["links"], abilene["positions"], abilene["geographic"]) == (12, 15, True, True)
    assert len(library_keys()) >= 700

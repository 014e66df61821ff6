"""Wireless links from geometry, against the closed forms of the link budget."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.network import build_network
from inl_sim.network.wireless import (SPEED_OF_LIGHT_M_PER_S, link_radius_m, path_loss_db, shannon_bps, snr_db,
                                      wireless_links)
from inl_sim.scenario import load_scenario
from inl_sim.scenario.spec import PathLossSpec, WirelessSpec

from conftest import explicit_topology, tiny_scenario

RADIO = WirelessSpec(bandwidth_hz=1e6, tx_power_dbm=0.0, noise_dbm_per_hz=-174.0,
                     path_loss=PathLossSpec(exponent=3.0, ref_loss_db=40.0, ref_distance_m=1.0),
                     min_snr_db=10.0, area_m=500.0)


def test_path_loss_at_reference_and_per_decade() -> None:
    assert float(path_loss_db(RADIO, 1.0)) == 40.0
    assert float(path_loss_db(RADIO, 10.0)) == pytest.approx(70.0)       # +10 n dB per decade
    assert float(path_loss_db(RADIO, 0.1)) == 40.0                       # closer than d0 counts as d0


def test_snr_budget_by_hand() -> None:
    # 0 dBm - (40 + 30 log10(100)) - (-174 + 60) = 0 - 100 + 114 = 14 dB
    assert float(snr_db(RADIO, 100.0)) == pytest.approx(14.0)


def test_shannon_capacity_closed_form() -> None:
    assert float(shannon_bps(1e6, 0.0)) == pytest.approx(1e6)                         # SNR 1 -> 1 bit/s/Hz
    assert float(shannon_bps(2e6, 10 * math.log10(3))) == pytest.approx(4e6)          # SNR 3 -> 2 bit/s/Hz
    assert float(shannon_bps(1e6, 30.0)) == pytest.approx(1e6 * math.log2(1001))


def test_link_radius_is_where_snr_meets_the_threshold() -> None:
    r = link_radius_m(RADIO)
    assert r == pytest.approx(10 ** (64 / 30))                      # budget 0 + 114 - 10 - 40 = 64 dB
    assert float(snr_db(RADIO, r)) == pytest.approx(RADIO.min_snr_db)
    assert link_radius_m(WirelessSpec(tx_power_dbm=-100.0)) == 0.0


def _field(n: int, seed: int) -> nx.Graph:
    g = nx.Graph()
    xy = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    g.add_nodes_from((i, {"pos": (float(x), float(y))}) for i, (x, y) in enumerate(xy))
    return g


def test_links_equal_brute_force_threshold() -> None:
    g = _field(300, 1)
    out = wireless_links(g, RADIO)
    xy = np.array([g.nodes[v]["pos"] for v in g]) * RADIO.area_m
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    snr = RADIO.tx_power_dbm - (40 + 30 * np.log10(np.maximum(d, 1.0))) - (-174 + 60)
    expected = {(i, j) for i in range(300) for j in range(i + 1, 300) if snr[i, j] >= RADIO.min_snr_db}
    assert set(out.edges) == expected and len(expected) > 300
    for i, j in list(expected)[:50]:
        link = out.edges[i, j]
        assert link["capacity_bps"] == pytest.approx(1e6 * math.log2(1 + 10 ** (snr[i, j] / 10)))
        assert link["latency_s"] == pytest.approx(d[i, j] / SPEED_OF_LIGHT_M_PER_S)
    assert list(out) == list(g)  # node order kept: the tie-breaking order


def test_scenario_builds_radio_links_and_seeds_them() -> None:
    topo = {"generator": "random_geometric", "n_nodes": 40, "wireless": {
        "bandwidth_hz": 1e6, "tx_power_dbm": 0.0, "min_snr_db": 10.0, "area_m": 500.0}}
    a = build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)
    b = build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)
    assert list(a.graph.edges(data="capacity_bps")) == list(b.graph.edges(data="capacity_bps"))
    radius = link_radius_m(WirelessSpec(bandwidth_hz=1e6, tx_power_dbm=0.0, min_snr_db=10.0))
    assert all(d <= radius for _, _, d in a.graph.edges(data="distance_m"))


def test_unreachable_radio_says_how_to_fix() -> None:
    topo = {"generator": "random_geometric", "n_nodes": 20, "wireless": {"tx_power_dbm": -60.0, "area_m": 500.0}}
    with pytest.raises(TopologyError, match="tx_power_dbm"):
        build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)


def test_positions_required_and_planar() -> None:
    topo = explicit_topology([[0, 1], [1, 2]], wireless={})
    with pytest.raises(TopologyError, match="has no pos"):
        build_network(load_scenario(tiny_scenario(topo)).topology, seed=0)
    with pytest.raises(TopologyError, match="longitude, latitude"):
        build_network(load_scenario(tiny_scenario({"library": "sndlib/abilene", "wireless": {}})).topology, seed=0)


@pytest.mark.parametrize("wireless, field", [
    ({"bandwidth_hz": 0}, "bandwidth_hz"),
    ({"area_m": -1}, "area_m"),
    ({"path_loss": {"model": "free_space"}}, "path_loss.model"),
    ({"path_loss": {"exponent": 0}}, "path_loss.exponent"),
    ({"path_loss": {"ref_distance_m": 0}}, "ref_distance_m"),
    ({"snr": 3}, "unknown key"),
])
def test_bad_wireless_sections(wireless: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match=field):
        load_scenario(tiny_scenario({"generator": "random_geometric", "n_nodes": 10, "wireless": wireless}))

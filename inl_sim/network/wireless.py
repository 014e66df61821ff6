"""Wireless links from geometry: who hears whom, and how fast, from positions and a radio.

Link budget (all in dB): ``SNR(d) = tx_power_dbm - PL(d) - (noise_dbm_per_hz + 10 log10 B)``
with log-distance path loss ``PL(d) = ref_loss_db + 10 n log10(max(d, d0) / d0)``.  A link
exists where ``SNR >= min_snr_db``; its capacity is Shannon's ``B log2(1 + SNR)`` (linear
SNR) and its latency the free-space propagation time ``d / c``.

SNR falls monotonically with distance, so the threshold is a radius in closed form:
``r = d0 * 10 ** ((tx - N0 - 10 log10 B - min_snr - ref_loss) / (10 n))``.  The links are
then one KD-tree radius query (scipy's ``cKDTree.query_pairs``), O(n log n + links): 10,000
nodes take well under a second.  Positions are multiplied by ``area_m`` (metres per unit).
Symmetric links: both ends use the same power and noise, so SNR is the same both ways.
"""

from __future__ import annotations

import logging
import math

import networkx as nx
import numpy as np

from inl_sim.errors import TopologyError
from inl_sim.scenario.spec import WirelessSpec

__all__ = ["SPEED_OF_LIGHT_M_PER_S", "noise_dbm", "path_loss_db", "snr_db", "shannon_bps", "link_radius_m",
           "wireless_links"]

log = logging.getLogger(__name__)

SPEED_OF_LIGHT_M_PER_S = 299_792_458.0


def noise_dbm(spec: WirelessSpec) -> float:
    """Noise power over the channel: N0 (dBm/Hz) + 10 log10(B)."""
    return spec.noise_dbm_per_hz + 10.0 * math.log10(spec.bandwidth_hz)


def path_loss_db(spec: WirelessSpec, distance_m: np.ndarray | float) -> np.ndarray:
    """Log-distance path loss (dB); distances below ``ref_distance_m`` count as ``ref_distance_m``."""
    pl = spec.path_loss
    d = np.maximum(np.asarray(distance_m, dtype=float), pl.ref_distance_m)
    return pl.ref_loss_db + 10.0 * pl.exponent * np.log10(d / pl.ref_distance_m)


def snr_db(spec: WirelessSpec, distance_m: np.ndarray | float) -> np.ndarray:
    """Received SNR (dB) at ``distance_m``."""
    return spec.tx_power_dbm - path_loss_db(spec, distance_m) - noise_dbm(spec)


def shannon_bps(bandwidth_hz: float, snr_db_value: np.ndarray | float) -> np.ndarray:
    """Shannon capacity ``B log2(1 + SNR)`` with SNR given in dB."""
    return bandwidth_hz * np.log2(1.0 + 10.0 ** (np.asarray(snr_db_value, dtype=float) / 10.0))


def link_radius_m(spec: WirelessSpec) -> float:
    """The largest distance with ``SNR >= min_snr_db`` (closed form; 0 if even d0 falls short)."""
    pl = spec.path_loss
    budget_db = spec.tx_power_dbm - noise_dbm(spec) - spec.min_snr_db - pl.ref_loss_db
    if budget_db < 0:
        return 0.0
    return pl.ref_distance_m * 10.0 ** (budget_db / (10.0 * pl.exponent))


def _positions_m(graph: nx.Graph, spec: WirelessSpec) -> np.ndarray:
    nodes = list(graph)
    missing = [v for v in nodes if graph.nodes[v].get("pos") is None]
    if missing:
        raise TopologyError(f"topology.wireless: node {missing[0]!r} has no pos (and {len(missing) - 1} more); "
                            "wireless links need positions: use generator random_geometric/knn/waxman/grid, "
                            "a gabriel/* library network or give every node pos: [x, y]")
    return np.asarray([graph.nodes[v]["pos"] for v in nodes], dtype=float) * spec.area_m  # (n, 2) metres


def wireless_links(graph: nx.Graph, spec: WirelessSpec) -> nx.Graph:
    """A graph with ``graph``'s nodes (and node attributes) and the links the radio allows.

    Each link carries ``distance_m``, ``snr_db``, ``capacity_bps`` (Shannon) and
    ``latency_s`` (propagation at c); links are inserted in sorted (u, v) index order so
    that the node order stays the tie-breaking order.
    """
    from scipy.spatial import cKDTree

    nodes = list(graph)
    xy = _positions_m(graph, spec)
    radius = link_radius_m(spec)
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray") if radius > 0 else np.zeros((0, 2), int)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs  # (L, 2), i < j
    dist = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)
    snr = snr_db(spec, dist)
    keep = snr >= spec.min_snr_db  # the radius is exact up to rounding; the SNR decides
    pairs, dist, snr = pairs[keep], dist[keep], snr[keep]
    capacity = shannon_bps(spec.bandwidth_hz, snr)
    out = nx.Graph()
    out.add_nodes_from(graph.nodes(data=True))
    out.add_edges_from(
        (nodes[i], nodes[j], {"distance_m": d, "snr_db": s, "capacity_bps": c, "latency_s": d / SPEED_OF_LIGHT_M_PER_S})
        for (i, j), d, s, c in zip(pairs.tolist(), dist.tolist(), snr.tolist(), capacity.tolist()))
    log.debug("wireless: radius %.1f m, %d links over %d nodes", radius, out.number_of_edges(), len(nodes))
    return out

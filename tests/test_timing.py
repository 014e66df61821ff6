"""Tests of the network plane (inl_sim.sim.timing, programs, sweep).

Oracles: the 0.1 reference engine (its ledger's send/start/arrival times and its final
clock, on dense and spt graphs of mesh9, a generated random geometric graph and a graph
with heterogeneous links and node speeds), closed forms written here (a 3-link chain;
FIFO queueing on one channel), and, for the vectorised sweep, the SimPy executor run on
the same traffic.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from inl_sim.learning.data import batch_indices
from inl_sim.network import Network
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import load_scenario
from inl_sim.sim.programs import COMPUTE, RECV, SEND, run_programs
from inl_sim.sim.timing import EpochTraffic, NetworkPlane, TrafficError
from inl_sim.study.setup import prepare
from inl_sim.study.training import train

import networkx as nx
import simpy

from conftest import CHAIN, CHAIN_FLOPS, CHAIN_SPEED, KITE_LINKS, MESH9, chain, explicit_topology, tiny_scenario

EPOCHS = 2
# links and node speeds that differ everywhere (dense: node 1 has three parents, 2 has two)
KITE_FLOPS = {0: 3.0e6, 1: 5.0e6, 2: 7.0e6, 3: 2.0e6, 4: 1.1e7}
TOPOLOGIES = {
    "mesh9": {"file": str(MESH9)},
    "kite": explicit_topology(KITE_LINKS, nodes=[{"id": v, "flops_per_s": f} for v, f in KITE_FLOPS.items()]),
    "rgg": {"generator": "random_geometric", "n_nodes": 14, "params": {"radius": 0.45}, "seed": 5,
            "capacity_bps": {"loguniform": [1.0e5, 1.0e7]}, "latency_s": {"uniform": [0.0, 5.0e-3]},
            "node_flops_per_s": {"loguniform": [1.0e5, 1.0e8]}},
}
CASES = [(t, m) for t in TOPOLOGIES for m in ("spt", "dense")]


@functools.lru_cache(maxsize=None)
def reference(topology: str, mode: str, n_train: int = 200):  # type: ignore[no-untyped-def]
    """A reference-engine run: its setup (after training) and the batch sizes of an epoch."""
    raw = tiny_scenario(TOPOLOGIES[topology], routing={"mode": mode}, data__n_train=n_train,
                        training={"epochs": EPOCHS, "batch_size": 64}, simulation__engine="reference")
    setup = prepare(load_scenario(raw), 0)
    train(setup)
    batch = [len(idx) for idx in batch_indices(n_train, 64, torch.Generator().manual_seed(0))]
    return setup, batch


@pytest.fixture(params=["scalar", "vector"])
def sweep_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the sweep's Python-float or numpy path (it picks by width otherwise)."""
    from inl_sim.sim import sweep
    monkeypatch.setattr(sweep, "SCALAR_BELOW", math.inf if request.param == "scalar" else 0)
    return request.param


def plane_for(setup, executor: str) -> NetworkPlane:  # type: ignore[no-untyped-def]
    flops = {v: setup.modules[v].flops_per_sample() for v in setup.graph.order}
    return NetworkPlane(setup.network, setup.graph, flops, executor=executor)


# --------------------------------------------------------------------------- vs reference

@pytest.mark.parametrize("executor", ["sweep", "simpy"])
@pytest.mark.parametrize("topology,mode", CASES)
def test_times_equal_the_reference_engine(topology: str, mode: str, executor: str, sweep_path: str) -> None:
    setup, batch = reference(topology, mode)
    records = list(setup.ledger.records)
    plane = plane_for(setup, executor)
    assert len({r.t_arrive_s - r.t_start_s for r in records}) > 1  # times are not all alike
    for epoch in range(EPOCHS):
        rows = [r for r in records if r.epoch == epoch]
        traffic = EpochTraffic.from_records(rows, setup.graph.order, epoch, batch)
        got = np.stack(plane.time_inl_epoch(traffic), axis=1)
        want = np.array([(r.t_send_s, r.t_start_s, r.t_arrive_s) for r in rows])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert plane.now_s == pytest.approx(setup.engine.env.now, rel=1e-12)  # the clock spans epochs


def test_order_of_transfers_is_the_callers() -> None:
    setup, batch = reference("kite", "dense")
    rows = [r for r in setup.ledger.records if r.epoch == 0]
    perm = np.random.default_rng(1).permutation(len(rows))
    traffic = EpochTraffic.from_records([rows[i] for i in perm], setup.graph.order, 0, batch)
    t_send, t_start, t_arrive = plane_for(setup, "sweep").time_inl_epoch(traffic)
    np.testing.assert_allclose(t_arrive, [rows[i].t_arrive_s for i in perm], rtol=1e-12, atol=0)
    np.testing.assert_allclose(t_send, [rows[i].t_send_s for i in perm], rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- closed forms



def chain_traffic(batch: list[int], nbytes_per_sample: int) -> EpochTraffic:
    rows = []  # (step, src, dst, direction) with src/dst as positions in order (3, 2, 1, 0)
    for s in range(len(batch)):
        rows += [(s, 0, 1, 0), (s, 1, 2, 0), (s, 2, 3, 0), (s, 3, 2, 1), (s, 2, 1, 1), (s, 1, 0, 1)]
    step, src, dst, d = np.array(rows).T
    n_values = np.array([batch[s] * nbytes_per_sample // 4 for s in step])
    return EpochTraffic(0, step, src, dst, d, n_values, 4 * n_values, np.array(batch))


@pytest.mark.parametrize("executor", ["sweep", "simpy"])
def test_chain_times_are_the_hand_formula(executor: str, sweep_path: str) -> None:
    network, graph = chain()
    batch, per_sample = [64, 64, 17], 32
    plane = NetworkPlane(network, graph, CHAIN_FLOPS, executor=executor)
    t_send, t_start, t_arrive = plane.time_inl_epoch(chain_traffic(batch, per_sample))
    t, k = 0.0, 0
    hops = [(3, 2), (2, 1), (1, 0)]
    for b in batch:
        compute = {v: CHAIN_FLOPS[v] * b / CHAIN_SPEED[v] for v in CHAIN_SPEED}
        link = {(u, v): 8 * b * per_sample / cap + lat for u, v, cap, lat in CHAIN}
        for u, v in hops:  # forward: compute at u, then the link
            t += compute[u]
            assert (t_send[k], t_start[k]) == (pytest.approx(t, rel=1e-12),) * 2
            t += link[(u, v)]
            assert t_arrive[k] == pytest.approx(t, rel=1e-12)
            k += 1
        t += 3 * compute[0]  # the fusion node: forward, then backward (twice the forward)
        for c, p in reversed(hops):  # backward: the error goes p -> c, then c spends 2x its forward
            assert t_send[k] == pytest.approx(t, rel=1e-12)
            t += link[(c, p)]
            assert t_arrive[k] == pytest.approx(t, rel=1e-12)
            t += 2 * compute[c]
            k += 1
    assert plane.now_s == pytest.approx(t, rel=1e-12)


def test_fifo_channel_serialises_back_to_back_sends() -> None:
    # node 0 computes 1 s then sends three transfers on channel 0 (and one on channel 1);
    # node 1 waits for all four.  Oracle: start_i = max(send, end_{i-1}), arrive = end + latency.
    env = simpy.Environment(initial_time=2.0)
    channel = np.array([0, 0, 1, 0])
    tx = np.array([0.5, 0.25, 4.0, 1.0])
    latency = np.array([0.1, 0.3])
    free = np.array([3.25, 0.0])  # channel 0 still busy until t = 3.25
    programs = [[(COMPUTE, 1.0), (SEND, [0, 1, 2]), (COMPUTE, 0.5), (SEND, [3])], [(RECV, [0, 1, 2, 3])]]
    t_send, t_start, t_arrive = run_programs(env, programs, channel, tx, latency, free)
    np.testing.assert_allclose(t_send, [3.0, 3.0, 3.0, 3.5])
    np.testing.assert_allclose(t_start, [3.25, 3.75, 3.0, 4.0])
    np.testing.assert_allclose(t_arrive, [3.85, 4.1, 7.3, 5.1])
    np.testing.assert_allclose(free, [5.0, 7.0])
    assert env.now == pytest.approx(7.3)


# --------------------------------------------------------------------------- sweep == SimPy

def random_dag(n: int, seed: int) -> tuple[Network, TrainingGraph, dict]:
    """A random connected DAG toward node 0 with random links, speeds and FLOPs."""
    rng = np.random.default_rng(seed)
    g = nx.Graph()
    for v in range(n):
        g.add_node(v, flops_per_s=float(rng.uniform(1e5, 1e7)))
    edges = [(v, int(rng.integers(0, v))) for v in range(1, n)]  # a tree keeps it connected
    edges += [(v, int(u)) for v in range(2, n) for u in rng.choice(v, size=min(v, 2), replace=False)
              if (v, int(u)) not in edges and rng.random() < 0.5]
    for c, p in edges:
        g.add_edge(c, p, capacity_bps=float(rng.uniform(1e5, 1e7)), latency_s=float(rng.uniform(0, 1e-2)))
    order = tuple(range(n - 1, -1, -1))
    edges = sorted(edges, key=lambda e: (order.index(e[0]), order.index(e[1])))
    parents = {v: tuple(p for c, p in edges if c == v) for v in order}
    children = {v: tuple(c for c, p in edges if p == v) for v in order}
    tg = TrainingGraph("dense", 0, order[:-1], order, tuple(edges), parents, children, {v: 0.0 for v in order})
    flops = {v: int(rng.integers(0, 5000)) for v in order}
    return Network(g, 0, order[:-1], "random"), tg, flops


def graph_traffic(graph: TrainingGraph, batch: list[int], seed: int) -> EpochTraffic:
    rng = np.random.default_rng(seed)
    index = {v: i for i, v in enumerate(graph.order)}
    rows = []
    for s in range(len(batch)):
        for d in (0, 1):
            for c, p in graph.edges:
                src, dst = (c, p) if d == 0 else (p, c)
                rows.append((s, index[src], index[dst], d, int(rng.integers(1, 5000))))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    step, src, dst, d, n_values = np.array(rows).T
    return EpochTraffic(3, step, src, dst, d, n_values, 2 * n_values, np.array(batch))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sweep_equals_simpy_bit_for_bit(seed: int, sweep_path: str) -> None:
    network, graph, flops = random_dag(40, seed)
    planes = {x: NetworkPlane(network, graph, flops, executor=x) for x in ("sweep", "simpy")}
    for epoch, batch in enumerate([[64, 64, 30], [7], [64] * 4]):
        traffic = graph_traffic(graph, batch, seed * 10 + epoch)
        got = {x: p.time_inl_epoch(traffic) for x, p in planes.items()}
        for a, b in zip(got["sweep"], got["simpy"]):
            assert np.array_equal(a, b)
        assert planes["sweep"].now_s == planes["simpy"].now_s
    assert np.array_equal(planes["sweep"].free_at_s, planes["simpy"].free_at_s)


# --------------------------------------------------------------------------- bad traffic

def test_traffic_that_does_not_fit_the_graph_is_refused() -> None:
    network, graph = chain()
    plane = NetworkPlane(network, graph, CHAIN_FLOPS)
    good = chain_traffic([8, 8], 4)

    def variant(keep: np.ndarray | slice = slice(None), **cols: np.ndarray) -> EpochTraffic:
        base = {k: getattr(good, k)[keep] for k in ("step", "src", "dst", "direction", "n_values", "nbytes")}
        return EpochTraffic(0, **{**base, **cols}, batch=good.batch)

    with pytest.raises(TrafficError, match="step 1, link 1 -> 0, backward: 0 transfers"):
        plane.time_inl_epoch(variant(np.arange(len(good)) != 9))
    dst = good.dst.copy()
    dst[0] = 3  # 3 -> 0 is not a link of the chain
    with pytest.raises(TrafficError, match="transfer 0 \\(3 -> 0\\) is not on an active link"):
        plane.time_inl_epoch(variant(dst=dst))
    with pytest.raises(TrafficError, match="forward \\(0\\) and backward \\(1\\) only"):
        plane.time_inl_epoch(variant(direction=np.where(good.direction == 1, 2, 0)))
    with pytest.raises(TrafficError, match="must index batch"):
        variant(step=good.step + 5)
    with pytest.raises(TrafficError, match="executor"):
        NetworkPlane(network, graph, CHAIN_FLOPS, executor="fast")


def test_programs_time_a_multi_hop_route_on_any_link() -> None:
    # raw data from sensor 3 to the fusion node over the route 3 -> 2 -> 1 -> 0, one transfer
    # per hop, each relay forwarding on arrival; then parameters back 0 -> 1 (a later
    # paradigm's traffic on the same plane and clock).  Oracle: the chain's hand formula.
    network, graph = chain()
    plane = NetworkPlane(network, graph, CHAIN_FLOPS)
    plane.now_s = 1.5
    i = plane.index
    src = np.array([i[3], i[2], i[1], i[0]])
    dst = np.array([i[2], i[1], i[0], i[1]])
    nbytes = np.array([1000, 1000, 1000, 250])
    programs = [[(SEND, [0])], [(RECV, [0]), (SEND, [1])], [(RECV, [1]), (SEND, [2])],
                [(RECV, [2]), (COMPUTE, 0.25), (SEND, [3])]]
    t_send, t_start, t_arrive = plane.time_programs(programs, src, dst, nbytes)
    t = 1.5
    for k, (u, v, cap, lat) in enumerate(CHAIN):
        assert t_send[k] == t_start[k] == pytest.approx(t, rel=1e-12)
        t += 8 * 1000 / cap + lat
        assert t_arrive[k] == pytest.approx(t, rel=1e-12)
    t += 0.25
    assert t_send[3] == pytest.approx(t, rel=1e-12)
    assert t_arrive[3] == pytest.approx(t + 8 * 250 / CHAIN[2][2] + CHAIN[2][3], rel=1e-12)
    assert plane.now_s == pytest.approx(t_arrive[3], rel=1e-12)
    with pytest.raises(TrafficError, match="3 -> 0 is not a link of the network"):
        plane.time_programs([[(SEND, [0])]], np.array([i[3]]), np.array([i[0]]), np.array([8]))


def test_record_inl_epoch_fills_the_ledger_with_the_times() -> None:
    from inl_sim.sim.accounting import Ledger
    network, graph = chain()
    plane = NetworkPlane(network, graph, CHAIN_FLOPS)
    other = NetworkPlane(network, graph, CHAIN_FLOPS)
    ledger = Ledger(nodes=graph.order)
    for epoch in range(2):
        traffic = chain_traffic([8, 3], 4)
        traffic = EpochTraffic(epoch, traffic.step, traffic.src, traffic.dst, traffic.direction,
                               traffic.n_values, traffic.nbytes, traffic.batch)
        plane.record_inl_epoch(traffic, ledger)
        times = other.time_inl_epoch(traffic)
        rows = [r for r in ledger.records if r.epoch == epoch]
        assert [r.t_arrive_s for r in rows] == times[2].tolist()
        assert [(r.src, r.dst) for r in rows] == [(graph.order[s], graph.order[d])
                                                 for s, d in zip(traffic.src, traffic.dst)]
    assert len(ledger) == 2 * 12


def test_a_link_outside_the_training_graph_gets_its_own_channel() -> None:
    # the chain plus a shortcut 3 - 1 that training does not use; a transfer on it queues
    # behind the previous one on the same direction (FIFO), not behind the chain's channels
    network, graph = chain()
    g = network.graph.copy()
    g.add_edge(3, 1, capacity_bps=8.0e3, latency_s=0.5)
    plane = NetworkPlane(Network(g, 0, (3,), "chain+"), graph, CHAIN_FLOPS)
    i = plane.index
    src, dst = np.array([i[3], i[3], i[3]]), np.array([i[1], i[1], i[2]])
    t_send, t_start, t_arrive = plane.time_programs([[(SEND, [0, 1, 2])]], src, dst, np.array([1000, 500, 1000]))
    np.testing.assert_allclose(t_start, [0.0, 1.0, 0.0])
    np.testing.assert_allclose(t_arrive, [1.5, 2.0, 8 * 1000 / 1.0e6 + 2.0e-3])
    assert len(plane.free_at_s) == 2 * 3 + 1  # the training links' six channels, plus 3 -> 1


def test_a_fault_model_plugs_in_as_a_transmit_function() -> None:
    # channel 0 is down during [3.0, 4.0): a message that would start inside waits for 4.0
    # (a later issue's failures); the executor itself is unchanged.  Oracle: hand arithmetic.
    def down_until_4(i: int, c: int, now: float, free: list) -> tuple[float, float]:
        start = max(now, free[c])
        if c == 0 and 3.0 <= start < 4.0:
            start = 4.0
        free[c] = start + tx[i]
        return start, free[c] + latency[c]

    tx, latency = [0.5, 0.25, 4.0], [0.1, 0.3]
    env = simpy.Environment(initial_time=2.0)
    programs = [[(COMPUTE, 1.0), (SEND, [0, 1, 2])], [(RECV, [0, 1, 2])]]
    t_send, t_start, t_arrive = run_programs(env, programs, np.array([0, 0, 1]), np.array(tx),
                                             np.array(latency), np.zeros(2), transmit=down_until_4)
    np.testing.assert_allclose(t_send, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(t_start, [4.0, 4.5, 3.0])
    np.testing.assert_allclose(t_arrive, [4.6, 4.85, 7.3])

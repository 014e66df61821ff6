"""Tests of the transfer ledger and simulated time, end to end through tiny runs.

Oracles are closed forms written here: bytes = 2 * epochs * n_train * latent_dim *
bytes_per_value * edges for fixed-width messages, edge counts worked out by hand for the
explicit graphs (and the 8/27 of mesh9), link capacities read from the test's own
topology definitions, and, on a chain, simulated time = the sum of transmission times,
latencies and compute times along the one path.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from fractions import Fraction

import pytest
import yaml

import inl_sim
from inl_sim.sim.accounting import FIELDS, Ledger, Transfer
from inl_sim.study.experiment import prepare
from inl_sim.scenario import load_scenario

from conftest import KITE_LINKS, MESH9, explicit_topology, tiny_scenario

LATENT = 8
EPOCHS = 2
BATCH = 64

# conftest.KITE_LINKS: dense INL uses all 7 links, the tree 1->0, 2->0, 3->2, 4->3
KITE = explicit_topology(KITE_LINKS, nodes=[0, 1, 2, 3, 4])
KITE_EDGES = {"spt": {(1, 0), (2, 0), (3, 2), (4, 3)},
              "dense": {(1, 0), (2, 0), (3, 2), (4, 3), (1, 2), (1, 3), (4, 2)}}

TOPOLOGIES = {"kite": KITE, "mesh9": {"file": str(MESH9)}}
N_EDGES = {("kite", "spt"): 4, ("kite", "dense"): 7, ("mesh9", "spt"): 8, ("mesh9", "dense"): 27}


def _links(name: str) -> dict[frozenset, dict]:
    """Capacity and latency per link, read from the test's own definitions (not the network)."""
    rows = KITE_LINKS if name == "kite" else yaml.safe_load(MESH9.read_text())["edges"]
    return {frozenset((u, v)): attrs for u, v, attrs in rows}


@functools.lru_cache(maxsize=None)
def run_case(topology: str, mode: str, n_train: int = 256, encoding: str = "float32",
             grad_encoding: str = "float32") -> inl_sim.RunResult:
    raw = tiny_scenario(TOPOLOGIES[topology], routing={"mode": mode},
                        message={"encoding": encoding, "grad_encoding": grad_encoding},
                        training={"epochs": EPOCHS, "batch_size": BATCH},
                        model={"latent_dim": LATENT, "hidden_dim": 16},
                        data__n_train=n_train)
    return inl_sim.run(load_scenario(raw), 0)


CASES = [(t, m, n) for t in TOPOLOGIES for m in ("spt", "dense") for n in (256, 200)]


# --------------------------------------------------------------------------- bytes

@pytest.mark.parametrize("topology,mode,n_train", CASES)
def test_exchange_bytes_closed_form(topology: str, mode: str, n_train: int) -> None:
    res = run_case(topology, mode, n_train)
    edges = N_EDGES[(topology, mode)]
    assert res.n_active_edges == edges
    expected = 2 * EPOCHS * n_train * LATENT * 4 * edges
    assert res.exchange_bytes == expected
    assert res.exchange_bytes_forward == res.exchange_bytes_backward == expected // 2


@pytest.mark.parametrize("topology,mode,n_train", CASES)
def test_records_one_per_message_with_fixed_width(topology: str, mode: str, n_train: int) -> None:
    res = run_case(topology, mode, n_train)
    edges = N_EDGES[(topology, mode)]
    steps_per_epoch = math.ceil(n_train / BATCH)
    assert len(res.transfers) == 2 * EPOCHS * steps_per_epoch * edges
    batch_sizes = [BATCH] * (n_train // BATCH) + ([n_train % BATCH] if n_train % BATCH else [])
    for r in res.transfers:
        assert r.direction in ("forward", "backward")
        assert r.nbytes == 4 * r.n_values
        assert r.n_values == batch_sizes[r.step] * LATENT, r
    # every (epoch, step) sends exactly one message per active link and direction
    per_step = Counter((r.epoch, r.step, r.direction) for r in res.transfers)
    assert set(per_step.values()) == {edges}
    assert len(per_step) == 2 * EPOCHS * steps_per_epoch


@pytest.mark.parametrize("mode", ["spt", "dense"])
def test_forward_goes_child_to_parent_and_backward_returns(mode: str) -> None:
    res = run_case("kite", mode)
    forward = {(r.src, r.dst) for r in res.transfers if r.direction == "forward"}
    backward = {(r.dst, r.src) for r in res.transfers if r.direction == "backward"}
    assert forward == backward == KITE_EDGES[mode]


@pytest.mark.parametrize("topology,n_train", [("kite", 256), ("kite", 200), ("mesh9", 256)])
def test_spt_over_dense_is_exactly_the_edge_ratio(topology: str, n_train: int) -> None:
    spt, dense = run_case(topology, "spt", n_train), run_case(topology, "dense", n_train)
    n_nodes = len({v for e in _links(topology) for v in e})
    expected = Fraction(n_nodes - 1, N_EDGES[(topology, "dense")])
    assert Fraction(spt.exchange_bytes, dense.exchange_bytes) == expected
    if topology == "mesh9":
        assert expected == Fraction(8, 27)


def test_totals_are_sums_over_records() -> None:
    res = run_case("kite", "dense", 200)
    fwd = sum(r.nbytes for r in res.transfers if r.direction == "forward")
    bwd = sum(r.nbytes for r in res.transfers if r.direction == "backward")
    assert (res.exchange_bytes_forward, res.exchange_bytes_backward) == (fwd, bwd)
    assert res.exchange_bytes == fwd + bwd == sum(r.nbytes for r in res.transfers)
    assert sum(h["exchange_bytes"] for h in res.history) == res.exchange_bytes
    for h in res.history:
        in_epoch = [r for r in res.transfers if r.epoch == h["epoch"]]
        assert h["exchange_bytes_forward"] == sum(r.nbytes for r in in_epoch if r.direction == "forward")
        assert h["exchange_bytes_backward"] == sum(r.nbytes for r in in_epoch if r.direction == "backward")
    s = res.summary()
    assert (s["exchange_bytes"], s["exchange_bytes_forward"], s["exchange_bytes_backward"]) == (fwd + bwd, fwd, bwd)
    assert s["n_transfers"] == len(res.transfers)


@pytest.mark.parametrize("mode", ["spt", "dense"])
def test_float16_halves_the_bytes(mode: str) -> None:
    full = run_case("kite", mode)
    half_fwd = run_case("kite", mode, encoding="float16")
    half_both = run_case("kite", mode, encoding="float16", grad_encoding="float16")
    assert half_fwd.exchange_bytes_forward * 2 == full.exchange_bytes_forward
    assert half_fwd.exchange_bytes_backward == full.exchange_bytes_backward
    assert half_both.exchange_bytes * 2 == full.exchange_bytes
    assert all(r.nbytes == 2 * r.n_values for r in half_both.transfers)


def test_ledger_totals_and_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger()
    rows = [Transfer(0, 0, 1, 0, "forward", 8, 32, 0.0, 0.0, 1.0),
            Transfer(0, 0, 0, 1, "backward", 8, 16, 1.0, 1.5, 2.0),
            Transfer(1, 0, 1, 0, "forward", 4, 16, 2.0, 2.0, 3.0),
            Transfer(1, 0, 1, 0, "parameters", 2, 8, 3.0, 3.0, 4.0)]
    for r in rows:
        ledger.add(r)
    assert len(ledger) == 4
    assert ledger.total_bytes() == 72
    assert ledger.total_bytes("forward") == 48 and ledger.total_bytes(epoch=1) == 24
    assert ledger.total_bytes("forward", epoch=0) == 32
    assert ledger.bytes_per_link() == {(1, 0, "forward"): 48, (0, 1, "backward"): 16, (1, 0, "parameters"): 8}
    path = tmp_path / "t.csv"
    ledger.write_csv(path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(FIELDS) and len(lines) == 5
    assert lines[2] == "0,0,0,1,backward,8,16,1.0,1.5,2.0"


# --------------------------------------------------------------------------- link timing

@pytest.mark.parametrize("topology,mode", [("kite", "dense"), ("kite", "spt"), ("mesh9", "dense")])
def test_each_record_arrives_after_serialisation_and_latency(topology: str, mode: str) -> None:
    res = run_case(topology, mode, 200)
    links = _links(topology)
    busy: dict[tuple, list] = defaultdict(list)
    for r in res.transfers:
        link = links[frozenset((r.src, r.dst))]
        tx_s = 8 * r.nbytes / link["capacity_bps"]
        assert r.t_arrive_s == pytest.approx(r.t_start_s + tx_s + link["latency_s"], rel=1e-12, abs=1e-15)
        assert r.t_send_s <= r.t_start_s
        busy[(r.src, r.dst)].append((r.t_start_s, r.t_start_s + tx_s))
    for (src, dst), spans in busy.items():  # a direction of a link serialises one message at a time
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end - 1e-12, f"channel {src}->{dst} overlaps"


# Chain 3 - 2 - 1 - 0: fusion 0 at one end, the sensor at the other; distinct links.
CHAIN_LINKS = [
    [3, 2, {"capacity_bps": 1.0e6, "latency_s": 2.0e-3}],
    [2, 1, {"capacity_bps": 4.0e6, "latency_s": 5.0e-4}],
    [1, 0, {"capacity_bps": 2.5e7, "latency_s": 3.0e-3}],
]


#: gate 'none' leaves relays 1 and 2 without parameters (no optimiser); 'gaussian' gives them a gate.
GATES = ["none", "gaussian"]


def chain_scenario(n_train: int, epochs: int, flops: dict | None, sensors: list, gate: str) -> dict:
    nodes = [0, 1, 2, 3] if flops is None else [{"id": v, "flops_per_s": flops[v]} for v in (0, 1, 2, 3)]
    topo = explicit_topology(CHAIN_LINKS, nodes=nodes, sensors=sensors, node_flops_per_s=1.0e30)
    return tiny_scenario(topo, data__n_train=n_train, data__n_test=32, gate={"kind": gate},
                         training={"epochs": epochs, "batch_size": BATCH}, model={"latent_dim": LATENT})


def link_time_one_way(batch: int) -> float:
    nbytes = batch * LATENT * 4
    return sum(8 * nbytes / a["capacity_bps"] + a["latency_s"] for _, _, a in CHAIN_LINKS)


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("mode", ["spt", "dense"])
@pytest.mark.parametrize("n_train,epochs", [(64, 1), (128, 1), (64, 2)])
def test_chain_time_is_links_only_when_compute_is_free(mode: str, n_train: int, epochs: int, gate: str) -> None:
    raw = chain_scenario(n_train, epochs, None, [3], gate)
    raw["routing"]["mode"] = mode
    res = inl_sim.run(load_scenario(raw), 0)
    assert res.n_active_edges == 3 and set(res.graph.edges) == {(3, 2), (2, 1), (1, 0)}
    steps = epochs * n_train // BATCH
    # one step = the three links forward then the same three backward; steps run back to back
    assert res.sim_time_s == pytest.approx(steps * 2 * link_time_one_way(BATCH), rel=1e-12)


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("sensors", [[3], [3, 1]])
def test_chain_time_adds_compute(sensors: list, gate: str) -> None:
    flops = {0: 3.0e6, 1: 5.0e6, 2: 7.0e6, 3: 2.0e6}
    raw = chain_scenario(BATCH, 1, flops, sensors, gate)
    res = inl_sim.run(load_scenario(raw), 0)
    setup = prepare(load_scenario(raw), 0)
    compute_s = {v: setup.modules[v].flops_per_sample() * BATCH / flops[v] for v in setup.graph.order}
    assert compute_s[3] > 0 and compute_s[0] > 0
    assert (compute_s[2] == 0) == (gate == "none")  # relay 2 only forwards, through its gate if any
    # forward: each node's compute once; backward: twice; plus every link both ways
    expected = 3 * sum(compute_s.values()) + 2 * link_time_one_way(BATCH)
    assert res.sim_time_s == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("gate", GATES)
def test_chain_record_times_follow_the_critical_path(gate: str) -> None:
    res = inl_sim.run(load_scenario(chain_scenario(BATCH, 1, None, [3], gate)), 0)
    hops = [(3, 2, "forward"), (2, 1, "forward"), (1, 0, "forward"),
            (0, 1, "backward"), (1, 2, "backward"), (2, 3, "backward")]
    records = {(r.src, r.dst, r.direction): r for r in res.transfers}
    assert set(records) == set(hops)
    t = 0.0
    for src, dst, direction in hops:
        attrs = next(a for u, v, a in CHAIN_LINKS if {u, v} == {src, dst})
        r = records[(src, dst, direction)]
        assert r.t_send_s == pytest.approx(t, abs=1e-20)
        t += 8 * r.nbytes / attrs["capacity_bps"] + attrs["latency_s"]
        assert r.t_arrive_s == pytest.approx(t, rel=1e-12)
    assert res.sim_time_s == pytest.approx(t, rel=1e-12)

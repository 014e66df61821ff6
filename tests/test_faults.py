"""Faults in the network plane: loss and retransmission, outages, stragglers, capacity, policies.

Oracles: the geometric distribution (mean attempts 1/(1-p)), hand-computed critical
paths on a chain, networkx's Dijkstra on the surviving graph, the fault-free run's own
ledger, and the stationary law of a two-state Markov chain.
"""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest

from conftest import CHAIN, CHAIN_FLOPS, CHAIN_SPEED, chain, tiny_scenario
from inl_sim.errors import ScenarioError
from inl_sim.network.dynamics import capacity_model
from inl_sim.network.faults import FaultSchedule, _RandomOutages
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import load_scenario
from inl_sim.scenario.faults import CapacitySpec, to_faults
from inl_sim.sim.accounting import Ledger
from inl_sim.sim.faults import FaultRecorder, StallError
from inl_sim.sim.timing import NetworkPlane
from inl_sim.study.experiment import run
from inl_sim.study.setup import prepare
from inl_sim.study.training import train

WIDTH = 8  # values per sample of every message (float32: 32 bytes per sample)


def chain_recorder(faults: dict, seed: int = 0, steps_per_epoch: int = 4) -> tuple[FaultRecorder, Ledger]:
    network, graph = chain()
    plane = NetworkPlane(network, graph, CHAIN_FLOPS, executor="simpy")
    ledger = Ledger(nodes=plane.nodes)
    schedule = FaultSchedule(to_faults(faults), network, seed=seed, steps_per_epoch=steps_per_epoch)
    return FaultRecorder(ledger, plane, schedule, seed=seed, width=WIDTH, bytes_per_value=4), ledger


def run_chain_steps(rec: FaultRecorder, batches: list[int]) -> np.ndarray | None:
    """Feed float32 steps to the recorder as the learning plane would; return the last keep mask."""
    child, parent = rec.plane.child.astype(np.int32), rec.plane.parent.astype(np.int32)
    keep = None
    for step, b in enumerate(batches):
        keep = rec.begin_step(step, b)
        nbytes = np.full(len(child), b * WIDTH * 4, dtype=np.int64)
        rec.add_step(step, b, nbytes, nbytes, child, parent, b * WIDTH)
    return keep


# --------------------------------------------------------------------------- scenario section

@pytest.mark.parametrize("faults, words", [
    ({"loss_prob": 1.0}, "loss_prob"),
    ({"loss_prob": -0.1}, "loss_prob"),
    ({"lossprob": 0.1}, "unknown key"),
    ({"events": [{"fail_link": [0, 1]}]}, "needs one anchor"),
    ({"events": [{"at_epoch": 1, "at_time_s": 2.0, "fail_link": [0, 1]}]}, "needs one anchor"),
    ({"events": [{"at_epoch": 1, "fail_link": [0, 1], "fail_node": 3}]}, "exactly one action"),
    ({"events": [{"at_epoch": 1, "fail_link": [0]}]}, "must be a link"),
    ({"policy": "deadline"}, "deadline_s"),
    ({"policy": "wait", "deadline_s": 0.1}, "no effect under policy wait"),
    ({"policy": "hope"}, "is not one of"),
    ({"stragglers": {"kind": "fixed"}}, "factors"),
    ({"stragglers": {"kind": "fixed", "factors": {1: 0.0}}}, "must be >"),
    ({"capacity": {"kind": "gilbert_elliott", "p_good_to_bad": 1.5}}, "p_good_to_bad"),
    ({"capacity": {"kind": "schedule"}}, "schedule"),
    ({"random": {"mtbf_s": 0}}, "mtbf_s"),
    ({"link_loss": [[0, 1]]}, "[u, v, loss_prob]"),
])
def test_bad_faults_sections_name_the_field_and_the_fix(faults: dict, words: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(tiny_scenario(faults=faults))
    assert words in str(exc.value) and ";" in str(exc.value)


def test_faults_need_the_fast_engine() -> None:
    with pytest.raises(ScenarioError, match="reference engine"):
        load_scenario(tiny_scenario(faults={"loss_prob": 0.1}, simulation={"engine": "reference"}))
    load_scenario(tiny_scenario(simulation={"engine": "reference"}))  # no faults: fine
    with pytest.raises(ScenarioError, match="paradigm is 'fl'"):
        load_scenario(tiny_scenario(faults={"loss_prob": 0.1}, paradigm="fl"))


def test_unknown_link_or_node_is_named() -> None:
    sc = load_scenario(tiny_scenario(faults={"events": [{"at_epoch": 0, "fail_link": [0, 99]}]}))
    with pytest.raises(ScenarioError, match=r"faults.events\[0\].fail_link: node 99"):
        prepare(sc, 0)


def test_the_section_round_trips_through_the_resolved_dict() -> None:
    from inl_sim.scenario import scenario_to_dict
    sc = load_scenario(tiny_scenario(faults={
        "loss_prob": 0.1, "link_loss": [[0, 2, 0.2]], "events": [{"at_epoch": 1, "at_step": 2, "fail_node": 3}],
        "stragglers": {"kind": "trace", "trace": {1: [1.0, 2.0]}},
        "capacity": {"kind": "schedule", "schedule": [{"at_time_s": 1.0, "factor": 0.5, "link": [0, 2]}]},
        "policy": "deadline", "deadline_s": 0.05}))
    assert load_scenario(scenario_to_dict(sc)) == sc


# --------------------------------------------------------------------------- loss and retransmission

def test_mean_attempts_per_delivered_message_is_one_over_one_minus_p() -> None:
    p = 0.3
    rec, ledger = chain_recorder({"loss_prob": p})
    run_chain_steps(rec, [16] * 600)
    cols = ledger.columns()
    delivered = cols["delivered"]
    attempts = cols["attempt"][delivered].astype(float)          # the delivered attempt's number = attempts used
    n = len(attempts)
    assert n == 600 * 6
    se = math.sqrt(p / (1 - p) ** 2 / n)                          # geometric: var = p / (1 - p)^2
    assert abs(attempts.mean() - 1 / (1 - p)) < 3 * se
    # every lost attempt is a record: attempts-per-message records in all
    assert len(cols["attempt"]) == int(attempts.sum())
    assert int(cols["nbytes"].sum()) == int((cols["nbytes"][delivered] * attempts).sum())


def test_retransmission_times_are_stop_and_wait() -> None:
    rec, ledger = chain_recorder({"link_loss": [[2, 1, 0.5]], "retransmit_timeout_s": 0.01})
    run_chain_steps(rec, [8] * 50)
    t = ledger.records.to_pandas()
    link = t[(t.src == 2) & (t.dst == 1)].reset_index(drop=True)
    tx = 8 * 8 * WIDTH * 4 / 4.0e6
    assert (link.t_arrive_s - link.t_start_s).to_numpy() == pytest.approx(tx + 5.0e-4, rel=1e-9)
    assert (link.attempt > 1).any()
    for i in range(1, len(link)):
        if link.attempt[i] > 1:  # the retry starts one timeout after the lost attempt's last bit
            assert link.t_start_s[i] == pytest.approx(link.t_start_s[i - 1] + tx + 0.01, rel=1e-12)
            assert not link.delivered[i - 1]
    other = ~(((t.src == 2) & (t.dst == 1)) | ((t.src == 1) & (t.dst == 2)))   # the link loses both ways
    assert (t[other].attempt == 1).all() and (t[~other].attempt > 1).any()


def test_loss_keeps_delivered_bytes_and_learning_unchanged() -> None:
    base = run(tiny_scenario(training={"epochs": 2, "batch_size": 64}), 0)
    lossy = run(tiny_scenario(training={"epochs": 2, "batch_size": 64}, faults={"loss_prob": 0.25}), 0)
    cols, ref = lossy.transfers.columns, base.transfers.columns
    ok = cols["delivered"]
    assert int(cols["nbytes"][ok].sum()) == int(ref["nbytes"].sum())
    assert int(ok.sum()) == len(base.transfers) and (~ok).sum() > 0
    assert int(cols["nbytes"].sum()) > int(ref["nbytes"].sum())
    assert lossy.accuracy == base.accuracy                   # policy wait: every message arrives, later
    assert lossy.sim_time_s > base.sim_time_s


def test_same_seed_same_faults_bit_for_bit() -> None:
    faults = {"loss_prob": 0.2, "random": {"mtbf_s": 0.05, "mttr_s": 0.001},
              "stragglers": {"kind": "lognormal", "sigma": 0.5}, "capacity": {"kind": "gilbert_elliott"}}
    a, b = (run(tiny_scenario(faults=faults), 3).transfers.columns for _ in range(2))
    c = run(tiny_scenario(faults=faults), 4).transfers.columns
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["t_arrive_s"], c["t_arrive_s"])


def test_an_inert_fault_times_each_step_after_the_last_one() -> None:
    """A straggler factor of 1 takes the fault path: same records and bytes; step 0 timed as
    the fault-free plane does, later steps start only once every node finished the one before
    (never earlier than the pipelined fault-free schedule)."""
    base = run(tiny_scenario(), 0).transfers.columns
    same = run(tiny_scenario(faults={"stragglers": {"kind": "fixed", "factors": {1: 1.0}}}), 0).transfers.columns
    for k in ("step", "src", "dst", "direction", "nbytes"):
        assert np.array_equal(base[k], same[k])
    first = base["step"] == 0
    assert np.array_equal(base["t_arrive_s"][first], same["t_arrive_s"][first])
    assert (same["t_arrive_s"] >= base["t_arrive_s"]).all()
    for s in range(1, int(base["step"].max()) + 1):   # the barrier: a step starts after the last one ended
        assert same["t_send_s"][same["step"] == s].min() >= same["t_arrive_s"][same["step"] == s - 1].max()


# --------------------------------------------------------------------------- stragglers

def test_a_chain_with_one_straggler_gives_the_hand_computed_critical_path() -> None:
    m, batches = 6.0, [64, 64, 17]
    rec, ledger = chain_recorder({"stragglers": {"kind": "fixed", "factors": {2: m}}})
    run_chain_steps(rec, batches)
    t = 0.0
    for b in batches:
        compute = {v: CHAIN_FLOPS[v] * b / CHAIN_SPEED[v] * (m if v == 2 else 1.0) for v in CHAIN_SPEED}
        link = sum(8 * b * WIDTH * 4 / cap + lat for _, _, cap, lat in CHAIN)
        # forward 3 -> 2 -> 1 -> 0, backward at 0 (2x), errors back, backward at 1, 2, 3 (2x each)
        t += 3 * sum(compute.values()) + 2 * link
    assert rec.now_s == pytest.approx(t, rel=1e-12)
    assert ledger.columns()["t_arrive_s"].max() <= rec.now_s


# --------------------------------------------------------------------------- outages and policies

def test_a_link_down_for_good_stalls_policy_wait_with_a_fix() -> None:
    rec, _ = chain_recorder({"events": [{"at_step": 1, "fail_link": [2, 1]}]})
    with pytest.raises(StallError, match="policy wait.*at_time_s"):
        run_chain_steps(rec, [8, 8, 8])


def test_wait_delays_transfers_until_the_link_recovers() -> None:
    rec, ledger = chain_recorder({"events": [{"at_time_s": 0.0, "fail_link": [2, 1]},
                                             {"at_time_s": 0.5, "recover_link": [2, 1]}]})
    run_chain_steps(rec, [8, 8])
    t = ledger.records.to_pandas()
    on_link = t[((t.src == 2) & (t.dst == 1)) | ((t.src == 1) & (t.dst == 2))]
    assert on_link.t_start_s.min() == pytest.approx(0.5, rel=1e-12)
    assert (t.t_start_s[(t.src == 3) & (t.step == 0)] < 0.5).all()   # the leaf's first message left before


def test_deadline_drops_a_failed_tree_links_inputs_and_counts_them() -> None:
    faults = {"events": [{"at_epoch": 0, "at_step": 2, "fail_link": [3, 2]}], "policy": "deadline",
              "deadline_s": 1.0}
    rec, ledger = chain_recorder(faults)
    keep = run_chain_steps(rec, [8, 8, 8, 8])
    assert keep is not None and keep.tolist() == [False, True, True]    # edge (3, 2) dropped
    t = ledger.records.to_pandas()
    assert set(t.step[(t.src == 3) | (t.dst == 3)]) == {0, 1}
    assert rec.totals["dropped_down"] == 2 and rec.totals["dropped_inputs"] == 2


def test_deadline_drops_a_stragglers_late_input_and_waits_until_the_deadline() -> None:
    m, b = 50.0, 8
    faults = {"stragglers": {"kind": "fixed", "factors": {3: m}}, "policy": "deadline", "deadline_s": 0.02}
    rec, ledger = chain_recorder(faults)
    run_chain_steps(rec, [b])
    # node 3's message leaves after 50 x 2000 * 8 / 2e6 = 0.4 s, past the 0.02 s deadline: sent, not waited for
    t = ledger.records.to_pandas()
    assert rec.totals["dropped_late"] == 1 and len(t[(t.src == 3)]) == 1 and len(t[(t.dst == 3)]) == 0
    fwd_21 = t[(t.src == 2) & (t.dst == 1)].iloc[0]   # node 2 (level 1) waited until 1 x deadline_s
    assert fwd_21.t_send_s == pytest.approx(0.02 + CHAIN_FLOPS[2] * b / CHAIN_SPEED[2], rel=1e-12)
    assert rec.totals["dropped_inputs"] == 1                  # node 2's own message is due at 2 x deadline_s


def test_failing_a_non_tree_link_leaves_dinl_untouched() -> None:
    sc = tiny_scenario(training={"epochs": 2})
    graph = prepare(load_scenario(sc), 0).graph
    tree = {frozenset(e) for e in graph.edges}
    network = prepare(load_scenario(sc), 0).network
    spare = next(e for e in network.graph.edges if frozenset(e) not in tree)
    for policy, extra in (("deadline", {"deadline_s": 10.0}), ("repair", {})):
        base = run(tiny_scenario(training={"epochs": 2}, faults={"policy": policy, **extra}), 0)
        hit = run(tiny_scenario(training={"epochs": 2}, faults={
            "events": [{"at_epoch": 1, "fail_link": list(spare)}], "policy": policy, **extra}), 0)
        assert hit.accuracy == base.accuracy and hit.graph.edges == base.graph.edges
        for k in ("src", "dst", "nbytes", "t_arrive_s"):
            assert np.allclose(hit.transfers.columns[k], base.transfers.columns[k], rtol=1e-12)


def test_the_repaired_tree_is_networkx_dijkstra_on_the_surviving_graph() -> None:
    sc = load_scenario(tiny_scenario(training={"epochs": 2}))
    before = prepare(sc, 0)
    cut = before.graph.edges[-1]                               # a tree link into the fusion node
    faults = {"events": [{"at_epoch": 1, "fail_link": list(cut)}], "policy": "repair"}
    setup = prepare(load_scenario(tiny_scenario(training={"epochs": 2}, faults=faults)), 0)
    history = train(setup)
    assert [h["faults_repaired"] for h in history] == [False, True]
    surviving = nx.Graph(before.network.graph)
    surviving.remove_edge(*cut)
    payload_bits = sc.model.latent_dim * 32
    _, paths = nx.single_source_dijkstra(surviving, 0, weight=lambda u, v, d: payload_bits / d["capacity_bps"])
    expected = {(v, path[-2]) for v, path in paths.items() if v != 0 and v in setup.graph.order}
    assert set(setup.graph.edges) == expected and cut not in setup.graph.edges
    assert set(before.network.sensors) <= set(setup.graph.order)
    cols = setup.ledger.columns()
    nodes = np.array(setup.ledger.nodes)
    later = cols["epoch"] == 1
    pairs = {frozenset((int(a), int(b))) for a, b in zip(nodes[cols["src"][later]], nodes[cols["dst"][later]])}
    assert frozenset(cut) not in pairs


# --------------------------------------------------------------------------- capacity and random failures

def test_gilbert_elliott_spends_the_stationary_share_in_the_bad_state() -> None:
    spec = CapacitySpec(kind="gilbert_elliott", p_good_to_bad=0.1, p_bad_to_good=0.3, bad_factor=0.25)
    links = [frozenset((0, i)) for i in range(1, 21)]
    model = capacity_model(spec, links, 0, lambda k, w: k)
    bad, n = 0, 5000
    for g in range(n):
        model.begin_step(g, 0.0)
        bad += sum(model.factor(k, 0.0) == 0.25 for k in links)
    share = bad / (n * len(links))
    assert share == pytest.approx(0.1 / (0.1 + 0.3), abs=0.02)


def test_a_capacity_schedule_scales_serialisation() -> None:
    rec, ledger = chain_recorder({"capacity": {"kind": "schedule",
                                               "schedule": [{"at_step": 1, "factor": 0.5, "link": [1, 0]}]}})
    run_chain_steps(rec, [8, 8])
    t = ledger.records.to_pandas()
    link = t[(t.src == 1) & (t.dst == 0)]
    tx = 8 * 8 * WIDTH * 4 / 2.5e7
    assert (link.t_arrive_s - link.t_start_s).tolist() == pytest.approx([tx + 3e-3, 2 * tx + 3e-3], rel=1e-12)


def test_random_outages_are_down_mttr_over_mtbf_plus_mttr_of_the_time() -> None:
    outages = _RandomOutages(seed=1, index=0, mtbf_s=3.0, mttr_s=1.0)
    grid = np.linspace(0, 20_000, 200_001)
    down = np.mean([outages.down(t) for t in grid])
    assert down == pytest.approx(1.0 / 4.0, abs=0.02)
    again = _RandomOutages(seed=1, index=0, mtbf_s=3.0, mttr_s=1.0)
    assert again.intervals(100.0) == outages.intervals(100.0)


# --------------------------------------------------------------------------- results, energy, report

def test_a_faulty_run_folder_reports_attempt_energy_timeline_and_figures(tmp_path) -> None:
    from inl_sim.report.faults import accuracy_through_failure_figure, failure_epochs, fault_timeline_figure
    from inl_sim.report.html import build_report, load_results
    from inl_sim.study.results import read_run

    faults = {"loss_prob": 0.2, "events": [{"at_epoch": 1, "at_step": 1, "fail_link": [0, 2]}],
              "policy": "deadline", "deadline_s": 10.0}
    res = run(tiny_scenario(training={"epochs": 2}, energy={"tx_j_per_bit": 1e-9, "rx_j_per_bit": 0.0},
                            faults=faults), 0, out_dir=tmp_path / "run")
    s = res.summary()
    cols = res.transfers.columns
    assert s["faults_bytes_sent"] == int(cols["nbytes"].sum()) > s["faults_bytes_delivered"]
    assert s["energy_tx_j"] == pytest.approx(8 * s["faults_bytes_sent"] * 1e-9)   # every attempt costs
    assert s["faults_lost_attempts"] == int((~cols["delivered"]).sum()) > 0
    saved = json.loads((tmp_path / "run" / "faults.json").read_text())
    fail = [r for r in saved["timeline"] if r["event"] == "fail_link"]
    assert len(fail) == 1 and fail[0]["target"] == [0, 2] and fail[0]["step"] == 4 + 1
    back = read_run(tmp_path / "run")["transfers"]
    assert [r["attempt"] for r in back] == cols["attempt"].tolist()
    assert [r["delivered"] for r in back] == cols["delivered"].tolist()
    data = load_results(tmp_path / "run")
    timeline = fault_timeline_figure(data)
    assert [t.x[0] for t in timeline.data] == [pytest.approx(fail[0]["time_s"])]
    assert failure_epochs(data.runs[data.methods[0]][0], saved) == [1]
    assert len(accuracy_through_failure_figure(data).data) == 2
    assert build_report(tmp_path / "run").is_file()


def test_evaluation_over_a_cut_link_ignores_the_subtree_behind_it() -> None:
    import torch
    from inl_sim.learning.modules import composed_forward
    setup = prepare(load_scenario(tiny_scenario()), 0)
    graph = setup.graph
    child = graph.children[graph.fusion][0]
    behind = {child}
    for v in reversed(graph.order):                       # parents before children: collect the subtree
        if any(p in behind for p in graph.parents[v]):
            behind.add(v)
    views = dict(setup.dataset.test_views)
    moved = {v: (x + 3.0 if v in behind else x) for v, x in views.items()}
    assert any(v in behind for v in views)
    with torch.no_grad():
        cut = {(child, graph.fusion)}
        a, _ = composed_forward(graph, setup.modules, views, cut=cut)
        b, _ = composed_forward(graph, setup.modules, moved, cut=cut)
        c, _ = composed_forward(graph, setup.modules, moved)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_failed_node_is_routed_around_and_its_sensor_dropped() -> None:
    sc = load_scenario(tiny_scenario(training={"epochs": 2}))
    before = prepare(sc, 0)
    relay = next(v for v in before.graph.order if before.graph.children[v] and v != before.graph.fusion)
    faults = {"events": [{"at_epoch": 1, "fail_node": relay}], "policy": "repair"}
    setup = prepare(load_scenario(tiny_scenario(training={"epochs": 2}, faults=faults)), 0)
    train(setup)
    assert relay not in setup.graph.order
    surviving = nx.Graph(before.network.graph)
    surviving.remove_node(relay)
    payload_bits = sc.model.latent_dim * 32
    _, paths = nx.single_source_dijkstra(surviving, 0, weight=lambda u, v, d: payload_bits / d["capacity_bps"])
    assert set(setup.graph.edges) == {(v, p[-2]) for v, p in paths.items() if v != 0 and v in setup.graph.order}
    assert set(setup.graph.sensors) == set(before.network.sensors) - {relay}


def test_rewired_concat_keeps_the_columns_of_inputs_it_still_has() -> None:
    import torch
    from inl_sim.learning.rewire import rewire_modules
    sc = load_scenario(tiny_scenario())
    setup = prepare(sc, 0)
    old = setup.graph
    v = next(u for u in old.order if len(old.children[u]) >= 2)        # a node with two children or more
    gone, kept = old.children[v][0], old.children[v][1:]
    # the same graph but v loses its first child to a newcomer slot at the end
    newcomer = next(u for u in old.order if u not in old.children[v] and u != v and u != old.fusion)
    children = {**old.children, v: tuple(kept) + (newcomer,)}
    new = TrainingGraph(old.mode, old.fusion, old.sensors, old.order, old.edges, old.parents, children, old.distance)
    out = rewire_modules(old, new, setup.modules, setup.dataset.view_dims, setup.dataset.n_classes, sc.model,
                         sc.gate, seed=1)
    d = sc.model.latent_dim
    own = 1 if v in setup.dataset.view_dims else 0
    w_old, w_new = setup.modules[v].aggregator[0].weight, out[v].aggregator[0].weight
    if own:
        assert torch.equal(w_new[:, :d], w_old[:, :d])                 # own view keeps its columns
    for j, c in enumerate(kept):                                       # a kept child moves with its columns
        i = old.children[v].index(c)
        assert torch.equal(w_new[:, (own + j) * d:(own + j + 1) * d], w_old[:, (own + i) * d:(own + i + 1) * d])
    assert torch.count_nonzero(w_new[:, -d:]) == 0                      # the newcomer starts silent
    assert out[gone] is setup.modules[gone]                            # untouched nodes keep their module


def test_a_straggler_trace_repeats_per_step() -> None:
    rec, _ = chain_recorder({"stragglers": {"kind": "trace", "trace": {3: [1.0, 4.0]}}})
    seen = []
    for step in range(4):
        rec.begin_step(step, 8)
        seen.append(rec.compute_s[0, 0] / (CHAIN_FLOPS[3] * 8 / CHAIN_SPEED[3]))
        nbytes = np.full(3, 8 * WIDTH * 4, dtype=np.int64)
        rec.add_step(step, 8, nbytes, nbytes, rec.plane.child.astype(np.int32), rec.plane.parent.astype(np.int32),
                     8 * WIDTH)
    assert seen == pytest.approx([1.0, 4.0, 1.0, 4.0], rel=1e-12)


def test_compute_energy_counts_each_graph_a_node_ran_on() -> None:
    from inl_sim.study.experiment import _energy
    sc = load_scenario(tiny_scenario(training={"epochs": 2}, energy={"j_per_flop": 1e-9}))
    before = prepare(sc, 0)
    inert = run(tiny_scenario(training={"epochs": 2}, energy={"j_per_flop": 1e-9},
                              faults={"stragglers": {"kind": "fixed", "factors": {1: 1.0}}}), 0)
    clean = run(sc, 0)
    assert inert.summary()["energy_compute_j"] == pytest.approx(clean.summary()["energy_compute_j"], rel=1e-12)
    cut = before.graph.edges[-1]
    setup = prepare(load_scenario(tiny_scenario(training={"epochs": 2}, energy={"j_per_flop": 1e-9}, faults={
        "events": [{"at_epoch": 1, "fail_link": list(cut)}], "policy": "repair"})), 0)
    train(setup)
    n = setup.dataset.n_train
    per_graph = [sum(m.flops_per_sample() for v, m in s.modules.items() if v in s.graph.order) for s in (before, setup)]
    expected = 1e-9 * 3 * n * sum(per_graph)                  # epoch 0 on the tree, epoch 1 on the repaired tree
    assert per_graph[0] != per_graph[1]
    assert _energy(setup, 2).summary()["energy_compute_j"] == pytest.approx(expected, rel=1e-12)


def test_faults_on_a_network_larger_than_its_training_graph() -> None:
    """Nodes outside the training graph (pruned relays) are in the ledger's node table, so a
    repair may route through them."""
    raw = tiny_scenario(training={"epochs": 2}, faults={"loss_prob": 0.1, "policy": "repair"})
    raw["topology"]["sensors"] = [3, 5]
    setup = prepare(load_scenario(raw), 0)
    outside = set(setup.network.graph) - set(setup.graph.order)
    assert outside and outside <= set(setup.ledger.nodes)
    cut = setup.graph.edges[-1]
    raw["faults"]["events"] = [{"at_epoch": 1, "fail_link": list(cut)}]
    res = run(raw, 0)
    assert cut not in res.graph.edges and res.summary()["faults_repairs"] == 1
    assert res.summary()["faults_bytes_delivered"] < res.summary()["faults_bytes_sent"]


def test_random_outages_under_wait_delay_but_never_lose_a_message() -> None:
    base = run(tiny_scenario(training={"epochs": 2}), 0)
    hit = run(tiny_scenario(training={"epochs": 2}, faults={"random": {"mtbf_s": 0.02, "mttr_s": 0.01}}), 0)
    cols = hit.transfers.columns
    assert len(hit.transfers) == len(base.transfers) and cols["delivered"].all()
    assert hit.accuracy == base.accuracy and hit.sim_time_s > 1.2 * base.sim_time_s
    saved = hit.faults["timeline"]
    assert any(r["event"] == "fail_link" for r in saved) and any(r["event"] == "recover_link" for r in saved)
    # no transfer started on a link while the random process held it down
    setup = prepare(load_scenario(tiny_scenario(training={"epochs": 2}, faults={
        "random": {"mtbf_s": 0.02, "mttr_s": 0.01}})), 0)
    train(setup)
    t = setup.ledger.records.to_pandas()
    sched = setup.faults.schedule
    for row in t.itertuples():
        assert not sched.random[frozenset((row.src, row.dst))].down(row.t_start_s)


def test_the_resource_estimate_counts_the_fault_path() -> None:
    from inl_sim.scenario.budget import estimate
    clean = estimate(load_scenario(tiny_scenario()))
    lossy = estimate(load_scenario(tiny_scenario(faults={"loss_prob": 0.5})))
    assert lossy.time_s > clean.time_s and lossy.memory_bytes == clean.memory_bytes

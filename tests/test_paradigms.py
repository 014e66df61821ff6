"""Paradigms beside INL (centralised, FL, SL) on one network, one ledger, one clock.

Oracles: byte closed forms on a tree (hop counts from networkx, parameter counts from
the layer widths), the FIFO chain formula for times, the centralised run for split
learning (same model, same batches), and numpy for FedAvg's weighted mean.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

import inl_sim
from inl_sim.errors import ScenarioError
from inl_sim.learning.paradigms.federated import fedavg, sample_clients
from tests.conftest import explicit_topology, tiny_scenario

# a tree rooted at the fusion node 0: relays 1 and 3 carry other sensors' traffic
TREE = [(0, 1, {"capacity_bps": 2.0e6, "latency_s": 1e-3}), (0, 2, {"capacity_bps": 1.0e6, "latency_s": 2e-3}),
        (1, 3, {"capacity_bps": 4.0e6, "latency_s": 0.5e-3}), (1, 4, {"capacity_bps": 1.0e6, "latency_s": 1e-3}),
        (3, 5, {"capacity_bps": 3.0e6, "latency_s": 1e-3}), (2, 6, {"capacity_bps": 1.0e6, "latency_s": 3e-3})]
SENSORS = [2, 4, 5, 6]
N_TRAIN, VIEW, LATENT, HIDDEN, CLASSES = 256, 6, 8, 16, 8


def _hops() -> dict:
    g = nx.Graph([(u, v) for u, v, _ in TREE])
    return {s: nx.shortest_path_length(g, s, 0) for s in SENSORS}


def _tree_run(paradigm: str, **dotted: object) -> inl_sim.RunResult:
    raw = tiny_scenario(explicit_topology(TREE, fusion=0, sensors=SENSORS), paradigm=paradigm, **dotted)
    return inl_sim.run(raw, seed=0)


def _by_direction(res: inl_sim.RunResult) -> dict:
    out: dict = {}
    for r in res.transfers:
        out[r.direction] = out.get(r.direction, 0) + r.nbytes
    return out


def test_centralised_bytes_closed_form() -> None:
    res = _tree_run("centralised", training__epochs=3)
    expected = sum(_hops().values()) * N_TRAIN * VIEW * 4
    assert _by_direction(res) == {"raw_data": expected}
    assert res.exchange_bytes == res.exchange_bytes_raw_data == expected   # sent once, not per epoch
    again = _tree_run("centralised", training__epochs=3, centralised__resend="per_epoch")
    assert again.exchange_bytes_raw_data == 3 * expected


def test_fl_bytes_closed_form_every_client_every_round() -> None:
    rounds = 3
    res = _tree_run("fl", fl__rounds=rounds)
    n_params = (VIEW * HIDDEN + HIDDEN) + (HIDDEN * LATENT + LATENT) + (LATENT * CLASSES + CLASSES)
    assert _by_direction(res) == {"parameters": 2 * rounds * sum(_hops().values()) * n_params * 4}
    assert {r.n_values for r in res.transfers} == {n_params}
    assert len(res.history) == rounds


def test_sl_bytes_closed_form() -> None:
    epochs, cut = 2, 5
    res = _tree_run("sl", training__epochs=epochs, sl__cut_width=cut)
    one_way = epochs * N_TRAIN * sum(_hops().values()) * cut * 4
    assert _by_direction(res) == {"forward": one_way, "backward": one_way}
    assert res.exchange_bytes == 2 * one_way


def test_inl_bytes_unchanged_on_the_tree() -> None:
    res = _tree_run("inl", training__epochs=2)
    n_edges = len(TREE)                                  # every tree link is on a sensor's path
    assert res.exchange_bytes == 2 * 2 * N_TRAIN * LATENT * 4 * n_edges
    assert res.exchange_bytes_parameters == res.exchange_bytes_raw_data == 0


@pytest.mark.parametrize("paradigm", ["centralised", "sl", "fl"])
def test_a_route_carries_the_same_message_on_every_hop(paradigm: str) -> None:
    res = _tree_run(paradigm)
    g = nx.Graph([(u, v) for u, v, _ in TREE])
    recs = list(res.transfers)
    for s in SENSORS:
        path = nx.shortest_path(g, s, 0)
        up = [[r for r in recs if (r.src, r.dst) == (a, b) and r.epoch == 0 and r.step == 0
               and r.direction != "backward"] for a, b in zip(path[:-1], path[1:])]
        # the sensor's own message is the first on its first hop; later hops carry it among others
        own = up[0][0]
        assert all(any(r.n_values == own.n_values and r.nbytes == own.nbytes for r in hop) for hop in up)
        # store and forward: on some record of each next hop, it leaves the relay when it arrived
        for prev, nxt in zip(up[:-1], up[1:]):
            assert {r.t_arrive_s for r in prev} & {r.t_send_s for r in nxt}


def test_relay_chain_time_is_the_sum_of_hops() -> None:
    chain = [(0, 1, {"capacity_bps": 1.0e6, "latency_s": 1e-3}), (1, 2, {"capacity_bps": 2.0e6, "latency_s": 2e-3}),
             (2, 3, {"capacity_bps": 5.0e5, "latency_s": 0.0})]
    raw = tiny_scenario(explicit_topology(chain, fusion=0, sensors=[3]), paradigm="centralised",
                        topology__node_flops_per_s=1e9)
    res = inl_sim.run(raw, seed=0)
    nbytes = N_TRAIN * VIEW * 4
    expected = sum(8 * nbytes / a["capacity_bps"] + a["latency_s"] for _, _, a in chain)
    arrive = max(r.t_arrive_s for r in res.transfers)
    assert arrive == pytest.approx(expected, rel=1e-12)
    assert [(r.src, r.dst) for r in sorted(res.transfers, key=lambda r: r.t_send_s)] == [(3, 2), (2, 1), (1, 0)]
    # then one epoch of training at the fusion node: 3 x forward FLOPs per sample x samples / speed
    flops = 2 * (VIEW * HIDDEN + HIDDEN * LATENT + LATENT * HIDDEN + HIDDEN * CLASSES)
    assert res.sim_time_s == pytest.approx(expected + 3 * flops * N_TRAIN / 1e9, rel=1e-12)


def test_split_learning_trains_the_same_model_as_centralised() -> None:
    cen = _tree_run("centralised", training__epochs=2)
    sl = _tree_run("sl", training__epochs=2)
    for a, b in zip(cen.history, sl.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1e-9)
    assert cen.test_loss == pytest.approx(sl.test_loss, rel=1e-6)


def test_each_paradigm_trains_and_fl_stays_below_inl() -> None:
    base = {"data__n_train": 2048, "data__n_test": 1024, "training__epochs": 8}
    acc = {p: inl_sim.run(tiny_scenario(paradigm=p, **base), seed=0).accuracy for p in ("inl", "centralised", "sl")}
    fl = inl_sim.run(tiny_scenario(paradigm="fl", **base), seed=0)
    chance = 1 / CLASSES
    assert min(acc.values()) > 6 * chance               # fusing views: far above the one-view cap of 0.5
    assert fl.accuracy > 2 * chance                      # FedAvg learns something from single views ...
    assert fl.accuracy < 0.5 < acc["inl"]                # ... but one view cannot separate the 8 classes
    assert fl.extra["accuracy_per_client"] < 0.5


def test_fedavg_is_the_sample_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    vecs, ns = [rng.normal(size=7).astype(np.float32) for _ in range(3)], [10, 30, 60]
    got = fedavg([torch.from_numpy(v) for v in vecs], ns).numpy()
    np.testing.assert_allclose(got, np.average(np.stack(vecs), axis=0, weights=ns), rtol=1e-6)


def test_clients_per_round_are_drawn_with_the_seed() -> None:
    draws = [sample_clients(8, 3, torch.Generator().manual_seed(4)) for _ in range(2)]
    assert draws[0] == draws[1] and len(set(draws[0])) == 3
    res = _tree_run("fl", fl__rounds=4, fl__clients_per_round=2)
    for r in range(4):
        uploads = [t for t in res.transfers if t.epoch == r and t.dst == 0]      # last hops into the server
        downloads = [t for t in res.transfers if t.epoch == r and t.src == 0]
        assert len(uploads) == len(downloads) == 2


def test_inference_cost_per_paradigm() -> None:
    hops = sum(_hops().values())
    assert _tree_run("centralised").inference_bytes_per_sample == hops * VIEW * 4
    assert _tree_run("sl").inference_bytes_per_sample == hops * LATENT * 4
    assert _tree_run("fl").inference_bytes_per_sample == hops * CLASSES * 4
    assert _tree_run("fl", fl__inference="per_client").inference_bytes_per_sample == 0
    inl = _tree_run("inl")
    assert inl.inference_bytes_per_sample == len(TREE) * LATENT * 4
    assert inl.inference_latency_s > 0
    # not counted as training
    assert inl.exchange_bytes == 2 * N_TRAIN * LATENT * 4 * len(TREE)


@pytest.mark.parametrize("paradigm", ["centralised", "fl", "sl"])
def test_same_seed_same_records(paradigm: str) -> None:
    a, b = _tree_run(paradigm, fl__rounds=2), _tree_run(paradigm, fl__rounds=2)
    assert a.transfers == b.transfers and a.accuracy == b.accuracy and a.history[-1] == {
        **b.history[-1], "wall_time_s": a.history[-1]["wall_time_s"]}


def test_history_has_cumulative_bytes_and_time_to_95() -> None:
    res = _tree_run("sl", training__epochs=3)
    cum = np.cumsum([h["exchange_bytes"] for h in res.history])
    assert [h["exchange_bytes_cumulative"] for h in res.history] == cum.tolist()
    s = res.summary()
    final = res.history[-1]["test_accuracy"]
    first = next(h for h in res.history if h["test_accuracy"] >= 0.95 * final)
    assert s["time_to_95pct_s"] == first["sim_time_s"] and s["paradigm"] == "sl"


@pytest.mark.parametrize("dotted, fragment", [
    ({"paradigm": "gossip"}, "paradigm"),
    ({"fl.rounds": 0}, "fl.rounds"),
    ({"fl.local_epochs": 0}, "fl.local_epochs"),
    ({"fl.inference": "vote"}, "fl.inference"),
    ({"sl.schedule": "random"}, "sl.schedule"),
    ({"sl.cut_width": 0}, "sl.cut_width"),
    ({"centralised.resend": "never"}, "centralised.resend"),
    ({"fl.clients": 3}, "fl.clients"),
])
def test_bad_paradigm_options(dotted: dict, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment.replace(".", r"\.")):
        inl_sim.load_scenario(tiny_scenario(), dotted)


def test_too_many_clients_per_round_is_refused() -> None:
    with pytest.raises(ScenarioError, match="clients_per_round"):
        _tree_run("fl", fl__clients_per_round=9)


def test_sequential_split_learning_is_slower_not_different() -> None:
    par, seq = _tree_run("sl"), _tree_run("sl", sl__schedule="sequential")
    assert seq.exchange_bytes == par.exchange_bytes and seq.accuracy == par.accuracy
    assert seq.sim_time_s > par.sim_time_s
    assert math.isfinite(seq.summary()["time_to_95pct_s"])


CHAIN = [(0, 1, {"capacity_bps": 1.0e6, "latency_s": 1e-3}), (1, 2, {"capacity_bps": 2.0e6, "latency_s": 2e-3})]
SPEED = 1.0e6   # FLOP/s, slow enough that compute shows on the clock


def _chain_run(paradigm: str, **dotted: object) -> inl_sim.RunResult:
    raw = tiny_scenario(explicit_topology(CHAIN, fusion=0, sensors=[2]), paradigm=paradigm,
                        topology__node_flops_per_s=SPEED, **dotted)
    return inl_sim.run(raw, seed=0)


def _route_s(nbytes: int) -> float:
    return sum(8 * nbytes / a["capacity_bps"] + a["latency_s"] for _, _, a in CHAIN)


def test_split_learning_clock_on_a_chain() -> None:
    batch, steps = 64, N_TRAIN // 64
    bottom = 2 * (VIEW * HIDDEN + HIDDEN * LATENT)                    # sensor 2's MLP, FLOPs per sample
    top = 2 * (LATENT * HIDDEN + HIDDEN * CLASSES)                    # the server's MLP over one cut
    step_s = (3 * bottom * batch / SPEED + 3 * top * batch / SPEED    # bottom fwd + bwd, top fwd + bwd
              + 2 * _route_s(batch * LATENT * 4))                     # activation up, error down
    res = _chain_run("sl")
    assert res.sim_time_s == pytest.approx(steps * step_s, rel=1e-12)
    hops = sorted((r for r in res.transfers if r.step == 0 and r.direction == "forward"), key=lambda r: r.t_send_s)
    assert hops[1].t_send_s == hops[0].t_arrive_s                    # the relay forwards on arrival


def test_federated_round_clock_on_a_chain() -> None:
    n_params = (VIEW * HIDDEN + HIDDEN) + (HIDDEN * LATENT + LATENT) + (LATENT * CLASSES + CLASSES)
    flops = 2 * (VIEW * HIDDEN + HIDDEN * LATENT + LATENT * CLASSES)
    round_s = (2 * _route_s(n_params * 4) + 3 * flops * N_TRAIN / SPEED   # down, local epoch, up
               + 2 * n_params / SPEED)                                     # weighted average at the server
    res = _chain_run("fl", fl__rounds=2)
    assert [h["sim_time_s"] for h in res.history] == pytest.approx([round_s, 2 * round_s], rel=1e-12)


def test_one_client_fedavg_is_plain_local_training() -> None:
    res = _chain_run("fl", fl__rounds=1, fl__inference="per_client")
    # the oracle: the same model and batches in a plain loop (seeds as documented in study.paradigms)
    from inl_sim.learning.data import make_dataset
    from inl_sim.learning.paradigms.models import ViewNet, seeded
    from inl_sim.network import build_network
    from torch.nn import functional as F
    sc = inl_sim.load_scenario(tiny_scenario(explicit_topology(CHAIN, fusion=0, sensors=[2])))
    data = make_dataset(sc.data, build_network(sc.topology, seed=0).sensors, seed=0)
    net = seeded(17, lambda: ViewNet(VIEW, LATENT, HIDDEN, CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=sc.training.lr)
    x, y = data.train_views[2], data.train_labels
    for idx in torch.randperm(len(y), generator=torch.Generator().manual_seed(0)).split(64):   # round 0, client 0
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((net(data.test_views[2]).argmax(-1) == data.test_labels).float().mean())
    assert res.accuracy == acc


def test_compare_sets_the_paradigm_and_the_report_draws_progress(tmp_path) -> None:
    from inl_sim.report import build_report
    methods = [{"name": "central", "set": {"paradigm": "centralised"}}, {"name": "fedavg", "set": {"paradigm": "fl"}},
               {"name": "d-inl", "set": {"paradigm": "inl", "routing.mode": "spt"}}]
    cmp = inl_sim.compare(tiny_scenario(), methods=methods, seeds=[0], out_dir=tmp_path / "cmp")
    assert [r["paradigm"] for r in cmp.rows] == ["centralised", "fl", "inl"]
    assert cmp.row("fedavg")["exchange_bytes_parameters_mean"] > 0 == cmp.row("fedavg")["exchange_bytes_forward_mean"]
    assert cmp.row("central")["inference_bytes_per_sample_mean"] == 18 * VIEW * 4   # mesh9: 18 route hops
    page = build_report(tmp_path / "cmp").read_text()
    assert "fig-progress" in page and "fedavg" in page
    from inl_sim.report import link_bytes, load_results
    per = link_bytes(load_results(tmp_path / "cmp"))       # every direction lands on a link of the route tree
    tree = {(str(c), str(p)) for c, p in cmp.runs["fedavg"][0].graph.edges}
    assert set(per["fedavg"]) == tree
    for name in ("central", "fedavg", "d-inl"):
        assert sum(sum(c.values()) for c in per[name].values()) == cmp.row(name)["exchange_bytes_mean"]


@pytest.mark.parametrize("paradigm", ["centralised", "sl"])
def test_a_non_finite_loss_is_a_diverged_run(paradigm: str) -> None:
    res = inl_sim.run(tiny_scenario(paradigm=paradigm, training__lr=1e6, training__optimizer="sgd",
                                    training__epochs=3), seed=0)
    assert res.status == "diverged" and math.isnan(res.accuracy)
    assert "training.lr" in res.diverged["reason"] and len(res.history) == 1
    assert res.summary()["status"] == "diverged"


@pytest.mark.parametrize("cost", ["payload_over_capacity", "hops"])
def test_routes_follow_the_routing_cost(cost: str) -> None:
    # the direct link 1-0 is slow: by transmission time the route goes round through 2
    triangle = [(0, 1, {"capacity_bps": 1.0e3, "latency_s": 1e-3}), (0, 2, {"capacity_bps": 1.0e7, "latency_s": 1e-3}),
                (1, 2, {"capacity_bps": 1.0e7, "latency_s": 1e-3})]
    raw = tiny_scenario(explicit_topology(triangle, fusion=0, sensors=[1]), paradigm="centralised",
                        routing__cost=cost)
    res = inl_sim.run(raw, seed=0)
    g = nx.Graph()
    for u, v, a in triangle:
        g.add_edge(u, v, w=1.0 / a["capacity_bps"] if cost == "payload_over_capacity" else 1.0)
    path = nx.dijkstra_path(g, 1, 0, weight="w")
    assert [(r.src, r.dst) for r in sorted(res.transfers, key=lambda r: r.t_send_s)] == list(zip(path, path[1:]))
    assert res.exchange_bytes == (len(path) - 1) * N_TRAIN * VIEW * 4


def test_show_lists_the_routes_with_their_hops() -> None:
    from inl_sim.network import build_network
    from inl_sim.study.show import describe
    sc = inl_sim.load_scenario(tiny_scenario())
    net = build_network(sc.topology, seed=0)
    _, paths = nx.single_source_dijkstra(net.graph, net.fusion, weight=lambda u, v, d: 1.0 / d["capacity_bps"])
    total = sum(len(paths[s]) - 1 for s in net.sensors)
    text = describe(sc)
    assert f"routes of centralised/fl/sl: {total} hops over {len(net.sensors)} sensors" in text
    assert "->".join(map(str, paths[net.sensors[-1]][::-1])) in text


def test_inl_history_has_cumulative_bytes_too() -> None:
    res = _tree_run("inl", training__epochs=3)
    per_epoch = 2 * N_TRAIN * LATENT * 4 * len(TREE)
    assert [h["exchange_bytes_cumulative"] for h in res.history] == [per_epoch, 2 * per_epoch, 3 * per_epoch]


@pytest.mark.parametrize("tree_seed", [1, 2, 3])
def test_closed_forms_on_random_trees(tree_seed: int) -> None:
    tree = nx.random_labeled_tree(10, seed=tree_seed)
    rng = np.random.default_rng(tree_seed)
    edges = [(u, v, {"capacity_bps": float(rng.uniform(1e5, 1e7)), "latency_s": 1e-3}) for u, v in tree.edges]
    sensors = sorted(int(s) for s in rng.choice(np.arange(1, 10), size=5, replace=False))
    hops = sum(nx.shortest_path_length(tree, s, 0) for s in sensors)     # routes are unique on a tree
    run = lambda p, **kw: inl_sim.run(tiny_scenario(explicit_topology(edges, fusion=0, sensors=sensors),  # noqa: E731
                                                    paradigm=p, **kw), seed=0)
    n_params = (VIEW * HIDDEN + HIDDEN) + (HIDDEN * LATENT + LATENT) + (LATENT * CLASSES + CLASSES)
    assert run("centralised").exchange_bytes_raw_data == hops * N_TRAIN * VIEW * 4
    assert run("fl", fl__rounds=2).exchange_bytes_parameters == 2 * 2 * hops * n_params * 4
    sl = run("sl", training__epochs=2)
    assert sl.exchange_bytes_forward == sl.exchange_bytes_backward == 2 * N_TRAIN * hops * LATENT * 4
    # INL unchanged: one message per tree link on some sensor's path, per sample and direction
    used = {e for s in sensors for e in zip(nx.shortest_path(tree, s, 0), nx.shortest_path(tree, s, 0)[1:])}
    assert run("inl").exchange_bytes == 2 * N_TRAIN * LATENT * 4 * len(used)

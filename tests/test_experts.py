"""Tests of the finite expert bank on the network (scenario, bank, routing, ledger, CLI).

Oracles: R(D) = H(p) - H(D) of a Bernoulli(p) source with Hamming distortion (a bank of
two hand-built class-group experts is exactly that source), the closed forms of the
bytes a routed or broadcast pass must carry (N samples x 64 float32 values, times the
hop counts of networkx's shortest paths), the link model (8 nbytes / capacity +
latency), and the Shannon bound for the entropy-coded choices.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from inl_sim import cli
from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.learning.curves import accuracy_rate_curve
from inl_sim.learning.experts import ExpertBank, choice_nbytes, fixed_choice_bits
from inl_sim.network import build_network
from inl_sim.network.experts import place_experts
from inl_sim.scenario import load_scenario
from inl_sim.study.experts import expert_study

LN2 = math.log(2.0)
PIXEL_NBYTES = 64 * 4          # one digit as float32 on the wire


def small(**experts) -> dict:
    """A 3 x 4 grid and a bank that trains in about a second."""
    base = {"n_experts": 4, "bank": "class_groups", "n_pretrain": 300, "expert_steps": 40,
            "alphas": [0.0, 0.1, 1.0], "n_resamples": 60, "n_selection": 30, "batch_size": 128}
    return {"name": "experts_test", "seed": 0, "routing": {"cost": "hops"},
            "topology": {"generator": "grid", "params": {"rows": 3, "cols": 4}, "fusion": "first"},
            "experts": {**base, **experts}}


def hb_bits(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --------------------------------------------------------------------------- scenario
@pytest.mark.parametrize("override,field", [
    ({"experts.n_experts": 1}, "experts.n_experts"),
    ({"experts.routing": "soft"}, "experts.routing"),
    ({"experts.routing": "top_k", "experts.k": 5}, "experts.k"),
    ({"experts.k": 2}, "experts.k"),
    ({"experts.alphas": [0.1, -2]}, "experts.alphas"),
    ({"experts.alphas": []}, "experts.alphas"),
    ({"experts.alphas": ["x"]}, "experts.alphas[0]"),
    ({"experts.nodes": [1, 2]}, "experts.nodes"),
    ({"experts.nodes": [1, 1, 2, 3]}, "experts.nodes"),
    ({"experts.choice_coding": "huffman"}, "experts.choice_coding"),
    ({"experts.n_pretrain": 1790}, "experts.n_pretrain"),
    ({"experts.colour": 1}, "colour"),
    ({"experts.alphas": [float("nan")]}, "experts.alphas[0]"),
    ({"experts.alphas": ["1e400"]}, "experts.alphas[0]"),
    ({"experts.alphas": [True]}, "experts.alphas[0]"),
    ({"experts.alphas": {"a": 1}}, "experts.alphas"),
    ({"experts.alphas": [1.0e300]}, "experts.alphas"),
    ({"experts.alphas": list(range(2000))}, "experts.alphas"),
    ({"experts.nodes": [[1], 2, 3, 4]}, "experts.nodes"),
    ({"experts.nodes": "abc"}, "experts.nodes"),
    ({"experts.router": [1]}, "experts.router"),
    ({"experts.router": True}, "experts.router"),
    ({"experts.n_resamples": 100_000, "experts.n_selection": 100_000}, "experts.n_resamples"),
    ({"experts.n_experts": 10 ** 9}, "experts.n_experts"),
])
def test_bad_experts_values_name_the_field(override: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(small(), override)


def test_placement_farthest_from_the_router_and_errors() -> None:
    sc = load_scenario(small())
    net = build_network(sc.topology, seed=0)
    placed = place_experts(net, sc.experts, cost="hops")
    hops = nx.single_source_shortest_path_length(net.graph, placed.router)
    others = [v for v in net.graph.nodes if v not in (placed.router, net.fusion)]
    farthest = sorted(others, key=lambda v: -hops[v])[:4]
    assert sorted(hops[v] for v in placed.experts) == sorted(hops[v] for v in farthest)
    assert [len(p) - 1 for p in placed.to_expert] == [hops[v] for v in placed.experts]
    with pytest.raises(TopologyError, match="experts.nodes"):
        place_experts(net, load_scenario(small(nodes=[placed.router, 5, 6, 7])).experts)
    with pytest.raises(TopologyError, match="experts.router"):
        place_experts(net, load_scenario(small(router=99)).experts)


# --------------------------------------------------------------------------- the curve on a bank
def group_expert(group: set[int]) -> torch.nn.Module:
    """Exact on one-hot digits of its group; answers its group's first class otherwise."""
    w = torch.zeros(10, 10)
    for c in range(10):
        w[c if c in group else min(group), c] = 1.0
    layer = torch.nn.Linear(10, 10, bias=False)
    layer.weight.data = w
    return layer


@pytest.mark.parametrize("n_minority", [50, 120, 200])
def test_bank_curve_reproduces_bernoulli_hamming(n_minority: int) -> None:
    y = torch.tensor([0] * (400 - n_minority) + [7] * n_minority)            # group {0..4} vs {5..9}
    x = torch.nn.functional.one_hot(y, 10).float()
    bank = ExpertBank((group_expert({0, 1, 2, 3, 4}), group_expert({5, 6, 7, 8, 9})), torch.nn.Linear(10, 2),
                      x, y, x, ("low", "high"))
    wrong = bank.wrong()
    p = n_minority / 400
    np.testing.assert_array_equal(wrong[:, 0], (y.numpy() >= 5).astype(float))
    curve = accuracy_rate_curve(wrong, [0.5, 1.0, 2.0, 4.0, 8.0])
    assert curve.d_max == pytest.approx(p) and curve.d_min == 0.0
    assert curve.oracle_rate_bits == pytest.approx(hb_bits(p), abs=1e-9)
    for pt in curve.points:
        if pt.kind == "ba" and pt.distortion < p - 1e-6:
            assert pt.rate_bits == pytest.approx(hb_bits(p) - hb_bits(pt.distortion), abs=1e-4)


# --------------------------------------------------------------------------- experts as nodes
@pytest.fixture(scope="module")
def top1():
    return expert_study(small())


def test_hard_top1_sends_exactly_one_kth_of_broadcast_to_the_experts(top1) -> None:
    n, k = top1.router["n_pool"], len(top1.placement.experts)
    routed, broadcast = top1.passes["routed"], top1.passes["broadcast"]
    assert routed.nbytes("to_expert", final_only=True) == n * PIXEL_NBYTES           # each sample once
    assert broadcast.nbytes("to_expert", final_only=True) == k * n * PIXEL_NBYTES    # each sample K times
    ratio = Fraction(routed.nbytes("to_expert", final_only=True), broadcast.nbytes("to_expert", final_only=True))
    assert ratio == Fraction(1, k)
    # every hop is a record: hop bytes follow networkx's hop counts of each sample's expert
    net = build_network(top1.scenario.topology, seed=0)
    hops = nx.single_source_shortest_path_length(net.graph, top1.placement.router)
    per_expert = np.array([hops[v] for v in top1.placement.experts])
    chosen = top1.routing.chosen[:, 0]
    assert routed.nbytes("to_expert") == int(per_expert[chosen].sum()) * PIXEL_NBYTES
    assert broadcast.nbytes("to_expert") == n * int(per_expert.sum()) * PIXEL_NBYTES
    # choices: fixed-length code, log2 K bits per sample, whole bytes per batch
    batches = math.ceil(n / 128)
    sizes = [min(128, n - 128 * b) for b in range(batches)]
    assert routed.nbytes("choice", final_only=True) == sum(math.ceil(s * math.log2(k) / 8) for s in sizes)


def test_top_k_delivers_k_over_k_of_broadcast() -> None:
    study = expert_study(small(routing="top_k", k=2))
    n = study.router["n_pool"]
    assert study.passes["routed"].nbytes("to_expert", final_only=True) == 2 * n * PIXEL_NBYTES
    assert (study.routing.chosen[:, 0] != study.routing.chosen[:, 1]).all()


def test_times_follow_the_link_model_hop_by_hop(top1) -> None:
    net = build_network(top1.scenario.topology, seed=0)
    passed = top1.passes["routed"]
    cols = passed.ledger.columns()
    nodes = passed.ledger.nodes
    cap = np.array([net.graph.edges[nodes[u], nodes[v]]["capacity_bps"] for u, v in zip(cols["src"], cols["dst"])])
    lat = np.array([net.graph.edges[nodes[u], nodes[v]]["latency_s"] for u, v in zip(cols["src"], cols["dst"])])
    np.testing.assert_allclose(cols["t_arrive_s"] - cols["t_start_s"], 8.0 * cols["nbytes"] / cap + lat, rtol=1e-12)
    assert (cols["t_start_s"] >= cols["t_send_s"]).all()
    relay = ~passed.final[:-1]                      # record i is followed by the next hop of its message
    np.testing.assert_array_equal(cols["t_send_s"][1:][relay], cols["t_arrive_s"][:-1][relay])
    speed = net.graph.nodes[top1.placement.router]["flops_per_s"]
    first = min(128, top1.router["n_pool"])
    assert cols["t_send_s"].min() == pytest.approx(2 * 64 * 4 * first / speed)   # the router's gate, step 0


def test_study_is_seeded(top1) -> None:
    again = expert_study(small())
    assert again.selection == top1.selection and again.traffic == top1.traffic
    for name in ("routed", "broadcast"):
        a, b = top1.passes[name].ledger.columns(), again.passes[name].ledger.columns()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_alpha_zero_selection_has_no_information(top1) -> None:
    row = top1.selection[0]
    assert row["alpha"] == 0.0 and row["information_nats"] == pytest.approx(0.0, abs=1e-12)
    assert row["xu_raginsky"] == pytest.approx(0.0, abs=1e-6)
    assert all(r["union_bound"] == pytest.approx(math.sqrt(0.5 * math.log(4) / 30)) for r in top1.selection)


def test_entropy_coded_choices_sit_just_above_the_shannon_bound() -> None:
    probs = np.array([0.7, 0.2, 0.05, 0.05])
    symbols = np.random.default_rng(0).choice(4, size=2000, p=probs)
    ideal_bytes = -np.log2(probs[symbols]).sum() / 8
    got = choice_nbytes(symbols, "entropy", bits_per_choice=2, probs=probs)
    assert ideal_bytes <= got <= ideal_bytes + 8
    assert choice_nbytes(symbols, "fixed", bits_per_choice=2, probs=None) == 500
    assert fixed_choice_bits(4, 1) == 2 and fixed_choice_bits(5, 2) == math.ceil(math.log2(10))


# --------------------------------------------------------------------------- CLI
def test_cli_experts_writes_tables_and_a_self_contained_page(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "bank.yaml"
    import yaml
    scenario.write_text(yaml.safe_dump(small(choice_coding="entropy")), encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["experts", str(scenario), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Xu-Raginsky" in printed and "| routed |" in printed
    for name in ("experts.html", "selection.csv", "curve.csv", "traffic.csv", "summary.json",
                 "scenario.resolved.yaml", "transfers_routed.csv", "transfers_broadcast.csv", ".inl-sim"):
        assert (out / name).is_file(), name
    page = (out / "experts.html").read_text(encoding="utf-8")
    assert "<script src=" not in page and page.count("fig-") >= 3
    data = json.loads((out / "experts.json").read_text(encoding="utf-8"))
    assert [r["alpha"] for r in data["selection"]] == [0.0, 0.1, 1.0]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    assert cli.main(["experts", str(scenario), "--out", str(tmp_path / "mine"), "--no-progress"]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep"

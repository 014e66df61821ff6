"""Tests of inl_sim.study.ratecurve: the accuracy-rate curve of the fusion node's routing options.

Expected values come from closed forms written out here (R(D) of a uniform source under
Hamming distortion, the two-option oracle rate, the zero-rate slope log(b/a)), from
brute force over the simplex, or from numpy on the distortion matrix itself (best fixed
option, per-sample oracle) -- never from the function under test.  One tiny trained
scenario (dense mesh9, 64 options) checks the glue to the model; one CLI call checks the
files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from inl_sim import cli
from inl_sim.errors import RoutingError, ScenarioError
from inl_sim.study.experiment import evaluate, prepare, train
from inl_sim.study.ratecurve import (accuracy_rate_curve, fill_values, fusion_messages, option_predictions, oracle_rate,
                               parse_slopes, rate_curve_of, routing_bank, zero_rate_slope)
from inl_sim.scenario import load_scenario

from conftest import tiny_scenario

LN2 = math.log(2.0)


def hb(p: float) -> float:
    """Binary entropy in nats, written independently of the package."""
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)


def hamming_rd_bits(k: int, d: float) -> float:
    """R(D) of a uniform K-ary source with Hamming distortion: log K - H_b(D) - D log(K-1)."""
    return (math.log(k) - hb(d) - d * math.log(k - 1)) / LN2 if d < 1 - 1 / k else 0.0


def hamming_d_at_slope(k: int, s: float) -> float:
    """The point where slope -s supports it: W(x|x) = 1 / (1 + (K-1) e^-s)."""
    return (k - 1) / (math.exp(s) + k - 1)


def correlated_errors(n: int = 300, n_options: int = 6, seed: int = 3) -> np.ndarray:
    """0/1 errors with per-sample difficulty, so options err together and differ too."""
    rng = np.random.default_rng(seed)
    hardness = rng.random(n)[:, None]                        # (n, 1)
    skill = rng.uniform(0.3, 0.9, n_options)[None, :]        # (1, O)
    return (rng.random((n, n_options)) < hardness * (1.2 - skill)).astype(float)


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("k", [2, 3, 5])
def test_identity_distortion_traces_the_hamming_curve(k: int) -> None:
    # K samples, option o right only on sample o: a uniform K-ary source with Hamming distortion
    slopes = [0.3, 1.0, 2.0, 4.0, 8.0]
    curve = accuracy_rate_curve(1.0 - np.eye(k), slopes, tol=1e-13, max_iter=100_000)
    ba = [p for p in curve.points if p.kind == "ba"]
    assert [p.s for p in ba] == slopes
    for p in ba:
        assert p.distortion == pytest.approx(hamming_d_at_slope(k, p.s), abs=1e-9)
        assert p.rate_bits == pytest.approx(hamming_rd_bits(k, p.distortion), abs=1e-9)
    assert curve.d_max == pytest.approx(1 - 1 / k) and curve.d_min == 0.0
    assert curve.oracle_rate_bits == pytest.approx(math.log2(k), abs=1e-9)   # one option per sample


def test_constant_rows_scale_the_curve_and_compression_is_exact() -> None:
    # 3 informative patterns x 4 copies, 2 all-wrong rows (a) and 2 all-right rows (b):
    # R = (1-a-b) R_3(D'), D = a + (1-a-b) D', D' the Hamming point at the same slope.
    d = np.vstack([np.repeat(1.0 - np.eye(3), 4, axis=0), np.ones((2, 3)), np.zeros((2, 3))])
    a = b = 2 / 16
    for p in accuracy_rate_curve(d, [0.5, 1.5, 3.0], tol=1e-13, max_iter=100_000).points[1:-1]:
        d_prime = hamming_d_at_slope(3, p.s)
        assert p.distortion == pytest.approx(a + (1 - a - b) * d_prime, abs=1e-9)
        assert p.rate_bits == pytest.approx((1 - a - b) * hamming_rd_bits(3, d_prime), abs=1e-9)
    # duplicated rows and columns describe the same source and reproductions
    base = correlated_errors(60, 4)
    tiled = np.tile(np.repeat(base, 3, axis=0), (1, 2))
    one, two = (accuracy_rate_curve(m, [0.5, 2.0, 6.0], tol=1e-12, max_iter=50_000) for m in (base, tiled))
    for p, q in zip(one.points, two.points):
        assert (p.rate_bits, p.distortion) == pytest.approx((q.rate_bits, q.distortion), abs=1e-9)
    assert two.max_rate_bits == pytest.approx(3.0)


def test_oracle_rate_of_two_options_in_closed_form() -> None:
    # patterns: right only on 0 (w0), only on 1 (w1), both (wb), neither (wn); at D_min the
    # router must separate the first two: R = (w0 + w1) H_b(w0 / (w0 + w1)).
    w0, w1, wb, wn = 5, 2, 6, 3
    d = np.array([[0, 1]] * w0 + [[1, 0]] * w1 + [[0, 0]] * wb + [[1, 1]] * wn, dtype=float)
    n = w0 + w1 + wb + wn
    rate, q = oracle_rate(d)
    assert rate == pytest.approx((w0 + w1) / n * hb(w0 / (w0 + w1)), abs=1e-10)
    np.testing.assert_allclose(q, [w0 / (w0 + w1), w1 / (w0 + w1)], atol=1e-8)


def test_oracle_rate_of_overlapping_best_sets_matches_brute_force() -> None:
    # best sets A_x = {0,1}, {1,2}, {0}, {2}, {0,1,2}; R(D_min) = min_q -E log q(A_x)
    d = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=float)
    grid = np.linspace(1e-6, 1, 801)
    q0, q1 = np.meshgrid(grid, grid, indexing="ij")
    q2 = 1 - q0 - q1
    ok = q2 > 0
    objective = np.zeros_like(q0)
    for row in d == d.min(axis=1, keepdims=True):
        mass = row[0] * q0 + row[1] * q1 + row[2] * q2
        objective -= np.log(np.where(ok, mass, 1.0)) / len(d)
    brute = objective[ok].min()
    assert oracle_rate(d)[0] == pytest.approx(brute, abs=1e-4)
    assert oracle_rate(d)[0] <= brute + 1e-12


def test_zero_rate_slope_is_log_b_over_a() -> None:
    # o* = 0 errs on 10 of 40 samples; option 1 is right on 4 of those (a) and wrong on 16 others (b)
    d = np.zeros((40, 2))
    d[:10, 0] = 1
    d[6:10, 1] = 1            # 4 shared errors, so option 1 is right on 6 of o*'s errors ...
    d[10:26, 1] = 1           # ... and wrong on 16 where o* is right
    a, b = 6 / 40, 16 / 40
    s_c = zero_rate_slope(d)
    assert s_c == pytest.approx(math.log(b / a), abs=1e-9)
    low, high = accuracy_rate_curve(d, [0.5 * s_c, 1.5 * s_c], tol=1e-12, max_iter=100_000).points[1:3]
    assert low.rate_bits < 1e-6 and low.distortion == pytest.approx(10 / 40, abs=1e-6)
    assert high.rate_bits > 1e-3
    assert zero_rate_slope(d[:, :1]) == math.inf and zero_rate_slope(np.hstack([d, d[:, :1]])) == pytest.approx(s_c)


# --------------------------------------------------------------------------- properties of the curve
def test_curve_ends_bounds_and_supporting_lines() -> None:
    d = correlated_errors()
    curve = accuracy_rate_curve(d, 12, tol=1e-11, max_iter=100_000)
    pts = curve.points
    # the ends, from numpy alone: best fixed option at R = 0, per-sample best option at D_min
    assert pts[0].kind == "fixed" and pts[0].rate_bits == 0.0
    assert pts[0].distortion == pytest.approx(d.mean(axis=0).min()) and curve.best_fixed == int(d.mean(0).argmin())
    assert pts[-1].kind == "oracle" and pts[-1].distortion == pytest.approx(d.min(axis=1).mean())
    # the rate never exceeds log2 |O| nor the entropy of one deterministic oracle's choice
    choice = d.argmin(axis=1)
    h_choice = -sum(c / len(d) * math.log2(c / len(d)) for c in np.bincount(choice) if c)
    assert curve.oracle_rate_bits <= min(math.log2(d.shape[1]), h_choice) + 1e-9
    assert all(p.rate_bits <= curve.oracle_rate_bits + 1e-6 for p in pts)
    # monotone: distortion falls and rate rises along the curve
    for p, q in zip(pts, pts[1:]):
        assert q.distortion <= p.distortion + 1e-9 and q.rate_bits >= p.rate_bits - 1e-9
    # the largest slope meets the oracle end
    last = [p for p in pts if p.kind == "ba"][-1]
    assert (last.rate_bits, last.distortion) == pytest.approx((curve.oracle_rate_bits, curve.d_min), abs=1e-5)
    # each BA point lies on its supporting line: chord slopes between neighbours sit between their s
    ba = [p for p in pts if p.kind == "ba"]
    for p, q in zip(ba, ba[1:]):
        if p.distortion - q.distortion > 1e-6:
            chord = (q.rate_bits - p.rate_bits) * LN2 / (p.distortion - q.distortion)   # nats per unit error
            assert p.s - 1e-3 <= chord <= q.s + 1e-3
    assert all(p.converged for p in ba)
    assert curve.oracle_weights.sum() == pytest.approx(1.0) and curve.oracle_weights.min() >= 0


def test_a_bank_where_one_option_is_always_best_has_no_rate() -> None:
    d = np.array([[0, 1, 1], [1, 1, 1], [0, 0, 1], [0, 1, 0]], dtype=float)
    curve = accuracy_rate_curve(d)
    assert [p.kind for p in curve.points] == ["fixed", "oracle"]
    assert curve.oracle_rate_bits == 0.0 and curve.d_min == curve.d_max == 0.25


# --------------------------------------------------------------------------- bank and options
def test_routing_bank_full_and_capped(caplog: pytest.LogCaptureFixture) -> None:
    assert routing_bank(["a", "b"]) == ((), ("a",), ("b",), ("a", "b"))
    assert len(routing_bank(list(range(6)))) == 64
    with caplog.at_level(logging.WARNING, logger="inl_sim.study.ratecurve"):
        bank = routing_bank(list(range(7)), max_full=6)
    assert "capped" in caplog.text and len(bank) == 2 * 7 + 2 == len(set(bank))
    assert bank[0] == () and bank[-1] == tuple(range(7)) and (3,) in bank and (0, 1, 2, 4, 5, 6) in bank
    assert routing_bank([9], max_full=0) == ((), (9,))


@pytest.mark.parametrize("call", [
    lambda: parse_slopes("abc"), lambda: parse_slopes("0,1"), lambda: parse_slopes("-1,2"), lambda: parse_slopes("0"),
    lambda: parse_slopes("1,nan"), lambda: routing_bank([1, 2], max_full=-1),
    lambda: fill_values({}, "median"), lambda: accuracy_rate_curve(np.zeros(3)),
    lambda: accuracy_rate_curve(np.zeros((3, 2)), [1.0, -2.0]), lambda: accuracy_rate_curve(np.zeros((3, 2)), 0),
], ids=["word", "zero-slope", "negative", "zero-count", "nan", "max-full", "fill", "1-D", "bad-slope", "count-0"])
def test_bad_options_raise_scenario_errors(call) -> None:
    with pytest.raises(ScenarioError):
        call()


def test_parse_slopes() -> None:
    assert parse_slopes(None) == 16 and parse_slopes("7") == 7
    np.testing.assert_array_equal(parse_slopes("0.5, 2,8"), [0.5, 2.0, 8.0])


# --------------------------------------------------------------------------- on a trained model
@pytest.fixture(scope="module")
def trained():
    sc = load_scenario(tiny_scenario(routing__mode="dense", training__epochs=2, training__lr=1e-2))
    setup = prepare(sc, 0)
    history = train(setup)
    return setup, history


def test_options_reuse_the_trained_fusion_module(trained) -> None:
    setup, _ = trained
    fusion = setup.graph.fusion
    children = setup.graph.children[fusion]
    assert len(children) == 6 and setup.dataset.test_views.get(fusion) is None
    bank = routing_bank(children)
    test_msgs = fusion_messages(setup, "test")
    preds = option_predictions(setup, bank, test_msgs, fill_values(fusion_messages(setup, "train"), "mean"))
    labels = setup.dataset.test_labels.numpy()
    # all children = the trained model exactly as evaluate() scores it
    assert (preds[:, -1] == labels).mean() == pytest.approx(evaluate(setup)["accuracy"], abs=1e-12)
    # no child: every sample gets the same stand-in input, hence the same prediction
    assert np.unique(preds[:, 0]).size == 1
    zeros = fill_values(test_msgs, "zero")
    assert all(torch.equal(v, torch.zeros(test_msgs[c].shape[1])) for c, v in zeros.items())
    assert all(m.training for m in setup.modules.values())          # eval mode is restored


def test_study_matches_its_distortion_matrix(trained, tmp_path: Path) -> None:
    setup, history = trained
    study = rate_curve_of(setup, slopes=6, history=history)
    d = study.distortion
    assert d.shape == (setup.dataset.test_labels.numel(), 64) and set(np.unique(d)) <= {0.0, 1.0}
    np.testing.assert_allclose([o.accuracy for o in study.options], 1 - d.mean(axis=0))
    s = study.summary()
    assert s["best_fixed_accuracy"] == pytest.approx(max(o.accuracy for o in study.options))
    assert s["oracle_accuracy"] == pytest.approx((d.min(axis=1) == 0).mean())
    assert s["oracle_accuracy"] >= s["best_fixed_accuracy"] >= s["full_option_accuracy"] - 1e-12
    assert 0 <= s["oracle_rate_bits"] <= 6.0 and s["n_options"] == 64
    assert "oracle" in study.to_markdown()


def test_a_fusion_node_without_children_is_an_error(trained) -> None:
    setup, _ = trained
    children = {**setup.graph.children, setup.graph.fusion: ()}
    orphan = dataclasses.replace(setup, graph=dataclasses.replace(setup.graph, children=children))
    with pytest.raises(RoutingError, match="children of fusion node"):
        rate_curve_of(orphan)


# --------------------------------------------------------------------------- command line
@pytest.fixture(autouse=True)
def _restore_root_logging():
    """cli.main calls logging.basicConfig; drop the handler it adds (it holds capsys's stream)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_cli_rate_curve_writes_csv_json_and_a_self_contained_plot(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario(training__epochs=2, training__lr=1e-2)), encoding="utf-8")
    out = tmp_path / "rc"
    assert cli.main(["rate-curve", str(scenario), "--out", str(out), "--slopes", "5", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "best fixed option" in printed and "oracle" in printed and str(out) in printed
    with open(out / "rate_curve.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["kind"] == "fixed" and rows[-1]["kind"] == "oracle"
    assert {"s", "rate_bits", "distortion", "accuracy"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert json.loads((out / "rate_curve.json").read_text(encoding="utf-8"))["summary"] == summary
    with open(out / "options.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == summary["n_options"] == 4     # spt: fusion 0 has 2 children
    assert summary["seed"] == 0 and summary["package_version"]
    assert (out / "scenario.resolved.yaml").is_file() and not list(tmp_path.glob(".rc*"))
    html = (out / "rate_curve.html").read_text(encoding="utf-8")
    assert "<script src=" not in html and "<link" not in html
    # plotly.js is inlined; outside that bundle the page names no URL at all
    page = "".join(chunk for chunk in html.split("<script") if "plotly.js v" not in chunk[:400])
    assert "plotly.js v" in html and "https://" not in page and "http://" not in page.replace("http://www.w3.org", "")


@pytest.mark.parametrize("extra", [["--slopes", "0,1"], ["--slopes", "many"], ["--max-children", "-1"]])
def test_cli_rate_curve_bad_options_are_one_line_before_training(tmp_path: Path, capsys, extra: list[str]) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario()), encoding="utf-8")
    code = cli.main(["rate-curve", str(scenario), "--out", str(tmp_path / "rc"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert ("--slopes" in err) if extra[0] == "--slopes" else ("--max-children" in err)
    assert not (tmp_path / "rc").exists()

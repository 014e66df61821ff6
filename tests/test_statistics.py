"""Tests of inl_sim.study.statistics, the equal-budget control and the generalisation gap.

Oracles: closed forms (Student t with 2 degrees of freedom has the CDF
1/2 + t / (2 sqrt(2 + t^2)); the exact Wilcoxon law of n pairs that all point the same way
gives p = 2 / 2^n), scipy's own functions called here on the same numbers, the byte
closed form 2 * steps * batch * width * bytes_per_value * links, and per-run
``summary.json`` files read back from disk.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.scenario import load_scenario
from inl_sim.sim.metrics import METRICS
from inl_sim.study.comparison import compare, format_markdown, summary_rows
from inl_sim.study.experiment import run
from inl_sim.study.statistics import paired_columns, paired_difference, parse_seeds

from conftest import tiny_scenario


def t2_cdf(t: float) -> float:
    """CDF of Student's t with 2 degrees of freedom (closed form)."""
    return 0.5 + t / (2.0 * math.sqrt(2.0 + t * t))


def test_closed_form_three_pairs() -> None:
    """d = 1, 2, 3: mean 2, std 1, t = 2 sqrt(3), df 2; all positive -> exact Wilcoxon p = 2/8."""
    out = paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    t = 2.0 / (1.0 / math.sqrt(3.0))
    t_crit = math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2))  # solves t2_cdf(t) = 0.975
    assert t2_cdf(t_crit) == pytest.approx(0.975, abs=1e-12)
    assert (out["n"], out["mean"], out["std"]) == (3, pytest.approx(2.0), pytest.approx(1.0))
    assert out["ci_low"] == pytest.approx(2.0 - t_crit / math.sqrt(3.0), rel=1e-9)
    assert out["ci_high"] == pytest.approx(2.0 + t_crit / math.sqrt(3.0), rel=1e-9)
    assert out["t_p"] == pytest.approx(2.0 * (1.0 - t2_cdf(t)), rel=1e-9)
    assert out["wilcoxon_p"] == pytest.approx(0.25)
    assert out["ci_contains_0"] is True and (out["n_lower"], out["n_higher"]) == (0, 3)
    assert (out["min"], out["max"]) == (1.0, 3.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_against_scipy_on_random_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4 + seed * 3
    base = rng.normal(0.9, 0.05, n)
    other = base + rng.normal(-0.01, 0.01, n)
    out = paired_difference(dict(enumerate(other)), dict(enumerate(base)))
    d = other - base
    lo, hi = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert out["mean"] == pytest.approx(d.mean()) and out["std"] == pytest.approx(d.std(ddof=1))
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert out["t_p"] == pytest.approx(stats.ttest_rel(other, base).pvalue)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert out["ci_contains_0"] == (lo <= 0 <= hi)


def test_zero_differences_are_dropped_by_wilcoxon() -> None:
    """zero_method='wilcox': the zero pair is dropped, leaving 1, 2, 3 -> p = 2/8."""
    out = paired_difference({0: 5.0, 1: 6.0, 2: 7.0, 3: 8.0}, {0: 5.0, 1: 5.0, 2: 5.0, 3: 5.0})
    assert out["wilcoxon_p"] == pytest.approx(0.25) and out["n"] == 4


def test_undefined_cases_are_none() -> None:
    one = paired_difference({0: 0.9}, {0: 0.8})
    assert one["mean"] == pytest.approx(0.1)
    assert all(one[k] is None for k in ("std", "ci_low", "ci_high", "t_p", "wilcoxon_p", "ci_contains_0"))
    same = paired_difference({0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.9, 1: 0.8, 2: 0.7})
    assert same["t_p"] is None and same["wilcoxon_p"] is None and same["ci_contains_0"] is True
    constant = paired_difference({s: 1.5 for s in range(5)}, {s: 1.0 for s in range(5)})
    assert constant["t_p"] is None, "a constant difference has no t statistic"
    assert constant["wilcoxon_p"] == pytest.approx(2 / 2 ** 5)
    assert constant["ci_contains_0"] is False
    assert paired_difference({0: 1.0}, {1: 1.0})["n"] == 0, "no common seed, no pair"
    assert paired_difference({0: None, 1: 1.0, 2: 2.0}, {0: 0.0, 1: 0.0, 2: 0.0})["n"] == 2


def fake_summary(method: str, seed: int, accuracy: float, exchange: float, mode: str = "spt") -> dict:
    row = {key: 0.0 for key, *_ in METRICS}
    row.update(method=method, seed=seed, mode=mode, n_active_edges=8, gate="none", beta=0.0,
               accuracy=accuracy, exchange_bytes=exchange, rate_bits=None,
               train_accuracy=accuracy + 0.05, generalisation_gap=0.05)
    return row


def fake_runs(order: list[int]) -> dict:
    """Reference accuracy varies a lot across seeds; the other method is 0.01 lower on every seed."""
    ref = {s: 0.80 + 0.03 * s for s in range(6)}
    runs = {"dense": [], "tree": []}
    for s in order:
        runs["dense"].append(SimpleNamespace(summary=lambda s=s: fake_summary("dense", s, ref[s], 27.0, "dense")))
        runs["tree"].append(SimpleNamespace(summary=lambda s=s: fake_summary("tree", s, ref[s] - 0.01, 8.0)))
    return runs


def test_pairing_is_by_seed_not_run_order_and_the_verdicts_disagree() -> None:
    rows = summary_rows(fake_runs(list(range(6))), reference="dense")
    shuffled = list(range(6))
    random.Random(3).shuffle(shuffled)
    runs = fake_runs(list(range(6)))
    runs["tree"] = [runs["tree"][s] for s in shuffled]  # another run order for one method only
    assert summary_rows(runs, reference="dense") == rows
    tree = next(r for r in rows if r["method"] == "tree")
    assert tree["paired_accuracy_mean"] == pytest.approx(-0.01) and tree["paired_accuracy_std"] == pytest.approx(0, abs=1e-12)
    assert tree["accuracy_within_1std"] is True, "unpaired: -0.01 is well inside the reference's std (0.056)"
    assert tree["accuracy_ci_contains_0"] is False, "paired: lower on 6 of 6 seeds"
    assert tree["paired_accuracy_n_lower"] == 6
    assert tree["paired_accuracy_wilcoxon_p"] == pytest.approx(2 / 2 ** 6)
    assert tree["paired_exchange_bytes_mean"] == pytest.approx(-19.0)
    dense = next(r for r in rows if r["method"] == "dense")
    assert "paired_accuracy_mean" not in dense
    table = format_markdown(rows)
    assert "paired CI ∋ 0" in table and "yes / no" in table and "—" in table


def test_repeated_seed_in_a_method_is_an_error() -> None:
    summaries = {"a": [{"seed": 0, "accuracy": 1.0}, {"seed": 0, "accuracy": 0.5}], "b": [{"seed": 0, "accuracy": 1.0}]}
    with pytest.raises(ScenarioError, match="repeat"):
        paired_columns(summaries, "a", reference="b")


@pytest.mark.parametrize("text, seeds", [
    (5, (0, 1, 2, 3, 4)), ("3", (0, 1, 2)), ("0,1,2,7", (0, 1, 2, 7)), ("0-9", tuple(range(10))),
    ("2..4", (2, 3, 4)), (" 7 ", tuple(range(7))), ([4, 5], (4, 5)), ("11", tuple(range(11))),
])
def test_parse_seeds(text: object, seeds: tuple) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["9-0", "a", "0,0", 0, "", "1,x", True, [], "-3"])
def test_parse_seeds_rejects(text: object) -> None:
    with pytest.raises(InlSimError, match="seeds"):
        parse_seeds(text)


def test_compare_equal_budget_paired_rows_and_generalisation_gap(tmp_path: Path) -> None:
    """Tiny mesh9: D-INL 8 links at width 8; dense 27 links at round(8 * 8 / 27) = 2 -> bytes x 54/64."""
    raw = tiny_scenario()
    raw["compare"] = {"reference": "dense", "methods": [
        {"name": "dense", "set": {"routing.mode": "dense"}},
        {"name": "spt", "set": {"routing.mode": "spt"}},
        {"name": "dense_equal_budget", "set": {"routing.mode": "dense"}, "budget_of": "spt"}]}
    cmp = compare(load_scenario(raw), seeds="0,2,5", out_dir=tmp_path / "cmp")
    assert cmp.seeds == (0, 2, 5)
    rows = {r["method"]: r for r in json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]}
    eq, spt = rows["dense_equal_budget"], rows["spt"]
    steps = 256 // 64
    assert spt["exchange_bytes_mean"] == 2 * steps * 64 * 8 * 4 * 8
    assert eq["latent_dim"] == 2 and eq["exchange_bytes_mean"] == 2 * steps * 64 * 2 * 4 * 27
    assert eq["byte_ratio_to_budget"] == pytest.approx(54 / 64) == eq["planned_byte_ratio"]
    summaries = {m: {s: json.loads((tmp_path / "cmp" / m / f"seed{s}" / "summary.json").read_text())
                     for s in (0, 2, 5)} for m in rows}
    for m in ("spt", "dense_equal_budget"):
        acc = {s: summaries[m][s]["accuracy"] for s in (0, 2, 5)}
        ref = {s: summaries["dense"][s]["accuracy"] for s in (0, 2, 5)}
        d = np.array([acc[s] - ref[s] for s in (0, 2, 5)])
        assert rows[m]["paired_accuracy_mean"] == pytest.approx(d.mean())
        if d.std() > 0:
            assert rows[m]["paired_accuracy_t_p"] == pytest.approx(
                stats.ttest_rel([acc[s] for s in (0, 2, 5)], [ref[s] for s in (0, 2, 5)]).pvalue)
        for s in (0, 2, 5):
            one = summaries[m][s]
            assert one["generalisation_gap"] == pytest.approx(one["train_accuracy"] - one["accuracy"])
    assert rows["spt"]["generalisation_gap_mean"] == pytest.approx(
        np.mean([summaries["spt"][s]["generalisation_gap"] for s in (0, 2, 5)]))


def test_budget_of_must_name_a_method() -> None:
    raw = tiny_scenario()
    raw["compare"] = {"methods": [{"name": "a", "set": {}, "budget_of": "nope"}, {"name": "b", "set": {}}]}
    with pytest.raises(ScenarioError, match="budget_of"):
        load_scenario(raw)
    raw["compare"]["methods"][0]["budget_of"] = "a"
    with pytest.raises(ScenarioError, match="budget_of"):
        load_scenario(raw)


def test_an_overfitting_run_has_a_positive_generalisation_gap() -> None:
    """64 training samples, 40 epochs, wide modules: it memorises; train accuracy beats test."""
    sc = load_scenario(tiny_scenario(data__n_train=64, data__n_test=512, training__epochs=40,
                                     model__hidden_dim=64, training__lr=1e-2))
    result = run(sc, 0)
    assert result.train_accuracy >= 0.95
    assert result.generalisation_gap == pytest.approx(result.train_accuracy - result.accuracy)
    assert result.generalisation_gap > 0.2
    assert result.summary()["train_loss"] < result.summary()["test_loss"]


def test_cli_seeds_list_and_bad_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import yaml

    from inl_sim import cli
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_scenario()))
    assert cli.main(["compare", str(path), "--seeds", "1,3", "--out", str(tmp_path / "c"), "--no-report",
                     "--no-progress"]) == 0
    meta = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert meta["seeds"] == [1, 3]
    assert sorted(p.name for p in (tmp_path / "c" / "spt").iterdir() if p.is_dir()) == ["seed1", "seed3"]
    out = capsys.readouterr().out
    assert "paired by seed (n=2)" in out and "CI contains 0" in out
    assert cli.main(["compare", str(path), "--seeds", "3-1", "--out", str(tmp_path / "d")]) == 2
    assert "runs backwards" in capsys.readouterr().err

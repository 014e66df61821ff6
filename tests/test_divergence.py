"""Divergence: a non-finite loss stops the run with status ``diverged``, the CLI exits 3
with one line, and tables list diverged seeds instead of averaging them away.

Oracles: strict JSON parsing (no NaN tokens), the per-run summaries of the runs that
finished (means over those only, by :mod:`statistics`), and the CLI's exit code.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from pathlib import Path

import pytest

from inl_sim import cli
from inl_sim.errors import DivergedError, InlSimError
from inl_sim.study import experiment
from inl_sim.study.comparison import compare, format_markdown
from inl_sim.study.experiment import run
from inl_sim.study.results import read_json

from conftest import PYTHON, ROOT, cli_env, tiny_scenario

QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def _strict(path: Path) -> dict:
    def refuse(token: str) -> None:
        raise AssertionError(f"{path}: non-standard JSON token {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_diverged_error_carries_where() -> None:
    err = DivergedError(2, 17, 4, reason="boom")
    assert isinstance(err, InlSimError) and (err.epoch, err.step, err.node, str(err)) == (2, 17, 4, "boom")


@pytest.mark.parametrize("settings", [{"training.lr": 1e3}, {"training.lr": 1e6, "training.optimizer": "sgd"}])
def test_exploding_optimiser_gives_status_diverged(tmp_path: Path, settings: dict) -> None:
    raw = tiny_scenario(training__epochs=3)
    for key, value in settings.items():
        raw["training"][key.split(".")[1]] = value
    res = run(raw, 0, out_dir=tmp_path / "run")
    assert res.status == "diverged" and res.diverged["epoch"] == 0
    assert res.diverged["step"] >= 0, "the engines check the loss every step"
    assert res.diverged["node"] is None or res.diverged["node"] in res.graph.order
    assert math.isnan(res.accuracy) and math.isnan(res.test_loss), "no plausible-looking accuracy"
    assert res.history == [], "stops at the first non-finite step, before the epoch completes"
    summary = _strict(tmp_path / "run" / "summary.json")
    assert summary["status"] == "diverged" and summary["accuracy"] == "NaN" and summary["diverged_epoch"] == 0
    assert "training.lr" in summary["diverged_reason"]
    assert _strict(tmp_path / "run" / "history.json") == []
    assert summary["exchange_bytes"] == sum(t.nbytes for t in res.transfers)


def test_a_healthy_run_has_status_ok(tmp_path: Path) -> None:
    res = run(tiny_scenario(), 0, out_dir=tmp_path / "run")
    assert res.status == "ok" and res.diverged is None
    assert _strict(tmp_path / "run" / "summary.json")["status"] == "ok"


def test_cli_run_on_quickstart_with_huge_lr_exits_3_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run([PYTHON, "run.py", "run", str(QUICKSTART), "--set", "training.lr=1e3", "--set",
                           "training.epochs=2", "--set", "data.n_train=512", "--out", str(out), "--no-progress"], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("diverged: training diverged in epoch 0") and "training.lr" in line and str(out) in line
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert _strict(out / "summary.json")["status"] == "diverged"


def _diverge_on_seed(bad: int):
    real = experiment.train

    def train(setup, **kwargs):
        history = real(setup, **kwargs)
        if setup.seed == bad:
            err = DivergedError(0, 3, 5, reason="injected")
            err.history = history
            raise err
        return history
    return train


def test_tables_list_diverged_seeds_and_average_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(experiment, "train", _diverge_on_seed(1))
    cmp = compare(tiny_scenario(), modes=["dense", "spt"], seeds=3, out_dir=tmp_path / "study")
    for row in cmp.rows:
        assert (row["n_seeds"], row["n_ok"], row["n_diverged"], row["diverged_seeds"]) == (3, 2, 1, [1])
        ok = [r.summary() for r in cmp.runs[row["method"]] if r.status == "ok"]
        assert [s["seed"] for s in ok] == [0, 2]
        for key in ("accuracy", "exchange_bytes", "test_loss"):
            assert row[f"{key}_mean"] == pytest.approx(statistics.fmean(s[key] for s in ok), rel=1e-12)
            assert row[f"{key}_std"] == pytest.approx(statistics.stdev(s[key] for s in ok), rel=1e-9)
    table = _strict(tmp_path / "study" / "comparison.json")
    assert [r["diverged_seeds"] for r in table["rows"]] == [[1], [1]]
    bad = _strict(tmp_path / "study" / "spt" / "seed1" / "summary.json")
    assert (bad["status"], bad["diverged_step"], bad["diverged_node"]) == ("diverged", 3, 5)
    markdown = format_markdown(cmp.rows)
    assert "| runs ok | diverged seeds |" in markdown.splitlines()[0] and "| 2/3 | 1 |" in markdown


def test_all_seeds_diverged_gives_nan_means_not_numbers(tmp_path: Path) -> None:
    cmp = compare(tiny_scenario(**{"training__lr": 1e3}), modes=["spt"], seeds=2, out_dir=tmp_path / "s")
    (row,) = cmp.rows
    assert (row["n_ok"], row["diverged_seeds"]) == (0, [0, 1]) and math.isnan(row["accuracy_mean"])
    assert _strict(tmp_path / "s" / "comparison.json")["rows"][0]["accuracy_mean"] == "NaN"
    assert read_json(tmp_path / "s" / "comparison.json")["rows"][0]["n_diverged"] == 2
    assert "n/a ± n/a" in format_markdown(cmp.rows)


def test_cli_compare_names_diverged_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(tiny_scenario(**{"training__lr": 1e3})))
    argv = ["compare", str(scenario), "--modes", "spt", "--seeds", "2", "--out", str(tmp_path / "o"),
            "--no-progress", "--no-report"]
    assert cli.main(argv) == 0
    assert "spt: 2 of 2 run(s) diverged (seeds 0, 1)" in capsys.readouterr().out

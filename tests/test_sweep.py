"""Tests of ``sweep``: a grid of dotted overrides x seeds, one folder per run, one row per point.

Expected table values are recomputed here from the per-run ``summary.json`` files with
``statistics`` (mean and sample std), never read from the study's own helpers.  Running
the grid in two worker processes must give the same numbers as running it in one.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
from pathlib import Path

import pytest
import yaml

import inl_sim
from inl_sim import cli
from inl_sim.errors import ScenarioError
from inl_sim.scenario import load_scenario

from conftest import PYTHON, ROOT, cli_env, tiny_scenario

TIMING = "wall_time"


def _tiny(**dotted: object):  # type: ignore[no-untyped-def]
    return load_scenario(tiny_scenario(gate__kind="gaussian", **dotted))


def _summaries(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("seed*/summary.json"))]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values)


def _untimed(row: dict) -> dict:
    return {k: v for k, v in row.items() if TIMING not in k}


# --------------------------------------------------------------------------- python API

def test_sweep_writes_a_folder_per_point_and_seed_and_one_row_per_point(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    cmp = inl_sim.sweep(_tiny(), {"gate.beta": [0, 1e-2]}, seeds=2, out_dir=out)

    folders = {"gate.beta=0": 0.0, "gate.beta=0.01": 1e-2}
    for name, beta in folders.items():
        assert sorted(p.name for p in (out / name).iterdir() if p.name != ".inl-sim") == ["seed0", "seed1"]
        for seed, summary in enumerate(_summaries(out / name)):
            assert (summary["seed"], summary["beta"], summary["gate"]) == (seed, beta, "gaussian")
            resolved = yaml.safe_load((out / name / f"seed{seed}" / "scenario.resolved.yaml").read_text())
            assert resolved["gate"]["beta"] == beta

    table = json.loads((out / "sweep.json").read_text())
    assert table["grid"] == {"gate.beta": [0, 1e-2]}
    with open(out / "sweep.csv", newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    md_lines = (out / "sweep.md").read_text().strip().splitlines()
    assert len(table["rows"]) == len(csv_rows) == len(cmp.rows) == len(md_lines) - 2 == 2

    for row, csv_row, (name, beta) in zip(table["rows"], csv_rows, folders.items(), strict=True):
        assert row["gate.beta"] == beta and float(csv_row["gate.beta"]) == beta
        assert row["method"] == name and row["n_seeds"] == 2
        runs = _summaries(out / name)
        for key in ("rate_bits", "accuracy"):
            mean, std = _mean_std([s[key] for s in runs])
            assert row[f"{key}_mean"] == pytest.approx(mean, rel=1e-12)
            assert row[f"{key}_std"] == pytest.approx(std, rel=1e-12, abs=1e-15)
            assert float(csv_row[f"{key}_mean"]) == pytest.approx(mean, rel=1e-9)
            assert float(csv_row[f"{key}_std"]) == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert any(line.startswith(f"| {name} |") for line in md_lines)
    # the returned table is the written one
    assert [_untimed(r) for r in cmp.rows] == [_untimed(r) for r in table["rows"]]


def test_multi_key_grid_is_the_cartesian_product_in_order() -> None:
    grid = {"gate.kind": ["gaussian", "gumbel"], "gate.beta": [0.0, 0.05]}
    cmp = inl_sim.sweep(_tiny(), grid, seeds=[3])
    assert [(r["gate.kind"], r["gate.beta"]) for r in cmp.rows] == [
        ("gaussian", 0.0), ("gaussian", 0.05), ("gumbel", 0.0), ("gumbel", 0.05)]
    assert [(r["gate"], r["beta"]) for r in cmp.rows] == [(r["gate.kind"], r["gate.beta"]) for r in cmp.rows]
    assert cmp.seeds == (3,) and all(r["n_seeds"] == 1 for r in cmp.rows)
    for row in cmp.rows:
        (run,) = cmp.runs[row["method"]]
        assert (run.seed, run.scenario.gate.kind, run.scenario.gate.beta) == (3, row["gate.kind"], row["gate.beta"])
        assert row["rate_bits_mean"] == run.rate_bits and row["rate_bits_std"] == 0.0  # documented for one seed


@pytest.mark.parametrize("grid", [{}, {"gate.beta": [-1.0, 0.0]}, {"gate.bta": [0.0]}])
def test_bad_grid_is_a_scenario_error(grid: dict) -> None:
    with pytest.raises(ScenarioError):
        inl_sim.sweep(_tiny(), grid, seeds=1)


@pytest.mark.parametrize("grid", [{"gate.beta": 0.1}, {"gate.kind": "gumbel"}, {"gate.beta": []}])
def test_grid_values_must_be_a_non_empty_list_naming_the_key(grid: dict) -> None:
    with pytest.raises(ScenarioError) as info:
        inl_sim.sweep(_tiny(), grid, seeds=1)
    text = str(info.value)
    assert "gate." in text and "compare.methods" not in text  # about the grid, not an internal field
    assert "'g' " not in text                                  # the string was not split into characters


# --------------------------------------------------------------------------- CLI

def _run_py(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "run.py"), *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def _scenario_file(tmp: Path) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_scenario(), sort_keys=False), encoding="utf-8")
    return path


def test_cli_jobs_2_gives_the_same_numbers_as_jobs_1(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path)
    outs = {}
    for jobs in (1, 2):
        outs[jobs] = tmp_path / f"jobs{jobs}"
        proc = _run_py("sweep", scenario, "--grid", "gate.kind=gaussian", "--grid", "gate.beta=0,0.05",
                       "--seeds", "2", "--jobs", jobs, "--no-progress", "--out", outs[jobs])
        assert proc.returncode == 0, proc.stderr
    one, two = (json.loads((outs[j] / "sweep.json").read_text()) for j in (1, 2))
    assert [_untimed(r) for r in one["rows"]] == [_untimed(r) for r in two["rows"]]
    assert len(one["rows"]) == 2 and all(r["rate_bits_mean"] > 0 for r in one["rows"])
    for point in ("gate.kind=gaussian,gate.beta=0", "gate.kind=gaussian,gate.beta=0.05"):
        for seed in ("seed0", "seed1"):
            a, b = outs[1] / point / seed, outs[2] / point / seed
            assert (a / "transfers.csv").read_bytes() == (b / "transfers.csv").read_bytes()
            assert _untimed(json.loads((a / "summary.json").read_text())) == \
                _untimed(json.loads((b / "summary.json").read_text()))


def test_cli_bad_grid_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = _run_py("sweep", _scenario_file(tmp_path), "--grid", "gate.beta", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "gate.beta" in line
    assert not (tmp_path / "out").exists()


BAD_GRIDS = [
    ("no-equals", ["gate.beta"], "gate.beta"),
    ("no-key", ["=0,1"], "=0,1"),
    ("no-values", ["gate.beta="], "gate.beta"),
    ("unknown-key", ["gate.bta=0,1"], "bta"),
    ("negative", ["gate.beta=-1,0"], "gate.beta"),
    ("not-a-number", ["gate.beta=0,abc"], "abc"),
    ("empty-value", ["gate.beta=0,,1"], "gate.beta"),
    ("unknown-gate", ["gate.kind=gaussian,bogus"], "bogus"),
]


@pytest.mark.parametrize("grids,needle", [b[1:] for b in BAD_GRIDS], ids=[b[0] for b in BAD_GRIDS])
def test_bad_grid_specs_exit_2_with_one_line_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                grids: list, needle: str) -> None:
    argv = ["sweep", str(_scenario_file(tmp_path)), "--seeds", "1", "--no-progress", "--out", str(tmp_path / "out")]
    for g in grids:
        argv += ["--grid", g]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and needle in line
    assert captured.out == ""
    assert not (tmp_path / "out").exists()  # a failed sweep leaves no folder behind


def test_bad_grid_error_names_the_grid_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["sweep", str(_scenario_file(tmp_path)), "--grid", "gate.beta"]) == 2
    err = capsys.readouterr().err
    assert "--grid" in err and "--set" not in err


def test_cli_grid_values_are_written_as_numbers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["sweep", str(_scenario_file(tmp_path)), "--grid", "gate.kind=gaussian", "--grid", "gate.beta=0,1e-2",
            "--seeds", "1", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert [r["gate.beta"] for r in table["rows"]] == [r["beta"] for r in table["rows"]] == [0.0, 0.01]
    assert table["grid"]["gate.beta"] == [0.0, 0.01]

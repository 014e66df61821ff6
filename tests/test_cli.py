"""Tests of the command line and of run folders.

Bad input: ``python run.py run <file>`` exits with code 2 and prints exactly one line,
``error: ...``, never a traceback.  Good input: ``run`` writes a complete folder whose
resolved scenario loads back to the same Scenario, ``show`` prints both training
graphs' edge counts, ``compare`` writes mean ± std tables, and a failing run never
touches the results that were already there.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

import inl_sim
from inl_sim import cli
from inl_sim.errors import ResultsError
from inl_sim.study import experiment
from inl_sim.study import results
from inl_sim.scenario import load_scenario

from conftest import PYTHON, ROOT, cli_env, explicit_topology, tiny_scenario

QUICKSTART = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"
SUMMARY_KEYS = {"accuracy", "test_loss", "exchange_bytes", "exchange_bytes_forward", "exchange_bytes_backward",
                "sim_time_s", "wall_time_s", "n_active_edges", "mode", "seed", "package_version"}
LINK = {"capacity_bps": 1.0e7, "latency_s": 1.0e-3}



def run_py(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "run.py"), *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- bad input, exit code 2

def _bad(**dotted: object) -> dict:
    return tiny_scenario(**dotted)


# (id, scenario written to a file or a raw text or None for a missing file, extra args, a part of the message)
BAD_RUNS: list[tuple] = [
    ("unknown-key", _bad(trainig={"epochs": 1}), [], "trainig"),
    ("zero-lr", _bad(training__lr=0), [], "training.lr"),
    ("string-epochs", _bad(training__epochs="ten"), [], "training.epochs"),
    ("override-typo", _bad(), ["--set", "gate.bta=1e-3"], "gate.bta"),
    ("set-without-equals", _bad(), ["--set", "gate.beta"], "--set"),
    ("not-a-mapping", "- 1\n- 2\n", [], "mapping"),
    ("missing-file", None, [], "not found"),
    ("unknown-gate", _bad(gate__kind="laplace"), [], "gate.kind"),
    ("topology-file-not-found", tiny_scenario({"file": "nowhere.yaml"}), [], "topology.file"),
    ("disconnected-sensor", tiny_scenario(explicit_topology([[0, 1, LINK], [2, 3, LINK]], sensors=[1, 3])), [],
     "node 3"),
    pytest.param("negative-seed-option", _bad(), ["--seed", "-1"], "seed"),
    pytest.param("node-beta-not-a-number", _bad(gate__kind="gaussian", gate__node_beta={1: "lots"}), [],
                 "gate.node_beta"),
]


def _case_id(case: object) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]  # type: ignore[union-attr]


def _write_case(folder: Path, name: str, scenario: object) -> Path:
    path = folder / f"{name}.yaml"
    if isinstance(scenario, dict):
        write_yaml(path, scenario)
    elif isinstance(scenario, str):
        path.write_text(scenario)
    return path


@pytest.mark.parametrize("name,scenario,extra,names", BAD_RUNS, ids=[_case_id(c) for c in BAD_RUNS])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture, name: str,
                                               scenario: object, extra: list, names: str) -> None:
    path = _write_case(tmp_path, name, scenario)
    code = cli.main(["run", str(path), "--out", str(tmp_path / "out"), *extra])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], captured.err
    assert code == 2 and captured.out == ""
    assert not (tmp_path / "out").exists()


# A representative subset through a real interpreter: load, override, file and topology errors.
SUBPROCESS_CASES = ("unknown-key", "set-without-equals", "missing-file", "disconnected-sensor")


@pytest.fixture(scope="module")
def bad_run_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Start the subprocesses at once (each pays for Python's and torch's start-up)."""
    folder = tmp_path_factory.mktemp("bad")
    procs = {}
    for case in BAD_RUNS:
        name, scenario, extra, _ = case.values if hasattr(case, "values") else case
        if name not in SUBPROCESS_CASES:
            continue
        path = _write_case(folder, name, scenario)
        args = [PYTHON, str(ROOT / "run.py"), "run", str(path), "--out", str(folder / f"out-{name}"), *extra]
        procs[name] = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    outputs = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        outputs[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return outputs


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_subprocess_prints_no_traceback(bad_run_outputs: dict, name: str) -> None:
    out = bad_run_outputs[name]
    names = next((c.values if hasattr(c, "values") else c)[3] for c in BAD_RUNS
                 if (c.values if hasattr(c, "values") else c)[0] == name)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and names in lines[0]
    assert out.returncode == 2
    assert out.stdout == ""


def test_main_returns_2_in_process(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_yaml(tmp_path / "s.yaml", tiny_scenario(training={"lr": -1}))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "training.lr" in captured.err and captured.out == ""
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- run folders

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One real ``python run.py run`` with two --set overrides (one a '1e-3' string)."""
    folder = tmp_path_factory.mktemp("cli_run")
    scenario = write_yaml(folder / "tiny.yaml", tiny_scenario(gate={"kind": "gaussian"}))
    out = folder / "results"
    proc = run_py("run", scenario, "--out", out, "--set", "gate.beta=1e-3", "--set", "training.epochs=2",
                  "--seed", "3")
    return scenario, out, proc


def test_run_writes_a_complete_folder(cli_run: tuple) -> None:
    scenario, out, proc = cli_run
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and str(out) in proc.stdout
    for name in ("scenario.resolved.yaml", "transfers.csv", "history.csv", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["package_version"] == inl_sim.__version__
    assert (summary["mode"], summary["seed"], summary["n_active_edges"], summary["epochs"]) == ("spt", 3, 8, 2)
    assert isinstance(summary["beta"], float) and summary["beta"] == 1e-3
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["sim_time_s"] > 0
    # exchange = 2 directions * 2 epochs * 256 samples * 8 values * 4 bytes * 8 links
    assert summary["exchange_bytes"] == 2 * 2 * 256 * 8 * 4 * 8
    transfers = (out / "transfers.csv").read_text().splitlines()
    assert len(transfers) == 1 + 2 * 2 * 4 * 8
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 2


def test_resolved_scenario_loads_back_equal(cli_run: tuple) -> None:
    scenario, out, _ = cli_run
    resolved = load_scenario(out / "scenario.resolved.yaml")
    expected = load_scenario(scenario, {"gate.beta": 1e-3, "training.epochs": 2, "seed": 3})
    assert resolved == expected
    text = (out / "scenario.resolved.yaml").read_text()
    assert "dense_ties: keep" in text and "grad_encoding: float32" in text, "defaults are written out"


def test_failed_second_run_leaves_the_folder_byte_identical(cli_run: tuple, capsys: pytest.CaptureFixture) -> None:
    scenario, out, _ = cli_run
    before = tree_digest(out)
    assert cli.main(["run", str(scenario), "--out", str(out), "--set", "gate.bta=1"]) == 2
    assert "gate.bta" in capsys.readouterr().err
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["results", "tiny.yaml"], "no temporary folder left"


@pytest.mark.parametrize("target", ["train", "write_records"])
def test_api_failure_mid_run_keeps_earlier_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   target: str) -> None:
    sc = load_scenario(tiny_scenario())
    out = tmp_path / "run"
    inl_sim.run(sc, 0, out_dir=out)
    before = tree_digest(out)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure")

    if target == "train":
        monkeypatch.setattr(experiment, "train", boom)
    else:  # fails while the new folder is being written
        monkeypatch.setattr(results, "write_records", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        inl_sim.run(load_scenario(tiny_scenario(training={"epochs": 2})), 1, out_dir=out, overwrite=True)
    assert tree_digest(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"], "no temporary folder left"


def test_a_successful_rerun_replaces_the_folder_only_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    inl_sim.run(load_scenario(tiny_scenario()), 0, out_dir=out)
    (out / "stale.txt").write_text("from an older run")
    with pytest.raises(ResultsError, match="--overwrite"):
        inl_sim.run(load_scenario(tiny_scenario()), 1, out_dir=out)
    assert (out / "stale.txt").exists()
    inl_sim.run(load_scenario(tiny_scenario()), 1, out_dir=out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "summary.json").read_text())["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# --------------------------------------------------------------------------- show and compare

def test_show_prints_both_edge_counts(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["show", str(QUICKSTART)]) == 0
    text = capsys.readouterr().out
    assert "dense: 27 active directed links" in text
    assert "spt: 8 active directed links" in text
    assert "8/27" in text and "70.4%" in text


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare")
    scenario = write_yaml(folder / "tiny.yaml", tiny_scenario())
    out = folder / "cmp"
    assert cli.main(["compare", str(scenario), "--seeds", "2", "--out", str(out), "--no-report",
                     "--no-progress"]) == 0
    return out


def test_compare_writes_tables_with_mean_std_and_reduction(comparison: Path) -> None:
    for name in ("comparison.json", "comparison.csv", "comparison.md"):
        assert (comparison / name).is_file(), name
    table = json.loads((comparison / "comparison.json").read_text())
    assert table["seeds"] == [0, 1] and table["methods"] == ["dense", "spt"]
    rows = {r["method"]: r for r in table["rows"]}
    assert set(rows) == {"dense", "spt"}
    for method, row in rows.items():
        assert row["n_seeds"] == 2 and row["mode"] == method
        per_seed = [json.loads((comparison / method / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
        for key in ("accuracy", "test_loss", "exchange_bytes"):
            values = [p[key] for p in per_seed]
            assert row[f"{key}_mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert row[f"{key}_std"] == pytest.approx(statistics.stdev(values), rel=1e-9, abs=1e-12)
    assert rows["dense"]["exchange_reduction"] == 0.0
    ratio = Fraction(rows["spt"]["exchange_bytes_mean"]) / Fraction(rows["dense"]["exchange_bytes_mean"])
    assert ratio == Fraction(8, 27)
    assert math.isclose(rows["spt"]["exchange_reduction"], 1 - 8 / 27, rel_tol=1e-12)
    header = (comparison / "comparison.csv").read_text().splitlines()[0].split(",")
    assert {"method", "accuracy_mean", "accuracy_std", "exchange_reduction"} <= set(header)
    markdown = (comparison / "comparison.md").read_text()
    assert "exchange reduction" in markdown.splitlines()[0]
    assert markdown.count("±") >= 2 * 8 and "70.4%" in markdown


def test_compare_seed_folders_hold_complete_runs(comparison: Path) -> None:
    for method in ("dense", "spt"):
        for seed in (0, 1):
            run_dir = comparison / method / f"seed{seed}"
            loaded = results.read_run(run_dir)
            assert loaded["summary"]["seed"] == seed and loaded["summary"]["method"] == method
            assert sum(t["nbytes"] for t in loaded["transfers"]) == loaded["summary"]["exchange_bytes"]

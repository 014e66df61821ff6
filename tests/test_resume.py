"""Resume: finished runs are reused (same key), never recomputed after SIGKILL, SIGTERM
or SIGINT, and a resumed study ends with the same tables as an uninterrupted one.

Oracles: the uninterrupted study's own rows (an in-process ``compare`` on the same
scenario: runs are bit-for-bit deterministic), the (inode, mtime) of every finished
run's ``summary.json`` (a recomputed run is a new file), the reuse count in the log,
and a digest of the folder beside the study (a sentinel that must never change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest

from inl_sim import cli
from inl_sim.study import executors
from inl_sim.study.comparison import compare, sweep
from inl_sim.study.resume import StoredRun, run_key
from inl_sim.study.results import read_json
from inl_sim.scenario import load_scenario
from inl_sim.study.experiment import RunResult
from inl_sim.study.survey import compare_topologies

from conftest import PYTHON, ROOT, cli_env, tiny_scenario

SEEDS = 3
MODES = ("dense", "spt")
#: wall time is the only number that differs between two executions of one run
VOLATILE = ("wall_time_s_mean", "wall_time_s_std")


def _scenario() -> dict:
    return tiny_scenario(training__epochs=2)


def _norm(value: object) -> object:
    """NaN -> "NaN" (so that equal tables compare equal), tuples -> lists."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _rows(rows: list[dict]) -> list:
    return _norm([{k: v for k, v in r.items() if k not in VOLATILE} for r in rows])


def _finished(out: Path) -> dict[str, tuple[int, int]]:
    """run folder -> (inode, mtime_ns) of its summary.json."""
    found = {}
    for p in out.glob("*/seed*/summary.json"):
        st = p.stat()
        found[str(p.parent.relative_to(out))] = (st.st_ino, st.st_mtime_ns)
    return found


def _digest(folder: Path, skip: str) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if skip not in p.parts}


@pytest.fixture(scope="module")
def reference() -> list[dict]:
    """The rows of an uninterrupted study, without a folder."""
    return compare(_scenario(), modes=list(MODES), seeds=SEEDS).rows


# --------------------------------------------------------------------------- in process

def test_rerun_reuses_every_finished_run(tmp_path: Path, reference: list[dict],
                                         caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "study"
    first = compare(_scenario(), modes=list(MODES), seeds=SEEDS, out_dir=out)
    assert _rows(first.rows) == _rows(reference)
    stamps = _finished(out)
    assert len(stamps) == len(MODES) * SEEDS
    table = (out / "comparison.json").read_text()
    with caplog.at_level(logging.INFO, logger="inl_sim.study.comparison"):
        again = compare(_scenario(), modes=list(MODES), seeds=SEEDS, out_dir=out)
    assert f"{len(stamps)} finished run(s) reused, 0 to train" in caplog.text
    assert _finished(out) == stamps
    assert all(isinstance(r, StoredRun) for rs in again.runs.values() for r in rs)
    assert again.rows == first.rows and (out / "comparison.json").read_text() == table
    stored = again.runs["spt"][1]
    assert (stored.seed, stored.accuracy, stored.status) == (1, first.runs["spt"][1].accuracy, "ok")
    assert sum(t.nbytes for t in stored.transfers) == first.runs["spt"][1].exchange_bytes


def test_fresh_trains_again_and_a_changed_scenario_is_not_reused(tmp_path: Path) -> None:
    out = tmp_path / "study"
    compare(_scenario(), modes=["spt"], seeds=2, out_dir=out)
    stamps = _finished(out)
    again = compare(_scenario(), modes=["spt"], seeds=2, out_dir=out, fresh=True)
    assert all(isinstance(r, RunResult) for r in again.runs["spt"])
    assert all(_finished(out)[k] != v for k, v in stamps.items())
    stamps = _finished(out)
    changed = compare(tiny_scenario(training__epochs=1), modes=["spt"], seeds=2, out_dir=out)
    assert all(isinstance(r, RunResult) for r in changed.runs["spt"]), "another scenario, another key"
    assert all(_finished(out)[k] != v for k, v in stamps.items())


def test_run_key_covers_scenario_seed_method_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario(_scenario())
    key = run_key(sc, 0, "spt")
    assert key == run_key(load_scenario(_scenario()), 0, "spt")
    others = {run_key(sc, 1, "spt"), run_key(sc, 0, "dense"),
              run_key(load_scenario(tiny_scenario(training__epochs=3)), 0, "spt")}
    monkeypatch.setattr("inl_sim.study.resume.__version__", "9.9.9")
    others.add(run_key(sc, 0, "spt"))
    assert key not in others and len(others) == 4


def test_interrupt_in_process_keeps_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "study"
    real, calls = executors.run_task, []

    def third_is_interrupted(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(executors, "run_task", third_is_interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare(_scenario(), modes=list(MODES), seeds=2, out_dir=out)
    assert sorted(_finished(out)) == ["dense/seed0", "dense/seed1"]
    assert not [p for p in out.rglob(".*tmp-*")], "no temporary left"
    calls.clear()
    monkeypatch.setattr(executors, "run_task", lambda task: calls.append(task) or real(task))
    compare(_scenario(), modes=list(MODES), seeds=2, out_dir=out)
    assert [(t[2], t[1]) for t in calls] == [("spt", 0), ("spt", 1)]


def test_sweep_and_survey_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sweep(_scenario(), {"gate.beta": [0.0, 0.01]}, seeds=1, out_dir=tmp_path / "sweep")
    survey = compare_topologies(_scenario(), ["mesh9.yaml"], seeds=1, out_dir=tmp_path / "topo")
    monkeypatch.setattr(executors, "run_task", lambda task: pytest.fail("a finished run was trained again"))
    assert sweep(_scenario(), {"gate.beta": [0.0, 0.01]}, seeds=1, out_dir=tmp_path / "sweep").rows == first.rows
    assert compare_topologies(_scenario(), ["mesh9.yaml"], seeds=1, out_dir=tmp_path / "topo").rows == survey.rows


# --------------------------------------------------------------------------- real signals

def _start(scenario: Path, out: Path) -> subprocess.Popen:
    argv = [PYTHON, "run.py", "compare", str(scenario), "--modes", ",".join(MODES), "--seeds", str(SEEDS),
            "--out", str(out), "--no-progress", "--no-report"]
    return subprocess.Popen(argv, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, ready, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc.poll() is None, f"the study ended before the signal: {proc.communicate()}"
        assert time.monotonic() < deadline, "the study made no progress"
        time.sleep(0.005)


# moment: how many runs are finished when the signal is sent (0: the study folder exists, runs in flight)
@pytest.mark.parametrize("sig,moment,code", [(signal.SIGKILL, 1, -9), (signal.SIGTERM, 3, 143),
                                             (signal.SIGINT, 0, 130)],
                         ids=["SIGKILL-after-1", "SIGTERM-after-3", "SIGINT-at-start"])
def test_signal_then_rerun_reuses_finished_runs_and_gives_the_same_tables(
        tmp_path: Path, reference: list[dict], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
        sig: signal.Signals, moment: int, code: int) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(_scenario()))
    (tmp_path / "sentinel.txt").write_text("beside the study folder; must never change")
    before = _digest(tmp_path, skip="study")
    out = tmp_path / "study"
    proc = _start(scenario, out)
    _wait_for(proc, (lambda: len(_finished(out)) >= moment) if moment else (lambda: (out / ".inl-sim.lock").exists()))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        (line,) = err.strip().splitlines()
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
        assert line.startswith(f"interrupted by {name}; ") and "run the same command again" in line, line
        assert f"{len(_finished(out)) if out.exists() else 0} finished run(s) kept" in line, line
    kept = _finished(out) if out.exists() else {}
    assert len(kept) >= moment and len(kept) < len(MODES) * SEEDS
    assert _digest(tmp_path, skip="study") == before

    argv = ["compare", str(scenario), "--modes", ",".join(MODES), "--seeds", str(SEEDS), "--out", str(out),
            "--no-progress", "--no-report"]
    with caplog.at_level(logging.INFO, logger="inl_sim.study.comparison"):
        assert cli.main(argv) == 0
    assert f"{len(kept)} finished run(s) reused, {len(MODES) * SEEDS - len(kept)} to train" in caplog.text
    after = _finished(out)
    assert {k: after[k] for k in kept} == kept, "a finished run was recomputed"
    assert len(after) == len(MODES) * SEEDS
    assert _rows(read_json(out / "comparison.json")["rows"]) == _rows(reference)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name or ".old-" in p.name], "temporaries cleaned"
    assert _digest(tmp_path, skip="study") == before

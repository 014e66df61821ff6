"""Tests of ``inl_sim.study.executors``: where a study's runs execute.

The oracle for every executor is the ``local`` one (runs one after the other in this
process): ``process`` must give the same results bit for bit (accuracy, bytes, every
transfer record, the history), in task order, with ``on_result`` called in the driver
once per task.  Errors raised in a worker arrive as their own type; an interrupt
cancels what is pending and leaves no worker process behind.  Ray has its own file
(``test_executors_ray.py``) because Ray is an optional extra.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path

import pytest
import yaml

from inl_sim import cli
from inl_sim.errors import ExecutorError, InlSimError, ScenarioError
from inl_sim.scenario import load_scenario, with_overrides
from inl_sim.study import executors
from inl_sim.study.executors import EXECUTORS, execute, resolve_executor

from conftest import tiny_scenario

UNTIMED = "wall_time"


def tiny_tasks(seeds: tuple[int, ...] = (0, 1)) -> list[tuple]:
    """2 methods (dense, spt: different bytes) x seeds on the 9-node mesh, one epoch."""
    sc = load_scenario(tiny_scenario(gate__kind="gaussian", gate__beta=0.01))
    return [(with_overrides(sc, {"routing.mode": m}), s, m) for m in ("dense", "spt") for s in seeds]


def fingerprint(result) -> dict:  # type: ignore[no-untyped-def]
    """Everything a run produced except wall-clock times."""
    summary = {k: v for k, v in result.summary().items() if UNTIMED not in k}
    history = [{k: v for k, v in row.items() if UNTIMED not in k} for row in result.history]
    return {"summary": summary, "history": history, "transfers": list(result.transfers),
            "edges": result.active_edges}


@pytest.fixture(scope="module")
def local_results() -> list:
    return execute(tiny_tasks(), executor="local")


def test_local_runs_in_task_order_and_equals_plain_run(local_results: list) -> None:
    from inl_sim.study.experiment import run
    tasks = tiny_tasks()
    assert [(r.method, r.seed) for r in local_results] == [(m, s) for _, s, m in tasks]
    sc, seed, method = tasks[1]
    assert fingerprint(local_results[1]) == fingerprint(run(sc, seed, method=method))
    # the two methods really differ, so equal results below are not a coincidence
    assert local_results[0].exchange_bytes != local_results[2].exchange_bytes


def test_process_results_equal_local_bit_for_bit_and_on_result_runs_in_the_driver(local_results: list) -> None:
    tasks = tiny_tasks()
    calls: list[tuple[str, int, int]] = []
    got = execute(tasks, executor="process", jobs=2,
                  on_result=lambda task, res: calls.append((task[2], task[1], os.getpid())))
    assert [fingerprint(r) for r in got] == [fingerprint(r) for r in local_results]
    assert sorted(calls) == sorted((m, s, os.getpid()) for _, s, m in tasks)  # each once, in this process
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("name", ["local", "process"])
def test_a_worker_error_arrives_as_its_own_type(name: str) -> None:
    sc = load_scenario(tiny_scenario())
    with pytest.raises(ScenarioError) as info:
        execute([(sc, -1, "bad")], executor=name, jobs=None if name == "local" else 1)
    assert type(info.value) is ScenarioError
    assert "seed: -1 must be an integer" in str(info.value)
    assert multiprocessing.active_children() == []


def test_an_interrupt_cancels_pending_runs_and_stops_the_workers() -> None:
    tasks = tiny_tasks(seeds=(0, 1, 2, 3))
    seen: list[tuple] = []

    def first_then_interrupt(task: tuple, result: object) -> None:
        seen.append(task)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # one worker: three runs are still pending
        execute(tasks, executor="process", jobs=1, on_result=first_then_interrupt)
    assert len(seen) == 1
    assert multiprocessing.active_children() == []


def test_an_on_result_error_stops_the_study() -> None:
    seen: list[tuple] = []

    def disk_full(task: tuple, result: object) -> None:
        seen.append(task)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        execute(tiny_tasks(), executor="local", on_result=disk_full)
    assert seen == tiny_tasks()[:1]


def test_local_stops_at_the_first_error_without_running_the_rest() -> None:
    sc = load_scenario(tiny_scenario())
    tasks = [(sc, 0, "ok"), (sc, -1, "bad"), (sc, 1, "never")]
    seen: list[str] = []
    with pytest.raises(ScenarioError):
        execute(tasks, executor="local", on_result=lambda task, res: seen.append(task[2]))
    assert seen == ["ok"]


@pytest.mark.parametrize("executor, jobs, address, expected", [
    (None, None, None, "local"),
    (None, 1, None, "local"),
    (None, 2, None, "process"),
    (None, None, "auto", "ray"),
    ("process", None, None, "process"),
    ("process", 1, None, "process"),
    ("ray", 3, None, "ray"),
    ("ray", None, "ray://head:10001", "ray"),
])
def test_resolve_executor_defaults(executor: str | None, jobs: int | None, address: str | None,
                                   expected: str) -> None:
    assert resolve_executor(executor, jobs, address) == expected
    assert expected in EXECUTORS


BAD = [
    ("unknown", "threads", None, None, "'threads' is not one of"),
    ("empty-name", "", None, None, "is not one of"),
    ("jobs-zero", None, 0, None, "jobs: 0 must be an integer in 1..1024"),
    ("jobs-negative", "process", -2, None, "jobs: -2 must be an integer in 1..1024"),
    ("jobs-bool", None, True, None, "jobs: True must be"),
    ("jobs-float", None, 1.5, None, "jobs: 1.5 must be"),
    ("jobs-str", None, "2", None, "jobs: '2' must be"),
    ("local-with-jobs", "local", 4, None, "jobs: 4 with executor 'local'"),
    ("address-without-ray", "process", None, "auto", "only used by executor 'ray'"),
    ("address-with-local", "local", None, "auto", "only used by executor 'ray'"),
]


@pytest.mark.parametrize("case, executor, jobs, address, message", BAD, ids=[b[0] for b in BAD])
def test_bad_executor_options_are_refused_before_any_run(case: str, executor: object, jobs: object,
                                                         address: object, message: str) -> None:
    def never(task: tuple, result: object) -> None:
        raise AssertionError("a run executed")

    with pytest.raises(ExecutorError, match="; ") as info:
        execute(tiny_tasks(seeds=(0,)), executor=executor, jobs=jobs, ray_address=address,  # type: ignore[arg-type]
                on_result=never)
    assert message in str(info.value) and isinstance(info.value, InlSimError)


def test_missing_ray_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match=r"pip install 'inl-sim\[ray\]'"):
        execute(tiny_tasks(seeds=(0,)), executor="ray")


def test_the_worker_task_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sc, seed, method = tiny_tasks(seeds=(0,))[0]
    result = executors.run_task((sc, seed, method))
    assert list(tmp_path.iterdir()) == [] and result.method == method


# --------------------------------------------------------------------------- command line

def _scenario_file(tmp_path: Path) -> Path:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario()), encoding="utf-8")
    return scenario


@pytest.mark.parametrize("flags, message", [
    (["--jobs", "0"], "jobs: 0 must be an integer in 1..1024"),
    (["--executor", "local", "--jobs", "2"], "with executor 'local'"),
    (["--executor", "process", "--ray-address", "auto"], "only used by executor 'ray'"),
])
def test_cli_bad_executor_flags_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     flags: list[str], message: str) -> None:
    code = cli.main(["compare", str(_scenario_file(tmp_path)), *flags, "--no-progress",
                     "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "out").exists()


def test_cli_unknown_executor_is_an_argparse_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["sweep", str(tmp_path / "x.yaml"), "--grid", "gate.beta=0", "--executor", "threads"])
    assert info.value.code == 2 and "invalid choice: 'threads'" in capsys.readouterr().err


def test_cli_topologies_compare_in_worker_processes_equals_local(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from inl_sim.study.survey import compare_topologies
    scenario = _scenario_file(tmp_path)
    compare_topologies(load_scenario(scenario), ["mesh9.yaml"], seeds=1, out_dir=tmp_path / "local")
    code = cli.main(["topologies", "compare", str(scenario), "--files", "mesh9.yaml", "--seeds", "1",
                     "--executor", "process", "--jobs", "1", "--no-progress", "--out", str(tmp_path / "process")])
    assert code == 0, capsys.readouterr().err
    local, process = (json.loads((tmp_path / n / "survey.json").read_text())["rows"] for n in ("local", "process"))
    assert [{k: v for k, v in r.items() if UNTIMED not in k} for r in process] == \
        [{k: v for k, v in r.items() if UNTIMED not in k} for r in local]
    for mode in ("dense", "spt"):
        a, b = (tmp_path / n / "runs" / f"mesh9.yaml.{mode}" / "seed0" / "transfers.csv" for n in ("local", "process"))
        assert a.read_bytes() == b.read_bytes()
    assert multiprocessing.active_children() == []



def _state(pid: int) -> str | None:
    """A process's state letter from /proc (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the driver no chance to clean up: the workers must notice on their own
    (without the watch they went on training: all still alive 15 s after the kill)."""
    import signal
    import subprocess
    import time
    from conftest import PYTHON, ROOT, cli_env
    scenario = tmp_path / "long.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario(training__epochs=1000)), encoding="utf-8")
    driver = subprocess.Popen([PYTHON, str(ROOT / "run.py"), "compare", str(scenario), "--jobs", "2", "--no-progress",
                               "--out", str(tmp_path / "out")], env=cli_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_children(driver.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        workers = _children(driver.pid)  # 2 workers (and multiprocessing's resource tracker)
        assert len(workers) >= 2, "the driver started no worker processes"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 30
        while (alive := [w for w in workers if _state(w) not in (None, "Z")]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive == []
    finally:
        driver.kill()

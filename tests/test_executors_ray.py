"""The ``ray`` executor against the ``local`` one (the oracle): a small sweep on a local
Ray instance gives the same tables, the same per-run numbers and the same transfer
records, bit for bit, and only the driver writes files.

Skipped, with the reason, only where Ray cannot be imported (it is the optional extra
``inl-sim[ray]``; the ``test`` extra installs it, so CI runs these).  The instance is
local, 2 CPUs, no dashboard, no usage statistics: it needs no network.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported: never phone home
ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'inl-sim[ray]'")

import inl_sim  # noqa: E402
from inl_sim.errors import ScenarioError  # noqa: E402
from inl_sim.scenario import load_scenario, with_overrides  # noqa: E402
from inl_sim.study.executors import execute  # noqa: E402

from conftest import PYTHON, ROOT, cli_env, tiny_scenario  # noqa: E402
from test_executors import fingerprint, tiny_tasks  # noqa: E402

UNTIMED = "wall_time"
GRID = {"routing.mode": ["dense", "spt"]}  # 2 points with different bytes, x 2 seeds


def _untimed(row: dict) -> dict:
    return {k: v for k, v in row.items() if UNTIMED not in k}


def _assert_same_study(a: Path, b: Path, stem: str = "sweep") -> None:
    """Same table rows and, per run, the same summary and transfer records."""
    rows_a, rows_b = (json.loads((p / f"{stem}.json").read_text())["rows"] for p in (a, b))
    assert [_untimed(r) for r in rows_a] == [_untimed(r) for r in rows_b] and len(rows_a) == 2
    runs = sorted(p.relative_to(a) for p in a.glob("*/seed*"))
    assert runs == sorted(p.relative_to(b) for p in b.glob("*/seed*")) and len(runs) == 4
    for run in runs:
        assert (a / run / "transfers.csv").read_bytes() == (b / run / "transfers.csv").read_bytes()
        assert _untimed(json.loads((a / run / "summary.json").read_text())) == \
            _untimed(json.loads((b / run / "summary.json").read_text()))


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, inl_sim.Comparison]:
    out = tmp_path_factory.mktemp("local") / "sweep"
    cmp = inl_sim.sweep(load_scenario(tiny_scenario()), GRID, seeds=2, out_dir=out, executor="local")
    return out, cmp


def test_cli_sweep_on_its_own_local_ray_instance_equals_local(tmp_path: Path, local_sweep: tuple) -> None:
    """The CLI starts a local Ray instance (2 CPUs), ships the package, shuts it down."""
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario()), encoding="utf-8")
    out = tmp_path / "ray"
    proc = subprocess.run([PYTHON, str(ROOT / "run.py"), "sweep", str(scenario), "--grid", "routing.mode=dense,spt",
                           "--seeds", "2", "--executor", "ray", "--jobs", "2", "--no-progress", "--no-report",
                           "--out", str(out)], cwd=tmp_path, env={**cli_env(), "RAY_USAGE_STATS_ENABLED": "0"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    _assert_same_study(local_sweep[0], out)


@pytest.fixture(scope="module")
def ray_instance() -> object:
    """One local instance for the API tests; execute() must leave it running."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_sweep_on_ray_equals_local_and_leaves_a_running_instance_alone(
        tmp_path: Path, local_sweep: tuple, ray_instance: object) -> None:
    out = tmp_path / "ray"
    cmp = inl_sim.sweep(load_scenario(tiny_scenario()), GRID, seeds=2, out_dir=out, executor="ray")
    _assert_same_study(local_sweep[0], out)
    for name, runs in local_sweep[1].runs.items():
        assert [fingerprint(r) for r in cmp.runs[name]] == [fingerprint(r) for r in runs]
    assert ray.is_initialized()


def test_on_result_runs_in_the_driver_once_per_task(ray_instance: object) -> None:
    tasks = tiny_tasks()
    calls: list[tuple] = []
    results = execute(tasks, executor="ray", on_result=lambda task, res: calls.append((task[2], task[1], os.getpid())))
    assert [(r.method, r.seed) for r in results] == [(m, s) for _, s, m in tasks]
    assert sorted(calls) == sorted((m, s, os.getpid()) for _, s, m in tasks)


def test_a_ray_worker_error_arrives_as_its_own_type(ray_instance: object) -> None:
    sc = load_scenario(tiny_scenario())
    with pytest.raises(ScenarioError) as info:
        execute([(sc, 0, "ok"), (sc, -1, "bad")], executor="ray")
    assert type(info.value) is ScenarioError and "seed: -1 must be an integer" in str(info.value)


def test_an_interrupt_cancels_pending_ray_tasks_and_the_instance_stays_usable(ray_instance: object) -> None:
    seen: list[tuple] = []

    def first_then_interrupt(task: tuple, result: object) -> None:
        seen.append(task)
        raise KeyboardInterrupt

    # the first task is quick, the others long: they are still running (or queued) when the
    # interrupt cancels them, as in a real study (a task finishing at the moment it is
    # cancelled is left alone: see executors._cancel_unfinished)
    quick = tiny_tasks(seeds=(0,))[0]
    slow = [(with_overrides(quick[0], {"training.epochs": 400}), s, "slow") for s in (1, 2)]
    with pytest.raises(KeyboardInterrupt):
        execute([quick, *slow], executor="ray", on_result=first_then_interrupt)
    assert len(seen) == 1 and ray.is_initialized()
    (again,) = execute(tiny_tasks(seeds=(0,))[:1], executor="ray")
    assert fingerprint(again) == fingerprint(execute(tiny_tasks(seeds=(0,))[:1], executor="local")[0])

"""The benchmark scripts still run against the current API (their numbers live in BENCHMARKS.md).

CI has no GPU: ``bench/bench_gpu.py`` is exercised with ``--device cpu`` on a small graph,
so that the day a GPU is at hand the script measures instead of failing on a renamed call.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def bench_gpu():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))
    try:
        from bench import bench_gpu as module
        yield module
    finally:
        sys.path.remove(str(ROOT))


def test_the_gpu_benchmark_measures_epochs_on_the_cpu(bench_gpu) -> None:  # type: ignore[no-untyped-def]
    row = bench_gpu.one(60, 2, "spt", device="cpu")
    assert row["n_nodes"] == 60 and len(row["epoch_s"]) == 2 and all(t > 0 for t in row["epoch_s"])
    assert row["n_transfers"] == 2 * 2 * 59 * 16          # epochs x directions x tree links x steps
    assert row["device"].startswith("cpu") and row["peak_gpu_mb"] == 0.0


def test_the_gpu_benchmark_refuses_to_run_without_cuda_unless_asked_for_the_cpu() -> None:
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--nodes", "30"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "torch.cuda.is_available() is False" in out.stdout


def test_the_floor_trains_what_the_learning_plane_trains() -> None:
    """The floor (one plain loop, one Adam) is the same arithmetic as a run: after two steps
    on the same batches both hold the same parameters, up to summation order."""
    import torch

    from conftest import tiny_scenario
    from inl_sim.scenario import load_scenario
    from inl_sim.study.setup import prepare
    sys.path.insert(0, str(ROOT))
    try:
        from bench.floor import epoch_batches, floor_train, make_optimisers
    finally:
        sys.path.remove(str(ROOT))
    sc = load_scenario(tiny_scenario(routing__mode="dense", training__epochs=1))
    plane, floor = prepare(sc, 0), prepare(sc, 0)
    batches = [epoch_batches(floor)[0][:2]]
    plane.engine.run_epoch(0, batches[0])
    floor_train(floor, batches, make_optimisers(floor, "single"))
    worst = 0.0
    for v in plane.graph.order:
        for (name, a), (_, b) in zip(plane.modules[v].named_parameters(), floor.modules[v].named_parameters()):
            worst = max(worst, float((a - b).detach().norm() / b.detach().norm()))
            assert not torch.equal(b, dict(prepare(sc, 0).modules[v].named_parameters())[name])   # it moved
    assert worst < 1e-5, worst

"""Seconds per D-INL epoch on a GPU (``simulation.device: cuda``) at 10,000 and 100,000 nodes.

Usage (on a machine with a CUDA build of torch and a GPU)::

    python bench/bench_gpu.py [--nodes 10000,100000] [--epochs 3] [--mode spt] [--out bench/out]

The scenario is ``scenarios/rgg10k.yaml`` (every node a sensor, n_train 1,024, batch
64) with ``n_nodes`` and the radius for mean degree ~8 overridden.  The first epoch pays
CUDA's warm-up; the median of the later epochs is reported (``torch.cuda.synchronize``
around each), with setup time, peak GPU memory and the device's name.  Without CUDA it
says so and exits with status 2; ``--device cpu`` runs the same measurement on the CPU
as a smoke test of the script itself (small ``--nodes``; its numbers are not the GPU
targets' and the test suite runs it this way).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import inl_sim  # noqa: E402
from bench.bench_planes import RGG10K, _scale_overrides  # noqa: E402
from bench.floor import epoch_batches  # noqa: E402
from inl_sim.study.setup import prepare  # noqa: E402


def one(n_nodes: int, epochs: int, mode: str, device: str = "cuda") -> dict:
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    overrides = {**_scale_overrides(n_nodes, mode), "training.epochs": epochs, "simulation.device": device}
    t0 = time.perf_counter()
    setup = prepare(inl_sim.load_scenario(RGG10K, overrides), 0)
    setup_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for epoch, batches in enumerate(epoch_batches(setup)):
        sync()
        w0 = time.perf_counter()
        setup.engine.run_epoch(epoch, batches)
        sync()
        times.append(time.perf_counter() - w0)
    return {"n_nodes": n_nodes, "mode": mode, "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.machine()})",
            "setup_s": setup_s, "epoch_s": times, "epoch_s_median_after_first": statistics.median(times[1:] or times),
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else 0.0,
            "n_groups": len(setup.engine.groups), "n_transfers": len(setup.ledger)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="10000,100000")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--mode", default="spt", choices=("spt", "dense"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a smoke run of this script")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: torch.cuda.is_available() is False: run this on a GPU machine with a CUDA build of torch")
        raise SystemExit(2)
    rows = [one(int(n), args.epochs, args.mode, args.device) for n in args.nodes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_gpu.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(f"{r['device']}: {r['mode']} {r['n_nodes']:,} nodes: {r['epoch_s_median_after_first']:.3f} s per epoch "
              f"(first {r['epoch_s'][0]:.2f} s), setup {r['setup_s']:.1f} s, peak GPU memory {r['peak_gpu_mb']:.0f} MB")


if __name__ == "__main__":
    main()

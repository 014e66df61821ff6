"""The learning plane against its floors, as ratios measured side by side in one run.

Usage::

    python bench/bench_planes.py [--repeats 5] [--out bench/out] [--no-scale] [--scale-only]

(a) quickstart, dense and spt: ``inl_sim.run`` (fast engine) end to end against the
    floor: the same modules and batches as one plain PyTorch loop with ONE Adam over all
    parameters, plus the same per-epoch evaluation (``bench/floor.py``), once with a
    ``foreach`` Adam and once with a ``fused`` one (the faster floor).  The three calls
    rotate their order inside every repeat; each ratio is the median of the per-repeat
    ratios.  The reference engine's numbers (accuracy, bytes) are taken
    once beside the fast engine's: they may differ by float rounding only.
(b) one D-INL (spt) epoch at 10,000 nodes (``scenarios/rgg10k.yaml``, every node a
    sensor, n_train 1,024, batch 64), one CPU thread, in a subprocess: training time of
    the epoch (and the network plane's timing of it), setup time, peak RSS.
(c) dense at 3,000 nodes (the same generator, radius for mean degree ~8): the fast
    engine's epoch against the floor's epoch, each in its own subprocess per repeat
    (interleaved), peak RSS of each.

Prints Markdown and writes ``bench_planes.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import inl_sim  # noqa: E402
from bench.floor import default_eval, epoch_batches, floor_train, make_optimisers  # noqa: E402
from inl_sim.study.setup import prepare  # noqa: E402

QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
RGG10K = ROOT / "scenarios" / "rgg10k.yaml"
MODES = ("dense", "spt")


def _scale_overrides(n_nodes: int, mode: str) -> dict[str, Any]:
    radius = math.sqrt(8.0 / (math.pi * n_nodes))       # n pi r^2 = 8 expected neighbours
    return {"topology.n_nodes": n_nodes, "topology.params": {"radius": round(radius, 4), "join_components": 1},
            "routing.mode": mode, "training.epochs": 1}


# ----------------------------------------------------------------------------- (a)
FLOORS = {"foreach": {}, "fused": {"fused": True}}   # the floor: ONE foreach or fused Adam


def _time_floor(sc: Any, kind: str) -> tuple[float, float]:
    setup = prepare(sc, 0)          # untimed: the floor reuses the modules only
    batches, opts = epoch_batches(setup), make_optimisers(setup, "single", **FLOORS[kind])
    w0 = time.perf_counter()
    hist = floor_train(setup, batches, opts, eval_fn=default_eval)
    return time.perf_counter() - w0, hist[-1]["test_accuracy"]


def quickstart(repeats: int) -> list[dict]:
    """Whole run against both floors, the three calls rotating their order every repeat."""
    rows = []
    variants = ("run", *FLOORS)
    for mode in MODES:
        sc = inl_sim.load_scenario(QUICKSTART, {"routing.mode": mode})
        times: dict[str, list[float]] = {v: [] for v in variants}
        acc: dict[str, Any] = {}
        for rep in range(repeats):
            for variant in variants[rep % 3:] + variants[:rep % 3]:
                gc.collect()
                if variant == "run":
                    w0 = time.perf_counter()
                    res = inl_sim.run(sc, 0, threads=None)
                    times["run"].append(time.perf_counter() - w0)
                    acc["fast"] = (res.accuracy, res.exchange_bytes)
                else:
                    t, acc[variant] = _time_floor(sc, variant)
                    times[variant].append(t)
        ref = inl_sim.run(inl_sim.load_scenario(QUICKSTART, {"routing.mode": mode, "simulation.engine": "reference"}), 0)
        row = {"mode": mode, "repeats": repeats, "run_s": statistics.median(times["run"]),
               "accuracy_fast": acc["fast"][0], "bytes_fast": acc["fast"][1],
               "accuracy_reference": ref.accuracy, "bytes_reference": ref.exchange_bytes}
        for kind in FLOORS:
            ratios = [r / f for r, f in zip(times["run"], times[kind])]
            row.update({f"floor_{kind}_s": statistics.median(times[kind]), f"ratio_{kind}": statistics.median(ratios),
                        f"ratios_{kind}": ratios, f"accuracy_floor_{kind}": acc[kind]})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- (b), (c)
def child(kind: str, n_nodes: int, mode: str) -> dict:
    """Run in a subprocess: one epoch of the fast engine or of the floor; peak RSS is its own."""
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    sc = inl_sim.load_scenario(RGG10K, _scale_overrides(n_nodes, mode))
    setup = prepare(sc, 0)
    setup_s, setup_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    batches = epoch_batches(setup)[0]
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    if kind == "fast":
        stats = setup.engine.run_epoch(0, batches)
        loss = stats.loss_sum / stats.samples
    else:
        hist = floor_train(setup, [batches], make_optimisers(setup, "single"))
        loss = hist[0]["train_loss"]
    epoch_s, epoch_cpu_s = time.perf_counter() - w0, time.process_time() - c0
    return {"kind": kind, "n_nodes": n_nodes, "mode": mode, "setup_s": setup_s, "epoch_s": epoch_s,
            "setup_cpu_s": setup_cpu_s, "epoch_cpu_s": epoch_cpu_s,
            "train_loss": loss, "n_edges": len(setup.graph.edges), "n_groups": len(getattr(setup.engine, "groups", [])),
            "n_transfers": len(setup.ledger), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _spawn(kind: str, n_nodes: int, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(n_nodes), mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1",
                         "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale(repeats: int) -> dict:
    d10k = _spawn("fast", 10_000, "spt")
    dense = []
    for rep in range(repeats):
        pair = {}
        for kind in (("fast", "floor") if rep % 2 == 0 else ("floor", "fast")):
            pair[kind] = _spawn(kind, 3_000, "dense")
        dense.append(pair)
    ratios = [p["fast"]["epoch_cpu_s"] / p["floor"]["epoch_cpu_s"] for p in dense]
    return {"spt_10k": d10k, "dense_3k": dense, "dense_3k_ratio": statistics.median(ratios),
            "dense_3k_ratios": ratios}


# ----------------------------------------------------------------------------- report
def render(result: dict) -> str:
    lines = [f"machine: {result['machine']}", "",
             "| mode | repeats | run s | floor s: foreach / fused Adam (+ eval) | **run / floor**: foreach / fused "
             "| accuracy fast / reference / floor | bytes fast / reference |",
             "|---|---|---|---|---|---|---|"]
    for r in result.get("quickstart", []):
        lines.append(f"| {r['mode']} | {r['repeats']} | {r['run_s']:.3f} | {r['floor_foreach_s']:.3f} / {r['floor_fused_s']:.3f} | "
                     f"**{r['ratio_foreach']:.2f} / {r['ratio_fused']:.2f}** | "
                     f"{r['accuracy_fast']:.4f} / {r['accuracy_reference']:.4f} / {r['accuracy_floor_foreach']:.4f} | "
                     f"{r['bytes_fast']:,} / {r['bytes_reference']:,} |")
    sc = result.get("scale")
    if sc:
        d = sc["spt_10k"]
        lines += ["", f"spt 10,000 nodes, 1 thread: epoch {d['epoch_s']:.2f} s wall, {d.get('epoch_cpu_s', float('nan')):.2f} s CPU "
                  f"(setup {d['setup_s']:.2f} s wall, {d.get('setup_cpu_s', float('nan')):.2f} s CPU), "
                  f"{d['n_edges']:,} active edges in {d['n_groups']} groups, {d['n_transfers']:,} transfers, "
                  f"peak RSS {d['peak_rss_mb']:.0f} MB"]
        for p in sc["dense_3k"]:
            lines.append(f"dense 3,000 nodes: fast epoch {p['fast']['epoch_s']:.2f} s ({p['fast']['peak_rss_mb']:.0f} MB), "
                         f"floor epoch {p['floor']['epoch_s']:.2f} s ({p['floor']['peak_rss_mb']:.0f} MB), "
                         f"{p['fast']['n_edges']:,} edges")
        lines.append(f"dense 3,000 nodes: **fast / floor = {sc['dense_3k_ratio']:.2f}** (CPU time, median of {len(sc['dense_3k_ratios'])})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scale-repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--scale-only", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "N_NODES", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2])))
        return
    torch.set_num_threads(1)
    result: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                                         f"1 thread, {time.strftime('%Y-%m-%d %H:%M')}"}
    if not args.scale_only:
        result["quickstart"] = quickstart(args.repeats)
    if not args.no_scale:
        result["scale"] = scale(args.scale_repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_planes.json").write_text(json.dumps(result, indent=1))
    print(render(result))


if __name__ == "__main__":
    main()

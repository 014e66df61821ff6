"""cProfile of one whole quickstart run: where the time goes inside ``inl_sim.run``.

Usage::

    python bench/profile_run.py [--mode dense] [--threads 1] [--top 15] [--floor] [--clock wall|cpu]

Prints the top functions by cumulative and by own (tottime) time and writes the raw
profile (``profile-<mode>.pstats``, readable with ``python -m pstats`` or snakeviz).
cProfile adds a cost per call, so code that makes many small Python calls (SimPy, the
engine) looks slower than it is: read the ranking, not the seconds.  The profiler's clock
is wall time by default; ``--clock cpu`` uses process CPU time, which ignores other load
on a shared machine but costs a system call per event, inflating small calls further.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import inl_sim  # noqa: E402

SCENARIO = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"


def profile_run(mode: str, timer, seed: int = 0) -> pstats.Stats:
    """Profile ``inl_sim.run`` on the quickstart scenario in ``mode`` (after one warm-up run)."""
    sc = inl_sim.load_scenario(SCENARIO, overrides={"routing.mode": mode})
    inl_sim.run(sc, seed, threads=None)  # warm-up: imports, allocator, lazy initialisation
    prof = cProfile.Profile(timer)
    prof.enable()
    inl_sim.run(sc, seed, threads=None)
    prof.disable()
    return pstats.Stats(prof)


def profile_floor(mode: str, timer, seed: int = 0) -> pstats.Stats:
    """Profile the plain-PyTorch floor (per-node Adam, per-epoch evaluation) on the same batches."""
    from bench.floor import default_eval, epoch_batches, floor_train, make_optimisers
    from inl_sim.study.experiment import prepare
    sc = inl_sim.load_scenario(SCENARIO, overrides={"routing.mode": mode})
    stats = None
    for _ in range(2):  # the first pass warms up
        setup = prepare(sc, seed)
        batches, opts = epoch_batches(setup), make_optimisers(setup, "per_node")
        prof = cProfile.Profile(timer)
        prof.enable()
        floor_train(setup, batches, opts, eval_fn=default_eval)
        prof.disable()
        stats = pstats.Stats(prof)
    return stats


def top(stats: pstats.Stats, key: str, n: int) -> str:
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats(key).print_stats(n)
    lines = buf.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:start + n + 1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="dense", choices=["dense", "spt"])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: leave the default)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--floor", action="store_true", help="also profile the plain-PyTorch floor")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = time.perf_counter if args.clock == "wall" else time.process_time
    stats = profile_run(args.mode, timer)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(out / f"profile-{args.mode}.pstats"))
    print(f"## quickstart {args.mode}, torch threads {torch.get_num_threads()}, "
          f"total {stats.total_tt:.3f} {args.clock} s under cProfile, load average {os.getloadavg()[0]:.2f}\n")
    for key in ("cumulative", "tottime"):
        print(f"### top {args.top} by {key}\n```\n{top(stats, key, args.top)}\n```\n")
    if args.floor:
        floor = profile_floor(args.mode, timer)
        floor.dump_stats(str(out / f"profile-floor-{args.mode}.pstats"))
        print(f"## the floor ({args.mode} modules, per-node Adam, per-epoch evaluation): "
              f"total {floor.total_tt:.3f} {args.clock} s under cProfile\n")
        print(f"### top {args.top} by tottime\n```\n{top(floor, 'tottime', args.top)}\n```\n")


if __name__ == "__main__":
    main()

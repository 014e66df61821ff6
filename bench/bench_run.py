"""Wall time of inl-sim runs against the plain-PyTorch floor, as ratios measured in one run.

Usage::

    python bench/bench_run.py [--repeats 5] [--out bench/out] [--threads 1,default] [--no-scale]

Quickstart scenario, routing modes ``dense`` and ``spt``; three timed calls per repeat and
mode, each yielding the numbers below (inner parts are timed by thin wrappers, so (a) and
(b) come from the very same run, and (c + eval) and (c) from the very same floor run):

* (a)       ``inl_sim.run(sc, seed, threads=None)`` end to end (``threads=None`` so that
            the run keeps the thread count under test): setup, SimPy engine, per-epoch
            evaluation, the final evaluation, result building;
* (b)       inside (a): the engine's training only, the ``Engine.run_epoch`` calls
            (``prepare``, also inside (a), is reported on its own);
* (c + eval) the same modules as one plain PyTorch loop with per-node Adam (INL's set),
            plus the run's own per-epoch test evaluation;
* (c)       inside (c + eval): the floor's training only (the evaluations subtracted);
* (c')      the floor with ONE Adam over all parameters (training only).

Ratios: whole run = (a) / (c + eval); training = (b) / (c), and (b) / (c').  The calls
are interleaved inside every repeat (their order rotates from repeat to repeat) and each
ratio is the median over repeats of the ratio of times measured side by side, so drifting
load on a shared machine cancels as far as it can.  CPU-time ratios are reported next to
wall ratios: with one torch thread they are the robust number when other processes compete.

The scale check trains one epoch on a 200-node random geometric graph (dense and spt),
each in its own subprocess so that its peak RSS is its own.

Prints a Markdown table and writes ``bench_run.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import simpy  # noqa: E402

import inl_sim  # noqa: E402
from inl_sim.study import experiment  # noqa: E402
from inl_sim.sim.engine import Engine  # noqa: E402
from inl_sim.sim.plane import FastEngine  # noqa: E402
from inl_sim.study.experiment import RunSetup, evaluate, prepare  # noqa: E402
from bench.floor import default_eval, epoch_batches, floor_train, make_optimisers  # noqa: E402

SCENARIO = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"
MODES = ("dense", "spt")
VARIANTS = ("run", "floor_eval", "floor_single")           # timed calls per repeat
MEASURES = ("run", "engine", "floor_eval", "floor", "floor_single")  # numbers they yield
TARGET_RATIO = 1.5
SCALE_TIMEOUT_S = 120
#: The 200-node scale check: one epoch, a small task, every non-fusion node senses.
SCALE_OVERRIDES = {
    "topology": {"generator": "random_geometric", "n_nodes": 200, "params": {"radius": 0.15},
                 "sensors": "all", "seed": 0},
    "data.n_train": 1024, "data.n_test": 512, "training.epochs": 1,
}


# ----------------------------------------------------------------------------- timing
def _clock(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, fn's value); garbage collected beforehand."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - w0, time.process_time() - c0, value


def _engine_epochs(setup: RunSetup, batches: list) -> None:
    for epoch, idx in enumerate(batches):
        setup.engine.run_epoch(epoch, idx)


class _Spy:
    """Accumulates wall and CPU seconds of every call to ``owner.name`` while active."""

    def __init__(self, owner: Any, name: str) -> None:
        self.owner, self.name, self.wall_s, self.cpu_s = owner, name, 0.0, 0.0
        self.original = getattr(owner, name)

    def __enter__(self) -> "_Spy":
        original = self.original

        def timed(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall_s += time.perf_counter() - w0
                self.cpu_s += time.process_time() - c0

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(self.owner, self.name, self.original)


def time_variant(variant: str, sc: inl_sim.Scenario, seed: int) -> dict[str, Any]:
    """Time one call of ``variant`` ("run", "floor_eval" or "floor_single") and its parts."""
    if variant == "run":
        with _Spy(experiment, "prepare") as prep, _Spy(Engine, "run_epoch") as ref, \
                _Spy(FastEngine, "run_epoch") as fast:
            wall, cpu, res = _clock(lambda: inl_sim.run(sc, seed, threads=None))
        epochs = ref if ref.wall_s else fast
        return {"run": (wall, cpu), "engine": (epochs.wall_s, epochs.cpu_s), "prepare_s": prep.wall_s,
                "test_accuracy": res.accuracy, "n_transfers": len(res.transfers)}
    setup = prepare(sc, seed)  # untimed: the floor reuses the run's modules, not its machinery
    batches = epoch_batches(setup)
    if variant == "floor_single":
        opts = make_optimisers(setup, "single")
        wall, cpu, _ = _clock(lambda: floor_train(setup, batches, opts))
        return {"floor_single": (wall, cpu), "test_accuracy": evaluate(setup)["accuracy"]}
    opts = make_optimisers(setup, "per_node")
    spy = _Spy(types.SimpleNamespace(fn=default_eval), "fn")
    with spy:
        wall, cpu, hist = _clock(lambda: floor_train(setup, batches, opts, eval_fn=spy.owner.fn))
    return {"floor_eval": (wall, cpu), "floor": (wall - spy.wall_s, cpu - spy.cpu_s),
            "test_accuracy": hist[-1]["test_accuracy"]}


def parity(sc: inl_sim.Scenario, seed: int) -> dict[str, float]:
    """Max |difference| between engine-trained and floor-trained parameters (same seed).

    After one step it is float summation order only; Adam then amplifies it on
    parameters whose gradients are near zero, so the full run is compared by accuracy.
    """
    out = {}
    for label, n_steps in (("one_step", 1), ("full_run", None)):
        a, b = prepare(sc, seed), prepare(sc, seed)
        batches = epoch_batches(a)
        if n_steps is not None:
            batches = [batches[0][:n_steps]]
        _engine_epochs(a, batches)
        floor_train(b, batches, make_optimisers(b, "per_node"))
        with torch.no_grad():
            out[f"max_abs_param_diff_{label}"] = max(
                float((pa - pb).abs().max()) for v in a.modules
                for pa, pb in zip(a.modules[v].parameters(), b.modules[v].parameters()))
        out[f"test_accuracy_{label}"] = [evaluate(a)["accuracy"], evaluate(b)["accuracy"]]
    return out


class _Deadline(Exception):
    """Raised by the alarm when a thread setting runs past its share of the budget."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Deadline


def bench_threads(threads: int, repeats: int, seed: int, budget_s: float,
                  warmup_limit_s: float) -> dict[str, Any]:
    """All modes x variants for one torch thread count, interleaved, ``repeats`` times.

    The warm-up (every call once on a 1-epoch run) is timed and must finish within
    ``warmup_limit_s``.  Stops adding repeats when the next one would not fit in
    ``budget_s``, and aborts (keeping the finished repeats) when one overruns it: with
    more torch threads than idle cores, OpenMP workers wait for the scheduler and a run
    can take 100x longer.
    """
    torch.set_num_threads(threads)
    scs = {m: inl_sim.load_scenario(SCENARIO, overrides={"routing.mode": m}) for m in MODES}
    raw: dict[str, list[dict]] = {m: [] for m in MODES}
    warmup: dict[str, float] = {}
    done, note, current, t0 = 0, "", "", time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(min(budget_s, warmup_limit_s), 1.0))
    try:
        for m in MODES:  # warm-up of every code path (thread pool, allocator, lazy init)
            short = inl_sim.load_scenario(scs[m], overrides={"training.epochs": 1})
            for v in VARIANTS:
                current = f"{m}/{v}"
                warmup[current] = time_variant(v, short, seed)[v][0]
        signal.setitimer(signal.ITIMER_REAL, max(budget_s - (time.perf_counter() - t0), 1.0))
        for r in range(repeats):
            t_repeat = time.perf_counter()
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for m in MODES:
                row: dict[str, Any] = {}
                for v in order:
                    got = time_variant(v, scs[m], seed)
                    row[f"{v}_accuracy"] = got.pop("test_accuracy")
                    row.update(got)
                raw[m].append(row)
            done += 1
            left = budget_s - (time.perf_counter() - t0)
            if r + 1 < repeats and left < time.perf_counter() - t_repeat:
                note = f"stopped after {done} repeats: the next would overrun the {budget_s:.0f} s budget"
                break
    except _Deadline:
        if len(warmup) < len(MODES) * len(VARIANTS):
            note = (f"aborted in the warm-up: the one-epoch call {current} was still running when the "
                    f"{min(budget_s, warmup_limit_s):.0f} s limit ran out ({len(warmup)} calls done)")
        else:
            note = f"aborted after {done} complete repeats: the {budget_s:.0f} s budget ran out mid-repeat"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out = {"threads": threads, "repeats": done, "note": note, "warmup_wall_s": warmup, "raw": raw,
           "elapsed_s": time.perf_counter() - t0}
    if done:
        out["summary"] = {m: summarise(raw[m]) for m in MODES}
    return out


def summarise(rows: list[dict]) -> dict[str, Any]:
    """Medians of times and the medians of per-repeat (side-by-side) ratios.

    ``rows``: one merged dict per repeat, measure -> (wall_s, cpu_s).
    """
    out: dict[str, Any] = {f"{m}_s": statistics.median(r[m][0] for r in rows) for m in MEASURES}
    out.update({f"{m}_cpu_s": statistics.median(r[m][1] for r in rows) for m in MEASURES})
    out["prepare_s"] = statistics.median(r["prepare_s"] for r in rows)
    pairs = {"whole_ratio": ("run", "floor_eval"), "train_ratio": ("engine", "floor"),
             "train_ratio_single": ("engine", "floor_single")}
    for name, (num, den) in pairs.items():
        for k, tag in ((0, ""), (1, "_cpu")):
            out[f"{name}{tag}"] = statistics.median(r[num][k] / r[den][k] for r in rows)
    whole = [r["run"][0] / r["floor_eval"][0] for r in rows]
    out["whole_ratio_range"] = [min(whole), max(whole)]
    out["accuracy"] = {"run": rows[0]["run_accuracy"], "floor_eval": rows[0]["floor_eval_accuracy"]}
    out["n_transfers"] = rows[0]["n_transfers"]
    return out


# ----------------------------------------------------------------------------- scale
def scale_child(mode: str, threads: int, sensors: str) -> dict[str, Any]:
    """One 200-node run in this (fresh) process; printed as one JSON line by ``--scale-child``."""
    torch.set_num_threads(threads)
    overrides = json.loads(json.dumps(SCALE_OVERRIDES))
    overrides["routing.mode"] = mode
    if sensors != "all":
        overrides["topology"]["sensors"] = {"rule": "k_random", "k": int(sensors)}
    sc = inl_sim.load_scenario(SCENARIO, overrides=overrides)
    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {"mode": mode, "sensors": sensors, "threads": threads}
    try:
        warm = inl_sim.load_scenario(sc, overrides={"data.n_train": 64})
        inl_sim.run(warm, 0, threads=None)  # warm-up: one step
        wall, _, res = _clock(lambda: inl_sim.run(sc, 0, threads=None))
    except Exception as exc:  # the scale check reports failures instead of stopping the bench
        return {**out, "completed": False, "error": f"{type(exc).__name__}: {exc}"}
    prep_s, _, setup = _clock(lambda: prepare(sc, 0))
    batches = epoch_batches(setup)
    epoch_s, _, _ = _clock(lambda: _engine_epochs(setup, batches))
    eval_s, _, _ = _clock(lambda: evaluate(setup))
    floor_setup = prepare(sc, 0)
    opts = make_optimisers(floor_setup, "per_node")
    floor_s, _, _ = _clock(lambda: floor_train(floor_setup, epoch_batches(floor_setup), opts))
    g = res.network.graph
    return {**out, "completed": True, "n_nodes": g.number_of_nodes(), "n_links": g.number_of_edges(),
            "active_edges": res.n_active_edges, "live_nodes": len(res.graph.order),
            "n_sensors": len(res.network.sensors), "steps_per_epoch": len(batches[0]),
            "run_wall_s": wall, "prepare_s": prep_s, "engine_epoch_s": epoch_s, "evaluate_s": eval_s,
            "floor_epoch_s": floor_s, "engine_over_floor": epoch_s / floor_s,
            "n_transfers": len(res.transfers), "test_accuracy": res.accuracy,
            "rss_after_imports_mb": rss_before_mb,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_scale(threads: int) -> list[dict[str, Any]]:
    """Each scale configuration in its own subprocess (clean peak RSS)."""
    rows = []
    for mode, sensors in (("dense", "all"), ("spt", "all"), ("spt", "50")):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--scale-child", mode,
               "--scale-sensors", sensors, "--threads", str(threads)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SCALE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rows.append({"mode": mode, "sensors": sensors, "completed": False,
                         "error": f"did not finish in {SCALE_TIMEOUT_S} s"})
            continue
        if proc.returncode != 0:
            rows.append({"mode": mode, "sensors": sensors, "completed": False,
                         "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


# ----------------------------------------------------------------------------- report
def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": cpu,
            "python": platform.python_version(), "torch": torch.__version__, "simpy": simpy.__version__,
            "inl_sim": inl_sim.__version__, "default_torch_threads": torch.get_num_threads(),
            "parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "other",
            "platform": platform.platform()}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, torch {m['torch']}, "
             f"simpy {m['simpy']}; load average {result['loadavg_start']} at start, "
             f"{result['loadavg_end']} at end.", "",
             "| threads | mode | repeats | (a) run s | (c+eval) floor+eval s | **(a)/(c+eval)** | cpu | "
             "(b) engine s | (c) floor s | **(b)/(c)** | cpu | (c') 1-Adam s | (b)/(c') | prepare s | "
             "acc run / floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sec in result["quickstart"]:
        if "summary" not in sec:
            lines.append(f"| {sec['threads']} | both | 0 | {sec['note']} |" + " |" * 11)
            continue
        for mode, s in sec["summary"].items():
            few = " (too few)" if sec["repeats"] < min(result["repeats_asked"], 5) else ""
            lines.append(
                f"| {sec['threads']} | {mode} | {sec['repeats']}{few} | {s['run_s']:.3f} | {s['floor_eval_s']:.3f} | "
                f"**{s['whole_ratio']:.2f}** | {s['whole_ratio_cpu']:.2f} | {s['engine_s']:.3f} | "
                f"{s['floor_s']:.3f} | **{s['train_ratio']:.2f}** | {s['train_ratio_cpu']:.2f} | "
                f"{s['floor_single_s']:.3f} | {s['train_ratio_single']:.2f} | {s['prepare_s']:.3f} | "
                f"{s['accuracy']['run']:.4f} / {s['accuracy']['floor_eval']:.4f} |")
    if result.get("scale"):
        lines += ["", "200-node scale check (random_geometric radius 0.15, one epoch, "
                  f"n_train {SCALE_OVERRIDES['data.n_train']}, batch 64, threads {result['scale_threads']}):", "",
                  "| mode | sensors | completed | links | active edges | steps | run s | engine epoch s | "
                  "floor epoch s | engine/floor | transfers | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["scale"]:
            if not r.get("completed"):
                lines.append(f"| {r['mode']} | {r['sensors']} | **no**: {r.get('error', '')} |" + "  |" * 9)
                continue
            lines.append(f"| {r['mode']} | {r['sensors']} | yes | {r['n_links']} | {r['active_edges']} | "
                         f"{r['steps_per_epoch']} | {r['run_wall_s']:.2f} | {r['engine_epoch_s']:.2f} | "
                         f"{r['floor_epoch_s']:.2f} | {r['engine_over_floor']:.2f} | {r['n_transfers']} | "
                         f"{r['peak_rss_mb']:.0f} |")
    warm = [f"threads {sec['threads']}: " + ", ".join(f"{k} {v:.2f} s" for k, v in sec["warmup_wall_s"].items())
            for sec in result["quickstart"]]
    lines += ["", "Warm-up, one-epoch calls (wall): " + "; ".join(warm) + "."]
    notes = [f"threads {sec['threads']}: {sec['note']}" for sec in result["quickstart"] if sec["note"]]
    if notes:
        lines += [""] + [f"Note: {n}." for n in notes]
    if result.get("parity"):
        par = result["parity"]
        lines += ["", "Floor = engine check (same seed, same batches): max |param diff| after one step "
                  + ", ".join(f"{m} {p['max_abs_param_diff_one_step']:.1e}" for m, p in par.items())
                  + "; test accuracy engine / floor after the full run "
                  + ", ".join(f"{m} {p['test_accuracy_full_run'][0]:.4f} / {p['test_accuracy_full_run'][1]:.4f}"
                              for m, p in par.items()) + "."]
    lines += ["", verdict(result)]
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> str:
    """One honest line: the worst whole-run ratio per thread setting against the target."""
    asked, parts = result["repeats_asked"], []
    for sec in result["quickstart"]:
        if "summary" not in sec:
            parts.append(f"threads {sec['threads']}: no result ({sec['note']})")
            continue
        worst = max(s["whole_ratio"] for s in sec["summary"].values())
        verdict_word = "meets" if worst <= TARGET_RATIO else "MISSES"
        if sec["repeats"] < min(asked, 5):
            verdict_word = f"inconclusive, {sec['repeats']} repeat(s) only"
        parts.append(f"threads {sec['threads']}: worst whole-run ratio {worst:.2f} ({verdict_word}, target "
                     f"<= {TARGET_RATIO})")
    return "Target (a)/(c+eval) <= 1.5 on quickstart: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per variant (median; >= 5 advised)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--threads", default="1,default", help="comma list of torch thread counts or 'default'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=120.0,
                    help="quickstart time budget: a thread setting gets what is left of it, less the "
                         "warm-up limit reserved for each later setting")
    ap.add_argument("--warmup-limit-s", type=float, default=15.0,
                    help="abort a thread setting whose warm-up (six one-epoch calls) takes longer")
    ap.add_argument("--no-scale", action="store_true", help="skip the 200-node check")
    ap.add_argument("--render", metavar="JSON", help="only re-print the table of a saved bench_run.json")
    ap.add_argument("--scale-child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--scale-sensors", default="all", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    default_threads = torch.get_num_threads()
    if args.render:
        saved = json.loads(Path(args.render).read_text(encoding="utf-8"))
        saved["verdict"] = verdict(saved)
        print(markdown(saved))
        return
    if args.scale_child:
        t = default_threads if args.threads == "default" else int(args.threads)
        print(json.dumps(scale_child(args.scale_child, t, args.scale_sensors)))
        return
    threads = [default_threads if t == "default" else int(t) for t in args.threads.split(",")]
    result: dict[str, Any] = {"machine": machine(), "scenario": str(SCENARIO.relative_to(ROOT)),
                              "seed": args.seed, "repeats_asked": args.repeats,
                              "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "quickstart": []}
    t0 = time.perf_counter()
    for i, t in enumerate(threads):
        # Later settings are guaranteed their warm-up limit; each gets what is left after that.
        reserve = args.warmup_limit_s * (len(threads) - i - 1)
        share = args.budget_s - (time.perf_counter() - t0) - reserve
        result["quickstart"].append(bench_threads(t, args.repeats, args.seed, share, args.warmup_limit_s))
    torch.set_num_threads(threads[0])
    result["parity"] = {m: parity(inl_sim.load_scenario(SCENARIO, overrides={"routing.mode": m}), args.seed)
                        for m in MODES}
    if not args.no_scale:
        result["scale_threads"] = 1
        result["scale"] = bench_scale(1)
    result["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    result["bench_wall_s"] = time.perf_counter() - t0
    result["verdict"] = verdict(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_run.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(markdown(result))
    print(f"\n(wrote {out / 'bench_run.json'}; benchmark took {result['bench_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()

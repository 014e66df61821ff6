"""Cost of candidate engine changes, measured without editing ``inl_sim`` (monkeypatching).

Usage::

    python bench/try_suggestions.py [--repeats 5] [--threads 1] [--out bench/out]

Every variant trains the quickstart scenario (dense and spt) on the same batches; the
variants of one repeat run side by side (order rotating) and each number is the median
over repeats.  Some variants only *attribute* cost (``no_records`` drops the ledger,
which the simulator must keep); the others are changes the engine could adopt:

* ``adam_foreach`` / ``adam_fused``: each node's Adam with ``foreach=True`` / ``fused=True``
  (CPU default is the per-tensor Python loop);
* ``nosync_stats``: the fusion node accumulates loss and correct counts as tensors and the
  gates' rates likewise, read once per epoch instead of ``float()``/``int()`` per step;
* ``lean_backward``: ``torch.autograd.backward`` bypassed for the single-tensor case with
  ``Variable._execution_engine.run_backward`` (what ``Tensor.backward`` ends in);
* ``fast_receive``: take an already-delivered message from the mailbox without a SimPy
  get event (one event and one generator resume less per message);
* ``lean_zero_grad``: ``p.grad = None`` per parameter instead of ``optimizer.zero_grad``
  (which enters the optimiser's profiler hooks);
* ``combined``: every adoptable change above together (see ``COMBINED``);
* ``control``: the baseline again, unchanged: its distance from 1.000 is the noise level.

Also timed: one evaluation (``no_grad`` vs ``inference_mode``), the floor with each Adam
flavour, and the pieces of ``inl_sim.run`` (prepare, epochs, evaluations, the rest).
Prints Markdown and writes ``try_suggestions.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import inl_sim  # noqa: E402
from inl_sim.study import experiment  # noqa: E402
from inl_sim.study.experiment import RunSetup, evaluate, prepare  # noqa: E402
from bench.bench_run import _clock, _engine_epochs  # noqa: E402
from bench.floor import epoch_batches, floor_train, make_optimisers  # noqa: E402

SCENARIO = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"
MODES = ("dense", "spt")
ENGINE_VARIANTS = ("baseline", "control", "adam_foreach", "adam_fused", "nosync_stats", "lean_backward",
                   "fast_receive", "lean_zero_grad", "no_records", "combined")
#: What ``combined`` applies (every adoptable change; ``no_records`` only attributes cost).
COMBINED = ("adam_fused", "nosync_stats", "fast_receive", "lean_zero_grad")
FLOOR_VARIANTS = ("per_node", "per_node_foreach", "per_node_fused", "single", "single_foreach", "single_fused")


# ----------------------------------------------------------------------------- patches
def _swap_optimisers(setup: RunSetup, **adam_kw: Any) -> None:
    """Fresh per-node optimisers with extra Adam flags (no step taken yet, so equivalent)."""
    tr = setup.scenario.training
    for rt in setup.engine.nodes.values():
        if rt.optimizer is None:  # a relay without parameters
            continue
        rt.optimizer = torch.optim.Adam(rt.module.parameters(), lr=tr.lr, weight_decay=tr.weight_decay, **adam_kw)


def _record_step_nosync(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
    stats = self.stats
    n = labels.shape[0]
    stats.loss_sum = loss.detach() * n + stats.loss_sum                       # () tensor, read per epoch
    stats.correct = (logits.detach().argmax(-1) == labels).sum() + stats.correct
    stats.samples += n
    stats.steps += 1


def _record_rate_nosync(self, v, rate: torch.Tensor) -> None:
    sums = self.stats.rate_nats_sum
    sums[v] = rate.detach() + sums.get(v, 0.0)


def _receive_fast(self, sources, v, direction, step=None):
    """``Engine._receive`` that takes an already-delivered message without a SimPy event.

    Each directed channel has one sender, so skipping the zero-delay get event changes
    no simulated time (``check_same_records`` verifies the ledger is identical).
    """
    received = []
    for src in sources:
        box = self.channels[(src, v)].mailbox
        tensor = box.items.popleft() if box.items else (yield box.get())
        received.append(tensor.requires_grad_(True) if direction == "forward" else tensor)
    return received


def _lean_zero_grad(module: torch.nn.Module) -> Callable:
    """``optimizer.zero_grad(set_to_none=True)`` without the optimiser's profiler hooks."""
    params = list(module.parameters())

    def zero_grad(set_to_none: bool = True) -> None:
        for p in params:
            p.grad = None
    return zero_grad


def _patch_lean_backward() -> Callable[[], None]:
    """Route ``Tensor.backward(grad)`` straight to the autograd engine; returns the undo."""
    original = torch.Tensor.backward
    run_backward = torch.autograd.Variable._execution_engine.run_backward

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if gradient is None or inputs is not None:
            return original(self, gradient, retain_graph, create_graph, inputs)
        run_backward((self,), (gradient,), bool(retain_graph), create_graph, (), True, True)

    torch.Tensor.backward = backward
    return lambda: setattr(torch.Tensor, "backward", original)


def patch_engine(setup: RunSetup, variant: str) -> Callable[[], None] | None:
    """Apply ``variant`` (or every change of ``COMBINED``) to a fresh setup; return an undo."""
    eng = setup.engine
    changes = COMBINED if variant == "combined" else (variant,)
    undo = None
    for change in changes:
        if change == "adam_foreach":
            _swap_optimisers(setup, foreach=True)
        elif change == "adam_fused":
            _swap_optimisers(setup, fused=True)
        elif change == "nosync_stats":
            eng._record_step = types.MethodType(_record_step_nosync, eng)
            eng._record_rate = types.MethodType(_record_rate_nosync, eng)
        elif change == "fast_receive":
            eng._receive = types.MethodType(_receive_fast, eng)
        elif change == "lean_zero_grad":
            for rt in eng.nodes.values():
                if rt.optimizer is not None:
                    rt.optimizer.zero_grad = _lean_zero_grad(rt.module)
        elif change == "no_records":
            eng.ledger.add = lambda record: None
        elif change == "lean_backward":
            undo = _patch_lean_backward()
    return undo


def engine_variant(variant: str, sc: inl_sim.Scenario, seed: int) -> dict[str, float]:
    """Time the engine's epochs under one variant (prepare untimed)."""
    setup = prepare(sc, seed)
    batches = epoch_batches(setup)
    undo = patch_engine(setup, variant)
    try:
        wall, cpu, _ = _clock(lambda: _engine_epochs(setup, batches))
    finally:
        if undo:
            undo()
    return {"wall_s": wall, "cpu_s": cpu, "test_accuracy": evaluate(setup)["accuracy"]}


def check_same_records(sc: inl_sim.Scenario, seed: int) -> dict[str, dict[str, bool]]:
    """After one epoch, does each variant leave the ledger (times included) and the
    parameters exactly as the baseline does?  (Fused Adam rounds differently.)"""
    def train(variant: str) -> tuple[list, list]:
        setup = prepare(sc, seed)
        batches = epoch_batches(setup)[:1]
        undo = patch_engine(setup, variant)
        try:
            _engine_epochs(setup, batches)
        finally:
            if undo:
                undo()
        return setup.ledger.records, [p.detach().clone() for m in setup.modules.values() for p in m.parameters()]
    base_records, base_params = train("baseline")
    out = {}
    for v in ("fast_receive", "lean_zero_grad", "nosync_stats", "lean_backward", "adam_foreach", "combined"):
        records, params = train(v)
        out[v] = {"records": records == base_records,
                  "params": all(torch.equal(a, b) for a, b in zip(params, base_params))}
    return out


def floor_variant(variant: str, sc: inl_sim.Scenario, seed: int) -> dict[str, float]:
    setup = prepare(sc, seed)
    kw = {"foreach": True} if "foreach" in variant else {"fused": True} if "fused" in variant else {}
    kind = "single" if variant.startswith("single") else "per_node"
    opts = make_optimisers(setup, kind, **kw)
    batches = epoch_batches(setup)
    wall, cpu, _ = _clock(lambda: floor_train(setup, batches, opts))
    return {"wall_s": wall, "cpu_s": cpu, "test_accuracy": evaluate(setup)["accuracy"]}


def eval_costs(sc: inl_sim.Scenario, seed: int, repeats: int) -> dict[str, float]:
    """Median seconds of one ``evaluate`` call, and of the same under ``inference_mode``."""
    setup = prepare(sc, seed)
    plain = [_clock(lambda: evaluate(setup))[0] for _ in range(repeats * 4)]
    original = torch.no_grad
    experiment.torch.no_grad = torch.inference_mode  # evaluate() looks it up at call time
    try:
        infer = [_clock(lambda: evaluate(setup))[0] for _ in range(repeats * 4)]
    finally:
        experiment.torch.no_grad = original
    return {"evaluate_s": statistics.median(plain), "evaluate_inference_mode_s": statistics.median(infer)}


def run_breakdown(sc: inl_sim.Scenario, seed: int) -> dict[str, float]:
    """Wall seconds of the pieces of ``inl_sim.run`` (setup, per-epoch engine and eval, rest)."""
    calls: dict[str, float] = {"prepare": 0.0, "run_epoch": 0.0, "evaluate": 0.0}
    counts = {"evaluate": 0}
    orig_prepare, orig_eval = experiment.prepare, experiment.evaluate
    orig_epoch = experiment.Engine.run_epoch

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                calls[name] += time.perf_counter() - t
                if name in counts:
                    counts[name] += 1
        return wrapper

    experiment.prepare, experiment.evaluate = timed("prepare", orig_prepare), timed("evaluate", orig_eval)
    experiment.Engine.run_epoch = timed("run_epoch", orig_epoch)
    try:
        wall, _, _ = _clock(lambda: inl_sim.run(sc, seed, threads=None))
    finally:
        experiment.prepare, experiment.evaluate, experiment.Engine.run_epoch = orig_prepare, orig_eval, orig_epoch
    rest = wall - sum(calls.values())
    return {"run_s": wall, **{f"{k}_s": v for k, v in calls.items()}, "n_evaluate": counts["evaluate"],
            "rest_s": rest}


# ----------------------------------------------------------------------------- attribution
COMPONENTS = ("forward", "backward", "optimizer_step", "zero_grad", "send_and_record")


class _Timers:
    """CPU seconds and call counts per component, filled by thin wrappers (~1 us per call)."""

    def __init__(self) -> None:
        self.s = {c: 0.0 for c in COMPONENTS}
        self.n = {c: 0 for c in COMPONENTS}

    def wrap(self, name: str, fn: Callable) -> Callable:
        clock = time.process_time  # CPU time: robust to other processes on a shared machine
        def timed(*a, **k):
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                self.s[name] += clock() - t
                self.n[name] += 1
        return timed


def _instrumented(kind: str, sc: inl_sim.Scenario, seed: int) -> dict[str, Any]:
    """Train ``kind`` ("engine" or "floor", per-node Adam) with per-component timers."""
    from inl_sim.learning.modules import NodeModule
    setup = prepare(sc, seed)
    batches = epoch_batches(setup)
    timers = _Timers()
    opts = ([rt.optimizer for rt in setup.engine.nodes.values() if rt.optimizer is not None] if kind == "engine"
            else make_optimisers(setup, "per_node"))
    for opt in opts:
        opt.step = timers.wrap("optimizer_step", opt.step)
        opt.zero_grad = timers.wrap("zero_grad", opt.zero_grad)
    if kind == "engine":
        setup.engine._send = timers.wrap("send_and_record", setup.engine._send)
    orig_forward, orig_backward = NodeModule.forward, torch.autograd.backward
    NodeModule.forward = timers.wrap("forward", orig_forward)
    torch.autograd.backward = timers.wrap("backward", orig_backward)
    try:
        if kind == "engine":
            wall, cpu, _ = _clock(lambda: _engine_epochs(setup, batches))
        else:
            wall, cpu, _ = _clock(lambda: floor_train(setup, batches, opts))
    finally:
        NodeModule.forward, torch.autograd.backward = orig_forward, orig_backward
    out = {"total_s": cpu, "wall_s": wall, **{f"{c}_s": timers.s[c] for c in COMPONENTS},
           **{f"{c}_calls": timers.n[c] for c in COMPONENTS}}
    out["rest_s"] = cpu - sum(timers.s.values())  # SimPy, engine/loop bookkeeping, codecs, stats
    if kind == "engine":
        out["simpy_events"] = next(setup.engine.env._eid)
    return out


def attribution(sc: inl_sim.Scenario, seed: int, repeats: int) -> dict[str, Any]:
    """Median per-component CPU seconds of engine vs floor training (interleaved repeats)."""
    runs = {"engine": [], "floor": []}
    for _ in range(repeats):
        for kind in runs:
            runs[kind].append(_instrumented(kind, sc, seed))
    return {kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()}


def _attribution_table(att: dict[str, Any]) -> list[str]:
    e, f = att["engine"], att["floor"]
    delta = e["total_s"] - f["total_s"]
    lines = ["| component (CPU s) | engine s (calls) | floor s (calls) | engine - floor s | share of overhead |",
             "|---|---|---|---|---|"]
    for c in COMPONENTS + ("rest",):
        ec, fc = e.get(f"{c}_calls", ""), f.get(f"{c}_calls", "")
        d = e[f"{c}_s"] - f[f"{c}_s"]
        lines.append(f"| {c} | {e[f'{c}_s']:.3f} ({ec}) | {f[f'{c}_s']:.3f} ({fc}) | {d:+.3f} | "
                     f"{d / delta:.0%} |" if delta > 0
                     else f"| {c} | {e[f'{c}_s']:.3f} | {f[f'{c}_s']:.3f} | {d:+.3f} | |")
    lines.append(f"| **total** | {e['total_s']:.3f} | {f['total_s']:.3f} | {delta:+.3f} | "
                 f"ratio {e['total_s'] / f['total_s']:.2f} |")
    lines.append(f"\nSimPy events scheduled by the engine: {e.get('simpy_events', 'n/a')}")
    return lines


# ----------------------------------------------------------------------------- driver
def interleaved(fn: Callable, variants: tuple, sc: inl_sim.Scenario, seed: int, repeats: int) -> dict:
    raw = {v: [] for v in variants}
    for v in variants:  # warm-up
        fn(v, inl_sim.load_scenario(sc, overrides={"training.epochs": 1}), seed)
    for r in range(repeats):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            raw[v].append(fn(v, sc, seed))
    base = variants[0]
    out = {}
    for v in variants:
        out[v] = {"wall_s": statistics.median(x["wall_s"] for x in raw[v]),
                  "cpu_s": statistics.median(x["cpu_s"] for x in raw[v]),
                  "vs_first": statistics.median(a["wall_s"] / b["wall_s"] for a, b in zip(raw[v], raw[base])),
                  "vs_first_cpu": statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in zip(raw[v], raw[base])),
                  "test_accuracy": raw[v][0]["test_accuracy"]}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "repeats": args.repeats}
    lines = [f"torch threads {args.threads}, median of {args.repeats} interleaved repeats", ""]
    for mode in MODES:
        sc = inl_sim.load_scenario(SCENARIO, overrides={"routing.mode": mode})
        eng = interleaved(engine_variant, ENGINE_VARIANTS, sc, args.seed, args.repeats)
        flo = interleaved(floor_variant, FLOOR_VARIANTS, sc, args.seed, args.repeats)
        ev = eval_costs(sc, args.seed, args.repeats)
        br = run_breakdown(sc, args.seed)
        att = attribution(sc, args.seed, args.repeats)
        same = check_same_records(sc, args.seed)
        result[mode] = {"engine": eng, "floor": flo, "eval": ev, "run_breakdown": br, "attribution": att,
                        "same_records": same}
        lines += [f"### {mode}", ""] + _attribution_table(att) + [""]
        lines += ["| engine variant | epochs s | vs baseline | cpu vs baseline | test acc |", "|---|---|---|---|---|"]
        lines += [f"| {v} | {x['wall_s']:.3f} | {x['vs_first']:.3f} | {x['vs_first_cpu']:.3f} | "
                  f"{x['test_accuracy']:.4f} |" for v, x in eng.items()]
        lines += ["", "| floor variant | epochs s | vs per_node | cpu vs per_node | test acc |",
                  "|---|---|---|---|---|"]
        lines += [f"| {v} | {x['wall_s']:.3f} | {x['vs_first']:.3f} | {x['vs_first_cpu']:.3f} | "
                  f"{x['test_accuracy']:.4f} |" for v, x in flo.items()]
        lines += ["", f"evaluate: {ev['evaluate_s'] * 1e3:.2f} ms (no_grad), "
                  f"{ev['evaluate_inference_mode_s'] * 1e3:.2f} ms (inference_mode)",
                  "identical to baseline after epoch 0 (ledger, parameters): "
                  + ", ".join(f"{k} ({v['records']}, {v['params']})" for k, v in same.items()),
                  "run breakdown: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                 for k, v in br.items()), ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "try_suggestions.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

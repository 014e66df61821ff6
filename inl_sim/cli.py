"""Command line: ``python run.py {run,compare,show,sweep,rate-curve,report,topologies}``.

The only module that prints.  Bad input becomes one line on stderr and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from inl_sim import __version__
from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.scenario import Scenario, load_scenario, parse_override
from inl_sim.scenario.library import describe_scenarios

__all__ = ["main", "build_parser"]

EXIT_BAD_INPUT = 2
MAX_ERROR_CHARS = 400
MAX_GRID_POINTS = 1_000
MAX_SEEDS = 10 ** 6


def _count(name: str, high: int) -> Callable[[str], int]:
    """argparse type: an integer in 1..high (``--seeds 10**11`` used to build a huge tuple)."""
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or not 1 <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} {text[:40]!r} must be an integer in 1..{high:,}")
        return value
    return parse


def _one_line(exc: BaseException) -> str:
    """The error as one line of at most MAX_ERROR_CHARS characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def _load(args: argparse.Namespace) -> Scenario:
    """The scenario with its ``--set`` overrides (and ``--force``), validated whole:
    this runs before any command imports torch, so bad input fails in a fraction of a second."""
    overrides = dict(parse_override(text) for text in args.set or [])
    if getattr(args, "force", False):
        overrides["limits.force"] = True
    return load_scenario(args.scenario, overrides)


def _check_variants(sc: Scenario, sets: Sequence[dict]) -> None:
    """Validate every compare method / sweep point before the first run trains."""
    for overrides in sets:
        try:
            load_scenario(sc, overrides)
        except InlSimError as exc:
            point = ",".join(f"{k}={v}" for k, v in overrides.items())
            raise type(exc)(f"{point[:120]}: {exc}") from None


def _default_out(sc: Scenario, args: argparse.Namespace, kind: str) -> Path:
    if getattr(args, "out", None):
        return Path(args.out)
    return Path(sc.output_dir) / sc.name / kind


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def cmd_run(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.experiment import run
    seed = sc.seed if args.seed is None else args.seed
    out = _default_out(sc, args, f"run-{sc.routing.mode}-seed{seed}")
    res = run(sc, seed, out_dir=out, progress=_progress(args))
    s = res.summary()
    rows = [("method", s["method"]), ("seed", s["seed"]), ("active links", s["n_active_edges"]),
            ("test accuracy", f"{s['accuracy']:.4f}"), ("test loss", f"{s['test_loss']:.4f}"),
            ("exchange", _bytes(s["exchange_bytes"])), ("  forward", _bytes(s["exchange_bytes_forward"])),
            ("  backward", _bytes(s["exchange_bytes_backward"])),
            ("rate (bits/sample)", "n/a" if s["rate_bits"] is None else f"{s['rate_bits']:.3f}"),
            ("simulated time", f"{s['sim_time_s']:.3f} s ({s['sim_time_per_epoch_s']:.3f} s/epoch)"),
            ("wall time", f"{s['wall_time_s']:.2f} s"), ("results", str(out))]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3f} {unit} ({int(n):,} B)"
    return f"{int(n)} B"


def cmd_compare(args: argparse.Namespace) -> int:
    sc = _load(args)
    modes = args.modes.split(",") if args.modes else None
    _check_variants(sc, [{"routing.mode": m} for m in modes] if modes else [dict(m.set) for m in sc.compare.methods])
    out = _default_out(sc, args, "compare")
    from inl_sim.study.comparison import compare
    cmp = compare(sc, modes=modes, seeds=args.seeds, out_dir=out, jobs=args.jobs, progress=_progress(args))
    print(cmp.to_markdown())
    _print_claims(cmp.rows)
    _maybe_report(out, args)
    print(f"results: {out}")
    return 0


def _print_claims(rows: Sequence[dict]) -> None:
    for r in rows:
        if "exchange_reduction" in r and r.get("exchange_reduction"):
            print(f"{r['method']}: exchange {-r['exchange_reduction']:+.1%} vs reference "
                  f"(paper: -70.4 % for D-INL); accuracy gap {r['accuracy_gap']:+.4f}, "
                  f"within 1 std: {r['accuracy_within_1std']}")
        reduced = r.get("rate_reduction")
        if reduced is not None and reduced == reduced and r.get("beta"):  # finite-rate methods only
            print(f"{r['method']}: estimated rate {-reduced:+.1%} vs rate reference (paper: -45.7 %); accuracy gap "
                  f"{r['accuracy_gap_vs_rate_reference']:+.4f}, within 1 std: {r['accuracy_within_1std_of_rate_reference']}")


def _maybe_report(out: Path, args: argparse.Namespace) -> None:
    if getattr(args, "no_report", True):
        return
    try:
        from inl_sim.report.html import build_report
    except ImportError:  # report module optional until shipped
        return
    print(f"report: {build_report(out)}")


def cmd_show(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.show import describe
    print(describe(sc, seed=sc.seed if args.seed is None else args.seed))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    sc = _load(args)
    grid = dict(_parse_grid(text) for text in args.grid)
    keys = list(grid)
    if math.prod(len(v) for v in grid.values()) > MAX_GRID_POINTS:
        raise ScenarioError(f"--grid: {math.prod(len(v) for v in grid.values()):,} points exceed the limit of "
                            f"{MAX_GRID_POINTS:,}; sweep fewer values")
    _check_variants(sc, [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))])
    out = _default_out(sc, args, "sweep")
    from inl_sim.study.comparison import sweep
    cmp = sweep(sc, grid, seeds=args.seeds, out_dir=out, jobs=args.jobs, progress=_progress(args))
    print(cmp.to_markdown())
    _maybe_report(out, args)
    print(f"results: {out}")
    return 0


def _parse_grid(text: str) -> tuple[str, list]:
    """``gate.beta=0,1e-3,1e-2`` -> ("gate.beta", [0, 0.001, 0.01]) (numbers as numbers)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ScenarioError(f"--grid: {text!r} must look like dotted.key=v1,v2,...; write e.g. --grid gate.beta=0,1e-3")
    return key.strip(), [_number_or_value(parse_override(f"{key}={part}")[1]) for part in raw.split(",")]


def _number_or_value(value: object) -> object:
    """PyYAML reads ``1e-3`` as a string; a grid value that is a number is stored as one."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def cmd_topologies(args: argparse.Namespace) -> int:
    if args.action == "list":
        from inl_sim.study import survey
        print(survey.format_list_markdown(survey.list_topologies()), end="")
        return 0
    sc = _load(args)
    if args.epochs is not None:
        sc = load_scenario(sc, {"training.epochs": args.epochs})
    from inl_sim.study import survey  # torch: only once the scenario is known to be valid
    choices = survey.parse_choices(args.files, args.generators)
    out = _default_out(sc, args, "topologies")
    res = survey.compare_topologies(sc, choices, seeds=args.seeds, sensors=args.sensors,
                                    structure_only=args.structure_only, out_dir=out, jobs=args.jobs,
                                    progress=_progress(args))
    print(res.to_markdown())
    for r in res.rows:
        if r.get("exchange_matches_structure") is False:
            print(f"warning: {r['topology']}: measured exchange reduction {r['exchange_reduction']:.4%} "
                  f"differs from the structural {r['structural_reduction']:.4%}")
    print(f"results: {out}")
    return 0


def _add_topologies(sub: Any) -> None:
    """``topologies list`` and ``topologies compare SCENARIO ...``."""
    text = "survey topologies: list the shipped files, or compare dense vs spt over several topologies"
    actions = sub.add_parser("topologies", help=text, description=text).add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="shipped topology files: nodes, links, roles").set_defaults(func=cmd_topologies)
    text = "one scenario over several topologies: edges, tree edges, exchange reduction, time/epoch, accuracy"
    p = actions.add_parser("compare", help=text, description=text)
    p.add_argument("scenario", help="scenario YAML file, or a shipped name (inl-sim scenarios list)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. gate.beta=1e-3")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--out", help="results folder (default: <output_dir>/<name>/topologies)")
    p.add_argument("--force", action="store_true",
                   help="run even when the resource estimate exceeds the budget (limits.force: true)")
    p.add_argument("--seeds", type=_count("--seeds", MAX_SEEDS), default=None,
                   help="number of seeds (default: compare.seeds)")
    p.add_argument("--jobs", type=_count("--jobs", 1024), default=1, help="worker processes (default 1)")
    p.add_argument("--epochs", type=_count("--epochs", 10 ** 9), default=None,
                   help="training epochs (default: training.epochs)")
    p.add_argument("--files", help="comma list of topology files (default, with no --generators: all shipped)")
    p.add_argument("--generators", metavar="NAME:N[:K=V],...",
                   help="e.g. random_geometric:20,knn:50:k=4 (default, with no --files: random_geometric:20 and :50)")
    p.add_argument("--sensors", help="sensors of every topology: all, leaves, k_random:K or farthest:K "
                                     "(default: the file's own, else all non-fusion nodes)")
    p.add_argument("--structure-only", action="store_true", help="skip training: structural columns only")
    p.set_defaults(func=cmd_topologies)


def cmd_rate_curve(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.ratecurve import parse_slopes, rate_curve, write_rate_curve
    out = _default_out(sc, args, "rate-curve")
    study = rate_curve(sc, args.seed, slopes=parse_slopes(args.slopes), fill=args.fill,
                       max_full=args.max_children, progress=_progress(args))
    write_rate_curve(study, out)
    print(study.to_markdown())
    print(f"results: {out} (rate_curve.html, rate_curve.csv/.json, options.csv)")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    rows = describe_scenarios()
    width = max([len("name"), *(len(name) for name, _ in rows)])
    print(f"{'name':<{width}}  description")
    print("\n".join(f"{name:<{width}}  {text}" for name, text in rows))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from inl_sim.report.html import build_report
    print(f"report: {build_report(Path(args.results), Path(args.out) if args.out else None)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inl-sim", description="Simulate distributed in-network learning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    parser.add_argument("--version", action="version", version=f"inl-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    text = "the scenarios shipped with the package (run one by name: inl-sim run quickstart)"
    sub.add_parser("scenarios", help=text, description=text).add_subparsers(dest="action", required=True).add_parser(
        "list", help="name and description of each shipped scenario").set_defaults(func=cmd_scenarios)

    def add(name: str, func: Callable, help_text: str, seeds: bool = False, out: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("scenario", help="scenario YAML file, or a shipped name (inl-sim scenarios list)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. gate.beta=1e-3")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if out:
            p.add_argument("--out", help="results folder (default: <output_dir>/<name>/<command>)")
        p.add_argument("--force", action="store_true",
                       help="run even when the resource estimate exceeds the budget (limits.force: true)")
        if seeds:
            p.add_argument("--seeds", type=_count("--seeds", MAX_SEEDS), default=None,
                           help="number of seeds (default: compare.seeds)")
            p.add_argument("--jobs", type=_count("--jobs", 1024), default=1, help="worker processes (default 1)")
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "train one scenario for one seed and print its summary")
    p.add_argument("--seed", type=int, default=None)
    p = add("compare", cmd_compare, "compare methods (default dense vs spt) over seeds: mean ± std", seeds=True)
    p.add_argument("--modes", help="comma list of routing modes, e.g. dense,spt (default: the scenario's methods)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p = add("show", cmd_show, "topology, roles, both training graphs and their edge counts", out=False)
    p.add_argument("--seed", type=int, default=None)
    p = add("sweep", cmd_sweep, "grid of dotted overrides x seeds: accuracy vs rate table", seeds=True)
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p = add("rate-curve", cmd_rate_curve, "train once, then the accuracy-rate curve (Blahut-Arimoto) of "
            "routing options at the fusion node (which children's messages to use)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--slopes", help="count of curve points (adaptive, default 16) or comma list of slopes "
                                    "in nats per unit error, e.g. 0.5,1,2,8")
    p.add_argument("--fill", choices=("mean", "zero"), default="mean",
                   help="stand-in for an unused child's message: its training-set mean (default) or zeros")
    p.add_argument("--max-children", type=int, default=6,
                   help="all 2^m subsets up to m children (default 6), else none/singletons/leave-one-out/all")
    _add_topologies(sub)
    text = "rebuild report.html (self-contained, opens offline) from a compare, sweep or run folder"
    p = sub.add_parser("report", help=text, description=text)
    p.add_argument("results", help="results folder written by compare, sweep or run")
    p.add_argument("--out", help="HTML file to write (default: <results>/report.html)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    # The modules are tiny: torch's intra-op threads only add overhead, and on a loaded
    # machine oversubscription made a 1 s run take minutes.  OMP_NUM_THREADS overrides.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except InlSimError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError as exc:  # a safety net: input limits should make this unreachable
        print(f"error: input nested too deeply ({_one_line(exc)}); simplify the scenario", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; results written so far are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

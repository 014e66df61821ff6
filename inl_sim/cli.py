"""Command line: ``python run.py {run,compare,show,sweep,rate-curve,experts,report,topologies}``.

The only module that prints.  Bad input becomes one line on stderr and exit code 2,
never a traceback; a diverged ``run`` exits 3 with its reason; SIGINT and SIGTERM exit
130 and 143 with one line saying what was kept and how to resume.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.scenario import Scenario, load_scenario, parse_override

__all__ = ["main", "build_parser"]

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def _load(args: argparse.Namespace) -> Scenario:
    overrides = dict(parse_override(text) for text in args.set or [])
    return load_scenario(args.scenario, overrides)


def _default_out(sc: Scenario, args: argparse.Namespace, kind: str) -> Path:
    if getattr(args, "out", None):
        out = Path(args.out)
    else:
        from inl_sim.study.folders import check_name
        out = Path(sc.output_dir) / check_name(sc.name, "name") / kind
    args.study_out = out  # for the message on SIGINT/SIGTERM
    return out


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _where(args: argparse.Namespace) -> dict[str, Any]:
    """Where a study's runs execute: ``--executor``, ``--jobs``, ``--ray-address``."""
    return {"executor": args.executor, "jobs": args.jobs, "ray_address": args.ray_address}


def _add_executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "process", "ray"), default=None,
                   help="where runs execute (default: local, or process with --jobs > 1, or ray with --ray-address)")
    p.add_argument("--jobs", type=int, default=None, help="runs at once: worker processes or local Ray CPUs")
    p.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="existing Ray cluster, e.g. auto or ray://head:10001 (default: a local Ray instance)")


def cmd_run(args: argparse.Namespace) -> int:
    from inl_sim.study.experiment import run
    sc = _load(args)
    seed = sc.seed if args.seed is None else args.seed
    out = _default_out(sc, args, f"run-{sc.routing.mode}-seed{seed}")
    args.study_out = None  # a run keeps nothing until it ends
    res = run(sc, seed, out_dir=out, progress=_progress(args), overwrite=args.overwrite)
    s = res.summary()
    if res.status == "diverged":
        print(f"diverged: {s['diverged_reason']} (epoch {s['diverged_epoch']}, node {s['diverged_node']}); "
              f"run folder with status 'diverged': {out}", file=sys.stderr)
        return EXIT_DIVERGED
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
    from inl_sim.study.folders import check_name, folder_names
    sc = _load(args)
    modes = args.modes.split(",") if args.modes else None
    names = modes or [m.name for m in sc.compare.methods]
    folder_names([check_name(n, "compare.methods.name") for n in names], "compare.methods.name")  # before torch
    out = _default_out(sc, args, "compare")
    from inl_sim.study.comparison import compare
    cmp = compare(sc, modes=modes, seeds=args.seeds, out_dir=out, progress=_progress(args), fresh=args.fresh,
                  **_where(args))
    print(cmp.to_markdown())
    _print_claims(cmp.rows)
    _print_diverged(cmp.rows)
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


def _print_diverged(rows: Sequence[dict]) -> None:
    for r in rows:
        if r.get("n_diverged"):
            print(f"{r['method']}: {r['n_diverged']} of {r['n_seeds']} run(s) diverged (seeds "
                  f"{', '.join(map(str, r['diverged_seeds']))}); its means are over the {r['n_ok']} others")


def _maybe_report(out: Path, args: argparse.Namespace) -> None:
    if not getattr(args, "no_report", True):
        from inl_sim.report.html import build_report
        print(f"report: {build_report(out)}")


def cmd_show(args: argparse.Namespace) -> int:
    from inl_sim.study.show import describe
    sc = _load(args)
    print(describe(sc, seed=sc.seed if args.seed is None else args.seed))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from inl_sim.study.comparison import sweep
    sc = _load(args)
    grid = dict(_parse_grid(text) for text in args.grid)
    out = _default_out(sc, args, "sweep")
    cmp = sweep(sc, grid, seeds=args.seeds, out_dir=out, progress=_progress(args), fresh=args.fresh,
                **_where(args))
    print(cmp.to_markdown())
    _print_diverged(cmp.rows)
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
    from inl_sim.study import survey
    if args.action == "list" and args.library:
        from inl_sim.network.library import format_library_markdown, list_library
        rows = list_library(args.match)
        print(format_library_markdown(rows), end="")
        print(f"{len(rows)} network(s); use one as topology: {{library: <name>}}")
        return 0
    if args.action == "list":
        print(survey.format_list_markdown(survey.list_topologies()), end="")
        return 0
    choices = survey.parse_choices(args.files, args.generators)
    sc = _load(args)
    if args.epochs is not None:
        sc = load_scenario(sc, {"training.epochs": args.epochs})
    out = _default_out(sc, args, "topologies")
    res = survey.compare_topologies(sc, choices, seeds=args.seeds, sensors=args.sensors,
                                    structure_only=args.structure_only, out_dir=out,
                                    progress=_progress(args), fresh=args.fresh, **_where(args))
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
    p = actions.add_parser("list", help="shipped topology files (or, with --library, the topohub library)")
    p.add_argument("--library", action="store_true", help="list the 700+ topohub networks (topology.library)")
    p.add_argument("--match", help="with --library: keep names containing TEXT (case-insensitive)")
    p.set_defaults(func=cmd_topologies)
    text = "one scenario over several topologies: edges, tree edges, exchange reduction, time/epoch, accuracy"
    p = actions.add_parser("compare", help=text, description=text)
    p.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. gate.beta=1e-3")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--out", help="results folder (default: <output_dir>/<name>/topologies)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: compare.seeds)")
    _add_executor_flags(p)
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: training.epochs)")
    p.add_argument("--files", help="comma list of topology files (default, with no --generators: all shipped)")
    p.add_argument("--generators", metavar="NAME:N[:K=V],...",
                   help="e.g. random_geometric:20,knn:50:k=4 (default, with no --files: random_geometric:20 and :50)")
    p.add_argument("--sensors", help="sensors of every topology: all, leaves, k_random:K or farthest:K "
                                     "(default: the file's own, else all non-fusion nodes)")
    p.add_argument("--structure-only", action="store_true", help="skip training: structural columns only")
    p.add_argument("--fresh", action="store_true", help=_FRESH)
    p.set_defaults(func=cmd_topologies)


def cmd_rate_curve(args: argparse.Namespace) -> int:
    from inl_sim.study.ratecurve import parse_slopes, rate_curve, write_rate_curve
    sc = _load(args)
    out = _default_out(sc, args, "rate-curve")
    study = rate_curve(sc, args.seed, slopes=parse_slopes(args.slopes), fill=args.fill,
                       max_full=args.max_children, progress=_progress(args))
    write_rate_curve(study, out)
    print(study.to_markdown())
    print(f"results: {out} (rate_curve.html, rate_curve.csv/.json, options.csv)")
    return 0


def cmd_experts(args: argparse.Namespace) -> int:
    from inl_sim.report.experts import run_experts
    print(run_experts(sc := _load(args), args.seed, _default_out(sc, args, "experts"), progress=_progress(args)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from inl_sim.report.html import build_report
    print(f"report: {build_report(Path(args.results), Path(args.out) if args.out else None)}")
    return 0


_FRESH = ("train every run again; default: reuse the finished runs in the results folder "
          "(same scenario, seed, method and version), e.g. after an interruption")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inl-sim", description="Simulate distributed in-network learning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable, help_text: str, seeds: bool = False, out: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("scenario", help="scenario YAML file (see scenarios/)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. gate.beta=1e-3")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if out:
            p.add_argument("--out", help="results folder (default: <output_dir>/<name>/<command>)")
        if seeds:
            p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: compare.seeds)")
            _add_executor_flags(p)
            p.add_argument("--fresh", action="store_true", help=_FRESH)
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "train one scenario for one seed and print its summary (exit 3 if it diverges)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder (only one inl-sim made); default: refuse")
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
    add("experts", cmd_experts, "finite expert bank on the network: I(S;W), gap and bounds over alpha, "
        "accuracy-rate curve, routed vs broadcast bytes").add_argument("--seed", type=int, default=None)
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
    from inl_sim.study.interrupts import Terminated, sigterm_raises
    try:
        with sigterm_raises():
            return args.func(args)
    except InlSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        code = EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT
        print(_interrupted(code, getattr(args, "study_out", None), argv), file=sys.stderr)
        return code


def _interrupted(code: int, out: Path | None, argv: Sequence[str] | None) -> str:
    """One line: which signal, what was kept, and how to resume."""
    name = "SIGTERM" if code == EXIT_SIGTERM else "SIGINT"
    if out is None:
        return f"interrupted by {name}; nothing was written (a run folder appears only when the run ends)"
    from inl_sim.study.interrupts import count_finished
    kept = count_finished(out)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    return (f"interrupted by {name}; {kept} finished run(s) kept in {out}; run the same command again "
            f"(inl-sim {command}) to resume: finished runs are reused, not trained again")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

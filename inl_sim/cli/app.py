"""The parser and the entry point: exit codes, signals and the one-line messages."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from inl_sim import __version__
from inl_sim.cli.commands import (cmd_compare, cmd_experts, cmd_rate_curve, cmd_report, cmd_run, cmd_scenarios,
                                  cmd_show, cmd_sweep, cmd_topologies)
from inl_sim.cli.common import (EXIT_BAD_INPUT, EXIT_SIGINT, EXIT_SIGTERM, _add_executor_flags, _count,
                                _one_line)
from inl_sim.errors import InlSimError

__all__ = ["main", "build_parser"]

_FRESH = ("train every run again; default: reuse the finished runs in the results folder "
          "(same scenario, seed, method and version), e.g. after an interruption")


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
    p.add_argument("scenario", help="scenario YAML file, or a shipped name (inl-sim scenarios list)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. gate.beta=1e-3")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--out", help="results folder (default: <output_dir>/<name>/topologies)")
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="a count (5: seeds 0..4), a list (0,1,2,7) or a range (0-9 or 0..9); default: compare.seeds")
    _add_executor_flags(p)
    p.add_argument("--force", action="store_true",
                   help="run even when the resource estimate exceeds the budget (limits.force: true)")
    p.add_argument("--epochs", type=_count("--epochs", 10 ** 9), default=None,
                   help="training epochs (default: training.epochs)")
    p.add_argument("--files", help="comma list of topology files (default, with no --generators/--library: all shipped)")
    p.add_argument("--library", metavar="COLLECTION/NAME,...",
                   help="comma list of topohub networks, e.g. sndlib/abilene,gabriel/25/0 (topologies list --library)")
    p.add_argument("--generators", metavar="NAME:N[:K=V],...",
                   help="e.g. random_geometric:20,knn:50:k=4 (default, with no --files: random_geometric:20 and :50)")
    p.add_argument("--sensors", help="sensors of every topology: all, leaves, k_random:K or farthest:K "
                                     "(default: the file's own, else all non-fusion nodes)")
    p.add_argument("--structure-only", action="store_true", help="skip training: structural columns only")
    p.add_argument("--fresh", action="store_true", help=_FRESH)
    p.set_defaults(func=cmd_topologies)


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
            p.add_argument("--seeds", default=None, metavar="SEEDS",
                           help="a count (5: seeds 0..4), a list (0,1,2,7) or a range (0-9 or 0..9); default: compare.seeds")
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
            if getattr(args, "seeds", None) is not None:  # checked before any command imports torch
                from inl_sim.errors import ScenarioError
                from inl_sim.scenario.seeds import parse_seeds
                try:
                    args.seeds = parse_seeds(args.seeds)
                except ScenarioError as exc:
                    raise ScenarioError(f"--{exc}") from None
            return args.func(args)
    except InlSimError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError as exc:  # a safety net: input limits should make this unreachable
        print(f"error: input nested too deeply ({_one_line(exc)}); simplify the scenario", file=sys.stderr)
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

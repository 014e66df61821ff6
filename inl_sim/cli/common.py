"""What every command shares: loading with overrides, output folders, limits on flags,
one-line errors and the printed verdicts (the CLI is the only wing that prints)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Sequence

from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.scenario import Scenario, load_scenario, parse_override

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
MAX_ERROR_CHARS = 400
MAX_GRID_POINTS = 1_000


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


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3f} {unit} ({int(n):,} B)"
    return f"{int(n)} B"


def _print_claims(rows: Sequence[dict]) -> None:
    # the paper's figure is for D-INL against dense INL: name it only where that is the comparison
    dense_reference = any(r.get("mode") == "dense" and r.get("exchange_reduction") == 0 and r.get("accuracy_gap") == 0
                          for r in rows)
    for r in rows:
        if "exchange_reduction" in r and r.get("exchange_reduction"):
            inl = r.get("paradigm", "inl") == "inl"
            paper = ("(paper: -70.4 % for D-INL)" if inl and dense_reference and r.get("mode") == "spt"
                     else "" if inl else f"({r['paradigm']})")
            paper = f" {paper}" if paper else ""
            print(f"{r['method']}: exchange {-r['exchange_reduction']:+.1%} vs reference{paper}; accuracy gap "
                  f"{r['accuracy_gap']:+.4f}, "
                  f"within 1 std: {r['accuracy_within_1std']}")
        if r.get("paired_accuracy_ci_low") is not None:
            p_t, p_w = r.get("paired_accuracy_t_p"), r.get("paired_accuracy_wilcoxon_p")
            print(f"  paired by seed (n={r['paired_accuracy_n']}): {r['paired_accuracy_mean']:+.4f}, 95 % CI "
                  f"[{r['paired_accuracy_ci_low']:+.4f}, {r['paired_accuracy_ci_high']:+.4f}], lower on "
                  f"{r['paired_accuracy_n_lower']} seeds; t-test p {_p(p_t)}, Wilcoxon p {_p(p_w)}; "
                  f"CI contains 0: {r['accuracy_ci_contains_0']}")
        reduced = r.get("rate_reduction")
        if reduced is not None and reduced == reduced and r.get("beta"):  # finite-rate methods only
            print(f"{r['method']}: estimated rate {-reduced:+.1%} vs rate reference (paper: -45.7 %); accuracy gap "
                  f"{r['accuracy_gap_vs_rate_reference']:+.4f}, within 1 std: {r['accuracy_within_1std_of_rate_reference']}")


def _print_diverged(rows: Sequence[dict]) -> None:
    for r in rows:
        if r.get("n_diverged"):
            print(f"{r['method']}: {r['n_diverged']} of {r['n_seeds']} run(s) diverged (seeds "
                  f"{', '.join(map(str, r['diverged_seeds']))}); its means are over the {r['n_ok']} others")


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _maybe_report(out: Path, args: argparse.Namespace) -> None:
    if getattr(args, "no_report", True):
        return
    try:
        from inl_sim.report.html import build_report
    except ImportError:  # report module optional until shipped
        return
    print(f"report: {build_report(out)}")


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

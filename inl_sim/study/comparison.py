"""Studies over many runs: ``compare`` (methods x seeds) and ``sweep`` (grid x seeds).

A method is a name plus dotted overrides of the base scenario (``dense`` is
``routing.mode=dense``).  Every run gets its own folder; the study writes a table
(``comparison.md/.csv/.json`` or ``sweep.md/.csv/.json``) with mean ± sample std per
method, the exchange reduction against a reference method and, when asked, the rate
reduction against another.  ``jobs > 1`` runs points in worker processes.
"""

from __future__ import annotations

import itertools
import logging
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from inl_sim.errors import ScenarioError
from inl_sim.study.budget import annotate_rows, apply_budgets
from inl_sim.study.experiment import RunResult, run
from inl_sim.sim.metrics import METRICS, mean_std, reduction
from inl_sim.study.results import atomic_dir, write_json, write_table
from inl_sim.study.statistics import paired_cells, paired_columns, paired_header, parse_seeds
from inl_sim.scenario import MethodSpec, Scenario, load_scenario, with_overrides

__all__ = ["Comparison", "compare", "sweep", "summary_rows", "format_markdown", "METRICS"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """Runs per method (same seeds for every method) and the table derived from them."""

    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    runs: dict[str, list[RunResult]]
    rows: list[dict[str, Any]]
    out_dir: Path | None = None

    def to_markdown(self) -> str:
        return format_markdown(self.rows)

    def row(self, method: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["method"] == method)


def _resolve_methods(sc: Scenario, modes: Sequence[str] | None,
                     methods: Sequence[MethodSpec | Mapping] | None) -> tuple[MethodSpec, ...]:
    if modes is not None and methods is not None:
        raise ScenarioError("compare: pass modes or methods, not both; modes=['dense', 'spt'] is shorthand")
    if modes is not None:
        return tuple(MethodSpec(m, {"routing.mode": m}) for m in modes)
    if methods is not None:
        return load_scenario(sc, {"compare.methods": list(methods)}).compare.methods
    return sc.compare.methods


def _resolve_seeds(sc: Scenario, seeds: int | str | Iterable[int] | None) -> tuple[int, ...]:
    return parse_seeds(sc.compare.seeds if seeds is None else seeds)


def compare(scenario: Scenario | str | Path | Mapping, *, modes: Sequence[str] | None = None,
            methods: Sequence[MethodSpec | Mapping] | None = None, seeds: int | Iterable[int] | None = None,
            out_dir: str | Path | None = None, jobs: int = 1, progress: bool | None = False) -> Comparison:
    """Run every method on every seed and tabulate mean ± std per method.

    Parameters
    ----------
    modes
        Shorthand for methods that differ in ``routing.mode`` only, e.g. ``["dense", "spt"]``.
    methods
        ``[{"name": ..., "set": {dotted: value}}]``; default: ``scenario.compare.methods``.
    seeds
        A count (``5`` means 0..4), an iterable of seeds, or text: ``"5"``, ``"0,1,2,7"``,
        ``"0-9"`` / ``"0..9"`` (inclusive); default ``scenario.compare.seeds``.  Methods
        are paired by seed in the table's paired statistics.
    out_dir
        Folder for per-run folders (``<method>/seed<k>``) and the comparison table.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    arms = _resolve_methods(sc, modes, methods)
    seed_list = _resolve_seeds(sc, seeds)
    variants, budgets = apply_budgets({m.name: with_overrides(sc, m.set) for m in arms}, arms)
    tasks = [(variants[m.name], s, m.name) for m in arms for s in seed_list]
    out = Path(out_dir) if out_dir is not None else None
    with _maybe_atomic(out) as tmp:
        results = _execute(tasks, jobs, tmp, progress)
        runs = {m.name: [r for r in results if r.method == m.name] for m in arms}
        rows = summary_rows(runs, reference=sc.compare.reference or arms[0].name,
                            rate_reference=sc.compare.rate_reference)
        annotate_rows(rows, variants, budgets)
        if tmp is not None:
            _write_study(tmp, "comparison", rows, {"methods": [m.name for m in arms], "seeds": list(seed_list),
                                                     "scenario": sc.name, "budgets": budgets})
    return Comparison(arms, seed_list, runs, rows, out)


def sweep(scenario: Scenario | str | Path | Mapping, grid: Mapping[str, Sequence[Any]], *,
          seeds: int | Iterable[int] | None = None, out_dir: str | Path | None = None, jobs: int = 1,
          progress: bool | None = False) -> Comparison:
    """Run the Cartesian product of dotted-key value lists, each over ``seeds``.

    Each grid point is a method named ``key=value,...``; the returned table has one row
    per point with mean ± std, so e.g. ``{"gate.beta": [0, 1e-3, 1e-2]}`` gives accuracy
    and rate against beta.
    """
    if not grid:
        raise ScenarioError("sweep: empty grid; give at least one --grid key=v1,v2")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ScenarioError(f"grid {key}: {values!r} must be a non-empty list of values; "
                                f"write e.g. {{{key!r}: [v1, v2]}} (CLI: --grid {key}=v1,v2)")
    keys = list(grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    arms = [{"name": ",".join(f"{k}={v}" for k, v in p.items()), "set": p} for p in points]
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    base = with_overrides(sc, {"compare.methods": arms, "compare.reference": None, "compare.rate_reference": None})
    cmp = compare(base, seeds=seeds, out_dir=out_dir, jobs=jobs, progress=progress)
    rows = _with_grid_values(cmp.rows, points)
    if out_dir is not None:
        _write_study(Path(out_dir), "sweep", rows, {"grid": {k: list(v) for k, v in grid.items()}})
    return Comparison(cmp.methods, cmp.seeds, cmp.runs, rows, cmp.out_dir)


def _with_grid_values(rows: list[dict], points: list[dict]) -> list[dict]:
    return [{**p, **r} for p, r in zip(points, rows)]


class _NoDir:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _maybe_atomic(out: Path | None) -> Any:
    return atomic_dir(out) if out is not None else _NoDir()


def _run_task(task: tuple[Scenario, int, str, Path | None]) -> RunResult:
    """One (scenario, seed, method) run; top level so worker processes can pickle it."""
    sc, seed, method, out = task
    return run(sc, seed, method=method, out_dir=out, progress=False)


def _worker_init() -> None:
    import torch
    torch.set_num_threads(1)  # tiny modules: one thread per worker beats oversubscription


def _execute(tasks: list[tuple[Scenario, int, str]], jobs: int, out: Path | None,
             progress: bool | None) -> list[RunResult]:
    """Run tasks in order (jobs == 1) or in ``jobs`` spawned worker processes."""
    from tqdm.auto import tqdm
    full = [(sc, seed, name, None if out is None else out / _slug(name) / f"seed{seed}")
            for sc, seed, name in tasks]
    bar = tqdm(total=len(full), desc="runs", unit="run", disable=None if progress is None else not progress)
    results: list[RunResult] = []
    try:
        if jobs <= 1:
            for task in full:
                results.append(_run_task(task))
                bar.update()
                log.info("run %s seed %d done", task[2], task[1])
            return results
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            for result in pool.map(_run_task, full):
                results.append(result)
                bar.update()
        return results
    finally:
        bar.close()


def _slug(name: str) -> str:
    """A folder name for a method name (keeps letters, digits, '.', '_', '-', '=', ',')."""
    keep = "".join(c if c.isalnum() or c in "._-=," else "_" for c in name)
    return keep or "method"


def summary_rows(runs: Mapping[str, Sequence[RunResult]], *, reference: str | None,
                 rate_reference: str | None = None) -> list[dict[str, Any]]:
    """One row per method: mean and sample std of every metric, plus reductions.

    ``exchange_reduction`` = 1 - mean exchange / reference's mean exchange;
    ``accuracy_within_1std`` says whether |mean accuracy - reference's| <= reference's std;
    ``rate_reduction`` = 1 - mean rate / rate reference's mean rate;
    ``paired_<metric>_<stat>`` and ``accuracy_ci_contains_0``: per-seed paired differences
    (:mod:`inl_sim.study.statistics`).
    """
    summaries = {name: [r.summary() for r in rs] for name, rs in runs.items()}
    rows = []
    for name, items in summaries.items():
        row: dict[str, Any] = {"method": name, "mode": items[0]["mode"], "n_seeds": len(items),
                               "n_active_edges": items[0]["n_active_edges"], "gate": items[0]["gate"],
                               "beta": items[0]["beta"]}
        for key, _, _, _ in METRICS:
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std([s[key] for s in items])
        rows.append(row)
    by_name = {r["method"]: r for r in rows}
    ref, rate_ref = by_name.get(reference), by_name.get(rate_reference)
    for row in rows:
        if ref is not None:
            row["exchange_reduction"] = reduction(row["exchange_bytes_mean"], ref["exchange_bytes_mean"])
            row["accuracy_gap"] = row["accuracy_mean"] - ref["accuracy_mean"]
            row["accuracy_within_1std"] = abs(row["accuracy_gap"]) <= ref["accuracy_std"] + 1e-12
        row.update(paired_columns(summaries, row["method"], reference=reference, rate_reference=rate_reference))
        if rate_ref is not None:
            row["rate_reduction"] = reduction(row["rate_bits_mean"], rate_ref["rate_bits_mean"])
            row["accuracy_gap_vs_rate_reference"] = row["accuracy_mean"] - rate_ref["accuracy_mean"]
            row["accuracy_within_1std_of_rate_reference"] = (
                abs(row["accuracy_gap_vs_rate_reference"]) <= rate_ref["accuracy_std"] + 1e-12)
    return rows


def _fmt(value: Any, pattern: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return pattern.format(value * scale)


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table: mean ± std per metric, then edges and reductions."""
    extra = [k for k in ("exchange_reduction", "rate_reduction") if any(k in r for r in rows)]
    header = ["method", "edges"] + [label for _, label, _, _ in METRICS] + [k.replace("_", " ") for k in extra]
    header += paired_header(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r["method"]), str(r["n_active_edges"])]
        cells += [f"{_fmt(r[f'{k}_mean'], f, s)} ± {_fmt(r[f'{k}_std'], f, s)}" for k, _, s, f in METRICS]
        cells += [_fmt(r.get(k), "{:.1%}") for k in extra] + paired_cells(r, rows)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_study(folder: Path, stem: str, rows: list[dict], meta: Mapping[str, Any]) -> None:
    write_json(folder / f"{stem}.json", {**meta, "rows": rows})
    write_table(folder / f"{stem}.csv", rows)
    (folder / f"{stem}.md").write_text(format_markdown(rows), encoding="utf-8")

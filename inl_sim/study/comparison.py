"""Studies over many runs: ``compare`` (methods x seeds) and ``sweep`` (grid x seeds).

A method is a name plus dotted overrides of the base scenario (``dense`` is
``routing.mode=dense``).  Every run gets its own folder; the study writes a table
(``comparison.md/.csv/.json`` or ``sweep.md/.csv/.json``) with mean ± sample std per
method, the exchange reduction against a reference method and, when asked, the rate
reduction against another.  Runs execute where :mod:`inl_sim.study.executors` says
(this process, worker processes or Ray); only this process writes files.  A study
folder is locked while it runs, each run folder is written as soon as its run ends, and
finished runs are reused (:mod:`inl_sim.study.resume`, :mod:`inl_sim.study.folders`).
Diverged runs are listed per method (``n_diverged``, ``diverged_seeds``); means and
stds are over the finished (``ok``) runs only, and ``n_ok`` says how many.
"""

from __future__ import annotations

import itertools
import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from inl_sim.errors import ScenarioError
from inl_sim.learning.gating import GATES
from inl_sim.study.executors import execute, resolve_executor
from inl_sim.study.experiment import RunResult
from inl_sim.sim.metrics import METRICS, mean_std, reduction
from inl_sim.study.folders import check_name, check_run_target, claim_dir, folder_names, study_folder
from inl_sim.study.results import write_json, write_run, write_table
from inl_sim.study.resume import load_finished, run_key
from inl_sim.study.budget import annotate_rows, apply_budgets
from inl_sim.study.statistics import paired_cells, paired_columns, paired_header, parse_seeds
from inl_sim.scenario import MethodSpec, Scenario, load_scenario, with_overrides

__all__ = ["Comparison", "compare", "sweep", "run_tasks", "summary_rows", "format_markdown", "METRICS"]

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
            out_dir: str | Path | None = None, jobs: int | None = None, progress: bool | None = False,
            fresh: bool = False, executor: str | None = None, ray_address: str | None = None) -> Comparison:
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
        Folder for per-run folders (``<method>/seed<k>``) and the comparison table.  Each
        run folder is written as soon as its run ends; runs already finished there (same
        scenario, seed, method and version) are reused unless ``fresh``
        (:mod:`inl_sim.study.resume`).  The folder is locked while the study runs.
    fresh
        Train every run again, replacing the finished run folders.
    jobs, executor, ray_address
        Where the runs execute (:func:`inl_sim.study.executors.execute`): ``local`` by
        default, ``process`` when ``jobs > 1``, ``ray`` on a local instance or at
        ``ray_address``.  Results are identical on every executor; only this process
        writes files.

    Raises
    ------
    ScenarioError
        A method name that is not a safe folder name, or two that share one, before
        any training.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    arms = _resolve_methods(sc, modes, methods)
    for m in arms:
        check_name(m.name, "compare.methods.name")
    where = {"jobs": jobs, "executor": executor, "ray_address": ray_address, "progress": progress, "fresh": fresh}
    return _compare(sc, arms, _resolve_seeds(sc, seeds), out_dir, where)


def _compare(sc: Scenario, arms: Sequence[MethodSpec], seed_list: tuple[int, ...], out_dir: str | Path | None,
             where: Mapping[str, Any], kind: str = "compare",
             after: Callable[[Path, list[dict]], None] | None = None) -> Comparison:
    """compare() once the methods are resolved; ``where`` holds :func:`run_tasks`'s
    keywords; ``after`` writes more files under the lock."""
    names = folder_names([m.name for m in arms], "compare.methods.name")
    variants, budgets = apply_budgets({m.name: with_overrides(sc, m.set) for m in arms}, arms)
    for variant in variants.values():  # before any folder or training (more checks: scenario wing)
        if variant.gate.kind not in GATES:
            raise ScenarioError(f"gate.kind: {variant.gate.kind!r} is not a known gate; choose one of {sorted(GATES)}")
    resolve_executor(where.get("executor"), where.get("jobs"), where.get("ray_address"))  # refuse before a folder
    tasks = [(variants[m.name], s, m.name) for m in arms for s in seed_list]
    out = Path(out_dir) if out_dir is not None else None
    with study_folder(out, kind) if out is not None else nullcontext(None) as folder:
        results = run_tasks(tasks, folder, names, **where)
        runs = {m.name: [r for r in results if r.method == m.name] for m in arms}
        rows = summary_rows(runs, reference=sc.compare.reference or arms[0].name,
                            rate_reference=sc.compare.rate_reference)
        annotate_rows(rows, variants, budgets)
        if folder is not None:
            _write_study(folder, "comparison", rows, {"methods": [m.name for m in arms], "seeds": list(seed_list),
                                                        "scenario": sc.name, "budgets": budgets})
            if after is not None:
                after(folder, rows)
    return Comparison(tuple(arms), seed_list, runs, rows, out)


def sweep(scenario: Scenario | str | Path | Mapping, grid: Mapping[str, Sequence[Any]], *,
          seeds: int | Iterable[int] | None = None, out_dir: str | Path | None = None, jobs: int | None = None,
          progress: bool | None = False, fresh: bool = False, executor: str | None = None,
          ray_address: str | None = None) -> Comparison:
    """Run the Cartesian product of dotted-key value lists, each over ``seeds``.

    Each grid point is a method named ``key=value,...``; the returned table has one row
    per point with mean ± std, so e.g. ``{"gate.beta": [0, 1e-3, 1e-2]}`` gives accuracy
    and rate against beta.  Finished runs in ``out_dir`` are reused as in :func:`compare`;
    ``jobs``, ``executor`` and ``ray_address`` as there too.
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

    def write_sweep(folder: Path, rows: list[dict]) -> None:
        _write_study(folder, "sweep", _with_grid_values(rows, points), {"grid": {k: list(v) for k, v in grid.items()}})

    where = {"jobs": jobs, "executor": executor, "ray_address": ray_address, "progress": progress, "fresh": fresh}
    cmp = _compare(base, base.compare.methods, _resolve_seeds(base, seeds), out_dir, where, kind="sweep",
                   after=write_sweep)
    return Comparison(cmp.methods, cmp.seeds, cmp.runs, _with_grid_values(cmp.rows, points), cmp.out_dir)


def _with_grid_values(rows: list[dict], points: list[dict]) -> list[dict]:
    return [{**p, **r} for p, r in zip(points, rows)]


def run_tasks(tasks: list[tuple[Scenario, int, str]], root: Path | None, folders: Mapping[str, str], *,
              fresh: bool = False, **where: Any) -> list[Any]:
    """Every (scenario, seed, method) task's result, in task order, resuming under ``root``.

    With a ``root`` folder, task (s, k, m) lives in ``root/folders[m]/seed<k>``: a
    finished run there with the same key is reused (unless ``fresh``), every other run
    is trained and its folder written the moment it ends (by the driver), so an
    interrupted study keeps every finished run.  ``where``: :func:`~inl_sim.study.executors.execute`'s
    ``executor``, ``jobs``, ``ray_address`` and ``progress``.
    """
    if root is None:
        return execute(tasks, **where)
    target = {(name, seed): root / folders[name] / f"seed{seed}" for _, seed, name in tasks}
    keys = {(name, seed): run_key(sc, seed, name) for sc, seed, name in tasks}
    done: dict[tuple[str, int], Any] = {}
    for sc, seed, name in tasks:
        stored = None if fresh else load_finished(target[name, seed], keys[name, seed], sc, seed, name)
        if stored is not None:
            done[name, seed] = stored
    pending = [t for t in tasks if (t[2], t[1]) not in done]
    for _, seed, name in pending:
        claim_dir(target[name, seed].parent, "method")
        check_run_target(target[name, seed], overwrite=True)  # a foreign folder: refuse before training
    log.info("%s: %d finished run(s) reused, %d to train", root, len(done), len(pending))

    def on_result(task: tuple[Scenario, int, str], result: RunResult) -> None:
        _, seed, name = task
        write_run(result, target[name, seed], overwrite=True, run_key=keys[name, seed])
        log.info("run %s seed %d written to %s", name, seed, target[name, seed])

    for task, result in zip(pending, execute(pending, on_result=on_result, **where) if pending else []):
        done[task[2], task[1]] = result
    return [done[name, seed] for _, seed, name in tasks]


def summary_rows(runs: Mapping[str, Sequence[RunResult]], *, reference: str | None,
                 rate_reference: str | None = None) -> list[dict[str, Any]]:
    """One row per method: mean and sample std of every metric, plus reductions.

    ``exchange_reduction`` = 1 - mean exchange / reference's mean exchange;
    ``accuracy_within_1std`` says whether |mean accuracy - reference's| <= reference's std;
    ``rate_reduction`` = 1 - mean rate / rate reference's mean rate;
    ``paired_<metric>_<stat>`` and ``accuracy_ci_contains_0``: per-seed paired differences
    (:mod:`inl_sim.study.statistics`).  Means and stds are over the ``n_ok`` runs whose
    status is ``ok``; ``n_diverged`` and ``diverged_seeds`` list the others.
    """
    summaries = {name: [r.summary() for r in rs] for name, rs in runs.items()}
    rows = []
    for name, items in summaries.items():
        ok = [s for s in items if s.get("status", "ok") == "ok"]
        diverged = [s["seed"] for s in items if s.get("status", "ok") != "ok"]
        row: dict[str, Any] = {"method": name, "mode": items[0]["mode"], "paradigm": items[0].get("paradigm", "inl"),
                               "n_seeds": len(items), "n_ok": len(ok),
                               "n_diverged": len(diverged), "diverged_seeds": diverged,
                               "n_active_edges": items[0]["n_active_edges"], "gate": items[0]["gate"],
                               "beta": items[0]["beta"]}
        for key, _, _, _ in METRICS:  # over finished runs only: a diverged seed is listed, never averaged
            values = [s[key] for s in ok]
            na = bool(values) and all(v is None for v in values)  # e.g. no gate: rate not applicable
            row[f"{key}_mean"], row[f"{key}_std"] = (None, None) if na else mean_std(values)
        rows.append(row)
    finished = {name: [s for s in items if s.get("status", "ok") == "ok"] for name, items in summaries.items()}
    by_name = {r["method"]: r for r in rows}
    ref, rate_ref = by_name.get(reference), by_name.get(rate_reference)
    for row in rows:
        if ref is not None:
            row["exchange_reduction"] = reduction(row["exchange_bytes_mean"], ref["exchange_bytes_mean"])
            row["accuracy_gap"] = row["accuracy_mean"] - ref["accuracy_mean"]
            row["accuracy_within_1std"] = abs(row["accuracy_gap"]) <= ref["accuracy_std"] + 1e-12
        row.update(paired_columns(finished, row["method"], reference=reference, rate_reference=rate_reference))
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
    diverged = any(r.get("n_diverged") for r in rows)
    header = ["method", "edges"] + [label for _, label, _, _ in METRICS] + [k.replace("_", " ") for k in extra]
    header += paired_header(rows)
    header += ["runs ok", "diverged seeds"] if diverged else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r["method"]), str(r["n_active_edges"])]
        cells += [f"{_fmt(r[f'{k}_mean'], f, s)} ± {_fmt(r[f'{k}_std'], f, s)}" for k, _, s, f in METRICS]
        cells += [_fmt(r.get(k), "{:.1%}") for k in extra] + paired_cells(r, rows)
        if diverged:
            cells += [f"{r['n_ok']}/{r['n_seeds']}", ", ".join(map(str, r["diverged_seeds"])) or "none"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_study(folder: Path, stem: str, rows: list[dict], meta: Mapping[str, Any]) -> None:
    write_json(folder / f"{stem}.json", {**meta, "rows": rows})
    write_table(folder / f"{stem}.csv", rows)
    (folder / f"{stem}.md").write_text(format_markdown(rows), encoding="utf-8")

"""``report.html``: the comparison table and plotly figures, built from a results folder.

The report reads only the files a study wrote (``comparison.json``, ``sweep.json`` and
the ``<method>/seed<k>/`` run folders, or one run folder), never the simulator, so
``python run.py report DIR`` rebuilds it at any time.  The page is self-contained:
plotly.js is embedded once and nothing is fetched, so it opens offline.  Every figure
comes from one small function ``data -> go.Figure`` in :mod:`inl_sim.report.figures`, listed in
:data:`FIGURES` (the figures' public names are re-exported here); the page
declares their ids in a JSON manifest (``<script id="inl-report-manifest">``) that the
browser test checks against what rendered.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path
from string import Template
from typing import Any, Callable, Mapping, Sequence

from inl_sim.errors import ResultsError
from inl_sim.sim.accounting import Transfer
from inl_sim.report.figures import (ReportData, _plotly, exchange_figure, learning_curves_figure, link_bytes,
                                    node_positions, rate_accuracy_figure, sim_time_figure, topology_figure)
from inl_sim.report.timeline import critical_path, step_timeline_figure
from inl_sim.report.energy import energy_figure
from inl_sim.report.progress import progress_figure
from inl_sim.sim.metrics import METRICS, mean_std
from inl_sim.study.results import read_json, read_run

__all__ = ["build_report", "load_results", "render_html", "ReportData", "FIGURES", "COLUMNS",
           "link_bytes", "critical_path", "node_positions", "topology_figure", "learning_curves_figure",
           "exchange_figure", "rate_accuracy_figure", "sim_time_figure", "step_timeline_figure"]

log = logging.getLogger(__name__)

COLUMNS = METRICS  # the table's numbers: one definition with study's tables
PAPER = {"exchange_reduction": 0.704, "rate_reduction": 0.457}


# ---------------------------------------------------------------- loading


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except ResultsError:
        raise
    except ValueError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc}); re-run the study that wrote it") from exc


def _read_run(run_dir: Path) -> dict[str, Any]:
    try:
        run = read_run(run_dir)
        run["records"] = [Transfer(**row) for row in run["transfers"]]
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, ResultsError):
            raise
        raise ResultsError(f"{run_dir}: unreadable run folder ({exc}); re-run it") from exc
    return run


def _rows_from_runs(runs: Mapping[str, Sequence[dict]]) -> list[dict[str, Any]]:
    rows = []
    for method, items in runs.items():
        s0 = items[0]["summary"]
        row = {"method": method, "mode": s0.get("mode"), "n_seeds": len(items), "gate": s0.get("gate"),
               "beta": s0.get("beta"), "n_active_edges": s0.get("n_active_edges")}
        for key, *_ in COLUMNS:
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std([r["summary"].get(key) for r in items])
        rows.append(row)
    return rows


def _load_study(folder: Path) -> tuple[dict, dict[str, list[dict]]]:
    meta = _read_json(folder / "comparison.json")
    methods = meta.get("methods") or [r["method"] for r in meta.get("rows", [])]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for summary in sorted(folder.glob("*/seed*/summary.json")):
        run = _read_run(summary.parent)
        runs.setdefault(run["summary"].get("method"), []).append(run)
    missing = [m for m in methods if not runs.get(m)]
    if missing:
        raise ResultsError(f"{folder}: comparison.json lists method(s) {missing} but no <method>/seed<k>/ run "
                           "folder holds them; re-run the study into this folder (or an empty --out)")
    return meta, {m: sorted(runs[m], key=lambda r: r["summary"].get("seed", 0)) for m in methods}


def load_results(folder: str | Path) -> ReportData:
    """Load a compare folder, a sweep folder or a single run folder.

    Raises
    ------
    ResultsError
        The folder does not exist, is of no known layout, or is incomplete.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder; give the --out folder of "
                           "`python run.py compare`, `sweep` or `run`")
    if (folder / "comparison.json").is_file():
        meta, runs = _load_study(folder)
        kind = "sweep" if (folder / "sweep.json").is_file() else "compare"
        sweep_rows = _read_json(folder / "sweep.json").get("rows", []) if kind == "sweep" else None
        rows = [r for r in meta.get("rows", []) if r.get("method") in runs] or _rows_from_runs(runs)
        name = meta.get("scenario") or folder.name
        return ReportData(folder, kind, f"{kind} of {name}", tuple(runs), rows, runs, sweep_rows)
    if (folder / "summary.json").is_file():
        run = _read_run(folder)
        method = run["summary"].get("method") or run["summary"].get("mode") or folder.name
        runs = {method: [run]}
        title = f"run of {run['summary'].get('scenario', folder.name)}, seed {run['summary'].get('seed')}"
        return ReportData(folder, "run", title, (method,), _rows_from_runs(runs), runs)
    raise ResultsError(f"{folder}: neither comparison.json (a compare or sweep folder) nor summary.json "
                       "(a run folder) is here; give a folder written by `python run.py compare`, `sweep` or `run`")



# ---------------------------------------------------------------- page

FIGURES: tuple[tuple[str, str, Callable[[ReportData], Any], str], ...] = (
    ("topology", "Topology and per-link exchange", topology_figure,
     "First panel: the network; numbers on links are capacities in Mb/s (hover for latency). Grey: the links "
     "dense INL trains over; orange: the shortest-path tree D-INL keeps, drawn over them. Then one panel per "
     "method: each training link coloured and widened by the bytes it carried (every direction, mean over "
     "seeds, one colour scale for all), to show where the traffic goes and which links the tree saves."),
    ("learning", "Learning curves", learning_curves_figure,
     "Test accuracy and test loss after each epoch: the line is the mean over seeds, the band ±1 sample standard "
     "deviation. Pruning to the tree should not cost accuracy: the bands should overlap."),
    ("exchange", "Training exchange", exchange_figure,
     "Left: forward (activations) and backward (errors) bytes over all links during training (and, for the federated "
     "and centralised paradigms, parameters and raw data), mean ± std over "
     "seeds. Right: the same per link (child → parent), so the saving can be traced to the links dropped."),
    ("progress", "Accuracy vs bytes and simulated time", progress_figure,
     "Test accuracy after each epoch (federated: round) against the training bytes spent so far over every link "
     "and direction (log scale), and against the simulated clock; the line is the mean over seeds. A method to "
     "the left reaches an accuracy with fewer bytes or sooner, whatever its paradigm."),
    ("rate", "Rate vs accuracy", rate_accuracy_figure,
     "The estimated latent rate (bits per sample, summed over the active links) against test accuracy; faint dots "
     "are seeds. Methods without a stochastic gate have no rate and appear as accuracy lines. A finite-rate "
     "penalty should move a method left without moving it down; a sweep, when present, traces the curve."),
    ("simtime", "Simulated time", sim_time_figure,
     "Simulated (discrete-event) time per epoch: links serialise their messages and nodes wait for all inputs, so "
     "fewer or faster links shorten an epoch. Right: epoch by epoch, to show it is steady."),
    ("timeline", "Critical path of one training step", step_timeline_figure,
     "Every link transfer of the first training step (one row per directed link): grey is waiting for a busy "
     "channel, blue forward, orange backward. The red line is the critical path: the chain of transfers, each "
     "the last to reach its sender before it sent, that ends with the step's last arrival."),
    ("energy", "Energy map", energy_figure,
     "Where the joules go (mean over seeds, from each run's energy.json): nodes sized and coloured by their "
     "total energy (radio tx + rx, compute, idle), links widened and darkened by the transmit energy spent on "
     "them in both directions. The model and its coefficients are the scenario's energy section."),
)

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
  color:#222;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.25em;margin:36px 0 4px}
.sub{color:#555;margin:0 0 16px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
.caption{color:#444;font-size:.93em;max-width:1100px;margin:4px 0 10px;line-height:1.4}
table{border-collapse:collapse;font-size:.86em;background:#fff}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;white-space:normal;vertical-align:bottom}
td small{color:#666}
td:first-child,th:first-child{text-align:left}
.scroll{overflow-x:auto}
ul.claims{font-size:.93em;line-height:1.5}
</style>
<script id="plotlyjs">$plotlyjs</script>
<script type="application/json" id="inl-report-manifest">$manifest</script>
</head><body data-figures="$n_figures"><main>
<h1>$title</h1>
<p class="sub">$subtitle</p>
<h2>Comparison</h2>
<p class="caption">Mean ± sample standard deviation over seeds. Exchange reduction and accuracy gap are against the
reference method; rate reduction against the rate reference, when the study named one.</p>
<div class="scroll">$table</div>
$claims
$sections
</main></body></html>
""")


def _fmt(value: Any, pattern: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return pattern.format(value * scale)


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    extra = [(k, label) for k, label in (("exchange_reduction", "exchange reduction"),
                                         ("accuracy_within_1std", "acc. within 1 std of ref."),
                                         ("rate_reduction", "rate reduction")) if any(k in r for r in rows)]
    head = ["method", "routing", "gate (β)", "links", "seeds"] + [c[1] for c in COLUMNS] + [e[1] for e in extra]
    body = []
    for r in rows:
        cells = [r["method"], r.get("mode"), f"{r.get('gate')} ({r.get('beta')})", r.get("n_active_edges"),
                 r.get("n_seeds")]
        cells = [html.escape(str(c)) for c in cells]
        cells += [f"{_fmt(r.get(f'{k}_mean'), f, s)}<br><small>± {_fmt(r.get(f'{k}_std'), f, s)}</small>"
                  for k, _, s, f in COLUMNS]
        cells += [_fmt(r.get(k), "{:.1%}") if k != "accuracy_within_1std" else
                  {True: "yes", False: "no"}.get(r.get(k), "n/a") for k, _ in extra]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return f'<table id="comparison"><thead>{header}</thead><tbody>{"".join(body)}</tbody></table>'


def _claims(rows: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for r in rows:
        red = r.get("exchange_reduction")
        if red:
            items.append(f"<b>{html.escape(r['method'])}</b>: training exchange {_fmt(red, '{:.1%}')} lower than the "
                         f"reference (paper: {PAPER['exchange_reduction']:.1%} for D-INL); accuracy gap "
                         f"{_fmt(r.get('accuracy_gap'), '{:+.4f}')}, within one std: "
                         f"{'yes' if r.get('accuracy_within_1std') else 'no'}.")
        rate = r.get("rate_reduction")
        if rate is not None and not (isinstance(rate, float) and math.isnan(rate)) and r.get("beta"):
            items.append(f"<b>{html.escape(r['method'])}</b>: estimated rate {_fmt(rate, '{:.1%}')} lower than the "
                         f"rate reference (paper: {PAPER['rate_reduction']:.1%}); accuracy gap "
                         f"{_fmt(r.get('accuracy_gap_vs_rate_reference'), '{:+.4f}')}, within one std: "
                         f"{'yes' if r.get('accuracy_within_1std_of_rate_reference') else 'no'}.")
    return f'<ul class="claims">{"".join(f"<li>{i}</li>" for i in items)}</ul>' if items else ""


def _subtitle(data: ReportData) -> str:
    seeds = sorted({run["summary"]["seed"] for runs in data.runs.values() for run in runs
                    if isinstance(run["summary"].get("seed"), int)})
    s0 = data.runs[data.methods[0]][0]["summary"]
    return html.escape(
        f"{len(data.methods)} method(s) × {len(seeds)} seed(s) {seeds}; {s0.get('epochs')} epochs; network "
        f"{data.network.get('name')} ({s0.get('n_nodes')} nodes, {s0.get('n_links')} links). Built from the files "
        f"in {data.folder.name}/ only; rebuild it with `python run.py report <this folder>`.")


def render_html(data: ReportData) -> str:
    """The whole self-contained page: plotly.js inline, table, one section per figure."""
    _plotly()  # the install hint, before anything else needs plotly
    from plotly.offline import get_plotlyjs
    sections = []
    for key, title, build, caption in FIGURES:
        fig = build(data)
        fig.update_layout(template="plotly_white", margin=dict(l=60, r=30, t=50, b=50))
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{key}",
                          default_height=f"{fig.layout.height or 450}px",
                          config={"displaylogo": False, "responsive": True})
        sections.append(f'<section id="{key}"><h2>{html.escape(title)}</h2><p class="caption">'
                        f'{html.escape(caption)}</p><figure>{div}</figure></section>')
    manifest = json.dumps({"figures": [f"fig-{key}" for key, *_ in FIGURES], "kind": data.kind,
                           "methods": list(data.methods)})
    return PAGE.substitute(title=html.escape(f"inl-sim report: {data.title}"), subtitle=_subtitle(data),
                           plotlyjs=get_plotlyjs(), manifest=manifest.replace("</", "<\\/"),
                           n_figures=len(FIGURES), table=_table(data.rows), claims=_claims(data.rows),
                           sections="\n".join(sections))


def build_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) for a compare, sweep or run folder; return its path.

    Reads only the folder's files.  The page is written to a temporary file and renamed
    into place, so an interrupted build never leaves a half-written report.

    Raises
    ------
    ResultsError
        ``results_dir`` is missing, of no known layout, or incomplete.
    """
    data = load_results(results_dir)
    target = Path(out) if out is not None else data.folder / "report.html"
    text = render_html(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("report written to %s", target)
    return target

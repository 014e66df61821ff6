"""Faults in the report: the fault timeline and accuracy through a failure.

Reads only the ``faults.json`` files that :func:`inl_sim.study.results.write_run` writes
into the folder of every run with a ``faults:`` section (the timeline of fails,
recoveries and repairs, and the run's fault totals) and each run's history.  Runs
without faults show as "no failures" rows and plain accuracy curves, not an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inl_sim.report.figures import ReportData, _colour, _plotly
from inl_sim.sim.metrics import mean_std

__all__ = ["fault_files", "fault_timeline_figure", "accuracy_through_failure_figure", "failure_epochs"]

_MARKERS = {"fail": ("x", "#d62728"), "recover": ("circle", "#2ca02c"), "repair": ("diamond", "#1f77b4")}


def fault_files(folder: Path) -> dict[str, list[dict]]:
    """method -> the ``faults.json`` of each of its seeds (in seed order) under ``folder``."""
    out: dict[str, list[dict]] = {}
    for path in sorted([folder / "faults.json", *folder.glob("*/seed*/faults.json")]):
        if not path.is_file():
            continue
        summary = json.loads((path.parent / "summary.json").read_text(encoding="utf-8"))
        method = summary.get("method") or summary.get("mode") or path.parent.name
        out.setdefault(method, []).append(json.loads(path.read_text(encoding="utf-8")))
    return out


def fault_timeline_figure(data: ReportData) -> Any:
    """One row per failed element: when it failed (x), recovered (o) and when training repaired (diamond).

    First seed of each method (a schedule is the same for every method of one seed)."""
    go = _plotly()
    files = fault_files(data.folder)
    fig = go.Figure()
    shown = set()
    for i, method in enumerate(data.methods):
        timeline = files[method][0].get("timeline", []) if method in files else []
        if not timeline:   # a clean network (or loss, stragglers, capacity only): say so on its row
            fig.add_trace(go.Scatter(x=[0.0], y=[f"{method} |"], mode="markers+text", text=["no failures"],
                                     textposition="middle right", marker=dict(color="lightgrey", size=9),
                                     showlegend=False, hoverinfo="skip"))
        for row in timeline:
            kind = row["event"].split("_")[0]
            symbol, colour = _MARKERS.get(kind, ("circle", "grey"))
            target = row["target"] if kind == "repair" else f"{row['event'].split('_')[-1]} {row['target']}"
            name = f"{method}: {kind}"
            fig.add_trace(go.Scatter(
                x=[row["time_s"]], y=[f"{method} | {target}"], mode="markers", name=name,
                legendgroup=name, showlegend=name not in shown,
                marker=dict(symbol=symbol, color=colour, size=11, line=dict(width=1, color=_colour(i))),
                hovertext=f"{row['event']} {row['target']} at {row['time_s']:.4g} s"))
            shown.add(name)
    fig.update_layout(xaxis_title="simulated time (s)", height=200 + 24 * len(fig.data), hovermode="closest")
    return fig


def failure_epochs(run: dict, faults: dict) -> list[int]:
    """Epochs in which a link or node failed, from the timeline and the run's history times."""
    ends = [h["sim_time_s"] for h in run["history"]]
    out = []
    for row in faults.get("timeline", []):
        if row["event"].startswith("fail"):
            out.append(next((e for e, end in enumerate(ends) if row["time_s"] <= end), len(ends) - 1))
    return sorted(set(out))


def accuracy_through_failure_figure(data: ReportData) -> Any:
    """Test accuracy per epoch, mean and band over seeds per method; dotted lines at failures."""
    go = _plotly()
    files = fault_files(data.folder)
    fig = go.Figure()
    marked: set[int] = set()
    for i, method in enumerate(data.methods):
        runs = data.runs[method]
        epochs = min(len(r["history"]) for r in runs)
        stats = [mean_std([r["history"][e]["test_accuracy"] for r in runs]) for e in range(epochs)]
        x = list(range(epochs))
        mean = [m for m, _ in stats]
        upper = [m + s for m, s in stats] + [m - s for m, s in stats][::-1]
        fig.add_trace(go.Scatter(x=x + x[::-1], y=upper, fill="toself", line=dict(width=0),
                                 fillcolor=_colour(i, 0.15), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=method, line=dict(color=_colour(i))))
        if method in files:
            marked |= set(failure_epochs(runs[0], files[method][0]))
    for e in sorted(marked):
        fig.add_vline(x=e, line=dict(dash="dot", color="#d62728"), annotation_text="failure")
    fig.update_layout(xaxis_title="epoch", yaxis_title="test accuracy", height=420)
    return fig

"""Accuracy against what training spent: cumulative bytes and simulated time, one line per method.

Built from each run's ``history.json`` only: an epoch's (or federated round's)
``exchange_bytes`` summed up to it, and its ``sim_time_s``; the line is the mean over
seeds at each epoch.  Paradigms with different epoch costs (centralised's one-off raw
upload, FedAvg's parameters per round, INL's messages per step) then compare on one
axis: which method reaches a given accuracy with the fewest bytes, or soonest.
"""

from __future__ import annotations

from typing import Any

from inl_sim.report.figures import ReportData, _colour, _plotly
from inl_sim.sim.metrics import mean_std

__all__ = ["progress_figure", "progress_points"]


def progress_points(history: list[dict]) -> list[tuple[int, float, float, float]]:
    """(epoch, cumulative training bytes, simulated time, test accuracy) per history row."""
    out, total = [], 0
    for row in sorted(history, key=lambda r: r["epoch"]):
        total += row.get("exchange_bytes") or 0
        out.append((row["epoch"], float(total), float(row["sim_time_s"]), float(row["test_accuracy"])))
    return out


def progress_figure(data: ReportData) -> Any:
    """Test accuracy vs cumulative training bytes (log x) and vs simulated time, mean over seeds."""
    go = _plotly()
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy vs cumulative training bytes",
                                                        "accuracy vs simulated time"))
    for i, method in enumerate(data.methods):
        by_epoch: dict[int, list[tuple[float, float, float]]] = {}
        for run in data.runs[method]:
            for epoch, nbytes, sim_s, acc in progress_points(run["history"]):
                by_epoch.setdefault(epoch, []).append((nbytes, sim_s, acc))
        epochs = sorted(by_epoch)
        mean = [[mean_std([p[k] for p in by_epoch[e]])[0] for e in epochs] for k in range(3)]
        for col, x in ((1, mean[0]), (2, mean[1])):
            fig.add_trace(go.Scatter(x=x, y=mean[2], mode="lines+markers", name=method, legendgroup=method,
                                     showlegend=col == 1, line=dict(color=_colour(i))), row=1, col=col)
    fig.update_xaxes(title_text="bytes (all directions, cumulative)", type="log", row=1, col=1)
    fig.update_xaxes(title_text="simulated seconds", row=1, col=2)
    fig.update_yaxes(title_text="test accuracy")
    fig.update_layout(height=420)
    return fig

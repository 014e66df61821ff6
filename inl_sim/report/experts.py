"""Figures of an ``experts`` results folder: selection over alpha, accuracy-rate curve, bytes.

Reads ``experts.json`` (what :func:`inl_sim.study.experts.write_expert_study` wrote) and
writes one self-contained ``experts.html`` (plotly.js inline, opens offline) beside it.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Mapping

from inl_sim.errors import ResultsError
from inl_sim.study.experts import expert_study, write_expert_study
from inl_sim.study.folders import write_text_atomic
from inl_sim.study.results import read_json

__all__ = ["selection_figure", "curve_figure", "bytes_figure", "build_expert_report", "run_experts",
           "EXPERT_FIGURES"]


def _go() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a declared dependency
        raise ImportError("experts figures need plotly: python -m pip install 'plotly>=5.18'") from exc
    return go


def selection_figure(data: Mapping[str, Any]) -> Any:
    """Î(S;W) (nats) and the gap against both bounds, over alpha (categorical axis: alpha = 0 is shown)."""
    from plotly.subplots import make_subplots
    go, rows = _go(), data["selection"]
    x = [f"{r['alpha']:g}" for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Î(S;W): how much the choice depends on S",
                                                       "generalisation gap and its bounds"))
    n_bank = len(data["summary"]["experts"])
    fig.add_trace(go.Scatter(x=x, y=[r["information_nats"] for r in rows], mode="lines+markers", name="Î(S;W)"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=[math.log(n_bank)] * len(rows), mode="lines", name="log|W|",
                             line={"dash": "dot"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=[r["gap"] for r in rows], mode="lines+markers", name="measured gap ± 2 s.e.",
                             error_y={"array": [2 * r["gap_se"] for r in rows]}), row=1, col=2)
    for key, name, dash in (("xu_raginsky", "Xu-Raginsky bound", "dash"), ("union_bound", "union bound (log|W|)", "dot")):
        fig.add_trace(go.Scatter(x=x, y=[r[key] for r in rows], mode="lines+markers", name=name,
                                 line={"dash": dash}), row=1, col=2)
    fig.update_xaxes(title_text="alpha (data dependence of the selection rule)")
    fig.update_yaxes(title_text="nats", row=1, col=1)
    fig.update_yaxes(title_text="0-1 loss", row=1, col=2)
    return fig


def curve_figure(data: Mapping[str, Any]) -> Any:
    """R(D) of the bank (Blahut-Arimoto), its exact ends, and where the trained router sits."""
    go, s, pts = _go(), data["summary"], data["curve"]
    fig = go.Figure(go.Scatter(x=[p["rate_bits"] for p in pts], y=[p["accuracy"] for p in pts],
                               mode="lines+markers", name="least rate for each accuracy (BA)"))
    marks = (("best fixed expert", 0.0, s["best_fixed_accuracy"], "diamond"),
             ("oracle (best expert per sample)", s["oracle_rate_bits"], s["oracle_accuracy"], "star"),
             (f"trained router ({s['routing']}, k={s['k']})", s["router_information_bits"], s["routed_accuracy"],
              "circle-open"))
    for name, x, y, symbol in marks:
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=name, marker={"symbol": symbol, "size": 14}))
    fig.update_layout(xaxis_title="rate I(X;T) (bits/sample)", yaxis_title="accuracy on the evaluation pool")
    return fig


def bytes_figure(data: Mapping[str, Any]) -> Any:
    """Bytes per sample of each message kind, routed vs broadcast (all hops), and delivered to experts."""
    go, rows = _go(), data["traffic"]
    names = [r["pass"] for r in rows]
    fig = go.Figure()
    for key, label in (("to_expert_delivered_per_sample", "samples delivered to experts"),
                       ("to_expert_per_sample", "samples to experts, every hop"),
                       ("to_fusion_per_sample", "expert outputs to fusion, every hop"),
                       ("choice_per_sample", "choices (routed) / gate q (broadcast), every hop")):
        fig.add_trace(go.Bar(x=names, y=[r[key] for r in rows], name=label))
    fig.update_layout(barmode="group", yaxis_title="bytes per sample")
    return fig


EXPERT_FIGURES = (("selection", "Selection over alpha: Î(S;W), gap, Xu-Raginsky and union bounds", selection_figure),
                  ("curve", "Accuracy-rate curve of the bank", curve_figure),
                  ("bytes", "Bytes per sample, routed vs broadcast", bytes_figure))


def build_expert_report(folder: str | Path) -> Path:
    """Write ``<folder>/experts.html`` from ``<folder>/experts.json``; return its path."""
    folder = Path(folder)
    if not (folder / "experts.json").is_file():
        raise ResultsError(f"{folder}: no experts.json; run `python run.py experts <scenario> --out {folder}` first")
    data = read_json(folder / "experts.json")
    from plotly.offline import get_plotlyjs
    parts = []
    for key, title, build in EXPERT_FIGURES:
        fig = build(data)
        fig.update_layout(template="plotly_white", height=460, margin={"t": 60})
        parts.append(f"<h2>{html.escape(title)}</h2>" + fig.to_html(full_html=False, include_plotlyjs=False,
                                                                      div_id=f"fig-{key}"))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>inl-sim experts: "
            f"{html.escape(str(data['summary']['scenario']))}</title><script>{get_plotlyjs()}</script></head>"
            f"<body><h1>Finite expert bank: {html.escape(str(data['summary']['scenario']))}</h1>"
            + "\n".join(parts) + "</body></html>")
    target = folder / "experts.html"
    write_text_atomic(target, page)
    return target


def run_experts(scenario: Any, seed: int | None, out: str | Path, *, progress: bool | None = False) -> str:
    """The ``experts`` command: run the study, write its folder and page; return the text to print."""
    study = expert_study(scenario, seed, progress=progress)
    write_expert_study(study, out)
    page = build_expert_report(out)
    return (f"{study.to_markdown()}\nresults: {out} ({page.name}, selection.csv, curve.csv, traffic.csv, "
            "experts.json, transfers_*.csv)")

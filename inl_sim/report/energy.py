"""The energy map: where a run spends its joules, node by node and link by link.

Reads only the ``energy.json`` files that :func:`inl_sim.study.results.write_run` puts in
every run folder (joules per node: tx, rx, compute, idle; per directed link: tx and rx),
averaged over seeds.  One panel per method: nodes sized and coloured by their total energy,
links widened and coloured by the transmit energy spent on them (both directions).
Folders written before energy existed give an empty map with a note, not an error.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from inl_sim.report.figures import ReportData, _plotly, _padded, node_positions

__all__ = ["energy_map", "energy_figure"]


def _energy_files(folder: Path) -> list[tuple[str, dict]]:
    """(method, energy.json contents) of every run folder under ``folder`` (a run or a study)."""
    out = []
    for path in sorted([folder / "energy.json", *folder.glob("*/seed*/energy.json")]):
        if not path.is_file():
            continue
        summary = json.loads((path.parent / "summary.json").read_text(encoding="utf-8"))
        out.append((summary.get("method") or summary.get("mode") or path.parent.name,
                    json.loads(path.read_text(encoding="utf-8"))))
    return out


def energy_map(data: ReportData) -> dict[str, dict[str, dict]]:
    """Mean over seeds, per method: ``nodes`` {id: total J}, ``links`` {(u, v) sorted: tx J}.

    Node ids are text (as in every saved file); a link's tx energy adds both directions.
    """
    sums: dict[str, dict[str, defaultdict]] = {}
    counts: dict[str, int] = defaultdict(int)
    for method, energy in _energy_files(Path(data.folder)):
        acc = sums.setdefault(method, {"nodes": defaultdict(float), "links": defaultdict(float)})
        counts[method] += 1
        for row in energy["nodes"]:
            acc["nodes"][str(row["node"])] += row["total"]
        for row in energy["links"]:
            key = tuple(sorted((str(row["src"]), str(row["dst"]))))
            acc["links"][key] += row["tx_j"]
    return {m: {part: {k: v / counts[m] for k, v in acc[part].items()} for part in ("nodes", "links")}
            for m, acc in sums.items()}


def _link_traces(go: Any, links: dict, pos: dict, top: float) -> list:
    traces = []
    for (u, v), joules in sorted(links.items(), key=lambda kv: kv[1]):
        if u not in pos or v not in pos:
            continue
        share = joules / top if top > 0 else 0.0
        (x0, y0), (x1, y1) = pos[u], pos[v]
        traces.append(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", showlegend=False,
                                 line=dict(width=1 + 7 * share, color=f"rgba(31,119,180,{0.25 + 0.75 * share:.3f})"),
                                 hovertext=f"{u}–{v}: tx {joules:.4g} J", hoverinfo="text"))
    return traces


def _node_trace(go: Any, nodes: dict, pos: dict, top: float, colourbar: bool) -> Any:
    ids = [v for v in pos if v in nodes]
    values = [nodes[v] for v in ids]
    return go.Scatter(
        x=[pos[v][0] for v in ids], y=[pos[v][1] for v in ids], mode="markers", showlegend=False,
        marker=dict(size=[8 + 22 * math.sqrt(e / top) if top > 0 else 8 for e in values], color=values,
                    colorscale="YlOrRd", cmin=0, cmax=top or 1, showscale=colourbar, line=dict(width=1, color="#444"),
                    colorbar=dict(title="node J", x=1.02) if colourbar else None),
        hovertext=[f"node {v}: {e:.4g} J" for v, e in zip(ids, values)], hoverinfo="text")


def energy_figure(data: ReportData) -> Any:
    """One panel per method: nodes by total energy, links by transmit energy (mean over seeds)."""
    go = _plotly()
    from plotly.subplots import make_subplots
    per = energy_map(data)
    methods = [m for m in data.methods if m in per] or list(per)
    if not methods:
        fig = go.Figure()
        fig.add_annotation(text="no energy.json in this folder (written before energy was recorded); re-run it",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig.update_layout(height=200, xaxis=dict(visible=False), yaxis=dict(visible=False))
    pos = node_positions(data.network)
    cols = min(3, len(methods))
    rows = math.ceil(len(methods) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{m}: energy per node and link" for m in methods],
                        horizontal_spacing=0.03, vertical_spacing=0.08 / rows)
    top_node = max((e for m in methods for e in per[m]["nodes"].values()), default=0.0)
    top_link = max((e for m in methods for e in per[m]["links"].values()), default=0.0)
    for i, method in enumerate(methods):
        where = dict(row=i // cols + 1, col=i % cols + 1)
        for trace in _link_traces(go, per[method]["links"], pos, top_link):
            fig.add_trace(trace, **where)
        fig.add_trace(_node_trace(go, per[method]["nodes"], pos, top_node, colourbar=i == 0), **where)
    fig.update_xaxes(visible=False, range=_padded([x for x, _ in pos.values()]))
    fig.update_yaxes(visible=False, range=_padded([y for _, y in pos.values()]))
    return fig.update_layout(height=420 * rows)

"""The timeline of one training step: which transfer waited, which ran, the critical path.

Computed from transfer records only (``t_send_s``, ``t_start_s``, ``t_arrive_s``), so it
shows what the network plane decided, whichever engine produced the records.
"""

from __future__ import annotations

from typing import Any, Sequence

from inl_sim.report.figures import ReportData, _plotly
from inl_sim.sim.accounting import Transfer
from inl_sim.sim.metrics import step_timeline

__all__ = ["critical_path", "step_timeline_figure"]


def critical_path(records: Sequence[Transfer]) -> list[Transfer]:
    """The chain of transfers that ends last: from the last arrival, step back to the
    transfer that reached its sender last before it was sent, and so on (in time order)."""
    if not records:
        return []
    path = [max(records, key=lambda r: r.t_arrive_s)]
    while True:
        cur = path[-1]
        before = [r for r in records if str(r.dst) == str(cur.src) and r.t_arrive_s <= cur.t_send_s + 1e-12]
        if not before:
            return path[::-1]
        path.append(max(before, key=lambda r: r.t_arrive_s))



def _first_step(records: Sequence[Transfer]) -> list[Transfer]:
    training = [r for r in records if r.direction in ("forward", "backward")]
    if not training:
        return []
    first = min((r.epoch, r.step) for r in training)
    return step_timeline(training, *first)


def _timeline_traces(go: Any, step: Sequence[Transfer]) -> tuple[list, list[str]]:
    t0 = min(r.t_send_s for r in step)
    label = [f"{r.src}→{r.dst}" for r in step]
    hover = [f"{r.direction} {r.src}→{r.dst}: {r.nbytes} B, sent {1e3 * (r.t_send_s - t0):.3f} ms, "
             f"arrived {1e3 * (r.t_arrive_s - t0):.3f} ms" for r in step]
    traces = [go.Bar(orientation="h", y=label, base=[1e3 * (r.t_send_s - t0) for r in step],
                     x=[1e3 * (r.t_start_s - r.t_send_s) for r in step], name="waiting for the channel",
                     legendgroup="wait", marker_color="#d9d9d9", hoverinfo="skip")]
    for direction, colour in (("forward", "#1f77b4"), ("backward", "#ff7f0e")):
        sel = [i for i, r in enumerate(step) if r.direction == direction]
        traces.append(go.Bar(orientation="h", y=[label[i] for i in sel], name=direction, legendgroup=direction,
                             base=[1e3 * (step[i].t_start_s - t0) for i in sel], marker_color=colour,
                             x=[1e3 * (step[i].t_arrive_s - step[i].t_start_s) for i in sel],
                             text=[hover[i] for i in sel], hovertemplate="%{text}<extra></extra>",
                             textposition="none"))
    xs, ys = [], []
    for r in critical_path(step):
        xs += [1e3 * (r.t_start_s - t0), 1e3 * (r.t_arrive_s - t0)]
        ys += [f"{r.src}→{r.dst}"] * 2
    traces.append(go.Scatter(x=xs, y=ys, mode="lines+markers", name="critical path", legendgroup="critical",
                             line=dict(color="#d62728", width=2), marker=dict(size=5), hoverinfo="skip"))
    order = list(dict.fromkeys(label))
    return traces, order


def step_timeline_figure(data: ReportData) -> Any:
    """The link transfers of the first training step of each method's first seed."""
    go = _plotly()
    from plotly.subplots import make_subplots
    steps = {m: _first_step(data.runs[m][0]["records"]) for m in data.methods}
    heights = [max(4, len({(r.src, r.dst) for r in s})) for s in steps.values()]
    fig = make_subplots(rows=len(steps), cols=1, shared_xaxes=True, row_heights=heights, vertical_spacing=0.04,
                        subplot_titles=[f"{m}: one training step, seed {data.runs[m][0]['summary'].get('seed')}"
                                        for m in steps])
    for row, (method, step) in enumerate(steps.items(), start=1):
        if not step:
            continue
        traces, order = _timeline_traces(go, step)
        for trace in traces:
            trace.showlegend = row == 1
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(categoryorder="array", categoryarray=order[::-1], tickfont=dict(size=9), row=row, col=1)
    fig.update_xaxes(title_text="milliseconds since the step's first send", row=len(steps), col=1)
    fig.update_layout(height=160 + 13 * sum(heights) + 40 * len(steps), barmode="overlay", bargap=0.25)
    return fig

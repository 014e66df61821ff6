"""Plotly figures of a results folder: one small function ``ReportData -> go.Figure`` each.

The builders read only a :class:`ReportData` (what :func:`inl_sim.report.html.load_results`
loaded from the files a study wrote), never the simulator.  :mod:`inl_sim.report.html` lists
them in its ``FIGURES`` registry and lays them out on the page; the numbers they share
(bytes per link, the critical path of a step, node positions) are public so tests can
check them against independent oracles.  plotly is imported lazily, with an install hint.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from inl_sim.report.routed import add_routed_bytes
from inl_sim.sim.metrics import bytes_by_link, mean_std

__all__ = ["ReportData", "link_bytes", "node_positions", "topology_figure",
           "learning_curves_figure", "exchange_figure", "rate_accuracy_figure", "sim_time_figure"]


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a declared dependency
        raise ImportError("report.html needs plotly; install it with `python -m pip install 'plotly>=5.18'`") from exc
    return go


@dataclass(frozen=True)
class ReportData:
    """What a results folder holds, loaded once.

    ``runs[method]`` are :func:`inl_sim.study.results.read_run` dicts (one per seed, by seed)
    with ``records``: the transfers as :class:`~inl_sim.sim.accounting.Transfer` tuples
    (node ids as read from ``transfers.csv``, i.e. strings).
    """

    folder: Path
    kind: str                           # "compare", "sweep" or "run"
    title: str
    methods: tuple[str, ...]
    rows: list[dict[str, Any]]          # one per method: <metric>_mean/_std, reductions
    runs: dict[str, list[dict[str, Any]]]
    sweep_rows: list[dict[str, Any]] | None = None

    @property
    def network(self) -> dict[str, Any]:
        return self.runs[self.methods[0]][0]["network"]


# ---------------------------------------------------------------- derived numbers


def link_bytes(data: ReportData) -> dict[str, dict[tuple[str, str], dict[str, float]]]:
    """Mean over seeds of bytes per training link ``(child, parent)``, by direction (forward,
    backward; parameters and raw data for routed paradigms, on their route tree's links)."""
    out: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
    for method, runs in data.runs.items():
        total: dict[tuple[str, str], dict[str, float]] = {}
        for run in runs:
            for (u, v), row in bytes_by_link(run["records"]).items():
                cell = total.setdefault((str(u), str(v)), {"forward": 0.0, "backward": 0.0})
                for direction, nbytes in row.items():
                    cell[direction] += nbytes / len(runs)
            add_routed_bytes(total, run, len(runs))  # federated parameters, centralised raw views
        out[method] = total
    return out


def node_positions(network: Mapping[str, Any], seed: int = 0) -> dict[str, tuple[float, float]]:
    """Saved ``pos`` of every node when all have one, else a seeded spring layout."""
    nodes = network["nodes"]
    if nodes and all(n.get("pos") is not None for n in nodes):
        return {str(n["id"]): (float(n["pos"][0]), float(n["pos"][1])) for n in nodes}
    import networkx as nx
    g = nx.Graph()
    g.add_nodes_from(str(n["id"]) for n in nodes)
    g.add_edges_from((str(e["u"]), str(e["v"])) for e in network["links"])
    return {k: (float(x), float(y)) for k, (x, y) in nx.spring_layout(g, seed=seed).items()}


def _graph_edges(data: ReportData, mode: str) -> list[tuple[str, str]] | None:
    for method in data.methods:
        graph = data.runs[method][0]["training_graph"]
        if graph.get("mode") == mode:
            return [(str(u), str(v)) for u, v in graph["edges"]]
    return None


# Method colours avoid blue/orange (forward/backward) and red (fusion node, critical path).
METHOD_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79")


def _colour(i: int, alpha: float | None = None) -> str:
    hex_colour = METHOD_COLOURS[i % len(METHOD_COLOURS)]
    if alpha is None:
        return hex_colour
    r, g, b = (int(hex_colour[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _byte_unit(largest: float) -> tuple[str, float]:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if largest >= size:
            return unit, size
    return "B", 1.0


def _padded(values: Sequence[float], pad: float = 0.1) -> list[float]:
    """An axis range around ``values`` with room for node labels."""
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    span = (hi - lo) or 1.0
    return [lo - pad * span, hi + pad * span]


def _segments(edges: Sequence[tuple[str, str]], pos: Mapping[str, tuple[float, float]]) -> tuple[list, list]:
    xs: list = []
    ys: list = []
    for u, v in edges:
        if u in pos and v in pos:
            xs += [pos[u][0], pos[v][0], None]
            ys += [pos[u][1], pos[v][1], None]
    return xs, ys


# ---------------------------------------------------------------- figures


def _node_traces(go: Any, network: Mapping, pos: Mapping, legend: bool) -> list:
    styles = {"fusion": ("#d62728", 20, "diamond"), "sensor": ("#1f77b4", 13, "circle")}
    roles: dict[str, list[str]] = {}
    for n in network["nodes"]:
        roles.setdefault(n.get("role") or "relay", []).append(str(n["id"]))
    traces = []
    for role, ids in roles.items():
        colour, size, symbol = styles.get(role, ("#7f7f7f", 13, "square"))
        traces.append(go.Scatter(
            x=[pos[i][0] for i in ids], y=[pos[i][1] for i in ids], mode="markers+text", text=ids,
            textposition="top center", name=f"{role} node", legendgroup=f"role-{role}", showlegend=legend,
            marker=dict(color=colour, size=size, symbol=symbol, line=dict(color="white", width=1)),
            hovertemplate=f"node %{{text}} ({role})<extra></extra>"))
    return traces


def _tree_panel(go: Any, data: ReportData, pos: Mapping) -> list:
    """Physical links with capacities, the dense INL graph and the shortest-path tree over it."""
    links = data.network["links"]
    xs, ys = _segments([(str(e["u"]), str(e["v"])) for e in links], pos)
    traces = [go.Scatter(x=xs, y=ys, mode="lines", name=f"physical link ({len(links)})", hoverinfo="skip",
                         line=dict(color="#c7c7c7", width=1, dash="dot"))]
    for mode, name, style in (("dense", "dense INL", dict(color="#8c8c8c", width=2)),
                              ("spt", "shortest-path tree (D-INL)", dict(color="#ff7f0e", width=6))):
        edges = _graph_edges(data, mode)
        if edges is not None:
            xs, ys = _segments(edges, pos)
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=f"{name} ({len(edges)} links)",
                                     hoverinfo="skip", line=style, opacity=0.9 if mode == "spt" else 1.0))
    mid = [((pos[str(e["u"])][0] + pos[str(e["v"])][0]) / 2, (pos[str(e["u"])][1] + pos[str(e["v"])][1]) / 2)
           for e in links]
    traces.append(go.Scatter(
        x=[m[0] for m in mid], y=[m[1] for m in mid], mode="text", name="capacity (Mb/s)",
        text=[f"{e['capacity_bps'] / 1e6:.0f}" for e in links], textfont=dict(size=9, color="#555"),
        hovertext=[f"link {e['u']}–{e['v']}: {e['capacity_bps'] / 1e6:.1f} Mb/s, {e['latency_s'] * 1e3:.2f} ms"
                   for e in links], hoverinfo="text"))
    return traces + _node_traces(go, data.network, pos, legend=True)


def _bytes_panel(go: Any, per_link: Mapping[tuple[str, str], Mapping[str, float]], pos: Mapping,
                 top: float, method: str, colourbar: bool) -> list:
    import plotly.colors as pc
    unit, size = _byte_unit(top)
    traces = []
    keys = [k for k in per_link if k[0] in pos and k[1] in pos]
    totals = [sum(per_link[k].values()) for k in keys]
    for (u, v), total in zip(keys, totals):
        frac = total / top if top else 0.0
        traces.append(go.Scatter(x=[pos[u][0], pos[v][0]], y=[pos[u][1], pos[v][1]], mode="lines",
                                 showlegend=False, hoverinfo="skip", name=f"{method}: {u}->{v}",
                                 line=dict(color=pc.sample_colorscale("Viridis", [frac])[0], width=1.5 + 5 * frac)))
    traces.append(go.Scatter(
        x=[(pos[u][0] + pos[v][0]) / 2 for u, v in keys], y=[(pos[u][1] + pos[v][1]) / 2 for u, v in keys],
        mode="markers", name=f"{method}: bytes per link", showlegend=False,
        marker=dict(size=7, color=[t / size for t in totals], colorscale="Viridis", cmin=0, cmax=top / size,
                    showscale=colourbar, colorbar=dict(title=f"{unit} per link", len=0.5, y=1, yanchor="top")),
        text=[f"{u}→{v}: " + ", ".join(f"{d} {b / size:.3f} {unit}" for d, b in per_link[(u, v)].items()
                                      if b or d in ("forward", "backward")) for u, v in keys],
        hovertemplate="%{text}<extra>" + html.escape(method) + "</extra>"))
    return traces


def topology_figure(data: ReportData) -> Any:
    """Panel 1: the network (capacities), dense INL graph and shortest-path tree over it;
    one panel per method: its training links coloured and sized by bytes exchanged."""
    go = _plotly()
    from plotly.subplots import make_subplots
    pos = node_positions(data.network)
    n = 1 + len(data.methods)
    cols = 2 if n == 4 else min(3, n)
    rows = math.ceil(n / cols)
    titles = ["network: dense INL and the shortest-path tree"] + [f"{m}: bytes per link" for m in data.methods]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03,
                        vertical_spacing=0.08 / rows)
    for trace in _tree_panel(go, data, pos):
        fig.add_trace(trace, row=1, col=1)
    per = link_bytes(data)
    top = max((sum(c.values()) for links in per.values() for c in links.values()), default=0.0)
    for i, method in enumerate(data.methods, start=1):
        for trace in _bytes_panel(go, per[method], pos, top, method, colourbar=i == 1):
            fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
        for trace in _node_traces(go, data.network, pos, legend=False):
            fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False, range=_padded([x for x, _ in pos.values()]))
    fig.update_yaxes(visible=False, range=_padded([y for _, y in pos.values()]))
    fig.update_layout(height=420 * rows, legend=dict(orientation="h", y=-0.02, yanchor="top"))
    return fig


def _band_traces(go: Any, x: list, stats: list[tuple[float, float]], name: str, i: int, legend: bool) -> list:
    mean = [m for m, _ in stats]
    upper = [m + s for m, s in stats]
    lower = [m - s for m, s in stats]
    common = dict(x=x, legendgroup=name, showlegend=False, hoverinfo="skip", mode="lines", line=dict(width=0))
    return [go.Scatter(y=upper, name=f"{name} +1 std", **common),
            go.Scatter(y=lower, name=f"{name} -1 std", fill="tonexty", fillcolor=_colour(i, 0.2), **common),
            go.Scatter(x=x, y=mean, name=name, legendgroup=name, showlegend=legend, mode="lines+markers",
                       line=dict(color=_colour(i))),
            ]


def learning_curves_figure(data: ReportData) -> Any:
    """Test accuracy and test loss per epoch: mean line and ±1 std band over seeds."""
    go = _plotly()
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy", "test loss"))
    for i, method in enumerate(data.methods):
        histories = [run["history"] for run in data.runs[method]]
        epochs = sorted({row["epoch"] for h in histories for row in h})
        for col, key in ((1, "test_accuracy"), (2, "test_loss")):
            stats = [mean_std([row.get(key) for h in histories for row in h if row["epoch"] == e]) for e in epochs]
            for trace in _band_traces(go, [e + 1 for e in epochs], stats, method, i, legend=col == 1):
                fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(height=420, hovermode="x unified")
    return fig


def exchange_figure(data: ReportData) -> Any:
    """Forward and backward training bytes per method (mean ± std), then per link."""
    go = _plotly()
    from plotly.subplots import make_subplots
    rows = {r["method"]: r for r in data.rows}
    per = link_bytes(data)
    unit, size = _byte_unit(max((rows[m]["exchange_bytes_mean"] or 0) for m in data.methods))
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7],
                        subplot_titles=("training exchange per method", "per link: every direction"))
    for direction, colour in (("forward", "#1f77b4"), ("backward", "#ff7f0e"), ("parameters", "#2ca02c"),
                              ("raw_data", "#9467bd")):  # the last two: federated and centralised paradigms
        key = f"exchange_bytes_{direction}"
        means = [(rows[m].get(f"{key}_mean") or 0) / size for m in data.methods]
        if direction in ("parameters", "raw_data") and not any(means):
            continue  # INL-only studies: no bar for directions nobody used
        fig.add_trace(go.Bar(x=list(data.methods), y=means,
                             error_y=dict(array=[(rows[m].get(f"{key}_std") or 0) / size for m in data.methods]),
                             name=direction, marker_color=colour), row=1, col=1)
    links = sorted({k for links in per.values() for k in links}, key=lambda k: (k[1], k[0]))
    link_unit, link_size = _byte_unit(max((sum(c.values()) for p in per.values() for c in p.values()), default=0))
    for i, method in enumerate(data.methods):
        fig.add_trace(go.Bar(x=[f"{u}→{v}" for u, v in links], name=f"{method} (per link)", marker_color=_colour(i),
                             y=[sum(per[method].get(k, {}).values()) / link_size for k in links]), row=1, col=2)
    fig.update_yaxes(title_text=f"{unit}", row=1, col=1)
    fig.update_yaxes(title_text=f"{link_unit}", row=1, col=2)
    fig.update_xaxes(title_text="link (child → parent)", type="category", row=1, col=2)
    fig.update_layout(height=440, barmode="group")
    return fig


def rate_accuracy_figure(data: ReportData) -> Any:
    """Estimated latent rate vs accuracy per method (mean ± std, faint dots per seed);
    methods without a gate as accuracy lines; the sweep's curve when the folder has one."""
    go = _plotly()
    fig = go.Figure()
    rows = {r["method"]: r for r in data.rows}
    rated = [m for m in data.methods if rows[m].get("rate_bits_mean") is not None]
    sweep = [r for r in data.sweep_rows or [] if r.get("rate_bits_mean") is not None]
    x_max = 1.1 * max([rows[m]["rate_bits_mean"] for m in rated] + [r["rate_bits_mean"] for r in sweep] + [1.0])
    if sweep:
        sweep = sorted(sweep, key=lambda r: r["rate_bits_mean"])
        fig.add_trace(go.Scatter(x=[r["rate_bits_mean"] for r in sweep], y=[r["accuracy_mean"] for r in sweep],
                                 mode="lines", name="sweep", text=[r["method"] for r in sweep],
                                 hovertemplate="%{text}: %{x:.3f} bits, accuracy %{y:.4f}<extra>sweep</extra>",
                                 line=dict(color="#444", dash="dash")))
    for i, method in enumerate(data.methods):
        row = rows[method]
        if method not in rated:
            fig.add_trace(go.Scatter(x=[0, x_max], y=[row["accuracy_mean"]] * 2, mode="lines",
                                     name=f"{method} (no gate: rate n/a)", line=dict(color=_colour(i), dash="dot")))
            continue
        seeds = [r["summary"] for r in data.runs[method]]
        fig.add_trace(go.Scatter(x=[s.get("rate_bits") for s in seeds], y=[s.get("accuracy") for s in seeds],
                                 mode="markers", name=f"{method} seeds", legendgroup=method, showlegend=False,
                                 marker=dict(color=_colour(i, 0.35), size=7)))
        fig.add_trace(go.Scatter(x=[row["rate_bits_mean"]], y=[row["accuracy_mean"]], mode="markers",
                                 name=method, legendgroup=method, marker=dict(color=_colour(i), size=13),
                                 error_x=dict(array=[row.get("rate_bits_std") or 0]),
                                 error_y=dict(array=[row.get("accuracy_std") or 0])))
    fig.update_layout(height=440, xaxis_title="estimated rate (bits per sample, sum over active links)",
                      yaxis_title="test accuracy", xaxis_range=[0, x_max])
    return fig


def sim_time_figure(data: ReportData) -> Any:
    """Simulated time per epoch: mean ± std per method, and epoch by epoch."""
    go = _plotly()
    from plotly.subplots import make_subplots
    rows = {r["method"]: r for r in data.rows}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.35, 0.65],
                        subplot_titles=("simulated time per epoch", "epoch by epoch (mean over seeds)"))
    fig.add_trace(go.Bar(x=list(data.methods), y=[rows[m]["sim_time_per_epoch_s_mean"] for m in data.methods],
                         error_y=dict(array=[rows[m]["sim_time_per_epoch_s_std"] or 0 for m in data.methods]),
                         marker_color=[_colour(i) for i in range(len(data.methods))], showlegend=False,
                         name="s per epoch", texttemplate="%{y:.3f} s", textposition="outside"), row=1, col=1)
    for i, method in enumerate(data.methods):
        per_epoch: dict[int, list[float]] = {}
        for run in data.runs[method]:
            previous = 0.0
            for row in sorted(run["history"], key=lambda r: r["epoch"]):
                per_epoch.setdefault(row["epoch"], []).append(row["sim_time_s"] - previous)
                previous = row["sim_time_s"]
        epochs = sorted(per_epoch)
        fig.add_trace(go.Scatter(x=[e + 1 for e in epochs], y=[mean_std(per_epoch[e])[0] for e in epochs],
                                 mode="lines+markers", name=method, line=dict(color=_colour(i))), row=1, col=2)
    fig.update_yaxes(title_text="simulated seconds", rangemode="tozero")
    fig.update_xaxes(title_text="epoch", dtick=1, row=1, col=2)
    fig.update_layout(height=420)
    return fig

"""``show``: a human-readable view of a scenario's topology, roles and both training graphs.

Builds the network and routes it; trains nothing and imports no torch, so that it stays
a setup-time command (about a second at 10,000 nodes).  Lists longer than
:data:`LIST_LIMIT` (sensors, a training graph's edges) are summarised by counts and
degree/depth statistics instead of printed: 80,000 edges help nobody.
"""

from __future__ import annotations

from statistics import fmean
from typing import Iterable, Sequence

from inl_sim.network import build_network
from inl_sim.network.routes import route_hops, sensor_routes
from inl_sim.network.routing import TrainingGraph, build_training_graph
from inl_sim.scenario import Scenario

__all__ = ["LIST_LIMIT", "describe", "nominal_bits_per_value"]

#: at most this many items are listed in full (sensors, edges of a training graph).
LIST_LIMIT = 200


def nominal_bits_per_value(encoding: str, bits: int) -> int:
    """Bits per value that routing's ``payload_over_capacity`` cost assumes."""
    return {"float32": 32, "float16": 16}.get(encoding, bits)


def _spread(name: str, values: Sequence[float]) -> str:
    """``name min/mean/max a/b/c``."""
    return f"{name} min/mean/max {min(values):g}/{fmean(values):.2f}/{max(values):g}"


def _listed(items: Sequence, limit: int) -> str:
    if len(items) <= limit:
        return ", ".join(map(repr, items))
    head = ", ".join(map(repr, items[:5]))
    return f"{head}, ... ({len(items) - 5} more; lists stop at {limit} items)"


def _depths(tg: TrainingGraph) -> Iterable[int]:
    """Fewest hops from each live node to the fusion node over the training graph's links."""
    depth = {tg.fusion: 0}
    for v in reversed(tg.order):  # parents before children
        if v != tg.fusion:
            depth[v] = 1 + min(depth[p] for p in tg.parents[v])
    return depth.values()


def _training_graph_lines(tg: TrainingGraph, limit: int) -> str:
    line = f"{tg.mode}: {tg.n_edges} active directed links, {len(tg.order)} live nodes"
    if tg.n_edges <= limit:
        return line + "; edges (child->parent): " + ", ".join(f"{c}->{p}" for c, p in tg.edges)
    fan_in = [len(tg.children[v]) for v in tg.order]
    fan_out = [len(tg.parents[v]) for v in tg.order if v != tg.fusion]
    leaves = sum(1 for k in fan_in if k == 0)
    return (f"{line}; {leaves} leaves; {_spread('children', fan_in)}; {_spread('parents', fan_out)}; "
            f"{_spread('hops to fusion', list(_depths(tg)))}")


def _routes_line(tree: TrainingGraph, limit: int) -> str:
    """The sensor-to-fusion routes that centralised, FL and SL send over (the tree's paths)."""
    routes = sensor_routes(tree)
    hops = list(route_hops(routes).values())
    line = f"routes of centralised/fl/sl: {sum(hops)} hops over {len(hops)} sensors; {_spread('hops', hops)}"
    if len(routes) <= limit:
        line += "; " + ", ".join("->".join(map(str, path)) for path in routes.values())
    return line


def describe(scenario: Scenario, *, seed: int = 0, limit: int = LIST_LIMIT) -> str:
    """Human-readable view of the topology, roles and both training graphs (``show``).

    Lists longer than ``limit`` are summarised (counts, min/mean/max of degrees and depths).
    """
    sc = scenario
    network = build_network(sc.topology, seed=seed)
    g = network.graph
    caps = [d["capacity_bps"] for _, _, d in g.edges(data=True)]
    lines = [f"scenario {sc.name!r}: topology {network.name!r}, {g.number_of_nodes()} nodes, "
             f"{g.number_of_edges()} links (capacity {min(caps):.3g}..{max(caps):.3g} b/s)",
             f"fusion node: {network.fusion!r}",
             f"sensors ({len(network.sensors)}): {_listed(network.sensors, limit)}"]
    if g.number_of_edges() > limit:
        lines.append(_spread("node degree", [d for _, d in g.degree]))
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    counts = {}
    for mode in ("dense", "spt"):
        tg = build_training_graph(network, mode, cost=sc.routing.cost, payload_bits=payload_bits,
                                  dense_ties=sc.routing.dense_ties)
        counts[mode] = tg.n_edges
        lines.append(_training_graph_lines(tg, limit))
        if mode == "spt":
            lines.append(_routes_line(tg, limit))
    lines.append(f"spt/dense links: {counts['spt']}/{counts['dense']} = {counts['spt'] / counts['dense']:.4f} "
                 f"(exchange reduction {1 - counts['spt'] / counts['dense']:.1%} with equal message widths)")
    lines.append(f"this scenario trains paradigm {sc.paradigm!r} with routing.mode = {sc.routing.mode!r}, "
                 f"cost = {sc.routing.cost!r}")
    return "\n".join(lines)

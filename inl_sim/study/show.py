"""``show``: a human-readable view of a scenario's topology, roles and both training graphs.

Builds the network and routes it; trains nothing and imports no torch.
"""

from __future__ import annotations

from inl_sim.network import build_network
from inl_sim.network.routing import build_training_graph
from inl_sim.scenario import Scenario

__all__ = ["describe", "nominal_bits_per_value"]


def nominal_bits_per_value(encoding: str, bits: int) -> int:
    """Bits per value that routing's ``payload_over_capacity`` cost assumes."""
    return {"float32": 32, "float16": 16}.get(encoding, bits)


def describe(scenario: Scenario, *, seed: int = 0) -> str:
    """Human-readable view of the topology, roles and both training graphs (``show``)."""
    sc = scenario
    network = build_network(sc.topology, seed=seed)
    g = network.graph
    caps = [d["capacity_bps"] for _, _, d in g.edges(data=True)]
    lines = [f"scenario {sc.name!r}: topology {network.name!r}, {g.number_of_nodes()} nodes, "
             f"{g.number_of_edges()} links (capacity {min(caps):.3g}..{max(caps):.3g} b/s)",
             f"fusion node: {network.fusion!r}",
             f"sensors ({len(network.sensors)}): {', '.join(map(repr, network.sensors))}"]
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    counts = {}
    for mode in ("dense", "spt"):
        tg = build_training_graph(network, mode, cost=sc.routing.cost, payload_bits=payload_bits,
                                  dense_ties=sc.routing.dense_ties)
        counts[mode] = tg.n_edges
        lines.append(f"{mode}: {tg.n_edges} active directed links, {len(tg.order)} live nodes; "
                     f"edges (child->parent): " + ", ".join(f"{c}->{p}" for c, p in tg.edges))
    lines.append(f"spt/dense links: {counts['spt']}/{counts['dense']} = {counts['spt'] / counts['dense']:.4f} "
                 f"(exchange reduction {1 - counts['spt'] / counts['dense']:.1%} with equal message widths)")
    lines.append(f"this scenario trains with routing.mode = {sc.routing.mode!r}, cost = {sc.routing.cost!r}")
    return "\n".join(lines)

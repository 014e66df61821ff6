"""Networks: a :class:`~inl_sim.scenario.TopologySpec` -> an undirected graph with roles.

A :class:`Network` is what every later stage consumes: an ``nx.Graph`` whose links carry
``capacity_bps`` (> 0) and ``latency_s`` (>= 0) and whose nodes carry ``flops_per_s``
and a ``role`` (``fusion``, ``sensor`` or ``relay``), plus the fusion node and the
sensors.  The graph's node order is the stable order used to break every tie
downstream, so it is fixed here once: ``0..n-1`` for generated graphs, file order for
files and explicit lists.

Graphs come from four sources: a seeded generator (:data:`GENERATORS`), a file under
``topologies/`` (GraphML or a YAML edge list, read by :mod:`inl_sim.network.topofile` and
re-exported here as :func:`read_topology_file`), a topohub network
(:mod:`inl_sim.network.library`) or explicit ``topology.nodes`` / ``topology.edges``
(parsed by the same code as a YAML file).  ``topology.wireless`` then replaces the links
by those the radio allows (:mod:`inl_sim.network.wireless`) and ``topology.capacity_rule``
fills capacities the source lacks.  Every random choice (the
draw, link attributes, ``k_random`` sensors) derives from one topology seed, each from
its own stream, so changing the capacity distribution does not move the nodes.

Roles are resolved last: ``topology.fusion`` (an id or a rule of :data:`FUSION_RULES`)
else the file's own ``fusion`` else ``most_central``; ``topology.sensors`` else the
file's own ``sensors`` else every non-fusion node.  Rule names win over node ids of
the same spelling, so ``fusion: first`` always means the rule.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import networkx as nx
import numpy as np

from inl_sim.errors import TopologyError
from inl_sim.network.centrality import most_central
from inl_sim.network.gcpause import paused_gc
from inl_sim.network.generators import GENERATORS, generate
from inl_sim.network.library import apply_capacity_rule, is_geographic, read_library
from inl_sim.network.wireless import wireless_links
from inl_sim.scenario import Distribution, SensorSpec, TopologySpec
# File reading/writing lives in topofile; its public names are re-exported here.
from inl_sim.network.topofile import (
    TOPOLOGY_DIR, NodeId, _few, _graph_from_lists, _resolve_file, read_topology_file, shipped_topologies,
    write_topology_file,
)

__all__ = [
    "Network", "GENERATORS", "FUSION_RULES", "TOPOLOGY_DIR", "build_network",
    "read_topology_file", "write_topology_file", "describe_network", "shipped_topologies",
]

log = logging.getLogger(__name__)

# One RNG stream per random quantity: changing one distribution leaves the others alone.
_STREAMS = {"capacity_bps": 1, "latency_s": 2, "flops_per_s": 3, "sensors": 4}


@dataclass(frozen=True)
class Network:
    """A topology with its roles, ready for routing.

    ``graph`` is frozen (no nodes or links can be added); its node order is the stable
    tie-breaking order.  Links carry ``capacity_bps`` and ``latency_s``; nodes carry
    ``flops_per_s``, ``role`` and optionally ``pos`` (x, y) and ``label``.
    ``sensors`` are listed in node order; ``name`` is the file stem, the generator's
    name or ``'explicit'``.
    """

    graph: nx.Graph
    fusion: NodeId
    sensors: tuple[NodeId, ...]
    name: str


# --------------------------------------------------------------------------- values

def _match(graph: nx.Graph, value: object) -> object:
    """``value`` as a node id of ``graph``: GraphML stores ids as text, so '3' may mean 3."""
    if isinstance(value, str) and value not in graph and value.strip().lstrip("-").isdigit():
        return int(value) if int(value) in graph else value
    return value


def _sample(dist: Distribution, size: int, rng: np.random.Generator, key: str) -> list[float]:
    """``size`` draws of ``dist`` in order (constant, uniform, loguniform, choice)."""
    lo, hi = (dist.params + dist.params)[:2]
    if dist.kind == "constant":
        values = np.full(size, dist.params[0])
    elif dist.kind == "uniform":
        values = rng.uniform(lo, hi, size)
    elif dist.kind == "loguniform":
        if lo <= 0:
            raise TopologyError(f"topology.{key}.loguniform: {list(dist.params)} needs low > 0; "
                                "use uniform or a positive lower bound")
        values = np.exp(rng.uniform(math.log(lo), math.log(hi), size))
    elif dist.kind == "choice":
        values = rng.choice(np.asarray(dist.params, dtype=float), size)
    else:
        raise TopologyError(f"topology.{key}: distribution {dist.kind!r} is unknown; "
                            "use a number or {uniform|loguniform|choice: [...]}")
    return [float(x) for x in values]


def _rng(topo_seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([topo_seed, _STREAMS[stream]])


def _fill(graph: nx.Graph, spec: TopologySpec, topo_seed: int) -> None:
    """Give every link/node lacking an attribute a seeded draw (drawn for all, in order,
    so a value does not depend on which other links the file already specified)."""
    edges = list(graph.edges)
    for key, dist in (("capacity_bps", spec.capacity_bps), ("latency_s", spec.latency_s)):
        for (u, v), value in zip(edges, _sample(dist, len(edges), _rng(topo_seed, key), key)):
            graph.edges[u, v].setdefault(key, value)
    flops = _sample(spec.node_flops_per_s, graph.number_of_nodes(), _rng(topo_seed, "flops_per_s"), "node_flops_per_s")
    for v, value in zip(list(graph), flops):
        graph.nodes[v].setdefault("flops_per_s", value)


# --------------------------------------------------------------------------- roles

#: fusion rules: graph -> node; max() keeps the first maximum, i.e. ties go by node order.
FUSION_RULES: dict[str, Callable[[nx.Graph], NodeId]] = {
    "most_central": most_central,
    "max_degree": lambda g: max(g, key=g.degree),
    "first": lambda g: next(iter(g)),
}


def _pick_fusion(graph: nx.Graph, choice: object) -> NodeId:
    if isinstance(choice, str) and choice in FUSION_RULES:
        return FUSION_RULES[choice](graph)
    node = _match(graph, choice)
    if node not in graph:
        raise TopologyError(f"topology.fusion: {choice!r} is not a node of the graph nor a rule; "
                            f"valid ids include {_few(graph)}; rules: {', '.join(FUSION_RULES)}")
    return node


def _take_k(candidates: list, k: int | None, rule: str) -> int:
    if k is None or k < 1:
        raise TopologyError(f"topology.sensors.k: {k!r} must be >= 1 for rule {rule!r}; give the number of sensors")
    if k > len(candidates):
        raise TopologyError(f"topology.sensors.k: {k} is larger than the {len(candidates)} candidate nodes "
                            f"of rule {rule!r}; lower k to at most {len(candidates)}")
    return k


def _sensor_ids(graph: nx.Graph, fusion: NodeId, ids: Sequence) -> list:
    chosen: list = []
    for raw in ids:
        node = _match(graph, raw)
        if node not in graph:
            raise TopologyError(f"topology.sensors: {raw!r} is not a node of the graph; "
                                f"valid ids include {_few(graph)}")
        if node == fusion:
            raise TopologyError(f"topology.sensors: node {node!r} is the fusion node; a sensor must be "
                                "another node: remove it from topology.sensors or choose another topology.fusion")
        if node in chosen:
            raise TopologyError(f"topology.sensors: node {node!r} is listed twice; list each sensor once")
        chosen.append(node)
    return chosen


def _pick_sensors(graph: nx.Graph, fusion: NodeId, spec: SensorSpec, topo_seed: int) -> tuple[NodeId, ...]:
    others = [v for v in graph if v != fusion]
    if spec.rule in ("all", "leaves") and spec.k is not None:
        raise TopologyError(f"topology.sensors.k: {spec.k} has no meaning for rule {spec.rule!r}; "
                            "drop k or use rule k_random or farthest")
    if spec.rule == "ids":
        chosen = _sensor_ids(graph, fusion, spec.ids)
    elif spec.rule == "all":
        chosen = others
    elif spec.rule == "leaves":
        chosen = [v for v in others if graph.degree(v) == 1]
    elif spec.rule == "k_random":
        picks = _rng(topo_seed, "sensors").choice(len(others), _take_k(others, spec.k, spec.rule), replace=False)
        chosen = [others[i] for i in picks]
    elif spec.rule == "farthest":  # reachable nodes only; sorted() is stable, so ties go by node order
        hops = nx.single_source_shortest_path_length(graph, fusion)
        reachable = [v for v in others if v in hops]
        chosen = sorted(reachable, key=lambda v: -hops[v])[:_take_k(reachable, spec.k, spec.rule)]
    else:
        raise TopologyError(f"topology.sensors.rule: {spec.rule!r} is unknown; "
                            "use all, ids, leaves, k_random or farthest")
    if not chosen:
        raise TopologyError(f"topology.sensors: rule {spec.rule!r} selects no sensor on this graph; "
                            "use sensors: all or list the sensor ids")
    rank = {v: i for i, v in enumerate(graph)}
    return tuple(sorted(chosen, key=rank.__getitem__))


def _check_reachable(graph: nx.Graph, fusion: NodeId, sensors: Sequence, fix: str) -> None:
    component = nx.node_connected_component(graph, fusion)
    for s in sensors:
        if s not in component:
            raise TopologyError(f"node {s!r} cannot reach fusion node {fusion!r} (graph has "
                                f"{nx.number_connected_components(graph)} components); {fix}")


# --------------------------------------------------------------------------- public API

def _source(spec: TopologySpec, topo_seed: int, base_dir: Path | None) -> tuple[nx.Graph, dict, str, str]:
    """The raw graph, the file's roles, the network name and the fix for unreachable sensors."""
    if spec.generator:
        fix = f"{GENERATORS.get(spec.generator, (None, 'fix the generator'))[1]} or set topology.ensure_connected: true"
        return generate(spec, topo_seed), {}, spec.generator, fix
    fix = "add a link joining it to the fusion node's component or remove it from topology.sensors"
    if spec.file:
        path = _resolve_file(spec.file, base_dir)
        graph, meta = read_topology_file(path)
        return graph, meta, path.stem, fix
    if spec.library:
        return read_library(spec.library, latency_from_distance=_default_latency(spec)), {}, spec.library, fix
    if spec.edges:
        return _graph_from_lists(spec.nodes, spec.edges, "topology."), {}, "explicit", fix
    raise TopologyError("topology: no source; set topology.generator, topology.file, topology.library "
                        "or topology.nodes/edges")


def _default_latency(spec: TopologySpec) -> bool:
    """True when the scenario left ``latency_s`` at its default: lengths then set latency."""
    return spec.latency_s == TopologySpec().latency_s


def _real_links(graph: nx.Graph, spec: TopologySpec, topo_seed: int, fix: str) -> tuple[nx.Graph, str]:
    """Wireless links from geometry, then the capacity rule (``library``, ``wireless``)."""
    if spec.wireless is not None:
        if spec.library and is_geographic(spec.library):
            raise TopologyError(f"topology.wireless: {spec.library!r} has (longitude, latitude) positions; "
                                "wireless links need planar positions: use a gabriel/* network or a generator")
        graph = wireless_links(graph, spec.wireless)
        if not _default_latency(spec):
            for _, _, data in graph.edges(data=True):
                del data["latency_s"]
        fix = ("raise topology.wireless.tx_power_dbm, lower min_snr_db or area_m, "
               "or give more nodes (the radio reaches too short)")
    if spec.capacity_rule is not None:
        apply_capacity_rule(graph, spec.capacity_rule, _rng(topo_seed, "capacity_bps"))
    return graph, fix


def build_network(spec: TopologySpec, *, seed: int, base_dir: Path | None = None) -> Network:
    """Build the network a scenario describes: graph, link/node attributes and roles.

    Parameters
    ----------
    spec
        The validated topology section of a scenario.
    seed
        The run seed; used for the topology only when ``spec.seed`` is None, so that by
        default a comparison over run seeds varies training, not the network.
    base_dir
        Folder against which a relative ``spec.file`` is resolved first (the scenario
        file's folder); then the current directory, then the shipped ``topologies/``.

    Returns
    -------
    Network
        With a frozen graph in the stable node order.

    Raises
    ------
    TopologyError
        For bad files, bad lists, bad generator parameters, bad roles, too few nodes,
        or a sensor that cannot reach the fusion node; the message names the field,
        the value and the fix.
    """
    with paused_gc():
        return _build_network(spec, seed, base_dir)


def _build_network(spec: TopologySpec, seed: int, base_dir: Path | None) -> Network:
    topo_seed = spec.seed if spec.seed is not None else seed
    if isinstance(topo_seed, bool) or not isinstance(topo_seed, int) or topo_seed < 0:
        raise TopologyError(f"topology.seed: {topo_seed!r} must be an integer >= 0; use e.g. 0")
    graph, meta, name, fix = _source(spec, topo_seed, base_dir)
    graph, fix = _real_links(graph, spec, topo_seed, fix)
    if graph.number_of_nodes() < 2:
        raise TopologyError(f"topology ({name}): graph has {graph.number_of_nodes()} node(s); INL needs a "
                            "fusion node and at least one sensor: give at least 2 nodes and a link")
    if nx.number_of_selfloops(graph):
        u, v = next(iter(nx.selfloop_edges(graph)))
        raise TopologyError(f"topology ({name}): link {u!r}-{v!r} is a self-loop; remove it")
    _fill(graph, spec, topo_seed)
    fusion = _pick_fusion(graph, spec.fusion if spec.fusion is not None else meta.get("fusion", "most_central"))
    sensors = _pick_sensors(graph, fusion, spec.sensors or meta.get("sensors") or SensorSpec("all"), topo_seed)
    _check_reachable(graph, fusion, sensors, fix)
    sensor_set = set(sensors)
    for v in graph:
        graph.nodes[v]["role"] = "fusion" if v == fusion else "sensor" if v in sensor_set else "relay"
    log.debug("built network %s: %d nodes, %d links, fusion %r", name, graph.number_of_nodes(),
              graph.number_of_edges(), fusion)
    return Network(nx.freeze(graph), fusion, sensors, name)


def describe_network(network: Network) -> dict[str, Any]:
    """A flat, JSON-friendly summary of ``network`` (for ``inl-sim show`` and run folders)."""
    graph = network.graph
    degrees = [d for _, d in graph.degree]
    capacity = [d["capacity_bps"] for _, _, d in graph.edges(data=True)] or [math.nan]
    latency = [d["latency_s"] for _, _, d in graph.edges(data=True)] or [math.nan]
    return {
        "name": network.name, "n_nodes": graph.number_of_nodes(), "n_edges": graph.number_of_edges(),
        "fusion": network.fusion, "sensors": list(network.sensors), "n_sensors": len(network.sensors),
        "n_relays": graph.number_of_nodes() - len(network.sensors) - 1,
        "connected": nx.is_connected(graph),
        "degree_min": min(degrees), "degree_mean": sum(degrees) / len(degrees), "degree_max": max(degrees),
        "capacity_bps_min": min(capacity), "capacity_bps_max": max(capacity),
        "latency_s_min": min(latency), "latency_s_max": max(latency),
    }

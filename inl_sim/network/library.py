"""The topology library: 700+ real and reference networks from the ``topohub`` package.

``topology: {library: "sndlib/abilene"}`` loads one network by its topohub key
(``<collection>/<name>``: ``topozoo/Abilene``, ``sndlib/polska``, ``gabriel/25/0``,
``backbone/europe``, ``caida/...``).  topohub ships every network as JSON *inside the
package*, so loading never touches the network (a test blocks sockets to prove it).

Link attributes, in order of precedence:

* **capacity** from the data where a link has one (``capacity_bps``, ``capacity`` or
  ``bandwidth`` in bit/s; topohub 1.5 ships none), else ``topology.capacity_rule``
  (:data:`CAPACITY_RULES`), else ``topology.capacity_bps``;
* **latency** from the link length: topohub's ``dist`` (km; great-circle for the
  geographic collections, planar for ``gabriel``), else the great-circle distance
  between the ends' (longitude, latitude) positions, over propagation at 2/3 of the
  speed of light (light in fibre, refractive index ~1.5): ~5 us per km.  A scenario that
  sets ``topology.latency_s`` to anything but its default overrides this.

Node ids are topohub's integer ids; each node keeps ``label`` (the city or router name)
and ``pos``.  Geographic positions are (longitude, latitude) in degrees.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import logging
import math
import re
from functools import lru_cache
from typing import Any

import networkx as nx
import numpy as np

from inl_sim.errors import TopologyError
from inl_sim.scenario.spec import CapacityRule

__all__ = ["COLLECTIONS", "CAPACITY_RULES", "PROPAGATION_M_PER_S", "library_keys", "read_library",
           "list_library", "format_library_markdown", "great_circle_km", "apply_capacity_rule", "is_geographic"]

log = logging.getLogger(__name__)

COLLECTIONS = ("backbone", "caida", "gabriel", "sndlib", "topozoo")
#: collections whose positions are planar coordinates rather than (longitude, latitude)
PLANAR_COLLECTIONS = ("gabriel",)
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0
#: propagation speed in fibre: 2/3 c (refractive index ~1.5)
PROPAGATION_M_PER_S = 2.0 / 3.0 * SPEED_OF_LIGHT_M_PER_S
EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
_DATA_CAPACITY_KEYS = ("capacity_bps", "capacity", "bandwidth")


def _data_root() -> Any:
    import topohub  # lazily: the library is optional at import time of inl_sim
    return importlib.resources.files(topohub) / "data"


@lru_cache(maxsize=1)
def library_keys() -> tuple[str, ...]:
    """Every topohub key, sorted (walks the package's data folder; no network)."""
    keys: list[str] = []

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".json"):
                keys.append(prefix + entry.name[:-5])

    walk(_data_root(), "")
    return tuple(sorted(keys))


def _load_json(key: str) -> dict:
    if key not in library_keys():
        close = difflib.get_close_matches(key, library_keys(), n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "run `python run.py topologies list --library`"
        raise TopologyError(f"topology.library: {key!r} is not a topohub network; {hint}")
    with (_data_root() / f"{key}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def is_geographic(key: str) -> bool:
    """True when the collection's positions are (longitude, latitude) in degrees."""
    return key.split("/", 1)[0] not in PLANAR_COLLECTIONS


def great_circle_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance on a sphere of the Earth's mean radius (km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _link_km(graph: nx.Graph, u: Any, v: Any, raw: dict, geographic: bool) -> float | None:
    if isinstance(raw.get("dist"), (int, float)):
        return float(raw["dist"])
    pu, pv = graph.nodes[u].get("pos"), graph.nodes[v].get("pos")
    if pu is None or pv is None:
        return None
    if geographic:
        return great_circle_km(pu[0], pu[1], pv[0], pv[1])
    return math.dist(pu, pv)


def read_library(key: str, *, latency_from_distance: bool = True) -> nx.Graph:
    """One topohub network as an undirected graph in topohub's node order.

    Links get ``dist_km`` where a length is known, ``latency_s`` from it (unless
    ``latency_from_distance`` is false) and ``capacity_bps`` where the data has one.
    Parallel links collapse into one (the first); self-loops are dropped.
    """
    data = _load_json(key)
    geographic = is_geographic(key)
    graph = nx.Graph()
    ids = {}
    for node in data["nodes"]:
        nid = int(node["id"]) if str(node["id"]).lstrip("-").isdigit() else node["id"]
        ids[node["id"]] = nid
        attrs: dict[str, Any] = {}
        if node.get("pos") is not None:
            attrs["pos"] = (float(node["pos"][0]), float(node["pos"][1]))
        if node.get("name"):
            attrs["label"] = str(node["name"])
        graph.add_node(nid, **attrs)
    for edge in data["edges"]:
        u, v = ids[edge["source"]], ids[edge["target"]]
        if u == v or graph.has_edge(u, v):
            continue
        attrs = {}
        for name in _DATA_CAPACITY_KEYS:
            if isinstance(edge.get(name), (int, float)) and edge[name] > 0:
                attrs["capacity_bps"] = float(edge[name])
                break
        graph.add_edge(u, v, **attrs)
        km = _link_km(graph, u, v, edge, geographic)
        if km is not None:
            graph.edges[u, v]["dist_km"] = km
            if latency_from_distance:
                graph.edges[u, v]["latency_s"] = km * 1000.0 / PROPAGATION_M_PER_S
    log.debug("library %s: %d nodes, %d links", key, graph.number_of_nodes(), graph.number_of_edges())
    return graph


# --------------------------------------------------------------------------- capacities

#: rule -> (what it computes); parameters live in :class:`~inl_sim.scenario.CapacityRule`
CAPACITY_RULES = {
    "constant": "bps on every link",
    "uniform": "seeded uniform draw in [low_bps, high_bps]",
    "by_degree": "bps * min(degree(u), degree(v)): links between hubs are fatter",
    "by_distance": "bps * min(1, (ref_km / length_km) ** exponent): long links are thinner",
}


def _length_km(graph: nx.Graph, u: Any, v: Any) -> float:
    data = graph.edges[u, v]
    if "dist_km" in data:
        return data["dist_km"]
    pu, pv = graph.nodes[u].get("pos"), graph.nodes[v].get("pos")
    if pu is None or pv is None:
        raise TopologyError(f"topology.capacity_rule: by_distance needs link lengths, but link {u!r}-{v!r} "
                            "has no dist_km and its ends no pos; use rule constant, uniform or by_degree")
    return math.dist(pu, pv)


def apply_capacity_rule(graph: nx.Graph, rule: CapacityRule, rng: np.random.Generator) -> None:
    """Give every link without a ``capacity_bps`` one from ``rule`` (data capacities win).

    The uniform rule draws one value per link in link order, for every link, so a value
    does not depend on which links the data already specified.
    """
    edges = list(graph.edges)
    if rule.rule == "uniform":
        values = rng.uniform(rule.low_bps, rule.high_bps, len(edges)).tolist()
    elif rule.rule == "constant":
        values = [rule.bps] * len(edges)
    elif rule.rule == "by_degree":
        values = [rule.bps * min(graph.degree(u), graph.degree(v)) for u, v in edges]
    elif rule.rule == "by_distance":
        values = [rule.bps * min(1.0, (rule.ref_km / max(_length_km(graph, u, v), 1e-12)) ** rule.exponent)
                  for u, v in edges]
    else:
        raise TopologyError(f"topology.capacity_rule.rule: {rule.rule!r} is unknown; "
                            f"use one of {', '.join(CAPACITY_RULES)}")
    for (u, v), value in zip(edges, values):
        graph.edges[u, v].setdefault("capacity_bps", float(value))


# --------------------------------------------------------------------------- listing

def list_library(match: str | None = None) -> list[dict[str, Any]]:
    """One row per library network (name, nodes, links, positions?, capacities?).

    ``match`` keeps keys containing it (case-insensitive; a regular expression also
    works).  Reads the JSON of each listed network, so narrow with ``match`` when you can.
    """
    pattern = re.compile(re.escape(match) if match and not _is_regex(match) else (match or ""), re.IGNORECASE)
    rows = []
    for key in library_keys():
        if match and not pattern.search(key):
            continue
        data = _load_json(key)
        pairs = {frozenset((e["source"], e["target"])) for e in data["edges"] if e["source"] != e["target"]}
        rows.append({
            "name": key, "nodes": len(data["nodes"]), "links": len(pairs),
            "positions": all(n.get("pos") is not None for n in data["nodes"]),
            "capacities": any(isinstance(e.get(k), (int, float)) for e in data["edges"] for k in _DATA_CAPACITY_KEYS),
            "geographic": is_geographic(key),
        })
    return rows


def _is_regex(text: str) -> bool:
    return any(c in text for c in "^$*+?[](){}|\\")


def format_library_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`list_library` as a Markdown table (for the CLI)."""
    lines = ["| name | nodes | links | positions | capacities |", "|---|---:|---:|---|---|"]
    for r in rows:
        pos = ("lon/lat" if r["geographic"] else "planar") if r["positions"] else "no"
        lines.append(f"| {r['name']} | {r['nodes']} | {r['links']} | {pos} | {'yes' if r['capacities'] else 'no'} |")
    return "\n".join(lines) + "\n"

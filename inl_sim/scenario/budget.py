"""A resource estimate from a scenario's sizes alone, checked before anything is built.

``n_nodes: 1000000`` used to hang in the generator, ``100000`` ran out of memory, and
``epochs: 10**12`` ran (nearly) forever; huge ``n_train`` / ``view_dim`` / ``latent_dim``
ended in allocator tracebacks.  The numbers that decide all of these are in the scenario,
so :func:`estimate` turns them into memory and time with a deliberately simple, documented
model, and :func:`check_budget` refuses a scenario over budget, naming the fields of the
dominant term, before a graph, a tensor or torch itself exists.

Model (N nodes, S sensors, E links, B batch, T = ceil(n_train / B) steps per epoch):

* memory = data ``(n_train + n_test) * S * view_dim * 4 B * 2`` (the views and one copy)
  + parameters ``N * P * 4 B * 4`` (weights, gradients, Adam's two moments), with
  ``P = (view_dim + 2 * latent) * hidden + hidden * latent + latent * n_classes``
  + activations ``B * N * (hidden + 2 * latent) * 4 B * 3``
  + ledger ``epochs * T * 2 * E_active * 64 B`` (one record per crossing, forward and back;
  ``E_active`` = E for ``dense``, N - 1 for the trees ``spt``, ``bfs``, ``random_tree``, ``mst``)
  + graph ``N * 1 KB + E * 0.5 KB`` (networkx dicts);
* time = ``epochs * T * (N * c_node + 2 * E_active * c_transfer)`` + training FLOPs
  ``6 * N * P * n_train * epochs`` at 5 GFLOP/s, with the engine's measured overheads:
  ``reference`` (the 0.1 engine) 626 us per node-step and 40 us per transfer; ``fast``
  (the learning plane) 100 us and 2 us (a 10,000-node D-INL epoch: 15.6 s of CPU for 16
  steps, BENCHMARKS.md).

Calibration, on the shared 2-core machine of this project: the quickstart's topology given
as explicit links (9 nodes, 27 links, 10 epochs of 32 steps) estimates 2.7 s and 2.8 MB;
measured 6.6 s (dense) and 16.5 s (spt) while other jobs loaded both cores.  A 10,000-node
random geometric scenario with the defaults estimates 3.6 GB and 0.9 h, within the default
budget.  It is an order of magnitude, not a promise: the budget exists to stop mistakes of
several orders of magnitude (``epochs: 10**9``).
For a ``topology.file``, N and E are counted from the file (GraphML: its ``<node>`` and
``<edge>`` elements; YAML: read within the YAML limits), cached by path, size and mtime.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.scenario.library import TOPOLOGY_DIR
from inl_sim.scenario.limits import generated_nodes
from inl_sim.scenario.spec import Scenario

__all__ = ["Estimate", "estimate", "check_budget", "physical_memory_bytes"]

NODE_STEP_S = 626e-6        # reference engine, per node-step
TRANSFER_S = 40e-6          # reference engine, per transfer
#: simulation.engine -> (seconds per node-step, seconds per transfer)
ENGINE_COSTS = {"reference": (NODE_STEP_S, TRANSFER_S), "fast": (100e-6, 2e-6)}
#: a faults section times every step with SimPy: about 50 us more per node-step at 5,000
#: nodes (BENCHMARKS.md, "Faults"; 72 us before the programs kept their transfer ids);
#: attempts 1 / (1 - loss)
FAULT_NODE_STEP_S = 50e-6
TREE_MODES = ("spt", "bfs", "random_tree", "mst")
FLOPS_PER_S = 5e9
RECORD_BYTES = 64
EDGES_PER_NODE = 4          # generated graphs: mean degree about 8, so E about 4 N


@dataclass(frozen=True)
class Estimate:
    """Memory (bytes) and time (seconds) of one run, with the terms they are made of."""

    memory_bytes: float
    time_s: float
    memory_terms: dict
    time_terms: dict


def physical_memory_bytes() -> float:
    """Physical RAM of this machine (8 GB when the OS does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8e9


def _graph_size(sc: Scenario) -> tuple[int, int, int]:
    topo = sc.topology
    if topo.generator:
        n = int(min(generated_nodes(topo.generator, topo.params, topo.n_nodes), 1e12))
        e = n * EDGES_PER_NODE
    elif topo.edges:
        ids = {x for edge in topo.edges if isinstance(edge, (list, tuple)) for x in edge[:2]
               if isinstance(x, (int, str))}
        n, e = max(len(topo.nodes), len(ids), 1), len(topo.edges)
    else:
        n, e = _file_graph_size(topo.file)
    sensors = topo.sensors
    s = n - 1
    if sensors is not None and sensors.rule == "ids":
        s = len(sensors.ids)
    elif sensors is not None and sensors.k is not None:
        s = min(sensors.k, n)
    return n, max(s, 1), e


def _file_graph_size(name: str | None) -> tuple[int, int]:
    """(nodes, links) of a topology file, found as ``network`` finds it (absolute, CWD,
    shipped); (1, 1) when it is not found (``network`` then names the missing file)."""
    given = Path(name or "")
    for path in ([given] if given.is_absolute() else [given, TOPOLOGY_DIR / given, TOPOLOGY_DIR / given.name]):
        if path.is_file():
            stat = path.stat()
            return _count_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return 1, 1


@functools.lru_cache(maxsize=64)
def _count_file(path: str, size: int, mtime_ns: int) -> tuple[int, int]:
    from inl_sim.scenario.yamlsafe import LIMITS, load_yaml
    if size > LIMITS.max_bytes:
        return 1, 1  # the reader refuses it, naming the limit
    try:
        text = Path(path).read_text(encoding="utf-8")
        if path.endswith(".graphml"):
            return max(len(re.findall(r"<node\b", text)), 1), max(len(re.findall(r"<edge\b", text)), 1)
        raw = load_yaml(text, path)
    except (OSError, UnicodeError, InlSimError):
        return 1, 1  # the reader reports it properly when the network is built
    edges = raw.get("edges") if isinstance(raw, dict) else None
    if not isinstance(edges, list):
        return 1, 1
    nodes = raw.get("nodes") if isinstance(raw.get("nodes"), list) else []
    ids = {x for edge in edges if isinstance(edge, list) for x in edge[:2] if isinstance(x, (int, str))}
    return max(len(nodes), len(ids), 1), max(len(edges), 1)


def estimate(sc: Scenario) -> Estimate:
    """Estimate the memory and time of one run of ``sc`` (see the module docstring)."""
    n, s, e = _graph_size(sc)
    e = min(e, max(n - 1, 0)) if sc.routing.mode in TREE_MODES else e   # links that carry training traffic
    node_s, transfer_s = ENGINE_COSTS.get(sc.simulation.engine, ENGINE_COSTS["reference"])
    if sc.faults.active:
        node_s, transfer_s = node_s + FAULT_NODE_STEP_S, transfer_s / (1.0 - sc.faults.loss_prob)
    d, m, t = sc.data, sc.model, sc.training
    steps = math.ceil(d.n_train / t.batch_size)
    params = (d.view_dim + 2 * m.latent_dim) * m.hidden_dim + m.hidden_dim * m.latent_dim \
        + m.latent_dim * d.n_classes
    memory = {
        "data (data.n_train + data.n_test) x sensors (topology.n_nodes) x data.view_dim": (d.n_train + d.n_test) * s * d.view_dim * 8.0,
        "parameters topology.n_nodes x (data.view_dim, model.latent_dim, model.hidden_dim)": n * params * 16.0,
        "activations training.batch_size x topology.n_nodes x model.hidden_dim": t.batch_size * n * (
            m.hidden_dim + 2 * m.latent_dim) * 12.0,
        "ledger training.epochs x steps (data.n_train / training.batch_size) x links (topology.n_nodes)":
            t.epochs * steps * 2.0 * e * RECORD_BYTES,
        "graph topology.n_nodes": n * 1024.0 + e * 512.0,
    }
    time = {
        "engine training.epochs x steps (data.n_train / training.batch_size) x topology.n_nodes":
            t.epochs * steps * (n * node_s + 2 * e * transfer_s),
        "compute training.epochs x data.n_train x topology.n_nodes x (model.hidden_dim, data.view_dim)":
            6.0 * n * params * d.n_train * t.epochs / FLOPS_PER_S,
    }
    return Estimate(sum(memory.values()), sum(time.values()), memory, time)


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds:.3g} s"


def check_budget(sc: Scenario) -> Estimate:
    """Raise ScenarioError when ``sc`` is estimated over ``sc.limits`` (unless forced).

    The message names the dominant term's fields, the estimate and the budget, and the
    two ways out: smaller sizes, or ``--force`` / ``limits.force: true``.
    """
    est = estimate(sc)
    if sc.limits.force:
        return est
    ram = physical_memory_bytes()
    budget = sc.limits.memory_fraction * ram
    fix = "lower it, or pass --force (limits.force: true) to run anyway"
    if est.memory_bytes > budget:
        term = max(est.memory_terms, key=est.memory_terms.get)
        raise ScenarioError(f"{term}: estimated memory {_size(est.memory_bytes)} (this term "
                            f"{_size(est.memory_terms[term])}) exceeds the budget {_size(budget)} "
                            f"(limits.memory_fraction {sc.limits.memory_fraction:g} of {_size(ram)} RAM); {fix}")
    if est.time_s > sc.limits.max_hours * 3600:
        term = max(est.time_terms, key=est.time_terms.get)
        raise ScenarioError(f"{term}: estimated run time {_duration(est.time_s)} exceeds the budget "
                            f"limits.max_hours {sc.limits.max_hours:g} h; {fix}")
    return est

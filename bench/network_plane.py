"""The network plane alone at scale, and the ledger's bytes per transfer.

Times :meth:`inl_sim.sim.timing.NetworkPlane.time_inl_epoch` on one synthetic INL epoch
(16 steps of 64 samples, 8 float32 values per sample and message) over a 10,000-node
random geometric network (mean degree about 8): the shortest-path tree (D-INL, ~20,000
transfers per step) and the dense DAG (INL), with the vectorised ``sweep`` and the SimPy
``simpy`` executor side by side (interleaved repeats, medians, and a check that the two
give identical times).  Then fills a :class:`~inl_sim.sim.accounting.Ledger` with the
epoch's columns and reports its bytes per transfer.

The training graphs are built here directly (networkx BFS tree and distance-oriented
dense DAG), not with ``routing.build_training_graph``, so that this measures the plane
and nothing else.

    python bench/network_plane.py                 # 10,000 nodes, 3 repeats
    python bench/network_plane.py --nodes 2000 --repeats 5 --no-simpy
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import networkx as nx
import numpy as np

from inl_sim.network import Network
from inl_sim.network.routing import TrainingGraph
from inl_sim.sim.accounting import Ledger
from inl_sim.sim.timing import EpochTraffic, NetworkPlane

STEPS, BATCH, LATENT = 16, 64, 8


def network_and_graphs(n: int, seed: int = 0) -> tuple[Network, dict[str, TrainingGraph]]:
    """A connected random geometric network and its BFS tree / dense DAG toward node 0."""
    rng = np.random.default_rng(seed)
    radius = math.sqrt(8.0 / (math.pi * n))  # mean degree about 8
    g = nx.random_geometric_graph(n, radius, seed=seed)
    g = g.subgraph(nx.node_connected_component(g, 0)).copy()
    for u, v in g.edges:
        g.edges[u, v].update(capacity_bps=float(rng.uniform(1e6, 1e8)), latency_s=float(rng.uniform(0, 2e-3)))
    for v in g.nodes:
        g.nodes[v]["flops_per_s"] = float(rng.uniform(1e9, 1e10))
    dist = nx.single_source_shortest_path_length(g, 0)
    tree = nx.bfs_predecessors(g, 0)
    key = {v: (dist[v], v) for v in g.nodes}
    order = tuple(sorted(g.nodes, key=key.__getitem__, reverse=True))
    graphs = {"spt": [(c, p) for c, p in tree],
              "dense": [(u, v) if key[u] > key[v] else (v, u) for u, v in g.edges if dist[u] != dist[v]]}
    out = {}
    pos = {v: i for i, v in enumerate(order)}
    for mode, edges in graphs.items():
        edges = sorted(edges, key=lambda e: (pos[e[0]], pos[e[1]]))
        parents: dict = {v: [] for v in order}
        children: dict = {v: [] for v in order}
        for c, p in edges:
            parents[c].append(p)
            children[p].append(c)
        out[mode] = TrainingGraph(mode, 0, order[:-1], order, tuple(edges),
                                  {v: tuple(x) for v, x in parents.items()},
                                  {v: tuple(x) for v, x in children.items()}, {v: float(dist[v]) for v in order})
    return Network(g, 0, order[:-1], "rgg"), out


def epoch_traffic(graph: TrainingGraph) -> EpochTraffic:
    """Every step: one forward message per edge (leaves first), then one backward per edge."""
    index = {v: i for i, v in enumerate(graph.order)}
    child = np.array([index[c] for c, _ in graph.edges], dtype=np.int32)
    parent = np.array([index[p] for _, p in graph.edges], dtype=np.int32)
    e = len(child)
    step = np.repeat(np.arange(STEPS, dtype=np.int32), 2 * e)
    src = np.tile(np.concatenate([child, parent]), STEPS)
    dst = np.tile(np.concatenate([parent, child]), STEPS)
    direction = np.tile(np.repeat(np.array([0, 1], dtype=np.uint8), e), STEPS)
    n_values = np.full(len(step), BATCH * LATENT, dtype=np.int64)
    return EpochTraffic(0, step, src, dst, direction, n_values, 4 * n_values,
                        np.full(STEPS, BATCH, dtype=np.int32))


def time_plane(network: Network, graph: TrainingGraph, traffic: EpochTraffic, executor: str
               ) -> tuple[float, float, float, tuple[np.ndarray, ...]]:
    """(plane construction s, one epoch wall s, one epoch CPU s, the epoch's times).

    CPU time (one thread) is what the epoch cost this process whatever else the shared
    machine was doing; wall time includes waiting for a core.
    """
    flops = {v: 10_000 for v in graph.order}
    t0 = time.perf_counter()
    plane = NetworkPlane(network, graph, flops, executor=executor)
    t1, c1 = time.perf_counter(), time.process_time()
    times = plane.time_inl_epoch(traffic)
    return t1 - t0, time.perf_counter() - t1, time.process_time() - c1, times


def ledger_bytes(graph: TrainingGraph, traffic: EpochTraffic, times: tuple[np.ndarray, ...]) -> dict:
    ledger = Ledger(nodes=graph.order)
    t0 = time.perf_counter()
    ledger.extend_columns(traffic.epoch, traffic.step, traffic.src, traffic.dst, traffic.direction,
                          traffic.n_values, traffic.nbytes, *times)
    append_s = time.perf_counter() - t0
    return {"transfers": len(ledger), "bytes_per_transfer": ledger.bytes_per_transfer(),
            "append_s": append_s, "list_bytes_per_transfer": list_bytes_per_transfer(ledger, 100_000)}


def list_bytes_per_transfer(ledger: Ledger, n: int) -> float:
    """What the 0.1 ledger (a list of Transfer namedtuples) held per transfer (tracemalloc)."""
    import tracemalloc
    table = ledger.records[:n]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rows = list(table)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-simpy", action="store_true", help="time the sweep only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/network_plane.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    network, graphs = network_and_graphs(args.nodes, args.seed)
    result: dict = {"load_average": os.getloadavg(), "nodes": network.graph.number_of_nodes(), "links": network.graph.number_of_edges(),
                    "build_s": time.perf_counter() - t0, "steps": STEPS, "modes": {}}
    executors = ("sweep",) if args.no_simpy else ("sweep", "simpy")
    for mode, graph in graphs.items():
        traffic = epoch_traffic(graph)
        walls: dict[str, list[float]] = {x: [] for x in executors}
        cpus: dict[str, list[float]] = {x: [] for x in executors}
        setups: list[float] = []
        same = True
        for r in range(args.repeats):
            got = {}
            for x in (executors if r % 2 == 0 else executors[::-1]):
                setup_s, wall, cpu, got[x] = time_plane(network, graph, traffic, x)
                walls[x].append(wall)
                cpus[x].append(cpu)
                setups.append(setup_s)
            if "simpy" in got:
                same &= all(np.array_equal(a, b) for a, b in zip(got["sweep"], got["simpy"]))
        row = {"edges": len(graph.edges), "transfers": len(traffic),
               "transfers_per_step": len(traffic) // STEPS,
               "plane_setup_s": statistics.median(setups),
               **{f"{x}_epoch_s": statistics.median(w) for x, w in walls.items()},
               **{f"{x}_epoch_cpu_s": statistics.median(c) for x, c in cpus.items()},
               "ledger": ledger_bytes(graph, traffic, got["sweep"])}
        if "simpy" in walls:
            row["simpy_over_sweep"] = statistics.median(s / w for s, w in zip(walls["simpy"], walls["sweep"]))
            row["simpy_over_sweep_cpu"] = statistics.median(s / w for s, w in zip(cpus["simpy"], cpus["sweep"]))
            row["identical_times"] = bool(same)
        result["modes"][mode] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

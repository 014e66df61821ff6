"""Setup at scale: network + both training graphs, ``show``, and the 0.1 code path beside it.

Usage::

    python bench/bench_setup.py [--sizes 10000,100000] [--repeats 3] [--old-sizes 1000,2000,3000]
    python bench/bench_setup.py --render bench/out/bench_setup.json

Three parts, each printed as Markdown and saved in ``bench_setup.json`` under ``--out``:

* **scale**: ``build_network`` (generate, attributes, fusion, sensors), then
  ``build_training_graph`` dense and spt, on ``scenarios/rgg10k.yaml`` with ``n_nodes``
  overridden and the radius scaled to keep n*pi*r^2 = 8.04 (mean degree ~8), each repeat
  in a fresh child process (one thread) so that its peak RSS is its own; wall and CPU
  seconds, median over repeats.
* **show**: ``python run.py show scenarios/rgg10k.yaml`` as a subprocess, imports included.
* **0.1 vs now**: the 0.1 knn generator (all n^2 distances), 0.1 ``most_central``
  (closeness centrality) and 0.1 routing (Dijkstra paths, O(V*E) assembly), kept below, against today's code on the same k=4 knn graphs, old and new interleaved in
  every repeat (order rotating), medians of the side-by-side ratios; peak memory of the
  generators from tracemalloc (separate, untimed calls).  The 0.1 numbers at 10,000 nodes
  are extrapolated with the exponent fitted between the two largest sizes (the issue
  measured them directly: generator 31 s and 4.8 GB, most_central 124 s, assembly 6-16 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inl_sim.network import Network, build_network  # noqa: E402
from inl_sim.network.centrality import sweep_centre  # noqa: E402
from inl_sim.network.generators import _canonical, _knn  # noqa: E402
from inl_sim.network.routing import build_training_graph  # noqa: E402
from inl_sim.scenario import load_scenario  # noqa: E402

SCENARIO = ROOT / "scenarios" / "rgg10k.yaml"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _clock(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


# --------------------------------------------------------------------------- scale (child processes)

def radius_for(n: int) -> float:
    return round(math.sqrt(8.04 / (math.pi * n)), 5)


def scale_child(n: int) -> dict[str, Any]:
    """One build at ``n`` nodes in this (fresh) process: seconds per phase and peak RSS."""
    sc = load_scenario(SCENARIO, {"topology.n_nodes": n,
                                  "topology.params": {"radius": radius_for(n), "join_components": 1}})
    base_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row: dict[str, Any] = {"n_nodes": n}
    wall, cpu, net = _clock(lambda: build_network(sc.topology, seed=sc.seed))
    row.update(network_s=wall, network_cpu_s=cpu, n_edges=net.graph.number_of_edges())
    for mode in ("dense", "spt"):
        wall, cpu, tg = _clock(lambda: build_training_graph(net, mode, cost=sc.routing.cost,
                                                            payload_bits=256.0, dense_ties=sc.routing.dense_ties))
        row.update({f"{mode}_s": wall, f"{mode}_cpu_s": cpu, f"{mode}_edges": tg.n_edges})
    row["total_s"] = row["network_s"] + row["dense_s"] + row["spt_s"]
    row["total_cpu_s"] = row["network_cpu_s"] + row["dense_cpu_s"] + row["spt_cpu_s"]
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["rss_after_imports_mib"] = base_mib
    return row


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scale(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        runs = [_child(["--scale-child", str(n)]) for _ in range(repeats if n <= 20_000 else max(1, repeats - 1))]
        row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        row["repeats"] = len(runs)
        rows.append(row)
    return rows


def bench_show(repeats: int) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run([sys.executable, "run.py", "show", str(SCENARIO)], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)})
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "repeats": repeats,
            "wall_all_s": walls}


# --------------------------------------------------------------------------- the 0.1 code path, verbatim

def old_knn(n: int, k: int, seed: int) -> nx.Graph:
    points = np.random.default_rng(seed).random((n, 2))  # (n, 2) in the unit square
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)  # (n, n)
    np.fill_diagonal(dist, np.inf)
    graph = nx.Graph(params={"k": k})
    graph.add_nodes_from((i, {"pos": tuple(points[i])}) for i in range(n))
    for i in range(n):
        graph.add_edges_from((i, int(j)) for j in np.argsort(dist[i], kind="stable")[:k])
    return _canonical(graph)


def old_most_central(graph: nx.Graph) -> Any:
    return max(graph, key=nx.closeness_centrality(graph).__getitem__)


def old_routing(network: Network, mode: str) -> tuple:
    """0.1 ``build_training_graph`` (payload_over_capacity, dense_ties drop), its pruning left
    out (every node senses here, nothing is pruned); the Dijkstra paths and the O(V * E)
    parents/children scans are the 0.1 lines."""
    graph, fusion = network.graph, network.fusion
    dist, paths = nx.single_source_dijkstra(graph, fusion, weight=lambda u, v, d: 256.0 / d["capacity_bps"])
    tree = {v: p[-2] for v, p in paths.items() if v != fusion}
    depth = {v: len(p) - 1 for v, p in paths.items()}
    rank = {v: i for i, v in enumerate(graph.nodes)}
    key = {v: (dist[v], depth[v], rank[v]) for v in dist}
    candidate = list(tree.items()) if mode == "spt" else [
        (c, p) for c, p in (((u, v) if key[u] > key[v] else (v, u)) for u, v in graph.edges)
        if dist[c] != dist[p] or tree.get(c) == p]
    live = set(network.sensors) | {fusion}  # every node senses here: nothing to prune
    order = tuple(sorted(live, key=key.__getitem__, reverse=True))
    position = {v: i for i, v in enumerate(order)}
    edges = tuple(sorted(candidate, key=lambda e: (position[e[0]], position[e[1]])))
    parents = {v: tuple(p for c, p in edges if c == v) for v in order}
    children = {v: tuple(c for c, p in edges if p == v) for v in order}
    return edges, parents, children


def new_routing(network: Network, mode: str) -> tuple:
    tg = build_training_graph(network, mode, payload_bits=256.0)
    return tg.edges, dict(tg.parents), dict(tg.children)


def _peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def bench_old(sizes: list[int], repeats: int, k: int = 4) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        sc = load_scenario(SCENARIO, {"topology.generator": "knn", "topology.n_nodes": n,
                                      "topology.params": {"k": k},
                                      "topology.fusion": "first"})
        net = build_network(sc.topology, seed=0)
        graph = net.graph
        assert list(old_knn(n, k, 0).edges) == list(_knn(n, {"k": k}, 0).edges)
        assert all(old_routing(net, m) == new_routing(net, m) for m in ("dense", "spt"))
        pairs = {"generator": (lambda: old_knn(n, k, 0), lambda: _knn(n, {"k": k}, 0)),
                 "most_central": (lambda: old_most_central(graph), lambda: sweep_centre(graph)),
                 "routing": (lambda: [old_routing(net, m) for m in ("dense", "spt")],
                             lambda: [new_routing(net, m) for m in ("dense", "spt")])}
        row: dict[str, Any] = {"n_nodes": n, "n_edges": graph.number_of_edges()}
        for name, (old, new) in pairs.items():
            olds, news, ratios = [], [], []
            for r in range(repeats):
                first, second = (old, new) if r % 2 == 0 else (new, old)
                t1, t2 = _clock(first)[0], _clock(second)[0]
                t_old, t_new = (t1, t2) if r % 2 == 0 else (t2, t1)
                olds.append(t_old), news.append(t_new), ratios.append(t_old / t_new)
            row.update({f"{name}_old_s": statistics.median(olds), f"{name}_new_s": statistics.median(news),
                        f"{name}_ratio": statistics.median(ratios)})
        row["generator_old_mib"] = _peak_mib(pairs["generator"][0])
        row["generator_new_mib"] = _peak_mib(pairs["generator"][1])
        closeness = nx.closeness_centrality(graph)
        row["sweep_closeness_ratio"] = closeness[sweep_centre(graph)] / max(closeness.values())
        rows.append(row)
    return rows


def extrapolate(rows: list[dict[str, Any]], key: str, n: int = 10_000) -> tuple[float, float]:
    """(exponent fitted between the two largest sizes, value extrapolated to ``n``)."""
    a, b = rows[-2], rows[-1]
    exponent = math.log(b[key] / a[key]) / math.log(b["n_nodes"] / a["n_nodes"])
    return exponent, b[key] * (n / b["n_nodes"]) ** exponent


# --------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "networkx": nx.__version__, "numpy": np.__version__,
            "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "platform": platform.platform()}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [f"Machine: {m['cpus']} CPUs, Python {m['python']}, networkx {m['networkx']}, numpy {m['numpy']}; "
           f"load average at the end {', '.join(f'{x:.1f}' for x in m['load_avg'])}.", "",
           "| nodes | links | network s (CPU) | dense s (CPU) | spt s (CPU) | total s (CPU) | peak RSS MiB |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["scale"]:
        out.append(f"| {r['n_nodes']:,.0f} | {r['n_edges']:,.0f} | {r['network_s']:.2f} ({r['network_cpu_s']:.2f}) | "
                   f"{r['dense_s']:.2f} ({r['dense_cpu_s']:.2f}) | {r['spt_s']:.2f} ({r['spt_cpu_s']:.2f}) | "
                   f"**{r['total_s']:.2f}** ({r['total_cpu_s']:.2f}) | {r['peak_rss_mib']:.0f} "
                   f"({r['rss_after_imports_mib']:.0f} after imports) |")
    s = result["show"]
    out += ["", f"`python run.py show scenarios/rgg10k.yaml` (imports included): **{s['wall_s']:.2f} s** wall, "
                f"{s['cpu_s']:.2f} s CPU (median of {s['repeats']})."]
    if result.get("old"):
        out += ["", "| nodes (knn k=4) | generator 0.1 / now s | peak MiB 0.1 / now | most_central 0.1 (closeness) "
                    "/ now (sweeps) s | routing dense+spt 0.1 / now s | sweep centre closeness / max |",
                "|---:|---:|---:|---:|---:|---:|"]
        for r in result["old"]:
            out.append(f"| {r['n_nodes']:,} | {r['generator_old_s']:.2f} / {r['generator_new_s']:.3f} "
                       f"({r['generator_ratio']:.0f}x) | {r['generator_old_mib']:.0f} / {r['generator_new_mib']:.1f} | "
                       f"{r['most_central_old_s']:.2f} / {r['most_central_new_s']:.3f} ({r['most_central_ratio']:.0f}x) | "
                       f"{r['routing_old_s']:.2f} / {r['routing_new_s']:.3f} ({r['routing_ratio']:.0f}x) | "
                       f"{r['sweep_closeness_ratio']:.3f} |")
        ext = [f"{name}: exponent {e:.2f}, {v:.3g} {unit}" for name, key, unit in
               (("generator", "generator_old_s", "s"), ("generator memory", "generator_old_mib", "MiB"),
                ("most_central", "most_central_old_s", "s"), ("routing", "routing_old_s", "s"))
               for e, v in [extrapolate(result["old"], key)]]
        out += ["", "0.1 extrapolated to 10,000 nodes (fit between the two largest sizes): " + "; ".join(ext) + "."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--old-sizes", default="1000,2000,3000", help="'' to skip the 0.1 comparison")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--render", metavar="JSON")
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scale_child:
        print(json.dumps(scale_child(args.scale_child)))
        return
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return
    result: dict[str, Any] = {
        "scale": bench_scale([int(x) for x in args.sizes.split(",")], args.repeats),
        "show": bench_show(max(3, args.repeats)),
        "old": bench_old([int(x) for x in args.old_sizes.split(",") if x], args.repeats),
    }
    result["machine"] = machine()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_setup.json").write_text(json.dumps(result, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()

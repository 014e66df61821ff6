"""Federated learning in inl-sim against the same local training as a plain PyTorch loop.

Usage::

    python bench/bench_paradigms.py [--repeats 5] [--rounds 10] [--out bench/out]

``inl_sim.run`` with ``paradigm: fl`` on ``scenarios/paradigms.yaml`` (8 clients on the
9-node mesh, 2,048 samples each, batch 64, 1 local epoch per round) does per round:
every client's local training, FedAvg, the parameters' transfers over every hop timed
by the network plane and written to the ledger, and a test evaluation (both the
per-client and the late-fusion accuracy).  The floor is the plainest loop doing the
same local training: the same model, the same per-client batches, a fresh Adam per
client and round, and the weighted average; no network, no ledger, no evaluation.  The
two alternate inside every repeat (order rotating); the ratio is the median of the
per-repeat ratios of wall time per round.  Flower 1.41's ``run_simulation`` took 12x its
plain loop on a similar task (issue #10).  Prints Markdown; writes ``bench_paradigms.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import inl_sim  # noqa: E402
from inl_sim.learning.data import make_dataset  # noqa: E402
from inl_sim.learning.paradigms.models import ViewNet, seeded  # noqa: E402
from inl_sim.network import build_network  # noqa: E402
from inl_sim.study.paradigms import _model_seed  # noqa: E402

SCENARIO = ROOT / "scenarios" / "paradigms.yaml"


def plain_fedavg(sc: inl_sim.scenario.Scenario, seed: int, rounds: int) -> tuple[float, float, torch.Tensor]:
    """FedAvg as one plain loop: per round, per client, a fresh Adam over one local epoch."""
    network = build_network(sc.topology, seed=seed)
    data = make_dataset(sc.data, network.sensors, seed=seed)
    views = [data.train_views[s] for s in network.sensors]
    y = data.train_labels
    net = seeded(_model_seed(seed), lambda: ViewNet(views[0].shape[1], sc.model.latent_dim, sc.model.hidden_dim,
                                                    data.n_classes))
    global_vec = parameters_to_vector(net.parameters()).detach().clone()
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(rounds):
        vectors = []
        for k, x in enumerate(views):
            vector_to_parameters(global_vec, net.parameters())
            opt = torch.optim.Adam(net.parameters(), lr=sc.training.lr)
            gen = torch.Generator().manual_seed((seed * 1_000_003 + r * 7_919 + k) % (2 ** 63 - 1))
            for idx in torch.randperm(len(y), generator=gen).split(sc.training.batch_size):
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            vectors.append(parameters_to_vector(net.parameters()).detach().clone())
        global_vec = torch.stack(vectors).mean(0)
    return (time.perf_counter() - t0) / rounds, (time.process_time() - c0) / rounds, global_vec


def simulated_fedavg(sc: inl_sim.scenario.Scenario, seed: int, rounds: int) -> tuple[float, float, inl_sim.RunResult]:
    """The whole ``inl_sim.run`` (setup, rounds, evaluation, inference cost) per round: wall and CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = inl_sim.run(sc, seed)
    return (time.perf_counter() - t0) / rounds, (time.process_time() - c0) / rounds, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = inl_sim.load_scenario(SCENARIO, {"paradigm": "fl", "fl.rounds": args.rounds})
    rows = []
    simulated_fedavg(sc, 0, args.rounds), plain_fedavg(sc, 0, args.rounds)   # warm-up, untimed
    for rep in range(args.repeats):
        order = ("sim", "plain") if rep % 2 == 0 else ("plain", "sim")
        got = {}
        for which in order:
            got[which] = simulated_fedavg(sc, 0, args.rounds) if which == "sim" else plain_fedavg(sc, 0, args.rounds)
        sim_s, sim_cpu, res = got["sim"]
        plain_s, plain_cpu, _ = got["plain"]
        rows.append({"repeat": rep, "sim_s_per_round": sim_s, "plain_s_per_round": plain_s,
                     "ratio": sim_s / plain_s, "cpu_ratio": sim_cpu / plain_cpu,
                     "accuracy": res.accuracy, "parameters_bytes": res.exchange_bytes,
                     "n_transfers": len(res.transfers)})
    ratio = statistics.median(r["ratio"] for r in rows)
    cpu_ratio = statistics.median(r["cpu_ratio"] for r in rows)
    print("| repeat | inl-sim s/round | plain loop s/round | wall ratio | CPU ratio |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['repeat']} | {r['sim_s_per_round']:.4f} | {r['plain_s_per_round']:.4f} | {r['ratio']:.3f} "
              f"| {r['cpu_ratio']:.3f} |")
    print(f"\nmedian inl-sim / plain loop: wall **{ratio:.3f}**, CPU **{cpu_ratio:.3f}** "
          "(target <= 1.2; Flower 1.41: 12x)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_paradigms.json").write_text(json.dumps(
        {"rows": rows, "median_ratio": ratio, "median_cpu_ratio": cpu_ratio, "rounds": args.rounds, "python": platform.python_version(),
         "torch": torch.__version__, "machine": platform.machine()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

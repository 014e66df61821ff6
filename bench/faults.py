"""What faults cost in wall time: the fault path of the network plane against the fault-free one.

Runs the shipped ``faults`` scenario (mesh9, 8 epochs of 16 steps, D-INL) for one seed
with no faults (the vectorised fault-free planes), with an inert fault (a straggler
factor of 1: the same learning, timed step by step by the fault path), with loss
p = 0.2 (retransmission records) and with the tree-link failure under ``deadline`` and
``repair``.  Interleaved repeats, medians; ratios to the fault-free run.

    python bench/faults.py                 # 5 repeats
    python bench/faults.py --repeats 3 --seed 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from inl_sim.scenario import load_scenario
from inl_sim.study.experiment import run

CLEAN = {"faults.events": [], "faults.policy": "wait", "faults.deadline_s": None}
VARIANTS = {
    "fault-free": CLEAN,
    "inert (straggler x1)": {**CLEAN, "faults.stragglers": {"kind": "fixed", "factors": {1: 1.0}}},
    "loss p=0.2": {**CLEAN, "faults.loss_prob": 0.2},
    "link fails, deadline": {},
    "link fails, repair": {"faults.policy": "repair", "faults.deadline_s": None},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    transfers: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, overrides in VARIANTS.items():
            sc = load_scenario("faults", overrides)
            t0 = time.perf_counter()
            result = run(sc, args.seed)
            times[name].append(time.perf_counter() - t0)
            transfers[name] = len(result.transfers)
    base = statistics.median(times["fault-free"])
    rows = [{"variant": k, "median_s": statistics.median(v), "ratio": statistics.median(v) / base,
             "transfers": transfers[k]} for k, v in times.items()]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

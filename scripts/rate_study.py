"""Rates that mean bytes: the "rate -45.7 %" claim of scenarios/dinl_paper.yaml, re-measured.

Per seed, paired: D-INL (beta = 0) against D-INL + finite-rate (beta of the scenario),
with every rate estimator side by side and the forward bytes of three wire formats
(float32, entropy_coded at a fixed step, dithered).  Usage:

    python scripts/rate_study.py [--seeds 5] [--epochs 10] [--out rate_study.json]

Prints a Markdown table (the README's "Rates that mean bytes" section).
"""

from __future__ import annotations

import argparse
import json
import statistics

from inl_sim.scenario import load_scenario
from inl_sim.study.experiment import run

ESTIMATORS = ("kl_standard_normal", "kl_standard_normal_mu_term", "kl_learned_prior",
              "aggregate_posterior_upper", "aggregate_posterior_lower")
ENCODINGS = ("float32", "entropy_coded", "dithered")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default="rate_study.json")
    ap.add_argument("--encodings", default=",".join(ENCODINGS), help="comma-separated subset of " + ",".join(ENCODINGS))
    ap.add_argument("--merge", default=None, help="an earlier --out whose rows of other encodings are kept")
    args = ap.parse_args()
    encodings = tuple(args.encodings.split(","))
    base = load_scenario("scenarios/dinl_paper.yaml", {"training.epochs": args.epochs})
    beta = dict(base.compare.methods[2].set)["gate.beta"]
    rows = []
    for seed in range(args.seeds):
        for enc in encodings:
            for b in (0.0, beta):
                sc = load_scenario(base, {"routing.mode": "spt", "gate.beta": b, "message.encoding": enc})
                s = run(sc, seed).summary()
                rows.append({"seed": seed, "encoding": enc, "beta": b, **{k: s[k] for k in (
                    "accuracy", "accuracy_sampled", "exchange_bytes_forward", "rate_prior_nbytes",
                    *[f"rate_bits_{e}" for e in ESTIMATORS])}})
                print(json.dumps(rows[-1]), flush=True)
    if args.merge:
        with open(args.merge, encoding="utf-8") as fh:
            rows = [r for r in json.load(fh)["rows"] if r["encoding"] not in encodings] + rows
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"beta": beta, "epochs": args.epochs, "rows": rows}, fh, indent=1)
    print(table(rows, beta))


def table(rows: list[dict], beta: float) -> str:
    """Per seed: 1 - regularised / unregularised, for every estimator and wire format."""
    def get(seed, enc, b, key):
        return next(r[key] for r in rows if r["seed"] == seed and r["encoding"] == enc and r["beta"] == b)
    seeds = sorted({r["seed"] for r in rows})
    cols = [("KL to N(0,I)", "float32", "rate_bits_kl_standard_normal"),
            ("its 1/2 mu^2 share (beta=0)", None, None),
            ("KL to learned prior", "float32", "rate_bits_kl_learned_prior"),
            ("minibatch upper", "float32", "rate_bits_aggregate_posterior_upper"),
            ("minibatch lower", "float32", "rate_bits_aggregate_posterior_lower"),
            ("entropy_coded fwd bytes", "entropy_coded", "exchange_bytes_forward"),
            ("dithered fwd bytes", "dithered", "exchange_bytes_forward"),
            ("KL to learned prior (dithered runs)", "dithered", "rate_bits_kl_learned_prior")]
    lines = ["| seed | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    per_col = {c[0]: [] for c in cols}
    for s in seeds:
        cells = []
        for name, enc, key in cols:
            if enc is None:
                v = get(s, "float32", 0.0, "rate_bits_kl_standard_normal_mu_term") / get(
                    s, "float32", 0.0, "rate_bits_kl_standard_normal")
                cells.append(f"{v:.1%}")
            else:
                v = 1 - get(s, enc, beta, key) / get(s, enc, 0.0, key)
                cells.append(f"{-v:+.1%}")
            per_col[name].append(v)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    mean = [statistics.mean(per_col[c[0]]) for c in cols]
    sd = [statistics.stdev(per_col[c[0]]) if len(seeds) > 1 else 0.0 for c in cols]
    lines.append("| mean ± sd | " + " | ".join(
        (f"{m:.1%} ± {d:.1%}" if c[1] is None else f"{-m:+.1%} ± {d:.1%}") for c, m, d in zip(cols, mean, sd)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

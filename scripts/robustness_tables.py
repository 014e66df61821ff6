"""Markdown tables for README "Robustness of the D-INL claims", from results folders only.

Usage::

    python scripts/robustness_tables.py COMPARE_DIR [SURVEY_DIR ...]

COMPARE_DIR is the output of ``python run.py compare scenarios/dinl_paper.yaml``;
each SURVEY_DIR one of ``python run.py topologies compare scenarios/dinl_paper.yaml``.
Every number comes from ``comparison.json`` / ``survey.json`` and the per-run
``summary.json`` files (paired statistics recomputed with inl_sim.study.statistics for
seed subsets and per-seed rate reductions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from inl_sim.study.statistics import paired_difference


def _p(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2g}"


def _ci(row: dict, metric: str, fmt: str = "{:+.4f}") -> str:
    lo, hi, mean = (row.get(f"paired_{metric}_{k}") for k in ("ci_low", "ci_high", "mean"))
    if mean is None:
        return "—"
    return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None else fmt.format(mean)


def _yn(v: object) -> str:
    return "—" if v is None else ("yes" if v else "no")


def _summaries(folder: Path) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for path in folder.glob("*/seed*/summary.json"):
        s = json.loads(path.read_text())
        out.setdefault(s["method"], {})[s["seed"]] = s
    return out


def compare_table(folder: Path) -> str:
    data = json.loads((folder / "comparison.json").read_text())
    lines = ["| method | links | width | accuracy | Δ accuracy vs dense, paired [95 % CI] | lower on | p (t / Wilcoxon) "
             "| within 1 std / CI ∋ 0 | exchange (MB) | vs dense | gen. gap | Δ gap paired [95 % CI] | sim time/epoch (s) |",
             "|" + "---|" * 13]
    for r in data["rows"]:
        n = r.get("paired_accuracy_n")
        lower = f"{r['paired_accuracy_n_lower']}/{n}" if n else "—"
        verdicts = f"{_yn(r.get('accuracy_within_1std'))} / {_yn(r.get('accuracy_ci_contains_0'))}" if n else "reference"
        vs_dense = f"{-r['exchange_reduction']:+.1%}" if n else "—"
        lines.append(
            f"| {r['method']} | {r['n_active_edges']} | {r['latent_dim']} | {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} "
            f"| {_ci(r, 'accuracy')} | {lower} | {_p(r.get('paired_accuracy_t_p'))} / {_p(r.get('paired_accuracy_wilcoxon_p'))} "
            f"| {verdicts} | {r['exchange_bytes_mean'] / 1e6:.2f} | {vs_dense} "
            f"| {r['generalisation_gap_mean']:.4f} ± {r['generalisation_gap_std']:.4f} | {_ci(r, 'generalisation_gap')} "
            f"| {r['sim_time_per_epoch_s_mean']:.3f} |")
    return "\n".join(lines) + "\n"


def rate_lines(folder: Path, method: str = "D-INL + finite-rate", reference: str = "D-INL") -> str:
    runs = _summaries(folder)
    a, b = runs[method], runs[reference]
    per_seed = {s: 1 - a[s]["rate_bits"] / b[s]["rate_bits"] for s in sorted(set(a) & set(b))}
    d = paired_difference({s: a[s]["rate_bits"] for s in a}, {s: b[s]["rate_bits"] for s in b})
    acc = paired_difference({s: a[s]["accuracy"] for s in a}, {s: b[s]["accuracy"] for s in b})
    return (f"rate (KL to N(0, I), bits/sample) {method} - {reference}: {d['mean']:+.0f} "
            f"[{d['ci_low']:+.0f}, {d['ci_high']:+.0f}], t p {_p(d['t_p'])}, Wilcoxon p {_p(d['wilcoxon_p'])}; "
            f"per-seed reduction {min(per_seed.values()):.1%} .. {max(per_seed.values()):.1%} "
            f"(mean {sum(per_seed.values()) / len(per_seed):.1%}); accuracy {acc['mean']:+.4f} "
            f"[{acc['ci_low']:+.4f}, {acc['ci_high']:+.4f}]\n")


def subset_line(folder: Path, seeds: list[int], method: str = "D-INL", reference: str = "dense INL") -> str:
    runs = _summaries(folder)
    a = {s: runs[method][s]["accuracy"] for s in seeds}
    b = {s: runs[reference][s]["accuracy"] for s in seeds}
    d = paired_difference(a, b)
    return (f"seeds {seeds[0]}..{seeds[-1]} only: {method} - {reference} accuracy {d['mean']:+.4f} "
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], lower on {d['n_lower']}/{d['n']}, t p {_p(d['t_p'])}, "
            f"Wilcoxon p {_p(d['wilcoxon_p'])}\n")


def survey_table(folders: list[Path], compare_folder: Path | None) -> str:
    lines = ["| topology | nodes | dense links | tree links | exchange vs dense | accuracy dense | accuracy D-INL "
             "| Δ paired [95 % CI] | p (t / Wilcoxon) | within 1 std | paired CI ∋ 0 | paired verdict |",
             "|" + "---|" * 12]
    rows = []
    if compare_folder is not None:
        data = json.loads((compare_folder / "comparison.json").read_text())
        by = {r["method"]: r for r in data["rows"]}
        d, t = by["dense INL"], by["D-INL"]
        rows.append({"topology": "mesh9 (dinl_paper)", "n_nodes": 9, "dense_edges": d["n_active_edges"],
                     "tree_edges": t["n_active_edges"], "exchange_reduction": t["exchange_reduction"],
                     "accuracy_dense_mean": d["accuracy_mean"], "accuracy_dense_std": d["accuracy_std"],
                     "accuracy_spt_mean": t["accuracy_mean"], "accuracy_spt_std": t["accuracy_std"],
                     **{k: v for k, v in t.items() if k.startswith("paired_") or k.startswith("accuracy_")}})
    for folder in folders:
        rows += json.loads((folder / "survey.json").read_text())["rows"]
    for r in rows:
        ci0, w1 = r.get("accuracy_ci_contains_0"), r.get("accuracy_within_1std")
        low = r.get("paired_accuracy_ci_low")
        verdict = ("n/a" if ci0 is None else "no detectable difference" if ci0
                   else "D-INL lower" if low is not None and r["paired_accuracy_mean"] < 0 else "D-INL higher")
        lines.append(
            f"| {r['topology']} | {r['n_nodes']} | {r['dense_edges']} | {r['tree_edges']} | {-r['exchange_reduction']:+.1%} "
            f"| {r['accuracy_dense_mean']:.4f} ± {r['accuracy_dense_std']:.4f} | {r['accuracy_spt_mean']:.4f} ± "
            f"{r['accuracy_spt_std']:.4f} | {_ci(r, 'accuracy')} | {_p(r.get('paired_accuracy_t_p'))} / "
            f"{_p(r.get('paired_accuracy_wilcoxon_p'))} | {_yn(w1)} | {_yn(ci0)} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    compare_folder = Path(argv[0])
    print(compare_table(compare_folder))
    print(rate_lines(compare_folder))
    print(subset_line(compare_folder, [0, 1, 2, 3, 4]))
    print(subset_line(compare_folder, list(range(10))))
    for method, reference in (("D-INL", "dense_equal_budget"), ("BFS tree", "D-INL"), ("random tree", "D-INL"),
                              ("max-capacity tree", "D-INL")):
        print(subset_line(compare_folder, list(range(10)), method, reference))
    if len(argv) > 1:
        print(survey_table([Path(a) for a in argv[1:]], compare_folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

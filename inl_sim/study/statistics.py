"""Paired statistics over seeds: is a method's difference from the reference real?

Every method of a comparison runs on the same seeds, and a seed fixes the topology, the
data and the initial weights.  Differences *within* a seed therefore remove the
variation every method shares (an easy or a hard draw of the data), and a paired test
is the right one; the unpaired "gap within one std of the reference" verdict that the
D-INL paper uses mixes the two.  Both verdicts are reported side by side.

For each metric and method, with d_s = value(method, s) - value(reference, s) over the
seeds s the two share (matched by seed, never by run order):

* ``mean``, ``std`` (sample, ddof 1), ``min``, ``max``, ``n_lower`` / ``n_higher``;
* the 95 % confidence interval mean ± t_{0.975, n-1} · std / sqrt(n) (``scipy.stats.t``);
* the paired t-test p-value (``scipy.stats.ttest_rel``, two-sided);
* the Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``, two-sided,
  ``zero_method="wilcox"``: seeds with a zero difference are dropped before ranking,
  scipy's default; exact distribution when scipy can use it);
* ``ci_contains_0``: the paired verdict "no detectable difference at 95 %".

Anything undefined is None: every statistic but the mean needs two pairs or more, the
tests need a non-constant difference (all-equal differences give no p-value), and the
Wilcoxon test needs at least one non-zero difference.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from inl_sim.errors import ScenarioError
from inl_sim.scenario.seeds import parse_seeds

__all__ = ["paired_difference", "paired_columns", "paired_header", "paired_cells", "parse_seeds",
           "PAIRED_METRICS", "CONFIDENCE"]

CONFIDENCE = 0.95
# metrics compared by seed against the reference ("rate_bits" against the rate reference)
PAIRED_METRICS: tuple[str, ...] = ("accuracy", "exchange_bytes", "rate_bits", "generalisation_gap")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def paired_difference(values: Mapping[int, float | None], reference: Mapping[int, float | None]) -> dict[str, Any]:
    """Statistics of ``values[s] - reference[s]`` over the seeds both have (see module doc).

    Parameters
    ----------
    values, reference
        ``{seed: value}``; seeds missing on either side, or with a None/NaN value, are
        left out, so ``n`` counts the pairs actually used.
    """
    seeds = sorted(s for s in set(values) & set(reference)
                   if _finite(values[s]) is not None and _finite(reference[s]) is not None)
    a = np.array([float(values[s]) for s in seeds])
    b = np.array([float(reference[s]) for s in seeds])
    d = a - b
    out: dict[str, Any] = {"n": len(seeds), "mean": None, "std": None, "min": None, "max": None,
                           "ci_low": None, "ci_high": None, "t_p": None, "wilcoxon_p": None,
                           "n_lower": int((d < 0).sum()), "n_higher": int((d > 0).sum()), "ci_contains_0": None}
    if not seeds:
        return out
    out.update(mean=float(d.mean()), min=float(d.min()), max=float(d.max()))
    if len(seeds) < 2:
        return out
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(seeds) - 1)) * std / math.sqrt(len(seeds))
    out.update(std=std, ci_low=out["mean"] - half, ci_high=out["mean"] + half)
    out["ci_contains_0"] = bool(out["ci_low"] <= 0.0 <= out["ci_high"])
    if std > 0:
        out["t_p"] = _finite(stats.ttest_rel(a, b).pvalue)
    if np.any(d != 0):
        with warnings.catch_warnings():  # scipy warns that small samples use the exact/normal law
            warnings.simplefilter("ignore")
            out["wilcoxon_p"] = _finite(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    return out


def _by_seed(items: Sequence[Mapping[str, Any]], key: str) -> dict[int, Any]:
    seeds = [s["seed"] for s in items]
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(f"paired statistics: seeds {seeds} repeat within a method; "
                            "give each run of a method its own seed")
    return {s["seed"]: s.get(key) for s in items}


def paired_columns(summaries: Mapping[str, Sequence[Mapping[str, Any]]], method: str, *,
                   reference: str | None, rate_reference: str | None = None) -> dict[str, Any]:
    """Flat ``paired_<metric>_<stat>`` columns of one method's row, plus the two verdicts.

    ``rate_bits`` is paired against ``rate_reference`` (when given), every other metric
    against ``reference``; the reference itself gets no columns for its own metrics.
    ``accuracy_within_1std`` (unpaired, today's) and ``accuracy_ci_contains_0``
    (paired) are the two verdicts on the accuracy claim.
    """
    row: dict[str, Any] = {}
    for metric in PAIRED_METRICS:
        against = rate_reference if metric == "rate_bits" and rate_reference else reference
        if against is None or against == method or against not in summaries:
            continue
        stats_ = paired_difference(_by_seed(summaries[method], metric), _by_seed(summaries[against], metric))
        if stats_["n"] == 0:
            continue
        row.update({f"paired_{metric}_{k}": v for k, v in stats_.items()})
        if metric == "accuracy":
            row["accuracy_ci_contains_0"] = stats_["ci_contains_0"]
    return row


# (metric, column label, format of the difference) of the compact paired columns of tables
_TABLE: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "Δ accuracy paired [95 % CI]", "{:+.4f}"),
    ("generalisation_gap", "Δ gen. gap paired [95 % CI]", "{:+.4f}"),
)


def _num(value: Any, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _yes_no(value: Any) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def paired_header(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Column labels of the compact paired columns (none when no row has paired statistics)."""
    if not any("paired_accuracy_mean" in r for r in rows):
        return []
    labels = [label for metric, label, _ in _TABLE if any(f"paired_{metric}_mean" in r for r in rows)]
    return labels + ["p accuracy (t / Wilcoxon)", "accuracy verdicts: within 1 std / paired CI ∋ 0"]


def paired_cells(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row's compact paired cells, "—" for the reference (no difference with itself)."""
    header = paired_header(rows)
    if not header:
        return []
    if "paired_accuracy_mean" not in row:
        return ["—"] * len(header)
    cells = []
    for metric, _, pattern in _TABLE:
        if any(f"paired_{metric}_mean" in r for r in rows):
            get = lambda k: row.get(f"paired_{metric}_{k}")  # noqa: E731
            cells.append(f"{_num(get('mean'), pattern)} [{_num(get('ci_low'), pattern)}, {_num(get('ci_high'), pattern)}]")
    cells.append(f"{_num(row.get('paired_accuracy_t_p'), '{:.3g}')} / {_num(row.get('paired_accuracy_wilcoxon_p'), '{:.3g}')}")
    cells.append(f"{_yes_no(row.get('accuracy_within_1std'))} / {_yes_no(row.get('accuracy_ci_contains_0'))}")
    return cells

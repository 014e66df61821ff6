"""Records -> numbers.  Every communication metric is derived from transfer records.

Also the small statistics used by comparisons (mean, sample standard deviation,
reductions) so that tables, JSON and the report all agree on one definition.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Mapping, Sequence

from inl_sim.sim.accounting import Transfer

__all__ = [
    "exchange_bytes", "bytes_by_epoch", "bytes_by_link", "mean_std", "reduction",
    "step_timeline", "NATS_PER_BIT", "METRICS",
]

NATS_PER_BIT = math.log(2.0)
TRAINING_DIRECTIONS = ("forward", "backward")

# (summary key, column label, scale, format) of the numbers tables carry as mean ± std
METRICS: tuple[tuple[str, str, float, str], ...] = (
    ("accuracy", "accuracy", 1.0, "{:.4f}"),
    ("test_loss", "test loss", 1.0, "{:.4f}"),
    ("train_accuracy", "train accuracy", 1.0, "{:.4f}"),
    ("generalisation_gap", "gen. gap (train - test acc.)", 1.0, "{:.4f}"),
    ("exchange_bytes", "exchange (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_forward", "forward (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_backward", "backward (MB)", 1e-6, "{:.3f}"),
    ("rate_bits", "rate (bits/sample)", 1.0, "{:.2f}"),
    ("sim_time_per_epoch_s", "sim time/epoch (s)", 1.0, "{:.3f}"),
    ("wall_time_s", "wall time (s)", 1.0, "{:.1f}"),
)


def exchange_bytes(records: Iterable[Transfer]) -> dict[str, int]:
    """Training exchange: forward + backward bytes over all links (and each part)."""
    out = {"forward": 0, "backward": 0}
    for r in records:
        if r.direction in out:
            out[r.direction] += r.nbytes
    out["total"] = out["forward"] + out["backward"]
    return out


def bytes_by_epoch(records: Iterable[Transfer]) -> dict[int, dict[str, int]]:
    """Forward/backward bytes per epoch."""
    out: dict[int, dict[str, int]] = {}
    for r in records:
        if r.direction in TRAINING_DIRECTIONS:
            row = out.setdefault(r.epoch, {"forward": 0, "backward": 0})
            row[r.direction] += r.nbytes
    return out


def bytes_by_link(records: Iterable[Transfer]) -> dict[tuple[Hashable, Hashable], dict[str, int]]:
    """Bytes per training link, keyed (child, parent): forward child->parent, backward back."""
    out: dict[tuple, dict[str, int]] = {}
    for r in records:
        if r.direction == "forward":
            key = (r.src, r.dst)
        elif r.direction == "backward":
            key = (r.dst, r.src)
        else:
            continue
        row = out.setdefault(key, {"forward": 0, "backward": 0})
        row[r.direction] += r.nbytes
    return out


def step_timeline(records: Sequence[Transfer], epoch: int, step: int) -> list[Transfer]:
    """The transfers of one training step, in the order they started (critical path view)."""
    return sorted((r for r in records if r.epoch == epoch and r.step == step), key=lambda r: r.t_start_s)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value). NaNs are skipped."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def reduction(value: float, reference: float) -> float:
    """Relative reduction ``1 - value / reference`` (NaN when the reference is 0 or NaN)."""
    if reference is None or value is None or reference == 0 or math.isnan(reference):
        return math.nan
    return 1.0 - value / reference


def rates_in_bits(rates_nats: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Convert a mapping of nats to bits."""
    return {k: v / NATS_PER_BIT for k, v in rates_nats.items()}

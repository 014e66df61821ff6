"""Records -> numbers.  Every communication metric is derived from transfer records.

Each accepts a columnar :class:`~inl_sim.sim.table.TransferTable` (vectorised) or any
iterable of :class:`~inl_sim.sim.accounting.Transfer` records, with identical results.

Also the small statistics used by comparisons (mean, sample standard deviation,
reductions) so that tables, JSON and the report all agree on one definition.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np

from inl_sim.sim.accounting import DIRECTIONS, Transfer, TransferTable

__all__ = [
    "exchange_bytes", "bytes_by_epoch", "bytes_by_link", "mean_std", "reduction",
    "step_timeline", "NATS_PER_BIT", "METRICS", "time_to_fraction",
]

NATS_PER_BIT = math.log(2.0)
TRAINING_DIRECTIONS = ("forward", "backward")

# (summary key, column label, scale, format) of the numbers tables carry as mean ± std
METRICS: tuple[tuple[str, str, float, str], ...] = (
    ("accuracy", "accuracy", 1.0, "{:.4f}"),
    ("accuracy_sampled", "accuracy (sampled channel)", 1.0, "{:.4f}"),
    ("test_loss", "test loss", 1.0, "{:.4f}"),
    ("train_accuracy", "train accuracy", 1.0, "{:.4f}"),
    ("generalisation_gap", "gen. gap (train - test acc.)", 1.0, "{:.4f}"),
    ("exchange_bytes", "exchange (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_forward", "forward (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_backward", "backward (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_parameters", "parameters (MB)", 1e-6, "{:.3f}"),
    ("exchange_bytes_raw_data", "raw data (MB)", 1e-6, "{:.3f}"),
    ("rate_bits", "rate (bits/sample)", 1.0, "{:.2f}"),
    ("rate_bits_kl_learned_prior", "rate, KL to learned prior (bits)", 1.0, "{:.2f}"),
    ("rate_bits_aggregate_posterior_upper", "rate, minibatch upper (bits)", 1.0, "{:.2f}"),
    ("rate_bits_aggregate_posterior_lower", "rate, minibatch lower (bits)", 1.0, "{:.2f}"),
    ("sim_time_per_epoch_s", "sim time/epoch (s)", 1.0, "{:.3f}"),
    ("time_to_95pct_s", "sim time to 95 % of final accuracy (s)", 1.0, "{:.3f}"),
    ("inference_bytes_per_sample", "inference bytes/sample", 1.0, "{:.0f}"),
    ("inference_latency_s", "inference latency (ms)", 1e3, "{:.3f}"),
    ("wall_time_s", "wall time (s)", 1.0, "{:.1f}"),
    ("energy_j", "energy (J)", 1.0, "{:.4g}"),
    ("energy_tx_j", "tx energy (J)", 1.0, "{:.4g}"),
    ("energy_compute_j", "compute energy (J)", 1.0, "{:.4g}"),
)


def exchange_bytes(records: Iterable[Transfer] | TransferTable) -> dict[str, int]:
    """Training exchange per direction and in total.

    ``forward`` + ``backward`` are INL's (and split learning's) messages; ``parameters``
    (federated learning) and ``raw_data`` (centralised) are zero for INL, so INL's
    ``total`` is forward + backward as before.
    """
    if isinstance(records, TransferTable):
        d, nbytes = records.columns["direction"], records.columns["nbytes"]
        out = {k: int(nbytes[d == i].sum(dtype=np.int64)) for i, k in enumerate(DIRECTIONS)}
    else:
        out = {k: 0 for k in DIRECTIONS}
        for r in records:
            out[r.direction] += r.nbytes
    out["total"] = sum(out[k] for k in DIRECTIONS)
    return out


def time_to_fraction(history: Sequence[Mapping], fraction: float = 0.95) -> float:
    """Simulated time at the end of the first epoch whose test accuracy reaches ``fraction``
    of the final epoch's (NaN without history or with a non-finite final accuracy)."""
    if not history:
        return math.nan
    final = history[-1].get("test_accuracy")
    if final is None or not math.isfinite(final):
        return math.nan
    return next(float(row["sim_time_s"]) for row in history if row["test_accuracy"] >= fraction * final)


def bytes_by_epoch(records: Iterable[Transfer] | TransferTable) -> dict[int, dict[str, int]]:
    """Forward/backward bytes per epoch, epochs in order of first appearance."""
    if not isinstance(records, TransferTable):
        records = TransferTable.from_records(records)
    cols = records.columns
    training = cols["direction"] <= 1
    epoch, d = cols["epoch"][training].astype(np.int64), cols["direction"][training].astype(np.int64)
    out: dict[int, dict[str, int]] = {}
    for e, sums in _grouped_sums(epoch, d, cols["nbytes"][training]):
        out[e] = sums
    return out


def bytes_by_link(records: Iterable[Transfer] | TransferTable) -> dict[tuple[Hashable, Hashable], dict[str, int]]:
    """Bytes per training link, keyed (child, parent): forward child->parent, backward back."""
    if not isinstance(records, TransferTable):
        records = TransferTable.from_records(records)
    cols, n = records.columns, len(records.nodes)
    training = cols["direction"] <= 1
    d = cols["direction"][training].astype(np.int64)
    src, dst = cols["src"][training].astype(np.int64), cols["dst"][training].astype(np.int64)
    child, parent = np.where(d == 0, src, dst), np.where(d == 0, dst, src)
    out: dict[tuple, dict[str, int]] = {}
    for key, sums in _grouped_sums(child * n + parent, d, cols["nbytes"][training]):
        out[(records.nodes[key // n], records.nodes[key % n])] = sums
    return out


def _grouped_sums(key: np.ndarray, direction: np.ndarray, nbytes: np.ndarray) -> list[tuple[int, dict[str, int]]]:
    """(key, {forward, backward} byte sums) per distinct key, in order of first appearance."""
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    sums = np.zeros((len(uniq), 2), dtype=np.int64)
    np.add.at(sums, (inverse, direction), nbytes.astype(np.int64))
    return [(int(uniq[k]), {"forward": int(sums[k, 0]), "backward": int(sums[k, 1])})
            for k in np.argsort(first, kind="stable").tolist()]


def step_timeline(records: Sequence[Transfer] | TransferTable, epoch: int, step: int) -> list[Transfer]:
    """The transfers of one training step, in the order they started (critical path view)."""
    if isinstance(records, TransferTable):
        cols = records.columns
        rows = np.flatnonzero((cols["epoch"] == epoch) & (cols["step"] == step))
        rows = rows[np.argsort(cols["t_start_s"][rows], kind="stable")]
        return list(records[rows])
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

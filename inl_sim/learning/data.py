"""Learning tasks split into per-sensor views.

Each sensor observes one view of every sample; the fusion node sees labels only.  Two
tasks ship, both offline and seeded:

* ``synthetic``: for every view, the classes are merged into ``groups_per_view`` random
  groups and the view shows a Gaussian cloud around its group's mean.  A single view
  cannot tell apart classes of one group, so its Bayes accuracy is at most
  ``groups_per_view / n_classes``: fusing views is necessary, which is what INL is for.
* ``digits``: scikit-learn's bundled 8x8 digits; the 64 pixels are split into vertical
  strips, one strip per sensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterator

import numpy as np
import torch

from inl_sim.errors import DataError
from inl_sim.scenario import DataSpec

__all__ = ["Dataset", "make_dataset", "batch_indices", "run_stream", "SHUFFLE_STREAM"]

NodeId = Hashable


@dataclass(frozen=True)
class Dataset:
    """Per-sensor views of a train and a test split (float32 tensors, int64 labels)."""

    train_views: dict[NodeId, torch.Tensor]
    train_labels: torch.Tensor
    test_views: dict[NodeId, torch.Tensor]
    test_labels: torch.Tensor
    n_classes: int
    kind: str

    @property
    def view_dims(self) -> dict[NodeId, int]:
        return {v: x.shape[1] for v, x in self.train_views.items()}

    @property
    def n_train(self) -> int:
        return int(self.train_labels.shape[0])


def make_dataset(spec: DataSpec, sensors: tuple[NodeId, ...], *, seed: int) -> Dataset:
    """Build the task of ``spec`` with one view per sensor, seeded by ``spec.seed`` or ``seed``."""
    if not sensors:
        raise DataError("data: no sensors to assign views to; set topology.sensors")
    rng = np.random.default_rng(spec.seed if spec.seed is not None else seed)
    if spec.kind == "synthetic":
        x, y = _synthetic(spec, len(sensors), rng)
        n_classes = spec.n_classes
    elif spec.kind == "digits":
        x, y = _digits(spec, len(sensors), rng)
        n_classes = 10
    else:
        raise DataError(f"data.kind: {spec.kind!r} is not a known task; choose 'synthetic' or 'digits'")
    train, test = np.arange(spec.n_train), np.arange(spec.n_train, spec.n_train + spec.n_test)
    views = [_standardise(v, train) for v in x]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return Dataset(
        train_views={s: as_t(v[train]) for s, v in zip(sensors, views)},
        train_labels=torch.from_numpy(y[train].astype(np.int64)),
        test_views={s: as_t(v[test]) for s, v in zip(sensors, views)},
        test_labels=torch.from_numpy(y[test].astype(np.int64)),
        n_classes=n_classes, kind=spec.kind,
    )


def _synthetic(spec: DataSpec, n_views: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Views that each see only a random coarse partition of the classes, plus noise."""
    n = spec.n_train + spec.n_test
    y = rng.integers(0, spec.n_classes, size=n)
    views = []
    for _ in range(n_views):
        group_of_class = rng.permutation(spec.n_classes) % spec.groups_per_view        # (C,)
        means = rng.normal(0.0, spec.separation, size=(spec.groups_per_view, spec.view_dim))
        noise = rng.normal(0.0, spec.noise, size=(n, spec.view_dim))
        views.append(means[group_of_class[y]] + noise)                                 # (N, d_view)
    return views, y


def _digits(spec: DataSpec, n_views: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """sklearn's bundled digits (offline), shuffled, pixels split into vertical strips."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError("data.kind: 'digits' needs scikit-learn; pip install scikit-learn") from None
    bunch = load_digits()
    total = spec.n_train + spec.n_test
    if total > len(bunch.target):
        raise DataError(f"data.n_train + data.n_test: {total} exceeds the {len(bunch.target)} digits; "
                        "lower n_train/n_test (e.g. 1297 and 500)")
    if n_views > 64:
        raise DataError(f"topology.sensors: {n_views} sensors but digits have 64 pixels; use at most 64 sensors")
    order = rng.permutation(len(bunch.target))[:total]
    images = bunch.images[order]                                                       # (N, 8, 8)
    columns = images.transpose(0, 2, 1).reshape(total, 64)                             # column-major pixels
    return [columns[:, idx] for idx in np.array_split(np.arange(64), n_views)], bunch.target[order]


def _standardise(view: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per feature using training statistics only."""
    mean, std = view[train].mean(axis=0), view[train].std(axis=0)
    return (view - mean) / np.where(std > 1e-8, std, 1.0)


SHUFFLE_STREAM = 3   # the training batches' order; every paradigm draws the same batches


def run_stream(seed: int, stream: int = SHUFFLE_STREAM) -> torch.Generator:
    """A run's generator for one purpose (``stream``), derived from the run seed."""
    return torch.Generator().manual_seed(seed * 104_729 + stream)


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of shuffled mini-batch indices (the last batch may be smaller)."""
    perm = torch.randperm(n, generator=generator)
    return iter(perm.split(batch_size))

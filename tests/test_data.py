"""Tests of inl_sim.learning.data: the synthetic task needs fusion, digits views partition pixels.

Oracles: scikit-learn classifiers trained on one view (their accuracy cannot beat the
Bayes ceiling groups_per_view / n_classes of a view that only sees class groups), the
raw scikit-learn digits (each view column must be an affine image of a distinct pixel
column, found by a bipartite matching in networkx), and counts worked out by hand.
"""

from __future__ import annotations

import warnings
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

import inl_sim
from inl_sim.learning.data import Dataset, batch_indices, make_dataset
from inl_sim.errors import DataError, InlSimError
from inl_sim.scenario import DataSpec, load_scenario

from conftest import ROOT

QUICKSTART = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"
SENSORS = tuple(range(1, 9))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


@pytest.fixture(scope="module")
def quickstart_data() -> tuple[DataSpec, Dataset]:
    spec = load_scenario(QUICKSTART).data
    return spec, make_dataset(spec, SENSORS, seed=0)


@pytest.fixture(scope="module")
def single_view_accuracy(quickstart_data: tuple[DataSpec, Dataset]) -> dict:
    """Test accuracy of a multinomial logistic regression on each single view (linear is
    Bayes-optimal here: Gaussian clouds with a shared isotropic covariance)."""
    _, ds = quickstart_data
    y, y_test = _np(ds.train_labels), _np(ds.test_labels)
    return {s: LogisticRegression(max_iter=1000).fit(_np(ds.train_views[s]), y).score(_np(ds.test_views[s]), y_test)
            for s in SENSORS}


def test_synthetic_shapes_and_balance(quickstart_data: tuple[DataSpec, Dataset]) -> None:
    spec, ds = quickstart_data
    assert ds.n_train == spec.n_train and ds.test_labels.shape == (spec.n_test,)
    assert ds.view_dims == {s: spec.view_dim for s in SENSORS}
    assert ds.train_views[1].dtype == torch.float32 and ds.train_labels.dtype == torch.int64
    counts = Counter(_np(ds.train_labels).tolist())
    assert set(counts) == set(range(spec.n_classes))
    assert min(counts.values()) > 0.5 * spec.n_train / spec.n_classes
    for s in SENSORS:  # standardised with training statistics
        x = _np(ds.train_views[s])
        assert np.allclose(x.mean(0), 0, atol=1e-5) and np.allclose(x.std(0), 1, atol=1e-4)


def test_single_view_accuracy_is_bounded_by_the_group_ceiling(
        quickstart_data: tuple[DataSpec, Dataset], single_view_accuracy: dict) -> None:
    spec, ds = quickstart_data
    ceiling = spec.groups_per_view / spec.n_classes
    for s, acc in single_view_accuracy.items():
        assert acc <= ceiling + 0.05, f"view {s} alone reaches {acc:.3f} > {ceiling} + 0.05"
        assert acc > 1 / spec.n_classes + 0.1, f"view {s} carries almost no information ({acc:.3f})"
    best = max(single_view_accuracy, key=single_view_accuracy.get)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((32,), max_iter=200, random_state=0)
        mlp.fit(_np(ds.train_views[best]), _np(ds.train_labels))
    assert mlp.score(_np(ds.test_views[best]), _np(ds.test_labels)) <= ceiling + 0.05


def test_all_views_together_suffice(quickstart_data: tuple[DataSpec, Dataset]) -> None:
    _, ds = quickstart_data
    x = np.hstack([_np(ds.train_views[s]) for s in SENSORS])
    x_test = np.hstack([_np(ds.test_views[s]) for s in SENSORS])
    acc = LogisticRegression(max_iter=2000).fit(x, _np(ds.train_labels)).score(x_test, _np(ds.test_labels))
    assert acc > 0.85


@pytest.mark.parametrize("mode", ["spt", "dense"])
def test_inl_beats_every_single_view(mode: str, single_view_accuracy: dict) -> None:
    res = inl_sim.run(load_scenario(QUICKSTART, {"routing.mode": mode}), 0)
    best = max(single_view_accuracy.values())
    assert res.accuracy >= best + 0.25, f"{mode}: INL {res.accuracy:.3f} vs best single view {best:.3f}"


def test_synthetic_same_seed_same_data_and_spec_seed_wins() -> None:
    spec = DataSpec(n_train=64, n_test=32)
    a, b, c = (make_dataset(spec, (1, 2, 3), seed=s) for s in (4, 4, 5))
    assert _same(a, b) and not _same(a, c)
    fixed = DataSpec(n_train=64, n_test=32, seed=11)
    assert _same(make_dataset(fixed, (1, 2, 3), seed=4), make_dataset(fixed, (1, 2, 3), seed=5))


def _same(a: Dataset, b: Dataset) -> bool:
    views = all(torch.equal(a.train_views[s], b.train_views[s]) and torch.equal(a.test_views[s], b.test_views[s])
                for s in a.train_views)
    return views and torch.equal(a.train_labels, b.train_labels) and torch.equal(a.test_labels, b.test_labels)


# --------------------------------------------------------------------------- digits

@pytest.mark.parametrize("n_sensors", [1, 3, 7, 8, 64])
def test_digits_views_split_the_64_pixels(n_sensors: int) -> None:
    spec = DataSpec(kind="digits", n_train=200, n_test=100)
    ds = make_dataset(spec, tuple(range(n_sensors)), seed=0)
    dims = list(ds.view_dims.values())
    assert sum(dims) == 64 and len(dims) == n_sensors
    assert max(dims) - min(dims) <= 1
    assert ds.n_classes == 10


def test_digits_views_are_a_partition_of_the_pixels() -> None:
    """With every digit used, each view column is a positive affine image of one pixel
    column (values sorted, so the shuffle does not matter), each pixel used once."""
    raw = load_digits()
    pixels = raw.images.reshape(len(raw.target), 64).astype(float)       # (1797, 64)
    spec = DataSpec(kind="digits", n_train=1297, n_test=500)
    ds = make_dataset(spec, (10, 20, 30, 40, 50), seed=0)
    columns = np.hstack([np.vstack([_np(ds.train_views[s]), _np(ds.test_views[s])]) for s in ds.train_views])
    assert columns.shape == pixels.shape

    def shape_of(col: np.ndarray) -> np.ndarray | None:
        col = np.sort(col)
        spread = col.std()
        return None if spread < 1e-8 else (col - col.mean()) / spread

    candidates = nx.Graph()
    raw_shapes = [shape_of(pixels[:, p]) for p in range(64)]
    for j in range(64):
        view_shape = shape_of(columns[:, j])
        for p, pixel_shape in enumerate(raw_shapes):
            same = (view_shape is None and pixel_shape is None) or (
                view_shape is not None and pixel_shape is not None and np.allclose(view_shape, pixel_shape, atol=1e-4))
            if same:
                candidates.add_edge(("view", j), ("pixel", p))
    top = [("view", j) for j in range(64)]
    assert all(v in candidates for v in top), "a view column matches no pixel"
    matching = nx.bipartite.maximum_matching(candidates, top_nodes=top)
    assert sum(1 for v in top if v in matching) == 64
    labels = np.concatenate([_np(ds.train_labels), _np(ds.test_labels)])
    assert Counter(labels.tolist()) == Counter(raw.target.tolist())


def test_digits_too_many_samples_names_the_fields() -> None:
    make_dataset(DataSpec(kind="digits", n_train=1297, n_test=500), (1, 2), seed=0)  # exactly 1797: fine
    with pytest.raises(DataError) as info:
        make_dataset(DataSpec(kind="digits", n_train=1298, n_test=500), (1, 2), seed=0)
    message = str(info.value)
    assert "data.n_train" in message and "data.n_test" in message and "1798" in message and "1797" in message


def test_digits_too_many_sensors() -> None:
    with pytest.raises(DataError, match="64"):
        make_dataset(DataSpec(kind="digits", n_train=100, n_test=50), tuple(range(65)), seed=0)


def test_digits_same_seed_same_data() -> None:
    spec = DataSpec(kind="digits", n_train=300, n_test=100)
    a, b, c = (make_dataset(spec, (1, 2, 3), seed=s) for s in (0, 0, 1))
    assert _same(a, b) and not _same(a, c)


def test_no_sensors_is_an_error() -> None:
    with pytest.raises(InlSimError, match="sensors"):
        make_dataset(DataSpec(n_train=10, n_test=5), (), seed=0)


def test_batch_indices_cover_the_epoch_once() -> None:
    batches = list(batch_indices(200, 64, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [64, 64, 64, 8]
    assert sorted(torch.cat(batches).tolist()) == list(range(200))

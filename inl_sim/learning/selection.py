"""Data-dependent selection from a finite bank, and how much it can overfit.

A rule that picks one hypothesis W of a finite bank from a training set S of n samples
generalises as well as it is independent of S.  Xu and Raginsky (2017): if the loss of
every hypothesis is sigma-sub-Gaussian (a loss in [0, 1] is 1/2-sub-Gaussian), the
expected generalisation gap obeys |E[L_D(W) - L_S(W)]| <= sqrt(2 sigma^2 I(S;W) / n).
Since I(S;W) <= H(W) <= log |W|, the uniform (union-bound style) baseline is the same
expression with log |W|.

The rule here is the Gibbs posterior q(w|S) proportional to exp(-alpha n L_S(w)):
alpha = 0 ignores the data (q uniform, I(S;W) = 0), alpha -> inf is empirical risk
minimisation.  Over R resampled training sets the estimate of I(S;W) is the discrete
closed form  H(mean_r q(.|S_r)) - mean_r H(q(.|S_r)): the mutual information between
the draw r and W, exact for the empirical law of S over the R draws.  numpy only, nats.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import entr, log_softmax

from inl_sim.errors import ScenarioError, field_error

__all__ = ["gibbs_posterior", "selection_information", "generalisation_gap", "gap_per_resample", "xu_raginsky_bound",
           "union_bound", "resampled_losses", "SUBGAUSSIAN_01"]

SUBGAUSSIAN_01 = 0.5
"""sigma of a loss in [0, 1]: Hoeffding's lemma makes it 1/2-sub-Gaussian."""


def _matrix(value: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or 0 in arr.shape or not np.all(np.isfinite(arr)):
        raise field_error(ScenarioError, f"{name}.shape", arr.shape, "must be a finite (R, |W|) matrix, both >= 1",
                          "pass one row per resampled training set and one column per hypothesis")
    return arr


def gibbs_posterior(train_loss: ArrayLike, alpha: float, n: int) -> NDArray[np.float64]:
    """q(w|S_r) proportional to exp(-alpha * n * L_{S_r}(w)), row by row, (R, |W|).

    ``alpha`` is the data dependence: 0 gives the uniform, data-free rule.
    """
    loss = _matrix(train_loss, "train_loss")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise field_error(ScenarioError, "alpha", alpha, "must be finite and >= 0", "alpha = 0 is the data-free rule")
    return np.exp(log_softmax(-alpha * n * loss, axis=1))


def _entropy_rows(q: NDArray[np.float64]) -> NDArray[np.float64]:
    return entr(q).sum(axis=-1)


def selection_information(posteriors: ArrayLike) -> float:
    """Î(S;W) in nats: H(mean_r q(.|S_r)) - mean_r H(q(.|S_r)) over R training sets.

    Exact for a rule whose posteriors over the finite bank are the rows; in [0, log |W|].
    Rows must be pmfs.
    """
    q = _matrix(posteriors, "posteriors")
    if np.any(q < 0) or not np.allclose(q.sum(axis=1), 1.0, atol=1e-9):
        raise field_error(ScenarioError, "posteriors", "rows", "must be pmfs (>= 0, summing to 1)",
                          "normalise each row, e.g. with gibbs_posterior")
    value = float(_entropy_rows(q.mean(axis=0)) - _entropy_rows(q).mean())
    return min(max(value, 0.0), math.log(q.shape[1])) + 0.0      # rounding can step outside [0, log|W|]


def gap_per_resample(posteriors: ArrayLike, train_loss: ArrayLike, population_loss: ArrayLike) -> NDArray[np.float64]:
    """(R,) E_{W~q(.|S_r)} [L_D(W) - L_{S_r}(W)]: the gap of each training set."""
    q, ls = _matrix(posteriors, "posteriors"), _matrix(train_loss, "train_loss")
    ld = np.asarray(population_loss, dtype=np.float64)
    if ls.shape != q.shape or ld.shape != (q.shape[1],):
        raise field_error(ScenarioError, "shapes", (q.shape, ls.shape, ld.shape),
                          "must be (R, |W|), (R, |W|) and (|W|,)", "pass matching posteriors and losses")
    return np.sum(q * (ld[None, :] - ls), axis=1)


def generalisation_gap(posteriors: ArrayLike, train_loss: ArrayLike, population_loss: ArrayLike) -> float:
    """E_S E_{W~q(.|S)} [L_D(W) - L_S(W)], averaged over the R training sets."""
    return float(np.mean(gap_per_resample(posteriors, train_loss, population_loss)))


def xu_raginsky_bound(information_nats: float, n: int, sigma: float = SUBGAUSSIAN_01) -> float:
    """sqrt(2 sigma^2 I(S;W) / n): the bound on |expected generalisation gap|."""
    if n < 1 or information_nats < 0 or sigma <= 0:
        raise field_error(ScenarioError, "xu_raginsky_bound", (information_nats, n, sigma),
                          "needs I >= 0, n >= 1, sigma > 0", "pass nats, the training-set size and the loss's sigma")
    return math.sqrt(2.0 * sigma ** 2 * information_nats / n)


def union_bound(n_hypotheses: int, n: int, sigma: float = SUBGAUSSIAN_01) -> float:
    """The data-blind baseline: the same bound with I(S;W) replaced by log |W|."""
    return xu_raginsky_bound(math.log(n_hypotheses), n, sigma)


def resampled_losses(wrong: ArrayLike, n: int, n_resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Empirical 0-1 loss (R, |W|) of each hypothesis on R training sets of n i.i.d. draws.

    ``wrong`` (N, |W|) says which hypothesis misclassifies which sample of the pool; D is
    the uniform law over the pool, so L_D = wrong.mean(0) exactly and the draws (with
    replacement) are i.i.d. from D as the bound assumes.
    """
    w = _matrix(wrong, "wrong")
    idx = rng.integers(0, w.shape[0], size=(n_resamples, n))          # (R, n)
    return w[idx].mean(axis=1)                                          # (R, n, |W|) -> (R, |W|)

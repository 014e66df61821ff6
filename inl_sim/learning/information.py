"""Information-theory tools: entropies, mutual information, Gaussian KL (R(D) is in ``ratedistortion``).

D-INL penalises the rate R_g = I(Z;T) of every gate; this module holds the estimators the
gates use (differentiable, torch) and the discrete references the tests check them
against (numpy): the mutual information of a known channel, and the rate-distortion
function computed by Blahut-Arimoto.  Everything is in nats; convert at the edge with
:func:`nats_to_bits`.  Functions are pure and raise :class:`~inl_sim.errors.ScenarioError`
on malformed input, naming the argument, the value, the rule and the fix.
"""

from __future__ import annotations

import logging
import math
from typing import TypeVar, overload

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.special import entr, rel_entr

from inl_sim.errors import ScenarioError, field_error

__all__ = [
    "PMF_ATOL", "nats_to_bits", "entropy", "binary_entropy", "kl_divergence",
    "mutual_information", "channel_mutual_information", "plugin_mutual_information",
    "plugin_mutual_information_samples", "gaussian_kl_standard_normal",
]

logger = logging.getLogger(__name__)

PMF_ATOL = 1e-9
"""How far (absolute) a float64 pmf may sum from 1 and still be accepted."""

_LN2 = math.log(2.0)
_Num = TypeVar("_Num", float, NDArray[np.float64], torch.Tensor)


def nats_to_bits(nats: _Num) -> _Num:
    """Convert an information quantity from nats (used internally) to bits (reported)."""
    return nats / _LN2


# --------------------------------------------------------------------------- validation
def _as_array(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """``value`` as a finite, non-empty float64 array, or a ScenarioError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise field_error(ScenarioError, name, value, "is not numeric", "pass an array of numbers") from exc
    if arr.size == 0:
        raise field_error(ScenarioError, f"{name}.shape", arr.shape, "is empty", "pass at least one entry")
    bad = arr[~np.isfinite(arr)]
    if bad.size:
        raise field_error(ScenarioError, name, float(bad[0]), f"is not finite ({bad.size} NaN/inf entries)",
                          "pass finite numbers")
    return arr


def _as_pmf(value: ArrayLike, name: str, axis: int | None = -1) -> NDArray[np.float64]:
    """Validate a pmf (or a stack of pmfs along ``axis``): entries >= 0, sums 1 +- PMF_ATOL."""
    arr = _as_array(value, name)
    if arr.ndim == 0:
        raise field_error(ScenarioError, f"{name}.shape", (), "must have at least one axis",
                          "pass a 1-D array of probabilities")
    if arr.min() < 0:
        raise field_error(ScenarioError, f"min({name})", float(arr.min()),
                          "must be >= 0 (a pmf has no negative probability)", "clip or correct the negative entries")
    sums = np.ravel(arr.sum(axis=axis))
    worst = float(sums[np.argmax(np.abs(sums - 1.0))])
    if abs(worst - 1.0) > PMF_ATOL:
        where = "" if axis is None or arr.ndim == 1 else f", axis={axis}"
        raise field_error(ScenarioError, f"sum({name}{where})", worst, f"must be 1 within {PMF_ATOL:g} (a pmf)",
                          f"divide {name} by its sum{where.replace(',', ' along')}")
    return arr


def _check_ndim(arr: NDArray[np.float64], name: str, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise field_error(ScenarioError, f"{name}.shape", arr.shape, f"must be {ndim}-D {layout}",
                          f"reshape {name} to {layout}")


# --------------------------------------------------------------------------- discrete (numpy)
def entropy(p: ArrayLike, axis: int = -1) -> float | NDArray[np.float64]:
    """Shannon entropy H(p) = -sum p log p in nats, with 0 log 0 = 0.

    Parameters
    ----------
    p : array_like
        A pmf, or a stack of pmfs along ``axis`` (each must sum to 1 within ``PMF_ATOL``).
    axis : int
        The axis holding the outcomes.

    Returns
    -------
    float or ndarray
        A float for a 1-D ``p``; otherwise one entropy per pmf (``axis`` removed).
    """
    arr = _as_pmf(p, "p", axis)
    h = np.sum(entr(arr), axis=axis)  # entr(0) = 0, so impossible outcomes cost nothing
    return float(h) if np.ndim(h) == 0 else np.asarray(h, dtype=np.float64)


@overload
def binary_entropy(p: float) -> float: ...
@overload
def binary_entropy(p: NDArray[np.float64]) -> NDArray[np.float64]: ...
def binary_entropy(p: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
    """H_b(p) = -p log p - (1-p) log(1-p) in nats, elementwise, for p in [0, 1].

    The entropy of a Bernoulli(p) source; the building block of closed-form references
    (capacity of the binary symmetric channel, Hamming rate-distortion).
    """
    arr = _as_array(p, "p")
    outside = arr[(arr < 0) | (arr > 1)]
    if outside.size:
        raise field_error(ScenarioError, "p", float(outside[0]), "must lie in [0, 1] (a probability)",
                          "pass a probability of success")
    h = entr(arr) + entr(1.0 - arr)
    return float(h) if h.ndim == 0 else h


def kl_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """KL(p || q) = sum p log(p / q) in nats between two pmfs over the same outcomes.

    Returns ``inf`` when q gives zero probability to an outcome that p does not: the
    divergence is then genuinely infinite, and hiding it would mask a modelling error.
    """
    p_arr, q_arr = _as_pmf(p, "p"), _as_pmf(q, "q")
    if p_arr.shape != q_arr.shape:
        raise field_error(ScenarioError, "q.shape", q_arr.shape, f"must equal p.shape {p_arr.shape}",
                          "pass two pmfs over the same outcomes")
    return float(np.sum(rel_entr(p_arr, q_arr)))


def _mi_from_joint(joint: NDArray[np.float64]) -> float:
    """I(X;Y) = KL(p(x,y) || p(x)p(y)) for a validated joint; the KL form is never < 0."""
    product = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)  # (X, Y)
    # p(x)p(y) >= p(x,y)^2, so a product that underflows to 0 belongs to a joint entry
    # below ~1e-160 whose term p log(p / p(x)p(y)) <= p log(1/p) is negligible, not inf.
    terms = np.where(product > 0, rel_entr(joint, np.where(product > 0, product, 1.0)), 0.0)
    return max(float(np.sum(terms)), 0.0)


def mutual_information(joint: ArrayLike) -> float:
    """Mutual information I(X;Y) in nats of a joint pmf matrix ``joint[x, y] = p(x, y)``.

    Computed as KL(p(x,y) || p(x)p(y)) rather than H(X)+H(Y)-H(X,Y), which avoids the
    cancellation of three large terms when the dependence is weak.
    """
    arr = _as_pmf(joint, "joint", axis=None)
    _check_ndim(arr, "joint", 2, "(n_x, n_y)")
    return _mi_from_joint(arr)


def channel_mutual_information(p_x: ArrayLike, channel: ArrayLike) -> float:
    """I(X;Y) in nats of input pmf ``p_x`` through a channel with rows ``channel[x] = p(y|x)``.

    The analytic reference that plug-in estimators are checked against.
    """
    px = _as_pmf(p_x, "p_x")
    _check_ndim(px, "p_x", 1, "(n_x,)")
    w = _as_pmf(channel, "channel", axis=1)
    _check_ndim(w, "channel", 2, "(n_x, n_y) with rows p(y|x)")
    if w.shape[0] != px.shape[0]:
        raise field_error(ScenarioError, "channel.shape", w.shape, f"must have len(p_x) = {px.shape[0]} rows",
                          "give one row p(y|x) per input symbol")
    return _mi_from_joint(px[:, None] * w)  # (n_x, n_y) joint


def plugin_mutual_information_samples(x: ArrayLike, t: ArrayLike) -> float:
    """Plug-in I(X;T) in nats from paired discrete samples: MI of the empirical joint.

    Symbols may be any integers (they are relabelled).  The estimate is biased upward by
    about (|X|-1)(|T|-1)/(2n) nats, negligible for the large samples the tests use.
    """
    xs, ts = np.asarray(x), np.asarray(t)
    for name, arr in (("x", xs), ("t", ts)):
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "biu":
            raise field_error(ScenarioError, name, f"array(shape={arr.shape}, dtype={arr.dtype})",
                              "must be a non-empty 1-D array of integer symbols", f"pass {name}.astype(int)")
    if xs.shape != ts.shape:
        raise field_error(ScenarioError, "t.shape", ts.shape, f"must equal x.shape {xs.shape} (paired samples)",
                          "pass one t per x")
    x_sym, x_idx = np.unique(xs, return_inverse=True)
    t_sym, t_idx = np.unique(ts, return_inverse=True)
    counts = np.bincount(x_idx * t_sym.size + t_idx, minlength=x_sym.size * t_sym.size)
    return _mi_from_joint(counts.reshape(x_sym.size, t_sym.size) / xs.size)


# --------------------------------------------------------------------------- estimators (torch)
def _row_entropy(q: torch.Tensor) -> torch.Tensor:
    """-sum q log q over the last axis; clamping inside the log keeps 0 log 0 = 0 AND a finite gradient."""
    return -(q * torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))).sum(-1)


def plugin_mutual_information(q: torch.Tensor) -> torch.Tensor:
    """Plug-in I(Z;T) = H(mean_i q_i) - mean_i H(q_i) in nats over a batch, differentiable.

    The rate of a discrete (Gumbel-softmax) gate: Z is the empirical distribution of the
    batch and T the choice drawn from q(t|z_i).  It lies in [0, log K]; floating-point
    error can step slightly outside, so the value is clamped there while the gradient is
    that of the unclamped expression (a straight-through clamp never zeroes the penalty's
    gradient).

    Parameters
    ----------
    q : torch.Tensor
        ``(N, K)`` rows of conditional probabilities q(t|z_i), e.g. ``softmax(logits, -1)``.

    Returns
    -------
    torch.Tensor
        A scalar tensor (nats).
    """
    if q.ndim != 2 or q.shape[0] < 1 or q.shape[1] < 1:
        raise field_error(ScenarioError, "q.shape", tuple(q.shape), "must be (N, K) with N, K >= 1",
                          "pass a batch of conditional pmfs, e.g. softmax(logits, dim=-1)")
    _check_torch_rows(q)
    mi = _row_entropy(q.mean(0)) - _row_entropy(q).mean()               # ()
    return mi + (mi.clamp(0.0, math.log(q.shape[1])) - mi).detach()


def _check_torch_rows(q: torch.Tensor) -> None:
    """Rows must be pmfs; float32 softmax outputs sum to 1 only within ~1e-6, hence the dtype tolerance."""
    tol = max(PMF_ATOL, 1e3 * torch.finfo(q.dtype).eps)
    with torch.no_grad():
        if not bool(torch.isfinite(q).all()) or float(q.min()) < 0:
            raise field_error(ScenarioError, "min(q)", float(q.min()), "must be finite and >= 0 (probabilities)",
                              "pass softmax outputs, not logits")
        worst = float((q.sum(-1) - 1.0).abs().max())
        if worst > tol:
            raise field_error(ScenarioError, "max |sum(q, -1) - 1|", worst, f"must be <= {tol:g} (rows are pmfs)",
                              "normalise each row, e.g. softmax(logits, dim=-1)")


def gaussian_kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per sample, summed over the last axis, in nats.

    The rate bound of the Gaussian gate (variational information bottleneck):
    0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2).  Taking the log-variance, the quantity a
    network predicts unconstrained, avoids a log of a possibly-zero sigma.

    Parameters
    ----------
    mu, log_var : torch.Tensor
        Same shape ``(..., d)``: means and log-variances of the posterior.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: one KL per sample; differentiable in both arguments.
    """
    if mu.shape != log_var.shape or mu.ndim < 1:
        raise field_error(ScenarioError, "log_var.shape", tuple(log_var.shape),
                          f"must equal mu.shape {tuple(mu.shape)} with at least one (latent) axis",
                          "pass mu and log_var of the same (..., d) shape")
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)   # (..., d) -> (...)


"""Accuracy-rate curve of a distortion matrix: R(D) of a finite bank of options, numpy only.

A router that sees each sample x and names the option o to use must convey I(X; O)
bits per sample about its choice.  With distortion d[x, o] (e.g. 1 when option o
misclassifies sample x) and p(x) uniform over the rows, Blahut-Arimoto gives the least
such rate for every expected distortion: R(D), read as accuracy 1 - D against rate.  Its
ends are exact and reported on their own: R = 0 at the best fixed option
(:func:`zero_rate_slope` says up to which slope BA would only crawl toward it), and the
oracle (the best option per sample) at D_min with the rate :func:`oracle_rate` it needs.

Duplicate rows and columns are merged first (exact for R(D)), and BA points are placed
adaptively where the curve moves.  No torch, no scenario, no training: the routing bank
over a trained model lives in :mod:`inl_sim.study.ratecurve`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.special import logsumexp, rel_entr

from inl_sim.errors import ScenarioError, field_error
from inl_sim.learning.information import nats_to_bits
from inl_sim.learning.ratedistortion import blahut_arimoto

__all__ = ["CurvePoint", "RateCurve", "parse_slopes", "oracle_rate", "zero_rate_slope", "accuracy_rate_curve"]

log = logging.getLogger(__name__)
_ORACLE_TOL = 1e-12
_S_LO, _S_HI = 0.1, 50.0    # nats per unit distortion: below, BA crawls; above, exp(-s) < 2e-22
_N_COARSE = 8


@dataclass(frozen=True)
class CurvePoint:
    """One point of the accuracy-rate curve (``s`` in nats per unit distortion)."""

    kind: str            # "fixed" (R = 0 end), "ba" (Blahut-Arimoto at slope s), "oracle" (D_min end)
    s: float | None
    rate_bits: float
    distortion: float
    converged: bool = True
    iterations: int = 0

    @property
    def accuracy(self) -> float:
        return 1.0 - self.distortion

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "s": self.s, "rate_bits": self.rate_bits, "distortion": self.distortion,
                "accuracy": self.accuracy, "converged": self.converged, "iterations": self.iterations}


@dataclass(frozen=True)
class RateCurve:
    """R(D) of one distortion matrix: the exact R = 0 end, BA points by slope, the oracle end."""

    points: tuple[CurvePoint, ...]
    best_fixed: int                 # column of the lowest mean distortion (the first among ties)
    d_max: float                    # its distortion: R(D) = 0 from here on
    d_min: float                    # oracle distortion: mean over rows of the row minimum
    oracle_rate_bits: float         # R(D_min)
    oracle_weights: NDArray[np.float64] = field(repr=False)  # (n_options,) option use at D_min
    max_rate_bits: float = 0.0      # log2(n_options), no router needs more


def _check_count(n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise field_error(ScenarioError, "slopes", n, "must be a count >= 1", "use e.g. --slopes 16")


def parse_slopes(text: str | None) -> int | NDArray[np.float64]:
    """``--slopes``: a count (``16``, adaptive) or a comma list of slopes (``0.5,1,2,8``); None: 16."""
    if text is None:
        return 16
    try:
        if "," not in text and text.strip().isdigit():
            _check_count(int(text))
            return int(text)
        values = np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError as exc:
        raise field_error(ScenarioError, "--slopes", text, "is neither a count nor a comma list of numbers",
                          "use e.g. --slopes 16 or --slopes 0.5,1,2,8") from exc
    if not np.all(np.isfinite(values) & (values > 0)):
        raise field_error(ScenarioError, "--slopes", text, "must be finite and > 0",
                          "give positive slopes (nats per unit distortion)")
    return values


def _compress(d: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Unique rows (with their probability) and unique columns of a distortion matrix.

    Exact for R(D): BA's channel depends on x only through d[x, .], so X and the chosen
    option are independent given the row, and duplicate columns add nothing a split of
    probability between them could exploit.  Returns (p_rows, d_unique, first column of
    each unique column); it makes 2^m-option banks on thousands of samples cheap.
    """
    rows, counts = np.unique(d, axis=0, return_counts=True)
    _, first_col = np.unique(rows.T, axis=0, return_index=True)
    first_col = np.sort(first_col)
    return counts / counts.sum(), rows[:, first_col], first_col


def oracle_rate(distortion: ArrayLike, p_x: ArrayLike | None = None, *, tol: float = _ORACLE_TOL,
                max_iter: int = 100_000) -> tuple[float, NDArray[np.float64]]:
    """R(D_min) in nats and the option weights q that achieve it (the s -> inf end of BA).

    At D_min each x must pick among its best options A_x; the least I(X;O) is then
    min_q -sum_x p(x) log q(A_x), with p(o|x) = q(o) / q(A_x) on A_x.  That objective is
    convex in q and its fixed point q <- q * sum_x p(x) 1[o in A_x] / q(A_x) is BA with
    s = inf; stop when log max of that factor (a bound on the gap) is below ``tol``.
    """
    d = np.asarray(distortion, dtype=np.float64)
    p = np.full(d.shape[0], 1.0 / d.shape[0]) if p_x is None else np.asarray(p_x, dtype=np.float64)
    best = (d <= d.min(axis=1, keepdims=True)).astype(np.float64)       # (n_x, n_o) 1[o in A_x]
    if best.all(axis=0).any():          # one option is best everywhere: zero rate, reached exactly
        return 0.0, np.eye(d.shape[1])[int(np.argmax(best.all(axis=0)))]
    q = np.full(d.shape[1], 1.0 / d.shape[1])
    for _ in range(max_iter):
        c = (p / (best @ q)) @ best                                      # (n_o,)
        q = q * c
        q /= q.sum()
        if math.log(c.max()) < tol:
            break
    else:
        log.warning("oracle_rate: gap still %.3g after %d iterations", math.log(c.max()), max_iter)
    return max(float(-(p @ np.log(best @ q))), 0.0) + 0.0, q      # + 0.0: no -0.0 in tables


def zero_rate_slope(distortion: ArrayLike, p_x: ArrayLike | None = None) -> float:
    """The slope s_c (nats per unit distortion) up to which R(D) sits at its zero-rate end.

    The BA dual F(q) = -E_x log sum_o q(o) exp(-s d(x,o)) is convex, so q = delta at the
    best column o* is optimal iff no vertex direction descends: E exp(-s (d(x,o) -
    d(x,o*))) <= 1 for every o.  Each left side is convex in s and 1 at s = 0, so s_c is
    the least positive root over o: log(b/a) for 0/1 distortion, with a = P(o right, o*
    wrong), b = P(o wrong, o* right).  ``inf`` when no option ever beats o*.
    """
    d = np.asarray(distortion, dtype=np.float64)
    p = np.full(d.shape[0], 1.0 / d.shape[0]) if p_x is None else np.asarray(p_x, dtype=np.float64)
    delta = d - d[:, [int(np.argmin(p @ d))]]                             # (n_x, n_o) d(x,o) - d(x,o*)
    s_c = math.inf
    for col in delta.T[(delta < 0).any(axis=0)]:
        if p @ col <= 0:
            return 0.0                                                    # a tie with o*
        def g(s: float, col: NDArray[np.float64] = col) -> float:
            return float(logsumexp(-s * col, b=p))
        lo, hi = 1e-9, 1e-9
        while g(hi) < 0:
            lo, hi = hi, hi * 2
        s_c = min(s_c, brentq(g, lo, hi, xtol=1e-12) if lo < hi else 0.0)
    return s_c


def _rate_bits(p: NDArray[np.float64], channel: NDArray[np.float64]) -> float:
    """I(X; option) in bits as sum_x p(x) KL(W(.|x) || q), robust to denormal channel entries.

    Multiplying p(x) into a denormal W(o|x) can underflow to 0 and turn the KL of a joint
    into inf; weighting each row's KL by p(x) afterwards cannot.
    """
    q = np.maximum(p @ channel, np.finfo(np.float64).tiny)                # (n_o,)
    return float(nats_to_bits(max(float(p @ rel_entr(channel, q).sum(axis=1)), 0.0)))


def _ba_point(p: NDArray[np.float64], d: NDArray[np.float64], s: float, tol: float, max_iter: int) -> CurvePoint:
    pt = blahut_arimoto(p, d, s, tol=tol, max_iter=max_iter)
    return CurvePoint("ba", pt.s, _rate_bits(p, pt.channel), pt.distortion, pt.converged, pt.iterations)


def _adaptive_points(p: NDArray[np.float64], d: NDArray[np.float64], n: int, ends: tuple[CurvePoint, CurvePoint],
                     tol: float, max_iter: int) -> list[CurvePoint]:
    """``n`` BA points placed where the curve moves, not where a fixed grid happens to fall.

    Start from a coarse geometric grid above the zero-rate slope s_c (below it BA only
    crawls toward the known R = 0 end), then split (geometric mean of s) the pair of
    neighbours, exact ends included, farthest apart in (R, D) scaled to the curve's span.
    """
    s_c = zero_rate_slope(d, p)
    if math.isinf(s_c) or ends[0].distortion - ends[1].distortion <= 0:
        return []                                                         # the oracle is the best fixed option
    s_lo = max(s_c, _S_LO) * 1.05
    pts = [_ba_point(p, d, s, tol, max_iter) for s in np.geomspace(s_lo, max(_S_HI, 4 * s_lo), min(n, _N_COARSE))]
    r_span = max(ends[1].rate_bits, 1e-12)
    d_span = ends[0].distortion - ends[1].distortion
    while len(pts) < n:
        chain = [(s_c, ends[0].rate_bits, ends[0].distortion)] + [(pt.s, pt.rate_bits, pt.distortion) for pt in pts]
        chain.append((math.inf, ends[1].rate_bits, ends[1].distortion))
        splits = [(math.hypot((b[1] - a[1]) / r_span, (b[2] - a[2]) / d_span), _split(a[0], b[0]))
                  for a, b in zip(chain, chain[1:])]
        gap, s_new = max(((g, s) for g, s in splits if s >= _S_LO), default=(0.0, 0.0))
        if gap < 1e-4:
            break
        pts = sorted(pts + [_ba_point(p, d, s_new, tol, max_iter)], key=lambda pt: pt.s)
    return pts


def _split(lo: float, hi: float) -> float:
    """The slope between two neighbours: geometric mean; x4 past the last, /2 before the first."""
    return lo * 4 if math.isinf(hi) else hi / 2 if lo <= 0 else math.sqrt(lo * hi)


def _as_slopes(slopes: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(slopes, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr) & (arr > 0)):
        raise field_error(ScenarioError, "slopes", slopes, "must be a non-empty list of finite numbers > 0",
                          "give slopes in nats per unit distortion, e.g. [0.5, 1, 2, 8], or a count")
    return arr


def accuracy_rate_curve(distortion: ArrayLike, slopes: int | ArrayLike = 16, *, tol: float = 1e-6,
                        max_iter: int = 10_000) -> RateCurve:
    """R(D) of a uniform source over the rows of ``distortion`` (n_x, n_options).

    Parameters
    ----------
    distortion : array_like
        d[x, o] >= 0, e.g. 1 where option o misclassifies sample x.
    slopes : int or array_like
        A count of Blahut-Arimoto points placed adaptively along the curve, or explicit
        slopes s > 0 (nats per unit distortion).
    tol, max_iter
        Passed to :func:`inl_sim.learning.information.blahut_arimoto`; ``tol`` bounds how far (nats)
        a point's R + sD may sit above the curve's supporting line, 1e-6 is far below what
        a plot or a 1/n_test accuracy step resolves, and BA converges slowly (sublinearly)
        where the set of used options changes.

    Returns
    -------
    RateCurve
        The R = 0 end (best fixed option), BA points by rising slope, the oracle end
        (its rate from :func:`oracle_rate`).
    """
    d = np.asarray(distortion, dtype=np.float64)
    if d.ndim != 2 or 0 in d.shape:
        raise field_error(ScenarioError, "distortion.shape", d.shape, "must be (n_x, n_options) with both >= 1",
                          "pass one row per test sample and one column per option")
    p_rows, d_u, first_col = _compress(d)
    rate_nats, q_u = oracle_rate(d_u, p_rows)
    col_means = d.mean(axis=0)
    ends = (CurvePoint("fixed", None, 0.0, float(col_means.min())),
            CurvePoint("oracle", None, float(nats_to_bits(rate_nats)), float(d.min(axis=1).mean())))
    if np.ndim(slopes) == 0:
        _check_count(slopes)
        ba = _adaptive_points(p_rows, d_u, int(slopes), ends, tol, max_iter)
    else:
        ba = [_ba_point(p_rows, d_u, float(s), tol, max_iter) for s in _as_slopes(slopes)]
    # in slope order, which theory makes the order of rising rate and falling distortion
    points = [ends[0], *sorted(ba, key=lambda pt: pt.s), ends[1]]
    weights = np.zeros(d.shape[1])
    weights[first_col] = q_u
    return RateCurve(tuple(points), int(col_means.argmin()), ends[0].distortion, ends[1].distortion,
                     ends[1].rate_bits, weights, math.log2(d.shape[1]))

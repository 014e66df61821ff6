"""Accuracy-rate curve of a finite bank of routing options at the fusion node.

A trained fusion node could use any subset of its children's messages.  A router that
sees each sample and names the option to use must convey I(X; O) bits per sample about
its choice (the finite-expert-bank view of finite-rate gating).  With distortion
d[x, o] = 1 when option o misclassifies test sample x, Blahut-Arimoto gives the least
such rate for every expected error: R(D), read as accuracy 1 - D against rate.  Its ends
are exact and reported on their own: R = 0 at the best fixed option, and the oracle
(the best option per sample) at D_min with the rate R(D_min) it needs.

Modelling choices (options of :func:`rate_curve`, recorded in ``summary.json``):

* bank: every subset of the fusion node's children, up to ``max_full`` (6) children;
  beyond that only none, singletons, leave-one-out and all (BA's cost grows with 2^m);
* fill: an unused child's message is replaced by its mean over the training set's
  messages (``mean``, default: what the fusion node expects when told nothing) or by
  zeros (``zero``); the fusion node's own view, if it senses, is always used;
* p(x) uniform over the test samples.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
import yaml
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.special import logsumexp, rel_entr

from inl_sim import __version__
from inl_sim.errors import RoutingError, ScenarioError, field_error
from inl_sim.experiment import RunSetup, prepare, train
from inl_sim.information import blahut_arimoto, nats_to_bits
from inl_sim.modules import forward_trace
from inl_sim.results import atomic_dir, write_json, write_table
from inl_sim.scenario import Scenario, load_scenario, scenario_to_dict

__all__ = ["FILLS", "RoutingOption", "CurvePoint", "RateCurve", "RateCurveStudy", "routing_bank",
           "fusion_messages", "fill_values", "option_predictions", "parse_slopes", "oracle_rate",
           "zero_rate_slope", "accuracy_rate_curve", "rate_curve", "rate_curve_of", "write_rate_curve",
           "rate_curve_figure"]

log = logging.getLogger(__name__)
NodeId = Hashable
FILLS = ("mean", "zero")
_ORACLE_TOL = 1e-12
_S_LO, _S_HI = 0.1, 50.0    # nats per unit distortion: below, BA crawls; above, exp(-s) < 2e-22
_N_COARSE = 8


@dataclass(frozen=True)
class RoutingOption:
    """One entry of the bank: which children's messages the fusion node uses."""

    index: int
    used: tuple[NodeId, ...]
    accuracy: float

    @property
    def label(self) -> str:
        return "+".join(map(str, self.used)) if self.used else "none"


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


@dataclass(frozen=True)
class RateCurveStudy:
    """A trained scenario, its bank of fusion options and their accuracy-rate curve."""

    scenario: Scenario
    seed: int
    fusion: NodeId
    children: tuple[NodeId, ...]
    fill: str
    options: tuple[RoutingOption, ...]
    distortion: NDArray[np.float64] = field(repr=False)   # (n_test, n_options)
    curve: RateCurve = field(repr=False)
    history: list[dict] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The flat numbers written to ``summary.json``."""
        c, best = self.curve, self.options[self.curve.best_fixed]
        full = next(o for o in self.options if len(o.used) == len(self.children))
        return {"scenario": self.scenario.name, "seed": self.seed, "mode": self.scenario.routing.mode,
                "fusion": self.fusion, "children": list(self.children), "fill": self.fill,
                "n_options": len(self.options), "n_test": int(self.distortion.shape[0]),
                "best_fixed_option": best.label, "best_fixed_accuracy": 1.0 - c.d_max,
                "full_option_accuracy": full.accuracy, "oracle_accuracy": 1.0 - c.d_min,
                "oracle_rate_bits": c.oracle_rate_bits, "max_rate_bits": c.max_rate_bits,
                "package_version": __version__, "torch_version": torch.__version__}

    def to_markdown(self, max_rows: int = 12) -> str:
        """A compact table: the headline numbers, then up to ``max_rows`` curve points."""
        s, pts = self.summary(), self.curve.points
        keep = sorted({round(i * (len(pts) - 1) / max(1, max_rows - 1)) for i in range(min(max_rows, len(pts)))})
        lines = [f"fusion node {s['fusion']!r}, children {s['children']}: {s['n_options']} options, "
                 f"fill={s['fill']}, {s['n_test']} test samples",
                 f"best fixed option {s['best_fixed_option']}: accuracy {s['best_fixed_accuracy']:.4f} (rate 0)",
                 f"all children: accuracy {s['full_option_accuracy']:.4f}",
                 f"oracle (best option per sample): accuracy {s['oracle_accuracy']:.4f} at "
                 f"{s['oracle_rate_bits']:.4f} bits/sample (log2 options = {s['max_rate_bits']:.2f})",
                 "", "| kind | s (nats) | rate (bits) | accuracy |", "|---|---:|---:|---:|"]
        lines += [f"| {p.kind} | {'' if p.s is None else f'{p.s:.3g}'} | {p.rate_bits:.4f} | {p.accuracy:.4f} |"
                  for p in (pts[i] for i in keep)]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the bank
def routing_bank(children: Sequence[NodeId], *, max_full: int = 6) -> tuple[tuple[NodeId, ...], ...]:
    """Subsets of ``children`` the fusion node may use, smallest first, the full set last.

    Every subset while ``len(children) <= max_full``.  Beyond that the bank keeps none,
    each singleton, each leave-one-out set and all children (2m + 2 options) and logs
    that it was capped: BA's cost grows with options x distinct error patterns, and 64
    options on 1024 test samples already take ~25 s for 16 points.
    """
    _check_max_full(max_full)
    m = len(children)
    if m <= max_full:
        return tuple(s for k in range(m + 1) for s in itertools.combinations(children, k))
    log.warning("rate-curve: fusion node has %d children > max_full=%d; bank capped to none, singletons, "
                "leave-one-out and all (%d options instead of 2^%d); raise --max-children for every subset",
                m, max_full, 2 * m + 2, m)
    leave_one_out = [tuple(c for c in children if c != skip) for skip in children]
    return tuple(dict.fromkeys([(), *((c,) for c in children), *leave_one_out, tuple(children)]))


def _check_max_full(max_full: object) -> None:
    if isinstance(max_full, bool) or not isinstance(max_full, int) or max_full < 0:
        raise field_error(ScenarioError, "max_full", max_full, "must be an integer >= 0",
                          "use e.g. --max-children 6 (2^6 = 64 options)")


def _eval_generators(setup: RunSetup) -> dict[NodeId, torch.Generator]:
    # The streams experiment.evaluate uses, so that the full option reproduces its accuracy.
    return {v: torch.Generator().manual_seed(10_007 + i) for i, v in enumerate(setup.graph.order)}


def fusion_messages(setup: RunSetup, split: str = "test") -> dict[NodeId, torch.Tensor]:
    """Messages (N, d) arriving at the fusion node from each child, as ``evaluate`` sees them.

    Eval mode, no gradient, through the forward codec; keyed by child in graph order.
    """
    data, codec = setup.dataset, setup.engine.forward_codec
    views = data.test_views if split == "test" else data.train_views
    for m in setup.modules.values():
        m.eval()
    try:
        with torch.no_grad():
            trace = forward_trace(setup.graph, setup.modules, views, _eval_generators(setup),
                                  wire=lambda t: codec.encode(t).tensor)
    finally:
        for m in setup.modules.values():
            m.train()
    return {c: trace.messages[c] for c in setup.graph.children[setup.graph.fusion]}


def _check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise field_error(ScenarioError, "fill", fill, f"must be one of {list(FILLS)}",
                          "use --fill mean (training-set mean message) or --fill zero")


def fill_values(train_messages: Mapping[NodeId, torch.Tensor], fill: str) -> dict[NodeId, torch.Tensor]:
    """The (d,) message that stands in for each unused child: training mean or zeros."""
    _check_fill(fill)
    return {c: m.mean(0) if fill == "mean" else torch.zeros(m.shape[1]) for c, m in train_messages.items()}


def option_predictions(setup: RunSetup, bank: Sequence[Sequence[NodeId]], messages: Mapping[NodeId, torch.Tensor],
                       fills: Mapping[NodeId, torch.Tensor], split: str = "test") -> NDArray[np.int64]:
    """Predicted class (N, n_options) of the fusion module under each option of the bank."""
    fusion = setup.graph.fusion
    module, children = setup.modules[fusion], setup.graph.children[fusion]
    data = setup.dataset
    own = (data.test_views if split == "test" else data.train_views).get(fusion)
    n = next(iter(messages.values())).shape[0]
    preds = np.empty((n, len(bank)), dtype=np.int64)
    module.eval()
    try:
        with torch.no_grad():
            for j, used in enumerate(bank):
                inputs = [messages[c] if c in used else fills[c].expand(n, -1) for c in children]  # each (N, d)
                preds[:, j] = module(own, inputs).message.argmax(-1).numpy()                     # (N, C) -> (N,)
    finally:
        module.train()
    return preds


# --------------------------------------------------------------------------- the curve (numpy)
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
        Passed to :func:`inl_sim.information.blahut_arimoto`; ``tol`` bounds how far (nats)
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


# --------------------------------------------------------------------------- the study
def rate_curve(scenario: Scenario | str | Path | Mapping, seed: int | None = None, *,
               slopes: int | ArrayLike = 16, fill: str = "mean", max_full: int = 6,
               progress: bool | None = False) -> RateCurveStudy:
    """Train ``scenario`` once, then trace the accuracy-rate curve of its fusion options.

    Parameters
    ----------
    scenario
        A Scenario, YAML path or dict.
    seed
        Run seed (default: ``scenario.seed``).
    slopes, fill, max_full
        See :func:`rate_curve_of`.
    progress
        Progress bar over training epochs (None: only on an interactive terminal).
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    _check_fill(fill)                   # bad options fail before the (long) training
    _check_max_full(max_full)
    setup = prepare(sc, sc.seed if seed is None else int(seed))
    _fusion_children(setup)
    history = train(setup, label="rate-curve", progress=progress)
    return rate_curve_of(setup, slopes=slopes, fill=fill, max_full=max_full, history=history)


def _fusion_children(setup: RunSetup) -> tuple[NodeId, ...]:
    fusion = setup.graph.fusion
    children = tuple(setup.graph.children[fusion])
    if not children:
        raise field_error(RoutingError, f"children of fusion node {fusion!r}", children,
                          f"must be non-empty in the {setup.graph.mode} training graph (no message reaches it)",
                          "use a topology where the fusion node has at least one neighbour")
    return children


def rate_curve_of(setup: RunSetup, *, slopes: int | ArrayLike = 16, fill: str = "mean", max_full: int = 6,
                  history: list[dict] | None = None) -> RateCurveStudy:
    """The accuracy-rate curve of the fusion options of an already trained ``setup``.

    Parameters
    ----------
    setup
        From :func:`inl_sim.experiment.prepare`, trained with :func:`~inl_sim.experiment.train`.
    slopes
        A count of BA points (placed adaptively) or explicit slopes; see
        :func:`accuracy_rate_curve`.
    fill
        Stand-in for an unused child's message: ``mean`` (training-set mean) or ``zero``.
    max_full
        Largest number of children whose 2^m subsets are all in the bank.
    history
        The training history, kept for the results folder.
    """
    children = _fusion_children(setup)
    bank = routing_bank(children, max_full=max_full)
    fills = fill_values(fusion_messages(setup, "train"), fill)
    preds = option_predictions(setup, bank, fusion_messages(setup, "test"), fills)   # (N, n_options)
    wrong = (preds != setup.dataset.test_labels.numpy()[:, None]).astype(np.float64)
    options = tuple(RoutingOption(j, tuple(used), float(1.0 - wrong[:, j].mean())) for j, used in enumerate(bank))
    curve = accuracy_rate_curve(wrong, slopes)
    log.info("rate-curve %s seed %d: best fixed %.4f, oracle %.4f at %.3f bits", setup.scenario.name, setup.seed,
             1 - curve.d_max, 1 - curve.d_min, curve.oracle_rate_bits)
    return RateCurveStudy(setup.scenario, setup.seed, setup.graph.fusion, children, fill, options, wrong, curve,
                          list(history or []))


def write_rate_curve(study: RateCurveStudy, out_dir: str | Path) -> Path:
    """Write rate_curve.csv/.json, options.csv, rate_curve.html and provenance, atomically."""
    resolved = scenario_to_dict(study.scenario)
    resolved["seed"] = study.seed
    points = [pt.row() for pt in study.curve.points]
    weights = study.curve.oracle_weights
    options = [{"option": o.index, "label": o.label, "used": " ".join(map(str, o.used)), "n_used": len(o.used),
                "accuracy": o.accuracy, "oracle_weight": float(weights[o.index])} for o in study.options]
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / "scenario.resolved.yaml").write_text(
            f"# resolved scenario of rate-curve, seed {study.seed}\n" + yaml.safe_dump(resolved, sort_keys=False),
            encoding="utf-8")
        write_json(tmp / "summary.json", study.summary())
        write_json(tmp / "history.json", study.history)
        write_table(tmp / "rate_curve.csv", points)
        write_json(tmp / "rate_curve.json", {"summary": study.summary(), "points": points})
        write_table(tmp / "options.csv", options)
        rate_curve_figure(study).write_html(tmp / "rate_curve.html", include_plotlyjs=True, full_html=True)
    return Path(out_dir)


def rate_curve_figure(study: RateCurveStudy, *, top_options: int = 20) -> Any:
    """Interactive plotly figure: the accuracy-rate curve, and the best fixed options beside it.

    Fixed options sit at R = 0 but span accuracies far below the curve (a lone child is
    a poor classifier), so they get their own panel instead of squashing the curve's axis.
    """
    try:
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a declared dependency
        raise ImportError("rate-curve plots need plotly: pip install plotly") from exc
    c, pts = study.curve, study.curve.points
    shown = sorted(study.options, key=lambda o: -o.accuracy)[:top_options][::-1]     # best on top
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.16, subplot_titles=(
        "least routing rate for each accuracy (Blahut-Arimoto)",
        f"fixed options (rate 0): best {len(shown)} of {len(study.options)}"))
    fig.add_trace(go.Scatter(
        x=[p.rate_bits for p in pts], y=[p.accuracy for p in pts], mode="lines+markers", name="R(D)",
        customdata=[[p.kind, "" if p.s is None else f"{p.s:.3g}"] for p in pts],
        hovertemplate="rate %{x:.4f} bits<br>accuracy %{y:.4f}<br>%{customdata[0]} s=%{customdata[1]}<extra></extra>"),
        row=1, col=1)
    for name, x, y, symbol in (("best fixed option", 0.0, 1 - c.d_max, "diamond"),
                               ("oracle (best option per sample)", c.oracle_rate_bits, 1 - c.d_min, "star")):
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=name, marker={"symbol": symbol, "size": 14},
                                 hovertemplate=f"{name}<br>rate %{{x:.4f}} bits<br>accuracy %{{y:.4f}}<extra></extra>"),
                      row=1, col=1)
    weights = c.oracle_weights
    fig.add_trace(go.Bar(
        x=[o.accuracy for o in shown], y=[o.label for o in shown], orientation="h", name="fixed options",
        customdata=[weights[o.index] for o in shown],
        hovertemplate="uses %{y}<br>accuracy %{x:.4f}<br>weight at the oracle %{customdata:.3f}<extra></extra>"),
        row=1, col=2)
    fill = "their training-set mean" if study.fill == "mean" else "zeros"
    fig.update_layout(
        title=f"{study.scenario.name} seed {study.seed} ({study.scenario.routing.mode}): accuracy vs routing rate at "
              f"fusion node {study.fusion!r}<br><sub>{len(study.options)} options (log2 = {c.max_rate_bits:.2f} "
              f"bits at most); unused messages replaced by {fill}</sub>",
        template="plotly_white", height=max(560, 100 + 22 * len(shown)), margin={"t": 120},
        legend={"orientation": "h", "y": -0.15})
    fig.update_xaxes(title_text="rate I(sample; option) (bits/sample)", row=1, col=1)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_xaxes(title_text="test accuracy", row=1, col=2)
    return fig

"""Accuracy-rate curve of a finite bank of routing options at the fusion node.

A trained fusion node could use any subset of its children's messages.  A router that
sees each sample and names the option to use must convey I(X; O) bits per sample about
its choice (the finite-expert-bank view of finite-rate gating).  With distortion
d[x, o] = 1 when option o misclassifies test sample x, Blahut-Arimoto gives the least
such rate for every expected error: R(D), read as accuracy 1 - D against rate.  Its ends
are exact and reported on their own: R = 0 at the best fixed option, and the oracle
(the best option per sample) at D_min with the rate R(D_min) it needs.

The curve maths on the distortion matrix (numpy only) lives in :mod:`inl_sim.learning.curves`;
its public names are re-exported here.  This module builds the bank over a trained
model, runs the study, writes the results folder and draws the figure.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
import yaml
from numpy.typing import ArrayLike, NDArray

from inl_sim import __version__
from inl_sim.learning.curves import (CurvePoint, RateCurve, accuracy_rate_curve, oracle_rate, parse_slopes,
                            zero_rate_slope)
from inl_sim.errors import RoutingError, ScenarioError, field_error
from inl_sim.study.experiment import RunSetup, prepare, train
from inl_sim.learning.modules import forward_trace
from inl_sim.study.results import atomic_dir, write_json, write_table
from inl_sim.scenario import Scenario, load_scenario, scenario_to_dict

__all__ = ["FILLS", "RoutingOption", "CurvePoint", "RateCurve", "RateCurveStudy", "routing_bank",
           "fusion_messages", "fill_values", "option_predictions", "parse_slopes", "oracle_rate",
           "zero_rate_slope", "accuracy_rate_curve", "rate_curve", "rate_curve_of", "write_rate_curve",
           "rate_curve_figure"]

log = logging.getLogger(__name__)
NodeId = Hashable
FILLS = ("mean", "zero")


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
        From :func:`inl_sim.study.experiment.prepare`, trained with :func:`~inl_sim.study.experiment.train`.
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
    with atomic_dir(Path(out_dir), kind="rate-curve") as tmp:
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

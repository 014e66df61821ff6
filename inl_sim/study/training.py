"""The epoch loop and evaluation of one prepared run.

:func:`train` shuffles, runs the engine over an epoch, evaluates and appends one history
row per epoch; :func:`evaluate` runs the composed model on a split.  Every byte count in
the history comes from the ledger's records.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Hashable, Iterable, Mapping

import torch
from torch.nn import functional as F

from inl_sim.errors import DivergedError
from inl_sim.learning.data import batch_indices, run_stream
from inl_sim.learning.dither import dither_generator
from inl_sim.learning.rates import ESTIMATOR_NAMES
from inl_sim.learning.sampled import EVAL_DITHER_SEED, sampled_forward
from inl_sim.learning.modules import composed_forward
from inl_sim.network.routing import TrainingGraph
from inl_sim.sim.metrics import NATS_PER_BIT, exchange_bytes
from inl_sim.study.repair import repair_if_needed
from inl_sim.study.setup import RunSetup

__all__ = ["train", "evaluate", "link_rate_bits", "estimator_rate_bits"]

log = logging.getLogger(__name__)
NodeId = Hashable


def train(setup: RunSetup, *, label: str = "", progress: bool | None = False,
          t0: float | None = None) -> list[dict]:
    """The epoch loop: shuffle, run the engine (fast or reference), evaluate, append one history row.

    Public so that studies needing the trained modules (e.g. ``rate-curve``) can call
    ``prepare`` then ``train`` and keep the :class:`RunSetup`.
    """
    sc = setup.scenario
    t0 = time.perf_counter() if t0 is None else t0
    shuffle = run_stream(setup.seed)
    n = setup.dataset.n_train
    history, seen = [], 0
    for epoch in _epochs(sc.training.epochs, f"{sc.name} {label} seed {setup.seed}", progress):
        repaired = repair_if_needed(setup, epoch)
        try:
            stats = setup.engine.run_epoch(epoch, list(batch_indices(n, sc.training.batch_size, shuffle)))
        except DivergedError as exc:
            exc.history = history  # the epochs completed before the non-finite step
            if exc.reason is None:
                where = f" at node {exc.node!r}" if exc.node is not None else ""
                exc.reason = (f"training diverged in epoch {exc.epoch}, step {exc.step}{where}: the loss is not "
                              f"finite; lower training.lr (now {sc.training.lr}) or gate.beta (now {sc.gate.beta})")
            raise
        ev = setup.last_evaluation = evaluate(setup)
        epoch_bytes = exchange_bytes(setup.ledger.records[seen:])
        seen = len(setup.ledger.records)
        rate_bits = link_rate_bits(setup.graph, ev["rate_nats"])
        history.append({
            "epoch": epoch, "train_loss": stats.loss_sum / max(1, stats.samples),
            "train_accuracy": stats.correct / max(1, stats.samples),
            "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
            "rate_bits": sum(rate_bits.values()) if rate_bits else None,
            "accuracy_sampled": ev["accuracy_sampled"], **estimator_rate_bits(setup.graph, ev["rate_estimates_nats"]),
            "train_rate_bits": _train_rate_bits(setup.graph, stats),
            "exchange_bytes": epoch_bytes["total"], "exchange_bytes_forward": epoch_bytes["forward"],
            "exchange_bytes_backward": epoch_bytes["backward"], "sim_time_s": setup.engine.sim_time_s,
            "exchange_bytes_cumulative": epoch_bytes["total"] + (history[-1]["exchange_bytes_cumulative"]
                                                                 if history else 0),
            "wall_time_s": time.perf_counter() - t0, **_fault_row(setup, repaired),
        })
        log.info("%s %s seed %d epoch %d: test accuracy %.4f", sc.name, label, setup.seed, epoch, ev["accuracy"])
        _check_finite(history, setup)
    return history


def _fault_row(setup: RunSetup, repaired: dict | None) -> dict:
    """Per-epoch fault counters (dropped inputs, lost attempts, repairs); empty without faults."""
    if setup.faults is None:
        return {}
    counts = setup.faults.epoch_counts()
    return {**{f"faults_{k}": v for k, v in counts.items()}, "faults_repaired": repaired is not None,
            "n_active_edges": len(setup.graph.edges)}


def _check_finite(history: list[dict], setup: RunSetup) -> None:
    """Raise :class:`DivergedError` (with the history so far) when the epoch's mean train
    loss is not finite; an optimiser that blew up must not end as a plausible result."""
    row = history[-1]
    if math.isfinite(row["train_loss"]):
        return
    sc = setup.scenario
    err = DivergedError(row["epoch"], -1, setup.graph.fusion,
                        reason=f"training diverged in epoch {row['epoch']}: mean train loss is {row['train_loss']}; "
                               f"lower training.lr (now {sc.training.lr}) or gate.beta (now {sc.gate.beta})")
    err.history = history  # the rows up to the diverged epoch
    raise err


def _epochs(n: int, desc: str, progress: bool | None) -> Iterable[int]:
    from tqdm.auto import tqdm
    disable = None if progress is None else not progress
    return tqdm(range(n), desc=desc, unit="epoch", disable=disable, leave=False)


def link_rate_bits(graph: TrainingGraph, rate_nats: Mapping[NodeId, float]) -> dict:
    """Per active link (child, parent): the child's gate rate, in bits per sample."""
    return {(c, p): rate_nats[c] / NATS_PER_BIT for c, p in graph.edges if c in rate_nats}


def estimator_rate_bits(graph: TrainingGraph, estimates: Mapping[NodeId, Mapping[str, float]]) -> dict:
    """``rate_bits_<estimator>``: each estimator's rate summed over active links (None if no Gaussian gate)."""
    out = {}
    for name in ESTIMATOR_NAMES:
        per_link = link_rate_bits(graph, {v: e[name] for v, e in estimates.items()})
        out[f"rate_bits_{name}"] = sum(per_link.values()) if per_link else None
    return out


def _train_rate_bits(graph: TrainingGraph, stats: Any) -> float | None:
    if not stats.rate_nats_sum or not stats.steps:
        return None
    per_node = {v: s / stats.steps for v, s in stats.rate_nats_sum.items()}
    return sum(link_rate_bits(graph, per_node).values())


def evaluate(setup: RunSetup, *, split: str = "test", sampled: bool = True) -> dict[str, Any]:
    """Accuracy, loss and per-node rate (nats/sample) of the composed model on a split.

    Gates run in evaluation mode (Gaussian: the mean unless ``gate.eval_sample``;
    Gumbel: the arg-max codeword) with fixed generators, so evaluation never perturbs
    the training RNG streams.  Messages pass the forward codec, as in training.
    ``accuracy_sampled`` is the accuracy of the channel actually sampled (whose rate is
    reported) and ``rate_estimates_nats`` every rate estimator per node, from one more
    pass (:func:`inl_sim.learning.sampled.sampled_forward`), skipped with ``sampled=False``
    (both then None).  With faults (policies
    deadline and repair), links down at the end of the epoch deliver zeros, as in training:
    the accuracy is that of the network as it is.
    """
    data = setup.dataset
    views = data.test_views if split == "test" else data.train_views
    labels = data.test_labels if split == "test" else data.train_labels
    codec = setup.engine.forward_codec
    cut = setup.faults.cut_edges() if setup.faults is not None else ()   # links down now: zeros
    generators = {v: torch.Generator().manual_seed(10_007 + i) for i, v in enumerate(setup.graph.order)}
    for m in setup.modules.values():
        m.eval()
    try:
        with torch.no_grad():
            logits, rates = composed_forward(setup.graph, setup.modules, views, generators,
                                             wire=lambda t: codec.encode(
                                                 t, generator=dither_generator(EVAL_DITHER_SEED, 0)).tensor, cut=cut)
            sampled_logits, estimates = None, None
            if sampled:
                gens = {v: torch.Generator().manual_seed(20_011 + i) for i, v in enumerate(setup.graph.order)}
                sampled_logits, estimates = sampled_forward(setup.graph, setup.modules, views, gens, codec, cut)
    finally:
        for m in setup.modules.values():
            m.train()
    return {"accuracy": float((logits.argmax(-1) == labels).float().mean()),
            "loss": float(F.cross_entropy(logits, labels)),
            "rate_nats": {v: float(r) for v, r in rates.items()},
            "accuracy_sampled": None if sampled_logits is None else float((sampled_logits.argmax(-1) == labels)
                                                                          .float().mean()),
            "rate_estimates_nats": estimates}

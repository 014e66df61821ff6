"""The physical floor of a run: the same node modules trained as one plain PyTorch loop.

The simulator trains with autograd cut at every link, one SimPy process per node, one
backward and one optimiser step per node, and a transfer record per crossing.  The floor
does the same arithmetic with none of that: :func:`~inl_sim.learning.modules.composed_forward`
over all nodes, one cross-entropy, ONE backward, then the optimisers.  It uses the
modules, generators and optimiser settings that :func:`inl_sim.study.experiment.prepare` built
for the same seed and the mini-batches that :func:`inl_sim.study.experiment.train` draws, so
with ``float32`` messages it reaches the same parameters (up to float summation order).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch.nn import functional as F

from inl_sim.learning.data import batch_indices, run_stream
from inl_sim.study.experiment import RunSetup, evaluate
from inl_sim.learning.modules import composed_forward

__all__ = ["epoch_batches", "make_optimisers", "floor_train"]


def epoch_batches(setup: RunSetup) -> list[list[torch.Tensor]]:
    """The index tensors of every epoch, drawn exactly as ``inl_sim.study.experiment.train`` does."""
    sc = setup.scenario
    shuffle = run_stream(setup.seed)  # train()'s shuffle stream
    n = setup.dataset.n_train
    return [list(batch_indices(n, sc.training.batch_size, shuffle)) for _ in range(sc.training.epochs)]


def make_optimisers(setup: RunSetup, kind: str = "single", **overrides: Any) -> list[torch.optim.Optimizer]:
    """``single`` (the floor of issue #7): ONE optimiser over all parameters, ``foreach``;
    ``per_node``: one optimiser per node (INL's set, the 0.1 floor).

    Class and settings come from the scenario (``training.optimizer``, ``lr``,
    ``weight_decay``), as the engines build theirs; ``overrides`` replaces settings.
    """
    tr = setup.scenario.training
    cls = torch.optim.Adam if tr.optimizer == "adam" else torch.optim.SGD
    kw: dict[str, Any] = {"lr": tr.lr, "weight_decay": tr.weight_decay,
                          "foreach": kind == "single", **overrides}
    if kw.get("fused"):
        kw["foreach"] = None
    groups = [list(m.parameters()) for m in setup.modules.values()]
    groups = [g for g in groups if g]
    if kind == "single":
        return [cls([p for g in groups for p in g], **kw)]
    if kind == "per_node":
        return [cls(g, **kw) for g in groups]
    raise ValueError(f"optimiser kind {kind!r}: choose 'per_node' or 'single'")


def floor_train(setup: RunSetup, batches: Sequence[Sequence[torch.Tensor]],
                optimisers: Sequence[torch.optim.Optimizer], *,
                eval_fn: Callable[[RunSetup], dict] | None = None) -> list[dict]:
    """Train ``setup.modules`` as one model on ``batches``; optionally evaluate per epoch.

    Returns one row per epoch (train loss/accuracy, and the evaluation if asked).  Train
    statistics accumulate as tensors and are read once per epoch, as a plain loop would.
    """
    sc, graph, data = setup.scenario, setup.graph, setup.dataset
    if sc.message.encoding != "float32" or sc.message.grad_encoding != "float32":
        raise ValueError("the floor models float32 messages only; set message.encoding and "
                         "message.grad_encoding to float32 for the benchmark")
    # the floor owns the modules from here: the fast engine's stacked storage is not stepped
    generators = {v: rt.generator for v, rt in setup.engine.nodes.items()}
    penalties = [(v, rt.beta * len(graph.parents[v])) for v, rt in setup.engine.nodes.items()
                 if rt.beta > 0 and v != graph.fusion]
    history = []
    for epoch, epoch_idx in enumerate(batches):
        loss_sum, correct, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
        for idx in epoch_idx:
            views = {v: x[idx] for v, x in data.train_views.items()}            # each (B, d_view)
            labels = data.train_labels[idx]                                     # (B,)
            logits, rates = composed_forward(graph, setup.modules, views, generators)   # (B, C)
            loss = F.cross_entropy(logits, labels)
            objective = loss + sum(w * rates[v] for v, w in penalties) if penalties else loss
            for opt in optimisers:
                opt.zero_grad(set_to_none=True)
            objective.backward()
            for opt in optimisers:
                opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(-1) == labels).sum()
            seen += len(idx)
        row = {"epoch": epoch, "train_loss": float(loss_sum) / seen, "train_accuracy": int(correct) / seen}
        if eval_fn is not None:
            ev = eval_fn(setup)
            row.update(test_accuracy=ev["accuracy"], test_loss=ev["loss"])
        history.append(row)
    return history


def default_eval(setup: RunSetup) -> dict:
    """The run's own per-epoch evaluation (:func:`inl_sim.study.experiment.evaluate`)."""
    return evaluate(setup)

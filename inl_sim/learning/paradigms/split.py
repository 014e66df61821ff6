"""Centralised and split-learning training steps on a :class:`MultiViewNet`.

The split step cuts autograd at every sensor's cut activation: the server receives a
detached copy (what crossed the routes), backpropagates the top model, and the gradient
of each received copy is the error tensor sent back; each sensor then backpropagates
its bottom with that error.  The tensors returned are the ones that crossed, so the
ledger sizes every transfer from a real tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.nn import functional as F

from inl_sim.learning.paradigms.models import MultiViewNet

__all__ = ["StepOutcome", "central_step", "split_step"]


@dataclass(frozen=True)
class StepOutcome:
    """One step's loss sum, correct count, and the tensors that crossed the network (if any)."""

    loss_sum: float
    correct: int
    cuts: tuple[torch.Tensor, ...] = ()      # per sensor (B, cut_width), sensor -> server
    errors: tuple[torch.Tensor, ...] = ()    # per sensor (B, cut_width), server -> sensor


def _outcome(logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor, **sent: tuple) -> StepOutcome:
    n = labels.shape[0]
    return StepOutcome(float(loss.detach()) * n, int((logits.argmax(-1) == labels).sum()), **sent)


def central_step(net: MultiViewNet, optimizer: torch.optim.Optimizer, views: Sequence[torch.Tensor],
                 labels: torch.Tensor) -> StepOutcome:
    """One step of the whole model at the fusion node (nothing crosses a link)."""
    logits = net(views)                                                    # (B, C)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return _outcome(logits, labels, loss)


def split_step(net: MultiViewNet, optimizer: torch.optim.Optimizer, views: Sequence[torch.Tensor],
               labels: torch.Tensor) -> StepOutcome:
    """One SplitNN step, cut at the sensors' outputs; returns the activations and errors that crossed.

    ``optimizer`` holds every part's parameters: Adam and SGD update each element on its
    own, so one optimiser over all parts is the same as one per node.
    """
    cuts = net.cut(views)                                                  # at the sensors: [(B, cut)]
    received = [c.detach().requires_grad_(True) for c in cuts]             # what the server holds
    logits = net.head(received)                                            # (B, C)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()                                                        # top model + errors dL/dcut
    errors = [r.grad for r in received]                                    # at the server: [(B, cut)]
    torch.autograd.backward(cuts, errors)                                  # each sensor's bottom
    optimizer.step()
    return _outcome(logits, labels, loss, cuts=tuple(r.detach() for r in received), errors=tuple(errors))

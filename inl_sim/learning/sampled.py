"""The stochastic channel, evaluated: what the receiver gets when the gate samples.

Reported accuracy uses each gate's mean (or arg-max) by default, which is not the
channel whose rate is reported.  :func:`sampled_forward` runs the composed model with
every gate *sampling* (Gaussian: T = mu + sigma * eps; Gumbel: a hard draw from q) and
every message through the forward codec exactly as in training (a ``dithered`` codec
codes the mean with its shared dither), from fixed evaluation generators, and
collects every rate estimator of :mod:`inl_sim.learning.rates` per sending node on the
same pass.  That gives ``accuracy_sampled`` and the ``rate_bits_<estimator>`` columns.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Collection, Hashable, Iterator, Mapping

import torch

from inl_sim.learning.coding import Codec
from inl_sim.learning.dither import dither_generator
from inl_sim.learning.modules import NodeModule
from inl_sim.learning.rates import rate_estimates
from inl_sim.network.routing import TrainingGraph

__all__ = ["sampled_forward", "sampling_gates"]

NodeId = Hashable
EVAL_DITHER_SEED = 77_777   # evaluation's own shared dither stream (never training's)


@contextmanager
def sampling_gates(modules: Mapping[NodeId, NodeModule]) -> Iterator[None]:
    """Make every gate sample in evaluation mode for the duration of a block."""
    gates = [m.gate for m in modules.values() if m.gate is not None]
    for g in gates:
        g.force_sample = True
    try:
        yield
    finally:
        for g in gates:
            g.force_sample = False


def sampled_forward(graph: TrainingGraph, modules: Mapping[NodeId, NodeModule],
                    views: Mapping[NodeId, torch.Tensor], generators: Mapping[NodeId, torch.Generator],
                    codec: Codec, cut: Collection = ()) -> tuple[torch.Tensor, dict[NodeId, dict[str, float]]]:
    """Logits (B, C) of the sampled channel and, per Gaussian-gated node, every rate (nats/sample).

    The aggregate-posterior bounds use the whole split as one batch (B = its size).
    Call under ``torch.no_grad()`` with the modules in evaluation mode.
    """
    sent: dict[NodeId, torch.Tensor] = {}
    rates: dict[NodeId, dict[str, float]] = {}
    with sampling_gates(modules):
        for i, v in enumerate(graph.order):
            inputs = [torch.zeros_like(sent[c]) if (c, v) in cut else sent[c] for c in graph.children[v]]
            out = modules[v](views.get(v), inputs, generators[v])
            if v == graph.fusion:
                return out.message, rates
            if out.mu is not None and out.prior is not None:
                rates[v] = rate_estimates(out.mu, out.log_var, out.prior,
                                          torch.Generator().manual_seed(EVAL_DITHER_SEED + 1 + i))
            sent[v] = codec.encode(out.message, gate=out, generator=dither_generator(EVAL_DITHER_SEED, i)).tensor
    raise ValueError("internal: the processing order does not end at the fusion node")

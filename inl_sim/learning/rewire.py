"""Rewiring node modules onto a repaired training graph (``faults.policy: repair``).

When links or nodes fail, the training graph is rebuilt on the surviving network
(Dijkstra again); a node may then have other children than its module was built for.
The rule, chosen so that a repaired node first computes what it computed before, from
the inputs it still has:

* a node whose inputs (own view, then children in graph order) are unchanged keeps its
  module as it is;
* otherwise it gets a module of the new shape and keeps every part that still fits:
  encoder, gate, head and the aggregator's second layer unchanged; with ``concat``, the
  aggregator's first layer keeps the weight columns of every input it still has (matched
  by the sending node) and starts the columns of a new input at zero, so a newcomer is
  silent until training gives it weight (``mean``/``sum``: the aggregator is kept whole);
* a node that gains an aggregator it did not have (one input became two), or that was
  not in the training graph before, starts from a fresh seeded module;
* nodes cut off from the fusion node keep their modules, unused, until the network heals.

Optimiser state (Adam's moments) restarts with the repaired graph.
"""

from __future__ import annotations

from typing import Hashable, Mapping

import torch

from inl_sim.learning.modules import NodeModule, build_modules
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import GateSpec, ModelSpec

__all__ = ["rewire_modules", "input_layout"]

NodeId = Hashable
_OWN = ("own view",)


def input_layout(graph: TrainingGraph, v: NodeId, senses: bool) -> list:
    """The aggregator's inputs of node ``v`` in order: its own view (if it senses), then children."""
    return ([_OWN] if senses else []) + list(graph.children.get(v, ()))


def rewire_modules(old: TrainingGraph, new: TrainingGraph, modules: Mapping[NodeId, NodeModule],
                   view_dims: Mapping[NodeId, int], n_classes: int, model: ModelSpec, gate: GateSpec,
                   *, seed: int) -> dict[NodeId, NodeModule]:
    """Modules for ``new`` from those trained on ``old`` (see the module docstring for the rule).

    Returns every module of ``modules`` (cut-off nodes included) plus fresh ones for nodes
    new to the training graph; ``seed`` seeds the fresh parts.
    """
    fresh = build_modules(new, view_dims, n_classes, model, gate, seed=seed)
    out = dict(modules)
    for v in new.order:
        before = modules.get(v)
        if before is None or v not in old.children:
            out[v] = fresh[v]
            continue
        senses = v in view_dims
        was, now = input_layout(old, v, senses), input_layout(new, v, senses)
        if was == now:
            continue
        out[v] = _carry_over(before, fresh[v], was, now, model.latent_dim)
    return out


@torch.no_grad()
def _carry_over(before: NodeModule, module: NodeModule, was: list, now: list, width: int) -> NodeModule:
    for name in ("encoder", "gate", "head"):
        src, dst = getattr(before, name), getattr(module, name)
        if src is not None and dst is not None:
            dst.load_state_dict(src.state_dict())
    if before.aggregator is None or module.aggregator is None:
        return module                                  # a new aggregator starts fresh (seeded)
    if module.aggregation != "concat":
        module.aggregator.load_state_dict(before.aggregator.state_dict())
        return module
    first_old, first_new = before.aggregator[0], module.aggregator[0]
    first_new.weight.zero_()                           # (hidden, k_new * d)
    for j, source in enumerate(now):
        if source in was:
            i = was.index(source)
            first_new.weight[:, j * width:(j + 1) * width] = first_old.weight[:, i * width:(i + 1) * width]
    first_new.bias.copy_(first_old.bias)
    module.aggregator[2].load_state_dict(before.aggregator[2].state_dict())
    return module

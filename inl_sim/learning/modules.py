"""The neural modules that sit on the nodes, and their composition as one model.

A live node v holds one :class:`NodeModule`:

* an encoder ``x_v -> h_v`` if v senses,
* an aggregator over ``[h_v] + [messages from children]`` if it has two inputs or more
  (``concat`` then MLP, INL's choice; or ``mean`` / ``sum``, fixed width for any in-degree),
* a gate on the message it transmits (every node but the fusion node),
* a classifier head at the fusion node.

:func:`composed_forward` runs all node modules as ONE autograd graph: the reference the
engine's link-cut training must match gradient for gradient, the centralised baseline of
the benchmark, and the evaluation path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Collection, Hashable, Mapping

import torch
from torch import nn

from inl_sim.learning.gating import Gate, GateOutput, GumbelGate, make_gate
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import ModelSpec, GateSpec

__all__ = ["NodeModule", "ForwardTrace", "build_modules", "forward_trace", "composed_forward", "forward_flops"]

NodeId = Hashable


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class NodeModule(nn.Module):
    """Everything one node computes; it only ever sees its own view and its inputs."""

    def __init__(self, *, view_dim: int | None, n_children: int, spec: ModelSpec,
                 gate: Gate | None, n_classes: int | None) -> None:
        super().__init__()
        d = spec.latent_dim
        self.aggregation = spec.aggregation
        self.encoder = _mlp(view_dim, spec.hidden_dim, d) if view_dim is not None else None
        n_inputs = n_children + (view_dim is not None)
        width = d * n_inputs if spec.aggregation == "concat" else d
        self.aggregator = _mlp(width, spec.hidden_dim, d) if n_inputs >= 2 else None
        self.gate = gate
        self.head = nn.Linear(d, n_classes) if n_classes is not None else None

    def forward(self, x: torch.Tensor | None, inputs: list[torch.Tensor],
                generator: torch.Generator | None = None) -> GateOutput:
        """``x``: (B, d_view) or None; ``inputs``: children's messages, each (B, d).

        Returns the message (B, d) with its rate, or the logits (B, C) at the fusion node.
        """
        parts = ([self.encoder(x)] if self.encoder is not None else []) + list(inputs)
        if self.aggregator is None:
            z = parts[0]                                                   # (B, d)
        elif self.aggregation == "concat":
            z = self.aggregator(torch.cat(parts, dim=-1))                  # (B, k*d) -> (B, d)
        elif self.aggregation == "mean":
            z = self.aggregator(torch.stack(parts).mean(0))                # (B, d) -> (B, d)
        else:
            z = self.aggregator(torch.stack(parts).sum(0))                 # (B, d) -> (B, d)
        if self.head is not None:
            return GateOutput(self.head(z), None)                          # (B, C)
        return self.gate(z, generator) if self.gate is not None else GateOutput(z, None)

    def flops_per_sample(self) -> int:
        """Forward FLOPs per sample (2 per multiply-add of every linear map)."""
        own = [m for name, m in self.named_modules() if isinstance(m, nn.Linear) and not name.startswith("gate")]
        gate = self.gate.flops_per_sample() if self.gate is not None else 0
        return sum(2 * m.in_features * m.out_features for m in own) + gate


def build_modules(graph: TrainingGraph, view_dims: Mapping[NodeId, int], n_classes: int,
                  model: ModelSpec, gate: GateSpec, *, seed: int) -> dict[NodeId, NodeModule]:
    """One module per live node, initialised from a seed derived per node (order-stable).

    Node i's parameters are what ``torch.manual_seed(_node_seed(seed, i))`` followed by
    the module's construction draws; they are drawn from a per-node ``torch.Generator``
    with the same initialisers in the same order, because seeding torch's global RNG
    costs milliseconds per call (20 s at 10,000 nodes) and a generator costs nothing.
    """
    modules = {}
    with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG: scope it
        for i, v in enumerate(graph.order):
            is_fusion = v == graph.fusion
            make = lambda: NodeModule(view_dim=view_dims.get(v), n_children=len(graph.children[v]),  # noqa: E731
                                      spec=model, gate=None if is_fusion else make_gate(gate, model.latent_dim),
                                      n_classes=n_classes if is_fusion else None)
            module = make()
            if not _reinit(module, torch.Generator().manual_seed(_node_seed(seed, i))):
                torch.manual_seed(_node_seed(seed, i))   # a module _reinit does not know: the slow, exact way
                module = make()
            modules[v] = module
    return modules


def _reinit(module: NodeModule, generator: torch.Generator) -> bool:
    """Redraw the parameters as ``nn.Linear`` and the gates draw them at construction.

    Returns False (and draws nothing) when the module holds a parameter this function
    does not know how its constructor drew (e.g. a new gate's).
    """
    # construction order: the gate is built first (it is an argument of NodeModule), its
    # layer then its codebook; then encoder, aggregator, head
    gate_linears = [m for m in module.gate.modules() if isinstance(m, nn.Linear)] if module.gate is not None else []
    linears = gate_linears + [m for name, m in module.named_modules()
                              if isinstance(m, nn.Linear) and not name.startswith("gate")]
    known = {id(p) for m in linears for p in (m.weight, m.bias)}
    codebook = getattr(module.gate, "codebook", None) if isinstance(module.gate, GumbelGate) else None
    if codebook is not None:
        known.add(id(codebook))
    if any(id(p) not in known for p in module.parameters()) or any(m.bias is None for m in linears):
        return False
    with torch.no_grad():
        for i, m in enumerate(linears):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(m.in_features) if m.in_features > 0 else 0
            nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            if codebook is not None and i == len(gate_linears) - 1:   # right after the gate's layer
                k, d = codebook.shape
                codebook.copy_(torch.randn(k, d, generator=generator) / d ** 0.5)
    return True


def _node_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index * 7_919 + 17) % (2 ** 63 - 1)


@dataclass(frozen=True)
class ForwardTrace:
    """One composed forward pass: logits (B, C), rates (nats) and every message sent."""

    logits: torch.Tensor
    rates: dict[NodeId, torch.Tensor]
    messages: dict[NodeId, torch.Tensor]


def forward_trace(graph: TrainingGraph, modules: Mapping[NodeId, NodeModule],
                  views: Mapping[NodeId, torch.Tensor],
                  generators: Mapping[NodeId, torch.Generator] | None = None,
                  wire: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  cut: Collection[tuple[NodeId, NodeId]] = ()) -> ForwardTrace:
    """Run every node in processing order as one autograd graph.

    ``wire`` (optional) maps a message to what the receiver gets (a codec), so evaluation
    sees quantised messages like training does.  ``messages[v]`` is what v sent (after
    the wire), which studies of the fusion node's inputs (``rate-curve``) need.  Links in
    ``cut`` (child, parent) deliver zeros: a network with failed links (faults).
    """
    sent: dict[NodeId, torch.Tensor] = {}
    rates: dict[NodeId, torch.Tensor] = {}
    for v in graph.order:
        inputs = [torch.zeros_like(sent[c]) if (c, v) in cut else sent[c] for c in graph.children[v]]
        out = modules[v](views.get(v), inputs, generators[v] if generators else None)
        if out.rate_nats is not None:
            rates[v] = out.rate_nats
        if v == graph.fusion:
            return ForwardTrace(out.message, rates, sent)
        sent[v] = wire(out.message) if wire is not None else out.message
    raise ValueError("internal: the processing order does not end at the fusion node")


def composed_forward(graph: TrainingGraph, modules: Mapping[NodeId, NodeModule],
                     views: Mapping[NodeId, torch.Tensor],
                     generators: Mapping[NodeId, torch.Generator] | None = None,
                     wire: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     cut: Collection[tuple[NodeId, NodeId]] = ()) -> tuple[torch.Tensor, dict[NodeId, torch.Tensor]]:
    """Logits (B, C) and per-node rates of the whole model as one autograd graph.

    The reference that link-cut training must match gradient for gradient, and the
    centralised floor of the benchmark.
    """
    trace = forward_trace(graph, modules, views, generators, wire, cut)
    return trace.logits, trace.rates


def forward_flops(modules: Mapping[NodeId, NodeModule]) -> dict[NodeId, int]:
    """Forward FLOPs per sample of every node (backward is counted as twice this)."""
    return {v: m.flops_per_sample() for v, m in modules.items()}

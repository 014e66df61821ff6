"""The SimPy processes of one training run: nodes that compute, wait and transmit.

Each live node is a SimPy process looping over the mini-batches of an epoch:

1. wait for the message of every child (forward), compute, hand the gated, encoded
   message to the channel of every parent;
2. wait for the error of every parent (backward), back-propagate through its own
   module only, hand each child the error of that child's message, update its own
   parameters with its own optimiser.

Autograd is cut at every link: a received message is a fresh leaf tensor, and its
gradient travels back as an explicit tensor.  Every crossing is a :class:`Transfer`
record.  Links own time (serialisation + latency); compute time is FLOPs / node speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Hashable, Mapping, Sequence

import simpy
import torch
from torch.nn import functional as F

from inl_sim.sim.accounting import Ledger, Transfer
from inl_sim.errors import DivergedError
from inl_sim.learning.coding import Codec, Encoded, Float16Codec, Float32Codec, Int8Codec
from inl_sim.learning.dither import error_generator, keyed_errors
from inl_sim.learning.gating import GateOutput
from inl_sim.sim.links import Channel
from inl_sim.learning.modules import NodeModule
from inl_sim.network.routing import TrainingGraph

__all__ = ["NodeRuntime", "StepStats", "Engine"]

NodeId = Hashable
BACKWARD_FLOPS_FACTOR = 2.0  # backward costs about twice the forward pass
FIXED_WIDTH = (Float32Codec, Float16Codec, Int8Codec)   # sized without looking at values


@dataclass
class NodeRuntime:
    """What one node owns at run time: its module, optimiser, RNG, view and speed."""

    module: NodeModule
    optimizer: torch.optim.Optimizer | None   # None for a relay without parameters
    generator: torch.Generator
    view: torch.Tensor | None          # (N_train, d_view) or None
    flops_per_sample: int
    flops_per_s: float
    beta: float = 0.0


@dataclass
class StepStats:
    """Running sums over the steps of one epoch (filled by the fusion node and gates)."""

    loss_sum: float = 0.0
    correct: int = 0
    samples: int = 0
    rate_nats_sum: dict = field(default_factory=dict)
    steps: int = 0


class Engine:
    """Runs epochs of link-cut training on one SimPy clock that persists across epochs."""

    def __init__(self, graph: TrainingGraph, nodes: Mapping[NodeId, NodeRuntime], labels: torch.Tensor,
                 channels: Mapping[tuple[NodeId, NodeId], Channel], forward_codec: Codec,
                 backward_codec: Codec, ledger: Ledger, *, env: simpy.Environment,
                 apply_updates: bool = True) -> None:
        self.graph, self.nodes, self.labels = graph, nodes, labels
        self.channels, self.ledger, self.env = channels, ledger, env
        self.forward_codec, self.backward_codec = forward_codec, backward_codec
        self._edge_index: dict | None = None
        self.apply_updates = apply_updates
        self.stats = StepStats()
        self.epoch = 0
        self._sent: dict[NodeId, torch.Tensor] = {}   # last message per node, to name a divergence

    @property
    def sim_time_s(self) -> float:
        """The simulated clock (seconds since the first epoch began)."""
        return float(self.env.now)

    def run_epoch(self, epoch: int, batches: Sequence[torch.Tensor]) -> StepStats:
        """Train on ``batches`` (index tensors) and return the epoch's running sums."""
        self.epoch, self.stats = epoch, StepStats()
        for v in self.graph.order:
            body = self._fusion(batches) if v == self.graph.fusion else self._node(v, batches)
            self.env.process(body)
        self.env.run()
        return self.stats

    # ------------------------------------------------------------------ processes
    def _node(self, v: NodeId, batches: Sequence[torch.Tensor]) -> Generator:
        node, parents = self.nodes[v], self.graph.parents[v]
        fan_out = len(parents)
        for step, idx in enumerate(batches):
            inputs = yield from self._receive(self.graph.children[v], v, "forward")
            out = node.module(node.view[idx] if node.view is not None else None, inputs, node.generator)
            yield self.env.timeout(self._compute_s(node, len(idx)))
            self._sent[v] = out.message
            encoded = self._encode(v, step, out, node.generator)
            for p in parents:
                self._send(v, p, "forward", step, encoded.tensor, encoded.nbytes)
            errors = yield from self._receive(parents, v, "backward", step)
            if node.optimizer is not None:
                node.optimizer.zero_grad(set_to_none=True)
            error = errors[0] if fan_out == 1 else torch.stack(errors).sum(0)
            if out.rate_nats is not None:
                self._record_rate(v, out.rate_nats)
            if out.rate_nats is not None and node.beta > 0:
                # loss = CE + beta * sum over this node's out-links of its rate
                torch.autograd.backward([encoded.tensor, node.beta * fan_out * out.rate_nats], [error, None])
            else:
                encoded.tensor.backward(error)
            yield from self._finish_backward(v, node, inputs, step, len(idx))

    def _fusion(self, batches: Sequence[torch.Tensor]) -> Generator:
        v = self.graph.fusion
        node = self.nodes[v]
        for step, idx in enumerate(batches):
            inputs = yield from self._receive(self.graph.children[v], v, "forward")
            logits = node.module(node.view[idx] if node.view is not None else None, inputs, node.generator).message
            yield self.env.timeout(self._compute_s(node, len(idx)))
            labels = self.labels[idx]
            loss = F.cross_entropy(logits, labels)
            if not bool(torch.isfinite(loss)):
                raise DivergedError(self.epoch, step, self._first_non_finite())
            if node.optimizer is not None:
                node.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._record_step(loss, logits, labels)
            yield from self._finish_backward(v, node, inputs, step, len(idx))

    def _finish_backward(self, v: NodeId, node: NodeRuntime, inputs: list[torch.Tensor],
                         step: int, batch: int) -> Generator:
        """Spend the backward compute time, send each child its error, update."""
        yield self.env.timeout(BACKWARD_FLOPS_FACTOR * self._compute_s(node, batch))
        for child, received in zip(self.graph.children[v], inputs):
            grad = received.grad if received.grad is not None else torch.zeros_like(received)
            encoded = self.backward_codec.encode(grad, generator=self._error_generator(child, v, step))
            self._send(v, child, "backward", step, encoded.tensor, encoded.nbytes)
        if self.apply_updates and node.optimizer is not None:
            node.optimizer.step()

    def _error_generator(self, child: NodeId, parent: NodeId, step: int) -> torch.Generator | None:
        """The dither stream of the error on (child, parent), keyed by where it crosses."""
        if not keyed_errors(self.backward_codec):
            return None
        if self._edge_index is None:
            self._edge_index = {e: i for i, e in enumerate(self.graph.edges)}
        return error_generator(getattr(self.backward_codec, "seed", 0), self.epoch, step,
                               self._edge_index[(child, parent)])

    def _encode(self, v: NodeId, step: int, out: GateOutput, generator: torch.Generator) -> Encoded:
        """The message through the codec, once per sender; a non-finite message is a divergence."""
        if not isinstance(self.forward_codec, FIXED_WIDTH) and not bool(torch.isfinite(out.message).all()):
            raise DivergedError(self.epoch, step, v)
        return self.forward_codec.encode(out.message, gate=out, generator=generator)

    def _first_non_finite(self) -> NodeId | None:
        """The first node (processing order) whose last message or parameters are not finite."""
        for v in self.graph.order:
            msg = self._sent.get(v)
            params = list(self.nodes[v].module.parameters())
            if (msg is not None and not bool(torch.isfinite(msg).all())) or not all(
                    bool(torch.isfinite(p).all()) for p in params):
                return v
        return None

    # ------------------------------------------------------------------ messaging
    def _receive(self, sources: Sequence[NodeId], v: NodeId, direction: str,
                 step: int | None = None) -> Generator:
        """Wait for one message from each source; received activations become leaves."""
        received = []
        for src in sources:
            tensor = yield self.channels[(src, v)].mailbox.get()
            # a fresh leaf per receiver: in dense INL one payload goes to several parents,
            # and each must own the gradient it sends back
            received.append(tensor.detach().requires_grad_(True) if direction == "forward" else tensor)
        return received

    def _send(self, src: NodeId, dst: NodeId, direction: str, step: int,
              tensor: torch.Tensor, nbytes: int) -> None:
        """Hand a detached copy to the channel (autograd is cut here) and record the crossing."""
        now = self.env.now
        start, arrival = self.channels[(src, dst)].transmit(tensor.detach(), nbytes)
        self.ledger.add(Transfer(self.epoch, step, src, dst, direction, tensor.numel(), nbytes, now, start, arrival))

    @staticmethod
    def _compute_s(node: NodeRuntime, batch: int) -> float:
        return node.flops_per_sample * batch / node.flops_per_s

    # ------------------------------------------------------------------ statistics
    def _record_step(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        stats = self.stats
        n = labels.shape[0]
        stats.loss_sum += float(loss.detach()) * n
        stats.correct += int((logits.detach().argmax(-1) == labels).sum())
        stats.samples += n
        stats.steps += 1

    def _record_rate(self, v: NodeId, rate: torch.Tensor) -> None:
        sums = self.stats.rate_nats_sum
        sums[v] = sums.get(v, 0.0) + float(rate.detach())

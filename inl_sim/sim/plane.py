"""The learning plane: one training step of the whole training graph as ONE autograd graph.

The fast engine (``simulation.engine: fast``) computes what the reference engine
(:mod:`inl_sim.sim.engine`) computes, with none of its per-node machinery:

* nodes of one module signature at one level run as one :class:`StackedGroup`;
* the in-links of a group are one :class:`~inl_sim.sim.linkfn.LinkGather`: forward it
  delivers each child's coded message (coded once per sender), backward it codes each
  parent's error on each link and records its size; sizes come from the tensors that cross;
* the loss is cross-entropy + sum over senders of ``beta_v * fan_out_v * rate_v``, whose
  gradient is exactly the sum of the reference's per-node backward passes;
* ONE optimiser (Adam or SGD) over ONE flat buffer that holds every stacked parameter
  (:mod:`inl_sim.sim.flat`): both are element wise with equal step counters, so this is
  the per-node optimiser set, stepped in a few kernels instead of a few per tensor.  The
  kernels are torch's plain (single-tensor) ones, as the reference engine's per-node
  optimisers use: the same arithmetic per element.  (``fused`` would save ~15 us per
  quickstart step but rounds differently, and float16/int8 wires amplify that past the
  equivalence tests' 1e-5.)

Each epoch's transfers leave as an ``EpochTraffic`` (no tensors, no times); the network
plane (:mod:`inl_sim.sim.timing`) gives them send/start/arrival times, and the ledger
receives them as columns.
"""

from __future__ import annotations

import logging
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from inl_sim.errors import DivergedError
from inl_sim.learning.coding import Codec, Float32Codec
from inl_sim.network.routing import TrainingGraph
from inl_sim.sim.engine import NodeRuntime, StepStats
from inl_sim.sim.flat import FlatParameters
from inl_sim.sim.linkfn import FIXED_WIDTH, GroupLink, NonFiniteMessage, encode_stack, gather
from inl_sim.sim.stacked import SingleGroup, StackedGroup, signature, stackable
from inl_sim.sim.traffic import TrafficRecorder

__all__ = ["FastEngine", "levels"]

log = logging.getLogger(__name__)
NodeId = Hashable


def levels(graph: TrainingGraph) -> dict[NodeId, int]:
    """Depth from the leaves: 0 for a node without children, else 1 + its deepest child."""
    level: dict[NodeId, int] = {}
    for v in graph.order:   # processing order: children before parents
        level[v] = 1 + max((level[c] for c in graph.children[v]), default=-1)
    return level


class FastEngine:
    """Trains epochs as batched one-graph steps; same interface as the reference ``Engine``."""

    def __init__(self, graph: TrainingGraph, nodes: Mapping[NodeId, NodeRuntime], labels: torch.Tensor,
                 forward_codec: Codec, backward_codec: Codec, recorder: TrafficRecorder, *,
                 optimizer: str, lr: float, weight_decay: float, device: str = "cpu",
                 apply_updates: bool = True) -> None:
        self.graph, self.nodes = graph, nodes
        self.forward_codec, self.backward_codec = forward_codec, backward_codec
        self.recorder, self.apply_updates = recorder, apply_updates
        self.device = torch.device(device)
        self.labels = labels.to(self.device)
        self.epoch, self.stats = 0, StepStats()
        self._index = {v: i for i, v in enumerate(graph.order)}
        self.groups = self._build_groups()
        self._wire_links()
        self.flat, self._loose = self._flatten()
        tensors = ([self.flat.flat] if self.flat is not None else []) + self._loose
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self.optimizer = cls(tensors, lr=lr, weight_decay=weight_decay, foreach=False) if tensors else None

    @property
    def sim_time_s(self) -> float:
        return self.recorder.now_s

    # ------------------------------------------------------------------ building
    def _build_groups(self) -> list:
        """Group nodes by (level, signature) in processing order; the fusion node last."""
        level = levels(self.graph)
        buckets: dict[tuple, list[NodeId]] = {}
        singles = []
        for v in self.graph.order:
            module = self.nodes[v].module
            if not stackable(module):
                singles.append(v)
                continue
            key = (level[v], v == self.graph.fusion, signature(module, len(self.graph.children[v])))
            buckets.setdefault(key, []).append(v)
        modules = {v: rt.module for v, rt in self.nodes.items()}
        views = {v: rt.view for v, rt in self.nodes.items() if rt.view is not None}
        groups: list = [StackedGroup(vs, modules, views, self.device) for vs in buckets.values()]
        groups += [SingleGroup(v, self.nodes[v], self.device) for v in singles]
        rank = {id(g): (level[g.nodes[0]], g.nodes[0] == self.graph.fusion) for g in groups}
        groups.sort(key=lambda g: rank[id(g)])
        for g in groups:
            g.generators = [self.nodes[v].generator for v in g.nodes]
            g.weights = torch.tensor([self.nodes[v].beta * len(self.graph.parents[v]) for v in g.nodes],
                                     dtype=torch.float32, device=self.device)
            g.penalised = bool((g.weights > 0).any())
        return groups

    def _flatten(self) -> tuple[FlatParameters | None, list[torch.Tensor]]:
        """The stacked groups' parameters as views of ONE buffer; a per-node fallback group
        keeps its module's own tensors (stepped beside the buffer, gradients set to None)."""
        stacked = [g for g in self.groups if isinstance(g, StackedGroup)]
        loose = [p for g in self.groups if not isinstance(g, StackedGroup) for p in g.params.values()]
        names = [(g, name) for g in stacked for name in g.params]
        if not names:
            return None, loose
        flat = FlatParameters([g.params[name] for g, name in names])
        adopted: dict[int, dict[str, torch.nn.Parameter]] = {}
        for (g, name), view in zip(names, flat.views):
            adopted.setdefault(id(g), {})[name] = view
        for g in stacked:
            g.adopt(adopted.get(id(g), {}))
        return flat, loose

    def _wire_links(self) -> None:
        """One :class:`GroupLink` per parent group: all its in-links (slot-major rows)."""
        where = {v: (gi, row) for gi, g in enumerate(self.groups) for row, v in enumerate(g.nodes)}
        edge_id = {e: i for i, e in enumerate(self.graph.edges)}
        for g in self.groups:
            n_slots, n = len(self.graph.children[g.nodes[0]]), len(g)
            g.n_slots, g.link, g.direct = n_slots, None, None
            if not n_slots:
                continue
            pairs: dict[int, tuple[list, list]] = {}
            edge_of_row = np.zeros(n_slots * n, dtype=np.int64)
            for k in range(n_slots):
                for row, p in enumerate(g.nodes):
                    child = self.graph.children[p][k]
                    src_group, src_row = where[child]
                    pairs.setdefault(src_group, ([], []))
                    pairs[src_group][0].append(src_row)
                    pairs[src_group][1].append(k * n + row)
                    edge_of_row[k * n + row] = edge_id[(child, p)]
            maps = [(torch.tensor(s, device=self.device), torch.tensor(d, device=self.device))
                    for s, d in pairs.values()]
            g.link = GroupLink(n_slots * n, list(pairs), maps, edge_of_row, self.backward_codec)
            g.direct = self._direct_slots(g, n_slots, where)
        self.edge_child = np.array([self._index[c] for c, _ in self.graph.edges], dtype=np.int32)
        self.edge_parent = np.array([self._index[p] for _, p in self.graph.edges], dtype=np.int32)
        self.group_rows = [np.array([self._index[v] for v in g.nodes], dtype=np.int64) for g in self.groups]

    def _direct_slots(self, g: Any, n_slots: int, where: dict) -> list[int] | None:
        """Per slot, the group whose whole message (rows in order) this slot receives, if every
        slot has one and errors are float32: then the inputs are those tensors, no gather."""
        if not isinstance(self.backward_codec, Float32Codec):
            return None
        direct = []
        for k in range(n_slots):
            sources = [where[self.graph.children[p][k]] for p in g.nodes]
            gi = sources[0][0]
            if any(s != (gi, row) for row, s in enumerate(sources)) or len(self.groups[gi]) != len(g):
                return None
            direct.append(gi)
        return direct

    # ------------------------------------------------------------------ training
    def run_epoch(self, epoch: int, batches: Sequence[torch.Tensor]) -> StepStats:
        """Train on ``batches`` (index tensors) and return the epoch's running sums."""
        self.epoch, self.stats = epoch, StepStats()
        rate_sums = [torch.zeros(len(g), dtype=torch.float64, device=self.device) for g in self.groups]
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        self.recorder.start_epoch(epoch, len(self.graph.edges))
        for step, idx in enumerate(batches):
            try:
                loss, logits, labels = self._step(step, idx, rate_sums)
            except DivergedError:
                # the steps that completed crossed the links: time them and keep their records
                # (the reference engine also holds the forward messages of the step that diverged)
                self.recorder.finish_epoch()
                raise
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.detach().argmax(-1) == labels).sum()
            self.stats.samples += len(idx)
            self.stats.steps += 1
        self.stats.loss_sum, self.stats.correct = float(loss_sum), int(correct)
        for g, sums in zip(self.groups, rate_sums):
            if g.has_rate:
                self.stats.rate_nats_sum.update(zip(g.nodes, sums.tolist()))
        for g in self.groups:   # the modules hold the trained weights and the last step's gradients
            g.sync_modules()
            g.expose_grads()
        self.recorder.finish_epoch()
        return self.stats

    def _step(self, step: int, idx: torch.Tensor, rate_sums: list[torch.Tensor]) -> tuple:
        batch = len(idx)
        idx_dev = idx.to(self.device)
        node_bytes = np.zeros(len(self.graph.order), dtype=np.int64)
        back_bytes = np.zeros(len(self.graph.edges), dtype=np.int64)
        sent: list[torch.Tensor | None] = [None] * len(self.groups)
        penalty, logits = None, None
        keep = self.recorder.begin_step(step, batch)   # (E,) inputs that arrive in time, or None: all
        for gi, g in enumerate(self.groups):
            x = g.views[:, idx_dev] if g.views is not None else None              # (G, B, d_view)
            inputs: list[torch.Tensor] = []
            if g.link is not None and g.direct is not None:    # float32 errors, whole messages
                back_bytes[g.link.edge_of_row] = batch * self._width() * 4
                inputs = [sent[s] for s in g.direct]
            elif g.link is not None:
                g.link.sink, g.link.where = back_bytes, (self.epoch, step)
                received = gather(g.link, [sent[s] for s in g.link.sources])   # (k*G, B, d)
                inputs = list(received.view(g.n_slots, len(g), *received.shape[1:]).unbind(0))
            if keep is not None and inputs:
                inputs = self._drop_late(g, inputs, keep)
            out, rate = g.forward(x, inputs, g.draw_noise(batch, g.generators))
            if g.nodes[0] == self.graph.fusion:
                logits = out[0]                                                    # (B, C)
                continue
            if rate is not None:
                rate_sums[gi] += rate.detach().double()
                if g.penalised:
                    term = (g.weights * rate).sum()
                    penalty = term if penalty is None else penalty + term
            sent[gi] = self._encode(g, out, rate, step)
            node_bytes[self.group_rows[gi]] = g.last_nbytes
        labels = self.labels[idx_dev]
        loss = F.cross_entropy(logits, labels)
        if not bool(torch.isfinite(loss)):
            raise DivergedError(self.epoch, step, self._first_non_finite(sent))
        objective = loss if penalty is None else loss + penalty
        if self.flat is not None:
            self.flat.zero_grad()         # in place: the parameters' .grad are views of it
        for p in self._loose:
            p.grad = None
        objective.backward()
        if self.apply_updates and self.optimizer is not None:
            self.optimizer.step()
        self.recorder.add_step(step, batch, node_bytes[self.edge_child], back_bytes,
                               self.edge_child, self.edge_parent, batch * self._width())
        return loss, logits, labels

    def _drop_late(self, g: Any, inputs: list[torch.Tensor], keep: np.ndarray) -> list[torch.Tensor]:
        """Zeros in the slots of inputs the network plane dropped (faults, ``deadline``): the
        receiver computes without them and no error flows back to their senders."""
        n = len(g)
        out = []
        for k, x in enumerate(inputs):                                     # x: (G, B, d)
            kept = keep[g.link.edge_of_row[k * n:(k + 1) * n]]
            if kept.all():
                out.append(x)
                continue
            mask = torch.as_tensor(kept, dtype=x.dtype, device=x.device)
            out.append(x * mask[:, None, None])
        return out

    def _encode(self, g: Any, out: torch.Tensor, rate: torch.Tensor | None, step: int) -> torch.Tensor:
        """The group's messages through the message codec, once per sender."""
        try:
            fixed = isinstance(self.forward_codec, FIXED_WIDTH)
            decoded, nbytes = encode_stack(self.forward_codec, out, generators=g.generators,
                                           gates=None if fixed else g.gate_outputs(out, rate))
        except NonFiniteMessage as exc:
            raise DivergedError(self.epoch, step, g.nodes[exc.index]) from None
        g.last_nbytes = nbytes
        return decoded

    def _width(self) -> int:
        fusion = self.nodes[self.graph.fusion].module
        return int(fusion.head.in_features)

    def _first_non_finite(self, sent: list[torch.Tensor | None]) -> NodeId | None:
        """The first node (processing order) whose message or parameters are not finite."""
        bad: list[NodeId] = []
        for g, msgs in zip(self.groups, sent):
            for row, v in enumerate(g.nodes):
                finite = all(bool(torch.isfinite(p).all()) for p in g.node_params(row))
                if msgs is not None:
                    finite = finite and bool(torch.isfinite(msgs[row]).all())
                if not finite:
                    bad.append(v)
        return min(bad, key=self._index.__getitem__) if bad else None

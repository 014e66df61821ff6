"""Batched node modules: G nodes of one module signature computed as one module.

Nodes at the same level (depth from the leaves) with the same parameter shapes and gate
kind run as one :class:`StackedGroup`: every ``nn.Linear`` of the G modules becomes one
stacked weight (G, out, in) and bias (G, out), applied with ``torch.baddbmm``.  The
arithmetic is :class:`~inl_sim.learning.modules.NodeModule`'s, row for row.

The stacked tensors are the parameters that train (the learning plane makes them views
of one flat buffer, :mod:`inl_sim.sim.flat`, and hands them over with
:meth:`StackedGroup.adopt`).  On the CPU each node module's parameters are rebound to
*views* of the stacked storage, so the modules always hold
the current weights (evaluation, ``composed_forward``, rate curves read them with no
copy); on another device the modules are refreshed by :meth:`StackedGroup.sync_modules`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
from typing import Hashable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from inl_sim.learning.gating import GateOutput, GaussianGate, GumbelGate, NoGate
from inl_sim.learning.information import gaussian_kl_standard_normal
from inl_sim.learning.rates import RATE_ESTIMATORS, moment_matched_prior, move_prior
from inl_sim.learning.modules import NodeModule

__all__ = ["StackedGroup", "SingleGroup", "signature", "stackable"]

log = logging.getLogger(__name__)

NodeId = Hashable
#: The gates the batched path reproduces, with a fingerprint of the source of their
#: ``__init__`` and ``forward`` as verified by tests/test_equivalence.py.  A gate whose code
#: changed (or a new gate) runs per node through its own module (:class:`SingleGroup`),
#: which is exact by construction, until the batched path is checked against it again.
_VERIFIED = {NoGate: "a9efc98805d2510b", GaussianGate: "24af0d9ecb907244", GumbelGate: "e182cb1671da52d4"}


@functools.lru_cache(maxsize=None)
def _verified(cls: type) -> bool:
    try:
        src = inspect.getsource(cls.forward) + inspect.getsource(cls.__init__)
    except (OSError, TypeError):
        src = ""
    ok = cls in _VERIFIED and hashlib.sha256(src.encode()).hexdigest()[:16] == _VERIFIED[cls]
    if not ok:
        log.warning("gate %s is not verified for the batched path: its nodes run one by one", cls.__name__)
    return ok


#: buffers the batched path keeps stacked beside the parameters (the Gaussian gate's
#: learned prior, updated every batch); a gate with any other buffer runs per node
_STACKED_BUFFERS = {GaussianGate: {"prior_mean", "prior_log_var"}}


def stackable(module: NodeModule) -> bool:
    """Modules the batched path reproduces exactly (verified gates, the standard MLPs)."""
    if module.gate is None:
        return True
    buffers = {name for name, _ in module.gate.named_buffers()}
    return buffers <= _STACKED_BUFFERS.get(type(module.gate), set()) and _verified(type(module.gate))


def signature(module: NodeModule, n_children: int) -> tuple:
    """Two modules with equal signatures can be stacked: same inputs, parameter names and shapes."""
    return (n_children, type(module.gate).__name__, module.aggregation, module.encoder is not None,
            module.aggregator is not None, module.head is not None,
            tuple((n, tuple(p.shape)) for n, p in module.named_parameters()))


def _rebind(module: nn.Module, dotted: str, value: nn.Parameter) -> None:
    *path, leaf = dotted.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, leaf, value)


class StackedGroup:
    """G same-signature nodes: stacked parameters, stacked views, one batched forward."""

    def __init__(self, nodes: Sequence[NodeId], modules: Mapping[NodeId, NodeModule],
                 views: Mapping[NodeId, torch.Tensor], device: torch.device) -> None:
        self.nodes = list(nodes)
        self.modules = [modules[v] for v in self.nodes]
        first = self.modules[0]
        self.template = first
        self.device = device
        self.params: dict[str, nn.Parameter] = {}
        per_module = [[p.detach() for p in m.parameters()] for m in self.modules]
        for j, (name, _) in enumerate(first.named_parameters()):
            self.params[name] = nn.Parameter(torch.stack([ps[j] for ps in per_module]).to(device))  # (G, *shape)
        has_view = first.encoder is not None
        self.views = torch.stack([views[v] for v in self.nodes]).to(device) if has_view else None  # (G, N, dv)
        gate = first.gate
        self.gate_kind = "none" if gate is None or isinstance(gate, NoGate) else type(gate).__name__
        if isinstance(gate, GumbelGate):
            self.temperature, self.hard = gate.temperature, gate.hard
        if isinstance(gate, GaussianGate):
            self._stack_prior(gate)
        self.has_rate = self.gate_kind != "none" and first.head is None

    def __len__(self) -> int:
        return len(self.nodes)

    def _stack_prior(self, gate: GaussianGate) -> None:
        """The nodes' learned priors as (G, d) buffers; on the CPU the modules' buffers
        become rows of them, so evaluation reads the prior training moved."""
        self.rate_kind, self.momentum = gate.rate, gate.PRIOR_MOMENTUM
        self.prior = [torch.stack([getattr(m.gate, name).detach() for m in self.modules]).to(self.device)
                      for name in ("prior_mean", "prior_log_var")]                    # (G, d) each
        if self.device.type == "cpu":
            for g, m in enumerate(self.modules):
                m.gate.prior_mean, m.gate.prior_log_var = self.prior[0][g], self.prior[1][g]

    # ------------------------------------------------------------------ parameters
    def adopt(self, params: Mapping[str, nn.Parameter]) -> None:
        """Train ``params`` (same names and shapes, e.g. views of the plane's flat buffer);
        on the CPU each module's parameters become rows of them, so the modules always
        hold the current weights."""
        self.params = dict(params)
        if self.device.type != "cpu":
            return
        for name, stacked in self.params.items():
            for m, row in zip(self.modules, stacked.detach().unbind(0)):
                _rebind(m, name, nn.Parameter(row))

    def sync_modules(self) -> None:
        """Copy the stacked parameters into the node modules (no-op for CPU views)."""
        if self.device.type == "cpu":
            return
        with torch.no_grad():
            for g, m in enumerate(self.modules):
                named = dict(m.named_parameters())
                for name, stacked in self.params.items():
                    named[name].copy_(stacked[g].to(named[name].device))
                if self.gate_kind == "GaussianGate":
                    m.gate.prior_mean.copy_(self.prior[0][g].to(m.gate.prior_mean.device))
                    m.gate.prior_log_var.copy_(self.prior[1][g].to(m.gate.prior_log_var.device))

    def expose_grads(self) -> None:
        """Give each module parameter its row of the stacked gradient (for inspection)."""
        for g, m in enumerate(self.modules):
            named = dict(m.named_parameters())
            for name, stacked in self.params.items():
                named[name].grad = None if stacked.grad is None else stacked.grad[g].to(named[name].device)

    def node_params(self, row: int) -> list[torch.Tensor]:
        return [p[row] for p in self.params.values()]

    def gate_outputs(self, out: torch.Tensor, rate: torch.Tensor | None) -> list[GateOutput]:
        """Each sender's gate output (message and rate; a Gaussian gate's channel and prior
        too), for codecs that need the gate."""
        if self.gate_kind == "GaussianGate":
            mu, sigma, (m, log_v) = self._channel
            return [GateOutput(out[g], rate[g], mu[g], sigma[g], (m[g], log_v[g])) for g in range(len(self.nodes))]
        return [GateOutput(out[g], None if rate is None else rate[g]) for g in range(len(self.nodes))]

    # ------------------------------------------------------------------ forward
    def _linear(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        w, b = self.params[f"{prefix}.weight"], self.params[f"{prefix}.bias"]   # (G, o, i), (G, o)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))              # (G, B, o)

    def _mlp(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        return self._linear(f"{prefix}.2", torch.relu(self._linear(f"{prefix}.0", x)))

    def draw_noise(self, batch: int, generators: Sequence[torch.Generator]) -> torch.Tensor | None:
        """Each node's gate noise from its own generator (the reference's draws), stacked."""
        if self.gate_kind == "none" or self.template.head is not None:
            return None
        gate = self.template.gate
        return torch.stack([gate.draw_noise(batch, gen) for gen in generators]).to(self.device)

    def forward(self, x: torch.Tensor | None, inputs: list[torch.Tensor],
                noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (G, B, d_view) or None, ``inputs`` each (G, B, d) -> message (G, B, d) or
        logits (G, B, C), and the per-node rate (G,) in nats (None without a rate)."""
        m = self.template
        parts = ([self._mlp("encoder", x)] if m.encoder is not None else []) + list(inputs)
        if m.aggregator is None:
            z = parts[0]
        elif m.aggregation == "concat":
            z = self._mlp("aggregator", torch.cat(parts, dim=-1))
        elif m.aggregation == "mean":
            z = self._mlp("aggregator", torch.stack(parts).mean(0))
        else:
            z = self._mlp("aggregator", torch.stack(parts).sum(0))
        if m.head is not None:
            return self._linear("head", z), None
        if self.gate_kind == "GaussianGate":
            mu, log_var = self._linear("gate.stats", z).chunk(2, dim=-1)          # (G, B, d) each
            return self._gaussian(mu, log_var.clamp(-12.0, 6.0), noise)
        if self.gate_kind == "GumbelGate":
            return self._gumbel(z, noise)
        return z, None

    def _gaussian(self, mu: torch.Tensor, log_var: torch.Tensor, noise: torch.Tensor) -> tuple:
        """GaussianGate.forward for G nodes: sample, penalised rate (G,), prior update."""
        prior = (self.prior[0].clone(), self.prior[1].clone())   # what receivers held before this batch
        with torch.no_grad():   # each node's moment-matched prior, moved by the gate's momentum
            m, log_v = torch.vmap(moment_matched_prior)(mu, log_var)               # (G, d) each
        move_prior(self.prior[0], self.prior[1], m, log_v, self.momentum)
        sigma = torch.exp(0.5 * log_var)
        t = mu + sigma * noise                                                     # (G, B, d)
        if self.rate_kind == "kl_standard_normal":
            rate = gaussian_kl_standard_normal(mu, log_var).mean(-1)               # (G,)
        else:
            fn = RATE_ESTIMATORS[self.rate_kind]
            rate = torch.vmap(lambda mu_, lv_, pm, plv, t_: fn(mu_, lv_, prior=(pm, plv), t=t_))(
                mu, log_var, prior[0], prior[1], t)
        self._channel = (mu, sigma, prior)
        return t, rate

    def _gumbel(self, z: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self._linear("gate.logits", z)                                   # (G, B, K)
        log_q = torch.log_softmax(logits / self.temperature, dim=-1)
        q = log_q.exp()
        mi = _row_entropy(q.mean(1)) - _row_entropy(q).mean(-1)                   # (G,)
        rate = mi + (mi.clamp(0.0, math.log(q.shape[-1])) - mi).detach()
        u = noise.clamp(1e-10, 1.0 - 1e-7)
        y = torch.softmax((log_q - torch.log(-torch.log(u))) / self.temperature, dim=-1)   # (G, B, K)
        if self.hard:
            y = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype) - y.detach() + y
        return torch.bmm(y, self.params["gate.codebook"]), rate                  # (G, B, d)


def _row_entropy(q: torch.Tensor) -> torch.Tensor:
    """-sum q log q over the last axis (as ``learning.information``'s plug-in estimator)."""
    return -(q * torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))).sum(-1)


class SingleGroup:
    """Fallback for a module the stacked path does not know (e.g. a new gate): the node's
    own module, called per node, on the CPU.  Same interface as :class:`StackedGroup`."""

    def __init__(self, v: NodeId, runtime: object, device: torch.device) -> None:
        if device.type != "cpu":
            from inl_sim.errors import ScenarioError
            raise ScenarioError(f"simulation.device: 'cuda' cannot batch node {v!r} (gate "
                                f"{type(runtime.module.gate).__name__}); use simulation.device: cpu")
        self.nodes, self.module, self.view = [v], runtime.module, runtime.view
        self.params = dict(self.module.named_parameters())
        self.views = None if self.view is None else self.view.unsqueeze(0)         # (1, N, dv)
        self.has_rate = self.module.gate is not None and not isinstance(self.module.gate, NoGate)

    def __len__(self) -> int:
        return 1

    def sync_modules(self) -> None:
        """The module's own parameters train: nothing to copy."""

    def expose_grads(self) -> None:
        """The module's own parameters hold their gradients already."""

    def node_params(self, row: int) -> list[torch.Tensor]:
        return list(self.params.values())

    def draw_noise(self, batch: int, generators: Sequence[torch.Generator]) -> None:
        return None   # the module's gate draws from the node's generator itself

    def forward(self, x: torch.Tensor | None, inputs: list[torch.Tensor],
                noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.module(None if x is None else x[0], [i[0] for i in inputs], self.generators[0])
        self._last = out                      # the gate's own output, for codecs that need it
        rate = None if out.rate_nats is None else out.rate_nats.reshape(1)
        return out.message.unsqueeze(0), rate

    def gate_outputs(self, out: torch.Tensor, rate: torch.Tensor | None) -> list[GateOutput]:
        return [self._last]

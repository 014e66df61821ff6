"""Gates: what a node does to its latent Z before it leaves as the message T.

D-INL models each node's routing/aggregation as a finite-rate stochastic gate whose rate
R_g = I(Z;T) is penalised in the loss.  A gate is an ``nn.Module`` returning the message
and a differentiable estimate of its rate (nats per sample); the engine only calls the
registry, so a new gate is one class plus one entry in :data:`GATES`.

* ``none``: T = Z, no rate (reported as not applicable).
* ``gaussian``: T = mu(Z) + sigma(Z) * eps; the rate penalised is chosen by ``gate.rate``
  from :data:`inl_sim.learning.rates.RATE_ESTIMATORS` (default: mean KL(N(mu, sigma^2) ||
  N(0, I)), the variational upper bound of the information bottleneck).  The gate keeps
  a moment-matched factorised Gaussian prior (``kl_learned_prior``) and returns mu,
  sigma and that prior with the message, so codecs (``dithered``) and the side-by-side
  rate report can use them.
* ``gumbel``: T = codebook[k], k drawn by a Gumbel-softmax over K choices; rate =
  plug-in I(Z;T) = H(mean q) - mean H(q) over the batch, at most log K, with
  q(t|z) = softmax(logits / temperature) the channel whose relaxed samples are sent
  (their arg-max is distributed as q); as the temperature goes to 0 the choices become
  deterministic and the rate becomes the entropy of the routing decisions, which is
  also what evaluation (arg-max choice) reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from inl_sim.errors import ScenarioError
from inl_sim.learning.information import plugin_mutual_information
from inl_sim.learning.rates import RATE_DESCRIPTIONS, RATE_ESTIMATORS, moment_matched_prior, move_prior
from inl_sim.scenario import GateSpec

__all__ = ["GateOutput", "Gate", "NoGate", "GaussianGate", "GumbelGate", "GATES", "make_gate"]


@dataclass(frozen=True)
class GateOutput:
    """The message to transmit and its rate estimate (nats per sample, or None).

    A Gaussian gate also returns its channel: ``mu`` and ``sigma`` (B, d) and its learned
    ``prior`` (mean, log-variance), each (d,); a codec that codes the channel rather
    than the sample (``dithered``) reads them, other codecs ignore them.
    """

    message: torch.Tensor       # (B, d_latent)
    rate_nats: torch.Tensor | None  # () scalar
    mu: torch.Tensor | None = None      # (B, d)
    sigma: torch.Tensor | None = None   # (B, d)
    prior: tuple[torch.Tensor, torch.Tensor] | None = None   # (d,), (d,)

    @property
    def log_var(self) -> torch.Tensor | None:
        return None if self.sigma is None else 2.0 * self.sigma.log()


class Gate(nn.Module):
    """Base class: ``forward(z, generator)`` -> :class:`GateOutput`.

    ``generator`` is the node's own seeded ``torch.Generator``: gates never touch global
    RNG state, so runs are reproducible bit for bit.
    """

    estimator: ClassVar[str] = "n/a"
    force_sample: bool = False   # evaluation of the sampled channel (``accuracy_sampled``)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> GateOutput:
        raise NotImplementedError

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """The noise ``forward`` draws in training mode for a batch, drawn the same way.

        Lets the batched learning plane draw each node's noise from that node's own
        generator (the same numbers as the per-node forward) and then stack it.
        """
        return None

    def flops_per_sample(self) -> int:
        """Multiply-adds x2 of the gate's linear maps (for simulated compute time)."""
        return sum(2 * m.in_features * m.out_features for m in self.modules() if isinstance(m, nn.Linear))


class NoGate(Gate):
    """Deterministic pass-through: the message is the latent itself."""

    estimator = "n/a"

    def __init__(self, latent_dim: int, spec: GateSpec) -> None:
        super().__init__()

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> GateOutput:
        return GateOutput(z, None)


class GaussianGate(Gate):
    """Reparameterised Gaussian channel; its penalised rate is chosen by ``gate.rate``."""

    estimator = RATE_DESCRIPTIONS["kl_standard_normal"]
    PRIOR_MOMENTUM = 0.05   # weight of the newest batch in the prior's moving average

    def __init__(self, latent_dim: int, spec: GateSpec) -> None:
        super().__init__()
        self.stats = nn.Linear(latent_dim, 2 * latent_dim)
        self.eval_sample = spec.eval_sample
        self.rate = getattr(spec, "rate", "kl_standard_normal")
        if self.rate not in RATE_ESTIMATORS:
            raise ScenarioError(f"gate.rate: {self.rate!r} is not a known rate estimator; "
                                f"choose one of {sorted(RATE_ESTIMATORS)}")
        self.estimator = RATE_DESCRIPTIONS[self.rate]
        # the learned prior p = N(prior_mean, exp(prior_log_var)) starts as N(0, I)
        self.register_buffer("prior_mean", torch.zeros(latent_dim))
        self.register_buffer("prior_log_var", torch.zeros(latent_dim))

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> GateOutput:
        mu, log_var = self.stats(z).chunk(2, dim=-1)                   # (B, d), (B, d)
        log_var = log_var.clamp(-12.0, 6.0)
        # the prior as it stood before this batch: what a receiver already holds
        prior = (self.prior_mean.clone(), self.prior_log_var.clone())   # (d,), (d,)
        if self.training:
            self._fit_prior(mu, log_var)
        sigma = torch.exp(0.5 * log_var)                                 # (B, d)
        sample = self.training or self.eval_sample or self.force_sample
        t = mu + sigma * torch.randn(mu.shape, generator=generator, dtype=mu.dtype) if sample else mu
        rate = RATE_ESTIMATORS[self.rate](mu, log_var, prior=prior, t=t)  # ()
        return GateOutput(t, rate, mu, sigma, prior)

    def _fit_prior(self, mu: torch.Tensor, log_var: torch.Tensor) -> None:
        """Move the prior toward this batch's moment match (the KL-optimal factorised Gaussian)."""
        with torch.no_grad():
            m, log_v = moment_matched_prior(mu, log_var)
        move_prior(self.prior_mean, self.prior_log_var, m, log_v, self.PRIOR_MOMENTUM)

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((batch, self.stats.out_features // 2), generator=generator,
                           dtype=self.stats.weight.dtype)


class GumbelGate(Gate):
    """Discrete gate choosing one of K codewords (routes / experts) by Gumbel-softmax."""

    estimator = "plug-in I(Z;T) = H(mean q) - mean H(q) over the batch (<= log K)"

    def __init__(self, latent_dim: int, spec: GateSpec) -> None:
        super().__init__()
        self.logits = nn.Linear(latent_dim, spec.n_choices)
        self.codebook = nn.Parameter(torch.randn(spec.n_choices, latent_dim) / latent_dim ** 0.5)
        self.temperature, self.hard = spec.temperature, spec.hard

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> GateOutput:
        logits = self.logits(z)                                          # (B, K)
        log_q = torch.log_softmax(logits / self.temperature, dim=-1)     # (B, K) channel q(t|z)
        if not self.training and self.force_sample:  # the sampled channel: a hard draw from q
            u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp_(1e-10, 1.0 - 1e-7)
            choice = nn.functional.one_hot((log_q - torch.log(-torch.log(u))).argmax(-1), logits.shape[-1])
            return GateOutput(choice.to(z.dtype) @ self.codebook, plugin_mutual_information(log_q.exp()))
        if not self.training:  # deterministic arg-max choice: its rate is the entropy of the choices
            choice = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(z.dtype)
            return GateOutput(choice @ self.codebook, plugin_mutual_information(choice))
        rate = plugin_mutual_information(log_q.exp())                    # ()
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp_(1e-10, 1.0 - 1e-7)
        # relaxed sample of Categorical(q): its arg-max is distributed as q, so the rate
        # estimated from q is the rate of the channel actually used
        y = torch.softmax((log_q - torch.log(-torch.log(u))) / self.temperature, dim=-1)   # (B, K)
        if self.hard:  # straight-through: one-hot forward, soft gradient
            y = nn.functional.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype) - y.detach() + y
        return GateOutput(y @ self.codebook, rate)                       # (B, d)

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand((batch, self.codebook.shape[0]), generator=generator, dtype=self.logits.weight.dtype)

    def flops_per_sample(self) -> int:
        k, d = self.codebook.shape
        return super().flops_per_sample() + 2 * k * d


GATES: dict[str, Callable[[int, GateSpec], Gate]] = {
    "none": NoGate,
    "gaussian": GaussianGate,
    "gumbel": GumbelGate,
}


def make_gate(spec: GateSpec, latent_dim: int) -> Gate:
    """Instantiate the gate named by ``gate.kind`` from the registry."""
    if spec.kind not in GATES:
        raise ScenarioError(f"gate.kind: {spec.kind!r} is not a known gate; choose one of {sorted(GATES)}")
    return GATES[spec.kind](latent_dim, spec)

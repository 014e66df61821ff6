"""Rate estimators of the Gaussian gate T = mu(Z) + sigma(Z) * eps, side by side.

The gate's rate is R = I(Z;T).  It has no closed form for a learned encoder, and the
estimators disagree by orders of magnitude, so every run reports all of them (nats
inside, bits out, each under its own name) and ``gate.rate`` picks the one penalised.

* ``kl_standard_normal``: mean KL(q(t|z) || N(0, I)), today's default.  An upper bound
  on I(Z;T), but a loose one: its 1/2 ||mu||^2 part can be undone by the next layer (a
  rescaling) at no cost in information, so it mostly measures mu's scale.
* ``kl_learned_prior``: mean KL(q(t|z) || p(t)) to a factorised Gaussian prior
  p = N(m, diag v) that belongs to the sending gate.  Also an upper bound on I(Z;T)
  (equal to it when p is the true marginal of T), and the expected code length, in
  nats, of a coder that uses p as its model: what a link would pay.  The prior is
  fitted in closed form, not by gradient steps: over factorised Gaussians the prior
  minimising the batch-mean KL is the moment match m = mean(mu), v = mean(sigma^2) +
  var(mu) (:func:`moment_matched_prior`); the gate keeps an exponential moving average
  of it over training batches.  Its 2 d float32 values travel once per link
  (:func:`prior_nbytes`), reported as ``rate_prior_nbytes`` beside the ledger's bytes.
* ``aggregate_posterior``: the minibatch bounds on I(Z;T) with the aggregate posterior
  q(t) ~ (1/B) sum_j q(t|z_j) of a batch of B samples (Poole et al. 2019, "On
  variational bounds of mutual information"): the InfoNCE lower bound, which can never
  exceed log B, and the leave-one-out upper bound.  Batch-size bias: both are biased at
  finite B (the lower one down, by at least I - log B once I > log B; the upper one up,
  most where the posteriors of different samples barely overlap, i.e. at high rate);
  the bracket closes as B grows.  Penalising ``aggregate_posterior`` penalises the upper
  bound.

All functions take ``mu`` and ``log_var`` of shape (B, d) and return nats per sample.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Mapping

import torch

from inl_sim.errors import ScenarioError, field_error
from inl_sim.learning.information import gaussian_kl_standard_normal

__all__ = ["RATE_ESTIMATORS", "RATE_DESCRIPTIONS", "ESTIMATOR_NAMES", "PRIOR_BYTES_PER_VALUE", "kl_learned_prior",
           "moment_matched_prior", "move_prior", "aggregate_posterior_bounds", "aggregate_posterior_upper",
           "gaussian_log_density_matrix", "rate_estimates", "prior_nbytes"]

NodeId = Hashable
_LOG_2PI = math.log(2.0 * math.pi)
PRIOR_BYTES_PER_VALUE = 4   # the prior's mean and log-variance travel as float32
ESTIMATOR_NAMES = ("kl_standard_normal", "kl_learned_prior", "aggregate_posterior_upper",
                   "aggregate_posterior_lower", "kl_standard_normal_mu_term")
"""The names under which every run reports its rates (``rate_bits_<name>``); the last is
not an estimator but the 1/2 ||mu||^2 part of ``kl_standard_normal``, reported to show
how much of that bound is mu's scale."""


def kl_learned_prior(mu: torch.Tensor, log_var: torch.Tensor, prior_mean: torch.Tensor,
                     prior_log_var: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(N(mu, e^log_var) || N(prior_mean, e^prior_log_var)), nats.

    ``mu``, ``log_var``: (B, d); ``prior_mean``, ``prior_log_var``: (d,).  Closed form
    0.5 sum(pv - lv + (e^lv + (mu - m)^2) / e^pv - 1), differentiable in all four.
    """
    ratio = (log_var.exp() + (mu - prior_mean).square()) / prior_log_var.exp()   # (B, d)
    return 0.5 * (prior_log_var - log_var + ratio - 1.0).sum(-1).mean()       # ()


def moment_matched_prior(mu: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The factorised Gaussian p minimising mean KL(q(t|z_i) || p) over a batch.

    Setting the derivatives of the mean KL to zero gives m = mean(mu) and
    v = mean(sigma^2) + mean((mu - m)^2): the mean and variance of the mixture
    (1/B) sum_i q(t|z_i), per dimension.  Returns (m, log v), each (d,).
    """
    m = mu.mean(0)                                                  # (d,)
    v = log_var.exp().mean(0) + (mu - m).square().mean(0)           # (d,)
    return m, v.clamp_min(1e-12).log()


def move_prior(prior_mean: torch.Tensor, prior_log_var: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor,
               momentum: float) -> None:
    """Move a learned prior toward a batch's moment match, in place (any leading shape):
    mean by an exponential average, variance by the same average of variances."""
    with torch.no_grad():
        prior_mean.mul_(1 - momentum).add_(momentum * mean)
        prior_log_var.copy_(((1 - momentum) * prior_log_var.exp() + momentum * log_var.exp()).log())


def gaussian_log_density_matrix(t: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(B, B) matrix L[i, j] = log q(t_i | z_j) for diagonal Gaussians, by matmuls.

    Expands sum_k (t_ik - mu_jk)^2 / v_jk into three matrix products, so memory is
    O(B^2 + B d), not O(B^2 d).
    """
    inv_var = (-log_var).exp()                                      # (B, d)
    quad = (t.square() @ inv_var.T - 2.0 * t @ (mu * inv_var).T
            + (mu.square() * inv_var).sum(-1))                      # (B, B)
    return -0.5 * (t.shape[-1] * _LOG_2PI + log_var.sum(-1) + quad)  # (B, B), column j broadcasts


def aggregate_posterior_bounds(t: torch.Tensor, mu: torch.Tensor,
                               log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch (lower, upper) bounds on I(Z;T), nats per sample, from one draw t_i ~ q(.|z_i).

    lower (InfoNCE): mean_i [log q(t_i|z_i) - log((1/B) sum_j q(t_i|z_j))] <= log B;
    upper (leave-one-out): mean_i [log q(t_i|z_i) - log((1/(B-1)) sum_{j != i} q(t_i|z_j))].
    Both hold in expectation over batches; see the module docstring for their bias.
    """
    b = t.shape[0]
    if b < 2:
        raise field_error(ScenarioError, "batch size", b, "must be >= 2 for the aggregate-posterior bounds",
                          "use training.batch_size >= 2")
    log_q = gaussian_log_density_matrix(t, mu, log_var)              # (B, B)
    own = log_q.diagonal()                                          # (B,)
    lower = (own - torch.logsumexp(log_q, dim=1) + math.log(b)).mean()
    others = log_q.masked_fill(torch.eye(b, dtype=torch.bool), float("-inf"))
    upper = (own - torch.logsumexp(others, dim=1) + math.log(b - 1)).mean()
    return lower, upper


def aggregate_posterior_upper(mu: torch.Tensor, log_var: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The leave-one-out upper bound alone (what ``gate.rate: aggregate_posterior`` penalises)."""
    return aggregate_posterior_bounds(t, mu, log_var)[1]


RateFn = Callable[..., torch.Tensor]

RATE_ESTIMATORS: dict[str, RateFn] = {
    "kl_standard_normal": lambda mu, log_var, *, prior, t: gaussian_kl_standard_normal(mu, log_var).mean(),
    "kl_learned_prior": lambda mu, log_var, *, prior, t: kl_learned_prior(mu, log_var, *prior),
    "aggregate_posterior": lambda mu, log_var, *, prior, t: aggregate_posterior_upper(mu, log_var, t),
}
"""``gate.rate`` choices: ``f(mu, log_var, *, prior=(m, log v), t=sample)`` -> the
differentiable rate (nats/sample) added to the loss.  Add an estimator: one function,
one entry here, one in :data:`RATE_DESCRIPTIONS`."""

RATE_DESCRIPTIONS: dict[str, str] = {
    "kl_standard_normal": "mean KL(N(mu, sigma^2) || N(0, I)) (upper bound on I(Z;T))",
    "kl_learned_prior": ("mean KL(N(mu, sigma^2) || p), p a moment-matched factorised Gaussian prior "
                         "(upper bound on I(Z;T); a coder's cost with prior p)"),
    "aggregate_posterior": ("minibatch leave-one-out upper bound on I(Z;T) with the aggregate posterior "
                            "(biased up at finite batch size)"),
}
"""What each ``gate.rate`` choice penalises (written to ``rate_estimator``)."""


def rate_estimates(mu: torch.Tensor, log_var: torch.Tensor, prior: tuple[torch.Tensor, torch.Tensor],
                   generator: torch.Generator | None = None) -> dict[str, float]:
    """Every estimator of :data:`ESTIMATOR_NAMES` on one batch, nats per sample (floats).

    The aggregate-posterior bounds need one draw t_i ~ N(mu_i, sigma_i^2) per sample,
    taken from ``generator`` so that evaluation is reproducible.
    """
    with torch.no_grad():
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)   # (B, d)
        t = mu + (0.5 * log_var).exp() * eps
        lower, upper = aggregate_posterior_bounds(t, mu, log_var)
        return {"kl_standard_normal": float(gaussian_kl_standard_normal(mu, log_var).mean()),
                "kl_learned_prior": float(kl_learned_prior(mu, log_var, *prior)),
                "aggregate_posterior_upper": float(upper), "aggregate_posterior_lower": float(lower),
                "kl_standard_normal_mu_term": float(0.5 * mu.square().sum(-1).mean())}


def prior_nbytes(latent_dims: Mapping[NodeId, int], edges: tuple) -> int:
    """Bytes to send every sender's learned prior (mean and log-variance) once per active link."""
    return sum(2 * latent_dims[c] * PRIOR_BYTES_PER_VALUE for c, _ in edges if c in latent_dims)


"""Rate estimators against the closed form of a Gaussian channel.

Oracle: Z ~ N(0, s^2 I_d), T = Z + N(0, n^2 I_d), so q(t|z) = N(z, n^2 I) and
I(Z;T) = d/2 log(1 + s^2/n^2) nats; the marginal of T is N(0, (s^2 + n^2) I).
The gate is checked on its own ``stats`` layer set to realise exactly this channel.
"""

from __future__ import annotations

import math

import pytest
import torch

from inl_sim.errors import ScenarioError
from inl_sim.learning.gating import GaussianGate
from inl_sim.learning.rates import (RATE_DESCRIPTIONS, RATE_ESTIMATORS, aggregate_posterior_bounds, gaussian_log_density_matrix,
                                    kl_learned_prior, moment_matched_prior, rate_estimates)
from inl_sim.scenario import GateSpec, load_scenario

D, S, NOISE = 4, 1.5, 0.8
TRUE_I = D / 2 * math.log(1 + S ** 2 / NOISE ** 2)   # nats


def _channel(batch: int, seed: int, d: int = D, s: float = S, n: float = NOISE):
    g = torch.Generator().manual_seed(seed)
    z = s * torch.randn(batch, d, generator=g, dtype=torch.float64)
    log_var = torch.full_like(z, 2 * math.log(n))
    return z, log_var, z + n * torch.randn(z.shape, generator=g, dtype=torch.float64)


def test_kl_to_the_true_marginal_equals_mutual_information() -> None:
    z, log_var, _ = _channel(200_000, 0)
    prior = (torch.zeros(D, dtype=torch.float64), torch.full((D,), math.log(S ** 2 + NOISE ** 2), dtype=torch.float64))
    kl = kl_learned_prior(z, log_var, *prior)
    # per-sample KL has std ~ sqrt(D/2) * s^2 / (s^2 + n^2); 5 standard errors
    assert abs(float(kl) - TRUE_I) < 5 * math.sqrt(D / 2) / math.sqrt(200_000)


def test_kl_to_standard_normal_is_an_upper_bound_with_its_closed_form() -> None:
    z, log_var, _ = _channel(200_000, 1)
    kl = float(RATE_ESTIMATORS["kl_standard_normal"](z, log_var, prior=None, t=None))
    closed = D / 2 * (S ** 2 + NOISE ** 2 - 1 - math.log(NOISE ** 2))   # E over z of the closed-form KL
    assert kl == pytest.approx(closed, rel=0.02)
    assert kl > TRUE_I


def test_moment_matched_prior_is_the_kl_minimiser() -> None:
    z, log_var, _ = _channel(50_000, 2)
    m, log_v = moment_matched_prior(z, log_var)
    torch.testing.assert_close(log_v.exp(), torch.full((D,), S ** 2 + NOISE ** 2, dtype=torch.float64), rtol=0.03, atol=0)
    best = kl_learned_prior(z, log_var, m, log_v)
    for dm, dv in ((0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05)):
        assert kl_learned_prior(z, log_var, m + dm, log_v + dv) > best


def test_gate_learns_the_marginal_as_its_prior() -> None:
    gate = GaussianGate(D, GateSpec(kind="gaussian", rate="kl_learned_prior")).double()
    with torch.no_grad():   # mu = z, log_var = log n^2: the oracle channel
        gate.stats.weight.zero_()
        gate.stats.weight[:D].copy_(torch.eye(D))
        gate.stats.bias.copy_(torch.cat([torch.zeros(D), torch.full((D,), 2 * math.log(NOISE))]))
    gen = torch.Generator().manual_seed(3)
    for step in range(300):
        z, _, _ = _channel(256, 100 + step)
        out = gate(z, gen)
    torch.testing.assert_close(out.prior[1].exp(), torch.full((D,), S ** 2 + NOISE ** 2, dtype=torch.float64),
                               rtol=0.08, atol=0)
    z, _, _ = _channel(100_000, 7)
    gate.eval()
    assert float(gate(z).rate_nats.detach()) == pytest.approx(TRUE_I, rel=0.05)


def test_log_density_matrix_matches_torch_distributions() -> None:
    z, log_var, t = _channel(7, 4)
    log_var = log_var + 0.3 * torch.randn(log_var.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q = torch.distributions.Normal(z.unsqueeze(0), (0.5 * log_var).exp().unsqueeze(0))   # (1, B, d)
    expected = q.log_prob(t.unsqueeze(1)).sum(-1)                                        # (B, B)
    torch.testing.assert_close(gaussian_log_density_matrix(t, z, log_var), expected)


@pytest.mark.parametrize("batch", [16, 64, 256])
def test_minibatch_bounds_bracket_the_mutual_information(batch: int) -> None:
    lowers, uppers = [], []
    for rep in range(4096 // batch * 4):
        z, log_var, t = _channel(batch, 1000 * batch + rep)
        lo, up = aggregate_posterior_bounds(t, z, log_var)
        lowers.append(float(lo))
        uppers.append(float(up))
    lower, upper = sum(lowers) / len(lowers), sum(uppers) / len(uppers)
    assert lower <= TRUE_I <= upper
    assert lower <= math.log(batch) + 1e-9


def test_minibatch_bounds_tighten_with_batch_size() -> None:
    gaps = []
    for batch in (8, 32, 128, 512):
        reps = max(4, 2048 // batch)
        pairs = [aggregate_posterior_bounds(*(lambda z, lv, t: (t, z, lv))(*_channel(batch, 50_000 + 977 * batch + r)))
                 for r in range(reps)]
        gaps.append(sum(float(u - lo) for lo, u in pairs) / reps)
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps


def test_rate_estimates_reports_every_estimator_in_nats() -> None:
    z, log_var, _ = _channel(512, 5)
    prior = moment_matched_prior(z, log_var)
    est = rate_estimates(z, log_var, prior, torch.Generator().manual_seed(0))
    assert set(est) == {"kl_standard_normal", "kl_learned_prior", "aggregate_posterior_upper",
                        "aggregate_posterior_lower", "kl_standard_normal_mu_term"}
    assert est["kl_standard_normal_mu_term"] == pytest.approx(0.5 * float(z.square().sum(-1).mean()))
    assert est["aggregate_posterior_lower"] <= est["aggregate_posterior_upper"]
    assert est["kl_learned_prior"] < est["kl_standard_normal"]


def test_gate_rate_is_validated() -> None:
    with pytest.raises(ScenarioError, match="gate.rate"):
        load_scenario("scenarios/quickstart.yaml", {"gate.rate": "nonsense"})
    with pytest.raises(ScenarioError, match="gaussian gate only"):
        load_scenario("scenarios/quickstart.yaml", {"gate.kind": "gumbel", "gate.rate": "kl_learned_prior"})
    sc = load_scenario("scenarios/quickstart.yaml", {"gate.kind": "gaussian", "gate.rate": "aggregate_posterior"})
    assert sc.gate.rate == "aggregate_posterior"


@pytest.mark.parametrize("rate", ["kl_learned_prior", "aggregate_posterior"])
def test_penalising_a_tight_rate_trains_end_to_end(rate: str) -> None:
    from conftest import tiny_scenario
    from inl_sim.study.experiment import run

    sc = load_scenario(tiny_scenario(gate__kind="gaussian", gate__rate=rate, gate__beta=1.0e-2))
    res = run(sc, 0)
    s = res.summary()
    assert s["rate_penalised"] == rate and s["rate_estimator"] == RATE_DESCRIPTIONS[rate]
    assert math.isfinite(s["rate_bits"]) and math.isfinite(s["test_loss"])

"""The dithered codec against a scalar Gaussian channel with known I(Z;T).

Oracle: Z ~ N(0, s^2), T = Z + noise of variance n^2, I_G(Z;T) = 1/2 log2(1 + s^2/n^2)
bits.  Subtractive dither at step sqrt(12) n realises T = Z + e with e uniform and
independent of Z; its H(K|U) = I(Z; Z + e) lies in [I_G, I_G + 1/2 log2(pi e / 6)]
(Gaussian noise is the worst additive noise of a given variance for a Gaussian input;
the Gaussian maximises h(Z + e)).  The documented overhead is the side information
(16 + d) bytes per message plus under 4 bytes of 32-bit word padding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from inl_sim.learning.coding import HEADER_NBYTES, make_codec
from inl_sim.learning.dither import (SQRT12, DitheredCodec, dither_generator, dithered_decode, dithered_encode,
                                     noise_from_code, prior_model, quantise_noise)
from inl_sim.learning.gating import GateOutput

N, NOISE = 8192, 1.0   # NOISE = 1 lies on the one-byte noise grid exactly
BITS = np.array([0.01, 0.03, 0.1, 0.3, 0.5, 1, 2, 3, 4, 5, 6, 7, 8])
SPACE_FILLING = 0.5 * math.log2(math.pi * math.e / 6)   # 0.254 bits
OVERHEAD = 8 * (HEADER_NBYTES + 1 + 4) / N                # header + noise code + word padding, bits/sample


def _code(i_bits: float, seed: int, with_prior: bool = True):
    rng = np.random.default_rng(seed)
    s = NOISE * math.sqrt(2 ** (2 * i_bits) - 1)
    z = rng.normal(0, s, (N, 1))
    unit = rng.random((N, 1)) - 0.5
    # the gate's learned prior on T is the true marginal N(0, s^2 + n^2)
    model = prior_model((torch.zeros(1, dtype=torch.float64), torch.full((1,), math.log(s * s + NOISE ** 2),
                                                                          dtype=torch.float64)), np.array([NOISE]))
    bits, t = dithered_encode(z, np.array([NOISE]), unit, model if with_prior else None)
    return z, unit, bits, t


def test_coded_bits_follow_the_mutual_information_with_slope_one() -> None:
    coded = []
    for i, i_bits in enumerate(BITS):
        _, _, bits, _ = _code(float(i_bits), i)
        coded.append(8 * bits.nbytes / N)
    coded = np.array(coded)
    assert np.all(coded >= BITS - 0.05), coded - BITS
    assert np.all(coded <= BITS + 1 + OVERHEAD), coded - BITS
    # tighter than the test's bound: within the space-filling loss, and slope ~ 1
    assert np.all(coded <= BITS + SPACE_FILLING + OVERHEAD + 0.05), coded - BITS
    fit = stats.linregress(BITS, coded)
    assert fit.slope == pytest.approx(1.0, abs=0.03)


def test_decoded_noise_is_uniform_independent_of_z_and_has_the_gate_variance() -> None:
    z, unit, bits, t = _code(3.0, 100)
    e = (t - z)[:, 0]
    step = SQRT12 * NOISE
    assert np.all(np.abs(e) <= step / 2 + 1e-9)
    assert abs(stats.pearsonr(e, z[:, 0]).statistic) < 4 / math.sqrt(N)
    assert stats.kstest(e, stats.uniform(loc=-step / 2, scale=step).cdf).pvalue > 0.01
    assert e.var() == pytest.approx(NOISE ** 2, rel=0.05)


def test_receiver_decodes_exactly_from_the_shared_dither() -> None:
    for with_prior in (True, False):
        _, unit, bits, t = _code(5.0, 7, with_prior)
        np.testing.assert_array_equal(dithered_decode(bits, unit), t)
        other = np.random.default_rng(99).random(unit.shape) - 0.5
        try:   # the dither is needed and never sent: another one decodes garbage or nothing
            assert not np.allclose(dithered_decode(bits, other), t)
        except AssertionError as exc:   # constriction rejects the bitstream under the wrong model
            assert "invalid" in str(exc) or "allclose" in str(exc) or not str(exc)


def test_side_information_is_counted() -> None:
    _, _, with_prior, _ = _code(2.0, 3, True)
    _, _, without, _ = _code(2.0, 3, False)
    assert with_prior.nbytes == HEADER_NBYTES + 1 + 4 * with_prior.compressed.size + 4 * with_prior.escapes.size
    assert without.nbytes == HEADER_NBYTES + 7 + 4 * without.compressed.size + 4 * without.escapes.size


def test_noise_code_round_trips_within_half_a_grid_step() -> None:
    levels = np.exp2(np.linspace(-7.5, 7.5, 101))
    back = noise_from_code(quantise_noise(levels))
    assert np.all(np.abs(np.log2(back / levels)) <= 0.5 / 16 + 1e-12)


def _gate_output(batch: int, d: int, seed: int) -> GateOutput:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, d, generator=g, dtype=torch.float64).requires_grad_(True)
    sigma = (0.3 + torch.rand(batch, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    prior = (torch.zeros(d, dtype=torch.float64), torch.full((d,), math.log(1.5), dtype=torch.float64))
    return GateOutput(mu + sigma, None, mu, sigma, prior)


def test_codec_codes_the_mean_and_reparameterises_the_uniform_channel() -> None:
    out = _gate_output(64, 4, 0)
    codec = make_codec("dithered", seed=5)
    enc = codec.encode(out.message, gate=out, generator=dither_generator(5, 0))
    again = DitheredCodec(seed=5).encode(out.message, gate=out)   # message 0 of the same seed: same dither
    torch.testing.assert_close(enc.tensor, again.tensor, rtol=0, atol=0)
    assert enc.nbytes == again.nbytes
    # decoded = mu + e with |e| <= step/2, step = sqrt(12) * geometric-mean sigma (on the byte grid)
    s = noise_from_code(quantise_noise(out.sigma.detach().log().mean(0).exp().numpy()))
    e = (enc.tensor - out.mu).detach().numpy()
    assert np.all(np.abs(e) <= SQRT12 * s / 2 + 1e-9)
    # gradients: identity to mu; to sigma, w * ds/dsigma with s the geometric mean of the column
    g = torch.randn(enc.tensor.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mu_grad, sigma_grad = torch.autograd.grad(enc.tensor, [out.mu, out.sigma], g)
    torch.testing.assert_close(mu_grad, g)
    w = torch.from_numpy(e / s)
    s_exact = out.sigma.detach().log().mean(0).exp()
    torch.testing.assert_close(sigma_grad, (g * w).sum(0) * s_exact / (64 * out.sigma.detach()))


def test_codec_without_a_gate_uses_the_fixed_step_and_sends_its_model() -> None:
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(2))
    enc = make_codec("dithered", step=0.1).encode(x, generator=dither_generator(0, 0))
    assert (enc.tensor - x).abs().max() <= 0.1 / 2 * 1.05
    assert enc.n_values == 96 and enc.nbytes > HEADER_NBYTES + 3 * 7


def test_dithered_runs_are_reproducible_and_report_every_rate() -> None:
    from conftest import tiny_scenario
    from inl_sim.scenario import load_scenario
    from inl_sim.study.experiment import run

    sc = load_scenario(tiny_scenario(gate__kind="gaussian", message__encoding="dithered"))
    a, b = run(sc, 3), run(sc, 3)
    assert [t.nbytes for t in a.transfers] == [t.nbytes for t in b.transfers]
    assert a.summary() | {"wall_time_s": 0} == b.summary() | {"wall_time_s": 0}
    s = a.summary()
    fwd = [t.nbytes for t in a.transfers if t.direction == "forward"]
    assert all(n >= HEADER_NBYTES + 8 for n in fwd) and len(set(fwd)) > 1   # coded sizes, not a fixed width
    for key in ("accuracy_sampled", "rate_bits_kl_standard_normal", "rate_bits_kl_learned_prior",
                "rate_bits_aggregate_posterior_upper", "rate_bits_aggregate_posterior_lower", "rate_prior_nbytes"):
        assert s[key] is not None, key
    # rate_bits is the mean channel's (relays see means), the estimators the sampled channel's
    assert s["rate_penalised"] == "kl_standard_normal" and s["rate_bits"] > 0
    assert s["rate_bits_aggregate_posterior_lower"] <= s["rate_bits_aggregate_posterior_upper"]
    assert s["rate_prior_nbytes"] == 2 * 4 * sc.model.latent_dim * s["n_active_edges"]

"""Tests for inl_sim.learning.information against independent closed forms.

Every expected number comes from a textbook formula written out here with ``math``
(binary entropy, BSC/Z/erasure capacity formulas, Gaussian KL, R(D) of a Bernoulli source),
or from torch.distributions -- never from the function under test.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import torch

from inl_sim.errors import InlSimError, ScenarioError
from inl_sim.learning.information import (
    binary_entropy,
    channel_mutual_information,
    entropy,
    gaussian_kl_standard_normal,
    kl_divergence,
    mutual_information,
    nats_to_bits,
    plugin_mutual_information,
    plugin_mutual_information_samples,
)
from inl_sim.learning.ratedistortion import bernoulli_hamming_rate_distortion, blahut_arimoto, rate_distortion_curve

LN2 = math.log(2.0)


def hb(p: float) -> float:
    """Binary entropy in nats, written independently of the module."""
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)


def rd_bernoulli_bits(p: float, d: float) -> float:
    """R(D) of Bernoulli(p) with Hamming distortion (Cover & Thomas 10.3.1), in bits."""
    return (hb(p) - hb(d)) / LN2 if d < min(p, 1 - p) else 0.0


HAMMING2 = 1.0 - np.eye(2)


# --------------------------------------------------------------------------- discrete basics
def test_nats_to_bits_and_binary_entropy() -> None:
    assert nats_to_bits(LN2) == pytest.approx(1.0, abs=1e-15)
    assert binary_entropy(0.5) == pytest.approx(LN2, abs=1e-15)
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    np.testing.assert_allclose(binary_entropy(np.array([0.11, 0.3])), [hb(0.11), hb(0.3)], atol=1e-15)
    assert nats_to_bits(binary_entropy(0.11)) == pytest.approx(0.49992, abs=1e-5)  # the classic "H(0.11) = 1/2 bit"


def test_entropy_kl_and_mi_of_known_pmfs() -> None:
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8), abs=1e-14)
    assert entropy([0.5, 0.5, 0.0]) == pytest.approx(LN2, abs=1e-15)                 # 0 log 0 = 0
    np.testing.assert_allclose(entropy([[1.0, 0.0], [0.5, 0.5]], axis=1), [0.0, LN2], atol=1e-15)
    np.testing.assert_allclose(entropy([[1.0, 0.5], [0.0, 0.5]], axis=0), [0.0, LN2], atol=1e-15)
    p, q = [0.25, 0.75], [0.5, 0.5]
    assert kl_divergence(p, q) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-15)
    assert kl_divergence(p, p) == 0.0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert mutual_information(np.eye(4) / 4) == pytest.approx(math.log(4), abs=1e-14)
    assert mutual_information(np.outer([0.2, 0.8], [0.1, 0.6, 0.3])) == pytest.approx(0.0, abs=1e-15)


# --------------------------------------------------------------------------- channels
@pytest.mark.parametrize("e", [0.05, 0.11, 0.3])
def test_binary_symmetric_channel(e: float) -> None:
    expected = LN2 - hb(e)
    bsc = [[1 - e, e], [e, 1 - e]]
    assert channel_mutual_information([0.5, 0.5], bsc) == pytest.approx(expected, abs=1e-14)
    rng = np.random.default_rng(1234)
    x = rng.integers(0, 2, size=200_000)
    t = x ^ (rng.random(x.size) < e)
    # standard error of the plug-in estimate is ~1e-3 nats at n = 2e5; bias ~3e-6
    assert plugin_mutual_information_samples(x, t) == pytest.approx(expected, abs=5e-3)


@pytest.mark.parametrize(("a", "e"), [(0.5, 0.2), (0.3, 0.6)])
def test_z_channel(a: float, e: float) -> None:
    # X=0 -> Y=0 always; X=1 -> Y=0 w.p. e.  I = H_b(a(1-e)) - a H_b(e).
    expected = hb(a * (1 - e)) - a * hb(e)
    assert channel_mutual_information([1 - a, a], [[1.0, 0.0], [e, 1 - e]]) == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize(("a", "eps"), [(0.5, 0.25), (0.2, 0.5)])
def test_binary_erasure_channel(a: float, eps: float) -> None:
    expected = (1 - eps) * hb(a)                                   # I = (1 - eps) H_b(a)
    bec = [[1 - eps, eps, 0.0], [0.0, eps, 1 - eps]]               # outputs 0, erasure, 1
    assert channel_mutual_information([1 - a, a], bec) == pytest.approx(expected, abs=1e-14)
    rng = np.random.default_rng(7)
    x = (rng.random(200_000) < a).astype(np.int64)
    t = np.where(rng.random(x.size) < eps, -1, x)                  # -1 marks an erasure
    assert plugin_mutual_information_samples(x, t) == pytest.approx(expected, abs=5e-3)


# --------------------------------------------------------------------------- plug-in MI (torch)
def test_plugin_mi_one_hot_rows_is_entropy_of_choices() -> None:
    choices = np.random.default_rng(3).integers(0, 5, size=40)
    q = torch.nn.functional.one_hot(torch.as_tensor(choices), 5).double()
    oracle = -sum(c / 40 * math.log(c / 40) for c in Counter(choices.tolist()).values())
    assert plugin_mutual_information(q).item() == pytest.approx(oracle, abs=1e-12)


def test_plugin_mi_hand_computed_and_identical_rows() -> None:
    q = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    assert plugin_mutual_information(q).item() == pytest.approx(hb(0.25) - 0.5 * LN2, abs=1e-14)
    same = torch.softmax(torch.tensor([0.3, -1.0, 2.0]), -1).repeat(16, 1)
    assert plugin_mutual_information(same).item() == pytest.approx(0.0, abs=1e-6)


def test_plugin_mi_stays_in_zero_to_log_k() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(400):
        n, k = int(torch.randint(1, 65, (1,), generator=gen)), int(torch.randint(1, 17, (1,), generator=gen))
        scale = 10 ** (4 * torch.rand((), generator=gen).item() - 2)          # from near-uniform to one-hot
        dtype = torch.float32 if trial % 2 else torch.float64
        q = torch.softmax(scale * torch.randn(n, k, generator=gen, dtype=dtype), -1)
        mi = plugin_mutual_information(q).item()
        assert 0.0 <= mi <= math.log(k), (n, k, scale, mi)


def test_plugin_mi_gradient() -> None:
    logits = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: plugin_mutual_information(torch.softmax(z, -1)), (logits,))
    peaky = (torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]]) * 1e3).requires_grad_()
    plugin_mutual_information(torch.softmax(peaky, -1)).backward()            # exact zeros in q
    assert peaky.grad is not None and torch.isfinite(peaky.grad).all()
    flat = torch.zeros(8, 3, requires_grad=True)                              # MI = 0: clamp must not detach
    plugin_mutual_information(torch.softmax(flat, -1)).backward()
    assert flat.grad is not None and torch.isfinite(flat.grad).all()


# --------------------------------------------------------------------------- Gaussian KL
def test_gaussian_kl_matches_closed_form_and_torch() -> None:
    gen = torch.Generator().manual_seed(5)
    mu = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    log_var = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    kl = gaussian_kl_standard_normal(mu, log_var)
    assert kl.shape == (2, 7)
    m, v = mu.numpy(), np.exp(log_var.numpy())
    np.testing.assert_allclose(kl.numpy(), 0.5 * np.sum(m**2 + v - 1 - np.log(v), axis=-1), rtol=1e-12)
    normal = torch.distributions.Normal
    sigma = torch.exp(0.5 * log_var)
    ref = torch.distributions.kl_divergence(normal(mu, sigma), normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(kl, ref.sum(-1))
    assert gaussian_kl_standard_normal(torch.zeros(4, 3), torch.zeros(4, 3)).abs().max().item() == 0.0
    args = (mu[0].clone().requires_grad_(), log_var[0].clone().requires_grad_())
    assert torch.autograd.gradcheck(gaussian_kl_standard_normal, args)


# --------------------------------------------------------------------------- rate-distortion
def test_bernoulli_hamming_closed_form() -> None:
    assert nats_to_bits(bernoulli_hamming_rate_distortion(0.5, 0.11)) == pytest.approx(1 - 0.49992, abs=1e-5)
    assert bernoulli_hamming_rate_distortion(0.3, 0.0) == pytest.approx(hb(0.3), abs=1e-15)
    assert bernoulli_hamming_rate_distortion(0.3, 0.3) == 0.0
    assert bernoulli_hamming_rate_distortion(0.7, 0.5) == 0.0


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_blahut_arimoto_traces_bernoulli_hamming_curve(p: float) -> None:
    slopes = np.linspace(0.0, 12.0, 25)
    points = rate_distortion_curve([1 - p, p], HAMMING2, slopes)
    assert [pt.s for pt in points] == pytest.approx(list(slopes))
    s_critical = math.log((1 - p) / p)                         # slope of R(D) at D = min(p, 1-p)
    for pt in points:
        assert pt.converged
        assert pt.rate_bits == pytest.approx(rd_bernoulli_bits(p, pt.distortion), abs=1e-3)
        if pt.s > s_critical + 1e-9:                           # parametric form: D(s) = 1 / (1 + e^s)
            assert pt.distortion == pytest.approx(1 / (1 + math.exp(pt.s)), abs=1e-6)
        np.testing.assert_allclose(pt.channel.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(pt.q_xhat, np.array([1 - p, p]) @ pt.channel, atol=1e-12)
        assert pt.rate_bits == pytest.approx(pt.rate_nats / LN2, rel=1e-15)
    by_distortion = sorted(points, key=lambda pt: pt.distortion)
    rates = [pt.rate_nats for pt in by_distortion]
    assert all(r1 >= r2 - 1e-12 for r1, r2 in zip(rates, rates[1:]))
    assert blahut_arimoto([1 - p, p], HAMMING2, 0.0).rate_nats == pytest.approx(0.0, abs=1e-12)


def test_blahut_arimoto_uniform_ternary_source() -> None:
    # uniform M-ary source, Hamming distortion: R(D) = log M - H_b(D) - D log(M - 1)
    for s in (1.0, 2.5, 5.0):
        pt = blahut_arimoto(np.full(3, 1 / 3), 1.0 - np.eye(3), s)
        d = pt.distortion
        assert pt.rate_nats == pytest.approx(math.log(3) - hb(d) - d * LN2, abs=1e-9)


def test_rate_distortion_point_is_immutable() -> None:
    pt = blahut_arimoto([0.5, 0.5], HAMMING2, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pt.rate_nats = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        pt.channel[0, 0] = 0.0


def test_non_convergence_is_reported() -> None:
    pt = blahut_arimoto([0.7, 0.3], HAMMING2, 1.0, max_iter=3)
    assert not pt.converged and pt.iterations == 3


# --------------------------------------------------------------------------- invalid input
P2 = [0.5, 0.5]
INVALID = [
    ("entropy not normalised", lambda: entropy([0.5, 0.6]), "sum(p): 1.1"),
    ("entropy negative", lambda: entropy([1.2, -0.2]), "min(p): -0.2"),
    ("entropy not numeric", lambda: entropy(["a", "b"]), "p: "),
    ("entropy nan", lambda: entropy([math.nan, 1.0]), "p: "),
    ("entropy rows", lambda: entropy([[0.5, 0.6], [0.5, 0.5]], axis=1), "sum(p, axis=1): 1.1"),
    ("kl shape", lambda: kl_divergence(P2, [0.2, 0.3, 0.5]), "q.shape: (3,)"),
    ("kl q not normalised", lambda: kl_divergence(P2, [0.2, 0.2]), "sum(q): 0.4"),
    ("mi 1-D joint", lambda: mutual_information(P2), "joint.shape: (2,)"),
    ("mi joint not normalised", lambda: mutual_information(np.eye(2)), "sum(joint): 2.0"),
    ("channel p_x not normalised", lambda: channel_mutual_information([0.5, 0.4], np.eye(2)), "sum(p_x): 0.9"),
    ("channel row not normalised", lambda: channel_mutual_information(P2, [[1.0, 0.0], [0.3, 0.3]]),
     "sum(channel, axis=1): 0.6"),
    ("channel shape", lambda: channel_mutual_information(P2, np.eye(3)), "channel.shape: (3, 3)"),
    ("plugin 1-D", lambda: plugin_mutual_information(torch.tensor([0.5, 0.5])), "q.shape: (2,)"),
    ("plugin negative", lambda: plugin_mutual_information(torch.tensor([[1.5, -0.5]])), "min(q): -0.5"),
    ("plugin logits", lambda: plugin_mutual_information(torch.tensor([[2.0, 1.0]])), "max |sum(q, -1) - 1|: 2.0"),
    ("samples float", lambda: plugin_mutual_information_samples([0.5, 1.0], [0, 1]), "x: "),
    ("samples 2-D", lambda: plugin_mutual_information_samples(np.zeros((2, 2), int), np.zeros((2, 2), int)), "x: "),
    ("samples length", lambda: plugin_mutual_information_samples([0, 1, 1], [0, 1]), "t.shape: (2,)"),
    ("kl gauss shape", lambda: gaussian_kl_standard_normal(torch.zeros(4, 3), torch.zeros(4, 2)),
     "log_var.shape: (4, 2)"),
    ("ba negative s", lambda: blahut_arimoto(P2, HAMMING2, -0.5), "s: -0.5"),
    ("ba nan s", lambda: blahut_arimoto(P2, HAMMING2, math.nan), "s: nan"),
    ("ba s not a number", lambda: blahut_arimoto(P2, HAMMING2, "1"), "s: '1'"),  # type: ignore[arg-type]
    ("ba p_x not normalised", lambda: blahut_arimoto([0.3, 0.3], HAMMING2, 1.0), "sum(p_x): 0.6"),
    ("ba p_x negative", lambda: blahut_arimoto([1.5, -0.5], HAMMING2, 1.0), "min(p_x): -0.5"),
    ("ba shape", lambda: blahut_arimoto([0.2, 0.3, 0.5], HAMMING2, 1.0), "distortion.shape: (2, 2)"),
    ("ba negative distortion", lambda: blahut_arimoto(P2, -HAMMING2, 1.0), "min(distortion): -1.0"),
    ("ba tol", lambda: blahut_arimoto(P2, HAMMING2, 1.0, tol=0.0), "tol: 0.0"),
    ("ba max_iter", lambda: blahut_arimoto(P2, HAMMING2, 1.0, max_iter=0), "max_iter: 0"),
    ("curve negative slope", lambda: rate_distortion_curve(P2, HAMMING2, [1.0, -2.0]), "s: -2.0"),
    ("curve 2-D slopes", lambda: rate_distortion_curve(P2, HAMMING2, [[1.0]]), "slopes.shape: (1, 1)"),
    ("binary entropy range", lambda: binary_entropy(1.5), "p: 1.5"),
    ("rd negative d", lambda: bernoulli_hamming_rate_distortion(0.3, -0.1), "d: -0.1"),
]


@pytest.mark.parametrize(("call", "prefix"), [(c, p) for _, c, p in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_input_names_the_argument(call, prefix: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, InlSimError)
    assert message.startswith(prefix), message
    assert "; " in message, message                              # rule; fix

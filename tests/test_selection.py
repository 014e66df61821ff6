"""Tests of inl_sim.learning.selection: Gibbs selection from a finite bank and its bounds.

Oracles: posteriors whose I(S;W) is known in closed form (a noisy "pick the draw's own
hypothesis" channel), the mutual information of the exact joint p(S, W) from
:func:`inl_sim.learning.information.mutual_information`, exact enumeration of every
training set of a tiny pool (where the Xu-Raginsky theorem must hold), and the Gibbs
weights written out by hand.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from inl_sim.errors import ScenarioError
from inl_sim.learning.information import mutual_information
from inl_sim.learning.selection import (generalisation_gap, gibbs_posterior, resampled_losses, selection_information,
                                        union_bound, xu_raginsky_bound)


def noisy_pick(m: int, eps: float, repeats: int) -> np.ndarray:
    """R = m * repeats posteriors: draw r keeps hypothesis r mod m with prob 1 - eps + eps/m."""
    rows = np.full((m * repeats, m), eps / m)
    rows[np.arange(m * repeats), np.arange(m * repeats) % m] += 1 - eps
    return rows


def noisy_pick_information(m: int, eps: float) -> float:
    """log m - H((1 - eps + eps/m, eps/m, ..., eps/m)) in nats, written out."""
    top, rest = 1 - eps + eps / m, eps / m
    h = -top * math.log(top) - ((m - 1) * rest * math.log(rest) if rest > 0 else 0.0)
    return math.log(m) - h


@pytest.mark.parametrize("m,eps", [(2, 0.0), (4, 0.0), (4, 0.3), (8, 0.5), (5, 1.0)])
def test_information_of_a_synthetic_posterior_with_known_entropy(m: int, eps: float) -> None:
    got = selection_information(noisy_pick(m, eps, repeats=3))
    assert got == pytest.approx(noisy_pick_information(m, eps), abs=1e-12)


def test_posteriors_that_ignore_the_data_carry_no_information() -> None:
    pmf = np.random.default_rng(0).dirichlet(np.ones(6))
    assert selection_information(np.tile(pmf, (50, 1))) == pytest.approx(0.0, abs=1e-12)


def test_alpha_zero_is_uniform_and_independent_of_the_losses() -> None:
    losses = np.random.default_rng(1).uniform(size=(40, 5))
    q = gibbs_posterior(losses, 0.0, n=50)
    np.testing.assert_array_equal(q, np.full((40, 5), 0.2))
    assert selection_information(q) == pytest.approx(0.0, abs=1e-12)


def test_gibbs_weights_by_hand() -> None:
    q = gibbs_posterior([[0.1, 0.3, 0.3]], alpha=2.0, n=10)       # weights exp(-2), exp(-6), exp(-6)
    z = math.exp(-2) + 2 * math.exp(-6)
    np.testing.assert_allclose(q, [[math.exp(-2) / z, math.exp(-6) / z, math.exp(-6) / z]], rtol=1e-12)


def exact_setup(alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered training set of n = 2 draws from a pool of 3 points (9, equally likely)."""
    wrong = np.array([[0, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=float)   # (pool, hypotheses)
    sets = list(itertools.product(range(3), repeat=2))
    losses = np.array([wrong[list(s)].mean(axis=0) for s in sets])    # (9, 3)
    return wrong, losses, gibbs_posterior(losses, alpha, n=2), wrong.mean(axis=0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, 3.0, 30.0])
def test_exact_enumeration_matches_joint_mi_and_obeys_xu_raginsky(alpha: float) -> None:
    wrong, losses, q, population = exact_setup(alpha)
    info = selection_information(q)
    assert info == pytest.approx(mutual_information(q / len(q)), abs=1e-12)   # joint p(S, W) = q(W|S) / 9
    gap = generalisation_gap(q, losses, population)
    by_loop = sum(q[r, w] * (population[w] - losses[r, w]) for r in range(9) for w in range(3)) / 9
    assert gap == pytest.approx(by_loop, abs=1e-12)
    assert abs(gap) <= math.sqrt(2 * 0.25 * info / 2) + 1e-12            # the theorem, sigma = 1/2
    assert info <= math.log(3) + 1e-12


def test_information_rises_with_alpha_on_the_exact_example() -> None:
    infos = [selection_information(exact_setup(a)[2]) for a in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert infos[0] == pytest.approx(0.0, abs=1e-12) and all(b > a for a, b in zip(infos, infos[1:]))


def test_bounds_in_closed_form() -> None:
    assert xu_raginsky_bound(0.5, 50) == pytest.approx(math.sqrt(2 * 0.25 * 0.5 / 50))
    assert xu_raginsky_bound(0.5, 50, sigma=2.0) == pytest.approx(math.sqrt(2 * 4.0 * 0.5 / 50))
    assert union_bound(8, 100) == pytest.approx(math.sqrt(2 * 0.25 * math.log(8) / 100))


def test_resampled_losses_are_means_of_iid_draws_and_seeded() -> None:
    wrong = (np.random.default_rng(2).uniform(size=(30, 4)) < 0.4).astype(float)
    a = resampled_losses(wrong, 7, 5, np.random.default_rng(3))
    idx = np.random.default_rng(3).integers(0, 30, size=(5, 7))
    np.testing.assert_array_equal(a, np.stack([wrong[i].mean(axis=0) for i in idx]))
    np.testing.assert_array_equal(a, resampled_losses(wrong, 7, 5, np.random.default_rng(3)))


@pytest.mark.parametrize("call", [
    lambda: gibbs_posterior([[0.1, 0.2]], -1.0, 5),
    lambda: gibbs_posterior([0.1, 0.2], 1.0, 5),
    lambda: selection_information([[0.5, 0.6]]),
    lambda: generalisation_gap([[0.5, 0.5]], [[0.1, 0.2]], [0.1]),
    lambda: xu_raginsky_bound(-0.1, 5),
])
def test_bad_input_raises_scenario_errors(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError):
        call()

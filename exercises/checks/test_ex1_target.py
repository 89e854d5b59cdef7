"""Check of exercise 1: the advantage-induced target, its normaliser, and the paper's P_pi and P_A."""
import pytest
import torch

import bandit


@pytest.fixture
def ex1(exercise):
    return exercise("ex1_target")


def _small_problem():
    """Five responses, a non-uniform pi_old and moderate advantages, in float64."""
    gen = torch.Generator().manual_seed(0)
    pi_old = torch.softmax(torch.randn(5, generator=gen, dtype=torch.float64), 0)
    advantages = torch.randn(5, generator=gen, dtype=torch.float64)
    return pi_old, advantages


def test_matches_the_formula_of_lemma_3_1_in_float64(ex1):
    pi_old, advantages = _small_problem()
    eta = 0.5
    weights = pi_old * torch.exp(advantages / eta)  # safe here: |A/eta| < 10
    expected = weights / weights.sum()
    got = ex1.target_policy(pi_old, advantages, eta)
    assert got.dtype == torch.float64 and got.shape == (5,)
    assert torch.allclose(got, expected, rtol=1e-12, atol=0)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-14)
    assert float(ex1.log_normaliser(pi_old, advantages, eta)) == pytest.approx(float(weights.sum().log()), rel=1e-12)


def test_finite_and_right_for_huge_advantages_in_float32(ex1):
    eta = 0.25
    pi_old = torch.full((4,), 0.25)
    advantages = torch.tensor([1000.0, -1000.0, 0.0, 999.0]) * eta  # A/eta = 1000, -1000, 0, 999
    got = ex1.target_policy(pi_old, advantages, eta)
    assert torch.isfinite(got).all(), f"target_policy overflowed: {got}"
    # only the first and the last response count, in the ratio exp(1000) : exp(999) = e : 1
    e = torch.exp(torch.tensor(1.0))
    assert torch.allclose(got, torch.tensor([e / (e + 1), 0.0, 0.0, 1 / (e + 1)]), atol=1e-6)
    log_z = ex1.log_normaliser(pi_old, advantages, eta)
    assert torch.isfinite(log_z), "log_normaliser overflowed: compute log Z without forming Z"
    assert float(log_z) == pytest.approx(1000 + float(torch.log(0.25 * (1 + 1 / e))), rel=1e-6)
    p_a = ex1.advantage_induced(advantages, eta)
    assert torch.isfinite(p_a).all() and torch.allclose(p_a, got, atol=1e-6)  # pi_old is uniform here
    # a ratio pi/pi_old of 5e39 is inf in float32, yet P_pi itself is harmless
    pi_old = torch.tensor([1e-40, 1e-40, 1.0])
    p_pi = ex1.policy_induced(torch.tensor([0.5, 0.25, 0.25]), pi_old)
    assert torch.isfinite(p_pi).all(), f"policy_induced overflowed: {p_pi}"
    assert torch.allclose(p_pi, torch.tensor([2 / 3, 1 / 3, 0.0]), atol=1e-6)


def test_adding_a_constant_to_the_advantages_moves_log_z_not_the_target(ex1):
    pi_old, advantages = _small_problem()
    eta, c = 0.25, 3.7
    assert torch.allclose(ex1.target_policy(pi_old, advantages + c, eta),
                          ex1.target_policy(pi_old, advantages, eta), rtol=1e-12)
    shift = ex1.log_normaliser(pi_old, advantages + c, eta) - ex1.log_normaliser(pi_old, advantages, eta)
    assert float(shift) == pytest.approx(c / eta, rel=1e-12)


def test_the_policy_induced_distribution_of_the_target_is_the_advantage_induced_one(ex1):
    """The paper's P_pi = P_A holds exactly at pi = pi*."""
    pi_old, advantages = _small_problem()
    eta = 0.5
    p_a = ex1.advantage_induced(advantages, eta)
    assert float(p_a.sum()) == pytest.approx(1.0, abs=1e-14)
    assert torch.allclose(p_a, torch.softmax(advantages / eta, 0), rtol=1e-12)
    pi_star = ex1.target_policy(pi_old, advantages, eta)
    assert torch.allclose(ex1.policy_induced(pi_star, pi_old), p_a, rtol=1e-12)
    # pi = pi_old: no response is favoured over its pi_old, so P_pi is uniform
    assert torch.allclose(ex1.policy_induced(pi_old, pi_old), torch.full((5,), 0.2, dtype=torch.float64))
    # any other pi gives another P_pi
    assert not torch.allclose(ex1.policy_induced(torch.roll(pi_star, 1), pi_old), p_a, atol=1e-3)


def test_the_bandit_target_is_the_mixture_with_z_equal_to_one(ex1):
    """bandit.py chose A = eta * log(mixture / pi_0) with eta = 1/4: the target is the mixture, Z = 1.
    Centring A keeps the target and raises Z above 1 (Jensen's inequality)."""
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    assert torch.allclose(ex1.target_policy(pi_0, advantages, 0.25), bandit.mixture(), atol=1e-6)
    assert float(ex1.log_normaliser(pi_0, advantages, 0.25)) == pytest.approx(0.0, abs=1e-5)
    centred = bandit.bandit_advantages(pi_0, center=True)
    assert torch.allclose(ex1.target_policy(pi_0, centred, 0.25), bandit.mixture(), atol=1e-6)
    assert float(ex1.log_normaliser(pi_0, centred, 0.25)) > 0.5

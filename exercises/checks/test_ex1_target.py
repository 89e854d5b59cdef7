"""Check of exercise 1: the advantage-induced target, its normaliser, and the paper's P_pi, P_A."""
import math

import pytest
import torch

from bandit_study import task as bandit_task

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 1.2e-7: the relative spacing of float32 numbers


@pytest.fixture
def ex1(exercise):
    return exercise("ex1_target")


def assert_close(got, expected, what, atol=0.0, rtol=0.0):
    """|got - expected| <= atol + rtol * |expected| everywhere, or a message with the difference."""
    got, expected = torch.as_tensor(got).double(), torch.as_tensor(expected, dtype=torch.float64)
    assert got.shape == expected.shape, \
        f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    assert torch.isfinite(got).all(), f"{what} is not finite (overflow?): {got.tolist()}"
    difference = (got - expected).abs()
    allowed = atol + rtol * expected.abs()
    assert (difference <= allowed).all(), (
        f"{what}: expected {expected.tolist()}, got {got.tolist()}; largest difference "
        f"{float(difference.max()):.2e}, allowed {float(allowed.max()):.1e}")


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
    assert got.dtype == torch.float64, \
        f"target_policy should return the input's dtype, float64; got {got.dtype}"
    assert_close(got, expected, "target_policy, pi_old * exp(A/eta) / Z", rtol=1e-12)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-14), "the target policy must sum to 1"
    assert_close(ex1.log_normaliser(pi_old, advantages, eta), weights.sum().log(),
                 "log_normaliser, log sum_y pi_old(y) exp(A(y)/eta)", rtol=1e-12)


def test_finite_and_right_for_huge_advantages_in_float32(ex1):
    eta = 0.25
    pi_old = torch.full((4,), 0.25)
    advantages = torch.tensor([1000.0, -1000.0, 0.0, 999.0]) * eta  # A/eta = 1000, -1000, 0, 999
    # Only the first and the last response count, in the ratio exp(1000) : exp(999) = e : 1.
    expected = torch.tensor([math.e / (math.e + 1), 0.0, 0.0, 1 / (math.e + 1)],
                            dtype=torch.float64)
    # float32 holds a number near 1000 only to within about eps * 1000 = 1.2e-4 (its spacing there
    # is 6e-5). Computing log pi* = log pi_old + A/eta - log Z rounds two numbers of that size
    # before the exponential, so a correct log-space method may be off by up to about that much in
    # log pi*, hence in pi* <= 1. (torch.softmax shifts by the largest input first and gets closer;
    # both are right.)
    tolerance = FLOAT32_EPS * 1000
    got = ex1.target_policy(pi_old, advantages, eta)
    assert torch.isfinite(got).all(), \
        f"target_policy overflowed: {got}; compute log pi* first, exponentiate last"
    assert_close(got, expected, "target_policy with A/eta = +-1000 in float32", atol=tolerance)
    log_z = ex1.log_normaliser(pi_old, advantages, eta)
    assert torch.isfinite(log_z), \
        "log_normaliser overflowed: compute log Z without forming Z (torch.logsumexp)"
    assert_close(log_z, 1000 + math.log(0.25 * (1 + 1 / math.e)),
                 "log_normaliser with A/eta = 1000", atol=tolerance)
    p_a = ex1.advantage_induced(advantages, eta)
    assert torch.isfinite(p_a).all(), f"advantage_induced overflowed: {p_a}"
    assert_close(p_a, expected, "advantage_induced (equal to pi* here, since pi_old is uniform)",
                 atol=tolerance)
    # A ratio pi/pi_old of 5e39 is inf in float32, yet P_pi itself is harmless. Its log-ratios are
    # about 92, so the same reasoning allows eps * 92.
    pi_old = torch.tensor([1e-40, 1e-40, 1.0])
    p_pi = ex1.policy_induced(torch.tensor([0.5, 0.25, 0.25]), pi_old)
    assert torch.isfinite(p_pi).all(), \
        f"policy_induced overflowed: {p_pi}; work with log pi - log pi_old"
    assert_close(p_pi, torch.tensor([2 / 3, 1 / 3, 0.0]), "policy_induced with ratios up to 5e39",
                 atol=FLOAT32_EPS * 92)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64],
                         ids=["float32", "float64"])
def test_each_function_returns_the_dtype_it_was_given(ex1, dtype):
    """The statement asks for the input's dtype. Mistakes it catches: an answer that computes in
    float64 for safety (`.double()`, `torch.tensor(..., dtype=torch.float64)`, numpy) and returns
    float64 for float32 input, or one that returns float32 for float64 input (a result filled into
    a new tensor of the default dtype, torch.zeros(n)). The value checks convert to float64 before
    comparing, so they cannot see it."""
    pi_old, advantages = (t.to(dtype) for t in _small_problem())
    pi = torch.softmax(torch.arange(5, dtype=dtype), 0)
    for name, got in [("log_normaliser", ex1.log_normaliser(pi_old, advantages, 0.5)),
                      ("target_policy", ex1.target_policy(pi_old, advantages, 0.5)),
                      ("advantage_induced", ex1.advantage_induced(advantages, 0.5)),
                      ("policy_induced", ex1.policy_induced(pi, pi_old))]:
        assert isinstance(got, torch.Tensor), \
            f"{name} should return a tensor, got {type(got).__name__}"
        assert got.dtype == dtype, (
            f"{name} returned {got.dtype} for {dtype} input: return the input's dtype (compute in "
            f"float64 if you like, then convert back with .to(the input's dtype))")


def test_adding_a_constant_to_the_advantages_moves_log_z_not_the_target(ex1):
    pi_old, advantages = _small_problem()
    eta, c = 0.25, 3.7
    assert_close(ex1.target_policy(pi_old, advantages + c, eta),
                 ex1.target_policy(pi_old, advantages, eta),
                 "target_policy with every advantage raised by 3.7 (it should not move)",
                 rtol=1e-12)
    shift = (ex1.log_normaliser(pi_old, advantages + c, eta)
             - ex1.log_normaliser(pi_old, advantages, eta))
    assert_close(shift, c / eta,
                 "the change of log Z when every advantage rises by c (expected: c / eta)",
                 rtol=1e-12)


def test_the_policy_induced_distribution_of_the_target_is_the_advantage_induced_one(ex1):
    """The paper's P_pi = P_A holds exactly at pi = pi*."""
    pi_old, advantages = _small_problem()
    eta = 0.5
    p_a = ex1.advantage_induced(advantages, eta)
    assert float(p_a.sum()) == pytest.approx(1.0, abs=1e-14), "P_A must sum to 1"
    assert_close(p_a, torch.softmax(advantages / eta, 0), "advantage_induced, exp(A/eta) / Z_A",
                 rtol=1e-12)
    pi_star = ex1.target_policy(pi_old, advantages, eta)
    assert_close(ex1.policy_induced(pi_star, pi_old), p_a,
                 "policy_induced(pi*), which should equal P_A", rtol=1e-12)
    # pi = pi_old: no response is favoured over its pi_old, so P_pi is uniform
    assert_close(ex1.policy_induced(pi_old, pi_old), torch.full((5,), 0.2, dtype=torch.float64),
                 "policy_induced(pi_old), which should be uniform", rtol=1e-12)
    # any other pi gives another P_pi
    other = ex1.policy_induced(torch.roll(pi_star, 1), pi_old)
    assert (other - p_a).abs().max() > 1e-3, \
        "policy_induced must depend on pi: a different pi gave P_A again"


def test_the_bandit_target_is_the_mixture_with_z_equal_to_one(ex1):
    """bandit_task.py chose A = eta * log(mixture / pi_0) with eta = 1/4: the target is the
    mixture, Z = 1. Centring A keeps the target and raises Z above 1 (Jensen's inequality)."""
    pi_0 = bandit_task.uniform_policy()
    advantages = bandit_task.bandit_advantages(pi_0)
    assert_close(ex1.target_policy(pi_0, advantages, 0.25), bandit_task.mixture(),
                 "the bandit's target, which should be the three-Gaussian mixture", atol=1e-6)
    assert_close(ex1.log_normaliser(pi_0, advantages, 0.25), 0.0,
                 "the bandit's log Z (Z = 1 by design)", atol=1e-5)
    centred = bandit_task.bandit_advantages(pi_0, centre=True)
    assert_close(ex1.target_policy(pi_0, centred, 0.25), bandit_task.mixture(),
                 "the target with centred advantages, which should still be the mixture",
                 atol=1e-6)
    assert float(ex1.log_normaliser(pi_0, centred, 0.25)) > 0.5, \
        "centring the advantages should raise log Z above 0.5 (Z = 2.8)"

"""Check of exercise 3: the stationarity condition f'(x_y) = lambda of Lemma 3.2."""
import math

import pytest
import torch

import bandit
from lad_loss import DIVERGENCES, lad_loss

STRICT = sorted(name for name, d in DIVERGENCES.items() if d.strictly_convex)
ETA = 0.5
# Six responses, a non-uniform pi_old, two responses (0 and 1) with equal advantage.
PI_OLD = torch.softmax(torch.tensor([0.3, -0.5, 0.1, 0.9, -1.2, 0.0], dtype=torch.float64), 0)
ADVANTAGES = torch.tensor([0.8, 0.8, -0.3, 0.1, -1.0, 0.4], dtype=torch.float64)
TARGET = bandit.target_distribution(PI_OLD, ADVANTAGES, ETA)


@pytest.fixture
def ex3(exercise):
    return exercise("ex3_stationarity")


def exact_objective(pi, divergence, pi_old=PI_OLD, advantages=ADVANTAGES):
    """L(pi) = sum_y pi_old(y) exp(A_y/eta) f(x_y), through lad_loss itself."""
    per_response = lad_loss(torch.log(pi), torch.log(pi_old), advantages, eta=ETA, divergence=divergence,
                            reduction="none")
    return float((pi_old * per_response).sum())


@pytest.mark.parametrize("divergence", STRICT)
def test_the_residual_vanishes_at_the_target_and_only_there(ex3, divergence):
    assert ex3.stationarity_residual(TARGET, PI_OLD, ADVANTAGES, ETA, divergence) < 1e-10
    # move 5% of the mass from one response to another: no longer stationary
    moved = TARGET.clone()
    moved[3] -= 0.05
    moved[4] += 0.05
    assert ex3.stationarity_residual(moved, PI_OLD, ADVANTAGES, ETA, divergence) > 1e-2
    # breaking the tie between the two equally good responses is not stationary either
    tilted = TARGET.clone()
    tilted[0] *= 1.2
    tilted[1] = tilted[1] - (tilted.sum() - 1)
    assert ex3.stationarity_residual(tilted, PI_OLD, ADVANTAGES, ETA, divergence) > 1e-3


@pytest.mark.parametrize("divergence", STRICT + ["tv"])
def test_lambda_is_f_prime_of_one_over_z(ex3, divergence):
    lam = ex3.lagrange_multiplier(PI_OLD, ADVANTAGES, ETA, divergence)
    x = TARGET / (PI_OLD * torch.exp(ADVANTAGES / ETA))  # every x_y at the target
    assert torch.allclose(DIVERGENCES[divergence].f_prime(x), torch.full_like(x, lam), atol=1e-10)
    if divergence == "kl":  # f'(x) = log x + 1 at x = 1/Z
        z = float((PI_OLD * torch.exp(ADVANTAGES / ETA)).sum())
        assert lam == pytest.approx(1 - math.log(z), rel=1e-12)


@pytest.mark.parametrize("divergence", STRICT)
def test_the_numerical_minimiser_is_the_target_and_satisfies_the_condition(ex3, divergence):
    pi = ex3.minimise_exact_objective(PI_OLD, ADVANTAGES, ETA, divergence)
    assert pi.shape == (6,) and float(pi.sum()) == pytest.approx(1.0, abs=1e-12)
    assert ex3.stationarity_residual(pi, PI_OLD, ADVANTAGES, ETA, divergence) < 1e-5
    assert torch.allclose(pi, TARGET, atol=1e-6)
    assert float(pi[0] / pi[1]) == pytest.approx(float(PI_OLD[0] / PI_OLD[1]), rel=1e-5)  # tie kept


def test_total_variation_has_other_minimisers_when_z_exceeds_one(ex3):
    centred = ADVANTAGES - (PI_OLD * ADVANTAGES).sum()  # a baseline: Z > 1 by Jensen's inequality
    z = float((PI_OLD * torch.exp(centred / ETA)).sum())
    assert z > 1.3
    target = bandit.target_distribution(PI_OLD, centred, ETA)
    other = ex3.tv_minimiser_other_than_target(PI_OLD, centred, ETA)
    assert float(other.sum()) == pytest.approx(1.0, abs=1e-12) and (other > 0).all()
    assert 0.5 * float((other - target).abs().sum()) > 0.05, "that is (nearly) the target itself"
    assert ex3.stationarity_residual(other, PI_OLD, centred, ETA, "tv") == 0.0
    assert exact_objective(other, "tv", advantages=centred) == pytest.approx(
        exact_objective(target, "tv", advantages=centred), abs=1e-12)
    # a strictly convex divergence tells the two apart
    assert exact_objective(other, "js", advantages=centred) > exact_objective(target, "js", advantages=centred) + 1e-4

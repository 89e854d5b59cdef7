"""Check of exercise 3: the stationarity condition f'(x_y) = mu of Lemma 3.2."""
import math

import pytest
import torch

import bandit
from lad_loss import DIVERGENCES, lad_loss
from compare import assert_close, number

STRICT = sorted(name for name, d in DIVERGENCES.items() if d.strictly_convex)
ETA = 0.5
# Six responses, a non-uniform pi_old, two responses (0 and 1) with equal advantage.
PI_OLD = torch.softmax(torch.tensor([0.3, -0.5, 0.1, 0.9, -1.2, 0.0], dtype=torch.float64), 0)
ADVANTAGES = torch.tensor([0.8, 0.8, -0.3, 0.1, -1.0, 0.4], dtype=torch.float64)
TARGET = bandit.target_policy(PI_OLD, ADVANTAGES, ETA)


@pytest.fixture
def ex3(exercise):
    return exercise("ex3_stationarity")


def exact_objective(pi, divergence, pi_old=PI_OLD, advantages=ADVANTAGES):
    """L(pi) = sum_y pi_old(y) exp(A_y/eta) f(x_y), through lad_loss itself."""
    per_response = lad_loss(torch.log(pi), torch.log(pi_old), advantages, eta=ETA,
                            divergence=divergence, reduction="none")
    return float((pi_old * per_response).sum())


def exact_js_objective(pi, pi_old=PI_OLD, advantages=ADVANTAGES):
    """The same L for Jensen-Shannon, in float64 from the textbook generator with 0 log 0 = 0, so
    that a policy with a zero entry gets its true value (x = 0 is allowed: f(0) = log(2) / 2)."""
    weight = torch.exp(advantages / ETA)
    x = pi / (pi_old * weight)
    f = 0.5 * (torch.xlogy(x, x) - (x + 1) * torch.log((x + 1) / 2))
    return float((pi_old * weight * f).sum())


@pytest.mark.parametrize("divergence", STRICT)
def test_the_residual_vanishes_at_the_target_and_only_there(ex3, divergence):
    at_target = number(ex3.stationarity_residual(TARGET, PI_OLD, ADVANTAGES, ETA, divergence),
                       "stationarity_residual")
    assert at_target < 1e-10, \
        f"at the target every f'(x_y) is the same, so the residual should be ~0, got {at_target}"
    # move 5% of the mass from one response to another: no longer stationary
    moved = TARGET.clone()
    moved[3] -= 0.05
    moved[4] += 0.05
    residual = number(ex3.stationarity_residual(moved, PI_OLD, ADVANTAGES, ETA, divergence),
                      "stationarity_residual")
    assert residual > 1e-2, \
        f"5% of the mass moved away from the target: expected a residual > 1e-2, got {residual}"
    # breaking the tie between the two equally good responses is not stationary either
    tilted = TARGET.clone()
    tilted[0] *= 1.2
    tilted[1] = tilted[1] - (tilted.sum() - 1)
    residual = number(ex3.stationarity_residual(tilted, PI_OLD, ADVANTAGES, ETA, divergence),
                      "stationarity_residual")
    assert residual > 1e-3, (f"the tie between two equally good responses broken: expected a "
                             f"residual > 1e-3, got {residual}")


@pytest.mark.parametrize("divergence", STRICT)
def test_the_residual_is_the_spread_of_f_prime_not_of_x(ex3, divergence):
    """The residual's value away from the target: max_y f'(x_y) - min_y f'(x_y). Mistakes it
    catches: the spread of x_y, or of log x_y, instead of f'(x_y) (they vanish at the target too,
    since equal x_y give equal f'(x_y), so the test above cannot tell; for KL, f' = log x + 1 makes
    the spread of log x the right answer); f' of the ratio pi/pi_old, the target left out; and
    x_y = ratio * exp(A/eta), the target multiplied in instead of divided out. Z = 2.3 here, so
    no slope is 1 where the x_y sit."""
    pi = TARGET.clone()
    pi[3] -= 0.05  # 5% of the mass moved from response 3 to response 4
    pi[4] += 0.05
    f_prime = DIVERGENCES[divergence].f_prime
    ratio = pi / PI_OLD
    log_x = torch.log(ratio) - ADVANTAGES / ETA
    x = torch.exp(log_x)
    truth = float(f_prime(x).max() - f_prime(x).min())
    mistakes = {
        "the spread of x_y: the condition is on f'(x_y), and f' is not the identity":
            float(x.max() - x.min()),
        "the spread of f'(pi/pi_old): x_y is the ratio measured against its target, "
        "ratio / exp(A/eta)": float(f_prime(ratio).max() - f_prime(ratio).min()),
        "x_y = ratio * exp(A/eta): the target divides the ratio, x_y = ratio / exp(A/eta)":
            float(f_prime(ratio * torch.exp(ADVANTAGES / ETA)).max()
                  - f_prime(ratio * torch.exp(ADVANTAGES / ETA)).min()),
    }
    if divergence != "kl":  # KL's f'(x) = log x + 1: the spread of log x is its residual
        mistakes["the spread of log x_y: the condition is on f'(x_y), not on log x_y"] = \
            float(log_x.max() - log_x.min())
    got = number(ex3.stationarity_residual(pi, PI_OLD, ADVANTAGES, ETA, divergence),
                 "stationarity_residual")
    assert_close(got, truth, f"stationarity_residual({divergence}) with 5% of the target's mass "
                 f"moved from response 3 to 4, max_y f'(x_y) - min_y f'(x_y)", rtol=1e-9,
                 mistakes=mistakes)


@pytest.mark.parametrize("divergence", STRICT + ["tv"])
def test_mu_is_f_prime_of_one_over_z(ex3, divergence):
    mu = number(ex3.lagrange_multiplier(PI_OLD, ADVANTAGES, ETA, divergence),
                 "lagrange_multiplier")
    x = TARGET / (PI_OLD * torch.exp(ADVANTAGES / ETA))  # every x_y at the target
    slopes = DIVERGENCES[divergence].f_prime(x)
    assert torch.allclose(slopes, torch.full_like(x, mu), atol=1e-10), \
        f"mu should be the common value of f'(x_y) at the target, {float(slopes[0])}; got {mu}"
    if divergence == "kl":  # f'(x) = log x + 1 at x = 1/Z
        z = float((PI_OLD * torch.exp(ADVANTAGES / ETA)).sum())
        assert mu == pytest.approx(1 - math.log(z), rel=1e-12), \
            "for KL, mu = f'(1/Z) = 1 - log Z"


@pytest.mark.parametrize("divergence", STRICT)
def test_the_numerical_minimiser_is_the_target_and_satisfies_the_condition(ex3, divergence):
    answer = ex3.minimise_exact_objective(PI_OLD, ADVANTAGES, ETA, divergence)
    assert isinstance(answer, tuple) and len(answer) == 2, (
        "minimise_exact_objective should return (pi, path): the policy and the list of L along the "
        "way (see its docstring)")
    pi, path = answer
    assert pi.shape == (6,), f"expected a policy over the 6 responses, got shape {tuple(pi.shape)}"
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12), \
        f"the policy must sum to 1, got {float(pi.sum())}"
    residual = number(ex3.stationarity_residual(pi, PI_OLD, ADVANTAGES, ETA, divergence),
                      "stationarity_residual")
    assert residual < 1e-5, \
        f"the minimiser should satisfy f'(x_y) = mu: residual {residual}, expected < 1e-5"
    difference = float((pi - TARGET).abs().max())
    assert difference < 1e-6, (
        f"the minimiser should be the target pi_old exp(A/eta) / Z {TARGET.tolist()}; got "
        f"{pi.tolist()} (largest difference {difference:.1e}, allowed 1e-6)")
    assert float(pi[0] / pi[1]) == pytest.approx(float(PI_OLD[0] / PI_OLD[1]), rel=1e-5), \
        "responses 0 and 1 have equal advantage: they should keep pi_old's ratio"


@pytest.mark.parametrize("divergence", ["js", "kl"])
def test_the_minimiser_gets_there_by_optimising_from_pi_old(ex3, divergence):
    """The path of L from pi_old down to L(pi*), one entry per iteration. Mistakes it catches: the
    closed form pi* returned without optimising, with or without a made-up path ([L(pi_old),
    L(pi*)], or a few optimiser steps that have not converged followed by L(pi*)): an optimiser
    that knows only L cannot jump from far above the minimum onto it in one iteration (LBFGS with
    one iteration an entry and Adam at learning rates 0.01 to 0.1, run on this problem, never went
    from more than 1e-3 of the descent still to go to less than 1e-9 in one entry); an optimiser
    started elsewhere than pi_old (theta = 0, the uniform policy); a path that ends before the last
    step (LBFGS's step() returns L *before* its step); values that are not L, e.g. the mean of
    lad_loss over the responses instead of the pi_old-weighted sum."""
    pi, path = ex3.minimise_exact_objective(PI_OLD, ADVANTAGES, ETA, divergence)
    path = [number(value, f"each entry of the path ({divergence})") for value in path]
    start, minimum = exact_objective(PI_OLD, divergence), exact_objective(TARGET, divergence)
    uniform = exact_objective(torch.full_like(PI_OLD, 1 / 6), divergence)
    assert len(path) >= 2, (
        f"the path should hold L at the start and after each iteration; got {path} (the closed "
        "form of question 3 is the right end point, but the exercise is to reach it by optimising)")
    assert_close(path[0], start, f"the path's first value, L(pi_old) for {divergence}",
                 rtol=1e-9, mistakes={"L at the uniform policy: start the optimiser at pi_old, "
                                      "theta = log pi_old": uniform})
    end = exact_objective(pi, divergence)
    assert path[-1] == pytest.approx(end, rel=1e-9, abs=1e-12), (
        f"the path's last value should be L at the policy returned, {end:.10g}; got "
        f"{path[-1]:.10g} (LBFGS's step() returns L from before its step: evaluate L once more "
        f"at the end)")
    assert min(path) >= minimum - 1e-9, (
        f"the path goes below the minimum L(pi*) = {minimum:.10g}, to {min(path):.10g}: are these "
        f"values of L = sum_y pi_old(y) exp(A_y/eta) f(x_y)?")
    assert_close(path[-1], minimum, f"where the path ends, L(pi*) for {divergence}", rtol=1e-9)
    # The share of the descent from L(pi_old) to L(pi*) still to go, after each entry.
    to_go = [(value - minimum) / (start - minimum) for value in path]
    for k in range(1, len(path)):
        assert not (to_go[k - 1] > 1e-3 and to_go[k] < 1e-9), (
            f"the path jumps in one entry from L = {path[k - 1]:.10g}, {to_go[k - 1]:.1%} of the "
            f"descent still to go, onto the minimum L(pi*) = {minimum:.10g} (entry {k}): no "
            f"optimiser that knows only L lands there in one iteration. The path holds L after "
            f"each iteration (with LBFGS, max_iter=1 in each step() call), not the closed form of "
            f"question 3 after a few steps")


def test_total_variation_has_other_minimisers_when_z_exceeds_one(ex3):
    """Any distribution with pi(y) <= Z pi*(y) for every y is a minimiser, zero entries included
    (x_y = 0 is below 1 like any other x_y < 1)."""
    centred = ADVANTAGES - (PI_OLD * ADVANTAGES).sum()  # a baseline: Z > 1 by Jensen's inequality
    z = float((PI_OLD * torch.exp(centred / ETA)).sum())
    assert z > 1.3
    target = bandit.target_policy(PI_OLD, centred, ETA)
    try:
        other = ex3.tv_minimiser_other_than_target(PI_OLD, centred, ETA)
    except NotImplementedError:  # question 4 is optional in the lab
        pytest.skip("optional, not written: tv_minimiser_other_than_target")
    assert other.shape == (6,), \
        f"expected a policy over the 6 responses, got shape {tuple(other.shape)}"
    assert (other >= 0).all(), f"a policy's probabilities cannot be negative: {other.tolist()}"
    assert float(other.sum()) == pytest.approx(1.0, abs=1e-12), \
        f"a policy must sum to 1, got {float(other.sum())}"
    distance = 0.5 * float((other - target).abs().sum())
    assert distance > 0.05, \
        f"expected a policy clearly different from the target; TV to it is only {distance:.3g}"
    tv_other = exact_objective(other, "tv", advantages=centred)
    tv_target = exact_objective(target, "tv", advantages=centred)
    assert tv_other == pytest.approx(tv_target, abs=1e-12), (
        f"a minimiser has the target's objective value {tv_target:.12g}; this policy has "
        f"{tv_other:.12g} (every x_y must stay at or below 1, i.e. pi(y) <= Z pi*(y))")
    # a strictly convex divergence tells the two apart
    js_other = exact_js_objective(other, advantages=centred)
    assert js_other > exact_js_objective(target, advantages=centred) + 1e-4, \
        "Jensen-Shannon, strictly convex, should prefer the target to this policy"

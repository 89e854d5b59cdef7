"""Check of exercise 10: a refreshed pi_old compounds the target, pi_k = pi_0 exp(k A / eta) / Z_k.

Answers computed in float32 pass. Wrong answers it rejects, each tried, with the message naming the
mistake: pi_0^k exp(k A/eta) (the prior compounded too), the temperature eta * k instead of eta / k,
softmax(k A/eta) (the prior dropped); train_with_refreshes that never refreshes pi_old, or refreshes
it every step; P(correct) with the wrong answers' advantage left out; one-step runs that refresh
nothing.
"""
import math

import pytest
import torch

import bandit
from compare import assert_close, tv

ETA = 0.25
GEN = torch.Generator().manual_seed(0)
PI_0 = torch.softmax(torch.randn(7, generator=GEN, dtype=torch.float64), 0)
ADVANTAGES = 0.3 * torch.randn(7, generator=GEN, dtype=torch.float64)
# Six answers: 0 and 1 equally good (the best), the prior likes 0 six times more than 1.
TIE_PRIOR = torch.tensor([0.6, 0.1, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
TIE_ADVANTAGES = torch.tensor([1.0, 1.0, 0.2, -0.5, 0.0, 0.5], dtype=torch.float64)


@pytest.fixture
def ex10(exercise):
    return exercise("ex10_refreshed_pi_old")


def truth(pi_0, advantages, eta, k):
    return bandit.target_policy(pi_0, advantages, eta / k) if k else pi_0


@pytest.mark.parametrize("k", [0, 1, 2, 5])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_compounded_target(ex10, k, dtype):
    got = ex10.compounded_target(PI_0.to(dtype), ADVANTAGES.to(dtype), ETA, k)
    weights = lambda prior_power, tilt: PI_0**prior_power * torch.exp(tilt * ADVANTAGES / ETA)
    mistakes = {"softmax(k A / eta): the prior pi_0 is still there (k = 0: nothing was trained, "
                "the policy is pi_0 itself)": torch.softmax(k * ADVANTAGES / ETA, 0)}
    if k >= 2:
        mistakes["pi_0^k: the prior enters once (pi_2 = pi_1 exp(A/eta) / Z, and pi_1 already "
                 "holds pi_0)"] = \
            weights(k, k) / weights(k, k).sum()
        mistakes["the temperature eta * k: k refreshes multiply the tilt, exp(k A / eta), a "
                 "sharper target"] = \
            weights(1, 1 / k) / weights(1, 1 / k).sum()
    assert_close(got, truth(PI_0, ADVANTAGES, ETA, k), f"compounded_target(k = {k})",
                 mistakes=mistakes)


def test_equal_advantages_keep_the_priors_ratio_for_every_k(ex10):
    for k in (1, 3, 10, 40):
        pi = ex10.compounded_target(TIE_PRIOR, TIE_ADVANTAGES, ETA, k)
        assert float(pi[0] / pi[1]) == pytest.approx(6.0, rel=1e-5), \
            (f"compounded_target(k = {k}): answers 0 and 1 have equal advantage, so they keep the "
             "prior's 6 : 1")
    assert_close(ex10.compounded_target(TIE_PRIOR, TIE_ADVANTAGES, ETA, 40),
                 [6 / 7, 1 / 7, 0, 0, 0, 0],
                 "compounded_target(k = 40), near exercise 2's eta -> 0 limit", atol=1e-5)


def test_training_with_refreshes_follows_the_compounded_targets(ex10):
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    policies = ex10.train_with_refreshes(pi_0, advantages, ETA, refreshes=3)
    assert policies.shape == (4, bandit.N_ARMS), \
        ("expected the policy at the start and after each of 3 periods, shape (4, 50); got "
         f"{tuple(policies.shape)}")
    candidates = {j: truth(pi_0, advantages, ETA, j) for j in range(12)}
    for k in range(4):
        distance = tv(policies[k], candidates[k])
        if distance < 0.02:
            continue
        nearest = min(candidates, key=lambda j: tv(policies[k], candidates[j]))
        hint = ""
        if nearest < k:
            hint = (" pi_old was not refreshed at the end of each period (each period should start "
                    "from the last).")
        elif nearest > k:
            hint = (" It went further than k periods: is pi_old refreshed more often than every "
                    "steps_per_refresh steps?")
        raise AssertionError(f"train_with_refreshes, row {k}: expected pi_{k} = pi_0 exp({k} "
                             f"A/eta) / Z (within TV 0.02), got TV {distance:.3f}; the nearest "
                             f"compounded target is pi_{nearest} (TV "
                             f"{tv(policies[k], candidates[nearest]):.3f}).{hint}")


def test_p_correct_after_k_periods_in_the_gpt_setting(ex10):
    p, k = 0.29, 1
    a_plus, a_minus = math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))
    right = p * math.exp(k * a_plus / ETA)
    expected = right / (right + (1 - p) * math.exp(k * a_minus / ETA))
    assert_close(ex10.correct_mass_after(p, ETA, k), expected,
                 "correct_mass_after(p = 0.29, k = 1)", mistakes={
        "the wrong answers' advantage A- = -sqrt(p/(1 - p)) tilts them down, too":
            right / (right + 1 - p)})
    assert ex10.correct_mass_after(p, ETA, 0) == pytest.approx(p), \
        "correct_mass_after(k = 0) is the prior's p"
    assert ex10.correct_mass_after(0.02, ETA, 3) == pytest.approx(1.0, abs=1e-9), \
        ("correct_mass_after(p = 0.02, k = 3): three exact periods leave almost nothing on the "
         "wrong answers")


def test_one_step_per_refresh_rich_get_richer_under_sgd_not_under_adam(ex10):
    sgd = ex10.tie_ratio_with_one_step_per_refresh(TIE_PRIOR, TIE_ADVANTAGES, ETA, 0, 1, "sgd")
    adam = ex10.tie_ratio_with_one_step_per_refresh(TIE_PRIOR, TIE_ADVANTAGES, ETA, 0, 1, "adam")
    assert sgd > 12, (f"tie_ratio_with_one_step_per_refresh('sgd') = {sgd:.2f}: a plain gradient "
                      "step moves logit y by lr pi_y (w_y - E w), more for the likelier of two "
                      "equal answers, so the prior's 6 : 1 should grow well past 12 in 300 steps "
                      "at lr 0.5 (is pi_old refreshed before every step?)")
    assert adam == pytest.approx(6.0, rel=1e-3), \
        (f"tie_ratio_with_one_step_per_refresh('adam') = {adam:.4f}: Adam's steps on the two "
         "logits are equal here, so the ratio should stay at the prior's 6")

"""Check of exercise 2: the eta -> 0 and eta -> infinity limits of the target, then the bandit.

Answers computed in float32 pass (compare.assert_close's tolerance). Wrong answers it rejects with
the mistake named: ties split equally, and all the mass on the first of two tied responses.
"""
import pytest
import torch

import bandit
from compare import assert_close


@pytest.fixture
def ex2(exercise):
    return exercise("ex2_eta_limits")


def tv(p, q):
    return 0.5 * float((p - q).abs().sum())


# Six responses, a non-uniform pi_old, and two responses (0 and 3) tied for the best advantage.
PI_OLD = torch.tensor([0.30, 0.25, 0.05, 0.10, 0.20, 0.10], dtype=torch.float64)
ADVANTAGES = torch.tensor([1.0, 0.4, 0.9, 1.0, -2.0, 0.0], dtype=torch.float64)


def test_small_eta_limit_matches_the_target_and_splits_ties_by_pi_old(ex2):
    limit = ex2.target_as_eta_goes_to_zero(PI_OLD, ADVANTAGES)
    assert limit.shape == (6,), ("expected a distribution over the 6 responses, got shape "
                                 f"{tuple(limit.shape)}")
    assert float(limit.sum()) == pytest.approx(1.0), ("the limit must sum to 1, got "
                                                      f"{float(limit.sum())}")
    # the tied responses keep pi_old's ratio 0.30 : 0.10, everything else vanishes
    expected = torch.tensor([0.75, 0, 0, 0.25, 0, 0], dtype=torch.float64)
    assert_close(limit, expected, "target_as_eta_goes_to_zero (the two best responses share the "
                 "mass in pi_old's ratio 0.30 : 0.10, the others get 0)", mistakes={
                     "the tied responses split the mass equally: each keeps its pi_old weight":
                         [0.5, 0, 0, 0.5, 0, 0],
                     "all the mass on one of two tied responses: both keep their pi_old weight":
                         [1.0, 0, 0, 0, 0, 0]})
    for eta in (1e-2, 1e-3):
        distance = tv(bandit.target_policy(PI_OLD, ADVANTAGES, eta), limit)
        assert distance < 1e-3, (f"the target at eta = {eta:g} should be within TV 1e-3 of the "
                                 f"limit, got {distance:.3g}")


def test_large_eta_limit_matches_the_target(ex2):
    limit = ex2.target_as_eta_goes_to_infinity(PI_OLD, ADVANTAGES)
    assert_close(limit, PI_OLD, "target_as_eta_goes_to_infinity (pi_old itself)")
    for eta in (1e4, 1e6):
        distance = tv(bandit.target_policy(PI_OLD, ADVANTAGES, eta), limit)
        assert distance < 1e-3, (f"the target at eta = {eta:g} should be within TV 1e-3 of the "
                                 f"limit, got {distance:.3g}")


def test_training_goes_where_the_limits_say(ex2):
    """1/eta = 1/64, 4, 128: the learned policy walks from pi_old towards a point mass on arm 10."""
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    greedy = ex2.target_as_eta_goes_to_zero(pi_0, advantages)
    timid = ex2.target_as_eta_goes_to_infinity(pi_0, advantages)
    assert int(greedy.argmax()) == 10 and float(greedy.max()) == pytest.approx(1.0), \
        ("the bandit's eta -> 0 limit should put all the mass on arm 10 (the best arm); got "
         f"{greedy.tolist()}")

    learned = {k: ex2.train_lad(1 / k) for k in (1 / 64, 4, 128)}
    for k, pi in learned.items():
        assert torch.allclose(pi.sum(), torch.tensor(1.0)), \
            f"train_lad at 1/eta = {k:g} must return a policy summing to 1"
    to_greedy = [tv(learned[k], greedy) for k in (1 / 64, 4, 128)]
    to_timid = [tv(learned[k], timid) for k in (1 / 64, 4, 128)]
    assert to_greedy == sorted(to_greedy, reverse=True), f"TV to the eta->0 limit: {to_greedy}"
    assert to_timid == sorted(to_timid), f"TV to the eta->infinity limit: {to_timid}"
    assert to_timid[0] < 0.01, "at 1/eta = 1/64 LAD should barely move from pi_0"
    assert float(learned[128][10]) > 0.8, "at 1/eta = 128 most of the mass should sit on arm 10"
    # and each run did learn its own target (a sanity check on train_lad's settings)
    for k, pi in learned.items():
        distance = tv(pi, bandit.target_policy(pi_0, advantages, 1 / k))
        assert distance < 0.02, (f"at 1/eta = {k:g} LAD should end within TV 0.02 of its own "
                                 "target, got "
                                 f"{distance:.3f}: check train_lad's eta, steps, lr and exact=True")

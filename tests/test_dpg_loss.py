"""dpg (baselines/dpg_loss.py, run by reasoning.methods.method_loss): where its update heads, how
biased its self-normalised estimate is at a finite group, and what an error in the estimated
success rate does to its weights next to lad-fixed's.

The enumerable case: one prompt, K = 3 one-token completions, a softmax policy. Every group of G
completions the policy can sample is enumerated with its probability, so the expected update of a
group is an exact sum, run through method_loss as train_reasoning.py runs it."""
import itertools
import math
import types

import pytest
import torch

from baselines.dpg_loss import dpg_loss, dpg_weights
from grpo_loss import group_advantages
from reasoning.evaluation import large_group_advantages
from reasoning.methods import method_loss

PI_SFT = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
A = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)  # two correct answers, one wrong
ETA_ENUM = 1.0  # a target with mass on every outcome, so that small groups sample it all
PI_STAR = torch.softmax(PI_SFT.log() + A / ETA_ENUM, 0)


def settings(group_size, eta=ETA_ENUM, divergence="rkl"):
    """The fields of train_reasoning's settings that method_loss reads."""
    return types.SimpleNamespace(eta=eta, divergence=divergence, lad_ratio="sequence",
                                 clip_eps=0.2, kl_coef=eta, kl_estimator="k2",
                                 flowrl_reward_scale=1 / eta,
                                 group_size=group_size, dpg_same_a_groups="keep")


def expected_update(logits, group_size, method="dpg", prior=PI_SFT, advantages=A):
    """E over every group of G completions sampled from the policy softmax(logits) of the gradient
    of method_loss with respect to the logits. The sampler is the policy (q = pi, ratio 1)."""
    logits = logits.detach().clone().requires_grad_(True)
    log_pi = torch.log_softmax(logits, 0)
    total = 0.0
    for group in itertools.product(range(len(prior)), repeat=group_size):
        ys = torch.tensor(group)
        batch = {"logp_old": log_pi.detach()[ys].view(-1, 1), "mask": torch.ones(group_size, 1,
                 dtype=torch.bool), "advantages": advantages[ys],
                 "logp_ref": prior.log()[ys].view(-1, 1)}
        loss, _ = method_loss(method, log_pi[ys].view(-1, 1), batch, settings(group_size))
        # method_loss divides by the batch's tokens, G here: the group's sum of -w_i log pi(y_i)
        total = total + log_pi.detach()[ys].sum().exp() * loss
    (grad,) = torch.autograd.grad(total, logits)
    return grad


def forward_kl_gradient(logits):
    """d KL(pi* || pi) / d logits = pi - pi*, the update's target as G grows."""
    return torch.softmax(logits, 0) - PI_STAR


def test_dpgs_expected_update_is_the_forward_kl_gradient_as_g_grows():
    logits = PI_SFT.log()  # the start: the policy is pi_sft, and samples from it
    exact = forward_kl_gradient(logits)
    updates = {G: expected_update(logits, G) for G in range(2, 7)}
    bias = {G: float((updates[G] - exact).norm()) for G in updates}
    # Biased at every finite G (a ratio of two sample means), and less so as G grows: 0.23 at
    # G = 2, 0.048 at G = 6 here, against |exact| = 0.47.
    assert all(bias[G + 1] < bias[G] for G in range(2, 6)), bias
    assert bias[2] > 0.3 * float(exact.norm())
    # The bias is a series in 1/G: fitted through G = 4, 5, 6 (c0 + c1/G + c2/G^2), the constant
    # is the limit as G grows, and it is the forward KL's gradient (to 3e-4 here). A flipped A, q
    # in place of pi_sft as the prior, or no normalisation each miss it by far more.
    fit = torch.linalg.solve(torch.tensor([[1, 1 / G, 1 / G**2] for G in (4, 5, 6)],
                                          dtype=torch.float64),
                             torch.stack([updates[G] for G in (4, 5, 6)]))
    assert torch.allclose(fit[0], exact, atol=3e-3), (fit[0], exact)


def test_pi_star_is_a_fixed_point_of_dpg_at_every_group_size():
    # At pi = pi*, every weight pi_sft exp(A/eta) / pi* is Z: each group's update is the mean of
    # grad log pi over its samples, zero in expectation, whatever G.
    for G in (2, 3, 4):
        assert float(expected_update(PI_STAR.log(), G).norm()) < 1e-12
    # ... and nowhere else: pi_sft is not one.
    assert float(expected_update(PI_SFT.log(), 2).norm()) > 0.1


def test_dpg_iterated_from_pi_sft_converges_to_pi_star():
    # Gradient steps on the exact expected update of groups of 2, from the SFT start: the bias
    # bends the path, not where it ends.
    logits = PI_SFT.log().clone()
    for _ in range(150):
        logits = logits - 1.0 * expected_update(logits, 2)
    tv = 0.5 * float((torch.softmax(logits, 0) - PI_STAR).abs().sum())
    assert tv < 1e-3, tv


def expected_update_with_group_advantages(logits, group_size, drop_same_a=False):
    """As expected_update, with --advantage-source group: each group's A is its 0/1 rewards
    normalised within the group (group_advantages, as the rollout computes it), so the tilt of the
    correct answers depends on how many of the group are right."""
    groups = torch.tensor(list(itertools.product(range(len(PI_SFT)), repeat=group_size)))
    ys = groups.reshape(-1)
    rewards = (A > 0).double()[ys]
    logits = logits.detach().clone().requires_grad_(True)
    log_pi = torch.log_softmax(logits, 0)
    per_row = dpg_loss(log_pi[ys], log_pi.detach()[ys], PI_SFT.log()[ys],
                       group_advantages(rewards, group_size), group_size, eta=ETA_ENUM,
                       reduction="none", drop_same_a=drop_same_a)
    probability = log_pi.detach()[groups].sum(1).exp()
    (grad,) = torch.autograd.grad((per_row.view(-1, group_size).sum(1) * probability).sum(),
                                  logits)
    return grad


# P(correct) where the expected update ends, by group size and what same-A groups get; pi*: 0.881
WITH_GROUP_A = {(2, False): 0.804, (4, False): 0.874, (2, True): 0.670, (4, True): 0.772}


@pytest.mark.parametrize("group_size,drop_same_a", list(WITH_GROUP_A))
def test_with_the_groups_own_a_dpg_keeps_pi_stars_shape_but_not_its_success_rate(group_size,
                                                                                  drop_same_a):
    """The runs use --advantage-source group, not the A that defines pi*. Iterated to its fixed
    point from pi_sft, the expected update keeps pi_sft's proportions among the correct answers
    (pi*'s shape: 0.4, 0.6) exactly, while P(correct) ends elsewhere than pi*'s 0.881, lower
    still when the groups that are all right or all wrong are dropped (WITH_GROUP_A). A shape test
    alone would pass with any tilt that is the same for every correct answer; the success rate
    shows which."""
    logits = PI_SFT.log().clone()
    for _ in range(1000):
        logits = logits - expected_update_with_group_advantages(logits, group_size, drop_same_a)
    assert float(expected_update_with_group_advantages(logits, group_size, drop_same_a).norm()) \
        < 1e-10
    pi = torch.softmax(logits, 0)
    shape = pi[:2] / pi[:2].sum()
    assert torch.allclose(shape, PI_SFT[:2] / PI_SFT[:2].sum(), atol=1e-9)
    assert float(pi[:2].sum()) == pytest.approx(WITH_GROUP_A[group_size, drop_same_a], abs=5e-4)
    assert abs(float(pi[:2].sum()) - float(PI_STAR[:2].sum())) > 0.005


def test_dropping_same_a_groups_zeroes_their_weights_and_leaves_the_others():
    log_q = torch.tensor([-1.0, -2.0, -3.0, -1.5, -0.5, -2.5])
    log_prior = torch.tensor([-2.0, -1.0, -3.0, -2.5, -1.0, -0.7])
    advantages = torch.tensor([0.0, 0.0, 0.0, 1.2, -0.6, -0.6])  # one flat group, one mixed
    kept = dpg_weights(log_q, log_prior, advantages, group_size=3)
    dropped = dpg_weights(log_q, log_prior, advantages, group_size=3, drop_same_a=True)
    assert torch.equal(dropped[:3], torch.zeros(3)) and kept[:3].sum() == pytest.approx(3.0)
    assert torch.equal(dropped[3:], kept[3:])
    logp = torch.zeros(6, requires_grad=True)
    dpg_loss(logp, log_q, log_prior, advantages, 3, reduction="sum", drop_same_a=True).backward()
    assert torch.equal(logp.grad, -dropped)


def test_a_group_with_one_value_of_a_pulls_towards_pi_sft_among_its_completions():
    # Every completion wrong (or every one right) with --advantage-source group: A = 0 for the whole
    # group, and the weights are the importance weights pi_sft / q normalised over the group.
    log_q = torch.tensor([-1.0, -2.0, -3.0, -1.5])
    log_prior = torch.tensor([-2.0, -1.0, -3.0, -2.5])
    w = dpg_weights(log_q, log_prior, torch.zeros(4), group_size=4)
    assert torch.allclose(w, 4 * torch.softmax(log_prior - log_q, 0))
    # The same group with any constant A: the constant cancels.
    assert torch.allclose(dpg_weights(log_q, log_prior, torch.full((4,), -0.7), 4), w)


def weights_read_off_the_loss(method, p, log_q, log_sft, correct, eta=0.25):
    """Each completion's weight on grad log pi(y), as method_loss's gradient gives it (times the
    batch's tokens): A from the large-group advantages of a success rate p, the sampler q and
    pi_sft."""
    a_plus, a_minus = large_group_advantages(p)
    advantages = torch.where(correct, torch.tensor(a_plus), torch.tensor(a_minus))
    G = len(log_q)
    logp = log_q.clone().view(-1, 1).requires_grad_(True)
    batch = {"logp_old": log_q.view(-1, 1), "mask": torch.ones(G, 1, dtype=torch.bool),
             "advantages": advantages, "logp_ref": log_sft.view(-1, 1)}
    loss, _ = method_loss(method, logp, batch, settings(G, eta=eta))
    (grad,) = torch.autograd.grad(loss, logp)
    return -grad.view(-1) * G


def test_an_error_in_the_success_rate_moves_lad_fixeds_weight_by_orders_and_dpgs_barely():
    # A prompt whose SFT success rate is 0.18 (A+/eta = 8.5 at 1/eta = 4), estimated from 64
    # samples at 5.5 / 65 = 0.085 (sampled_success with 5 correct): A+/eta = 13.2.
    p, p_hat = 0.18, 5.5 / 65
    correct = torch.tensor([True, True, False, False, False, False, False, False])
    # The first rollout: q = pi_sft for lad-fixed (its sampler) and for dpg (the policy's start).
    log_q = torch.tensor([-3.0, -4.0, -2.0, -2.5, -5.0, -3.5, -6.0, -2.2])
    lad = {x: weights_read_off_the_loss("lad-fixed", x, log_q, log_q, correct) for x in (p, p_hat)}
    dpg = {x: weights_read_off_the_loss("dpg", x, log_q, log_q, correct) for x in (p, p_hat)}
    # lad-fixed (f = -log x): the weight is exp(A/eta) itself; the error multiplies it by e^4.6
    # (5.1e3 to 5.2e5).
    assert torch.allclose(lad[p][correct], torch.full((2,), math.exp(large_group_advantages(p)[0]
                                                                      / 0.25)), rtol=1e-4)
    lad_jump = float(lad[p_hat][0] / lad[p][0])
    assert lad_jump > math.exp(4.5), lad_jump
    # dpg: the correct completions share G between them, for either rate, to within 1e-3: the
    # correct-to-wrong ratio exp((A+ - A-)/eta) is e^10.4 or e^14.3, large either way (the
    # weights move by 3.5e-4).
    assert float((dpg[p] - dpg[p_hat]).abs().max()) < 1e-3
    assert float(dpg[p][correct].sum()) == pytest.approx(8.0, abs=1e-3)
    assert float(dpg[p].sum()) == pytest.approx(8.0, rel=1e-6)


def test_every_prompt_weighs_the_same_in_dpg_however_hard():
    # Two prompts in one batch, a hard one (p = 0.05) and an easy one (p = 0.9), one correct
    # completion each. lad-fixed's weights differ by e^16 between the prompts; dpg gives each
    # group G in total.
    G = 4
    log_q = torch.full((2 * G,), -2.0)
    correct = torch.tensor([True, False, False, False] * 2)
    advantages = torch.tensor([large_group_advantages(p)[0 if c else 1]
                               for p in (0.05, 0.9) for c in correct[:G].tolist()])
    w = dpg_weights(log_q, log_q, advantages, G).view(2, G)
    assert torch.allclose(w.sum(1), torch.full((2,), float(G)))
    lad_ratio = math.exp((large_group_advantages(0.05)[0] - large_group_advantages(0.9)[0]) / 0.25)
    assert lad_ratio > math.exp(15)


def test_the_loss_is_minus_the_weighted_log_likelihood_and_the_weights_carry_no_gradient():
    G = 3
    logp = torch.tensor([-1.0, -2.0, -0.5, -1.5, -0.3, -2.2], requires_grad=True)
    log_q = logp.detach() + 0.1
    log_prior = torch.tensor([-1.2, -1.8, -0.9, -1.0, -0.7, -2.0])
    advantages = torch.tensor([1.0, -0.5, -0.5, 0.0, 0.0, 0.0])
    loss = dpg_loss(logp, log_q, log_prior, advantages, G, eta=0.5, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logp)
    assert torch.allclose(grad, -dpg_weights(log_q, log_prior, advantages, G, 0.5))
    # the weights follow the prior and A: the first group's correct completion gets the most
    assert int(torch.argmax(-grad[:G])) == 0
    mean = dpg_loss(logp, log_q, log_prior, advantages, G, eta=0.5, reduction="mean")
    assert float(mean.detach()) == pytest.approx(float(loss.detach()) / 6)


def test_extreme_log_probabilities_give_finite_weights_in_float32():
    log_q = torch.tensor([-200.0, -1.0, -0.5, -300.0])
    log_prior = torch.tensor([-1.0, -250.0, -0.7, -2.0])
    w = dpg_weights(log_q, log_prior, torch.tensor([50.0, -50.0, 0.0, 10.0]), 4, eta=0.25)
    assert torch.isfinite(w).all() and float(w.sum()) == pytest.approx(4.0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(eta=0.0), "eta"), (dict(eta=float("nan")), "eta"), (dict(group_size=0), "group_size"),
    (dict(logp_prior=torch.zeros(5)), "logp_prior"), (dict(advantages=torch.zeros(3)),
                                                       "advantages"),
    (dict(logp_sampler=torch.zeros(5), logp_prior=torch.zeros(5), advantages=torch.zeros(5),
          logp=torch.zeros(5)), "group_size"),
    (dict(reduction="max"), "reduction"), (dict(logp=torch.zeros(3)), "logp")])
def test_bad_input_is_refused_naming_the_argument(kwargs, name):
    base = dict(logp=torch.zeros(4), logp_sampler=torch.zeros(4), logp_prior=torch.zeros(4),
                advantages=torch.zeros(4), group_size=2, eta=0.25, reduction="mean")
    with pytest.raises(ValueError, match=name):
        dpg_loss(**(base | kwargs))


def test_the_command_lines_choice_for_same_a_groups_reaches_the_loss():
    """--dpg-same-a-groups drop must reach method_loss: the flat first group adds nothing to the
    loss, and the weight_ess statistic is over the groups that are kept."""
    g = torch.Generator().manual_seed(0)
    logp_old = -torch.rand(6, 2, generator=g) - 0.5
    batch = {"logp_old": logp_old, "mask": torch.ones(6, 2, dtype=torch.bool),
             "advantages": torch.tensor([0.0, 0.0, 0.0, 1.2, -0.6, -0.6]),
             "logp_ref": logp_old - torch.rand(6, 2, generator=g)}
    losses = {}
    for choice in ("keep", "drop"):
        s = settings(3)
        s.dpg_same_a_groups = choice
        logp = logp_old.clone().requires_grad_(True)
        losses[choice], stats = method_loss("dpg", logp, batch, s)
    want = dpg_loss(logp_old.sum(1), logp_old.sum(1), batch["logp_ref"].sum(1),
                    batch["advantages"], 3, eta=ETA_ENUM, reduction="sum", drop_same_a=True)
    assert float(losses["drop"]) == pytest.approx(float(want) / 12, rel=1e-6)
    assert float(losses["drop"]) != pytest.approx(float(losses["keep"]), rel=1e-3)
    assert 0 < stats["weight_ess"] <= 1

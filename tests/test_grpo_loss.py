"""Tests of grpo_loss.py: group normalisation, clipping at the ratio boundaries, the vanilla policy
gradient at ratio 1, what its steps do to tied answers, masks and errors."""
import math

import pytest
import torch

from grpo_loss import group_advantages, grpo_loss


def test_group_advantages_hand_computed():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 3.0])
    adv = group_advantages(rewards, group_size=4, eps=0.0 + 1e-12)
    # group 1: mean 0.5, unbiased std sqrt(1/3)
    s = math.sqrt(1 / 3)
    assert adv[:4].tolist() == pytest.approx([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s], rel=1e-6)
    # group 2: all equal -> exactly zero, not NaN
    assert adv[4:8].tolist() == [0.0, 0.0, 0.0, 0.0]
    # group 3: mean 0.75, unbiased std 1.5
    assert adv[8:].tolist() == pytest.approx([-0.5, -0.5, -0.5, 1.5], rel=1e-6)


def test_group_advantages_uses_consecutive_groups_and_is_scale_free():
    rewards = torch.tensor([1.0, 3.0, 10.0, 20.0])
    normalised = group_advantages(rewards, 2)
    assert normalised[:2].tolist() == pytest.approx(normalised[2:].tolist(), rel=1e-5)  # scale-free


def test_constant_group_with_default_eps_is_zero_and_finite():
    adv = group_advantages(torch.full((6,), 0.7), group_size=3)
    assert torch.equal(adv, torch.zeros(6))


@pytest.mark.parametrize("eps", [0.0, 1e-6, 1.0])
def test_a_constant_group_gets_exactly_zero_for_any_eps(eps):
    """Two bugs: eps = 0 gave 0/0 = NaN, and in float32 the rounded mean of eight 3.3s is not 3.3,
    so the rounding error divided by a std of the same size came out as an advantage of 0.19."""
    for value in [0.7, 3.3, -2.9, 1 / 3, 1e6 + 0.1]:
        for group_size in (3, 8):
            steps = torch.arange(group_size, dtype=torch.float32)
            rewards = torch.cat([torch.full((group_size,), value), steps])
            adv = group_advantages(rewards, group_size, eps=eps)
            assert torch.equal(adv[:group_size], torch.zeros(group_size)), (value, group_size,
                                                                            adv[:group_size])
            assert adv[group_size:].abs().max() > 0  # the varied group keeps its signal
            assert torch.isfinite(adv).all()


def test_eps_is_added_to_the_std_with_a_margin_a_test_can_see():
    """With the default eps = 1e-6 a bug that ignored eps is off by about 1e-6, invisible to a loose
    tolerance. Here ignoring eps is off by 0.18 (eps = 0.5) and adding it to the variance by
    0.11."""
    rewards = torch.tensor([0.0, 2.0], dtype=torch.float64)  # mean 1, unbiased std sqrt(2)
    for eps in (0.0, 0.5, 2.0):
        expected = 1 / (math.sqrt(2) + eps)
        assert group_advantages(rewards, 2, eps=eps).tolist() == pytest.approx([-expected,
                                                                                expected],
                                                                                rel=1e-12)


@pytest.mark.parametrize("eps", [-1e-6, float("nan"), float("inf")])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        group_advantages(torch.zeros(4), 2, eps=eps)


@pytest.mark.parametrize("group_size", [1, 0, -2, 2.5, True])
def test_bad_group_size(group_size):
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(4), group_size)


def test_batch_not_divisible_by_group_size():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(10), 4)


def test_rewards_must_be_flat():
    with pytest.raises(ValueError, match="rewards"):
        group_advantages(torch.zeros(2, 4), 4)


def _grad_wrt_logp(logp_value, logp_old_value, advantage, **kwargs):
    logp = torch.tensor([logp_value], dtype=torch.float64, requires_grad=True)
    loss = grpo_loss(logp, torch.tensor([logp_old_value], dtype=torch.float64),
                     torch.tensor([advantage], dtype=torch.float64), **kwargs)
    loss.backward()
    return loss.item(), logp.grad.item()


@pytest.mark.parametrize("ratio, advantage, clipped", [
    (1.3, 1.0, True),    # pushed up beyond 1 + eps: stop
    (1.1, 1.0, False),   # inside the region
    (0.7, 1.0, False),   # below: the unclipped term is the smaller one, keep pushing up
    (0.7, -1.0, True),   # pushed down beyond 1 - eps: stop
    (0.9, -1.0, False),
    (1.3, -1.0, False),  # above, with a negative advantage: keep pushing down
])
def test_clipping_at_the_ratio_boundaries(ratio, advantage, clipped):
    loss, grad = _grad_wrt_logp(math.log(ratio), 0.0, advantage, clip_eps=0.2)
    if clipped:
        assert loss == pytest.approx(-max(0.8, min(1.2, ratio)) * advantage)  # -clip(ratio) * A
        assert grad == 0.0
    else:
        assert loss == pytest.approx(-ratio * advantage)
        assert grad == pytest.approx(-ratio * advantage)  # d(-ratio A)/d logp = -ratio A


def test_no_clip_leaves_the_importance_weighted_gradient():
    loss, grad = _grad_wrt_logp(math.log(3.0), 0.0, 2.0, clip_eps=None)
    assert loss == pytest.approx(-6.0) and grad == pytest.approx(-6.0)


def test_at_ratio_one_the_gradient_is_the_vanilla_policy_gradient():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(7, generator=gen, dtype=torch.float64, requires_grad=True)
    arms = torch.randint(0, 7, (16,), generator=gen)
    advantages = group_advantages(torch.rand(16, generator=gen, dtype=torch.float64), 4)
    logp = torch.log_softmax(theta, 0)[arms]
    (g_grpo,) = torch.autograd.grad(grpo_loss(logp, logp.detach(), advantages), theta)
    logp = torch.log_softmax(theta, 0)[arms]
    (g_pg,) = torch.autograd.grad(-(advantages * logp).mean(), theta)
    assert torch.allclose(g_grpo, g_pg, rtol=1e-12)


def test_tied_answers_every_split_maximises_expected_advantage_but_the_steps_favour_the_larger():
    """Two equally good answers (A = 1) and a worse one. Every split of the mass between the two
    maximises E[A], so the objective leaves their proportions open; the policy-gradient steps do
    not: each raises a logit by pi(y) (A - E[A]), so the more probable tied answer gains faster and
    the gap between the two grows (grpo_loss.py's docstring). A loss whose gradient were not A *
    grad log pi at ratio 1, or had the sign flipped, would not do this."""
    advantages = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    for split in (0.0, 0.3, 0.5, 1.0):
        pi = torch.tensor([split, 1 - split, 0.0], dtype=torch.float64)
        assert float((pi * advantages).sum()) == 1.0  # the largest E[A], whatever the split
    theta = torch.tensor([0.3, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    gaps = []
    for _ in range(200):
        logp = torch.log_softmax(theta, 0)
        pi = logp.exp().detach()
        per_answer = grpo_loss(logp, logp.detach(), advantages, reduction="none")
        (grad,) = torch.autograd.grad((pi * per_answer).sum(), theta)  # exact E_pi, on-policy
        expected_a = float((pi * advantages).sum())
        assert torch.allclose(-grad, pi * (advantages - expected_a), rtol=1e-12)
        with torch.no_grad():
            theta -= 1.0 * grad
        # log(pi(answer 0) / pi(answer 1))
        gaps.append(float(theta[0].detach() - theta[1].detach()))
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:]))
    assert gaps[-1] > 1.0  # from 0.3: the tie's proportions, 57:43 at the start, are now 81:18


def test_token_level_mask_mean():
    gen = torch.Generator().manual_seed(1)
    logp = -torch.rand(2, 5, generator=gen)
    logp_old = -torch.rand(2, 5, generator=gen)
    advantages = torch.tensor([1.0, -0.5])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    per_token = grpo_loss(logp, logp_old, advantages, reduction="none")
    assert per_token.shape == (2, 5)
    assert grpo_loss(logp, logp_old, advantages,
                     mask=mask).item() == pytest.approx(per_token[mask].mean().item())


def test_token_level_mask_gives_the_hand_computed_loss_and_no_gradient_to_padding():
    """Token level, advantages [batch] broadcast over tokens, a mask with padding that holds log 0.
    Bugs it catches: the mean taken over every token instead of the unmasked ones; padding not
    replaced before exp (exp(-inf - -inf) = NaN poisons the sum and the gradient); the broadcast of
    one advantage per sequence over the wrong axis."""
    logp_values = torch.tensor([[-1.0, -0.5, -float("inf")], [-2.0, -0.1, -0.3]],
                               dtype=torch.float64)
    logp_old = torch.tensor([[-1.2, -0.5, -float("inf")], [-1.0, -0.2, -0.3]], dtype=torch.float64)
    advantages = torch.tensor([1.5, -0.5], dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    logp = logp_values.clone().requires_grad_(True)
    loss = grpo_loss(logp, logp_old, advantages, clip_eps=0.2, mask=mask)
    loss.backward()

    ratios = [math.exp(-1.0 + 1.2), 1.0, math.exp(-2.0 + 1.0), math.exp(-0.1 + 0.2), 1.0]
    token_advantages = [1.5, 1.5, -0.5, -0.5, -0.5]
    per_token = [-min(r * a, min(max(r, 0.8), 1.2) * a) for r, a in zip(ratios, token_advantages)]
    assert loss.item() == pytest.approx(sum(per_token) / 5, rel=1e-12)
    # d/dlogp of -r A is -r A / 5 where the unclipped term is the one taken, 0 where the clip acts
    # (ratio e^0.2 = 1.22 > 1.2 with A > 0, and e^-1 = 0.37 < 0.8 with A < 0); padding gets exactly
    # 0
    expected_grad = torch.tensor([[0.0, -1.5 / 5, 0.0], [0.0, 0.5 * ratios[3] / 5, 0.5 / 5]],
                                 dtype=torch.float64)
    assert torch.allclose(logp.grad, expected_grad, rtol=1e-12, atol=0)
    summed = grpo_loss(logp_values, logp_old, advantages, clip_eps=0.2, mask=mask, reduction="sum")
    assert summed.item() == pytest.approx(sum(per_token), rel=1e-12)
    none = grpo_loss(logp_values, logp_old, advantages, clip_eps=0.2, mask=mask, reduction="none")
    assert none.shape == (2, 3) and none[0, 2] == 0 and torch.isfinite(none).all()


def test_token_level_per_token_advantages_are_used_as_given():
    """advantages [batch, tokens]: each token its own A (a bug that averaged them per row would pass
    the broadcast test above but not this one)."""
    logp = torch.zeros(2, 2, dtype=torch.float64)
    advantages = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    per_token = grpo_loss(logp, logp, advantages, reduction="none")
    assert torch.equal(per_token, -advantages)  # ratio 1: the loss is -A


@pytest.mark.parametrize("kwargs, match", [
    (dict(clip_eps=0.0), "clip_eps"),
    (dict(clip_eps=-0.1), "clip_eps"),
    (dict(mask=torch.ones(2, dtype=torch.bool)), "mask"),
    (dict(reduction="avg"), "reduction"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grpo_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="logp_old"):
        grpo_loss(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2))

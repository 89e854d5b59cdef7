"""Tests of flowrl_loss.py: the value by hand, the gradient's direction, the length normalisation
and the masks, the importance weight, bad input, float32 extremes, and the optimum on an enumerable
case (the policy reaches pi_ref exp(reward_scale r) / Z and the learned log Z the true log Z)."""
import math

import pytest
import torch

from baselines.flowrl_loss import flowrl_loss


def test_hand_computed_value_at_the_token_level_with_a_mask():
    """Two completions, of 2 and 3 tokens: delta = log Z + mean log pi - reward_scale r - mean log
    pi_ref,
    w = min(exp(sum (log pi - log pi_old)), 10), the loss the mean of w delta^2."""
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -0.5, -2.0]], dtype=torch.float64)
    logp_old = torch.tensor([[-1.0, -2.5, 0.0], [-0.5, -0.5, -2.0]], dtype=torch.float64)
    logp_ref = torch.tensor([[-2.0, -2.0, 5.0], [-1.0, -1.0, -1.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    log_z = torch.tensor([0.3, -0.2], dtype=torch.float64)
    rewards = torch.tensor([1.0, -0.5], dtype=torch.float64)
    reward_scale = 2.0
    delta_1 = 0.3 + (-1.0 - 2.0) / 2 - 2.0 * 1.0 - (-2.0 - 2.0) / 2  # -1.2
    delta_2 = -0.2 + (-0.5 - 0.5 - 2.0) / 3 - 2.0 * -0.5 - (-1.0)  # 0.8
    w_1, w_2 = math.exp(0.5), 1.0
    expected = (w_1 * delta_1**2 + w_2 * delta_2**2) / 2
    got = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=reward_scale,
                      mask=mask)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    per_completion = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards,
                                 reward_scale=reward_scale, mask=mask,
                                 reduction="none")
    assert per_completion.tolist() == pytest.approx([w_1 * delta_1**2, w_2 * delta_2**2], rel=1e-12)


def test_the_length_normalisation_is_the_mean_over_each_completions_own_tokens():
    """A completion of one token repeated k times has the same residual as the single token: a sum
    instead of a mean, or a mean over all columns including padding, would change it."""
    one = flowrl_loss(torch.tensor([[-0.7]]), torch.tensor([[-0.7]]), torch.tensor([[-1.5]]),
                      torch.tensor([0.1]), torch.tensor([0.4]), reward_scale=1.0)
    logp = torch.tensor([[-0.7, -0.7, -0.7, 0.0]])
    repeated = flowrl_loss(logp, logp, torch.tensor([[-1.5, -1.5, -1.5, 0.0]]), torch.tensor([0.1]),
                           torch.tensor([0.4]), reward_scale=1.0, mask=torch.tensor([[1, 1, 1, 0]]))
    assert repeated.item() == pytest.approx(one.item(), rel=1e-6)


def test_one_token_completions_give_the_sequence_form():
    gen = torch.Generator().manual_seed(0)
    logp, logp_old, logp_ref = (-torch.rand(5, generator=gen) for _ in range(3))
    log_z, rewards = torch.randn(5, generator=gen), torch.randn(5, generator=gen)
    sequence = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=3.0,
                           reduction="none")
    token = flowrl_loss(logp[:, None], logp_old[:, None], logp_ref[:, None], log_z, rewards,
                        reward_scale=3.0,
                        reduction="none")
    assert torch.allclose(sequence, token)


def test_gradient_direction_on_two_outcomes():
    """pi_ref uniform over two outcomes, r = (+1, -1), log Z at its true value: from the uniform
    policy the step raises the rewarded outcome; a policy already sharper than the target is pulled
    back; and a log Z above the true one is lowered."""
    reward_scale = 1.0
    rewards = torch.tensor([1.0, -1.0], dtype=torch.float64)
    logp_ref = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    true_log_z = torch.logsumexp(logp_ref + reward_scale * rewards, 0)

    def gradients(logits, log_z):
        logits = logits.clone().requires_grad_(True)
        log_z = log_z.clone().requires_grad_(True)
        logp = torch.log_softmax(logits, 0)
        pi = logp.exp().detach()
        per_outcome = flowrl_loss(logp, logp.detach(), logp_ref, log_z.expand(2), rewards,
                                  reward_scale=reward_scale, reduction="none")
        (pi * per_outcome).sum().backward()  # the expectation over samples of the current policy
        return logits.grad, log_z.grad

    grad, _ = gradients(torch.zeros(2, dtype=torch.float64), true_log_z)
    assert grad[0] < 0 < grad[1]  # gradient descent raises outcome 0
    target_logit_gap = 2 * reward_scale  # pi* = (e, 1/e) / Z: logits differ by 2 reward_scale
    grad, _ = gradients(torch.tensor([target_logit_gap + 1.0, 0.0], dtype=torch.float64),
                        true_log_z)
    assert grad[0] > 0 > grad[1]  # sharper than the target: pushed back
    _, grad_z = gradients(torch.tensor([target_logit_gap, 0.0], dtype=torch.float64),
                          true_log_z + 0.5)
    assert grad_z > 0  # log Z too large: lowered


def test_the_optimum_is_pi_ref_times_exp_beta_r_over_z_and_log_z_is_learned():
    """Five outcomes, exact expectation over the current policy (on-policy, w = 1), Adam on the
    logits and log Z: the policy reaches pi_ref exp(reward_scale r) / Z and log Z the true log
    partition function. A flipped sign of the reward, a dropped log pi_ref or a log Z without
    gradient each fail it."""
    gen = torch.Generator().manual_seed(3)
    pi_ref = torch.softmax(torch.randn(5, generator=gen, dtype=torch.float64), 0)
    rewards = torch.tensor([1.0, 0.5, 0.5, -0.3, -1.2], dtype=torch.float64)
    reward_scale = 1.5
    logits = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    log_z = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logits, log_z], lr=0.1)
    for _ in range(400):
        logp = torch.log_softmax(logits, 0)
        per_outcome = flowrl_loss(logp, logp.detach(), pi_ref.log(), log_z.expand(5), rewards,
                                  reward_scale=reward_scale,
                                  reduction="none")
        loss = (logp.exp().detach() * per_outcome).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    target = pi_ref * torch.exp(reward_scale * rewards)
    assert torch.allclose(torch.softmax(logits.detach(), 0), target / target.sum(), atol=1e-6)
    assert log_z.item() == pytest.approx(math.log(target.sum().item()), abs=1e-6)


def test_the_importance_weight_is_detached_and_truncated_at_max_weight():
    """The gradient is w * 2 delta d(delta), with w = min(ratio, max_weight) a constant: a weight
    that kept its gradient would add delta^2 dw, an untruncated one would be e^3 = 20 here."""
    logp = torch.tensor([-1.0, -1.0], dtype=torch.float64, requires_grad=True)
    logp_old = torch.tensor([-1.5, -4.0], dtype=torch.float64)  # ratios e^0.5 and e^3
    logp_ref = torch.tensor([-2.0, -0.5], dtype=torch.float64)
    log_z = torch.tensor([0.2, 0.2], dtype=torch.float64, requires_grad=True)
    rewards = torch.tensor([0.3, -0.4], dtype=torch.float64)
    loss = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=2.0, max_weight=10.0,
                       reduction="sum")
    loss.backward()
    delta = log_z.detach() + logp.detach() - 2.0 * rewards - logp_ref
    w = torch.tensor([math.exp(0.5), 10.0], dtype=torch.float64)
    assert torch.allclose(logp.grad, 2 * w * delta)
    assert torch.allclose(log_z.grad, 2 * w * delta)


def test_rewards_logp_old_and_logp_ref_are_constants_and_padding_cannot_poison_the_gradient():
    logp = torch.tensor([[-1.0, -float("inf")]], requires_grad=True)  # padding: log 0
    logp_old = torch.tensor([[-1.2, float("nan")]], requires_grad=True)
    logp_ref = torch.tensor([[-0.8, -float("inf")]], requires_grad=True)
    rewards = torch.tensor([0.5], requires_grad=True)
    log_z = torch.zeros(1, requires_grad=True)
    mask = torch.tensor([[True, False]])
    loss = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=1.0, mask=mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all() and logp.grad[0, 1] == 0
    assert logp_old.grad is None and logp_ref.grad is None and rewards.grad is None
    assert log_z.grad is not None


def test_float32_extremes_give_a_finite_loss_and_gradient():
    logp = torch.tensor([-60.0, -1e-6, -30.0], requires_grad=True)
    logp_old = torch.tensor([-1e-6, -60.0, -30.0])  # ratios e^-60, e^60 (truncated), 1
    loss = flowrl_loss(logp, logp_old, torch.tensor([-1e-6, -60.0, -5.0]), torch.tensor([0.0, 50.0,
                                                                                         -50.0]),
                       torch.tensor([3.0, -3.0, 0.0]), reward_scale=15.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(reward_scale=0.0), "reward_scale"), (dict(reward_scale=float("nan")), "reward_scale"),
    (dict(reward_scale=float("inf")), "reward_scale"),
    (dict(max_weight=0.5), "max_weight"), (dict(max_weight=float("inf")), "max_weight"),
    (dict(log_z=torch.zeros(3, 1)), "log_z"), (dict(rewards=torch.zeros(2)), "rewards"),
    (dict(logp_ref=torch.zeros(3, 5)), "logp_ref"), (dict(logp_old=torch.zeros(3, 5)), "logp_old"),
    (dict(mask=torch.ones(3, 5)), "mask"), (dict(reduction="max"), "reduction"),
])
def test_bad_input_is_refused_with_the_argument_named(kwargs, match):
    args = dict(logp=torch.zeros(3, 4), logp_old=torch.zeros(3, 4), logp_ref=torch.zeros(3, 4),
                log_z=torch.zeros(3), rewards=torch.zeros(3), reward_scale=1.0)
    with pytest.raises(ValueError, match=match):
        flowrl_loss(**{**args, **kwargs})


def test_a_completion_with_every_token_masked_adds_log_z_squared_and_nothing_of_its_reward():
    """TRL's mask_truncated_completions masks a truncated completion entirely. The authors' masked
    means give it a residual of log Z alone (its reward is averaged over the same empty mask), w =
    1, and it still counts in the mean. A loss that kept its reward gives (log Z - reward_scale r)^2
    instead."""
    logp = torch.tensor([[-1.0, -2.0], [-0.3, -0.4]], dtype=torch.float64, requires_grad=True)
    logp_old = torch.tensor([[-1.0, -2.0], [-5.0, -5.0]], dtype=torch.float64)
    logp_ref = torch.tensor([[-1.5, -1.5], [-0.2, -0.1]], dtype=torch.float64)
    log_z = torch.tensor([0.2, 0.7], dtype=torch.float64, requires_grad=True)
    rewards = torch.tensor([0.5, 1.3], dtype=torch.float64)
    mask = torch.tensor([[True, True], [False, False]])
    per_completion = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=2.0,
                                 mask=mask,
                                 reduction="none")
    delta_1 = 0.2 + (-1.0 - 2.0) / 2 - 2.0 * 0.5 - (-1.5)
    assert per_completion.tolist() == pytest.approx([delta_1**2, 0.7**2], rel=1e-12)
    mean = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=2.0, mask=mask)
    assert mean.item() == pytest.approx((delta_1**2 + 0.7**2) / 2, rel=1e-12)  # it still counts
    mean.backward()
    assert log_z.grad[1].item() == pytest.approx(0.7, rel=1e-12)  # d/d log Z of (log Z)^2 / 2
    assert (logp.grad[1] == 0).all()

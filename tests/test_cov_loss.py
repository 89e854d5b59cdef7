"""Tests of cov_loss.py: the entropy change the covariance predicts, the covariance by hand, which
tokens Clip-Cov and KL-Cov select and how many, their gradients against GRPO's, masks, bad input."""
import math

import pytest
import torch

from baselines.cov_loss import (CLIP_COV_SHARE, KL_COV_SHARE, clip_cov_loss, clip_cov_selection,
                                kl_cov_loss, kl_cov_selection,
                      selected_count, token_covariance)
from grpo_loss import grpo_loss


def test_a_natural_gradient_step_changes_the_entropy_by_minus_the_covariance():
    """The docstring's first-order law on five outcomes: theta += eps * A changes H by
    -eps * Cov_pi(log pi, A)."""
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(5, generator=gen, dtype=torch.float64)
    advantages = torch.randn(5, generator=gen, dtype=torch.float64)

    def entropy(logits):
        log_pi = torch.log_softmax(logits, 0)
        return -(log_pi.exp() * log_pi).sum()

    pi, log_pi = torch.softmax(theta, 0), torch.log_softmax(theta, 0)
    centred_log_pi = log_pi - (pi * log_pi).sum()
    covariance = (pi * centred_log_pi * (advantages - (pi * advantages).sum())).sum()
    eps = 1e-6
    change = (entropy(theta + eps * advantages) - entropy(theta)) / eps
    assert change.item() == pytest.approx(-covariance.item(), rel=1e-4)


def test_covariance_by_hand_uses_the_means_over_unmasked_tokens_only():
    logp = torch.tensor([[-1.0, -3.0, 99.0], [-2.0, -2.0, -2.0]])
    advantages = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # valid tokens: logp -1, -3, -2, -2, -2 (mean -2); A 1, 1, -1, -1, -1 (mean -0.2)
    expected = torch.tensor([[1.2 * 1.0, 1.2 * -1.0, 0.0], [-0.8 * 0.0, 0.0, 0.0]])
    assert torch.allclose(token_covariance(logp, advantages, mask), expected)


def test_the_selected_counts_are_the_configured_shares_with_the_authors_rounding():
    assert selected_count(20_000, CLIP_COV_SHARE) == 4 and selected_count(20_000,
                                                                          KL_COV_SHARE) == 40
    # at least one
    assert selected_count(64, CLIP_COV_SHARE) == 1 and selected_count(64, KL_COV_SHARE) == 1
    assert selected_count(0, KL_COV_SHARE) == 0 and selected_count(999, 0.01) == 9  # rounded down


def test_kl_cov_selects_the_top_share_by_signed_covariance_among_valid_tokens():
    """A bug that ranked by |Cov| would pick the large negative one; one that ignored the mask, the
    padding's large value."""
    gen = torch.Generator().manual_seed(1)
    cov = torch.rand(100, 200, generator=gen)  # 20,000 tokens, all in [0, 1)
    valid = torch.ones_like(cov, dtype=torch.bool)
    valid[:, -1] = False  # 100 padding positions
    cov[:, -1] = 50.0  # padding with a huge covariance
    cov[0, 0] = -100.0  # the largest |Cov|, but negative
    selected = kl_cov_selection(cov, valid, KL_COV_SHARE)
    assert int(selected.sum()) == int(KL_COV_SHARE * 19_900)  # 39
    assert not selected[:, -1].any() and not selected[0, 0]
    threshold = cov[selected].min()
    assert (cov[valid & ~selected] <= threshold).all()


def test_clip_cov_draws_its_share_at_random_among_the_eligible_tokens_and_the_seed_decides():
    eligible = torch.zeros(20_000, dtype=torch.bool)
    eligible[::100] = True  # 200 eligible tokens
    draws = [clip_cov_selection(eligible, 20_000, CLIP_COV_SHARE,
                                torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert all(int(d.sum()) == 4 for d in draws)
    assert all(not (d & ~eligible).any() for d in draws)
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    few = torch.zeros(20_000, dtype=torch.bool)
    few[7] = True  # fewer eligible tokens than the share asks for: all of them
    assert clip_cov_selection(few, 20_000, CLIP_COV_SHARE,
                              torch.Generator()).nonzero().flatten().tolist() == [7]


def test_clip_cov_picks_only_tokens_inside_the_band_and_zeroes_exactly_their_gradient():
    """One token of eight lies inside (1, 5): with the share forcing one pick, that token gets no
    gradient and every other token gets exactly GRPO's."""
    logp = torch.tensor([-0.2, -4.0, -0.2, -6.0, -2.0, -2.0, -2.1, -1.9], requires_grad=True)
    advantages = torch.tensor([2.0, 2.0, -2.0, -2.0, 0.0, 0.0, 0.1, -0.1])
    cov = token_covariance(logp, advantages)
    inside = (cov > 1) & (cov < 5)
    # 2 * (-0.2 + 2.3) = 4.2; the fourth: 2 * 3.7 = 7.4
    assert inside.tolist() == [True] + [False] * 7
    loss = clip_cov_loss(logp, logp.detach(), advantages,
                         generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(loss, logp)
    (expected,) = torch.autograd.grad(grpo_loss(logp, logp.detach(), advantages), logp)
    assert grad[0] == 0 and expected[0] != 0
    assert torch.allclose(grad[1:], expected[1:])


def test_clip_cov_does_not_pick_a_token_ppos_clip_already_holds():
    logp = torch.tensor([-0.2, -4.0, -0.2, -6.0, -2.0, -2.0, -2.1, -1.9], requires_grad=True)
    logp_old = logp.detach().clone()
    logp_old[0] -= 0.5  # ratio e^0.5 > 1.2 with A > 0: clipped, so no longer eligible
    advantages = torch.tensor([2.0, 2.0, -2.0, -2.0, 0.0, 0.0, 0.1, -0.1])
    loss = clip_cov_loss(logp, logp_old, advantages, generator=torch.Generator())
    expected = grpo_loss(logp, logp_old, advantages)
    assert loss.item() == pytest.approx(expected.item())


def test_kl_cov_at_ratio_one_is_grpos_policy_gradient_and_acts_once_the_ratio_moves():
    """The penalty |log pi - log pi_old| has derivative 0 at ratio 1: one update per batch makes
    KL-Cov GRPO. Off ratio 1 the selected token gets kl_coef * sign(log ratio) more, the others
    nothing."""
    gen = torch.Generator().manual_seed(2)
    logp = (-torch.rand(4, 6, generator=gen) * 3).requires_grad_(True)
    advantages = torch.randn(4, generator=gen)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 4:] = False
    (grad,) = torch.autograd.grad(kl_cov_loss(logp, logp.detach(), advantages, mask=mask), logp)
    (expected,) = torch.autograd.grad(grpo_loss(logp, logp.detach(), advantages, clip_eps=None,
                                                mask=mask), logp)
    assert torch.equal(grad, expected)

    logp_old = logp.detach() - 0.1  # every ratio e^0.1
    (grad,) = torch.autograd.grad(kl_cov_loss(logp, logp_old, advantages, kl_coef=1.0, mask=mask),
                                  logp)
    (expected,) = torch.autograd.grad(grpo_loss(logp, logp_old, advantages, clip_eps=None,
                                                mask=mask), logp)
    selected = kl_cov_selection(token_covariance(logp, advantages, mask), mask, KL_COV_SHARE)
    assert int(selected.sum()) == 1
    assert torch.allclose(grad - expected, selected.float() / mask.sum())


def test_kl_cov_value_by_hand():
    logp = torch.tensor([-1.0, -2.0])
    logp_old = torch.tensor([-1.5, -2.0])
    advantages = torch.tensor([1.0, -1.0])
    # Cov: A centred (1, -1), logp centred (0.5, -0.5): the first token's 0.5 is the top one
    # -A ratio + c |log ratio| on token 1
    expected = (-1.0 * math.exp(0.5) + 2.0 * 0.5 + 1.0 * 1.0) / 2
    assert kl_cov_loss(logp, logp_old, advantages, kl_coef=2.0).item() == pytest.approx(expected,
                                                                                        rel=1e-6)


def test_an_all_masked_batch_selects_nothing_and_gives_zero():
    zeros, mask = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)
    assert kl_cov_loss(zeros, zeros, torch.ones(2), mask=mask).item() == 0.0
    assert clip_cov_loss(zeros, zeros, torch.ones(2), generator=torch.Generator(),
                         mask=mask).item() == 0.0


@pytest.mark.parametrize("loss, kwargs, match", [
    ("clip", dict(generator=None), "generator"), ("clip", dict(generator=0), "generator"),
    ("clip", dict(clip_share=0.0), "clip_share"), ("clip", dict(clip_share=1.5), "clip_share"),
    ("clip", dict(clip_share=float("nan")), "clip_share"), ("clip", dict(cov_band=(5.0, 1.0)),
                                                            "cov_band"),
    ("clip", dict(cov_band=(1.0, float("inf"))), "cov_band"), ("clip", dict(mask=torch.ones(3)),
                                                               "mask"),
    ("kl", dict(kl_share=0.0), "kl_share"), ("kl", dict(kl_coef=-1.0), "kl_coef"),
    ("kl", dict(kl_coef=float("nan")), "kl_coef"), ("kl", dict(advantages=torch.zeros(3)),
                                                    "advantages"),
    ("kl", dict(logp_old=torch.zeros(3)), "logp_old"), ("kl", dict(reduction="max"), "reduction"),
])
def test_bad_input_is_refused_with_the_argument_named(loss, kwargs, match):
    args = dict(logp=torch.zeros(2, 4), logp_old=torch.zeros(2, 4), advantages=torch.zeros(2))
    with pytest.raises(ValueError, match=match):
        if loss == "clip":
            clip_cov_loss(**{"generator": torch.Generator(), **args, **kwargs})
        else:
            kl_cov_loss(**{**args, **kwargs})

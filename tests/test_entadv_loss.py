"""Tests of entadv_loss.py: the shaped advantage by hand and its sign, the gradient at ratio 1, the
entropy held constant, masks and shapes, bad input, and its end point on a one-decision problem."""
import pytest
import torch

from baselines.entadv_loss import entadv_loss, entropy_advantages
from grpo_loss import grpo_loss


def test_hand_computed_shaped_advantages():
    """A + min(alpha H, |A| / kappa) with alpha = 0.4, kappa = 2: the bonus is alpha H where the
    entropy is low, |A| / 2 where it is high, and 0 for A = 0."""
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0])
    entropy = torch.tensor([0.5, 3.0, 0.5, 3.0, 3.0])
    expected = [1.0 + 0.2, 1.0 + 0.5, -1.0 + 0.2, -1.0 + 0.5, 0.0]
    assert entropy_advantages(advantages, entropy, alpha=0.4,
                              kappa=2.0).tolist() == pytest.approx(expected)


def test_the_shaped_advantage_never_changes_the_sign_of_a():
    """kappa > 1 caps the bonus below |A|: a wrong response's penalty is softened, never turned into
    a reward. Random advantages and entropies, large alphas, kappa close to 1."""
    gen = torch.Generator().manual_seed(0)
    advantages = torch.randn(10_000, generator=gen) * torch.rand(10_000, generator=gen) * 5
    entropy = torch.rand(10_000, generator=gen) * 12
    for alpha, kappa in [(0.4, 2.0), (10.0, 1.01), (1e3, 1.5)]:
        shaped = entropy_advantages(advantages, entropy, alpha, kappa)
        assert torch.equal(torch.sign(shaped), torch.sign(advantages))
        # softened by at most 1/kappa
        assert (shaped.abs() >= advantages.abs() * (1 - 1 / kappa) - 1e-6).all()


def test_at_ratio_one_the_gradient_is_the_policy_gradient_of_the_shaped_advantage():
    """Two responses of two tokens, the second token of each more uncertain: at ratio 1 each token's
    gradient is -(A + psi_t) / count, so the rewarded response's uncertain token is pushed up more,
    and the wrong response's uncertain token pushed down less."""
    logp = torch.tensor([[-0.5, -1.5], [-0.7, -2.0]], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0])
    entropy = torch.tensor([[0.1, 2.0], [0.1, 2.0]])
    entadv_loss(logp, logp.detach(), advantages, entropy, alpha=0.4, kappa=2.0).backward()
    shaped = torch.tensor([[1.04, 1.5], [-0.96, -0.5]])
    assert torch.allclose(logp.grad, -shaped / 4)
    assert logp.grad[0, 1] < logp.grad[0, 0] < 0 < logp.grad[1, 1] < logp.grad[1, 0]


def test_the_entropy_is_a_constant_and_alpha_zero_gives_grpo_back():
    """Without the detach the loss would also raise the entropy: an entropy bonus, not EntAdv."""
    logits = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    log_pi = torch.log_softmax(logits, -1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)  # [3, 4], computed with the gradient attached
    logp = log_pi[..., 0]
    advantages = torch.tensor([0.5, -1.0, 2.0])
    (grad,) = torch.autograd.grad(entadv_loss(logp, logp.detach(), advantages, entropy), logits,
                                  retain_graph=True)
    shaped = entropy_advantages(advantages[:, None].expand(3, 4), entropy.detach())
    (expected,) = torch.autograd.grad(grpo_loss(logp, logp.detach(), shaped), logits)
    assert torch.allclose(grad, expected)
    assert not entropy_advantages(advantages[:, None], entropy).requires_grad  # psi is a constant
    plain = entadv_loss(logp, logp.detach(), advantages, entropy, alpha=0.0)
    assert plain.item() == pytest.approx(grpo_loss(logp, logp.detach(), advantages).item())


def test_masked_tokens_count_for_nothing_even_with_a_nan_entropy():
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    entropy = torch.tensor([[1.0, 1.0, float("nan")]])
    mask = torch.tensor([[1, 1, 0]])
    loss = entadv_loss(logp, logp.detach(), torch.tensor([1.0]), entropy, mask=mask)
    loss.backward()
    assert loss.item() == pytest.approx(-1.4)  # the mean over the two unmasked tokens of -(1 + 0.4)
    assert logp.grad[0, 2] == 0


def test_on_one_decision_its_end_point_is_grpos_point_mass_on_the_best_response():
    """Every response has the same entropy when there is one decision, and A~ is increasing in A:
    the exact on-policy updates end on the best response, as GRPO's do (the docstring's claim)."""
    advantages = torch.tensor([0.2, 1.0, 0.9, -0.5])
    logits = torch.zeros(4, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.2)
    for _ in range(100):
        logp = torch.log_softmax(logits, 0)
        pi = logp.exp().detach()
        centred = advantages - (pi * advantages).sum()
        centred = centred / ((pi * centred**2).sum().sqrt() + 1e-6)
        entropy = -(pi * logp.detach()).sum().expand(4)
        loss = (pi * entadv_loss(logp, logp.detach(), centred, entropy, clip_eps=None,
                                 reduction="none")).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.softmax(logits.detach(), 0)[1] > 0.95


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha=-0.1), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(kappa=1.0), "kappa"), (dict(kappa=0.5), "kappa"), (dict(kappa=float("inf")), "kappa"),
    (dict(entropy=torch.zeros(2, 4)), "entropy"), (dict(entropy=-torch.ones(2, 3)), "entropy"),
    (dict(entropy=torch.full((2, 3), float("inf"))), "entropy"),
    (dict(advantages=torch.zeros(3)), "advantages"), (dict(mask=torch.ones(2, 4)), "mask"),
    (dict(reduction="max"), "reduction"),
])
def test_bad_input_is_refused_with_the_argument_named(kwargs, match):
    args = dict(logp=torch.zeros(2, 3), logp_old=torch.zeros(2, 3), advantages=torch.zeros(2),
                entropy=torch.ones(2, 3))
    with pytest.raises(ValueError, match=match):
        entadv_loss(**{**args, **kwargs})

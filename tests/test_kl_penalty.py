"""Which divergence each KL estimator's gradient follows when it is used as a loss (kl_penalty.py).

Every case is small enough to enumerate: the expected gradient over samples y ~ pi (the samples'
probabilities held fixed, as in training) is a weighted sum over every outcome, compared with the
autograd gradient of the divergence it is named for. A k2 and a k3 swapped, a penalty with the ratio
the wrong way round, or a reference that is not detached each turn one of these red.
"""
import pytest
import torch

from kl_penalty import GRADIENT_FOLLOWS, k2_penalty, k3_penalty, kl_penalty

D = torch.float64  # exact enough to compare gradients at 1e-12


def kl(p_log, q_log):
    """KL(p || q) from log-probabilities (the last dimension is the outcome)."""
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def expected_gradient(estimator, logits, logp_of, logp_ref):
    """grad_theta of E_{y ~ pi}[penalty(y)] with pi(y) detached: the gradient a sampled loss
    follows."""
    logp = logp_of(logits)
    loss = (logp.detach().exp() * estimator(logp, logp_ref)).sum()
    return torch.autograd.grad(loss, logits)[0]


def divergence_gradient(divergence, logits):
    return torch.autograd.grad(divergence(logits), logits)[0]


SOFTMAX_LOGITS = torch.tensor([0.3, -1.2, 2.0, 0.0, -0.4], dtype=D)
REFERENCE = torch.log_softmax(torch.tensor([-0.5, 0.8, 0.1, 1.5, -2.0], dtype=D), -1)


@pytest.mark.parametrize("estimator, direction",
                         [(k2_penalty, "policy first"), (k3_penalty, "reference first")])
def test_each_estimator_follows_the_gradient_of_the_kl_it_is_named_for_on_a_softmax(estimator,
                                                                                    direction):
    logits = SOFTMAX_LOGITS.clone().requires_grad_(True)
    got = expected_gradient(estimator, logits, lambda z: torch.log_softmax(z, -1), REFERENCE)
    if direction == "policy first":
        want = divergence_gradient(lambda z: kl(torch.log_softmax(z, -1), REFERENCE), logits)
        other = divergence_gradient(lambda z: kl(REFERENCE, torch.log_softmax(z, -1)), logits)
    else:
        want = divergence_gradient(lambda z: kl(REFERENCE, torch.log_softmax(z, -1)), logits)
        other = divergence_gradient(lambda z: kl(torch.log_softmax(z, -1), REFERENCE), logits)
    assert torch.allclose(got, want, atol=1e-12)
    assert not torch.allclose(got, other, atol=1e-2)  # the two directions really differ here


def rho_k3(logp, logp_ref, logp_old):
    """k3 times the ratio pi / pi_old to the sampling policy, its gradient kept: TRL 1.16's default
    (use_bias_correction_kl=True)."""
    return torch.exp(logp - logp_old) * k3_penalty(logp, logp_ref)


@pytest.mark.parametrize("old", ["on-policy", "off-policy"])
def test_k3_times_the_ratio_follows_kl_pi_to_ref_on_a_softmax(old):
    """The expected gradient over y ~ pi_old of rho k3 is that of KL(pi || pi_ref), the direction
    of k2, not of k3's own KL(pi_ref || pi). Catches the ratio dropped or detached (k3's
    direction), and the ratio taken against pi_ref."""
    logits = SOFTMAX_LOGITS.clone().requires_grad_(True)
    logp = torch.log_softmax(logits, -1)
    logp_old = logp.detach() if old == "on-policy" else torch.log_softmax(-SOFTMAX_LOGITS / 2, -1)
    loss = (logp_old.exp() * rho_k3(logp, REFERENCE, logp_old)).sum()
    got = torch.autograd.grad(loss, logits)[0]
    want = divergence_gradient(lambda z: kl(torch.log_softmax(z, -1), REFERENCE), logits)
    other = divergence_gradient(lambda z: kl(REFERENCE, torch.log_softmax(z, -1)), logits)
    assert torch.allclose(got, want, atol=1e-12)
    assert not torch.allclose(got, other, atol=1e-2)


def test_the_table_names_the_directions_the_tests_check():
    assert GRADIENT_FOLLOWS == {"k2": "KL(pi || pi_ref)", "k3": "KL(pi_ref || pi)"}


# Two-token sequences over a vocabulary of 3: pi(y1, y2) = pi1(y1) pi2(y2 | y1), tabular logits.
V = 3
SEQ_LOGITS = torch.tensor([0.5, -0.3, 1.1, 0.2, -1.0, 0.7, 1.5, 0.0, -0.6, -0.2, 0.9, 0.4],
                          dtype=D)  # 3 + 3*3
REF_LOGITS = torch.tensor([-0.4, 0.6, 0.0, 1.2, 0.3, -0.8, -0.5, 0.5, 1.0, 0.7, -1.3, 0.1], dtype=D)


def token_logps(z):
    """[V, V, 2]: log pi1(y1) and log pi2(y2 | y1) of every sequence (y1, y2)."""
    log1 = torch.log_softmax(z[:V], -1)
    log2 = torch.log_softmax(z[V:].view(V, V), -1)
    return torch.stack([log1[:, None].expand(V, V), log2], -1)


REF_TOKENS = token_logps(REF_LOGITS)


def sequence_kl_gradient(logits, policy_first: bool):
    def divergence(z):
        logp, ref = token_logps(z).sum(-1).reshape(-1), REF_TOKENS.sum(-1).reshape(-1)
        return kl(logp, ref) if policy_first else kl(ref, logp)
    return divergence_gradient(divergence, logits)


def expected_sequence_gradient(penalty, logits, per_token: bool):
    tokens = token_logps(logits)
    p_seq = tokens.sum(-1).detach().exp()  # [V, V]
    if per_token:
        values = penalty(tokens, REF_TOKENS).sum(-1)
    else:
        values = penalty(tokens.sum(-1), REF_TOKENS.sum(-1))
    return torch.autograd.grad((p_seq * values).sum(), logits)[0]


def test_k2_on_the_summed_log_ratio_follows_kl_pi_to_ref_over_whole_completions():
    logits = SEQ_LOGITS.clone().requires_grad_(True)
    got = expected_sequence_gradient(k2_penalty, logits, per_token=False)
    assert torch.allclose(got, sequence_kl_gradient(logits, policy_first=True), atol=1e-12)
    # Per token, k2 misses the credit the second token gives the first: another gradient.
    per_token = expected_sequence_gradient(k2_penalty, logits, per_token=True)
    assert not torch.allclose(per_token, sequence_kl_gradient(logits, policy_first=True), atol=1e-2)


def test_per_token_k3_follows_the_per_step_kl_ref_to_pi_at_the_sampled_prefixes():
    """verl's form (and TRL's with use_bias_correction_kl=False): k3 per token, summed. Its
    expected gradient is that of KL(ref1 || pi1) + sum_y1 pi1(y1) KL(ref2(.|y1) || pi2(.|y1)) with
    pi1(y1) held fixed, which is neither sequence-level KL."""
    logits = SEQ_LOGITS.clone().requires_grad_(True)
    got = expected_sequence_gradient(k3_penalty, logits, per_token=True)

    def per_step(z):
        tokens = token_logps(z)
        pi1 = tokens[:, 0, 0].detach().exp()
        first = kl(REF_TOKENS[:, 0, 0], tokens[:, 0, 0])
        second = (pi1 * kl(REF_TOKENS[:, :, 1], tokens[:, :, 1])).sum()
        return first + second

    assert torch.allclose(got, divergence_gradient(per_step, logits), atol=1e-12)
    for policy_first in (True, False):
        assert not torch.allclose(got, sequence_kl_gradient(logits, policy_first), atol=1e-2)
    # On the summed log-ratio, k3 follows the whole-completion KL(ref || pi).
    summed = expected_sequence_gradient(k3_penalty, logits, per_token=False)
    assert torch.allclose(summed, sequence_kl_gradient(logits, policy_first=False), atol=1e-12)


def test_per_token_k3_times_the_ratio_follows_the_per_step_kl_pi_to_ref_at_the_sampled_prefixes():
    """TRL 1.16's default form, on-policy: rho k3 per token, summed. Its expected gradient is that
    of KL(pi1 || ref1) + sum_y1 pi1(y1) KL(pi2(.|y1) || ref2(.|y1)) with pi1(y1) held fixed: the
    per-step direction of k2, not of verl's per-token k3."""
    logits = SEQ_LOGITS.clone().requires_grad_(True)
    tokens = token_logps(logits)
    values = rho_k3(tokens, REF_TOKENS, tokens.detach()).sum(-1)
    got = torch.autograd.grad((tokens.sum(-1).detach().exp() * values).sum(), logits)[0]

    def per_step(z):
        tokens = token_logps(z)
        pi1 = tokens[:, 0, 0].detach().exp()
        first = kl(tokens[:, 0, 0], REF_TOKENS[:, 0, 0])
        second = (pi1 * kl(tokens[:, :, 1], REF_TOKENS[:, :, 1])).sum()
        return first + second

    assert torch.allclose(got, divergence_gradient(per_step, logits), atol=1e-12)
    verl = expected_sequence_gradient(k3_penalty, logits, per_token=True)
    assert not torch.allclose(got, verl, atol=1e-2)


def test_the_reference_is_a_fixed_anchor_and_both_penalties_vanish_where_the_policies_agree():
    logp = torch.tensor([-0.5, -2.0, -7.0], requires_grad=True)
    logp_ref = torch.tensor([-1.5, -2.0, -3.0], requires_grad=True)
    for estimator in ("k2", "k3"):
        kl_penalty(logp, logp_ref, estimator).sum().backward()
        assert logp_ref.grad is None
        assert float(kl_penalty(logp.detach(), logp.detach(), estimator).abs().max()) == 0.0
    # By hand at logp - logp_ref = 1: k2 = 1/2, k3 = e^-1 + 1 - 1.
    one = torch.tensor([0.0]), torch.tensor([-1.0])
    assert float(k2_penalty(*one)) == pytest.approx(0.5)
    assert float(k3_penalty(*one)) == pytest.approx(torch.e ** -1)


def test_k3_gradient_is_one_minus_the_reference_ratio_and_never_reaches_the_reference():
    """Catches a dropped .detach() on logp_ref (the reference would get a gradient) and a k3 term
    with the ratio the wrong way round (the gradient would be exp(logp - logp_ref) - 1)."""
    logp = torch.tensor([-0.5, -2.0, -7.0, -0.1], requires_grad=True)
    logp_ref = torch.tensor([-1.5, -2.0, -3.0, -4.0], requires_grad=True)
    k3_penalty(logp, logp_ref).sum().backward()
    expected = 1 - torch.exp(logp_ref.detach() - logp.detach())
    assert torch.allclose(logp.grad, expected, rtol=1e-5)
    assert logp_ref.grad is None
    # zero where the policies agree
    assert float(k3_penalty(logp.detach(), logp.detach()).abs().max()) == 0.0


@pytest.mark.parametrize("kwargs, name", [(dict(estimator="k1"), "estimator"),
                                          (dict(logp_ref=torch.zeros(2)), "logp_ref")])
def test_bad_input_is_refused_with_the_argument_named(kwargs, name):
    args = dict(logp=torch.zeros(3), logp_ref=torch.zeros(3), estimator="k2") | kwargs
    with pytest.raises(ValueError, match=name):
        kl_penalty(**args)

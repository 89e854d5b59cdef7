"""Check of exercise 13: with f = -log x, LAD at a fixed pi_old is weighted maximum likelihood.

The truth is read off autograd on the real lad_loss, at ratios from 0.01 to 100 (a frozen pi_old
lets the ratio drift far from 1), and off the enumeration of a small set of responses for the exact
objective. Answers computed in float32 pass.

Wrong answers it rejects, each tried, with the message naming the mistake: "kl" (or any other
divergence) as the ratio-free one; the weight on grad log pi given as exercise 9's -f'(x) (the
weight on ratio * grad log pi), as its value at ratio 1, -f'(exp(-A/eta)) (right for rkl only),
with its sign flipped, or with exp(A) in place of exp(A/eta) inside x; the weighted likelihood with
exp(A) in place of exp(A/eta), with the minus left out, summed over the batch instead of averaged,
with its weights normalised over the batch, with log pi - log pi_old in place of log pi, as
lad_loss("rkl") itself (the right gradient, a constant too many), or detached from logp; R(pi)
with a plain mean over the responses in place of the pi_old-weighted sum, as the expectation under
pi, with exp(A), or with the minus left out; the forward-KL form's scale given as 1, and its
constant as -Z H(pi*), H(pi*) or lad_loss's Z log Z.
"""
import math

import pytest
import torch

from compare import assert_close
from lad_loss import DIVERGENCES, lad_loss

D = torch.float64
ETA = 0.25  # the paper's 1/eta = 4
GEN = torch.Generator().manual_seed(13)
# Every ratio from 0.01 to 100 at four advantages: a frozen pi_old lets the ratio drift that far.
# The factor keeps every x = ratio / exp(A/eta) off 1, where TV's f' jumps.
GRID_RATIOS = torch.logspace(-2, 2, 21, dtype=D) * 1.0001
GRID_ADVANTAGES = torch.tensor([-0.5, -0.1, 0.2, 0.5], dtype=D)
RATIOS = GRID_RATIOS.repeat(len(GRID_ADVANTAGES))
ADVANTAGES = GRID_ADVANTAGES.repeat_interleave(len(GRID_RATIOS))
# A batch of completions sampled from pi_old, with log pi moved far from log pi_old.
BATCH = 8
LOGP_OLD = -3 * torch.rand(BATCH, generator=GEN, dtype=D) - 1
LOGP = LOGP_OLD + 1.5 * torch.randn(BATCH, generator=GEN, dtype=D)
BATCH_ADVANTAGES = 0.5 * torch.randn(BATCH, generator=GEN, dtype=D)
# Six responses, enumerated: pi_old, their advantages and three policies to evaluate R at.
PI_OLD = torch.softmax(torch.randn(6, generator=GEN, dtype=D), 0)
RESPONSE_ADVANTAGES = 0.4 * torch.randn(6, generator=GEN, dtype=D)
POLICIES = [torch.softmax(2 * torch.randn(6, generator=GEN, dtype=D), 0) for _ in range(3)]


@pytest.fixture
def ex13(exercise):
    return exercise("ex13_weighted_likelihood")


def autograd_weight(ratios, advantages, divergence, eta=ETA):
    """-(d loss_i / d log pi_i) of lad_loss, one sample each: the weight on grad log pi."""
    logp_old = torch.zeros_like(ratios)
    logp = torch.log(ratios).clone().requires_grad_(True)
    loss = lad_loss(logp, logp_old, advantages, eta=eta, divergence=divergence, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logp)
    return -grad


def at_sample(i: int) -> str:
    return f"ratio {float(RATIOS[i]):.4g}, A = {float(ADVANTAGES[i]):+g}"


def test_the_ratio_free_divergence_has_the_weighted_likelihood_gradient_at_any_ratio(ex13):
    name = ex13.ratio_free_divergence()
    assert name in DIVERGENCES, \
        f"ratio_free_divergence: expected one of {sorted(DIVERGENCES)}, got {name!r}"
    assert name != "kl", (
        "ratio_free_divergence is not kl: f = x log x has w = -ratio (log x + 1), which moves with "
        "the ratio; its exact objective is KL(pi || pi*) - log Z, the trust-region objective, not "
        "a weighted likelihood")
    got = autograd_weight(RATIOS, ADVANTAGES, name)
    want = torch.exp(ADVANTAGES / ETA)  # the weighted likelihood's weight, whatever the ratio
    wrong = (got - want).abs() > 1e-9 * want
    if wrong.any():
        i = int(torch.nonzero(wrong)[0])
        raise AssertionError(
            f"ratio_free_divergence {name!r}: autograd on lad_loss gives the weight "
            f"{float(got[i]):.6g} on grad log pi at {at_sample(i)}, but weighted likelihood's is "
            f"exp(A/eta) = {float(want[i]):.6g} at every ratio: {name}'s weight depends on the "
            f"ratio")


@pytest.mark.parametrize("divergence", list(DIVERGENCES))
def test_the_weight_on_grad_log_pi_is_what_autograd_reads_off_lad_loss(ex13, divergence):
    truth = autograd_weight(RATIOS, ADVANTAGES, divergence)
    got = ex13.weight_on_grad_log_pi(RATIOS.clone(), ADVANTAGES.clone(), ETA, divergence)
    f_prime = DIVERGENCES[divergence].f_prime
    x = RATIOS / torch.exp(ADVANTAGES / ETA)
    assert_close(got, truth, f"weight_on_grad_log_pi({divergence}, 1/eta = 4)", entry=at_sample,
                 mistakes={
        "-f'(x) is exercise 9's weight on ratio * grad log pi; the weight on grad log pi itself is "
        "ratio * (-f'(x))": -f_prime(x),
        "-f'(exp(-A/eta)) is the weight at ratio 1 only: with a frozen pi_old the ratio moves, and "
        "w = ratio * (-f'(x)) with x = ratio / exp(A/eta)": -f_prime(torch.exp(-ADVANTAGES / ETA)),
        "the sign: a loss is minimised, so the push is ratio * (-f'(x))": RATIOS * f_prime(x),
        "exp(A) in place of exp(A/eta) inside x": -RATIOS * f_prime(RATIOS / torch.exp(ADVANTAGES)),
    })


@pytest.mark.parametrize("eta", [0.25, 0.5])
def test_the_weighted_likelihood_loss_is_minus_the_mean_weighted_log_pi(ex13, eta):
    logp = LOGP.clone().requires_grad_(True)
    got = ex13.weighted_likelihood_loss(logp, LOGP_OLD.clone(), BATCH_ADVANTAGES.clone(), eta)
    weights = torch.exp(BATCH_ADVANTAGES / eta)
    truth = -(weights * LOGP).mean()
    rkl = lad_loss(LOGP, LOGP_OLD, BATCH_ADVANTAGES, eta=eta, divergence="rkl")
    assert_close(got, truth, f"weighted_likelihood_loss (1/eta = {1 / eta:g})", mistakes={
        "exp(A) in place of exp(A/eta): the weight is the target's, exp(A/eta)":
            -(torch.exp(BATCH_ADVANTAGES) * LOGP).mean(),
        "the minus left out: a loss is minimised, and maximum likelihood maximises "
        "exp(A/eta) log pi": -truth,
        f"summed over the batch: the loss is a mean over the {BATCH} samples, like lad_loss's":
            BATCH * truth,
        "the weights normalised over the batch: the statement's loss (and lad_loss's gradient) "
        "weights each sample by exp(A/eta) itself": -(weights / weights.mean() * LOGP).mean(),
        "log pi - log pi_old in place of log pi: the same gradient, but the weighted likelihood is "
        "of log pi, and log pi_old belongs to lad_loss's constant":
            -(weights * (LOGP - LOGP_OLD)).mean(),
        "this is lad_loss with rkl: the same gradient, but it carries the constant "
        "exp(A/eta) (log pi_old + A/eta); the weighted likelihood is -mean exp(A/eta) log pi": rkl,
    })
    assert got.requires_grad, \
        "weighted_likelihood_loss carries no gradient to logp (was logp detached?)"
    (grad,) = torch.autograd.grad(got, logp)
    logp_rkl = LOGP.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(
        lad_loss(logp_rkl, LOGP_OLD, BATCH_ADVANTAGES, eta=eta, divergence="rkl"), logp_rkl)
    assert_close(grad, want, "the gradient of weighted_likelihood_loss against lad_loss's (rkl)",
                 entry=lambda i: f"ratio {math.exp(float(LOGP[i] - LOGP_OLD[i])):.3g}")


def rwr_truth(pi):
    return -(PI_OLD * torch.exp(RESPONSE_ADVANTAGES / ETA) * torch.log(pi)).sum()


def test_the_exact_objective_is_the_pi_old_weighted_sum(ex13):
    for pi in POLICIES:
        got = ex13.rwr_objective(pi.clone(), PI_OLD.clone(), RESPONSE_ADVANTAGES.clone(), ETA)
        weights = torch.exp(RESPONSE_ADVANTAGES / ETA)
        assert_close(got, rwr_truth(pi), "rwr_objective", mistakes={
            "a plain mean over the responses: the expectation over pi_old is a sum weighted by "
            "pi_old(y)": -(weights * torch.log(pi)).mean(),
            "the expectation under pi: the samples come from pi_old, so the weights are "
            "pi_old(y) exp(A/eta)": -(pi * weights * torch.log(pi)).sum(),
            "exp(A) in place of exp(A/eta)":
                -(PI_OLD * torch.exp(RESPONSE_ADVANTAGES) * torch.log(pi)).sum(),
            "the minus left out: R is a loss, minus the weighted log-likelihood": -rwr_truth(pi),
        })


def test_the_exact_objective_is_z_times_the_forward_kl_to_pi_star_plus_a_constant(ex13):
    tilted = torch.log(PI_OLD) + RESPONSE_ADVANTAGES / ETA
    z = float(torch.logsumexp(tilted, 0).exp())
    log_pi_star = torch.log_softmax(tilted, 0)
    entropy = float(-(log_pi_star.exp() * log_pi_star).sum())
    # The truth's own identity, so that the check tests the statement and not only a formula.
    for pi in POLICIES:
        forward_kl = float((log_pi_star.exp() * (log_pi_star - torch.log(pi))).sum())
        assert abs(float(rwr_truth(pi)) - (z * forward_kl + z * entropy)) < 1e-10
    scale, constant = ex13.forward_kl_form(PI_OLD.clone(), RESPONSE_ADVANTAGES.clone(), ETA)
    assert_close(scale, z, "forward_kl_form's scale, Z = E_pi_old[exp(A/eta)]", mistakes={
        "1: pi_old exp(A/eta) = Z pi* has mass Z, not 1, and R scales with it": 1.0,
    })
    assert_close(constant, z * entropy, "forward_kl_form's constant", mistakes={
        "-Z H(pi*): the sign of the entropy; -sum pi* log pi = KL(pi* || pi) + H(pi*)":
            -z * entropy,
        "H(pi*): Z multiplies the whole cross-entropy, the entropy too": entropy,
        "Z log Z is lad_loss's own constant with rkl: its term exp(A/eta) (log pi_old + A/eta) "
        "moves it; R, the weighted likelihood alone, has Z H(pi*)": z * math.log(z),
    })

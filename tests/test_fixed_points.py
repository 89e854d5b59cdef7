"""What each method converges to, in its sampling regime (the table in reasoning/methods.py).

Each test iterates one method's update with the exact expectation in place of a sampled batch: the
loss of every outcome y, weighted by pi_old(y), the probability that the sampling policy draws it,
computed by the repository's own losses (reasoning.methods.method_loss for the GPT chapter's
methods, bandit.step_loss for the bandit and for LAD at a frozen pi_old, lad_loss itself for the
gradient identities). The policies are small enough for that, and everything is float64:
  * one prompt of the GPT chapter as evaluation.answer_target sees it: four correct answers and
    "anything else", a 0/1 reward and its large-group advantage (A+ for every correct answer);
  * five answers with distinct advantages (one best answer);
  * the bandit's 50 arms, and the two-token policy of tests/test_token_ratio.py (token ratios).

The step. Each logit moves against its gradient divided by the probability of the event it is the
logit of (pi(y) for a softmax; pi1(y1) and pi(y1, y2) for the two-token policy's two steps): the
natural gradient of the policy. It has the zeros of the plain gradient, hence the same fixed points,
but a log-probability moves at a rate that does not shrink with its probability, so a run ends in
tens of steps instead of tens of thousands (test_plain_gradient_descent_ends_at_the_same_point
checks one case the slow way). Where pi_old stays frozen the method minimises one fixed function,
and each step is halved until it lowers that function.

The advantages are held fixed (the chapter's --advantage-source sft and sft-normalised): with
--advantage-source group A moves with the policy, and so does the point a method heads for.
"""
import math
import types

import pytest
import torch
import torch.nn.functional as F

import bandit
from bandit_study.task import bandit_advantages, target_policy, total_variation, uniform_policy
from exercises import two_token
from lad_loss import DIVERGENCES, lad_loss
from reasoning.evaluation import answer_target, large_group_advantages
from reasoning.methods import method_loss
from test_token_ratio import A as A_TWO_TOKEN, OLD as OLD_TWO_TOKEN, OLD_LOGITS, P_OLD as \
    P_OLD_TWO_TOKEN, PI_STAR as PI_STAR_TWO_TOKEN, minimiser as token_ratio_minimiser

D = torch.float64
ETA = 0.25  # the paper's 1/eta = 4, every chapter's default

# One prompt of the GPT chapter: four correct answers and "anything else" (last). pi_sft answers it
# correctly with p = 0.29; A is the large-group 0/1 advantage of that p (--advantage-source sft).
P_SFT = torch.tensor([0.12, 0.08, 0.06, 0.03, 0.71], dtype=D)
A_PLUS, A_MINUS = large_group_advantages(float(P_SFT[:4].sum()))
A_SFT = torch.tensor([A_PLUS] * 4 + [A_MINUS], dtype=D)
Z_SFT = float((P_SFT * torch.exp(A_SFT / ETA)).sum())  # E_{pi_sft}[exp(A/eta)], about 150
# --advantage-source sft-normalised: the same pi*, with Z = 1
A_SHIFTED = A_SFT - ETA * math.log(Z_SFT)
PI_STAR = answer_target(P_SFT[:4], ETA)  # pi_sft exp(A/eta) / Z, for either A
# Five answers with distinct advantages: one best answer (0), three with A > 0 (0, 1, 3).
P_GRADED = torch.softmax(torch.tensor([0.3, -0.2, 0.5, 0.0, -0.6], dtype=D), 0)
A_GRADED = torch.tensor([0.5, 0.2, -0.1, 0.35, -0.6], dtype=D)
CASES = {"verifier": (P_SFT, A_SFT), "graded": (P_GRADED, A_GRADED)}


def tv(p, q) -> float:
    return float(total_variation(p, q))


def tilt(pi_ref, weight, temperature):
    """pi_ref exp(weight / temperature) / Z, in log space."""
    return torch.softmax(torch.log(pi_ref) + weight / temperature, -1)


def ratio_one_weight(A, divergence):
    """LAD's weight at ratio 1, w(A) = -f'(exp(-A/eta)): REINFORCE's advantage when the policy that
    takes the gradient is the one that sampled the batch."""
    return -DIVERGENCES[divergence].f_prime(torch.exp(-A / ETA))


def settings(**overrides):
    """The fields of train_reasoning's settings that method_loss reads, at their defaults."""
    base = dict(eta=ETA, divergence="js", lad_ratio="sequence", clip_eps=0.2, kl_coef=ETA,
                kl_estimator="k2", flowrl_reward_scale=1 / ETA)
    return types.SimpleNamespace(**(base | overrides))


# The two enumerable policies, each as (log-probabilities of every completion's tokens [n, tokens],
# the probability of each logit's event: what the natural step divides by).
def softmax_tokens(logits):
    return torch.log_softmax(logits, -1)[:, None]  # one token per answer


def softmax_events(logits):
    return torch.softmax(logits, -1)


def two_token_tokens(logits):
    return two_token.token_logps(logits).reshape(-1, 2)  # row y1 * V + y2, as test_token_ratio


def two_token_events(logits):
    first = torch.softmax(logits[:two_token.V], -1)  # pi1(y1) for the first step's logits
    return torch.cat([first, two_token.sequence_logps(logits).exp().reshape(-1)])  # pi(y1, y2)


SOFTMAX = (softmax_tokens, softmax_events)
TWO_TOKEN = (two_token_tokens, two_token_events)


def expected_gradient(method, logits, A, args, policy=SOFTMAX, logp_old=None, logp_ref=None,
                      log_z=None):
    """The gradient of E_{y ~ pi_old}[method_loss on y] with respect to the logits (and log Z).

    logp_old None: on-policy, pi_old is the policy itself, handed to method_loss as the very tensor
    that carries the gradient, so that only the losses' own .detach() makes the ratio a constant 1.
    method_loss sums its completions' losses, each a function of its own row, and divides by the
    number of tokens; weighting each row's gradient by n pi_old(y) gives the exact expectation (per
    token, as the chapter's loss)."""
    tokens_of, _ = policy
    logits = logits.detach().requires_grad_(True)
    logp = tokens_of(logits)
    old = logp if logp_old is None else logp_old
    weight = old.detach().sum(1).exp() * len(logp)
    rows = None if log_z is None else log_z.detach().requires_grad_(True).expand(len(logp))
    batch = {"logp_old": old, "advantages": A, "mask": torch.ones_like(logp, dtype=torch.bool),
             "logp_ref": logp_ref}
    loss, _ = method_loss(method, logp, batch, args, log_z=rows)
    per_row = torch.autograd.grad(loss, [logp] if rows is None else [logp, rows], retain_graph=True)
    (grad,) = torch.autograd.grad(logp, logits, per_row[0] * weight[:, None])
    return grad, None if rows is None else (per_row[1] * weight).sum()


def iterate(method, start, A, args, steps, lr, policy=SOFTMAX, logp_ref=None, learn_log_z=False):
    """At most `steps` natural-gradient steps of method_loss's exact expected update, on-policy,
    from the logits `start` (fewer once a step moves no logit by 1e-14). A is a tensor, or a
    function of the current distribution (the large-group advantages of the current policy).
    Returns the distribution over completions and log Z (or None)."""
    tokens_of, events_of = policy
    logits, log_z = start.clone(), torch.zeros((), dtype=D) if learn_log_z else None
    for _ in range(steps):
        pi = tokens_of(logits).sum(1).exp()
        advantages = A(pi) if callable(A) else A
        grad, grad_log_z = expected_gradient(method, logits, advantages, args, policy,
                                             logp_ref=logp_ref, log_z=log_z)
        # A probability that has underflowed to 0 has a gradient of 0: keep it there, not 0 / 0.
        step = lr * grad / events_of(logits).clamp_min(1e-300)
        logits = logits - step
        if learn_log_z:
            log_z = log_z - lr * grad_log_z
        if float(step.abs().max()) < 1e-14:
            break
    return tokens_of(logits).sum(1).exp(), log_z


def minimise(loss, start, steps=200):
    """Natural-gradient steps on a fixed loss(logits) of a softmax, until no step lowers it any
    more. Each step moves no log-probability by more than 1 (at a frozen pi_old the gradient scales
    with pi_old, not pi: from a policy far below its target, an uncapped step would throw the mass
    past it) and is halved until it lowers the loss enough (Armijo's rule). Returns the
    distribution."""
    logits, lr = start.clone(), 4.0
    for _ in range(steps):
        z = logits.detach().requires_grad_(True)
        value = loss(z)
        (grad,) = torch.autograd.grad(value, z)
        direction = grad / torch.softmax(logits, -1)
        decrease = float(grad @ direction)
        if decrease < 1e-15 * (1 + abs(value.item())):  # from here on rounding decides Armijo
            break
        lr = min(2 * lr, 4.0, 1.0 / float(direction.abs().max()))
        with torch.no_grad():  # `not <=`: a step that overflows to NaN is refused too
            while not float(loss(logits - lr * direction)) <= value.item() - 1e-4 * lr * decrease:
                lr /= 2
                if lr < 1e-12:
                    return torch.softmax(logits, -1)
        logits = logits - lr * direction
    return torch.softmax(logits, -1)


def lad_at_fixed_pi_old(pi_old, A, divergence):
    """The exact expected loss of LAD with pi_old frozen (lad-fixed, the bandit's figure), as the
    bandit computes it with --exact: sum over y of pi_old(y) lad_loss(y)."""
    args = bandit.Settings(eta=ETA, divergence=divergence)
    return lambda logits: bandit.step_loss("lad-fixed", logits, pi_old, A, None, args)


def test_the_cases_have_the_targets_the_tests_compare_with():
    """Shifting A by a constant leaves pi* as it is (Z absorbs it); JS's weight at ratio 1 is
    (softplus(A/eta) - log 2) / 2, the closed form reasoning/methods.py quotes."""
    assert tv(tilt(P_SFT, A_SFT, ETA), PI_STAR) < 1e-12
    assert tv(tilt(P_SFT, A_SHIFTED, ETA), PI_STAR) < 1e-12
    assert float((P_SFT * torch.exp(A_SHIFTED / ETA)).sum()) == pytest.approx(1.0, abs=1e-12)
    closed_form = 0.5 * (F.softplus(A_SFT / ETA) - math.log(2))
    assert torch.allclose(ratio_one_weight(A_SFT, "js"), closed_form, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# On-policy, one update per rollout: the ratio is 1 when the gradient is taken.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, advantages", [("graded", "fixed"), ("verifier", "fixed"),
                                              ("verifier", "the current policy's")])
def test_grpo_on_policy_puts_all_its_mass_on_the_best_answers(case, advantages):
    """grpo: REINFORCE with A (the clip never acts at ratio 1). It ends with all the mass on the
    answers of the largest A: the one best answer, or the set of correct answers under a 0/1
    reward, also when A is recomputed from the current policy as the chapter's groups do. A sign
    flip of A (it would collapse onto the worst), or a clip that acted at ratio 1 (nothing would
    move), turns it red."""
    p, A = CASES[case]
    best = A == A.max()
    if advantages == "the current policy's":
        def A(pi):
            a_plus, a_minus = large_group_advantages(float(pi[best].sum()))
            return torch.where(best, a_plus, a_minus)
    pi, _ = iterate("grpo", torch.log(p), A, settings(), steps=60, lr=2.0)
    assert float(pi[best].sum()) > 1 - 1e-6


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_lad_on_policy_is_reinforce_with_a_shaped_advantage_and_collapses_like_grpo(divergence):
    """lad at ratio 1: REINFORCE with w(A) = -f'(exp(-A/eta)), increasing in A, so it ends where
    GRPO does: all the mass on the best answer. Not on pi*: the brake at the target needs a ratio
    other than 1. Total variation's w is sign(A) / 2, which does not rank the answers with A > 0:
    its run ends with all the mass on them (here in pi_sft's proportions, which the natural step
    keeps among equal weights). A dropped .detach() on logp_old (the ratio would be 1 with no
    gradient: nothing moves) or a weight of the wrong sign turns it red."""
    pi, _ = iterate("lad", torch.log(P_GRADED), A_GRADED, settings(divergence=divergence),
                    steps=60, lr=1.0)
    if divergence == "tv":
        positive = A_GRADED > 0
        assert float(pi[positive].sum()) > 1 - 1e-6
        assert tv(pi, P_GRADED * positive / P_GRADED[positive].sum()) < 1e-9
    else:
        assert float(pi[A_GRADED.argmax()]) > 1 - 1e-6
    assert tv(pi, tilt(P_GRADED, A_GRADED, ETA)) > 0.2


# ---------------------------------------------------------------------------------------------
# On-policy with the k2 anchor to pi_sft (the -kl methods, --kl-estimator k2).
# ---------------------------------------------------------------------------------------------

# The anchored methods' cases: (policy, logits of pi_sft, pi_sft over the completions, A). The
# anchor is pi_sft, and the run starts there.
ANCHORED = {
    "verifier": (SOFTMAX, torch.log(P_SFT), P_SFT, A_SFT),
    "verifier, A shifted": (SOFTMAX, torch.log(P_SFT), P_SFT, A_SHIFTED),
    "graded": (SOFTMAX, torch.log(P_GRADED), P_GRADED, A_GRADED),
    "two tokens": (TWO_TOKEN, OLD_LOGITS, P_OLD_TWO_TOKEN, A_TWO_TOKEN),
}


def anchored_run(method, case, args, lr):
    """The end of an on-policy run anchored at pi_sft, with pi_sft and A of the case."""
    policy, start, p_sft, A = ANCHORED[case]
    pi, _ = iterate(method, start, A, args, steps=80, lr=lr, policy=policy,
                    logp_ref=policy[0](start))
    return pi, p_sft, A


@pytest.mark.parametrize("beta", [ETA, 0.5])
@pytest.mark.parametrize("case", sorted(ANCHORED))
def test_grpo_kl_with_k2_converges_to_pi_sft_tilted_by_a_over_beta(case, beta):
    """grpo-kl: -A grad log pi plus beta (log pi - log pi_sft) grad log pi vanishes in expectation
    at pi_sft exp(A/beta) / Z: pi* at beta = eta, --kl-coef's default, whatever constant A is
    shifted by (E_pi[grad log pi] = 0). On two-token completions too: the chapter's token-ratio
    GRPO at ratio 1 and k2 on the summed log-ratio. k3 in place of k2, k2 applied per token, or a
    penalty scaled unlike the policy term moves the end point."""
    pi, p_sft, A = anchored_run("grpo-kl", case, settings(kl_coef=beta), lr=0.5 / beta)
    assert tv(pi, tilt(p_sft, A, beta)) < 1e-9
    assert (tv(pi, tilt(p_sft, A, ETA)) < 1e-9) == (beta == ETA)


# lad-kl JS's fixed point against pi* in TV, measured: (at least, at most).
LAD_KL_JS_DISTANCE = {"verifier": (1e-4, 1e-3), "verifier, A shifted": (0.10, 0.12),
                      "graded": (0.10, 0.15), "two tokens": (1e-4, 1e-3)}


@pytest.mark.parametrize("case", sorted(ANCHORED))
def test_lad_kl_with_js_converges_to_pi_sft_tilted_by_its_shaped_advantage_not_to_pi_star(case):
    """lad-kl (JS, k2, beta = --kl-coef's default eta): at ratio 1 LAD's term is REINFORCE with
    w(A) = (softplus(A/eta) - log 2) / 2, so the anchor balances w(A), not A/eta: the fixed point
    is pi_sft exp(w(A)/beta) / Z. It is not pi*: w is not affine in A (it tends to -log(2)/2 for
    A << 0 and grows like A/(2 eta) for A >> 0), so no beta shared by all prompts makes it pi*,
    and a constant shift of A moves it. With the SFT advantages of a 0/1 reward the two nearly
    agree (3.5e-4 in TV: every correct answer shares A+, so the shape among them is pi_sft's in
    both); shifted by
    -eta log Z (--advantage-source sft-normalised, the same pi*) lad-kl's point has P(correct) 0.89,
    0.11 from pi*; with graded advantages 0.12. A docstring that says lad-kl aims at pi* is what
    this contradicts; a change to LAD's weight at ratio 1 moves the point."""
    pi, p_sft, A = anchored_run("lad-kl", case, settings(), lr=0.5 / ETA)
    fixed_point = tilt(p_sft, ratio_one_weight(A, "js"), ETA)
    assert tv(pi, fixed_point) < 1e-9
    low, high = LAD_KL_JS_DISTANCE[case]
    assert low < tv(fixed_point, tilt(p_sft, A, ETA)) < high


@pytest.mark.parametrize("kl_coef", [1.0, ETA])
@pytest.mark.parametrize("case", sorted(ANCHORED))
def test_lad_kl_with_forward_kl_is_aimed_at_pi_star_when_kl_coef_is_one(case, kl_coef):
    """lad-kl with f = x log x: w(A) = A/eta - 1, affine with slope 1/eta, so the fixed point
    pi_sft exp(w(A)/beta) / Z = pi_sft exp(A/(eta beta)) / Z is pi* at beta = 1, for every A
    (`--divergence kl --kl-coef 1`: method_loss adds kl_coef times the k2 sum, on the policy term's
    scale, so beta is --kl-coef itself). At --kl-coef's default, eta, it is pi_sft exp(A/eta^2) / Z,
    sharper than pi*. A k2 sum divided by another count than the policy term's moves it."""
    pi, p_sft, A = anchored_run("lad-kl", case, settings(divergence="kl", kl_coef=kl_coef),
                                lr=0.5 / kl_coef)
    assert tv(pi, tilt(p_sft, A, ETA * kl_coef)) < 1e-9
    assert (tv(pi, tilt(p_sft, A, ETA)) < 1e-9) == (kl_coef == 1.0)


def k3_fixed_point(pi_ref, weight, beta):
    """beta pi_ref / (mu - w), mu > max w chosen so that it sums to 1 (bisection, float64)."""
    low, high = float(weight.max()), float(weight.max()) + beta + 1.0
    for _ in range(200):
        mu = (low + high) / 2
        low, high = (mu, high) if float((beta * pi_ref / (mu - weight)).sum()) > 1 else (low, mu)
    return beta * pi_ref / (mu - weight)


@pytest.mark.parametrize("method", ["grpo-kl", "lad-kl"])
def test_the_k3_anchor_is_mass_covering_beta_pi_sft_over_mu_minus_the_weight(method):
    """--kl-estimator k3 (per token; on one-token answers the same as per completion): its gradient
    follows KL(pi_sft || pi), and the fixed point is beta pi_sft / (mu - w(A)), w = A for grpo-kl:
    not an exponential tilt, and not pi*. A k3 whose ratio is the wrong way round moves it."""
    weight = A_GRADED if method == "grpo-kl" else ratio_one_weight(A_GRADED, "js")
    pi, _ = iterate(method, torch.log(P_GRADED), A_GRADED, settings(kl_estimator="k3"),
                    steps=300, lr=0.5, logp_ref=softmax_tokens(torch.log(P_GRADED)))
    assert tv(pi, k3_fixed_point(P_GRADED, weight, ETA)) < 1e-9
    assert tv(pi, tilt(P_GRADED, A_GRADED, ETA)) > 1e-2


def test_plain_gradient_descent_ends_at_the_same_point():
    """The natural step changes the path, not the fixed point: plain gradient descent on the logits,
    run long, ends where it does (lad-kl, JS, the shifted A)."""
    start, ref = torch.log(P_SFT), softmax_tokens(torch.log(P_SFT))
    natural, _ = iterate("lad-kl", start, A_SHIFTED, settings(), steps=40, lr=2.0, logp_ref=ref)
    logits = start.clone()
    for _ in range(100):
        grad, _ = expected_gradient("lad-kl", logits, A_SHIFTED, settings(), logp_ref=ref)
        logits = logits - 10.0 * grad
    assert tv(torch.softmax(logits, -1), natural) < 1e-6


# ---------------------------------------------------------------------------------------------
# pi_old frozen at pi_sft (lad-fixed): Lemma 3.2's objective.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, divergence", [(case, divergence) for case in ("verifier, Z = 1",
                                                "verifier", "graded") for divergence in DIVERGENCES
                                                if divergence != "tv" or case == "verifier, Z = 1"])
def test_lad_fixed_at_the_sequence_ratio_converges_to_pi_star(case, divergence):
    """lad-fixed, one ratio per completion: Lemma 3.2's minimiser, pi_sft exp(A/eta) / Z, for each
    strictly convex f whatever Z = E_{pi_sft}[exp(A/eta)], and for total variation when Z = 1 (when
    Z != 1 see the next test). A wrong perspective exp(a) f(x) in one of lad_loss's divergences,
    a log x with the wrong sign, or a step_loss that weighted the answers by the current policy
    instead of pi_old moves the minimiser."""
    p, A = (P_SFT, A_SHIFTED) if case == "verifier, Z = 1" else CASES[case]
    pi = minimise(lad_at_fixed_pi_old(p, A, divergence), torch.log(p))
    assert tv(pi, tilt(p, A, ETA)) < 1e-7


def test_lad_fixed_with_total_variation_and_z_above_one_stops_at_whichever_minimiser_it_meets():
    """With Z = E_{pi_sft}[exp(A/eta)] > 1 every policy with pi <= pi_sft exp(A/eta), answer by
    answer, minimises total variation's loss, at (Z - 1) / 2, and its gradient is 0 on that whole
    set: a run stops where it first enters it. Two step sizes stop at two policies, neither of them
    pi* (here P(correct) 0.957 and 0.948 instead of pi*'s 0.9996): lad_loss.py's "which one
    training reaches is left to chance". A TV loss whose gradient did not vanish on that set (a
    smoothed |.|, say) would carry on towards one point."""
    loss = lad_at_fixed_pi_old(P_SFT, A_SFT, "tv")
    ends = []
    for lr in (1.0, 0.1):
        logits = torch.log(P_SFT)
        for _ in range(200):
            z = logits.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(z), z)
            logits = logits - lr * grad / torch.softmax(logits, -1)
        pi = torch.softmax(logits, -1)
        assert float(loss(logits)) == pytest.approx((Z_SFT - 1) / 2, rel=1e-12)
        assert bool((pi <= P_SFT * torch.exp(A_SFT / ETA)).all())
        assert tv(pi, PI_STAR) > 0.04
        ends.append(pi)
    assert tv(*ends) > 5e-3


def two_token_logits(pi):
    """Logits of the two-token policy with distribution pi [V * V] over its completions."""
    joint = pi.reshape(two_token.V, two_token.V)
    first = joint.sum(1)
    return torch.cat([first.log(), (joint / first[:, None]).log().reshape(-1)])


def test_lad_fixeds_update_vanishes_at_the_minimiser_of_its_ratio_level():
    """The two-token policy of tests/test_token_ratio.py, pi_old frozen there, JS. That file
    minimises the exact objective of each ratio level; here method_loss's lad-fixed update, in exact
    expectation, is 0 at that minimiser (pi* with one ratio per completion, the token form's own
    minimiser with one ratio per token) and not 0 at the other level's. The two ratio levels
    swapped in method_loss, or a per-token term that also reached the other tokens, moves it."""
    token_form = token_ratio_minimiser("js", "token")
    assert tv(token_form, PI_STAR_TWO_TOKEN) > 0.2
    for level, its_own in [("sequence", PI_STAR_TWO_TOKEN), ("token", token_form)]:
        for end in (PI_STAR_TWO_TOKEN, token_form):
            grad, _ = expected_gradient("lad-fixed", two_token_logits(end), A_TWO_TOKEN,
                                        settings(lad_ratio=level), TWO_TOKEN,
                                        logp_old=OLD_TWO_TOKEN)
            assert (float(grad.abs().max()) < 1e-8) == (end is its_own), (level, end)


# ---------------------------------------------------------------------------------------------
# FlowRL, on-policy (w = 1), the raw A as its reward, beta = 1/eta.
# ---------------------------------------------------------------------------------------------

def test_flowrl_converges_to_pi_star_and_learns_its_log_z():
    """flowrl with r = A (not group-normalised) and --flowrl-reward-scale 1/eta: trajectory balance
    to pi_sft exp(A/eta) / Z, which is pi*, and log Z to the true log Z (one-token answers: its
    length normalisation does nothing). A flipped reward, a dropped log pi_ref, or a log Z without
    gradient fails it."""
    pi, log_z = iterate("flowrl", torch.log(P_SFT), A_SFT, settings(), steps=100, lr=0.25,
                        logp_ref=softmax_tokens(torch.log(P_SFT)), learn_log_z=True)
    assert tv(pi, PI_STAR) < 1e-9
    assert float(log_z) == pytest.approx(math.log(Z_SFT), abs=1e-9)


def test_flowrl_residual_also_vanishes_at_pi_star_restricted_to_a_subset():
    """On-policy, the residual is only asked of the answers the policy samples: pi* restricted to
    any subset S of answers, with log Z = log sum_S pi_sft exp(A/eta), has delta = 0 on S and no
    mass elsewhere, so its expected gradient (policy and log Z) is 0 too. pi* is the unique zero
    only among policies that give every answer some mass. Here S drops two correct answers. A
    residual that also charged the answers the policy never samples would not vanish here."""
    keep = torch.tensor([True, True, False, False, True])
    restricted = torch.where(keep, PI_STAR, torch.zeros_like(PI_STAR))
    restricted = restricted / restricted.sum()
    logits = torch.where(keep, torch.log(restricted), torch.full_like(PI_STAR, -1e4))  # exp: 0.0
    log_z = torch.logsumexp((torch.log(P_SFT) + A_SFT / ETA)[keep], 0)
    grad, grad_log_z = expected_gradient("flowrl", logits, A_SFT, settings(),
                                         logp_ref=softmax_tokens(torch.log(P_SFT)), log_z=log_z)
    assert float(grad.abs().max()) < 1e-12 and abs(float(grad_log_z)) < 1e-12
    assert tv(torch.softmax(logits, -1), PI_STAR) > 0.1


# ---------------------------------------------------------------------------------------------
# The bandit's LAD (bandit.step_loss, exact expectation over the 50 arms).
# ---------------------------------------------------------------------------------------------

BANDIT_PI_0 = uniform_policy().double()
BANDIT_A = bandit_advantages(uniform_policy()).double()
BANDIT_TARGET = target_policy(BANDIT_PI_0, BANDIT_A, ETA)  # the three-Gaussian mixture


def test_the_bandits_lad_with_pi_0_fixed_converges_to_pi_star():
    """The paper's figure: pi_old = pi_0 throughout, so LAD minimises one fixed objective, whose
    minimiser is pi* (the mixture). A step_loss that weighted the arms by the current policy instead
    of pi_0 would not end there."""
    pi = minimise(lad_at_fixed_pi_old(BANDIT_PI_0, BANDIT_A, "js"), torch.log(BANDIT_PI_0))
    assert tv(pi, BANDIT_TARGET) < 1e-7


def test_the_bandits_lad_refreshed_every_step_collapses_onto_the_best_arm():
    """pi_old refreshed before every step (the bandit's lad): ratio 1, REINFORCE with w(A). The
    natural step's path is pi_0 exp(s w(A)) / Z_s, a compounding tilt by w(A) (not the
    pi_0 exp(k A/eta) / Z_k of refresh periods each solved to the end), and it ends with all the
    mass on the best arm (10, the heaviest mode's centre), like GRPO, not on pi*. A step_loss whose
    pi_old=None did not take the ratio at exactly 1 would leave that path."""
    logits, lr = torch.log(BANDIT_PI_0), 10.0
    args = bandit.Settings(eta=ETA, divergence="js")
    for step in range(1, 61):
        z = logits.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(bandit.step_loss("lad", z, None, BANDIT_A, None, args), z)
        logits = logits - lr * grad / torch.softmax(logits, -1)
        if step == 3:
            path = tilt(BANDIT_PI_0, ratio_one_weight(BANDIT_A, "js"), 1 / (lr * step))
            assert tv(torch.softmax(logits, -1), path) < 1e-12
    pi = torch.softmax(logits, -1)
    assert int(pi.argmax()) == 10 and float(pi[10]) > 1 - 1e-4


# ---------------------------------------------------------------------------------------------
# f = -log x: at a fixed pi_old LAD is reward-weighted regression.
# ---------------------------------------------------------------------------------------------

def test_reverse_kl_lad_is_reward_weighted_regression_on_pi_olds_samples():
    """With f(x) = -log x, exp(A/eta) f(x) = -exp(A/eta) (log pi - log pi_old - A/eta): the gradient
    is -exp(A/eta) grad log pi whatever the ratio, at either ratio level. That is weighted maximum
    likelihood on pi_old's samples (reward-weighted regression, Peters & Schaal 2007; AWR is of the
    same family). Its exact objective at a frozen pi_old is Z KL(pi* || pi) plus a constant, so its
    minimiser is pi* reached through the mass-covering KL. A ratio leaking into rkl's weight, or a
    divergence other than rkl, breaks the identity."""
    gen = torch.Generator().manual_seed(0)
    logp_old = -3 * torch.rand(6, 4, generator=gen, dtype=D)
    A = torch.randn(6, generator=gen, dtype=D)
    for spread in (0.0, 0.5, 3.0):  # ratios 1, then far from 1 per token and per completion
        logp = (logp_old + spread * torch.randn(6, 4, generator=gen, dtype=D)).requires_grad_(True)
        rwr = -(torch.exp(A / ETA)[:, None] * logp).sum()  # the weighted negative log-likelihood
        (want,) = torch.autograd.grad(rwr, logp)
        token = lad_loss(logp, logp_old, A, eta=ETA, divergence="rkl", reduction="sum")
        assert torch.allclose(torch.autograd.grad(token, logp)[0], want, atol=1e-12)
        sequence = lad_loss(logp.sum(1), logp_old.sum(1), A, eta=ETA, divergence="rkl",
                            reduction="sum")
        assert torch.allclose(torch.autograd.grad(sequence, logp)[0], want, atol=1e-12)
        js = lad_loss(logp, logp_old, A, eta=ETA, divergence="js", reduction="sum")
        assert not torch.allclose(torch.autograd.grad(js, logp)[0], want, atol=1e-3)

    # The exact objective at a frozen pi_old: Z KL(pi* || pi) + const, so the same gradient.
    loss = lad_at_fixed_pi_old(P_GRADED, A_GRADED, "rkl")
    target = tilt(P_GRADED, A_GRADED, ETA)
    z_graded = float((P_GRADED * torch.exp(A_GRADED / ETA)).sum())
    for _ in range(3):
        logits = torch.randn(5, generator=gen, dtype=D).requires_grad_(True)
        forward_kl = z_graded * (target * (target.log() - torch.log_softmax(logits, -1))).sum()
        assert torch.allclose(torch.autograd.grad(loss(logits), logits)[0],
                              torch.autograd.grad(forward_kl, logits)[0], atol=1e-12)
    assert tv(minimise(loss, torch.log(P_GRADED)), target) < 1e-7

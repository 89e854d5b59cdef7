"""LAD: Learning Advantage Distribution -- the loss (Li & Li, 2026, Lemmas 3.1 and 3.2).

A short lesson before the code.

If you know PPO: LAD is a policy gradient with another advantage
----------------------------------------------------------------
PPO and GRPO push each response y sampled from pi_old along ratio * A(y) * grad log pi_theta(y),
with ratio = pi_theta(y) / pi_old(y), until the clip stops the push at ratio 1 +- clip_eps. LAD's
gradient (derived below) has the same form with A(y) replaced by

    -f'(x_y),        x_y = ratio / exp(A(y) / eta),

the ratio measured against its own target exp(A/eta), where f is a convex function (one of six
f-divergences) and f' is increasing. At ratio 1 the weight -f'(exp(-A/eta)) is large for a good
response and small or negative for a bad one, like an advantage. Unlike PPO's constant A, it falls
as the ratio grows and, for the generators with f'(1) = 0 (the paper's Jensen-Shannon among them),
passes through zero exactly when the ratio reaches exp(A/eta), the unnormalised target: a response
beyond it is pushed back, and no clip is needed. KL's turns earlier, at exp(A/eta) / e; reverse
KL's -f'(x) = 1/x falls exactly as fast as the ratio grows, so its push never turns round (the
table under "The gradient"). (Where the loss is minimised every response has the same x = 1/Z
instead, Z = E_{pi_old}[exp(A/eta)], and the same weight -f'(1/Z): below the gradient. With one
update per sampled batch the ratio is exactly 1 when the gradient is taken, and LAD is REINFORCE
with the shaped advantage -f'(exp(-A/eta)).) `python -m plots.gradient_weights` draws this weight
against the ratio for each divergence, beside GRPO's clipped one, from autograd on the two losses
(plots/gradient_weights.png). The rest of the lesson says where the target exp(A/eta) comes from
and why matching it is the right goal.

Lemma 3.1: the best trust-region step is a distribution, not an arm
-------------------------------------------------------------------
PPO and GRPO maximise the expected advantage while staying close to the policy that sampled the
batch, pi_old. Write the closeness as a penalty eta * KL(pi || pi_old) (eta > 0 is the Lagrange
multiplier of the trust region). Maximising E_{y~pi}[A(y)] - eta * KL(pi || pi_old) over all
distributions pi has the closed-form solution

    pi*(y) = pi_old(y) * exp(A(y) / eta) / Z,        Z = sum_y pi_old(y) * exp(A(y) / eta).

(The exponential form belongs to the penalty KL(pi || pi_old). The other direction,
KL(pi_old || pi), gives a different closed form, pi*(y) = eta * pi_old(y) / (mu - A(y)).)

The paper reads this as an equality between two distributions over responses:

    P_pi(y) = (pi_theta(y) / pi_old(y)) / Z_pi      the policy-induced distribution
    P_A(y)  = exp(A(y) / eta) / Z_A                 the advantage-induced distribution (the target)

with Z_pi and Z_A sums over every response. pi_theta is optimal exactly when P_pi = P_A: then
pi_theta / pi_old is proportional to exp(A/eta), i.e. pi_theta is the target policy
pi* = pi_old * exp(A/eta) / Z. P_A leaves pi_old out (it is the target of the ratio pi/pi_old, not
of the policy); pi* is the policy, and it is what every figure draws as "the target pi*" (with a
uniform pi_old, as in the bandit, the two coincide). GRPO climbs E[A]. Its objective fixes nothing
among equally good responses (every split of the mass between them has the same E[A]); its steps
favour whichever is already more probable, and in time they pile the mass on one (grpo_loss.py).
LAD instead *matches* P_A: at its optimum every response has pi_old's probability times its own
exp(A/eta), normalised, so two equally good responses keep pi_old's proportions.

Lemma 3.2: a practical objective with the same minimiser
--------------------------------------------------------
Matching P_pi to P_A with an f-divergence needs Z_pi and Z_A, sums over every possible response.
Lemma 3.2 drops them. With x_y = (pi_theta(y) / pi_old(y)) / exp(A(y) / eta), minimise

    L_LAD(theta) = E_{y ~ pi_old} [ exp(A(y)/eta) * f(x_y) ].

Why the minimiser is still pi_old * exp(A/eta) / Z: write r_y = pi_theta(y) / pi_old(y), so a
policy is a choice of r >= 0 with sum_y pi_old(y) r_y = 1. The objective is
sum_y pi_old(y) exp(A_y/eta) f(r_y exp(-A_y/eta)); setting its derivative equal to a Lagrange
multiplier mu times the constraint's derivative gives, for every y,

    f'(r_y * exp(-A_y / eta)) = mu.

When f is strictly convex, f' is strictly increasing, so the argument is the same number for every
y: r_y is proportional to exp(A_y / eta), i.e. pi_theta is proportional to pi_old * exp(A / eta).
Two
responses with *equal* advantage therefore keep their relative probabilities: at the minimiser of
this exact objective (the expectation over every response, optimised to the end) LAD has no reason
to prefer one of two equally good answers, which is why it does not collapse there. A loss estimated
from a few samples and a few optimiser steps only approaches that point. Total variation is convex
but not strictly (its f' is flat on both sides of 1): unless Z = E_{pi_old}[exp(A/eta)] = 1, a whole
set of policies minimises it (with Z > 1, every policy with pi_theta(y) <= pi_old(y) * exp(A(y)/eta)
for all y), and which one training reaches is left to chance.

The gradient, and what -f'(x) means
-----------------------------------
exp(A/eta) * f(x) depends on theta only through x, and d x / d theta = x * grad log pi_theta, so

    grad L_LAD = E_{y ~ pi_old}[ (pi_theta/pi_old) f'(x_y) grad log pi_theta(y) ]
               = E_{y ~ pi_theta}[ f'(x_y) grad log pi_theta(y) ].

This is a policy gradient whose "advantage" is -f'(x_y), and f' is increasing, so the weight falls
as a response's ratio grows. Whether it turns a response round beyond its target depends on f. A
response sampled from pi_old is pushed along ratio * (-f'(x)) * grad log pi_theta, and
ratio * (-f'(x)) = exp(A/eta) * (-x f'(x)):

    f      -x f'(x)                    the push on a sampled response as its ratio grows
    js     -(x/2) log(2x / (1 + x))    turns negative at the target, x = 1
    jf     1 - x - x log x             turns negative at the target
    hd     sqrt(x) - x                 turns negative at the target
    tv     -x sign(x - 1) / 2          jumps from +x/2 to -x/2 at the target
    kl     -x (1 + log x)              turns negative at x = 1/e, before the target
    rkl    1                           exp(A/eta) at every ratio: never turns round

So JS, JF, HD and TV brake each response at its target and KL from a ratio e times below it: that
per-sample brake is how they hold back runaway probability growth without an entropy bonus or a
clip. Reverse KL has no such brake. Its loss, -exp(A/eta) log pi_theta(y) plus terms free of theta,
is advantage-weighted regression's weighted negative log-likelihood; its expectation over pi_old is
still minimised at pi* (Lemma 3.2), but only the normalisation holds the policy there (raising one
response's probability lowers every other's), not a weight that turns round.
tests/test_lad_loss.py pins this table on a grid of ratios and advantages.

At the optimum every response has the same x_y = 1/Z, with Z = E_{pi_old}[exp(A/eta)], and the
weight -f'(1/Z) is the same constant for all: it averages to zero over pi_theta, since
E_{pi_theta}[grad log pi_theta] = 0, but it still nudges whichever responses happen to be sampled.
When Z = 1 the generators normalised to f'(1) = 0 (JS, JF, TV, HD) are silent there; KL and reverse
KL, written as in the paper's table, have f'(1) = 1 and -1.

Numerics
--------
x = exp(u - a), with u = logp - logp_old (the log ratio) and a = A / eta, overflows float32 long
before the loss does: with |u| and |a| up to 50, x reaches e^100, far beyond float32's e^88.7, while
exp(A/eta) * f(x) stays below about e^55. So we never form x. The loss is the perspective of f,
exp(a) * f(exp(u - a)), and each divergence below writes it with exp(u) and exp(a), which are
formed (each at most e^50 in the range we test), and log x = u - a. Near x = 1, where training
converges, several textbook forms subtract nearly equal numbers; far from it, a gradient can hold a
tiny factor times a huge one (e^-100 is a float32 denormal, with few digits left). The forms below
avoid both, so the loss and its gradient keep float32's relative precision for every |u|, |a| <= 50,
log x from -100 to 100 (the tests check them against float64, corners included).

Usage (the same call at the sequence or token level):

    loss = lad_loss(logp, logp_old, advantages, eta=0.25, divergence="js", mask=mask)
"""
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from grpo_loss import prepare_inputs, reduce_loss

LOG_2 = 0.6931471805599453


# ---------------------------------------------------------------------------------------------
# The f-divergences of the paper's ablation.
#
# For each one: the generator f(x) and its derivative f'(x), as a reader would write them (take x,
# return a tensor: good for plots and checks, but they overflow for large x), and `weighted_f(u,
# a)`, which computes exp(a) * f(exp(u - a)) from exp(u), exp(a) and log x = u - a, without forming
# x. That is the form the loss uses.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Divergence:
    name: str  # the short name used on the command line and in `lad_loss(divergence=...)`
    f: Callable[[torch.Tensor], torch.Tensor]  # the generator f(x), convex, f(1) = 0
    f_prime: Callable[[torch.Tensor], torch.Tensor]  # f'(x): minus the per-sample gradient weight
    # (u, a) -> exp(a) f(exp(u - a))
    weighted_f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    strictly_convex: bool  # if so, Lemma 3.2's minimiser is unique


def _exp_difference(u, a):
    # exp(u) - exp(a) = exp(a) (x - 1). Near x = 1, where training ends up, the plain difference of
    # two nearly equal exponentials loses most of its digits; exp(a) * expm1(log x) keeps them. Far
    # from 1 there is nothing to lose and the plain form keeps the gradient exp(u) exact even when
    # exp(u) is tiny next to exp(a). The clamp only keeps the unused branch finite.
    log_x = u - a
    near = torch.exp(a) * torch.expm1(log_x.clamp(-1.0, 1.0))
    return torch.where(log_x.abs() < 1.0, near, torch.exp(u) - torch.exp(a))


def _kl(u, a):
    # exp(a) * x log x = exp(u) * log x, since exp(a) * x = exp(u).
    return torch.exp(u) * (u - a)


def _rkl(u, a):
    # exp(a) * (-log x)
    return -torch.exp(a) * (u - a)


def _jf(u, a):
    # exp(a) * (x - 1) * log x = (exp(u) - exp(a)) * log x
    return _exp_difference(u, a) * (u - a)


def _tv(u, a):
    # exp(a) * |x - 1| / 2 = |exp(u) - exp(a)| / 2
    return 0.5 * torch.abs(_exp_difference(u, a))


def _hd(u, a):
    # exp(a) * (sqrt(x) - 1)^2 = (exp(u/2) - exp(a/2))^2
    return _exp_difference(0.5 * u, 0.5 * a) ** 2


def _js(u, a):
    # f(x) = 1/2 [x log x - (x + 1) log((x + 1) / 2)] is symmetric, x f(1/x) = f(x), so
    # exp(a) f(exp(u - a)) = exp(u) f(exp(a - u)): call the larger of u, a `hi`, the smaller `lo`,
    # and d = lo - hi <= 0. Then, with log(1 + e^d) = softplus(d),
    #   2 exp(a) f(x) = log 2 exp(hi) + exp(lo) (log 2 + d) - (exp(lo) + exp(hi)) softplus(d).
    # The last product is the trap: its derivative holds exp(hi) * sigmoid(d), and for d < -87
    # sigmoid(d) is a float32 denormal, with few digits left, times e^50. Written as
    #   exp(lo) * softplus(d) * (1 + e^-d),
    # only exp(lo) carries the scale and the factor beside it stays between 1 and 2 log 2, so the
    # value and the gradient keep their digits at any d. The clamp at d = -30 keeps e^-d finite; it
    # moves that factor by less than e^-30, far below float32's resolution.
    hi, lo = torch.maximum(u, a), torch.minimum(u, a)
    d = lo - hi
    d_kept = d.clamp(min=-30.0)
    far = 0.5 * (
        LOG_2 * torch.exp(hi)
        + torch.exp(lo) * (LOG_2 + d - F.softplus(d_kept) * (1 + torch.exp(-d_kept)))
    )
    # Near x = 1 those terms almost cancel (the value is about exp(a) (log x)^2 / 8). Written
    # around the midpoint of u and a, the same value is
    #   1/4 (exp(u) - exp(a)) log x - 1/2 (exp(u) + exp(a)) log cosh(log x / 2),
    # two terms that differ by a factor of about 2, with log cosh(z) = log1p(2 sinh(z/2)^2).
    # The clamp only keeps this unused branch finite where |log x| >= 1.
    log_x = u - a
    log_x_near = log_x.clamp(-1.0, 1.0)
    log_cosh = torch.log1p(2 * torch.sinh(0.25 * log_x_near) ** 2)
    near = (
        0.25 * _exp_difference(u, a) * log_x_near - 0.5 * (torch.exp(u) + torch.exp(a)) * log_cosh
    )
    return torch.where(log_x.abs() < 1.0, near, far)


DIVERGENCES = {
    d.name: d
    for d in [
        Divergence("kl", lambda x: x * torch.log(x), lambda x: torch.log(x) + 1, _kl, True),
        Divergence("rkl", lambda x: -torch.log(x), lambda x: -1 / x, _rkl, True),
        Divergence(
            "jf", lambda x: (x - 1) * torch.log(x), lambda x: torch.log(x) + 1 - 1 / x, _jf, True
        ),
        Divergence(
            "tv", lambda x: 0.5 * torch.abs(x - 1), lambda x: 0.5 * torch.sign(x - 1), _tv, False
        ),
        Divergence(
            "hd", lambda x: (torch.sqrt(x) - 1) ** 2, lambda x: 1 - 1 / torch.sqrt(x), _hd, True
        ),
        Divergence(
            "js",
            lambda x: 0.5 * (x * torch.log(x) - (x + 1) * torch.log((x + 1) / 2)),
            lambda x: 0.5 * (torch.log(x) - torch.log((x + 1) / 2)),
            _js,
            True,
        ),
    ]
}


def get_divergence(divergence: str) -> Divergence:
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {sorted(DIVERGENCES)}, got {divergence!r}")
    return DIVERGENCES[divergence]


# ---------------------------------------------------------------------------------------------
# The loss.
# ---------------------------------------------------------------------------------------------

def lad_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    eta: float = 0.25,
    divergence: str = "js",
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The practical LAD objective of Lemma 3.2: exp(A/eta) * f(x), log x = (logp - logp_old) -
    A/eta.

    Args:
        logp: log pi_theta of the sampled responses, [batch] (sequence level) or [batch, tokens]
            (token level: each token's log-probability, one ratio per token).
        logp_old: the same log-probabilities under pi_old, the policy that sampled the batch; same
            shape as logp. Treated as a constant.
        advantages: A, [batch] (broadcast over tokens) or the shape of logp. Treated as a constant.
        eta: the trust-region temperature, > 0. The paper's main setting is 1/eta = 4.
        divergence: one of DIVERGENCES: "kl", "rkl", "jf", "tv", "hd", "js" (the paper's choice).
        mask: optional, the shape of logp; True (or 1) where an element counts (prompt and padding
            tokens are False).
        reduction: "mean" over unmasked elements, "sum", or "none" (per element, the shape of logp,
            zero where masked).

    Samples are assumed to come from pi_old, so a plain mean estimates E_{y ~ pi_old}[...].
    """
    if not eta > 0:  # also catches NaN
        raise ValueError(f"eta must be > 0, got {eta}")
    weighted_f = get_divergence(divergence).weighted_f
    logp, logp_old, advantages, mask = prepare_inputs(logp, logp_old, advantages, mask, reduction)

    u = logp - logp_old.detach()  # log (pi_theta / pi_old): carries the gradient
    a = advantages.detach() / eta  # A / eta: log of the target's unnormalised weight
    loss = weighted_f(u, a)  # = exp(A/eta) * f(x), computed in log space
    return reduce_loss(loss, mask, reduction)

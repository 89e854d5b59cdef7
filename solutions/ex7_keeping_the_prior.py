"""Solution to exercise 7: an entropy bonus forgets the prior, LAD keeps it, and GRPO's k3 penalty
anchors to it in the other direction.

In every derivation below mu is the Lagrange multiplier of sum_y pi(y) = 1.

LAD. Its end point is the target pi_0 exp(A/eta)/Z (Lemma 3.1 with pi_old = pi_0): the prior
multiplies the advantage term. Two answers with equal advantage keep pi_0's ratio.

Entropy bonus. Maximise sum_y pi(y) A(y) - beta sum_y pi(y) log pi(y):

    A(y) - beta (log pi(y) + 1) = mu   =>   pi(y) = exp(A(y)/beta) / sum_y' exp(A(y')/beta).

pi_0 is gone: it was only the starting point, and the objective is strictly concave, so every start
ends at the same optimum. The bonus pulls towards the *uniform* distribution; with a uniform pi_0
that is the same as pulling towards pi_0, and beta = eta gives exactly LAD's target. (bandit.py's
ablation gives GRPO std-normalised advantages, hence beta = eta / std there, with the std taken
under pi*: GRPO is on-policy, and at the fixed point where it would match LAD it samples its groups
from pi* itself. That std is 0.193, so beta = 0.25 / 0.193 = 1.3; pi_0's std, 0.478, would give
0.52, the right value for a group sampled from pi_0, which the on-policy GRPO never does at its
end.) With a non-uniform pi_0 no beta works: the optimum is a function of A alone, and LAD's target
is not. Two answers with equal advantage get equal probability, whatever the pretrained model
thought of them.

The exact KL penalty, for comparison. Maximise sum_y pi(y) A(y) - beta KL(pi || pi_0):

    A(y) - beta (log(pi(y)/pi_0(y)) + 1) = mu   =>   pi(y) = pi_0(y) exp(A(y)/beta) / Z.

That is LAD's target at eta = beta: it is Lemma 3.1 itself. So, in this exact setting, LAD and
GRPO-with-an-exact-KL-to-pi_0 share their end point; LAD's contribution is a loss that *matches*
that distribution, with per-sample weights -f'(x) that vanish there, instead of trading reward
against a penalty whose coefficient must be tuned to the reward scale.

The k3 penalty, as GRPO implements it. The loss is sum_y pi_old(y) k3(y) with
k3 = r - log r - 1, r = pi_0(y)/pi(y). Only r depends on theta, with grad r = -r grad log pi, so

    grad = sum_y pi_old(y) (1 - r(y)) grad log pi(y)
         = sum_y (pi(y) - pi_0(y)) grad log pi(y)          at pi_old = pi
         = - sum_y pi_0(y) grad log pi(y)                    (the score has mean 0 under pi)
         = grad KL(pi_0 || pi).

The value estimates KL(pi || pi_0), but the gradient is that of the reverse divergence KL(pi_0 ||
pi). Maximising sum_y pi(y) A(y) - beta KL(pi_0 || pi) = ... + beta sum_y pi_0(y) log pi(y) + const:

    A(y) + beta pi_0(y) / pi(y) = mu   =>   pi(y) = beta pi_0(y) / (mu - A(y)),   mu > max_y A(y),

with mu fixed by sum_y pi(y) = 1. The left side decreases from +infinity (mu just above max A) to
at most 1 at mu = max A + beta (each term is then at most pi_0(y)): the root lies in that bracket.
This is the "other direction" closed form quoted in lad_loss.py's docstring. It keeps pi_0 in the
answer, but not in the proportions exp(A/beta): it ends far from LAD's target (the check sees a
total variation above 0.3 at beta = eta in the bandit).
"""
import torch

import bandit
from grpo_loss import grpo_loss
from kl_penalty import k3_penalty
from lad_loss import lad_loss


def lad_optimum(pi_0, advantages, eta: float) -> torch.Tensor:
    return bandit.target_policy(pi_0, advantages, eta)


def entropy_bonus_optimum(advantages, beta: float) -> torch.Tensor:
    return torch.softmax(advantages / beta, dim=-1)


def k3_penalty_optimum(pi_0, advantages, beta: float) -> torch.Tensor:
    best = float(advantages.max())
    lo, hi = best, best + beta  # total mass: +infinity just above max A, at most 1 at max A + beta

    def total_mass(mu):
        return float((beta * pi_0 / (mu - advantages)).sum())

    for _ in range(200):
        mu = 0.5 * (lo + hi)
        lo, hi = (mu, hi) if total_mass(mu) > 1 else (lo, mu)
    pi = beta * pi_0 / (hi - advantages)
    return pi / pi.sum()  # absorbs the bisection's last rounding


def train_exact(regulariser: str, pi_0, advantages, coef: float, steps: int = 600,
                lr: float = 5e-2) -> torch.Tensor:
    # start at the prior, as fine-tuning would
    logits = torch.log(pi_0).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        logp = torch.log_softmax(logits, dim=-1)
        if regulariser == "lad":
            per_arm = lad_loss(logp, torch.log(pi_0), advantages, eta=coef, reduction="none")
            loss = (pi_0 * per_arm).sum()  # E_{y ~ pi_old}, pi_old = pi_0 for good
        else:
            pi_old = logp.exp().detach()  # on-policy: the ratio is 1, the gradient A * grad log pi
            per_arm = grpo_loss(logp, logp.detach(), advantages, clip_eps=None,
                                reduction="none")
            if regulariser == "k3":  # the anchor is the caller's to add, per arm
                per_arm = per_arm + coef * k3_penalty(logp, torch.log(pi_0))
            loss = (pi_old * per_arm).sum()
            if regulariser == "entropy":
                loss = loss - coef * bandit.entropy(logp.exp())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.softmax(logits.detach(), dim=-1)

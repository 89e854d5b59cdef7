"""Exercise 7 (hard): an entropy bonus, a KL penalty and LAD, starting from a prior that is not
uniform.

`python bandit.py --ablation entropy-bonus` shows GRPO with an entropy bonus beta * H(pi) coming
close to LAD's target when beta is tuned. That bandit starts from a uniform policy, and a uniform
start hides the difference this exercise is about. A real policy starts from a pretrained model,
pi_0, that already prefers some answers. Take the bandit's 50 arms and advantages A, and a prior
that prefers the later arms, for example pi_0 = softmax(arm / 12.5), and compare three ways of
keeping GRPO from collapsing with LAD. For each, derive the optimum on paper first (a Lagrange
multiplier for sum_y pi(y) = 1 does it):

  LAD, pi_old = pi_0 fixed. The target pi_0 exp(A/eta) / Z (Lemma 3.1; exercise 1).

  "entropy": GRPO + beta * H(pi). Maximise E_pi[A] + beta H(pi). What is the optimum? Where did pi_0
  go? For which beta does it equal LAD's target when pi_0 is uniform? Is there any beta that does
  when it is not?

  "k3": GRPO + a KL penalty to pi_0, beta * kl_penalty.k3_penalty(log pi, log pi_0) added to
  grpo_loss's per-sample loss. Each sample adds the "k3" estimate r - log r - 1,
  r = pi_0(y)/pi(y), whose value is an unbiased estimate of KL(pi || pi_0) on samples from pi, and
  the loss is minimised on-policy (pi_old = pi). Differentiate the loss with pi_old held fixed,
  then set pi_old = pi: which divergence's gradient do you get? Which optimum does it lead to?
  (Compare the closed form for "the other direction" in lad_loss.py's docstring.)

One weight, beta, for all three regularisers, on purpose: beta H(pi) is -beta KL(pi || uniform) plus
a constant, so the entropy bonus is a KL anchor to the uniform policy, and beta keeps its one
meaning (a KL coefficient; bandit.py calls the bonus's weight --entropy-coef).

Use the raw advantages A for GRPO (no group normalisation, so that beta has a closed-form meaning;
normalising only rescales beta, exercise 5) and the exact expectation over the arms, no sampling.

Write the three predicted optima and `train_exact`, which trains each method from pi_0 so the check
can compare what is learned with what you predicted.

Shapes: pi_0 and advantages are 1-D [n], pi_0 strictly positive. Return [n] tensors, in float64 or
float32 (the check allows float32's precision). The check tests each optimum on its own, then
train_exact against the right end points, so a failure names the function to fix.

Check your answer:  python -m pytest exercises/checks/test_ex7_keeping_the_prior.py
"""
import torch

import bandit
from grpo_loss import grpo_loss
from kl_penalty import k3_penalty
from lad_loss import lad_loss


def lad_optimum(pi_0, advantages, eta: float) -> torch.Tensor:
    """Where LAD with pi_old = pi_0 ends."""
    raise NotImplementedError("exercise 7: write lad_optimum")


def entropy_bonus_optimum(advantages, beta: float) -> torch.Tensor:
    """The maximiser of E_pi[A] + beta * H(pi) over all distributions pi."""
    raise NotImplementedError("exercise 7: write entropy_bonus_optimum")


def k3_penalty_optimum(pi_0, advantages, beta: float) -> torch.Tensor:
    """Where on-policy GRPO with the k3 penalty beta * k3_penalty(log pi, log pi_0) ends.

    The closed form has a Lagrange multiplier that you find numerically: a bisection on a bracket
    you can work out from the formula (sum_y pi(y) must be 1) takes a few lines.
    """
    raise NotImplementedError("exercise 7: write k3_penalty_optimum")


def train_exact(regulariser: str, pi_0, advantages, coef: float, steps: int = 600,
                lr: float = 5e-2) -> torch.Tensor:
    """Train softmax logits from log pi_0 with Adam, exact expectation over all arms; return the
    policy.

    regulariser:
      "lad"      lad_loss with eta = coef, pi_old = pi_0 for every step (each arm weighted by pi_0).
      "entropy"  grpo_loss on-policy (pi_old = the current policy, detached; clip_eps=None),
                 each arm weighted by pi_old, minus coef * the entropy of the current policy
                 (bandit.entropy).
      "k3"       grpo_loss on-policy as above, plus coef * kl_penalty.k3_penalty(log pi, log pi_0)
                 on each arm.
    """
    raise NotImplementedError("exercise 7: write train_exact")

"""Exercise 10 (medium): a refreshed pi_old compounds LAD's target.

LAD's target is relative to the policy that sampled the batch: pi* = pi_old * exp(A/eta) / Z (Lemma
3.1). In the bandit's figure pi_old stays at pi_0 and LAD converges to one fixed target. In a
language model, as in GRPO, pi_old is refreshed: after each batch, the policy that samples the next
one is the one just trained. `python bandit.py --ablation pi-old` shows what that does in the
bandit: LAD sharpens too, towards the best arm, only more slowly than GRPO. This exercise says why,
and how far the argument carries.

On paper first. Suppose each refresh period trains LAD to its exact minimiser before pi_old is
refreshed, and A stays fixed.
  1. Write pi_1, the policy after the first period, in terms of pi_0. Then pi_2, trained from pi_old
     = pi_1. Show that pi_k = pi_0 exp(k A / eta) / Z_k. Which temperature does that correspond to,
     as one step from pi_0? (Exercise 2's limits tell you where pi_k goes as k grows.)
  2. Two responses with equal advantage: what happens to the ratio of their probabilities as k
     grows?
  3. The GPT chapter: a 0/1 verifier and group-normalised rewards give every correct answer of a
     prompt the same advantage A+ = sqrt((1 - p) / p) and every wrong one A- = -sqrt(p / (1 - p)),
     for a success rate p (large groups). With A held at the SFT policy's values, what is P(correct)
     after k refreshes? What is the shape of the policy among the correct answers?
  4. Training does not solve each period exactly: in the GPT chapter every refresh comes after ONE
     optimiser step. Then pi_k = pi_0 exp(k A / eta) / Z_k no longer describes the path. Write the
     change that one plain gradient step makes to the logits z of a softmax policy, for two
     responses with equal advantage (lad_loss.py's gradient, E_pi[f'(x) grad log pi], and
     d log pi(y) / d z_j = [y = j] - pi(j)): does their ratio stay? Then predict what Adam, which
     divides each logit's step by that logit's own running gradient scale, does to it.

Then write the functions below and measure. Shapes: pi_0 and advantages are 1-D [n], pi_0 strictly
positive; float32 or float64 (the check allows float32's precision).

Check your answer:  python -m pytest exercises/checks/test_ex10_refreshed_pi_old.py  (trains a few
short runs)
"""
import torch

import bandit
from lad_loss import lad_loss


def compounded_target(pi_0, advantages, eta: float, k: int) -> torch.Tensor:
    """pi_k, the policy after k refresh periods each trained to its exact minimiser (question 1);
    pi_0 for k = 0. Compute it in log space (exercise 1)."""
    raise NotImplementedError("exercise 10: write compounded_target")


def train_with_refreshes(pi_0, advantages, eta: float, refreshes: int, steps_per_refresh: int = 300,
                         lr: float = 0.05) -> torch.Tensor:
    """LAD with pi_old refreshed every steps_per_refresh Adam steps, exact expectation over the
    responses.

    Start from the logits log pi_0 with pi_old = pi_0. Each step's loss is
    sum_y pi_old(y) * lad_loss(log pi(y), log pi_old(y), A(y), eta) (reduction="none",
    Jensen-Shannon), as bandit.step_loss computes it with arms=None. After every steps_per_refresh
    steps, pi_old becomes the current policy (detached). Return the policies [refreshes + 1, n]: row
    0 is pi_0, row k the policy at the end of the k-th period (the one that becomes pi_old next).
    """
    raise NotImplementedError("exercise 10: write train_with_refreshes")


def correct_mass_after(p: float, eta: float, k: int) -> float:
    """P(correct) after k exact refresh periods in the GPT chapter's setting (question 3): a success
    rate p under pi_0, A+ = sqrt((1 - p)/p) for every correct answer, A- = -sqrt(p/(1 - p)) for
    every wrong one, both held fixed."""
    raise NotImplementedError("exercise 10: write correct_mass_after")


def tie_ratio_with_one_step_per_refresh(pi_0, advantages, eta: float, first: int, second: int,
                                        optimizer: str, steps: int = 300) -> float:
    """pi(first) / pi(second) after `steps` steps of LAD with pi_old refreshed before every step
    (question 4), exact expectation, from the logits log pi_0. optimizer: "sgd" (torch.optim.SGD,
    lr 0.5) or "adam" (torch.optim.Adam, lr 0.05)."""
    raise NotImplementedError("exercise 10: write tie_ratio_with_one_step_per_refresh")

"""Solution to exercise 1: the advantage-induced target, in log space.

The one idea: never form exp(A/eta) or pi/pi_old on their own. Every quantity here is a softmax of
some log-weights, and a softmax is invariant to adding a constant to all its inputs, so torch can
subtract the largest one before exponentiating (that is what torch.softmax and torch.logsumexp do
inside). The largest term then becomes exp(0) = 1 and nothing overflows; tiny terms underflow to 0,
which is the right answer to float precision.

Two facts the check verifies, and why they hold:
  * Adding a constant c to every advantage does not move pi*: it multiplies every weight
    pi_old * exp(A/eta) by exp(c/eta), and Z by the same factor. log Z shifts by c/eta. This is why
    a baseline (subtracting the mean advantage) changes Z but never the target.
  * P_pi(pi*) = P_A: with pi = pi*, pi/pi_old = exp(A/eta)/Z, and normalising that over y gives
    exp(A/eta)/Z_A. The paper's "P_pi = P_A" and the policy "pi = pi*" are the same statement.

bandit.py's target_policy computes pi* with the same one-line softmax.
"""
import torch


def log_normaliser(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """log Z = log sum_y exp(log pi_old(y) + A(y)/eta): a log-sum-exp of the log-weights."""
    return torch.logsumexp(torch.log(pi_old) + advantages / eta, dim=-1)


def target_policy(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """pi* = exp(log pi_old + A/eta - log Z) = softmax(log pi_old + A/eta)."""
    return torch.softmax(torch.log(pi_old) + advantages / eta, dim=-1)


def advantage_induced(advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """P_A = softmax(A/eta): the same computation with a uniform pi_old."""
    return torch.softmax(advantages / eta, dim=-1)


def policy_induced(pi: torch.Tensor, pi_old: torch.Tensor) -> torch.Tensor:
    """P_pi = softmax(log pi - log pi_old): the ratio pi/pi_old, normalised over responses."""
    return torch.softmax(torch.log(pi) - torch.log(pi_old), dim=-1)

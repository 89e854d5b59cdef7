"""Exercise 3 (medium): Lemma 3.2's stationarity condition, derived and checked numerically.

Lemma 3.2 replaces the intractable f-divergence between P_pi and P_A by the practical objective

    L(pi) = E_{y ~ pi_old}[ exp(A(y)/eta) * f(x_y) ],     x_y = (pi(y) / pi_old(y)) / exp(A(y)/eta),

and claims that its minimiser is still pi* = pi_old * exp(A/eta) / Z. You will derive why, then turn
the derivation into a number you can compute for any policy.

On paper first. Over a finite set of responses, write r_y = pi(y) / pi_old(y), so that a policy is a
choice of r >= 0 with sum_y pi_old(y) r_y = 1, and

    L(r) = sum_y pi_old(y) exp(A_y/eta) f(r_y exp(-A_y/eta)).

  1. Add a Lagrange multiplier lambda for the constraint and set the derivative with respect to each
     r_y to zero. Show that every y must satisfy  f'(x_y) = lambda.
  2. When f is strictly convex, f' is strictly increasing (one-to-one). Conclude that every x_y is
     the same number, that r_y is proportional to exp(A_y/eta), and that pi = pi*.
  3. At pi = pi*, what is that common value of x_y? (It involves Z.) So what is lambda?
  4. Total variation, f(x) = |x - 1|/2, is convex but not strictly: f' is -1/2 below 1 and +1/2
     above. Suppose Z > 1. Find a policy other than pi* that satisfies the condition and has the
     same value of L. (Which x_y does pi* have when Z > 1? Which other policies keep every x_y on
     that side of 1?)

Then write the four functions below. Divergences are looked up by name in lad_loss.DIVERGENCES,
whose entries carry f, f' (`f_prime`) and `weighted_f(u, a) = exp(a) f(exp(u - a))`, the form
lad_loss uses. All tensors are 1-D float64 over the responses, [n]; pi and pi_old are strictly
positive. Where a function returns a float, a 0-d tensor is accepted too.

Check your answer:  python -m pytest exercises/checks/test_ex3_stationarity.py
"""
import torch

from lad_loss import DIVERGENCES, lad_loss


def stationarity_residual(pi, pi_old, advantages, eta: float, divergence: str) -> float:
    """How far pi is from satisfying f'(x_y) = lambda for one lambda: max_y f'(x_y) - min_y f'(x_y).

    Zero (to rounding) at a stationary point, positive elsewhere. Compute log x_y first.
    """
    raise NotImplementedError("exercise 3: write stationarity_residual")


def lagrange_multiplier(pi_old, advantages, eta: float, divergence: str) -> float:
    """lambda at the minimiser pi*: the common value of f'(x_y) there (question 3)."""
    raise NotImplementedError("exercise 3: write lagrange_multiplier")


def minimise_exact_objective(pi_old, advantages, eta: float,
                             divergence: str) -> tuple[torch.Tensor, list[float]]:
    """Minimise L over softmax policies pi = softmax(theta) numerically, starting at pi = pi_old;
    return the policy pi [n] it ends at and its path: a list of floats, L at the start and then L
    after each iteration (each update of theta), ending with L at the returned pi.

    L with the exact expectation over the n responses is sum_y pi_old(y) * lad_loss(...) per
    response (reduction="none"). torch.optim.LBFGS with line_search_fn="strong_wolfe" and
    max_iter=1 (one iteration per step() call) converges in a few dozen calls, in float64; Adam
    with a few thousand steps also does.

    Why the path: the closed form of question 3 is the right end point, and no check of the end
    point alone can tell it from an optimiser's. The exercise is to watch an optimiser that knows
    only L land on pi*, so the check reads the path: from L(pi_old), down to L(pi*), without a jump
    onto the minimum that only the closed form could make.
    """
    raise NotImplementedError("exercise 3: write minimise_exact_objective")


def tv_minimiser_other_than_target(pi_old, advantages, eta: float) -> torch.Tensor:
    """For advantages with Z > 1: a policy [n], clearly different from pi*, that also minimises L
    with the total variation generator (question 4). Its entries are >= 0 and sum to 1; a zero entry
    is allowed (x_y = 0 is as much below 1 as any other x_y < 1)."""
    raise NotImplementedError("exercise 3: write tv_minimiser_other_than_target")

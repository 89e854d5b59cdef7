"""Exercise 3 (medium): Lemma 3.2's stationarity condition, derived and checked numerically.

Lemma 3.2 replaces the f-divergence between P_pi and P_A by the practical objective

    L(pi) = E_{y ~ pi_old}[ exp(A(y)/eta) * f(x_y) ],     x_y = (pi(y) / pi_old(y)) / exp(A(y)/eta),

and claims that its minimiser is still pi* = pi_old * exp(A/eta) / Z. Derive why. Over a finite set
of responses, with r_y = pi(y) / pi_old(y) and the constraint sum_y pi_old(y) r_y = 1,

    L(r) = sum_y pi_old(y) exp(A_y/eta) f(r_y exp(-A_y/eta)).

  1. Add a Lagrange multiplier mu for the constraint and set d/dr_y to zero: every y must
     satisfy f'(x_y) = mu.
  2. For a strictly convex f (f' one-to-one), conclude that every x_y is the same number, and that
     pi = pi*.
  3. What is that common x_y at pi*, in terms of Z? So what is mu?
  4. Optional, after the lab: total variation, f(x) = |x - 1|/2, is convex but not strictly (f' is
     -1/2 below 1 and +1/2 above). With Z > 1, find another policy with the same L as pi*.

Then write the functions below. lad_loss.DIVERGENCES[name] carries f, f' (`f_prime`) and
`weighted_f(u, a) = exp(a) f(exp(u - a))`. Tensors are 1-D float64 over the responses, [n]; pi and
pi_old are strictly positive. A float may be returned as a 0-d tensor. Until you write
tv_minimiser_other_than_target, its stub's NotImplementedError makes the check skip it.

Check your answer:  python -m pytest exercises/checks/test_ex3_stationarity.py
"""
import torch

from lad_loss import DIVERGENCES, lad_loss


def stationarity_residual(pi, pi_old, advantages, eta: float, divergence: str) -> float:
    """max_y f'(x_y) - min_y f'(x_y): how far pi is from f'(x_y) = mu for one mu. Zero at a
    stationary point, positive elsewhere. Compute log x_y first."""
    raise NotImplementedError("exercise 3: write stationarity_residual")


def lagrange_multiplier(pi_old, advantages, eta: float, divergence: str) -> float:
    """mu at the minimiser pi*: the common value of f'(x_y) there (question 3)."""
    raise NotImplementedError("exercise 3: write lagrange_multiplier")


def minimise_exact_objective(pi_old, advantages, eta: float,
                             divergence: str) -> tuple[torch.Tensor, list[float]]:
    """Minimise L over softmax policies pi = softmax(theta), starting at pi = pi_old; return the
    policy pi [n] it ends at and its path: a list of floats, L at the start and then L after each
    iteration (each update of theta), ending with L at the returned pi.

    L = sum_y pi_old(y) * lad_loss(...)[y] with reduction="none". torch.optim.LBFGS with
    line_search_fn="strong_wolfe" and max_iter=1 (one iteration per step() call) converges in a few
    dozen calls; Adam in a few thousand steps. The closed form of question 3 is the right end
    point, but the exercise is to watch an optimiser that knows only L find it: the check reads
    the path, and refuses one that jumps onto the minimum from far above it.
    """
    raise NotImplementedError("exercise 3: write minimise_exact_objective")


def tv_minimiser_other_than_target(pi_old, advantages, eta: float) -> torch.Tensor:
    """Optional (question 4). For advantages with Z > 1: a policy [n], clearly different from
    pi*, that also minimises L with the total variation generator; entries >= 0 summing to 1 (a
    zero entry is allowed)."""
    raise NotImplementedError("exercise 3, optional: write tv_minimiser_other_than_target")

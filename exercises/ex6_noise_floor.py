"""Exercise 6 (hard): why some divergences stop short of the target, and how to predict which.

Read the bandit's divergence ablation in docs/bandit.md (plots/ablation_divergences.json), or run
it yourself in a few seconds with `python bandit.py --ablation divergences --quick` (its figure and
metrics go under runs/quick/, and the table is printed). With the bandit's advantages as they are
(Z = E_{pi_0}[exp(A/eta)] = 1), KL and reverse KL stop at a total variation to the target several
times larger than JF, TV, HD and JS. With centred advantages (`--centre-advantages`: the same
target, but Z of about 2.8) the picture turns around: KL gets closest, and JF, HD, JS and rKL stall
(TV, not strictly convex, drifts for its own reason: exercise 3).
Same targets, same samples, same optimiser. Why?

The pieces you need:
  * The gradient of LAD's loss (lad_loss.py's docstring) is E_{y ~ pi}[ f'(x_y) grad log pi(y) ]:
    each sampled response is pushed with the weight -f'(x_y).
  * At the optimum every response has the same x_y. Exercise 3 found which number that is.
  * E_{y ~ pi}[ c * grad log pi(y) ] = 0 for any constant c (the score has mean zero). So a constant
    weight cancels in expectation, and the optimum is still the optimum. But a training step uses 64
    samples, not the expectation. What does a constant weight c != 0 do to the responses that happen
    to be sampled in one step? What if c = 0?

Write the functions below, in this order:
  bandit_normaliser      Z for the bandit, with and without centred advantages.
  weight_at_optimum      the per-sample gradient weight -f'(x) that every sample carries at the
                         optimum.
  quietest_divergences   your prediction: which divergences should get closest to the target for
                         a Z.
  silencing_normaliser   the Z at which a divergence's weight at the optimum is exactly zero (None
                         if there is no such Z). What would you do to the advantages to reach it?
  measure_noise_floors   the experiment: short bandit runs of LAD with each divergence.
The check compares your prediction with your measurement, and both with the truth.

Check your answer:  python -m pytest exercises/checks/test_ex6_noise_floor.py
"""
import torch

import bandit
from lad_loss import DIVERGENCES

PAPER_DIVERGENCES = ["kl", "rkl", "jf", "tv", "hd", "js"]


def bandit_normaliser(centre_advantages: bool, eta: float = 0.25) -> float:
    """Z = E_{pi_0}[exp(A/eta)] for bandit.py's advantages (bandit.bandit_advantages)."""
    raise NotImplementedError("exercise 6: write bandit_normaliser")


def weight_at_optimum(divergence: str, Z: float) -> float:
    """The gradient weight -f'(x) of every sample when the policy sits at its target."""
    raise NotImplementedError("exercise 6: write weight_at_optimum")


def quietest_divergences(Z: float) -> list[str]:
    """The names in PAPER_DIVERGENCES whose |weight at the optimum| is smallest for this Z, sorted
    alphabetically (several if they tie, to within 1e-9).

    (TV's f' jumps at x = 1, so a Z of 0.99999999 and a Z of 1 give it different weights: the check
    rounds the bandit's Z to six digits before asking.)"""
    raise NotImplementedError("exercise 6: write quietest_divergences")


def silencing_normaliser(divergence: str) -> float | None:
    """The Z > 0 at which weight_at_optimum(divergence, Z) = 0, or None if there is none."""
    raise NotImplementedError("exercise 6: write silencing_normaliser")


def measure_noise_floors(centre_advantages: bool, iterations: int = 400,
                         lr: float = 2e-2) -> dict[str, float]:
    """For each name in PAPER_DIVERGENCES: train LAD with pi_old = pi_0 on the bandit
    (bandit.train with the method "lad-fixed", 64 samples per iteration, these iterations and lr,
    seed 0) and return the mean TV to the target over the last 100 iterations (Run.tv is recorded
    every 10 iterations, at the iterations in Run.iterations)."""
    raise NotImplementedError("exercise 6: write measure_noise_floors")

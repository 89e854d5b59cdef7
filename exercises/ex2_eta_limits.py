"""Exercise 2 (easy): predict, then verify, what LAD learns as eta goes to 0 and to infinity.

eta is the temperature of LAD's target pi* = pi_old * exp(A/eta) / Z (Lemma 3.1; exercise 1). It is
also the Lagrange multiplier of the trust region: a small eta means a loose trust region (the
advantage dominates), a large eta a tight one (staying close to pi_old dominates).

Before writing any code, predict on paper:
  1. What does pi* become as eta -> 0? Which responses keep probability? If two responses share the
     largest advantage, how is the mass split between them? (Divide the numerator and Z by the
     largest term, exp(max A / eta), and let eta -> 0.)
  2. What does pi* become as eta -> infinity?
  3. In bandit.py (arms 0..49, advantages with three modes centred at arms 10, 25 and 40, the
     heaviest at arm 10), where does LAD's policy end up at 1/eta = 128? At 1/eta = 1/64?

Then write the two limits below, and `train_lad`, which runs the bandit's LAD training for a given
eta and returns the learned policy, so that the check can see whether training goes where you said.

Shapes: pi_old and advantages are 1-D [n]; pi_old is strictly positive. Return [n] tensors.

Check your answer:  python -m pytest exercises/checks/test_ex2_eta_limits.py
"""
import torch

import bandit


def target_as_eta_goes_to_zero(pi_old: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """lim_{eta -> 0} pi_old * exp(A/eta) / Z. Mind ties: several responses may share max A."""
    raise NotImplementedError("exercise 2: write target_as_eta_goes_to_zero")


def target_as_eta_goes_to_infinity(pi_old: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """lim_{eta -> infinity} pi_old * exp(A/eta) / Z."""
    raise NotImplementedError("exercise 2: write target_as_eta_goes_to_infinity")


def train_lad(eta: float, iterations: int = 400, lr: float = 0.1) -> torch.Tensor:
    """LAD on the 50-arm bandit with this eta, pi_old = pi_0 fixed; return the final policy [50].

    Use bandit.train with the method "lad-fixed" and a bandit.Settings: the given eta, iterations
    and lr, and the exact expectation over all arms (no sampling noise, so that a few hundred
    iterations show the end point clearly).
    """
    raise NotImplementedError("exercise 2: write train_lad (bandit.train and bandit.Settings do "
                              "the work)")

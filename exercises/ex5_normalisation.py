"""Exercise 5 (medium): swap the advantage normalisation, and see what it changes for LAD and GRPO.

GRPO does not use raw rewards: it normalises them within the group (grpo_loss.group_advantages),

    A_hat = (A - mean(A)) / std(A)          or, in the "Dr. GRPO" variant,   A_hat = A - mean(A).

In bandit.py LAD receives the raw advantages. What happens if LAD is fed normalised ones, as it would
be in a GRPO-style trainer? Predict first:

  1. Subtracting the mean. Exercise 1 showed that adding a constant to every advantage leaves the
     target pi_old * exp(A/eta) / Z unchanged. So mean-centring changes nothing for LAD's end point.
  2. Dividing by the standard deviation. Write exp(A_hat / eta) in terms of A. Which eta would give
     the same target with the raw advantages? Call it the effective eta. Is the bandit's target
     sharper or flatter after normalisation (its advantages have std of about 0.48 under pi_0)?
  3. GRPO maximises E_pi[A_hat]. Does any normalisation that keeps the order of the advantages move
     its end point? What can it change?

Use the exact mean and standard deviation under pi_old (weight each response by pi_old(y); the
population standard deviation, as if the group were infinitely large). Under pi_old, because that is
the policy LAD's group is sampled from: here pi_old = pi_0, fixed, so the std is pi_0's (0.48).
bandit.py's entropy-bonus ablation uses another std, 0.19, taken under pi*: GRPO there is on-policy,
so at its fixed point its groups come from the policy it ends at, not from pi_0 (exercise 7).

Keep the input's dtype if you like; the check accepts float32 answers too (to float32's precision).

The check trains LAD, with the exact expectation over the bandit's 50 arms, on the advantages your
normalise_advantages returns and compares the learned policy with predicted_lad_target; it also trains
GRPO on-policy with mean-only advantages, and looks for predicted_grpo_limit.

Shapes: pi_old and advantages are 1-D [n]. Return [n] tensors (floats for effective_eta).

Check your answer:  python -m pytest exercises/checks/test_ex5_normalisation.py
"""
import torch

import bandit


def normalise_advantages(advantages, pi_old, divide_by_std: bool = True) -> torch.Tensor:
    """A - E_{pi_old}[A], divided by Std_{pi_old}[A] when divide_by_std."""
    raise NotImplementedError("exercise 5: write normalise_advantages")


def effective_eta(advantages, pi_old, eta: float) -> float:
    """The eta at which the raw advantages give LAD the target that the std-normalised ones give at eta."""
    raise NotImplementedError("exercise 5: write effective_eta")


def predicted_lad_target(advantages, pi_old, eta: float, divide_by_std: bool) -> torch.Tensor:
    """Where LAD (pi_old fixed) ends when trained on normalise_advantages(advantages, pi_old, divide_by_std).

    Write it in terms of the raw advantages and effective_eta, not by normalising and calling it done:
    bandit.target_policy computes a target.
    """
    raise NotImplementedError("exercise 5: write predicted_lad_target")


def predicted_grpo_limit(advantages) -> torch.Tensor:
    """Where GRPO ends, with or without normalisation (the advantages have one best response)."""
    raise NotImplementedError("exercise 5: write predicted_grpo_limit")

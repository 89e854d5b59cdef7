"""Exercise 5 (medium): swap the advantage normalisation, and see what it changes for LAD and GRPO.

GRPO normalises rewards within the group (grpo_loss.group_advantages): A_hat = (A - mean(A)) /
std(A), or A - mean(A) in the "Dr. GRPO" variant. What happens if LAD is fed normalised advantages,
as a GRPO-style trainer would? Predict first:

  1. Subtracting the mean: exercise 1 showed that a constant added to every advantage leaves the
     target pi_old * exp(A/eta) / Z unchanged.
  2. Dividing by the standard deviation: write exp(A_hat / eta) in terms of A. Which eta gives the
     same target with the raw advantages (the effective eta)? Is the bandit's target sharper or
     flatter after normalisation (its advantages have std 0.48 under pi_0)?
  3. GRPO maximises E_pi[A_hat]. Does a normalisation that keeps the order of the advantages move
     its end point?

Take the mean and the std under pi_old (each response weighted by pi_old(y); the population std),
since pi_old is the policy LAD's groups are sampled from. Shapes: pi_old and advantages are [n];
return [n] tensors, and a float (or a 0-d tensor) for effective_eta; float32 answers pass. Do not
change the caller's tensors in place.

The check trains LAD, exactly over the bandit's 50 arms, on your normalise_advantages and compares
the result with predicted_lad_target; it trains GRPO with mean-only advantages and compares it with
predicted_grpo_limit.

Check your answer:  python -m pytest exercises/checks/test_ex5_normalisation.py
"""
import torch

import bandit


def normalise_advantages(advantages, pi_old, divide_by_std: bool = True) -> torch.Tensor:
    """A - E_{pi_old}[A], divided by Std_{pi_old}[A] when divide_by_std."""
    raise NotImplementedError("exercise 5: write normalise_advantages")


def effective_eta(advantages, pi_old, eta: float) -> float:
    """The eta at which the raw advantages give LAD the target that the std-normalised ones give
    at eta."""
    raise NotImplementedError("exercise 5: write effective_eta")


def predicted_lad_target(advantages, pi_old, eta: float, divide_by_std: bool) -> torch.Tensor:
    """Where LAD (pi_old fixed) ends when trained on normalise_advantages(advantages, pi_old,
    divide_by_std).

    Write it with the raw advantages, at eta or at effective_eta (bandit.target_policy computes a
    target), not by normalising and taking the target of that: the check refuses the shortcut.
    """
    raise NotImplementedError("exercise 5: write predicted_lad_target")


def predicted_grpo_limit(advantages) -> torch.Tensor:
    """Where GRPO ends, with or without normalisation (the advantages have one best response)."""
    raise NotImplementedError("exercise 5: write predicted_grpo_limit")

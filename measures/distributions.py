"""Two numbers about a distribution over answers, reported by the bandit chapter and the GPT chapter
alike: how far it is from another one, and how spread out it is.

    total_variation(p, q)   1/2 sum |p - q|: 0 for equal distributions, 1 for disjoint ones
    entropy(p)              -sum p log p in nats: 0 on one answer, log N spread evenly over N

Both act on the last dimension, so a batch of distributions gives a batch of numbers. They live
below both chapters (bandit_study/task.py and reasoning/evaluation.py import them), so that neither
chapter needs the other's modules.
"""
import torch


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """TV distance 1/2 sum |p - q| over the last dimension: 0 for equal distributions, 1 for
    disjoint ones."""
    return 0.5 * (p - q).abs().sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last dimension (0 log 0 = 0); differentiable, so that it
    can be a bonus in a loss too."""
    return -(p * torch.log(p.clamp_min(1e-300 if p.dtype == torch.float64 else 1e-30))).sum(-1)

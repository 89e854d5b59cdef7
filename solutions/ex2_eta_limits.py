"""Solution to exercise 2: the two limits of the target, and the bandit runs that confirm them.

eta -> 0. Write M = max_y A(y) and divide the numerator and Z by exp(M/eta):

    pi*(y) = pi_old(y) exp((A(y) - M)/eta) / sum_y' pi_old(y') exp((A(y') - M)/eta).

For a response with A(y) < M the exponent goes to -infinity and its term to 0; for one with A(y) = M
the term is pi_old(y) for every eta. So pi* tends to pi_old restricted to the best responses and
renormalised: a point mass on the best response if it is unique, and if several responses tie for
the best advantage, they share the mass *in the proportions pi_old gave them*. Even in this greedy
limit LAD does not choose between equally good answers (the Lemma 3.2 property, at eta -> 0).

eta -> infinity. exp(A/eta) -> 1 for every response, so pi* -> pi_old: an infinitely tight trust
region never moves.

The bandit. Its advantages make pi* proportional to mixture^(0.25/eta) (bandit_study/task.py's
docstring), so 1/eta = 128 raises the mixture to the 32nd power: arm 10, the centre of the heaviest
mode, ends with most of the mass (its neighbours keep a little: their advantage is only slightly
lower). 1/eta = 1/64 takes the 64th root of the mixture: almost uniform, i.e. LAD barely moves from
pi_0. The check verifies both, and that the learned policy walks from one limit to the other as
1/eta grows.

(Why not 1/eta = 1024? The loss evaluates exp(A/eta) inside lad_loss's log-space forms, and
A/eta = 0.35 * 1024 = 354 is beyond float32's exp range of about 88: the bandit, in float32, has its
own practical floor on eta.)
"""
import torch

import bandit


def target_as_eta_goes_to_zero(pi_old: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    best = advantages == advantages.max()  # every response that ties for the largest advantage
    mass = torch.where(best, pi_old, torch.zeros_like(pi_old))
    return mass / mass.sum()  # the ties keep pi_old's proportions


def target_as_eta_goes_to_infinity(pi_old: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    return pi_old.clone()  # exp(A/eta) -> 1: the advantages stop mattering


def train_lad(eta: float, iterations: int = 400, lr: float = 0.1) -> torch.Tensor:
    settings = bandit.Settings(eta=eta, iterations=iterations, lr=lr, exact=True)
    return bandit.train("lad-fixed", settings, progress=False).pi

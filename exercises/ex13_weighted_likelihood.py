"""Exercise 13 (medium): which f makes LAD weighted maximum likelihood?

Exercise 9 found LAD's push on a sampled response: ratio * (-f'(x)) * grad log pi, with
x = ratio / exp(A/eta). With one update per batch the ratio is 1. Here pi_old stays FIXED for many
updates, as in the bandit's LAD and the GPT chapter's lad-fixed: the batches come from pi_old, the
ratio drifts far from 1, and the weight on grad log pi itself,

    w = ratio * (-f'(x)),

moves with it. For one of the paper's six divergences it does not move at all, and LAD becomes a
method you may already know.

On paper first. One sample at the sequence level, a = A / eta, x = ratio / exp(a).
  1. Write w for the six generators of lad_loss.DIVERGENCES ("kl", "rkl", "jf", "tv", "hd", "js";
     their f' is in the table). Exercise 9's weights are w / ratio. Which w does not depend on the
     ratio, and what is it? More generally, which f make w free of the ratio? (Use ratio = x exp(a)
     and solve x f'(x) = constant.)
  2. For that divergence, expand lad_loss's per-sample value exp(a) f(x) with
     log x = log pi - log pi_old - a. Show that it is -exp(A/eta) log pi(y) plus a term with no
     theta in it. So minimising it over samples from a frozen pi_old is weighted maximum likelihood:
     fit pi to pi_old's own samples, each counted exp(A/eta) times. That is reward-weighted
     regression (Peters & Schaal 2007); AWR (Peng et al. 2019) is of the same family.
  3. Over a finite set of responses its exact objective is
         R(pi) = -sum_y pi_old(y) exp(A_y/eta) log pi(y).
     Write pi_old exp(A/eta) = Z pi*, with pi* = pi_old exp(A/eta) / Z and Z = E_pi_old[exp(A/eta)],
     and show that R(pi) = Z KL(pi* || pi) + (a constant). Which constant? Its minimiser is pi*,
     reached through the forward KL: a policy that leaves out a response pi* holds pays without
     bound (mass-covering).
  4. For contrast, f = x log x ("kl"): show that the exact objective
     sum_y pi_old(y) exp(a_y) f(x_y) is KL(pi || pi*) - log Z. Same minimiser, the other KL: the
     trust-region objective of Lemma 3.1 itself (mode-seeking). Why can the "rkl" form be trained
     from pi_old's samples without ever computing a ratio?

Then write the five functions below. Tensors are float64 (an answer computed in float32 passes).
Do not call lad_loss in weight_on_grad_log_pi: the check reads the truth off autograd on lad_loss,
so derive. The GPT chapter runs this method: python train_reasoning.py --methods lad-fixed
--divergence rkl.

Check your answer:  python -m pytest exercises/checks/test_ex13_weighted_likelihood.py
"""
import torch

from lad_loss import DIVERGENCES


def ratio_free_divergence() -> str:
    """The name in lad_loss.DIVERGENCES of the divergence whose weight w on grad log pi does not
    depend on the ratio (question 1)."""
    raise NotImplementedError("exercise 13: write ratio_free_divergence")


def weight_on_grad_log_pi(ratios: torch.Tensor, advantages: torch.Tensor, eta: float,
                          divergence: str) -> torch.Tensor:
    """w = ratio * (-f'(x)) for each sample: ratios [n], advantages [n] -> [n] (question 1).

    Minus the gradient of one sample's lad_loss with respect to its log pi. Compute log x first.
    """
    raise NotImplementedError("exercise 13: write weight_on_grad_log_pi")


def weighted_likelihood_loss(logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                             eta: float) -> torch.Tensor:
    """Reward-weighted regression's loss on a batch from pi_old: -mean_i exp(A_i/eta) logp_i.

    logp, logp_old, advantages: [batch], sequence level (one log pi per completion). logp_old is
    taken so that the call matches lad_loss's: does the loss need it (question 2)? Returns a scalar
    tensor that carries logp's gradient: the same gradient as lad_loss with your divergence.
    """
    raise NotImplementedError("exercise 13: write weighted_likelihood_loss")


def rwr_objective(pi: torch.Tensor, pi_old: torch.Tensor, advantages: torch.Tensor,
                  eta: float) -> torch.Tensor:
    """R(pi) = -sum_y pi_old(y) exp(A_y/eta) log pi(y), the exact expectation (question 3).

    pi, pi_old, advantages: [n], over every response; pi and pi_old strictly positive, sum to 1.
    Returns a scalar (a 0-dim tensor or a float).
    """
    raise NotImplementedError("exercise 13: write rwr_objective")


def forward_kl_form(pi_old: torch.Tensor, advantages: torch.Tensor,
                    eta: float) -> tuple[float, float]:
    """(scale, constant) such that R(pi) = scale * KL(pi* || pi) + constant for every policy pi
    (question 3). Neither depends on pi."""
    raise NotImplementedError("exercise 13: write forward_kl_form")

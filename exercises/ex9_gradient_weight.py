"""Exercise 9 (medium): LAD's gradient weight against GRPO's clipped advantage, derived and checked.

PPO and GRPO push a sampled response y along ratio * A * grad log pi (ratio = pi_theta(y) /
pi_old(y)) until the clip ends the push. lad_loss.py's lesson claims that LAD is a policy gradient
of the same form, with A replaced by a weight that depends on the ratio:

    GRPO:  ratio * A * grad log pi        (0 once clipped)
    LAD:   ratio * (-f'(x)) * grad log pi,      x = ratio / exp(A / eta)

Derive it, for Jensen-Shannon (f'(x) = 1/2 log(2x / (x + 1))) and KL (f'(x) = log x + 1). One
sample: u = log pi_theta(y) - log pi_old(y), so ratio = e^u and grad u = grad log pi; a = A / eta.
  1. LAD's loss is exp(a) f(exp(u - a)). Differentiate it in u and write the result as ratio times
     something; the weight is minus that something (a loss is minimised).
  2. GRPO's loss is -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A). For which ratios is the
     weight A, and for which 0? (A > 0 and A < 0 separately.)
  3. One update per batch: the ratio is 1. Show that LAD is then REINFORCE with the advantage
     -f'(exp(-A/eta)), for JS 1/2 (softplus(A/eta) - log 2).
  4. At which ratio is LAD's weight zero, for JS and for KL?
  5. Its limit as the ratio goes to infinity (the brake on an over-confident response)?

Then write the functions below for "js" and "kl". The check compares them with the weights that
autograd reads off lad_loss and grpo_loss (plots/gradient_weights.py), and runs them with autograd
unavailable: derive, do not differentiate. Return the input's dtype, float32 or float64
(torch.where with Python numbers returns float32; torch.full_like keeps the dtype); a float may be
a 0-d tensor.

Optional, after the lab: the same for "rkl", "jf", "tv" and "hd" (lad_loss.DIVERGENCES has their
f'). Until you write them, the stubs' NotImplementedError makes the check skip them.

Check your answer:  python -m pytest exercises/checks/test_ex9_gradient_weight.py
"""
import torch

from lad_loss import DIVERGENCES


def lad_weight(ratios: torch.Tensor, advantage: float, eta: float,
               divergence: str) -> torch.Tensor:
    """LAD's weight on ratio * grad log pi for each ratio [n] (question 1). Compute log x first."""
    if divergence in ("js", "kl"):
        raise NotImplementedError("exercise 9: write lad_weight")
    raise NotImplementedError(f"exercise 9, optional: lad_weight for {divergence}")


def grpo_weight(ratios: torch.Tensor, advantage: float, clip_eps: float) -> torch.Tensor:
    """GRPO's weight on ratio * grad log pi for each ratio [n] (question 2)."""
    raise NotImplementedError("exercise 9: write grpo_weight")


def js_weight_at_ratio_one(advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """LAD-JS's REINFORCE advantage at ratio 1 for each advantage [n] (question 3), in closed form.

    It must stay finite in float32 for |A / eta| up to 1000 (torch.nn.functional.softplus)."""
    raise NotImplementedError("exercise 9: write js_weight_at_ratio_one")


def stopping_ratio(advantage: float, eta: float, divergence: str) -> float | None:
    """The ratio at which LAD's weight is zero, or None if it is never zero (question 4)."""
    if divergence in ("js", "kl"):
        raise NotImplementedError("exercise 9: write stopping_ratio")
    raise NotImplementedError(f"exercise 9, optional: stopping_ratio for {divergence}")


def weight_when_over_confident(divergence: str) -> float:
    """The limit of LAD's weight as the ratio goes to infinity (question 5); float("-inf") if it
    decreases without bound. It does not depend on A or eta: why?"""
    if divergence in ("js", "kl"):
        raise NotImplementedError("exercise 9: write weight_when_over_confident")
    raise NotImplementedError(
        f"exercise 9, optional: weight_when_over_confident for {divergence}")

"""Exercise 9 (medium): LAD's gradient weight against GRPO's clipped advantage, derived and checked.

PPO and GRPO push each sampled response y along ratio * A * grad log pi, ratio = pi_theta(y) /
pi_old(y), and the clip ends the push once the ratio has moved clip_eps past 1 in the direction A
points. lad_loss.py's lesson claims that LAD is a policy gradient of the same form, with A replaced
by a weight -f'(x) that depends on the ratio:

    GRPO:  ratio * A * grad log pi        (0 once clipped)
    LAD:   ratio * (-f'(x)) * grad log pi,      x = ratio / exp(A / eta)

Derive that claim, then check it against autograd on the real losses.

On paper first, for Jensen-Shannon (the paper's choice) and KL (the familiar one). One sample,
sequence level: u = log pi_theta(y) - log pi_old(y) (so ratio = e^u) and a = A / eta. lad_loss
computes exp(a) * f(x) with x = exp(u - a), and grad u = grad log pi.
  1. Differentiate exp(a) f(exp(u - a)) with respect to u. Write the result as ratio times
     something. A loss is minimised, so the push (the weight on ratio * grad log pi) is minus that
     something.
  2. Do the same for GRPO's -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A). For which ratios is
     the weight A, and for which is it 0? (Treat A > 0 and A < 0 separately.)
  3. One update per sampled batch: pi_old is the model that just sampled, so the ratio is exactly 1
     when the gradient is taken. Then GRPO is REINFORCE with advantage A. Show that LAD is REINFORCE
     with the "advantage" -f'(exp(-A/eta)), and that for Jensen-Shannon,
     f'(x) = 1/2 log(2x / (x + 1)), it is 1/2 (softplus(A/eta) - log 2). How does it compare with
     A for a large positive A, and for a large negative one? (Not every run is at ratio 1: the
     bandit's lad-fixed keeps pi_old at pi_0, and its ratio grows to about 4.)
  4. Where does each push stop? Find the ratio at which LAD's weight is zero, for JS and for KL
     (f'(x) = log x + 1). Why do they differ?
  5. What happens to a response that has become over-confident (ratio -> infinity)? The limit of the
     weight tells you how hard LAD pulls it back: compare JS with KL.

Then write the functions below, for "js" and "kl". plots/gradient_weights.py reads the same weights
off autograd on lad_loss and grpo_loss (`gradient_weight(ratios, advantage, method)`); the check
compares your formulas with it, so derive them: the check runs your functions with autograd
unavailable, and an answer that reads a weight off autograd (on lad_loss, grpo_loss or
gradient_weight) fails. Tensors may be float32 or float64: return the input's dtype (torch.where
with Python numbers returns float32; torch.zeros_like and torch.full_like keep the dtype). The check
allows float32's precision; stopping_ratio and weight_when_over_confident may return a float or a
0-d tensor.

Optional, after the lab: questions 1, 4 and 5 for the paper's four other divergences, "rkl", "jf",
"tv" and "hd" (lad_loss.DIVERGENCES lists their f'). One of the six never stops pushing: which?
Until you do them, let lad_weight, stopping_ratio and weight_when_over_confident raise
NotImplementedError for those four (the stubs below do): the check then skips them.

Check your answer:  python -m pytest exercises/checks/test_ex9_gradient_weight.py
"""
import torch

from lad_loss import DIVERGENCES


def lad_weight(ratios: torch.Tensor, advantage: float, eta: float, divergence: str) -> torch.Tensor:
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
    raise NotImplementedError(f"exercise 9, optional: weight_when_over_confident for {divergence}")

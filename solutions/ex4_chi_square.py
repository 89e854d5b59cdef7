"""Solution to exercise 4: Pearson's chi-square, f(x) = (x - 1)^2, as a LAD divergence.

f(1) = 0, f'(x) = 2(x - 1) (so f'(1) = 0: at the optimum with Z = 1 every sample's gradient weight
-f'(x) is zero, like JS, JF, TV and HD), and f''(x) = 2 > 0: strictly convex, so Lemma 3.2's
minimiser is unique and LAD with chi-square learns the same target pi_old * exp(A/eta) / Z.

The log-space form. With d = u - a = log x,

    exp(a) * (exp(d) - 1)^2 = (exp(a/2) * expm1(d))^2.

  * expm1(d) computes exp(d) - 1 to full relative precision even when d is tiny: the subtraction of
    two nearly equal numbers, which in float32 loses about log10(1/|d|) digits, never happens.
  * Neither factor overflows spuriously. exp(a/2) is at most e^25 for |a| <= 50. expm1(d) overflows
    only for d > 88.7, and then the true value exp(a) * expm1(d)^2 ~ exp(a + 2d) > e^(-50 + 177) is
    far beyond float32 anyway. So the form is finite exactly where the true value is representable
    (up to the last rounding of the square).

Why no form can be finite on all of |u|, |a| <= 50: for large x the value is
exp(a) (x - 1)^2 ~ exp(a) x^2 = exp(2u - a). At u = 50, a = -50 that is e^150, while float32's
largest number is about e^88.7: the true answer does not exist in float32. The paper's six
generators grow at most like x times a logarithm, so their perspective exp(a) f(exp(u - a)) grows at
most like exp(u) or exp(a) times |u - a|: on the same square no more than e^50 * 100 ~ e^54.6 (KL at
u = 50, a = -50). Chi-square's quadratic growth doubles the exponent of u. The same growth is what
it is good for: its gradient weight -f'(x) = -2(x - 1) is unbounded, so it pushes down
over-confident responses (x >> 1) much harder than JS, whose weight there never goes below
-log(2)/2.
"""
import math

import torch

from lad_loss import DIVERGENCES, Divergence

LOG_FLOAT32_MAX = math.log(torch.finfo(torch.float32).max)  # about 88.72


def f(x: torch.Tensor) -> torch.Tensor:
    return (x - 1) ** 2


def f_prime(x: torch.Tensor) -> torch.Tensor:
    return 2 * (x - 1)


def weighted_f(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """exp(a) * (x - 1)^2 = (exp(a/2) * expm1(u - a))^2.

    It cannot be finite over all |u|, |a| <= 50 in float32 because the true value grows like
    exp(2u - a), up to e^150, and float32 stops at about e^88.7: where the answer is not a float32
    number, no rewriting can return it. This form is finite wherever the answer is one.
    """
    return (torch.exp(0.5 * a) * torch.expm1(u - a)) ** 2


def representable_in_float32(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    # log(exp(a) * (x - 1)^2) = a + 2 log|expm1(u - a)|; at x = 1 exactly the value is 0 (log =
    # -inf).
    log_value = a + 2 * torch.log(torch.expm1(u - a).abs())
    return log_value <= LOG_FLOAT32_MAX


def chi2_divergence() -> Divergence:
    return Divergence("chi2", f, f_prime, weighted_f, strictly_convex=True)


def register() -> None:
    DIVERGENCES["chi2"] = chi2_divergence()

"""Exercise 4 (medium): add the Pearson chi-square divergence to LAD.

lad_loss.py ships the paper's six f-divergences. Add a seventh, Pearson's chi-square,

    f(x) = (x - 1)^2,

and make `lad_loss(..., divergence="chi2")` and the bandit use it. A divergence is a
lad_loss.Divergence holding four things; read how the six built-in ones are written first:

  f(x), f_prime(x)  the generator and its derivative, as a reader would write them (for plots and
                    checks; they may overflow for large x).
  weighted_f(u, a)  what the loss actually computes: exp(a) * f(exp(u - a)), with u = logp -
  logp_old
                    and a = A / eta, written so that it neither overflows nor loses precision where
                    the true value is an ordinary float32 number. You must not form x = exp(u - a)
                    on its own: with |u|, |a| <= 50 it reaches e^100, beyond float32's e^88.7, long
                    before the product does. exp(u) and exp(a) (at most e^50 there) are fine, and
                    the six built-in divergences use them.
  strictly_convex   whether Lemma 3.2's minimiser is unique (exercise 3).

Two numerical traps in weighted_f, both worth a minute with pen and paper:
  * Cancellation. Near the optimum x is close to 1 and (x - 1) is the difference of two nearly equal
    numbers: in float32, exp(1e-5) - 1 keeps about two correct digits. torch.expm1(d) = exp(d) - 1
    computed accurately. Can you write exp(a) * (exp(u - a) - 1)^2 as the square of something that
    uses expm1 and at most exp(a / 2)?
  * Overflow. The other divergences stay finite in float32 for every |u|, |a| <= 50 (lad_loss's
    tests check it). Chi-square cannot, whatever you write: for large x the value grows like exp(2u
    - a). Work out where the true value is larger than float32's largest number (about 3.4e38 =
      e^88.7),
    write that as `representable_in_float32`, and say in weighted_f's docstring why no rewriting
    can help there. (Compare: x log x grows like exp(u) * (u - a), much more slowly.)

`register()` is written for you: it puts your divergence into lad_loss.DIVERGENCES, the dictionary
lad_loss looks divergences up in, so that every caller (bandit.train included) can use "chi2".

Check your answer:  python -m pytest exercises/checks/test_ex4_chi_square.py
"""
import torch

from lad_loss import DIVERGENCES, Divergence


def f(x: torch.Tensor) -> torch.Tensor:
    """The generator (x - 1)^2."""
    raise NotImplementedError("exercise 4: write f")


def f_prime(x: torch.Tensor) -> torch.Tensor:
    """Its derivative."""
    raise NotImplementedError("exercise 4: write f_prime")


def weighted_f(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """exp(a) * f(exp(u - a)), accurate near x = 1 and finite wherever the true value is.

    Replace this sentence with your explanation of why it cannot be finite over all |u|, |a| <= 50
    in float32.
    """
    raise NotImplementedError("exercise 4: write weighted_f (hint: torch.expm1)")


def representable_in_float32(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """True where the exact value of exp(a) * f(exp(u - a)) is at most float32's largest number.

    Decide in log space (float64 inputs): log of the value <= log(torch.finfo(torch.float32).max).
    """
    raise NotImplementedError("exercise 4: write representable_in_float32")


def chi2_divergence() -> Divergence:
    """The Divergence named "chi2", built from the functions above."""
    raise NotImplementedError("exercise 4: build the Divergence (is f strictly convex?)")


def register() -> None:
    """Make "chi2" available to lad_loss(divergence="chi2") and everything that calls it."""
    DIVERGENCES["chi2"] = chi2_divergence()

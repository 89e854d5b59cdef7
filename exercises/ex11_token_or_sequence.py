"""Exercise 11 (hard): the token-level and the sequence-level ratio, and the target each one has.

Lemma 3.2 is stated for one ratio per completion, pi_theta(y) / pi_old(y). A language model's
trainer usually takes one ratio per token instead, pi_theta(y_t | y_<t) / pi_old(y_t | y_<t), as
GRPO's clipped surrogate does, and lad_loss accepts both: [batch] summed log-probabilities for the
sequence form, [batch, tokens] for the token form (every token with its own ratio and the
completion's A). Is the minimiser the same? It is tempting to say that every token aims at the ratio
exp(A/eta), so that a completion's implicit target is exp(length * A / eta), "a stronger push". Find
out, on a policy small enough to enumerate: exercises/two_token.py's tabular two-token policy,
pi(y1, y2) = pi1(y1) pi2(y2 | y1).

The exact objective of each form, with samples from pi_old and a(y) = A(y) / eta:

    sequence:  sum_y pi_old(y) exp(a(y)) f(x(y)),          x(y) = pi(y) / pi_old(y) / exp(a(y))
    token:     sum_y pi_old(y) sum_t exp(a(y)) f(x_t(y)),
               x_t(y) = pi_t(y_t|y_<t) / pi_old_t(y_t|y_<t) / exp(a(y))

On paper first.
  1. Sequence form: this is Lemma 3.2 over the V * V completions. Its minimiser is pi*; write it.
  2. Token form, second token. For a fixed first token y1, only pi2(. | y1) enters the t = 2 terms,
     with the constraint sum_y2 pi_old2(y2|y1) r2(y2) = 1 (r2 = pi2 / pi_old2). Apply Lemma 3.2 to
     that one step: what is the minimising pi2(. | y1)? Is it pi*'s second step?
  3. Token form, first token. The t = 1 terms are sum_y1 pi_old1(y1) sum_y2 pi_old2(y2|y1) exp(a)
     f(r1(y1) exp(-a)), with r1 = pi1 / pi_old1 and sum_y1 pi_old1 r1 = 1. Differentiate in r1(y1)
     with a Lagrange multiplier: every y1 must satisfy  E_{y2 ~ pi_old2(.|y1)}[ f'(r1(y1)
     e^{-a(y1,y2)}) ] = mu. Solve it for KL, f'(x) = log x + 1, and for reverse KL, f'(x) =
     -1/x. Compare with pi*'s first step, pi*1(y1) proportional to pi_old1(y1)
     E_{pi_old2(.|y1)}[exp(a)]. Which one is pi*?
  4. The claim "exp(length * A / eta)": with two tokens it would be pi_old(y) exp(2 A(y) / eta) / Z.
     Compare it with what you derived.
  5. A 0/1 verifier, as in the GPT chapter: after a "safe" first token every second token is
     correct, after a "risky" one only some are. Which of the two does the token form favour,
     compared with pi*, for KL? Why (Jensen's inequality on the two first steps)? Guess for JS, then
     measure.

Then write the functions below. logits and old_logits are two_token policies' logit vectors [12];
advantages is [V, V] (row y1, column y2); return [V, V] distributions over completions. The check
passes float64: keep it in expected_lad_loss, whose minimum two_token.minimise finds to float64's
precision (in float32 it wanders off). The closed forms may be computed in float32; the check allows
float32's precision where it compares values.

Check your answer:  python -m pytest exercises/checks/test_ex11_token_or_sequence.py
"""
import torch

from exercises.two_token import V, minimise, sequence_logps, step_probabilities, token_logps
from lad_loss import lad_loss


def expected_lad_loss(logits, old_logits, advantages, eta: float, divergence: str,
                      ratio: str) -> torch.Tensor:
    """The exact objective above, a scalar: each completion's lad_loss weighted by pi_old(y).

    ratio="sequence": lad_loss on the [V * V] summed log-probabilities (one ratio per completion).
    ratio="token": lad_loss on the [V * V, 2] per-token log-probabilities with reduction="none",
    summed over the two tokens (A broadcast over them). pi_old(y) is a constant (no gradient flows
    into it).
    """
    raise NotImplementedError("exercise 11: write expected_lad_loss")


def sequence_target(old_logits, advantages, eta: float) -> torch.Tensor:
    """The sequence form's minimiser (question 1)."""
    raise NotImplementedError("exercise 11: write sequence_target")


def token_target(old_logits, advantages, eta: float, divergence: str) -> torch.Tensor:
    """The token form's minimiser in closed form, for divergence "kl" or "rkl" (questions 2 and 3);
    ValueError for any other."""
    raise NotImplementedError("exercise 11: write token_target")


def token_minimiser(old_logits, advantages, eta: float, divergence: str) -> torch.Tensor:
    """The token form's minimiser for any divergence, found numerically: two_token.minimise on your
    expected_lad_loss, started from old_logits."""
    raise NotImplementedError("exercise 11: write token_minimiser")


def token_form_reaches_pi_star() -> list[str]:
    """The names among "kl", "rkl", "jf", "hd", "js" whose token-form minimiser is pi* for every
    pi_old and A, sorted (question 3; measure the ones you cannot derive)."""
    raise NotImplementedError("exercise 11: write token_form_reaches_pi_star")


def length_claim_distance(old_logits, advantages, eta: float, divergence: str) -> float:
    """Question 4: the total variation between the token form's minimiser and pi_old exp(2A/eta) /
    Z."""
    raise NotImplementedError("exercise 11: write length_claim_distance")


def token_form_favours_the_safe_prefix(divergence: str) -> bool:
    """Question 5: on a 0/1 verifier, does the token form put more mass than pi* on the completions
    through the safe first token? For "kl", "rkl" and "js"."""
    raise NotImplementedError("exercise 11: write token_form_favours_the_safe_prefix")

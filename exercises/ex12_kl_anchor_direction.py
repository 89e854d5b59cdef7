"""Exercise 12 (hard): which way does a KL anchor pull a sequence, and where does it end?

The GPT chapter anchors the policy to the SFT model pi_ref with a penalty beta * KL, estimated on
the sampled completions and used as a loss. The objective the anchor is meant to serve is

    maximise  E_{y~pi}[A(y)] - beta * KL(pi || pi_ref),
    optimum   pi*(y) = pi_ref(y) exp(A(y)/beta) / Z,

Lemma 3.1's target with beta = eta. kl_penalty.py holds the two estimators the chapter runs:
`--kl-estimator k2` on the summed log-ratio of each completion, and `--kl-estimator k3` per token,
as verl's `low_var_kl` applies it. (TRL 1.16 by default, use_bias_correction_kl=True, multiplies
per-token k3 by the ratio pi/pi_old, which carries a gradient even where it equals 1; that product's
gradient follows KL(pi || pi_ref) at each step, not the KL(pi_ref || pi) of k3 alone: this exercise
is about k3 alone.) A penalty's value and its gradient need not point at the same divergence: the
samples are held fixed when the loss is differentiated (no gradient flows through the sampling).
Exercise 7 found where k3 leads on a bandit. Here the policy writes sequences,
exercises/two_token.py's tabular pi(y1, y2) = pi1(y1) pi2(y2 | y1), and the question is what "per
token" changes.

On paper first. Write d = log pi - log pi_ref (of a token, or of a whole completion).
  1. The gradient of each estimator as a loss is c * grad log pi for one sample. Find c for
     k2 = d^2 / 2 and for k3 = exp(-d) + d - 1.
  2. Sequence level (the penalty of the summed d): average c(y) grad log pi(y) over y ~ pi. Using
     E_pi[grad log pi] = 0, whose gradient is it, k2's and k3's: KL(pi || pi_ref) or KL(pi_ref ||
     pi) over whole completions?
  3. Per token (the sum over t of the penalty of each token's own d_t): pi(y) grad log pi(y) sums
     both tokens' scores, but each token's weight c_t now sees only its own d_t. The chain rule
     writes the KL over completions as KL(pi1 || ref1) + sum_y1 pi1(y1) KL(pi2(.|y1) || ref2(.|y1)).
     Which part of its gradient does the per-token sum produce, which part does it miss, and what
     does that mean for the first token?
  4. Train on-policy with the exact expectation: loss = sum_y pi(y) [-A(y) log pi(y) + beta
     penalty(y)] with pi(y) detached (REINFORCE plus the anchor). Derive each end point, where the
     expected gradient is zero:
       * sequence level: one Lagrange multiplier over the V * V completions (exercise 7 did it over
         arms). Which one is Lemma 3.1's pi*?
       * per token: backward induction. The second token's gradient involves only pi2(. | y1): solve
         that one-step problem for each y1 first. Then the first token's, with the second step at
         its end point: which advantage does the first token see? Compare the first step of k2's
         per-token end point with pi*'s, pi*1(y1) proportional to pi_ref1(y1)
         E_{ref2(.|y1)}[exp(A(y1, .) / beta)].
     Which of the four reaches pi*?

Then write the functions below. logits and ref_logits are two_token logit vectors [12]; advantages
is [V, V]; distributions over completions are [V, V]. Inputs may be float32 or float64. You may
import your exercise 7 (`from exercises.ex7_keeping_the_prior import k3_penalty_optimum`) for the k3
end points.

Check your answer:  python -m pytest exercises/checks/test_ex12_kl_anchor_direction.py   (trains
four short runs)
"""
import torch

from exercises.two_token import V, sequence_logps, step_probabilities, token_logps
from kl_penalty import kl_penalty

# The divergences a penalty's expected gradient might follow (question 3 names the per-step ones).
FOLLOWED = (
    "KL(pi || pi_ref) over completions",
    "KL(pi_ref || pi) over completions",
    "per-step KL(pi || pi_ref) at the sampled prefixes",
    "per-step KL(pi_ref || pi) at the sampled prefixes",
)


def gradient_weight(estimator: str, logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """c, elementwise, such that the gradient of kl_penalty(logp, logp_ref, estimator) is c * grad
    logp (question 1). estimator: "k2" or "k3"."""
    raise NotImplementedError("exercise 12: write gradient_weight")


def expected_penalty_gradient(estimator: str, level: str, logits, ref_logits) -> torch.Tensor:
    """The expected gradient [12] in the logits of the penalty used as a loss on samples y ~ pi: the
    sum over completions of pi(y) times the gradient of its penalty, with pi(y) held fixed. level:
    "sequence" (the penalty of the summed log-probabilities) or "token" (each token's penalty,
    summed). Build it from your gradient_weight and the scores grad log pi (autograd on two_token's
    log-probs)."""
    raise NotImplementedError("exercise 12: write expected_penalty_gradient")


def followed_divergence(estimator: str, level: str) -> str:
    """The entry of FOLLOWED whose gradient the expected gradient is (questions 2 and 3)."""
    raise NotImplementedError("exercise 12: write followed_divergence")


def end_point(estimator: str, level: str, ref_logits, advantages, beta: float) -> torch.Tensor:
    """Where on-policy training with this anchor ends, [V, V] (question 4), from the closed
    forms."""
    raise NotImplementedError("exercise 12: write end_point")


def train_exact(estimator: str, level: str, ref_logits, advantages, beta: float, steps: int = 400,
                lr: float = 0.1) -> torch.Tensor:
    """Adam from the logits ref_logits on sum_y pi(y) [-A(y) log pi(y) + beta penalty(y)], pi(y)
    detached, the penalty kl_penalty(..., estimator) of the summed log-probabilities (level
    "sequence") or of each token's, summed over the two tokens (level "token"). Returns the final
    policy [V, V]."""
    raise NotImplementedError("exercise 12: write train_exact")


def reaches_pi_star(estimator: str, level: str) -> bool:
    """Does training with this anchor end at pi* = pi_ref exp(A/beta) / Z (question 4)?"""
    raise NotImplementedError("exercise 12: write reaches_pi_star")

"""Solution to exercise 12: on sequences, only k2 on the summed log-ratio ends at pi*.

1. Weights. With d = logp - logp_ref and grad d = grad logp (the reference is fixed):
   k2 = d^2/2 gives c = d; k3 = exp(-d) + d - 1 gives c = 1 - exp(-d) = 1 - pi_ref/pi.

2. Sequence level, samples y ~ pi held fixed:
     k2: E_pi[(log pi - log pi_ref) grad log pi] = grad sum_y pi (log pi - log pi_ref) - E_pi[grad
     log pi]
         = grad KL(pi || pi_ref), the divergence of the objective E[A] - beta KL(pi || pi_ref).
     k3: E_pi[(1 - pi_ref/pi) grad log pi] = -sum_y pi_ref grad log pi = grad KL(pi_ref || pi).
   k3's *value* is an unbiased estimate of KL(pi || pi_ref); its gradient follows the other
   direction. TRL 1.16's default (use_bias_correction_kl=True) multiplies k3 by the ratio pi/pi_old,
   whose value is 1 on-policy but whose gradient is ratio * grad log pi: the product's weight is
   then c + k3 = log(pi/pi_ref) (pi_ref/pi cancels), k2's weight, and its gradient follows
   KL(pi || pi_ref) again. verl's low_var_kl is k3 alone.

3. Per token. pi(y) grad log pi(y) = pi(y) (grad log pi1(y1) + grad log pi2(y2|y1)), and token t's
   weight is c(d_t). Summing over y2 first, the t = 1 term gives E_{pi1}[c(d_1) grad log pi1], the
   one-step gradient of KL(pi1 || ref1) (k2) or KL(ref1 || pi1) (k3); the t = 2 term gives, for each
   y1, pi1(y1) times the one-step gradient at that prefix. So k2 per token follows
   KL(pi1 || ref1) + sum_y1 pi1(y1) KL(pi2(.|y1) || ref2(.|y1)) with pi1(y1) held fixed, and k3 the
   same with the arguments swapped: "per-step KL at the sampled prefixes". The chain rule writes the
   whole-completion KL(pi || pi_ref) as exactly that sum; what the per-token gradient misses is the
   derivative of the weights pi1(y1), sum_y1 grad pi1(y1) KL(pi2(.|y1) || ref2(.|y1)): the first
   token is never charged for the divergence its continuations have. (Nor is the k2 per-token loss
   the value of any KL: the chain rule's exact sum needs pi1's gradient.)

4. End points of sum_y pi(y)[-A(y) log pi(y) + beta penalty(y)] (pi detached):
     k2, sequence: A(y) - beta log(pi/pi_ref)(y) constant, pi = pi_ref exp(A/beta) / Z = pi*.
     k3, sequence: A(y) + beta pi_ref/pi = mu, pi = beta pi_ref / (mu - A): exercise 7's optimum
     over
       the V * V completions.
     per token: at the second step, for each y1 the same two results over y2 with A(y1, .); at the
       first, with the advantage Q(y1) = E_{pi2(.|y1)}[A] of that second step (token 2's penalty
       does not depend on the first token's logits, and the prefix weights are fixed). k2 per token
       then tilts the first token by exp(Q/beta), where pi* tilts it by exp(Q/beta - KL(pi2(.|y1) ||
       ref2)): a first token whose good continuations lie far from pi_ref is over-valued.
   Only k2 on the summed log-ratio reaches pi*. This is why the GPT chapter's `--kl-estimator k2`
   (sequence level) is the anchor that, beside GRPO's E[A] at beta = eta, is aimed at pi* (beside
   LAD's term it aims at pi_sft exp(w(A)/beta) / Z instead: reasoning/methods.py), and
   `--kl-estimator k3` (per token, verl's low_var_kl) is a named alternative that ends elsewhere:
   measured on the check's random problem at beta = 0.5, the four end points lie at TV 0 (k2,
   sequence), 0.066 (k2, token), 0.089 (k3, sequence) and 0.101 (k3, token) from pi*.
"""
import torch

from exercises.ex12_kl_anchor_direction import FOLLOWED  # the names the exercise gives
from exercises.two_token import sequence_logps, step_probabilities, token_logps
from kl_penalty import kl_penalty
from solutions.ex7_keeping_the_prior import k3_penalty_optimum


def gradient_weight(estimator: str, logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    d = logp - logp_ref
    return d if estimator == "k2" else -torch.expm1(-d)  # 1 - exp(-d), accurate near d = 0


def _levels(level, logits, ref_logits):
    """Log-probabilities [V*V, T] of the policy and the reference: T = 1 (the sum) or 2 (the
    tokens)."""
    if level == "sequence":
        return sequence_logps(logits).reshape(-1, 1), sequence_logps(ref_logits).reshape(-1, 1)
    return token_logps(logits).reshape(-1, 2), token_logps(ref_logits).reshape(-1, 2)


def expected_penalty_gradient(estimator: str, level: str, logits, ref_logits) -> torch.Tensor:
    logits = logits.detach().clone().requires_grad_(True)
    logp, logp_ref = _levels(level, logits, ref_logits)
    pi = sequence_logps(logits).reshape(-1).exp().detach()  # the samples' probabilities, held fixed
    c = gradient_weight(estimator, logp, logp_ref).detach()
    # sum_y pi(y) sum_t c_t(y) grad log pi_t(y): autograd gives the scores, the weights are
    # constants.
    (grad,) = torch.autograd.grad((pi[:, None] * c * logp).sum(), logits)
    return grad


def followed_divergence(estimator: str, level: str) -> str:
    direction = 0 if estimator == "k2" else 1
    return FOLLOWED[direction if level == "sequence" else 2 + direction]


def _one_step_end_point(estimator, ref, advantages, beta):
    """The end point over one set of outcomes [n]: pi_ref exp(A/beta)/Z (k2) or exercise 7's
    (k3)."""
    if estimator == "k2":
        return torch.softmax(torch.log(ref) + advantages / beta, dim=-1)
    return k3_penalty_optimum(ref, advantages, beta)


def end_point(estimator: str, level: str, ref_logits, advantages, beta: float) -> torch.Tensor:
    if level == "sequence":
        ref = sequence_logps(ref_logits).exp().reshape(-1)
        return _one_step_end_point(estimator, ref, advantages.reshape(-1),
                                   beta).reshape(advantages.shape)
    ref1, ref2 = step_probabilities(ref_logits)
    second = torch.stack([_one_step_end_point(estimator, ref2[y1], advantages[y1],
                                              beta) for y1 in range(len(ref1))])
    q = (second * advantages).sum(-1)  # the first token's advantage: the mean under the second step
    first = _one_step_end_point(estimator, ref1, q, beta)
    return first[:, None] * second


def train_exact(estimator: str, level: str, ref_logits, advantages, beta: float, steps: int = 400,
                lr: float = 0.1) -> torch.Tensor:
    logits = ref_logits.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        logp_seq = sequence_logps(logits).reshape(-1)
        pi = logp_seq.exp().detach()  # on-policy, samples held fixed
        logp, logp_ref = _levels(level, logits, ref_logits)
        penalty = kl_penalty(logp, logp_ref, estimator).sum(-1)
        loss = (pi * (-advantages.reshape(-1) * logp_seq + beta * penalty)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return sequence_logps(logits.detach()).exp()


def reaches_pi_star(estimator: str, level: str) -> bool:
    return estimator == "k2" and level == "sequence"

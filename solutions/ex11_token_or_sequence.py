"""Solution to exercise 11: the two ratios agree on the last token and differ on the ones before it.

1. Sequence form. Over the V * V completions this is Lemma 3.2 itself: the minimiser is
   pi*(y) = pi_old(y) exp(A(y)/eta) / Z. Its steps: pi*1(y1) is proportional to
   pi_old1(y1) E_{pi_old2(.|y1)}[exp(a)], the soft value of the first token, and
   pi*2(y2|y1) = pi_old2(y2|y1) exp(a(y1, y2)) / Z2(y1).

2. Token form, last token. For each y1 the t = 2 terms are Lemma 3.2 over the second token alone,
   with the completion's advantage: pi2(y2|y1) = pi_old2(y2|y1) exp(a(y1, y2)) / Z2(y1). That is
   pi*'s second step exactly: the last token is where the two forms agree.

3. Token form, first token. d/dr1(y1) of the t = 1 terms is pi_old1(y1) E_{y2}[f'(r1 e^{-a})]
   (the weight exp(a) cancels the chain rule's e^{-a}, as in exercise 3), so every y1 satisfies
   E_{y2 ~ pi_old2(.|y1)}[f'(r1(y1) e^{-a(y1, y2)})] = mu. The expectation over the continuation
   is taken *inside* f', and what comes out depends on f:
     * KL: E[log r1 - a + 1] = mu, so log r1 = E[a] + const: pi1(y1) is proportional to
       pi_old1(y1) exp(E_{pi_old2}[A | y1] / eta), the *mean* advantage of the continuations.
     * reverse KL: E[-e^{a} / r1] = mu, so r1 is proportional to E[exp(a)]: pi1 = pi*1. With the
       last step shared, the token form of reverse KL has exactly pi* as its minimiser.
     * JS, JF, HD: no closed form; their minimisers are neither pi* nor KL's (measured here on the
       check's random problem: TV to pi* 0.10 for JS, 0.08 for HD, 0.06 for JF, 0.17 for KL).
   By Jensen, exp(E[a]) <= E[exp(a)]: compared with pi*, token-form KL undervalues a first token
   whose continuations are uncertain.

4. The claim exp(length * A / eta) is not the token form's target. Each step is normalised on its
   own: a step at which every continuation has the same A is not tilted at all (exp(a) / Z2 =
   pi_old2), so no completion's ratio can reach exp(2a) in general. On the check's random problem
   the token form's minimiser is 0.23 (JF) to 0.33 (KL) away from pi_old exp(2A/eta) / Z in total
   variation, further than from pi* itself (0.06 to 0.17), and pi* is 0.17 away from it.

5. 0/1 verifier. After the safe first token every continuation has A+; after the risky one only some
   do, so its mean advantage is much lower than its soft value log E[exp(A/eta)], which the rare
   correct continuation dominates. Token-form KL, and JS with it, move the mass of the correct
   answers behind the risky prefix to the safe one. Measured on the check's problem, where pi* gives
   the two prefixes' correct answers equal mass (0.50 each): the token form leaves 0.018 behind the
   risky prefix with KL, 0.031 with JS, 0.30 with Hellinger, and P(correct) is 0.9996 in every case:
   only the shape among the correct answers moves. Reverse KL's token form is pi* and favours
   neither. For a language model this means the token form does not keep pi_sft's shape among
   equally correct answers: it prefers the answers whose first characters rarely lead to a wrong one
   under pi_old. Whether that favours longer or shorter answers depends on where the risky
   characters are, not on the length as such.
"""
import torch

from exercises.two_token import minimise, sequence_logps, step_probabilities, token_logps
from lad_loss import lad_loss


def expected_lad_loss(logits, old_logits, advantages, eta: float, divergence: str,
                      ratio: str) -> torch.Tensor:
    pi_old = sequence_logps(old_logits).exp().reshape(-1)  # the samples' probabilities: constants
    a = advantages.reshape(-1)
    if ratio == "sequence":
        per_completion = lad_loss(sequence_logps(logits).reshape(-1),
                                  sequence_logps(old_logits).reshape(-1), a,
                                  eta=eta, divergence=divergence, reduction="none")
    elif ratio == "token":
        per_token = lad_loss(token_logps(logits).reshape(-1, 2),
                             token_logps(old_logits).reshape(-1, 2), a,
                             eta=eta, divergence=divergence, reduction="none")
        per_completion = per_token.sum(-1)
    else:
        raise ValueError(f"ratio must be 'sequence' or 'token', got {ratio!r}")
    return (pi_old.detach() * per_completion).sum()


def sequence_target(old_logits, advantages, eta: float) -> torch.Tensor:
    return torch.softmax((sequence_logps(old_logits) + advantages / eta).reshape(-1),
                         dim=-1).reshape(advantages.shape)


def token_target(old_logits, advantages, eta: float, divergence: str) -> torch.Tensor:
    pi_old1, pi_old2 = step_probabilities(old_logits)
    a = advantages / eta
    # Lemma 3.2 per prefix: pi*'s second step
    second = torch.softmax(torch.log(pi_old2) + a, dim=-1)
    if divergence == "kl":
        value = (pi_old2 * a).sum(-1)  # E_{pi_old2}[A | y1] / eta: the mean
    elif divergence == "rkl":
        # log E_{pi_old2}[exp(A/eta) | y1]: the soft value
        value = torch.logsumexp(torch.log(pi_old2) + a, dim=-1)
    else:
        raise ValueError(f"closed forms are derived for 'kl' and 'rkl' only, got {divergence!r}")
    first = torch.softmax(torch.log(pi_old1) + value, dim=-1)
    return first[:, None] * second


def token_minimiser(old_logits, advantages, eta: float, divergence: str) -> torch.Tensor:
    logits = minimise(lambda z: expected_lad_loss(z, old_logits, advantages, eta, divergence,
                                                  "token"), old_logits)
    return sequence_logps(logits).exp()


def token_form_reaches_pi_star() -> list[str]:
    return ["rkl"]  # derived for rkl and kl; jf, hd, js measured (question 3)


def length_claim_distance(old_logits, advantages, eta: float, divergence: str) -> float:
    claim = torch.softmax((sequence_logps(old_logits) + 2 * advantages / eta).reshape(-1), dim=-1)
    return 0.5 * float((token_minimiser(old_logits, advantages, eta,
                                        divergence).reshape(-1) - claim).abs().sum())


def token_form_favours_the_safe_prefix(divergence: str) -> bool:
    return {"kl": True, "js": True, "rkl": False}[divergence]

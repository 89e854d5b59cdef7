"""Solution to exercise 10: a refreshed pi_old compounds the target,
pi_k = pi_0 exp(k A / eta) / Z_k.

1. Compounding. The first period ends at Lemma 3.1's target of pi_old = pi_0:
   pi_1 = pi_0 exp(A/eta) / Z_1. The second starts from pi_old = pi_1 and ends at
   pi_2 = pi_1 exp(A/eta) / Z = pi_0 exp(2A/eta) / Z_2, and by induction
   pi_k = pi_0 exp(k A/eta) / Z_k: the target of pi_0 at the temperature eta / k. The prior
   enters once; only the tilt compounds. As k grows this is exercise 2's eta -> 0 limit: all the
   mass on the best responses, shared in pi_0's proportions. So LAD with a refreshed pi_old heads
   for the same end point as GRPO when the best response is unique; it only takes a path that stays
   proportional to pi_0 exp(k A / eta) on the way (in the bandit's pi-old ablation, after 4000
   sampled iterations, max arm 0.985 against GRPO's 0.999).

2. Ties. exp(k A/eta) is the same factor for two responses with equal advantage, so their ratio is
   pi_0's for every k, and in the limit too.

3. The GPT chapter. Every correct answer is multiplied by exp(k A+/eta), every wrong one by
   exp(k A-/eta), so

       P_k(correct) = p e^{k A+/eta} / (p e^{k A+/eta} + (1 - p) e^{k A-/eta}),

   the odds multiplied by exp(k (A+ - A-) / eta) = exp(k / (eta sqrt(p (1 - p)))) >= e^{2k/eta}.
   From the SFT policy's p = 0.29 at 1/eta = 4, one exact period already gives 0.9996 (the
   GPT chapter's pi*, whose P(correct) rounds to 1.000). Among the correct answers the shape is
   pi_sft's, for every k. So compounding is why LAD with a refreshed pi_old has no end point short
   of "all the mass on the correct answers", like GRPO; it does not explain the collapse among
   equally correct answers that the GPT runs show: the exact path keeps their proportions.

4. One step per refresh. Then the policy follows the gradient, not the sequence of targets. At
   ratio 1 every response y carries the weight w_y = -f'(exp(-A_y/eta)) (exercise 9), and one plain
   gradient step changes the softmax logits by

       dz_j = lr * pi_j (w_j - E_pi[w]),

   since d/dz_j of E_pi[w log pi] at fixed w is pi_j (w_j - E_pi[w]). Two responses with equal
   advantage have equal w, so dz_0 - dz_1 = lr (pi_0 - pi_1)(w - E_pi[w]): while they are better
   than average, the likelier one gains more log-probability, step after step. The ratio grows (rich
   get richer): measured, 6 becomes about 230 after 300 SGD steps at lr 0.5 on the check's six
   responses. Adam divides each logit's step by that logit's own running gradient scale. Here
   coordinate 0's gradient is (pi_0 / pi_1) times coordinate 1's at every step, so their Adam steps
   are equal (Adam is invariant to a constant rescaling of one coordinate's gradients, up to its
   eps), and the ratio stays at 6: measured, 6.000. Neither statement carries over to a network,
   whose parameters are shared by all the answers. What carries over: with one step per refresh,
   whether equally good answers keep their proportions is decided by the geometry of the update, not
   by LAD's target.
"""
import math

import torch

import bandit


def compounded_target(pi_0, advantages, eta: float, k: int) -> torch.Tensor:
    # pi_0 exp(k A / eta) / Z_k is Lemma 3.1's target of pi_0 at the temperature eta / k.
    return torch.softmax(torch.log(pi_0) + k * advantages / eta, dim=-1)


def _lad_step(logits, optimizer, pi_old, advantages, eta):
    """One step of LAD with the exact expectation over the responses, pi_old fixed for the step."""
    loss = bandit.step_loss("lad", logits, pi_old, advantages, None, bandit.Settings(eta=eta))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train_with_refreshes(pi_0, advantages, eta: float, refreshes: int,
                         steps_per_refresh: int = 300, lr: float = 0.05) -> torch.Tensor:
    logits = torch.log(pi_0).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    policies = [pi_0.clone()]
    for _ in range(refreshes):
        pi_old = torch.softmax(logits.detach(), dim=-1)  # the refresh: the policy samples next
        for _ in range(steps_per_refresh):
            _lad_step(logits, optimizer, pi_old, advantages, eta)
        policies.append(torch.softmax(logits.detach(), dim=-1))
    return torch.stack(policies)


def correct_mass_after(p: float, eta: float, k: int) -> float:
    a_plus, a_minus = math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))
    # In log space: the logit of P(correct) is log-odds + k (A+ - A-) / eta.
    log_odds = math.log(p) - math.log(1 - p) + k * (a_plus - a_minus) / eta
    return float(torch.sigmoid(torch.tensor(log_odds, dtype=torch.float64)))


def tie_ratio_with_one_step_per_refresh(pi_0, advantages, eta: float, first: int, second: int,
                                        optimizer: str, steps: int = 300) -> float:
    logits = torch.log(pi_0).clone().requires_grad_(True)
    make = {"sgd": lambda: torch.optim.SGD([logits], lr=0.5),
            "adam": lambda: torch.optim.Adam([logits], lr=0.05)}
    opt = make[optimizer]()
    for _ in range(steps):
        pi_old = torch.softmax(logits.detach(), dim=-1)  # refreshed every step
        _lad_step(logits, opt, pi_old, advantages, eta)
    pi = torch.softmax(logits.detach(), dim=-1)
    return float(pi[first] / pi[second])

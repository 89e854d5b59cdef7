"""Solution to exercise 9: LAD's gradient weight -f'(x) on ratio * grad log pi, against GRPO's
clipped A.

1. LAD. With u = log ratio and a = A / eta, the loss of one sample is exp(a) f(exp(u - a)). Its
   derivative in u is

       exp(a) f'(x) exp(u - a) = f'(x) exp(u) = ratio * f'(x),

   because exp(a) * x = exp(u): the target weight exp(a) and the 1/exp(a) inside x cancel. With
   grad u = grad log pi, the loss's gradient is ratio * f'(x) * grad log pi; descending it pushes
   the response along ratio * (-f'(x)) * grad log pi. The weight is -f'(x), evaluated at the ratio
   measured against its own target: x = ratio / exp(A/eta).

2. GRPO. -min(ratio A, clip(ratio) A) has the derivative -ratio A where the unclipped term is the
   smaller one, and 0 where the clipped constant is. For A > 0 the clipped term is smaller once
   ratio > 1 + eps; for A < 0 once ratio < 1 - eps. So the weight is A, except that it drops to 0
   beyond the clip *in the direction A pushes*. A response with A > 0 whose ratio fell below 1 - eps
   is still pushed up, and one with A < 0 whose ratio rose above 1 + eps is still pushed down: the
   clip is one-sided, it never stops a push back towards ratio 1.

3. Ratio 1. x = exp(-A/eta), so LAD is REINFORCE with the advantage -f'(exp(-A/eta)). For JS,

       -f'(x) = -1/2 log(2x / (x + 1)) = 1/2 [log(1 + x) - log x - log 2]
              = 1/2 [softplus(-a) + a - log 2] = 1/2 [softplus(a) - log 2],

   using log(1 + e^-a) + a = log(e^a + 1). For a large positive A it is about A / (2 eta): twice as
   steep as A itself at the paper's 1/eta = 4. For a large negative A it flattens at -log(2)/2 =
   -0.35: bad responses are pushed down gently, however bad. It is zero at A = 0 and increasing: the
   same ordering as A, with a different shape. With one update per batch the clip never acts, so
   GRPO and LAD are then two REINFORCE estimators with differently shaped advantages, nothing more;
   what makes LAD different (the weight falling as the ratio grows) only acts when the ratio is not
   1, i.e. with several optimiser steps per sampled batch.

4. Where the push stops: -f'(x) = 0. JS, HD, JF and TV are normalised with f'(1) = 0, so the push
   stops at x = 1, the ratio exp(A/eta) (for TV the weight jumps from +1/2 to -1/2 there). KL's
   f'(x) = log x + 1 is zero at x = 1/e, the ratio exp(A/eta - 1). Reverse KL's f'(x) = -1/x is
   negative for every x: its weight 1/x never reaches zero, and it pushes every sample up, less and
   less. (These are the unnormalised targets: at the exact optimum every x equals 1/Z, exercise 3,
   which is where the expected push, not each sample's, vanishes.) GRPO's push stops at ratio 1 +
   eps for A > 0 and 1 - eps for A < 0, whatever the advantage: at the paper's 1/eta = 4, A = +0.5
   is pushed by LAD until the ratio reaches e^2 = 7.4, by GRPO until 1.2.

5. Over-confident (ratio -> infinity, so x -> infinity whatever A and eta: the limit cannot depend
   on them). JS: -1/2 log(2x/(x+1)) -> -log(2)/2, a bounded brake. HD: -(1 - 1/sqrt(x)) -> -1. TV:
   -1/2. KL: -(log x + 1) and JF: -(log x + 1 - 1/x) decrease without bound: the further past its
   target, the harder the pull back. Reverse KL: 1/x -> 0, no brake at all. GRPO with A > 0 has
   weight 0 there (the clip), and with A < 0 keeps pushing down with A.
"""
import torch
import torch.nn.functional as F

from lad_loss import DIVERGENCES

LOG_2 = 0.6931471805599453
# The x at which each generator's f' is zero (question 4); reverse KL has none.
ZERO_OF_F_PRIME = {"js": 1.0, "hd": 1.0, "jf": 1.0, "tv": 1.0, "kl": torch.e ** -1, "rkl": None}
# lim_{x -> infinity} -f'(x) (question 5).
OVER_CONFIDENT = {"js": -LOG_2 / 2, "hd": -1.0, "tv": -0.5, "kl": float("-inf"),
                  "jf": float("-inf"), "rkl": 0.0}


def lad_weight(ratios: torch.Tensor, advantage: float, eta: float, divergence: str) -> torch.Tensor:
    # x = ratio / exp(A/eta), never formed from a huge ratio
    log_x = torch.log(ratios) - advantage / eta
    return -DIVERGENCES[divergence].f_prime(torch.exp(log_x))


def grpo_weight(ratios: torch.Tensor, advantage: float, clip_eps: float) -> torch.Tensor:
    # The clip ends the push only past 1 + eps for A > 0, only below 1 - eps for A < 0.
    clipped = ratios > 1 + clip_eps if advantage > 0 else ratios < 1 - clip_eps
    return torch.where(clipped, torch.zeros_like(ratios), torch.full_like(ratios, advantage))


def js_weight_at_ratio_one(advantages: torch.Tensor, eta: float) -> torch.Tensor:
    # softplus(a) = log(1 + e^a), without overflow
    return 0.5 * (F.softplus(advantages / eta) - LOG_2)


def stopping_ratio(advantage: float, eta: float, divergence: str) -> float | None:
    x = ZERO_OF_F_PRIME[divergence]
    a = torch.tensor(advantage / eta, dtype=torch.float64)
    return None if x is None else float(x * torch.exp(a))


def weight_when_over_confident(divergence: str) -> float:
    return OVER_CONFIDENT[divergence]

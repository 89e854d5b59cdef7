"""Solution to exercise 13: with f = -log x, LAD at a fixed pi_old is weighted maximum likelihood.

1. The weight on grad log pi. One sample's loss is exp(a) f(exp(u - a)), u = log ratio. Its
   derivative in u is exp(a) f'(x) exp(u - a) = ratio * f'(x) (exercise 9), so the push on
   grad log pi is w = ratio * (-f'(x)). With ratio = x exp(a):

       kl    f' = log x + 1             w = -ratio (log x + 1)
       rkl   f' = -1/x                  w = ratio / x = exp(A/eta)
       jf    f' = log x + 1 - 1/x       w = -ratio (log x + 1) + exp(A/eta)
       tv    f' = sign(x - 1) / 2       w = -ratio sign(x - 1) / 2
       hd    f' = 1 - 1/sqrt(x)         w = -ratio + sqrt(ratio exp(A/eta))
       js    f' = 1/2 log(2x/(x + 1))   w = ratio/2 (log(1 + 1/x) - log 2)

   Only reverse KL's w leaves the ratio out. In general w = exp(a) x (-f'(x)) is free of the ratio
   at every A exactly when x f'(x) is a constant -c, i.e. f = -c log x (+ a constant, which the
   gradient does not see), and then w = c exp(A/eta). Adding b (x - 1) to f, which leaves the
   f-divergence unchanged, puts -b ratio into w: the per-sample identity holds for -c log x only.
   At ratio 1 every divergence's w is -f'(exp(-A/eta)), a function of A alone; what singles out
   reverse KL is that its w stays there however far the ratio goes.

2. With log x = log pi - log pi_old - a, reverse KL's per-sample value is

       exp(a) (-log x) = -exp(A/eta) log pi(y) + exp(A/eta) (log pi_old(y) + A/eta),

   and the second term holds no theta. Minimising lad_loss("rkl") on samples from a frozen pi_old is
   minimising -mean exp(A/eta) log pi over those samples: maximum likelihood on pi_old's samples,
   each weighted by exp(A/eta). That is reward-weighted regression (Peters & Schaal 2007), the
   family of AWR (Peng et al. 2019). log pi_old enters only the constant, so the weighted likelihood
   needs pi_old's samples, never their log-probabilities and never a ratio.

3. The exact objective. pi_old exp(A/eta) = Z pi*, so

       R(pi) = -Z sum_y pi*(y) log pi(y)
             = Z sum_y pi*(y) log(pi*(y) / pi(y)) - Z sum_y pi*(y) log pi*(y)
             = Z KL(pi* || pi) + Z H(pi*),

   the cross-entropy of pi against pi*, scaled by Z (pi_old exp(A/eta) holds mass Z, not 1). The
   minimiser is pi*, and a policy with pi(y) -> 0 where pi*(y) > 0 pays -log pi(y) without bound:
   the forward KL covers every response pi* holds. lad_loss's own exact objective with "rkl" adds
   sum_y pi_old exp(a)(log pi_old + a) = Z sum_y pi* (log pi* + log Z) = -Z H(pi*) + Z log Z, so it
   is Z KL(pi* || pi) + Z log Z: the same gradient, another constant.

4. f = x log x. exp(a) x = pi / pi_old, so the exact objective is

       sum_y pi_old(y) (pi(y)/pi_old(y)) log x_y = sum_y pi(y) (log pi(y) - log pi_old(y) - a_y)
                                              = sum_y pi(y) log(pi(y) / (Z pi*(y)))
                                              = KL(pi || pi*) - log Z,

   which is -(E_pi[A]/eta - KL(pi || pi_old)), Lemma 3.1's trust-region objective: the same
   minimiser pi*, reached through the reverse, mode-seeking KL. Its per-sample weight
   -ratio (log x + 1) needs the ratio; reverse KL's does not, which is why "rkl" trained on a
   frozen pi_old's samples is plain weighted likelihood. On a network with shared weights the two
   follow different paths to the same optimum.
"""
import torch

from lad_loss import DIVERGENCES


def ratio_free_divergence() -> str:
    return "rkl"


def weight_on_grad_log_pi(ratios: torch.Tensor, advantages: torch.Tensor, eta: float,
                          divergence: str) -> torch.Tensor:
    log_x = torch.log(ratios) - advantages / eta  # x = ratio / exp(A/eta), never formed via exp(a)
    return -ratios * DIVERGENCES[divergence].f_prime(torch.exp(log_x))


def weighted_likelihood_loss(logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                             eta: float) -> torch.Tensor:
    # logp_old is not needed: it enters lad_loss("rkl") only through a term with no theta in it.
    return -(torch.exp(advantages.detach() / eta) * logp).mean()


def rwr_objective(pi: torch.Tensor, pi_old: torch.Tensor, advantages: torch.Tensor,
                  eta: float) -> torch.Tensor:
    # The expectation over pi_old is a sum weighted by pi_old, not a mean over the responses.
    return -(pi_old * torch.exp(advantages / eta) * torch.log(pi)).sum()


def forward_kl_form(pi_old: torch.Tensor, advantages: torch.Tensor,
                    eta: float) -> tuple[float, float]:
    log_tilted = torch.log(pi_old) + advantages / eta  # log (pi_old exp(A/eta)) = log Z + log pi*
    log_z = torch.logsumexp(log_tilted, 0)
    log_pi_star = log_tilted - log_z
    entropy = -(log_pi_star.exp() * log_pi_star).sum()
    z = float(log_z.exp())
    return z, z * float(entropy)

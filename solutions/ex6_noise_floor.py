"""Solution to exercise 6: the noise floor is set by the gradient weight at the optimum, -f'(1/Z).

At the target pi* = pi_0 exp(A/eta)/Z every response has x_y = (pi*/pi_0) exp(-A/eta) = 1/Z
(exercise 3), so every sampled response carries the same gradient weight c = -f'(1/Z). The step is

    (1/G) sum_i ratio_i * (-c) * grad log pi(y_i),       y_1..y_G sampled from pi_0,

whose expectation is -c E_pi[grad log pi] = 0: the optimum is a fixed point on average. But one
batch of G = 64 arms is not the average. With c != 0, every arm that happens to be sampled is pushed
(up if c > 0, down if c < 0) and the unsampled ones are pushed the other way through the softmax;
the next batch pushes other arms. The policy jitters around the target forever, and the jitter is
the floor in the ablation table. With c = 0 the per-sample weights themselves vanish at the optimum:
near it they are proportional to the distance from it, and the noise dies out with the error.

Which divergence has c = 0 depends on Z, because the optimum sits at x = 1/Z, not at x = 1:
  * Z = 1 (the bandit as built): c = -f'(1), zero for JF, TV, HD, JS (normalised with f'(1) = 0),
    -1 for KL (f' = log x + 1) and +1 for reverse KL (f' = -1/x). KL and rKL stall.
  * Z = 2.78 (centred advantages): c = -f'(0.36). KL's f'(x) = log x + 1 vanishes at x = 1/e, i.e.
    Z = e = 2.718, close to the bandit's 2.78: KL is now almost silent and all the others are not.
  * Reverse KL has f'(x) = -1/x < 0 for every x: no Z silences it.
  * Total variation's f' jumps from -1/2 to +1/2 at x = 1. At Z = 1 its weight is 0 at the optimum
    and +-1/2 next to it, with the sign of the error: a push back towards the target, not a constant
    push, so it is as quiet as JS there. (The bandit's float32 advantages give Z = 1 only to about
    1e-8, which is enough to put 1/Z on one side of the jump: the check rounds Z before predicting.)
So "which divergence is best" in such an experiment partly reflects how the advantages happen to be
shifted. To silence a divergence on purpose, shift the advantages by a constant (which never moves
the target, exercise 1) so that Z lands where f'(1/Z) = 0: A <- A + eta * (log Z_wanted - log Z).

One refinement, for the curious: Adam divides each coordinate's step by a running gradient scale, so
what sets the floor's size is the noise relative to the pull back towards the target. Near the
optimum the weight is about f'(1/Z) + f''(1/Z) (x - 1/Z): noise over pull is roughly
|f'(1/Z)| / ((1/Z) f''(1/Z)), between 0.7 and 1 for every stalled divergence here, which is why
their floors are so alike (about 0.035 to 0.04 after 400 quick iterations), and close to 0 for KL
at Z = 2.78.
"""
import torch

import bandit
from lad_loss import DIVERGENCES

PAPER_DIVERGENCES = ["kl", "rkl", "jf", "tv", "hd", "js"]


def bandit_normaliser(centre_advantages: bool, eta: float = 0.25) -> float:
    pi_0 = bandit.uniform_policy().double()
    advantages = bandit.bandit_advantages(pi_0, centre=centre_advantages)
    return float(torch.exp(torch.logsumexp(torch.log(pi_0) + advantages / eta, dim=-1)))


def weight_at_optimum(divergence: str, Z: float) -> float:
    x = torch.tensor(1.0 / Z, dtype=torch.float64)  # every response's x at the target
    return -float(DIVERGENCES[divergence].f_prime(x))


def quietest_divergences(Z: float) -> list[str]:
    loudness = {name: abs(weight_at_optimum(name, Z)) for name in PAPER_DIVERGENCES}
    quietest = min(loudness.values())
    return sorted(name for name, value in loudness.items() if value <= quietest + 1e-9)


def silencing_normaliser(divergence: str) -> float | None:
    # f is convex, so f' is non-decreasing: bisect for its zero in log x over a wide bracket.
    f_prime = DIVERGENCES[divergence].f_prime

    def slope(log_x):
        return float(f_prime(torch.tensor(log_x, dtype=torch.float64).exp()))

    lo, hi = -30.0, 30.0
    if slope(lo) > 0 or slope(hi) < 0:
        return None  # f' never changes sign (reverse KL: -1/x < 0 everywhere)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if slope(mid) == 0:
            lo = hi = mid
            break
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    return float(torch.exp(-torch.tensor(0.5 * (lo + hi), dtype=torch.float64)))  # Z = 1 / x


def measure_noise_floors(centre_advantages: bool, iterations: int = 400,
                         lr: float = 2e-2) -> dict[str, float]:
    floors = {}
    for name in PAPER_DIVERGENCES:
        settings = bandit.Settings(divergence=name, centre_advantages=centre_advantages,
                                   iterations=iterations, lr=lr, seed=0)
        run = bandit.train("lad-fixed", settings, progress=False)
        # average the tail: a single iteration's TV is itself noisy
        tail = [tv for i, tv in zip(run.iterations, run.tv) if i >= iterations - 100]
        floors[name] = sum(tail) / len(tail)
    return floors

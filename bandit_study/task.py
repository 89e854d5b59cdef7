"""The bandit of the paper's controlled experiment: 50 arms, an advantage with three modes, the
target pi*, and the numbers we report about a policy. bandit.py trains on it.

One prompt, 50 possible answers ("arms"). The policy is a softmax over 50 learnable logits, all
zero at the start, so pi_0 is uniform. Each arm has a fixed advantage A(arm), built from a mixture
of three Gaussians over the arm index with unequal weights:

    mixture(arm) = sum_k w_k N(arm; mu_k, sigma_k),   normalised over the 50 arms
    A(arm)       = 0.25 * log(mixture(arm) / pi_0(arm))

We chose this A so that at the paper's setting 1/eta = 4 the target policy of Lemma 3.1 is the
mixture itself: pi* = pi_0 * exp(A/eta) / Z = mixture (and Z = 1). Scaling the Gaussian bumps
directly would not do: bumps of height 0.05 divided by eta = 0.25 give exp(0.2) ~ 1.2, an almost
uniform target. A belongs to the arms and stays fixed; another eta gives the target
mixture^(0.25/eta). With `--centre-advantages` we subtract A's mean under pi_0, as a baseline would
(a GRPO advantage has mean zero too). pi* does not change, but its normaliser
Z = E_{pi_0}[exp(A/eta)] grows from 1 to 2.8, which matters for total variation, whose minimiser is
then not unique (see lad_loss.py).

    mixture()                         the three-Gaussian mixture over the arms, [50]
    uniform_policy()                  pi_0, the softmax of 50 zero logits
    bandit_advantages(pi_0, centre)   A(arm), optionally centred under pi_0
    target_policy(pi_old, A, eta)     pi* = pi_old exp(A/eta) / Z (Lemma 3.1)
    advantage_std(pi, A)              the spread of A under pi; std_at_target: under pi*
    summarise_policy(pi, target)      TV to the target, max arm, entropy, mass in each mode,
                                      modes recovered (total_variation and entropy come from
                                      measures/distributions.py, which the GPT chapter shares)
"""
import torch

from measures.distributions import entropy, total_variation

N_ARMS = 50
# The three modes of the advantage distribution: (centre mu, width sigma, weight w). Unequal
# weights, so "collapse onto the best arm" has a clear winner (the centre of the heaviest mode).
MODES = [(10, 2.5, 0.5), (25, 2.5, 0.3), (40, 2.5, 0.2)]
# The eta at which the target is exactly the mixture (see bandit_advantages).
ETA_OF_MIXTURE = 0.25
# A mode counts as recovered when the policy puts at least half of the target's mass inside the
# window mu +- 2 sigma (rounded to whole arms).
MODE_WINDOW_SIGMAS = 2.0
RECOVERED_FRACTION = 0.5


def mixture(n_arms: int = N_ARMS, modes=MODES) -> torch.Tensor:
    """The three-Gaussian mixture over arm indices, normalised to a distribution [n_arms]."""
    arms = torch.arange(n_arms, dtype=torch.float64)
    density = sum(w * torch.exp(-0.5 * ((arms - mu) / sigma) ** 2) / sigma
                  for mu, sigma, w in modes)
    return (density / density.sum()).float()


def uniform_policy(n_arms: int = N_ARMS) -> torch.Tensor:
    return torch.full((n_arms,), 1.0 / n_arms)


def bandit_advantages(pi_0: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """A(arm) = 0.25 * log(mixture / pi_0): the target pi_0 * exp(A/eta) / Z is the mixture at
    eta = 0.25. With centre=True, minus its mean under pi_0 (the same target, a larger Z)."""
    advantages = ETA_OF_MIXTURE * (torch.log(mixture(len(pi_0))) - torch.log(pi_0))
    return advantages - (pi_0 * advantages).sum() if centre else advantages


def target_policy(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """The target policy pi* = pi_old * exp(A/eta) / Z of Lemma 3.1, normalised in log space. It
    is the policy at which the paper's P_pi = P_A (lad_loss.py); the figures draw it as "target
    pi*"."""
    return torch.softmax(torch.log(pi_old) + advantages / eta, dim=-1)


def advantage_std(pi: torch.Tensor, advantages: torch.Tensor) -> float:
    """The spread of A over arms drawn from pi: what a large group sampled from pi divides by."""
    return float((pi * (advantages - (pi * advantages).sum()) ** 2).sum().sqrt())


def std_at_target(eta: float, centre: bool = False) -> float:
    """std of A under pi*, the fixed point: the std a group normalisation meets once the policy is
    there (0.193 at 1/eta = 4). The entropy-bonus ablation's coefficient and FlowRL's beta come
    from it."""
    pi_0 = uniform_policy()
    advantages = bandit_advantages(pi_0, centre)
    return advantage_std(target_policy(pi_0, advantages, eta), advantages)


def mode_windows(n_arms: int = N_ARMS, modes=MODES) -> list[list[int]]:
    half = MODE_WINDOW_SIGMAS
    return [list(range(max(0, round(mu - half * s)), min(n_arms, round(mu + half * s) + 1)))
            for mu, s, _ in modes]


def summarise_policy(pi: torch.Tensor, target: torch.Tensor) -> dict:
    """tv (to the target), max_prob, argmax, entropy (nats), the mass in each mode's window and
    modes_recovered of a distribution."""
    mode_mass = [float(pi[w].sum()) for w in mode_windows(len(pi))]
    target_mass = [float(target[w].sum()) for w in mode_windows(len(pi))]
    return {
        "tv": float(total_variation(pi, target)),
        "max_prob": float(pi.max()),
        "argmax": int(pi.argmax()),
        "entropy": float(entropy(pi)),
        "mode_mass": [round(m, 4) for m in mode_mass],
        "modes_recovered": sum(m >= RECOVERED_FRACTION * t for m, t in zip(mode_mass, target_mass)),
    }

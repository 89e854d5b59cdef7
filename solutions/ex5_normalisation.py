"""Solution to exercise 5: normalisation is a temperature for LAD and only a step size for GRPO.

Centring. A_hat = A - m shifts every advantage by the same constant: exp(A_hat/eta) = exp(A/eta)
e^(-m/eta), and the factor cancels in the normalisation of the target. LAD's end point does not
move; only Z does.

Scaling. With s = Std_{pi_old}[A],

    exp(A_hat / eta) = exp((A - m) / (eta s)) = exp(A / (eta s)) * constant,

so LAD trained on std-normalised advantages learns the target of the raw advantages at the effective
temperature eta' = eta * s. In the bandit s is about 0.48, so eta' is about 0.12 (1/eta' about 8.4):
the normalised target is *sharper* than the mixture (its largest arm about 0.15 instead of 0.08).
Nothing is wrong with that, but it means eta is not a property of the method alone: with
normalisation, the temperature LAD actually uses follows the spread of the rewards of each group,
and a prompt whose rewards barely differ gets as sharp a target as one whose rewards differ a lot.

GRPO. Its objective E_pi[A_hat] is maximised by putting all the mass on the best response, and any
normalisation a + b*A with b > 0 keeps which response is best. So GRPO collapses with std
normalisation, with mean-only normalisation, and with none: the standard deviation is not what
makes it collapse. On-policy, dividing by s only multiplies the whole gradient by 1/s, a step size.
Adam, which divides by a running gradient scale, would cancel a constant factor; this one changes
during training: as the policy concentrates, the rewards under it become alike, the mean-only
gradient shrinks faster than Adam's running scale adapts, and mean-only GRPO collapses more slowly
(after the check's 400 exact steps its largest arm holds 0.90 of the mass, std-normalised GRPO's
0.99).
"""
import torch

import bandit


def _mean_and_std(advantages, pi_old):
    mean = (pi_old * advantages).sum()
    return mean, (pi_old * (advantages - mean) ** 2).sum().sqrt()


def normalise_advantages(advantages, pi_old, divide_by_std: bool = True) -> torch.Tensor:
    mean, std = _mean_and_std(advantages, pi_old)
    centred = advantages - mean
    return centred / std if divide_by_std else centred


def effective_eta(advantages, pi_old, eta: float) -> float:
    _, std = _mean_and_std(advantages, pi_old)
    # exp((A - m) / (eta * std)): the raw advantages at temperature eta * std
    return eta * float(std)


def predicted_lad_target(advantages, pi_old, eta: float, divide_by_std: bool) -> torch.Tensor:
    # Centring never moves the target, so only the temperature can change.
    temperature = effective_eta(advantages, pi_old, eta) if divide_by_std else eta
    return bandit.target_policy(pi_old, advantages, temperature)


def predicted_grpo_limit(advantages) -> torch.Tensor:
    # A positive affine map keeps the argmax: all the mass on the best response.
    return torch.nn.functional.one_hot(advantages.argmax(), len(advantages)).to(advantages.dtype)

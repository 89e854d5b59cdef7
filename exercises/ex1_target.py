"""Exercise 1 (easy): the advantage-induced target, computed so that it cannot overflow.

Lemma 3.1 (lad_loss.py's docstring) says that the best trust-region step away from the policy
pi_old that sampled the data is

    pi*(y) = pi_old(y) * exp(A(y) / eta) / Z,        Z = sum_y pi_old(y) * exp(A(y) / eta).

The paper reads this as an equality between two distributions over responses y,

    P_pi(y) = (pi(y) / pi_old(y)) / Z_pi       the policy-induced distribution
    P_A(y)  = exp(A(y) / eta) / Z_A            the advantage-induced distribution

(Z_pi and Z_A make each sum to one): pi is optimal exactly when P_pi = P_A, that is at pi = pi*.
Write the four functions below.

The catch is numerical. With eta = 1/4 an advantage of 25 gives exp(100), inf in float32, and
inf / inf is nan. Work with logarithms: log pi* = log pi_old + A/eta - log Z, where log Z is a
log-sum-exp, which torch computes without overflow.

All tensors are 1-D over the responses, [n]; pi and pi_old are strictly positive and sum to one;
eta > 0. Return tensors of the input's dtype (float32 in, float32 out; float64 in, float64 out).
The check asks for 1e-12 in float64 and, at A/eta = 1000 in float32, for float32's spacing near
1000 (1.2e-4).

Check your answer:  python -m pytest exercises/checks/test_ex1_target.py
"""
import torch


def log_normaliser(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """log Z = log sum_y pi_old(y) exp(A(y)/eta), a scalar tensor, finite even when A/eta = 1000."""
    raise NotImplementedError("exercise 1: write log_normaliser (hint: torch.logsumexp)")


def target_policy(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """pi* = pi_old * exp(A/eta) / Z (Lemma 3.1), [n], computed in log space."""
    raise NotImplementedError(
        "exercise 1: write target_policy (compute log pi* first, exponentiate last)")


def advantage_induced(advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """The paper's P_A = exp(A/eta) / Z_A, [n]. Note that pi_old does not enter."""
    raise NotImplementedError("exercise 1: write advantage_induced")


def policy_induced(pi: torch.Tensor, pi_old: torch.Tensor) -> torch.Tensor:
    """The paper's P_pi = (pi / pi_old) / Z_pi, [n]."""
    raise NotImplementedError("exercise 1: write policy_induced")

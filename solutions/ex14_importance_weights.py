"""Solution to exercise 14: the same objective from another sampler.

1. In log space, log w_i = log pi_sft(y_i) + A_i/eta - log q(y_i) up to the group's normaliser, so
   w = softmax(log pi_sft + A/eta - log q) over the group: the softmax subtracts the largest entry
   before exponentiating, and A/eta = 90 stays finite in float32. A constant added to every A_i
   cancels, as does Z: the group never needs the normalised pi*.

2. A group (y_1..y_G) of independent samples has probability prod_i q(y_i); sum over all n^G of them
   of that probability times sum_i w_i v(y_i).

3. At G = 1 the one weight is 1, so the estimate is E_q[v]: the sampler's expectation, not pi*'s.
   As G grows, sum_i w_i v(y_i) is a ratio of two sample means, (1/G) sum_i r_i v(y_i) over
   (1/G) sum_i r_i with r = pi_sft exp(A/eta) / q, whose expectations are Z E_{pi*}[v] and Z: the
   ratio tends to E_{pi*}[v], with a bias of order 1/G. At q = pi*, r_i = Z for every response, so
   the weights are 1/G whatever the group, and the estimate is the mean of v over samples of pi*:
   exact in expectation at every G. That is why pi* is a fixed point of dpg at every group size,
   and why its bias is largest where the policy is far from pi*.
"""
import itertools

import torch


def group_weights(log_q: torch.Tensor, log_sft: torch.Tensor, advantages: torch.Tensor,
                  eta: float) -> torch.Tensor:
    return torch.softmax(log_sft + advantages / eta - log_q, dim=0)


def expected_estimate(values: torch.Tensor, q: torch.Tensor, pi_sft: torch.Tensor,
                      advantages: torch.Tensor, eta: float, group_size: int) -> torch.Tensor:
    total = torch.zeros((), dtype=values.dtype)
    for group in itertools.product(range(len(q)), repeat=group_size):
        ys = torch.tensor(group)
        w = group_weights(q.log()[ys], pi_sft.log()[ys], advantages[ys], eta)
        total = total + q[ys].prod() * (w * values[ys]).sum()
    return total

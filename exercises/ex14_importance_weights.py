"""Exercise 14 (medium): the same objective from another sampler.

Exercise 13 found that lad-fixed with f = -log x minimises Z KL(pi* || pi) from pi_sft's samples,
each weighted exp(A/eta). Its gradient, -Z E_{pi*}[grad log pi], is an expectation under pi*, and
any sampler q can estimate it with the importance weight pi_sft(y) / q(y). dpg
(baselines/dpg_loss.py, `--methods dpg`) takes q = the current policy, and normalises the weights
over each group of G samples, which stands in for the unknown Z.

On a small set of responses, for any values v(y) (in the method, v = grad log pi):
  1. group_weights: the self-normalised weights of one group of samples y_1..y_G from q,
         w_i = pi_sft(y_i) exp(A_i/eta) / q(y_i)  divided by their sum over the group.
     Work in log space: the check uses A/eta up to 90, where exp overflows in float32.
  2. expected_estimate: the exact expectation, over every group of G samples from q, of
     sum_i w_i v(y_i). Enumerate the groups (itertools.product) with their probabilities.
  3. On paper: at G = 1, what does the estimate return? At q = pi*, show it is exact at every G.
     Between the two, the estimate is biased, less so as G grows (tests/test_dpg_loss.py
     measures it).

Write group_weights yourself (do not call baselines.dpg_loss: the check replaces it). Return the
dtype of the input tensors.

Check your answer:  python -m pytest exercises/checks/test_ex14_importance_weights.py
"""
import torch


def group_weights(log_q: torch.Tensor, log_sft: torch.Tensor, advantages: torch.Tensor,
                  eta: float) -> torch.Tensor:
    """The self-normalised weights of one group: log_q, log_sft, advantages [G] -> [G], summing
    to 1 (question 1)."""
    raise NotImplementedError("exercise 14: write group_weights")


def expected_estimate(values: torch.Tensor, q: torch.Tensor, pi_sft: torch.Tensor,
                      advantages: torch.Tensor, eta: float, group_size: int) -> torch.Tensor:
    """E over groups of group_size samples from q of sum_i w_i values[y_i] (question 2).

    values, q, pi_sft, advantages: [n], one entry per response; q and pi_sft strictly positive and
    summing to 1. Returns a 0-dim tensor."""
    raise NotImplementedError("exercise 14: write expected_estimate")

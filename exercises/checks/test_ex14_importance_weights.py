"""Check of exercise 14: the self-normalised importance weights of dpg, and their bias at a finite
group.

The truth is computed here in float64, on groups drawn from a sampler q that is neither pi_sft nor
pi*, and on three responses enumerated for the expectation. Answers computed in float32 pass.

Wrong answers it rejects, each with a message that names the mistake: the weights without the
importance correction (pi_sft exp(A/eta) alone, right only when q = pi_sft), left unnormalised,
with exp(A) in place of exp(A/eta), with the sign of A flipped, or overflowing at A/eta = 90 in
float32; a call to baselines.dpg_loss; float64 weights for float32 input; the expectation given as
its limit E_{pi*}[v] (no bias at any G), as E_q[v] (no weights), or with one sample's weight in
place of the group's.
"""
import math

import pytest
import torch

import baselines.dpg_loss
from compare import assert_close

D = torch.float64
ETA = 0.25
GEN = torch.Generator().manual_seed(14)
G = 6
LOG_Q = torch.log_softmax(torch.randn(G, generator=GEN, dtype=D), 0) - 2.0
LOG_SFT = torch.log_softmax(torch.randn(G, generator=GEN, dtype=D), 0) - 1.0
ADVANTAGES = torch.tensor([1.2, -0.4, -0.4, 0.9, -1.1, 0.3], dtype=D)
# three responses, enumerated: a sampler q, pi_sft, their A and a function v of the response
Q3 = torch.tensor([0.5, 0.3, 0.2], dtype=D)
PI_SFT3 = torch.tensor([0.2, 0.3, 0.5], dtype=D)
A3 = torch.tensor([0.3, 0.3, -0.2], dtype=D)
V3 = torch.tensor([1.0, -2.0, 0.5], dtype=D)
ETA3 = 0.5


@pytest.fixture
def ex14(exercise):
    return exercise("ex14_importance_weights")


def truth_weights(log_q, log_sft, advantages, eta):
    return torch.softmax(log_sft + advantages / eta - log_q, 0)


def no_library(ex14, monkeypatch):
    """Replace baselines.dpg_loss's functions, wherever the exercise module holds them."""
    def refuse(*args, **kwargs):
        raise AssertionError("group_weights calls baselines.dpg_loss: the exercise asks you to "
                             "write the weights yourself")
    for name in ("dpg_weights", "dpg_loss"):
        monkeypatch.setattr(baselines.dpg_loss, name, refuse)
        for attribute, value in list(vars(ex14).items()):
            if getattr(value, "__name__", None) == name and \
                    getattr(value, "__module__", None) == "baselines.dpg_loss":
                monkeypatch.setattr(ex14, attribute, refuse)


@pytest.mark.parametrize("eta", [0.25, 1.0])
def test_the_group_weights_are_pi_sft_exp_a_over_eta_over_q_normalised(ex14, monkeypatch, eta):
    no_library(ex14, monkeypatch)
    got = ex14.group_weights(LOG_Q.clone(), LOG_SFT.clone(), ADVANTAGES.clone(), eta)
    truth = truth_weights(LOG_Q, LOG_SFT, ADVANTAGES, eta)
    unnormalised = torch.exp(LOG_SFT + ADVANTAGES / eta - LOG_Q)
    assert_close(got, truth, f"group_weights (eta = {eta:g})", mistakes={
        "the importance correction is missing: the samples come from q, so each is divided by "
        "q(y_i)": torch.softmax(LOG_SFT + ADVANTAGES / eta, 0),
        "the weights are not normalised over the group: divide by their sum (Z is unknown)":
            unnormalised,
        "exp(A) in place of exp(A/eta)": torch.softmax(LOG_SFT + ADVANTAGES - LOG_Q, 0),
        "the sign of A: pi* = pi_sft exp(+A/eta) / Z": torch.softmax(LOG_SFT - ADVANTAGES / eta
                                                                    - LOG_Q, 0),
    })


def test_the_group_weights_stay_finite_in_float32_and_keep_its_dtype(ex14, monkeypatch):
    no_library(ex14, monkeypatch)
    advantages = torch.tensor([22.5, -0.5, 20.0, 0.0, -22.5, 1.0])  # A/eta up to 90
    args = (LOG_Q.float(), LOG_SFT.float(), advantages, ETA)
    got = ex14.group_weights(*args)
    assert got.dtype == torch.float32, \
        f"group_weights returns {got.dtype} for float32 input: return the input's dtype"
    assert torch.isfinite(got).all(), \
        "group_weights overflows at A/eta = 90 in float32: form the weights in log space " \
        "(a softmax, or subtract the largest log-weight before exp)"
    assert_close(got, truth_weights(LOG_Q, LOG_SFT, advantages.double(), ETA),
                 "group_weights in float32, A/eta up to 90")


def enumerated(q, values, weight_of_group, group_size):
    import itertools
    total = 0.0
    for group in itertools.product(range(len(q)), repeat=group_size):
        ys = torch.tensor(group)
        total = total + float(q[ys].prod()) * float((weight_of_group(ys) * values[ys]).sum())
    return total


@pytest.mark.parametrize("group_size", [1, 2, 3])
def test_the_expected_estimate_is_the_average_over_every_group(ex14, group_size):
    got = ex14.expected_estimate(V3.clone(), Q3.clone(), PI_SFT3.clone(), A3.clone(), ETA3,
                                 group_size)
    def weights(ys):
        return truth_weights(Q3.log()[ys], PI_SFT3.log()[ys], A3[ys], ETA3)
    truth = enumerated(Q3, V3, weights, group_size)
    pi_star = torch.softmax(PI_SFT3.log() + A3 / ETA3, 0)
    r = PI_SFT3 * torch.exp(A3 / ETA3) / Q3  # one sample's unnormalised weight
    mistakes = {
        "that is E_pi*[v], the limit as G grows: at a finite G the ratio of two sample means is "
        "biased, and the exercise asks for its expectation over groups of G": (pi_star * V3).sum(),
        "that is E_q[v]: each sample must carry its weight": (Q3 * V3).sum(),
        "each sample weighted by its own r / (G E_q[r]), the unbiased estimate with Z known: the "
        "group divides by its own sum of weights":
            enumerated(Q3, V3, lambda ys: r[ys] / (len(ys) * (Q3 * r).sum()), group_size),
    }
    if group_size == 1:  # at G = 1 the weight is 1: E_q[v] is the answer
        del mistakes["that is E_q[v]: each sample must carry its weight"]
    assert_close(got, torch.tensor(truth, dtype=D), f"expected_estimate (G = {group_size})",
                 mistakes=mistakes)
    assert not math.isclose(truth, float((pi_star * V3).sum()), rel_tol=1e-3)

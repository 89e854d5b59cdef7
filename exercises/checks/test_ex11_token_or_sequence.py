"""Check of exercise 11: the sequence form's minimiser is pi*; the token form's is not, except for
reverse KL.

The truth is the enumeration: the check minimises the real lad_loss, in each form, over every
distribution on the V * V completions of exercises/two_token.py's policy, and compares. Answers
computed in float32 pass where values are compared. Wrong answers it rejects, each tried, with the
message naming the mistake: the token terms averaged instead of summed, the completions weighted by
the current policy instead of pi_old, the token form computed with the summed ratio; pi* given as
the token form's KL minimiser, the claim pi_old exp(2A/eta) / Z, the mean and the soft value swapped
between KL and reverse KL; "every divergence" and "none" for the token forms that reach pi*; JS said
not to favour the safe prefix; a loss computed in float32, which the float64 minimiser cannot use.
"""
import functools
import math

import pytest
import torch

from compare import assert_close, tv
from exercises.two_token import V, minimise, sequence_logps, step_probabilities, token_logps
from lad_loss import lad_loss

D = torch.float64
GEN = torch.Generator().manual_seed(0)
RANDOM = dict(old_logits=torch.randn(V + V * V, generator=GEN, dtype=D),
              advantages=torch.randn(V, V, generator=GEN, dtype=D), eta=0.5)


def _safe_and_risky():
    """A 0/1 verifier with GRPO's large-group advantages. First token 0 is safe (every continuation
    is correct), first token 1 risky (only (1, 0) is), first token 2 always wrong. pi_old gives the
    safe prefix's correct answers and the risky prefix's correct answer equal mass, 0.2 each, so pi*
    does too."""
    pi1 = torch.tensor([0.2, 0.5, 0.3], dtype=D)
    pi2 = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.3, 0.3], [1 / 3, 1 / 3, 1 / 3]], dtype=D)
    correct = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    p = float((pi1[:, None] * pi2)[correct].sum())  # 0.4
    advantages = torch.where(correct, math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))).to(D)
    return dict(old_logits=torch.cat([pi1.log(), pi2.log().reshape(-1)]), advantages=advantages,
                eta=0.25)


SAFE_AND_RISKY = _safe_and_risky()
PROBLEMS = {"a random problem": RANDOM,
            "a 0/1 verifier with a safe and a risky prefix": SAFE_AND_RISKY}


@pytest.fixture
def ex11(exercise):
    return exercise("ex11_token_or_sequence")


def objective(logits, old_logits, advantages, eta, divergence, ratio):
    """The check's own exact objective of each form, through the real lad_loss."""
    pi_old = sequence_logps(old_logits).exp().reshape(-1)
    if ratio == "sequence":
        per = lad_loss(sequence_logps(logits).reshape(-1), sequence_logps(old_logits).reshape(-1),
                       advantages.reshape(-1), eta=eta, divergence=divergence, reduction="none")
    else:
        per = lad_loss(token_logps(logits).reshape(-1, 2), token_logps(old_logits).reshape(-1, 2),
                       advantages.reshape(-1), eta=eta, divergence=divergence,
                       reduction="none").sum(-1)
    return (pi_old * per).sum()


@functools.cache
def enumerated_minimiser(where, divergence, ratio):
    """The minimiser of the check's own objective on PROBLEMS[where], over every distribution."""
    problem = PROBLEMS[where]
    logits = minimise(lambda z: objective(z, divergence=divergence, ratio=ratio, **problem),
                      problem["old_logits"])
    return sequence_logps(logits).exp()


def pi_star(problem, k=1):
    weights = sequence_logps(problem["old_logits"]) + k * problem["advantages"] / problem["eta"]
    return torch.softmax(weights.reshape(-1), 0).reshape(V, V)


@pytest.mark.parametrize("divergence", ["js", "kl"])
@pytest.mark.parametrize("ratio", ["sequence", "token"])
def test_the_exact_objective_of_each_form(ex11, divergence, ratio):
    logits = torch.randn(V + V * V, generator=torch.Generator().manual_seed(1), dtype=D)
    problem = RANDOM
    z = logits.clone().requires_grad_(True)
    got = ex11.expected_lad_loss(z, divergence=divergence, ratio=ratio, **problem)
    (got_grad,) = torch.autograd.grad(got, z)
    z = logits.clone().requires_grad_(True)
    truth = objective(z, divergence=divergence, ratio=ratio, **problem)
    (grad,) = torch.autograd.grad(truth, z)
    mistakes = {"the completions are weighted by the current policy; the samples come from pi_old":
                float((sequence_logps(logits).exp().reshape(-1)
                       * objective_per_completion(logits, problem, divergence, ratio)).sum())}
    if ratio == "token":
        mistakes["the two tokens' terms averaged: sum them (the check's objective is a sum "
                 "over t)"] = float(truth.detach()) / 2
        mistakes["the summed log-ratio: that is the sequence form; the token form has one ratio "
                 "per token"] = \
            float(objective(logits, divergence=divergence, ratio="sequence", **problem))
    assert_close(got, truth, f"expected_lad_loss(ratio='{ratio}', divergence='{divergence}')",
                 mistakes=mistakes)
    assert_close(got_grad, grad,
                 f"the gradient of expected_lad_loss(ratio='{ratio}') in the logits",
                 mistakes={"gradient flows through pi_old's weights or the logits enter them: "
                           "pi_old(y) is a constant": -grad})


def objective_per_completion(logits, problem, divergence, ratio):
    if ratio == "sequence":
        return lad_loss(sequence_logps(logits).reshape(-1),
                        sequence_logps(problem["old_logits"]).reshape(-1),
                        problem["advantages"].reshape(-1), eta=problem["eta"],
                        divergence=divergence, reduction="none")
    return lad_loss(token_logps(logits).reshape(-1, 2),
                    token_logps(problem["old_logits"]).reshape(-1, 2),
                    problem["advantages"].reshape(-1), eta=problem["eta"], divergence=divergence,
                    reduction="none").sum(-1)


def assert_float64_loss(ex11, ratio):
    value = ex11.expected_lad_loss(RANDOM["old_logits"].clone(), divergence="js", ratio=ratio,
                                   **RANDOM)
    assert value.dtype == D, (f"expected_lad_loss(ratio='{ratio}') returned {value.dtype}: keep "
                              "float64, which two_token.minimise needs to find the minimum (in "
                              "float32 it wanders off)")


@pytest.mark.parametrize("where", PROBLEMS)
def test_the_sequence_form_is_minimised_at_pi_star(ex11, where):
    problem = PROBLEMS[where]
    assert_close(ex11.sequence_target(**problem), pi_star(problem), f"sequence_target on {where}",
                 mistakes={"pi_old exp(2A/eta) / Z: with one ratio per completion the tilt is "
                           "exp(A/eta)":
                           pi_star(problem, k=2)})
    assert_float64_loss(ex11, "sequence")
    for divergence in ("js", "kl", "rkl"):
        logits = minimise(lambda z: ex11.expected_lad_loss(z, divergence=divergence,
                                                           ratio="sequence", **problem),
                          problem["old_logits"])
        assert_close(sequence_logps(logits).exp(), pi_star(problem),
                     f"the minimiser of expected_lad_loss(ratio='sequence', '{divergence}') on "
                     f"{where}", atol=1e-6)


@pytest.mark.parametrize("where", PROBLEMS)
@pytest.mark.parametrize("divergence", ["kl", "rkl"])
def test_the_token_forms_closed_forms(ex11, where, divergence):
    problem = PROBLEMS[where]
    truth = enumerated_minimiser(where, divergence, "token")
    pi_old1, pi_old2 = step_probabilities(problem["old_logits"])
    a = problem["advantages"] / problem["eta"]
    second = torch.softmax(pi_old2.log() + a, -1)
    mean_first = torch.softmax(pi_old1.log() + (pi_old2 * a).sum(-1), -1)
    mistakes = {
        "pi_old exp(2A/eta) / Z, the 'exp(length * A / eta)' claim: each step is normalised on its "
        "own, so a "
        "step whose continuations share one A is not tilted at all": pi_star(problem, k=2)}
    if divergence == "kl":
        mistakes["pi*: only reverse KL's token form reaches it; KL's first step is tilted by the "
                 "mean advantage "
                 "of the continuations, exp(E_pi_old2[A | y1] / eta)"] = pi_star(problem)
    else:
        mistakes["the first step tilted by the mean advantage: that is KL's; for reverse KL the "
                 "condition "
                 "E[-e^a / r1] = mu gives r1 proportional to E[exp(a)], pi*'s first step"] = \
            mean_first[:, None] * second
    assert_close(ex11.token_target(divergence=divergence, **problem), truth,
                 f"token_target('{divergence}') on {where} (the enumerated minimiser of the token "
                 "form)",
                 atol=1e-6, mistakes=mistakes)
    with pytest.raises(ValueError):
        ex11.token_target(divergence="js", **problem)


@pytest.mark.parametrize("divergence", ["js", "hd"])
def test_the_token_forms_numerical_minimiser(ex11, divergence):
    truth = enumerated_minimiser("a random problem", divergence, "token")
    assert_float64_loss(ex11, "token")
    assert_close(ex11.token_minimiser(divergence=divergence, **RANDOM), truth,
                 f"token_minimiser('{divergence}') on a random problem", atol=1e-6)


def test_which_token_forms_reach_pi_star(ex11):
    got = ex11.token_form_reaches_pi_star()
    truth = sorted(name for name in ["kl", "rkl", "jf", "hd", "js"]
                   if tv(enumerated_minimiser("a random problem", name, "token"),
                         pi_star(RANDOM)) < 1e-5)
    assert truth == ["rkl"]  # the enumeration; the derivation says why
    if got == ["hd", "jf", "js", "kl", "rkl"]:
        raise AssertionError("token_form_reaches_pi_star: Lemma 3.2 holds at the last token only; "
                             "at the first, f' is averaged over the continuations, and only "
                             "reverse KL's 1/x turns that into pi*")
    assert got == truth, (f"token_form_reaches_pi_star: the enumeration finds {truth} (the token "
                          "form's minimiser "
                          f"equals pi* on a random problem only for them), got {got}")


@pytest.mark.parametrize("divergence", ["kl", "js"])
def test_the_length_claim_is_measured(ex11, divergence):
    truth = tv(enumerated_minimiser("a random problem", divergence, "token"), pi_star(RANDOM, k=2))
    assert_close(ex11.length_claim_distance(divergence=divergence, **RANDOM), truth,
                 f"length_claim_distance('{divergence}'), TV between the token minimiser and "
                 "pi_old exp(2A/eta) / Z",
                 atol=1e-5)


@pytest.mark.parametrize("divergence", ["kl", "rkl", "js"])
def test_which_prefix_the_token_form_favours(ex11, divergence):
    problem = SAFE_AND_RISKY
    token = enumerated_minimiser("a 0/1 verifier with a safe and a risky prefix", divergence,
                                 "token")
    safe_token, safe_star = float(token[0].sum()), float(pi_star(problem)[0].sum())
    truth = safe_token > safe_star + 1e-3
    got = ex11.token_form_favours_the_safe_prefix(divergence)
    assert got == truth, (
        f"token_form_favours_the_safe_prefix('{divergence}'): the enumeration puts "
        f"{safe_token:.3f} on the safe prefix's completions in the token form against pi*'s "
        f"{safe_star:.3f}, so the answer is {truth}")

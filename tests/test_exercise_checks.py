"""The exercise checks against known-wrong answers: a check is code, and a check that accepts a
wrong answer (or rejects a right one) fails its students silently.

tests/test_exercises.py runs every check against the worked solutions, which catches a check that
rejects a correct answer. This file runs single checks, in this process, against answers written
wrong on purpose (each a solution module with one function rewritten, as a student would write it)
and asserts that the check fails with the message that names the mistake; and it tests
compare.py, the comparison every check goes through, on its own.
"""
import importlib
import importlib.util
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch

CHECKS = Path(__file__).resolve().parents[1] / "exercises" / "checks"


def _load(name: str):
    """exercises/checks/<name>.py as a module; the checks import `compare` by that name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CHECKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compare = _load("compare")


def answers(module_name: str, source: str = ""):
    """The worked solution of an exercise with the functions in `source` written over it, as the
    check's `exercise` fixture hands a module to a check (guarded against in-place edits)."""
    solution = importlib.import_module(f"solutions.{module_name}")
    student = types.ModuleType(solution.__name__)
    student.__dict__.update(vars(solution))
    exec(textwrap.dedent(source), student.__dict__)
    return compare.unchanged_inputs(student)


# compare.py

def test_a_python_float_truth_is_compared_in_float64_not_rounded_to_float32():
    """A correct float64 answer must pass a tolerance tighter than float32's spacing (exercise 3
    asks for 1e-9): torch.as_tensor(a Python float) alone makes float32, and a float64 answer then
    sits 7e-9 away from its own truth."""
    truth = 1.4179344123456789
    compare.assert_close(torch.tensor(truth, dtype=torch.float64), truth, "a 0-d float64",
                         rtol=1e-12)
    compare.assert_close(np.float64(truth), truth, "a numpy float64", rtol=1e-12)
    compare.assert_close(truth, torch.tensor(truth, dtype=torch.float64), "a float", rtol=1e-12)
    with pytest.raises(AssertionError, match="expected 1.4179344, got 1.4179345"):
        compare.assert_close(truth + 1e-7, truth, "off by 1e-7", rtol=1e-9)


def test_every_entry_is_compared_not_any():
    """One wrong entry among many fails the comparison, wherever it sits, and the mistakes table
    names a mistake only when every entry matches it."""
    truth = torch.linspace(1, 2, 50, dtype=torch.float64)
    for i in (0, 17, 49):
        wrong = truth.clone()
        wrong[i] += 0.1
        with pytest.raises(AssertionError, match=f"1 of 50 entries wrong; the first, entry {i}"):
            compare.assert_close(wrong, truth, "a vector")
    half = truth.clone()
    half[:25] *= 2
    with pytest.raises(AssertionError, match="25 of 50 entries wrong"):
        compare.assert_close(half, truth, "a vector", mistakes={"doubled": 2 * truth})
    with pytest.raises(AssertionError, match="a vector: doubled"):
        compare.assert_close(2 * truth, truth, "a vector", mistakes={"doubled": 2 * truth})
    with pytest.raises(AssertionError, match="expected shape"):
        compare.assert_close(truth[:49], truth, "a vector")


def test_a_float_answer_may_be_any_number_or_0_d_tensor_and_nothing_else():
    for got in (0.5, np.float32(0.5), np.float64(0.5), torch.tensor(0.5),
                torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.5, requires_grad=True)):
        assert compare.number(got, "x") == 0.5
    with pytest.raises(AssertionError, match="a Tensor of shape \\(1,\\): return float"):
        compare.number(torch.tensor([0.5]), "x")
    with pytest.raises(AssertionError, match="should be a number"):
        compare.number(None, "x")


def test_an_answer_that_edits_its_arguments_in_place_is_refused_by_name():
    student = answers("ex1_target", """
        def target_policy(pi_old, advantages, eta):
            advantages /= eta
            return torch.softmax(torch.log(pi_old) + advantages, dim=-1)
    """)
    pi_old = torch.full((4,), 0.25, dtype=torch.float64)
    advantages = torch.arange(4, dtype=torch.float64)
    with pytest.raises(AssertionError, match="changed its argument `advantages` in place"):
        student.target_policy(pi_old, advantages, 0.5)
    answers("ex1_target").target_policy(pi_old, advantages.clone(), 0.5)  # the solution passes


# Exercise 3: the residual as a float64 tensor, and the closed form with a made-up path.

def test_ex3_a_residual_returned_as_a_float64_0_d_tensor_passes():
    check = _load("test_ex3_stationarity")
    student = answers("ex3_stationarity", """
        def stationarity_residual(pi, pi_old, advantages, eta, divergence):
            slopes = DIVERGENCES[divergence].f_prime(torch.exp(_log_x(pi, pi_old, advantages, eta)))
            return slopes.max() - slopes.min()
        def lagrange_multiplier(pi_old, advantages, eta, divergence):
            log_z = torch.logsumexp(torch.log(pi_old) + advantages / eta, dim=-1)
            return DIVERGENCES[divergence].f_prime(torch.exp(-log_z))
    """)
    for divergence in check.STRICT:
        check.test_the_residual_is_the_spread_of_f_prime_not_of_x(student, divergence)
        check.test_the_residual_vanishes_at_the_target_and_only_there(student, divergence)
        check.test_mu_is_f_prime_of_one_over_z(student, divergence)


CLOSED_FORM = """
    def objective(theta, pi_old, advantages, eta, divergence):
        per_response = lad_loss(torch.log_softmax(theta, -1), torch.log(pi_old), advantages,
                                eta=eta, divergence=divergence, reduction="none")
        return (pi_old * per_response).sum()

    def closed_form(pi_old, advantages, eta):
        return torch.softmax(torch.log(pi_old) + advantages / eta, -1)
"""


@pytest.mark.parametrize("made_up", ["two points", "a few steps, then the closed form",
                                     "a few steps, then the closed form twice"])
def test_ex3_the_closed_form_with_a_made_up_path_is_refused(made_up):
    steps, repeats = {"two points": (0, 1), "a few steps, then the closed form": (5, 1),
                      "a few steps, then the closed form twice": (5, 2)}[made_up]
    student = answers("ex3_stationarity", CLOSED_FORM + f"""
    def minimise_exact_objective(pi_old, advantages, eta, divergence):
        theta = torch.log(pi_old).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([theta], lr=0.05)
        path = [float(objective(theta, pi_old, advantages, eta, divergence).detach())]
        for _ in range({steps}):
            loss = objective(theta, pi_old, advantages, eta, divergence)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            path.append(float(objective(theta, pi_old, advantages, eta, divergence).detach()))
        pi = closed_form(pi_old, advantages, eta)
        end = float(objective(torch.log(pi), pi_old, advantages, eta, divergence))
        return pi, path + [end] * {repeats}
    """)
    check = _load("test_ex3_stationarity")
    with pytest.raises(AssertionError, match="the path jumps in one entry"):
        check.test_the_minimiser_gets_there_by_optimising_from_pi_old(student, "js")


def test_ex3_an_adam_path_passes():
    """The jump rule leaves a real optimiser alone: Adam at lr 0.1, 300 steps."""
    student = answers("ex3_stationarity", CLOSED_FORM + """
    def minimise_exact_objective(pi_old, advantages, eta, divergence):
        theta = torch.log(pi_old).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([theta], lr=0.1)
        path = [float(objective(theta, pi_old, advantages, eta, divergence).detach())]
        for _ in range(300):
            loss = objective(theta, pi_old, advantages, eta, divergence)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            path.append(float(objective(theta, pi_old, advantages, eta, divergence).detach()))
        return torch.softmax(theta.detach(), -1), path
    """)
    check = _load("test_ex3_stationarity")
    check.test_the_minimiser_gets_there_by_optimising_from_pi_old(student, "js")


# Exercise 5: the forbidden shortcut, and an in-place edit named as such.

def test_ex5_predicting_the_target_by_normalising_first_is_refused(monkeypatch):
    check = _load("test_ex5_normalisation")
    calls = answers("ex5_normalisation", """
        def predicted_lad_target(advantages, pi_old, eta, divide_by_std):
            return bandit.target_policy(
                pi_old, normalise_advantages(advantages, pi_old, divide_by_std), eta)
    """)
    inline = answers("ex5_normalisation", """
        def predicted_lad_target(advantages, pi_old, eta, divide_by_std):
            mean, std = _mean_and_std(advantages, pi_old)
            return bandit.target_policy(pi_old, (advantages - mean) / std, eta)
    """)
    for student, shortcut in ((calls, "calls normalise_advantages"),
                              (inline, "not the raw ones plus a constant")):
        with monkeypatch.context() as patch, pytest.raises(AssertionError, match=shortcut):
            check.test_the_prediction_is_written_with_the_raw_advantages(student, patch, True)
    check.test_the_prediction_is_written_with_the_raw_advantages(
        answers("ex5_normalisation"), monkeypatch, True)


def test_ex5_an_in_place_normalisation_is_named_as_such_not_as_the_variance():
    check = _load("test_ex5_normalisation")
    student = answers("ex5_normalisation", """
        def normalise_advantages(advantages, pi_old, divide_by_std=True):
            mean, std = _mean_and_std(advantages, pi_old)
            advantages -= mean
            if divide_by_std:
                advantages /= std
            return advantages
    """)
    with pytest.raises(AssertionError, match="changed its argument `advantages` in place"):
        check.test_normalised_advantages_have_mean_zero_and_std_one_under_pi_old(student)


# Exercise 9: autograd in place of the derivation; the input's dtype.

@pytest.mark.parametrize("source", ["""
    def lad_weight(ratios, advantage, eta, divergence):
        from plots.gradient_weights import gradient_weight
        return gradient_weight(ratios, advantage, divergence, eta=eta).to(ratios.dtype)
""", """
    def lad_weight(ratios, advantage, eta, divergence):
        from lad_loss import lad_loss
        logp = torch.log(ratios).detach().clone().requires_grad_(True)
        loss = lad_loss(logp, torch.zeros_like(logp), torch.full_like(logp, advantage), eta=eta,
                        divergence=divergence, reduction="sum")
        (grad,) = torch.autograd.grad(loss, logp)
        return -grad / ratios
""", """
    def lad_weight(ratios, advantage, eta, divergence):
        from lad_loss import lad_loss
        with torch.enable_grad():
            logp = torch.log(ratios).detach().clone().requires_grad_(True)
            loss = lad_loss(logp, torch.zeros_like(logp), torch.full_like(logp, advantage),
                            eta=eta, divergence=divergence, reduction="sum")
            (grad,) = torch.autograd.grad(loss, logp)
        return -grad / ratios
"""], ids=["gradient_weight", "autograd on lad_loss", "autograd, grad enabled"])
def test_ex9_a_weight_read_off_autograd_is_refused(source):
    check = _load("test_ex9_gradient_weight")
    with pytest.raises(AssertionError, match="reads its answer off autograd"):
        check.test_lad_weight_is_what_autograd_reads_off_lad_loss(
            answers("ex9_gradient_weight", source), "js", 0.5, torch.float64)


def test_ex9_a_weight_in_another_dtype_than_its_input_is_refused():
    check = _load("test_ex9_gradient_weight")
    float64_out = answers("ex9_gradient_weight", """
        def lad_weight(ratios, advantage, eta, divergence):
            log_x = torch.log(ratios.double()) - advantage / eta
            return -DIVERGENCES[divergence].f_prime(torch.exp(log_x))
        def js_weight_at_ratio_one(advantages, eta):
            return 0.5 * (F.softplus(advantages.double() / eta) - LOG_2)
    """)
    with pytest.raises(AssertionError, match="returned torch.float64 for torch.float32 input"):
        check.test_lad_weight_is_what_autograd_reads_off_lad_loss(
            float64_out, "kl", 0.5, torch.float32)
    with pytest.raises(AssertionError, match="returned torch.float64 for torch.float32 input"):
        check.test_the_js_weight_at_ratio_one_is_lad_as_reinforce(float64_out)
    python_numbers = answers("ex9_gradient_weight", """
        def grpo_weight(ratios, advantage, clip_eps):
            clipped = ratios > 1 + clip_eps if advantage > 0 else ratios < 1 - clip_eps
            return torch.where(clipped, 0.0, advantage)
    """)
    with pytest.raises(AssertionError, match="returned torch.float32 for torch.float64 input"):
        check.test_grpo_weight_is_what_autograd_reads_off_grpo_loss(
            python_numbers, 0.5, torch.float64)
    check.test_grpo_weight_is_what_autograd_reads_off_grpo_loss(
        python_numbers, 0.5, torch.float32)  # right for float32 input: the value is checked too


# Exercise 13: ratios far from 1.

@pytest.mark.parametrize("divergence", ["js", "kl", "hd"])
def test_ex13_a_weight_right_only_near_ratio_one_is_refused(divergence):
    """The ratio grid must reach far from 1, where a frozen pi_old takes it: here the weight is
    right for ratios within [1/3, 3] and frozen at its edge value beyond."""
    check = _load("test_ex13_weighted_likelihood")
    student = answers("ex13_weighted_likelihood", """
        def weight_on_grad_log_pi(ratios, advantages, eta, divergence):
            near = ratios.clamp(1 / 3, 3)
            x = near / torch.exp(advantages / eta)
            return -near * DIVERGENCES[divergence].f_prime(x)
    """)
    with pytest.raises(AssertionError, match="entries wrong"):
        check.test_the_weight_on_grad_log_pi_is_what_autograd_reads_off_lad_loss(
            student, divergence)


# Exercise 14: the self-normalised importance weights and their bias.

def test_ex14_weights_without_the_importance_correction_are_refused(monkeypatch):
    """Right only when q = pi_sft: the check's sampler is neither pi_sft nor pi*."""
    check = _load("test_ex14_importance_weights")
    student = answers("ex14_importance_weights", """
        def group_weights(log_q, log_sft, advantages, eta):
            return torch.softmax(log_sft + advantages / eta, dim=0)
    """)
    with pytest.raises(AssertionError, match="importance correction is missing"):
        check.test_the_group_weights_are_pi_sft_exp_a_over_eta_over_q_normalised(
            student, monkeypatch, 0.25)


def test_ex14_weights_that_overflow_in_float32_are_refused(monkeypatch):
    check = _load("test_ex14_importance_weights")
    student = answers("ex14_importance_weights", """
        def group_weights(log_q, log_sft, advantages, eta):
            w = torch.exp(log_sft + advantages / eta - log_q)
            return w / w.sum()
    """)
    with pytest.raises(AssertionError, match="overflows at A/eta = 90"):
        check.test_the_group_weights_stay_finite_in_float32_and_keep_its_dtype(
            student, monkeypatch)


def test_ex14_the_limit_given_for_the_finite_group_expectation_is_refused():
    check = _load("test_ex14_importance_weights")
    student = answers("ex14_importance_weights", """
        def expected_estimate(values, q, pi_sft, advantages, eta, group_size):
            return (torch.softmax(pi_sft.log() + advantages / eta, 0) * values).sum()
    """)
    with pytest.raises(AssertionError, match=r"that is E_pi\*\[v\], the limit"):
        check.test_the_expected_estimate_is_the_average_over_every_group(student, 2)

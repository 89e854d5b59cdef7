"""Check of exercise 9: LAD's gradient weight -f'(x) and GRPO's clipped A, against autograd.

The truth is read off autograd on the real lad_loss and grpo_loss
(plots.gradient_weights.gradient_weight, the function that draws plots/gradient_weights.png).
Answers computed in float32 pass. JS and KL are the exercise; the four other divergences are
optional, and their tests are skipped while an answer raises NotImplementedError for them. A wrong
vector is reported by its first wrong entry: the ratio (or the advantage) there, what the weight
should be and what came back, not as 81 numbers.

Wrong answers it rejects, each tried, with the message naming the mistake: +f'(x) (the sign),
-f'(ratio) (the target left out of x), -f'(x) * ratio (the weight on grad log pi instead of on
ratio * grad log pi); GRPO's A with no clip, and a clip that stops pushes on both sides; the JS
weight at ratio 1 as 1/2 (log(1 + exp(a)) - log 2), which overflows in float32, and with its sign
flipped; the stopping ratio as exp(-A/eta), KL's as exp(A/eta) or exp(A/eta + 1), and a number for
reverse KL; the JS brake given as -log 2 or as +1/2 log 2, and a finite number for KL; a weight
of another dtype than its input (float64 computed for float32 input, or float32 from a
torch.where with Python numbers for float64 input); and a weight read off autograd (on lad_loss,
grpo_loss or gradient_weight) instead of derived: the answers run with autograd unavailable.
"""
import math

import pytest
import torch

from compare import assert_close, assert_dtype, number
from lad_loss import DIVERGENCES
from plots.gradient_weights import gradient_weight

ETA = 0.25
CLIP_EPS = 0.2
REQUIRED = ["js", "kl"]  # the paper's choice and the familiar one: the lab's part
OPTIONAL = ["rkl", "jf", "tv", "hd"]
# Ratios from 0.01 to 100, none of them on a clip boundary or exactly on a target exp(A/eta).
RATIOS = torch.logspace(-2, 2, 81, dtype=torch.float64) * 1.0001


def at_ratio(i: int) -> str:
    return f"ratio {float(RATIOS[i]):.4g}"


@pytest.fixture
def ex9(exercise):
    return exercise("ex9_gradient_weight")


def derived(function, *args):
    """function(*args) with autograd unavailable (torch.inference_mode): the statement asks for the
    weights derived on paper, and the truth here is what autograd reads off the losses, so an
    answer that asks autograd would only be compared with itself."""
    with torch.inference_mode():
        try:
            got = function(*args)
        except RuntimeError as error:
            if "grad" not in str(error) and "nference" not in str(error):
                raise
            raise AssertionError(
                f"{function.__name__} reads its answer off autograd (it raised \"{error}\" with "
                f"autograd unavailable): the exercise asks for the formula derived on paper, "
                f"which the check compares with autograd on the real losses") from None
    return got.clone() if isinstance(got, torch.Tensor) else got  # a tensor outside inference mode


def answer(function, divergence: str, *args):
    """derived(function, *args), or a skip: an optional divergence whose answer is not written."""
    try:
        return derived(function, *args)
    except NotImplementedError:
        if divergence in OPTIONAL:
            pytest.skip(f"optional, not written: {function.__name__} for {divergence}")
        raise


@pytest.mark.parametrize("divergence", REQUIRED + OPTIONAL)
@pytest.mark.parametrize("advantage", [0.5, -0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_lad_weight_is_what_autograd_reads_off_lad_loss(ex9, divergence, advantage, dtype):
    truth = gradient_weight(RATIOS, advantage, divergence, eta=ETA)
    got = answer(ex9.lad_weight, divergence, RATIOS.to(dtype), advantage, ETA, divergence)
    f_prime = DIVERGENCES[divergence].f_prime
    x = RATIOS / math.exp(advantage / ETA)
    assert_dtype(got, dtype, f"lad_weight({divergence})")
    assert_close(got, truth, f"lad_weight({divergence}, A = {advantage:+g}, 1/eta = 4)",
                 entry=at_ratio, mistakes={
        "the sign: a loss is minimised, so the push is -f'(x), not f'(x)": f_prime(x),
        "-f'(ratio): x is the ratio measured against its target, ratio / exp(A/eta)":
            -f_prime(RATIOS),
        "-f'(x) * ratio is the weight on grad log pi; the question asks for the weight on "
        "ratio * grad log pi": -f_prime(x) * RATIOS,
    })


@pytest.mark.parametrize("advantage", [0.5, -0.5])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_grpo_weight_is_what_autograd_reads_off_grpo_loss(ex9, advantage, dtype):
    truth = gradient_weight(RATIOS, advantage, "grpo", clip_eps=CLIP_EPS)
    got = derived(ex9.grpo_weight, RATIOS.to(dtype), advantage, CLIP_EPS)
    assert_dtype(got, dtype, "grpo_weight")
    outside = (RATIOS > 1 + CLIP_EPS) | (RATIOS < 1 - CLIP_EPS)
    assert_close(got, truth, f"grpo_weight(A = {advantage:+g}, clip_eps = {CLIP_EPS})",
                 entry=at_ratio, mistakes={
        "no clip: past 1 + eps (A > 0) or below 1 - eps (A < 0) the clipped term is the smaller "
        "one, and it is a constant": torch.full_like(RATIOS, advantage),
        "a clip on both sides: it only ends the push in the direction A points (a response with "
        "A > 0 below 1 - eps is still pushed up, one with A < 0 above 1 + eps still pushed down)":
            torch.where(outside, 0.0, advantage),
    })


def test_the_js_weight_at_ratio_one_is_lad_as_reinforce(ex9):
    """One update per batch: the ratio is 1, and LAD's loss is REINFORCE with this advantage."""
    advantages = torch.linspace(-3, 3, 25, dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    truth = torch.stack([gradient_weight(one, float(a), "js", eta=ETA)[0] for a in advantages])
    got = derived(ex9.js_weight_at_ratio_one, advantages, ETA)
    assert_dtype(got, torch.float64, "js_weight_at_ratio_one")
    assert_close(got, truth, "js_weight_at_ratio_one, -f'(exp(-A/eta)) for JS, 1/eta = 4",
                 entry=lambda i: f"A = {float(advantages[i]):+.4g}",
                 mistakes={"the sign: the weight is -f'(x), positive for a good response": -truth})
    a = torch.tensor([1000.0, -1000.0, 0.0, 30.0]) * ETA  # A / eta = 1000, -1000, 0, 30 in float32
    got = derived(ex9.js_weight_at_ratio_one, a, ETA)
    assert_dtype(got, torch.float32, "js_weight_at_ratio_one")
    assert torch.isfinite(got).all(), (
        f"js_weight_at_ratio_one overflows in float32 at A/eta = 1000: {got.tolist()}; "
        f"log(1 + e^a) is softplus(a)")
    a64 = a.double() / ETA
    assert_close(got, 0.5 * (torch.nn.functional.softplus(a64) - math.log(2)),
                 "js_weight_at_ratio_one in float32", entry=lambda i: f"A/eta = {float(a64[i]):g}")


@pytest.mark.parametrize("divergence", REQUIRED + OPTIONAL)
def test_the_ratio_where_the_push_stops(ex9, divergence):
    advantage = 0.5
    got = answer(ex9.stopping_ratio, divergence, advantage, ETA, divergence)
    weights = gradient_weight(RATIOS, advantage, divergence, eta=ETA)
    if (weights > 0).all():
        assert got is None, (
            f"stopping_ratio({divergence}): autograd on lad_loss finds the weight positive at "
            f"every ratio (f'(x) = -1/x < 0 for all x), so the push never stops: expected None, "
            f"got {got}")
        return
    assert got is not None, \
        f"stopping_ratio({divergence}): the weight does change sign, so expected a ratio, got None"
    # The true zero, by bisection on the autograd weight (decreasing in the ratio).
    lo, hi = math.log(0.01), math.log(100.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        ratio = torch.tensor([math.exp(mid)], dtype=torch.float64)
        if float(gradient_weight(ratio, advantage, divergence, eta=ETA)) > 0:
            lo = mid
        else:
            hi = mid
    truth = math.exp(0.5 * (lo + hi))
    a = advantage / ETA
    mistakes = {"exp(-A/eta): x = ratio / exp(A/eta), so x = 1 at ratio = exp(+A/eta)":
                math.exp(-a)}
    if divergence == "kl":
        mistakes["exp(A/eta) is where x = 1, but KL's f'(x) = log x + 1 is zero at x = 1/e"] = \
            math.exp(a)
        mistakes["exp(A/eta + 1): KL's f'(x) = log x + 1 is zero at x = 1/e, not at x = e"] = \
            math.exp(a + 1)
    got = number(got, f"stopping_ratio({divergence})")
    assert_close(got, truth, f"stopping_ratio({divergence}, A = +0.5, 1/eta = 4)",
                 mistakes=mistakes)


@pytest.mark.parametrize("divergence", REQUIRED + OPTIONAL)
def test_the_brake_on_an_over_confident_response(ex9, divergence):
    got = number(answer(ex9.weight_when_over_confident, divergence, divergence),
                 f"weight_when_over_confident({divergence})")
    far = gradient_weight(torch.tensor([1e8, 1e12], dtype=torch.float64), 0.5, divergence, eta=ETA)
    if float(far[1]) < float(far[0]) - 1:  # still falling by a lot: unbounded
        assert got == float("-inf"), (
            f"weight_when_over_confident({divergence}): autograd gives {float(far[0]):.2f} at "
            f"ratio 1e8 and {float(far[1]):.2f} at 1e12, falling without bound: expected -inf, "
            f"got {got}")
        return
    mistakes = {
        "-log 2: JS's f'(x) = 1/2 log(2x / (x + 1)) tends to 1/2 log 2": -math.log(2),
        "the sign: the weight is -f'(x), and JS's f'(x) tends to +1/2 log 2": 0.5 * math.log(2),
    } if divergence == "js" else None
    assert_close(got, far[1], f"weight_when_over_confident({divergence})", atol=1e-3,
                 mistakes=mistakes)

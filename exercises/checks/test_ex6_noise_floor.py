"""Check of exercise 6: the gradient weight at the optimum predicts which divergences stall.

Answers computed in float32 pass: the weights are compared to 1e-6, float32's precision near 1."""
import math

import pytest
import torch

import bandit
from lad_loss import DIVERGENCES

NAMES = ["kl", "rkl", "jf", "tv", "hd", "js"]


@pytest.fixture
def ex6(exercise):
    return exercise("ex6_noise_floor")


def test_the_bandit_normaliser(ex6):
    assert ex6.bandit_normaliser(centre_advantages=False) == pytest.approx(1.0, abs=1e-5), \
        "the bandit's advantages are built so that Z = E_pi_0[exp(A/eta)] = 1 at eta = 0.25"
    pi_0 = bandit.uniform_policy().double()
    centred = bandit.bandit_advantages(pi_0, centre=True)
    assert ex6.bandit_normaliser(centre_advantages=True) == pytest.approx(
        float((pi_0 * torch.exp(centred / 0.25)).sum()), rel=1e-5), \
        "Z with centred advantages (about 2.8)"
    assert ex6.bandit_normaliser(centre_advantages=True, eta=0.5) == pytest.approx(
        float((pi_0 * torch.exp(centred / 0.5)).sum()), rel=1e-5), \
        "Z with centred advantages at eta = 0.5"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("Z", [0.5, 1.0, math.e, 4.0])
def test_weight_at_optimum_is_minus_f_prime_of_one_over_z(ex6, name, Z):
    expected = -float(DIVERGENCES[name].f_prime(torch.tensor(1 / Z, dtype=torch.float64)))
    assert ex6.weight_at_optimum(name, Z) == pytest.approx(expected, abs=1e-6), \
        f"at the optimum every x = 1/Z, so the weight is -f'(1/Z) = {expected:.6g}"


def test_a_few_weights_by_hand(ex6):
    assert ex6.weight_at_optimum("kl", 1.0) == pytest.approx(-1.0)  # f' = log x + 1
    assert ex6.weight_at_optimum("kl", math.e) == pytest.approx(0.0, abs=1e-6)
    assert ex6.weight_at_optimum("rkl", 2.0) == pytest.approx(2.0)  # f' = -1/x
    assert ex6.weight_at_optimum("hd", 4.0) == pytest.approx(1.0)  # f' = 1 - 1/sqrt(x)
    assert ex6.weight_at_optimum("js", 1.0) == pytest.approx(0.0, abs=1e-6)


def test_predictions(ex6):
    assert ex6.quietest_divergences(1.0) == ["hd", "jf", "js", "tv"], \
        ("with Z = 1 the optimum is at x = 1, where f' = 0 for hd, jf and js; tv's f' jumps "
         "there from -1/2 to +1/2, so its weight is +-1/2 with the sign of the error: a push back, "
         "as quiet")
    assert ex6.quietest_divergences(ex6.bandit_normaliser(centre_advantages=True)) == ["kl"], \
        "with Z = 2.8, close to e, KL's f'(1/Z) = 1 - log Z is the one nearest 0"
    assert ex6.quietest_divergences(0.5) == ["js"], \
        "with Z = 0.5 (x = 2) JS's f' is the flattest above 1"
    assert ex6.silencing_normaliser("kl") == pytest.approx(math.e, rel=1e-6), \
        "KL's f'(x) = log x + 1 is 0 at x = 1/e"
    assert ex6.silencing_normaliser("rkl") is None, \
        "reverse KL's f'(x) = -1/x is never 0: expected None"
    for name in ["jf", "tv", "hd", "js"]:
        assert ex6.silencing_normaliser(name) == pytest.approx(1.0, rel=1e-6), \
            f"{name}'s f' is 0 at x = 1 (tv's jumps through 0 there), so Z = 1"


@pytest.mark.parametrize("centre_advantages", [False, True])
def test_the_measured_floors_confirm_the_prediction(ex6, centre_advantages):
    floors = ex6.measure_noise_floors(centre_advantages)
    assert sorted(floors) == sorted(NAMES), (f"expected one floor per divergence {NAMES}, got "
                                             f"{sorted(floors)}")
    assert all(0 < value < 1 for value in floors.values()), f"a TV lies between 0 and 1: {floors}"
    # Rounded: the bandit's float32 advantages give Z = 1 only to about 1e-8, and TV's f' jumps at
    # 1.
    quiet = ex6.quietest_divergences(round(ex6.bandit_normaliser(centre_advantages), 6))
    loud = [name for name in NAMES if name not in quiet]
    table = ", ".join(f"{name} {value:.4f}" for name, value in floors.items())
    assert max(floors[n] for n in quiet) < min(floors[n] for n in loud) / 2.5, \
        (f"the predicted quietest {quiet} should stop at least 2.5x closer than the others; "
         f"floors: {table}")

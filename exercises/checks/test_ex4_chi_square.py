"""Check of exercise 4: the Pearson chi-square divergence, its log-space form, and LAD with it."""
import pytest
import torch

import bandit
from lad_loss import DIVERGENCES, lad_loss

FLOAT32_MAX = torch.finfo(torch.float32).max


@pytest.fixture
def ex4(exercise):
    return exercise("ex4_chi_square")


@pytest.fixture
def clean_registry():
    """Take "chi2" out of lad_loss.DIVERGENCES after the test: the dictionary is shared state."""
    yield
    DIVERGENCES.pop("chi2", None)


def textbook(u, a):
    """exp(a) * f(exp(u - a)) exactly as written, in float64: fine for moderate u and a."""
    return torch.exp(a) * (torch.exp(u - a) - 1) ** 2


def test_generator_values_convexity_and_derivative(ex4):
    x = torch.tensor([0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    values = ex4.f(x)
    assert torch.allclose(values, torch.tensor([1.0, 0.25, 0.0, 4.0], dtype=torch.float64)), \
        f"f(x) = (x - 1)^2 at x = 0, 0.5, 1, 3 should be 1, 0.25, 0, 4; got {values.tolist()}"
    grid = torch.linspace(0.05, 6.0, 400, dtype=torch.float64)
    fx = ex4.f(grid)
    assert (fx[2:] - 2 * fx[1:-1] + fx[:-2] > 0).all(), "f must be strictly convex"
    points = torch.tensor([0.1, 0.9, 1.0, 1.5, 10.0], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(ex4.f(points).sum(), points)
    got = ex4.f_prime(points.detach())
    assert torch.allclose(got, slope, rtol=1e-12), \
        (f"f_prime should be the derivative of f, {slope.tolist()} at {points.tolist()}; "
         f"got {got.tolist()}")
    divergence = ex4.chi2_divergence()
    assert divergence.name == "chi2", \
        f"the divergence must be named 'chi2', got {divergence.name!r}"
    assert divergence.strictly_convex is True, \
        "chi-square is strictly convex (f'' = 2 > 0): strictly_convex must be True"
    module = ex4.module  # the functions themselves, not the check's guarded wrappers of them
    holds_this_module = (divergence.f is module.f and divergence.f_prime is module.f_prime
                         and divergence.weighted_f is module.weighted_f)
    assert holds_this_module, "chi2_divergence() must hold this module's f, f_prime and weighted_f"


def test_log_space_form_matches_the_textbook_form_in_float64(ex4):
    gen = torch.Generator().manual_seed(0)
    u = torch.empty(2000, dtype=torch.float64).uniform_(-6, 6, generator=gen)
    a = torch.empty(2000, dtype=torch.float64).uniform_(-6, 6, generator=gen)
    got, expected = ex4.weighted_f(u, a), textbook(u, a)
    worst = int(((got - expected).abs() / expected.abs().clamp_min(1e-12)).argmax())
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12), (
        f"weighted_f should equal exp(a) (exp(u - a) - 1)^2; at u = {float(u[worst]):.3f}, a = "
        f"{float(a[worst]):.3f} expected {float(expected[worst]):.6g}, got {float(got[worst]):.6g}")


def test_accurate_near_the_optimum_in_float32(ex4):
    """x = exp(u - a) within 1e-5 of 1: the naive exp(u) - exp(a) keeps about two digits there."""
    d = torch.tensor([1e-5, -1e-5, 1e-3, -1e-3, 0.1, -2.0, 3.0])
    for a0 in (-20.0, 0.0, 20.0):
        a = torch.full_like(d, a0)
        u = a + d  # rounded to float32; the reference below starts from these same float32 inputs
        got = ex4.weighted_f(u, a)
        assert got.dtype == torch.float32, \
            f"float32 inputs should give float32 values, got {got.dtype}"
        reference = textbook(u.double(), a.double())
        relative_error = ((got.double() - reference) / reference).abs()
        assert (relative_error < 1e-4).all(), f"a = {a0}: relative errors {relative_error.tolist()}"


def test_finite_exactly_where_the_true_value_is_a_float32_number(ex4):
    grid = torch.linspace(-50.0, 50.0, 41)
    u, a = (t.reshape(-1) for t in torch.meshgrid(grid, grid, indexing="ij"))
    true_value = textbook(u.double(), a.double())  # float64 holds up to e^709: e^150 is fine
    predicted = ex4.representable_in_float32(u.double(), a.double())
    wrong = predicted != (true_value <= FLOAT32_MAX)
    assert not wrong.any(), (
        "representable_in_float32 should be True exactly where the true value is <= "
        f"{FLOAT32_MAX:.3g}; it is wrong at {int(wrong.sum())} of {wrong.numel()} points, "
        f"e.g. u = {float(u[wrong][0]):g}, "
        f"a = {float(a[wrong][0]):g} (true value {float(true_value[wrong][0]):.3g})")
    assert (~predicted).sum() > 100, "a large part of the square is beyond float32"

    small = true_value < FLOAT32_MAX / 4  # away from the edge, where the last rounding decides
    large = true_value > FLOAT32_MAX * 4
    assert not torch.isfinite(ex4.weighted_f(u[large], a[large])).any(), \
        ("where the true value is beyond float32, weighted_f should return inf, not a finite wrong "
         "number")
    u_small = u[small].requires_grad_(True)
    value = ex4.weighted_f(u_small, a[small])
    assert torch.isfinite(value).all(), "overflow where the true value is a float32 number"
    (grad,) = torch.autograd.grad(value.sum(), u_small)
    assert torch.isfinite(grad).all(), "the gradient overflows where the value is a float32 number"


def test_lad_with_chi2_is_minimised_at_the_target(ex4, clean_registry):
    ex4.register()
    pi_old = torch.softmax(torch.tensor([0.3, -0.5, 0.1, 0.9, -1.2], dtype=torch.float64), 0)
    advantages = torch.tensor([0.8, 0.8, -0.3, 0.1, -1.0], dtype=torch.float64)
    eta = 0.5

    def objective(theta):
        per_response = lad_loss(torch.log_softmax(theta, 0), pi_old.log(), advantages, eta=eta,
                                divergence="chi2", reduction="none")
        return (pi_old * per_response).sum()

    theta_star = (pi_old.log() + advantages / eta).requires_grad_(True)  # the logits of the target
    (grad,) = torch.autograd.grad(objective(theta_star), theta_star)
    assert grad.abs().max() < 1e-12, \
        f"Lemma 3.2: the target should be a stationary point; gradient {grad.tolist()}"
    gen = torch.Generator().manual_seed(1)
    best = objective(theta_star).item()
    for _ in range(20):
        other = theta_star.detach() + 0.3 * torch.randn(5, generator=gen, dtype=torch.float64)
        assert objective(other).item() > best, \
            "a policy near the target scored lower than the target itself"


def test_the_bandit_learns_the_target_with_chi2(ex4, clean_registry):
    ex4.register()
    settings = bandit.Settings(divergence="chi2", iterations=400, lr=5e-2)
    run = bandit.train("lad-fixed", settings, progress=False)
    summary = bandit.summarise_policy(run.pi, run.target)
    assert summary["tv"] < 0.05, \
        f"LAD with chi2 should end within TV 0.05 of the target, got {summary['tv']:.3f}"
    assert summary["modes_recovered"] == 3, \
        f"expected all 3 modes, got {summary['modes_recovered']}"

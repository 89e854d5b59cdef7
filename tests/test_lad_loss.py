"""Tests of lad_loss.py: generator values and convexity, the log-space form against the textbook
form, the gradient against its analytic expression, Lemma 3.2's minimiser, float32 extremes,
errors."""
import math

import pytest
import torch

from lad_loss import DIVERGENCES, lad_loss

NAMES = sorted(DIVERGENCES)
STRICT = [n for n in NAMES if DIVERGENCES[n].strictly_convex]

# The paper's generators, written out again with the math module, independently of
# lad_loss.py, to check its values.
TEXTBOOK_F = {
    "kl": lambda x: x * math.log(x),
    "rkl": lambda x: -math.log(x),
    "jf": lambda x: (x - 1) * math.log(x),
    "tv": lambda x: 0.5 * abs(x - 1),
    "hd": lambda x: (math.sqrt(x) - 1) ** 2,
    "js": lambda x: 0.5 * (x * math.log(x) - (x + 1) * math.log((x + 1) / 2)),
}


def test_registry_is_the_papers_six_with_js_the_default():
    assert set(NAMES) == {"kl", "rkl", "jf", "tv", "hd", "js"}
    assert lad_loss.__defaults__[1] == "js"
    assert STRICT == ["hd", "jf", "js", "kl", "rkl"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ratio, weight", [(2.0, 1.0), (1.0, 2.0), (0.3, 5.0), (4.0, 0.5)])
def test_hand_computed_values(name, ratio, weight):
    """exp(A/eta) * f(x) with ratio = pi/pi_old and weight = exp(A/eta) chosen directly."""
    eta = 0.25
    logp = torch.tensor([math.log(ratio * 0.1)], dtype=torch.float64)
    logp_old = torch.tensor([math.log(0.1)], dtype=torch.float64)
    advantages = torch.tensor([eta * math.log(weight)], dtype=torch.float64)
    expected = weight * TEXTBOOK_F[name](ratio / weight)
    got = lad_loss(logp, logp_old, advantages, eta=eta, divergence=name)
    assert got.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_zero_when_the_policy_matches_its_target(name):
    # x = 1 exactly: pi / pi_old = exp(A / eta)
    advantages = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    eta = 0.5
    logp_old = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    logp = logp_old + advantages / eta
    loss = lad_loss(logp, logp_old, advantages, eta=eta, divergence=name, reduction="none")
    assert torch.allclose(loss, torch.zeros(3, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_generators_vanish_at_one_and_are_convex(name):
    d = DIVERGENCES[name]
    assert d.f(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-15)
    x = torch.linspace(0.05, 6.0, 400, dtype=torch.float64)
    fx = d.f(x)
    second_difference = fx[2:] - 2 * fx[1:-1] + fx[:-2]
    assert (second_difference >= -1e-12).all()
    if d.strictly_convex:
        assert (second_difference > 0).all()
    else:  # TV: linear on both sides of 1, so convex but not strictly
        assert (second_difference.abs() < 1e-12).sum() > 300


@pytest.mark.parametrize("name", NAMES)
def test_f_prime_is_the_derivative_of_f(name):
    d = DIVERGENCES[name]
    x = torch.tensor([0.1, 0.5, 0.9, 1.5, 3.0, 10.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(d.f(x).sum(), x)
    assert torch.allclose(d.f_prime(x.detach()), grad, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_log_space_form_matches_the_textbook_form_on_random_inputs(name):
    gen = torch.Generator().manual_seed(0)
    u = torch.empty(2000, dtype=torch.float64).uniform_(-6, 6, generator=gen)
    a = torch.empty(2000, dtype=torch.float64).uniform_(-6, 6, generator=gen)
    textbook = torch.exp(a) * DIVERGENCES[name].f(torch.exp(u - a))
    assert torch.allclose(DIVERGENCES[name].weighted_f(u, a), textbook, rtol=1e-9, atol=1e-12)


def test_js_equals_the_jensen_shannon_divergence_between_normalised_distributions():
    """Lemma 3.2's objective with exact expectations and normalised P_pi, P_A is D_f(P_pi || P_A):
    for JS that is the textbook 1/2 KL(P||M) + 1/2 KL(Q||M) with M the average."""
    gen = torch.Generator().manual_seed(1)
    pi_old = torch.softmax(torch.randn(6, generator=gen, dtype=torch.float64), 0)
    pi = torch.softmax(torch.randn(6, generator=gen, dtype=torch.float64), 0)
    eta = 0.5
    target = torch.softmax(torch.randn(6, generator=gen, dtype=torch.float64), 0)
    # choose A so that P_A = pi_old * exp(A / eta) is already normalised and equal to `target`
    advantages = eta * torch.log(target / pi_old)
    per_arm = lad_loss(pi.log(), pi_old.log(), advantages, eta=eta, divergence="js",
                       reduction="none")
    objective = (pi_old * per_arm).sum()
    m = 0.5 * (pi + target)
    js = 0.5 * (pi * (pi / m).log()).sum() + 0.5 * (target * (target / m).log()).sum()
    assert objective.item() == pytest.approx(js.item(), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_equals_f_prime_times_ratio_times_grad_log_pi(name):
    """grad of mean_i exp(a_i) f(x_i) = mean_i f'(x_i) * ratio_i * grad log pi(y_i) on a softmax."""
    gen = torch.Generator().manual_seed(2)
    n_arms, n_samples, eta = 5, 12, 0.5
    theta = torch.randn(n_arms, generator=gen, dtype=torch.float64, requires_grad=True)
    pi_old = torch.softmax(torch.randn(n_arms, generator=gen, dtype=torch.float64), 0)
    arms = torch.multinomial(pi_old, n_samples, replacement=True, generator=gen)
    advantages = torch.randn(n_samples, generator=gen, dtype=torch.float64)

    logp = torch.log_softmax(theta, 0)[arms]
    loss = lad_loss(logp, pi_old.log()[arms], advantages, eta=eta, divergence=name)
    (autograd,) = torch.autograd.grad(loss, theta)

    pi = torch.softmax(theta.detach(), 0)
    ratio = pi[arms] / pi_old[arms]
    x = ratio / torch.exp(advantages / eta)
    grad_log_pi = torch.nn.functional.one_hot(arms, n_arms).double() - pi  # d log pi(y) / d theta
    analytic = (DIVERGENCES[name].f_prime(x) * ratio).unsqueeze(1).mul(grad_log_pi).mean(0)
    assert torch.allclose(autograd, analytic, rtol=1e-9, atol=1e-12)


def _exact_objective(theta, pi_old, advantages, eta, name):
    ("""L_LAD with the exact expectation over a small categorical: sum_y pi_old(y) exp(A/eta)
    f(x_y).""")
    logp = torch.log_softmax(theta, 0)
    per_arm = lad_loss(logp, pi_old.log(), advantages, eta=eta, divergence=name, reduction="none")
    return (pi_old * per_arm).sum()


@pytest.mark.parametrize("name", STRICT)
def test_lemma_3_2_minimiser_is_pi_old_times_exp_advantage_over_eta(name):
    gen = torch.Generator().manual_seed(3)
    n, eta = 6, 0.5
    pi_old = torch.softmax(torch.randn(n, generator=gen, dtype=torch.float64), 0)
    # two arms with equal advantage: their relative probability must be kept
    advantages = torch.tensor([0.8, 0.8, -0.3, 0.1, -1.0, 0.4], dtype=torch.float64)
    theta = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], lr=1, max_iter=500, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _exact_objective(theta, pi_old, advantages, eta, name)
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    learned = torch.softmax(theta.detach(), 0)
    expected = pi_old * torch.exp(advantages / eta)
    expected = expected / expected.sum()
    assert torch.allclose(learned, expected, atol=1e-6)
    assert (learned[0] / learned[1]).item() == pytest.approx((pi_old[0] / pi_old[1]).item(),
                                                             rel=1e-5)


def test_tv_target_is_a_minimiser_but_not_the_only_one():
    gen = torch.Generator().manual_seed(4)
    n, eta = 6, 0.5
    pi_old = torch.full((n,), 1.0 / n, dtype=torch.float64)
    advantages = torch.randn(n, generator=gen, dtype=torch.float64)
    target_theta = (pi_old.log() + advantages / eta).clone()
    at_target = _exact_objective(target_theta, pi_old, advantages, eta, "tv")
    for _ in range(50):
        other = torch.randn(n, generator=gen, dtype=torch.float64) * 2
        assert _exact_objective(other, pi_old, advantages, eta, "tv") >= at_target - 1e-12
    # Moving mass between two arms that are both above their target (x >= 1) does not change the
    # TV objective: flat directions, so the minimiser of a sampled objective is not pinned down.
    pi = torch.tensor([0.3, 0.3, 0.1, 0.1, 0.1, 0.1], dtype=torch.float64)
    advantages = eta * torch.log(torch.tensor([0.2, 0.2, 0.15, 0.15, 0.15, 0.15],
                                              dtype=torch.float64) / pi_old)
    moved = torch.tensor([0.35, 0.25, 0.1, 0.1, 0.1, 0.1], dtype=torch.float64)
    a = _exact_objective(pi.log(), pi_old, advantages, eta, "tv")
    b = _exact_objective(moved.log(), pi_old, advantages, eta, "tv")
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    js_a = _exact_objective(pi.log(), pi_old, advantages, eta, "js")
    js_b = _exact_objective(moved.log(), pi_old, advantages, eta, "js")
    assert js_b > js_a  # a strictly convex divergence does tell the two apart


@pytest.mark.parametrize("name", NAMES)
def test_float32_extremes_give_finite_loss_and_gradient(name):
    """|logp - logp_old| <= 50 and |A / eta| <= 50 in float32: exp(A/eta) alone would be e^50,
    x alone up to e^100 = inf in float32."""
    eta = 0.25
    grid = torch.tensor([-50.0, -20.0, -1.0, 0.0, 1.0, 20.0, 50.0])
    u, a = torch.meshgrid(grid, grid, indexing="ij")
    logp_old = torch.full_like(u, -3.0)
    logp = (logp_old + u).reshape(-1).requires_grad_(True)
    advantages = (a * eta).reshape(-1)
    for reduction in ("none", "mean", "sum"):
        loss = lad_loss(logp, logp_old.reshape(-1), advantages, eta=eta, divergence=name,
                        reduction=reduction)
        assert torch.isfinite(loss).all()
        (grad,) = torch.autograd.grad(loss.sum(), logp)
        assert torch.isfinite(grad).all()


def _reference(name, u, a):
    """exp(a) f(exp(u - a)) and its derivative in u, f'(x) exp(u), in float64 from the textbook
    generators (near x = 1, JS's textbook form cancels even in float64: use its Taylor series)."""
    u, a = u.double(), a.double()
    log_x = u - a
    value = torch.exp(a) * TEXTBOOK_F_TORCH[name](torch.exp(log_x))
    if name == "js":  # f(e^l) = l^2/8 + l^3/16 + l^4/64 + O(l^5)
        series = torch.exp(a) * (log_x**2 / 8 + log_x**3 / 16 + log_x**4 / 64)
        value = torch.where(log_x.abs() < 1e-3, series, value)
    return value, DIVERGENCES[name].f_prime(torch.exp(log_x)) * torch.exp(u)


TEXTBOOK_F_TORCH = {
    "kl": lambda x: x * torch.log(x),
    "rkl": lambda x: -torch.log(x),
    "jf": lambda x: (x - 1) * torch.log(x),
    "tv": lambda x: 0.5 * torch.abs(x - 1),
    "hd": lambda x: (torch.sqrt(x) - 1) ** 2,
    "js": lambda x: 0.5 * (x * torch.log(x) - (x + 1) * torch.log((x + 1) / 2)),
}


def _assert_float32_matches_float64(name: str, u: torch.Tensor, a: torch.Tensor) -> None:
    """lad_loss in float32 at log-ratio u and A/eta = a, against the float64 textbook forms: the
    value to 2e-6 relative, the gradient to 1e-6 of its natural scale exp(u) (1 + |f'(x)|), which
    crosses zero where f'(x) does."""
    logp = u.clone().requires_grad_(True)
    loss = lad_loss(logp, torch.zeros_like(u), a * 0.25, eta=0.25, divergence=name,
                    reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    value, slope = _reference(name, u, a)
    assert torch.allclose(loss.double(), value, rtol=2e-6, atol=0)
    f_prime = DIVERGENCES[name].f_prime(torch.exp(u.double() - a.double()))
    scale = torch.exp(u.double()) * (1 + f_prime.abs())
    assert ((grad.double() - slope).abs() <= 1e-6 * scale).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spread", [50.0, 1e-2, 1e-5])
def test_float32_values_and_gradients_are_accurate_against_float64_textbook_forms(name, spread):
    """Random logp - logp_old and A/eta in [-50, 50], and log x = (logp - logp_old) - A/eta spread
    over [-50, 50] or clustered near x = 1, where training ends up and naive forms cancel."""
    gen = torch.Generator().manual_seed(6)
    a = torch.empty(20000).uniform_(-40, 40, generator=gen)
    u = (a + torch.empty(20000).uniform_(-spread, spread, generator=gen)).clamp(-50, 50)
    _assert_float32_matches_float64(name, u, a)


@pytest.mark.parametrize("name", NAMES)
def test_float32_precision_holds_in_the_corners_where_log_x_reaches_minus_and_plus_100(name):
    """logp - logp_old and A/eta each anywhere in [-50, 50], independently, so that log x spans
    [-100, 100], and the corners themselves. JS's textbook log-space form formed
    exp(A/eta) * sigmoid(log x), a float32 denormal below log x = -87 times e^50: its gradient
    was off by 1.7e-4 of its size at u = -49.96, A/eta = 49.93."""
    gen = torch.Generator().manual_seed(7)
    u = torch.cat([torch.empty(20000).uniform_(-50, 50, generator=gen),
                   torch.tensor([-49.96, -50.0, 50.0, -50.0, 50.0, -37.0])])
    a = torch.cat([torch.empty(20000).uniform_(-50, 50, generator=gen),
                   torch.tensor([49.93, 50.0, -50.0, -50.0, 50.0, 50.0])])
    _assert_float32_matches_float64(name, u, a)


def test_token_level_broadcasts_sequence_advantages_and_averages_unmasked_tokens():
    gen = torch.Generator().manual_seed(5)
    logp = -torch.rand(3, 4, generator=gen)
    logp_old = -torch.rand(3, 4, generator=gen)
    advantages = torch.randn(3, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    per_token = lad_loss(logp, logp_old, advantages.unsqueeze(1).expand(3, 4), reduction="none")
    assert torch.allclose(lad_loss(logp, logp_old, advantages, reduction="none"), per_token)
    assert lad_loss(logp, logp_old, advantages, mask=mask).item() == pytest.approx(
        per_token[mask].mean().item(), rel=1e-6)
    assert lad_loss(logp, logp_old, advantages, mask=mask, reduction="sum").item() == pytest.approx(
        per_token[mask].sum().item(), rel=1e-6)
    none = lad_loss(logp, logp_old, advantages, mask=mask, reduction="none")
    assert none.shape == (3, 4) and (none[~mask] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_token_level_gradient_with_a_mask_is_f_prime_times_ratio_over_the_unmasked_count(name):
    """Per-token advantages [batch, tokens] and an integer 0/1 mask. Bugs it catches: the mean taken
    over every token instead of the 5 unmasked ones (a gradient 5/8 too small), padding that still
    receives gradient, per-token advantages paired with the wrong tokens."""
    gen = torch.Generator().manual_seed(7)
    logp = (-torch.rand(2, 4, generator=gen, dtype=torch.float64)).requires_grad_(True)
    logp_old = -torch.rand(2, 4, generator=gen, dtype=torch.float64)
    advantages = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    eta = 0.5
    loss = lad_loss(logp, logp_old, advantages, eta=eta, divergence=name, mask=mask)
    (grad,) = torch.autograd.grad(loss, logp)
    ratio = torch.exp(logp.detach() - logp_old)
    x = ratio / torch.exp(advantages / eta)
    expected = DIVERGENCES[name].f_prime(x) * ratio * mask / 5
    assert torch.allclose(grad, expected, rtol=1e-10, atol=1e-15)
    assert (grad[mask == 0] == 0).all()


def test_masked_padding_cannot_poison_the_loss():
    logp = torch.tensor([[-1.0, -float("inf")]], requires_grad=True)  # padding: log 0
    logp_old = torch.tensor([[-1.2, -1.0]])
    mask = torch.tensor([[True, False]])
    loss = lad_loss(logp, logp_old, torch.tensor([0.5]), mask=mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1] == 0


def test_an_all_masked_batch_gives_zero_not_nan():
    mask = torch.zeros(2, 3, dtype=torch.bool)
    loss = lad_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2), mask=mask)
    assert loss.item() == 0.0


def test_advantages_and_logp_old_are_constants():
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    logp_old = torch.tensor([-1.5, -1.5], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0], requires_grad=True)
    lad_loss(logp, logp_old, advantages).backward()
    assert logp.grad is not None and logp_old.grad is None and advantages.grad is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=0.0), "eta"),
    (dict(eta=-1.0), "eta"),
    (dict(eta=float("nan")), "eta"),
    (dict(divergence="chi2"), "divergence"),
    (dict(reduction="max"), "reduction"),
    (dict(mask=torch.ones(4, dtype=torch.bool)), "mask"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    logp, logp_old, advantages = torch.zeros(3), torch.zeros(3), torch.zeros(3)
    with pytest.raises(ValueError, match=match):
        lad_loss(logp, logp_old, advantages, **kwargs)


def test_unknown_divergence_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        lad_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), divergence="chi2")
    for name in NAMES:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("logp_old_shape, advantages_shape, match", [
    ((3,), (4,), "advantages"),
    ((4,), (3,), "logp_old"),
    ((3, 5), (3,), "logp_old"),
])
def test_shapes_that_do_not_fit_raise(logp_old_shape, advantages_shape, match):
    with pytest.raises(ValueError, match=match):
        lad_loss(torch.zeros(3), torch.zeros(logp_old_shape), torch.zeros(advantages_shape))


def test_token_level_shape_errors():
    logp = torch.zeros(2, 5)
    with pytest.raises(ValueError, match="advantages"):
        lad_loss(logp, logp, torch.zeros(5))
    with pytest.raises(ValueError, match="mask"):
        lad_loss(logp, logp, torch.zeros(2), mask=torch.ones(2, 4, dtype=torch.bool))


# The push on a response sampled from pi_old, ratio * (-f'(x)) = exp(A/eta) * (-x f'(x)), as
# lad_loss.py's table under "The gradient" writes it, and where each generator turns it round.
PUSH_OVER_EXP_A = {
    "js": lambda x: -(x / 2) * math.log(2 * x / (1 + x)),
    "jf": lambda x: 1 - x - x * math.log(x),
    "hd": lambda x: math.sqrt(x) - x,
    "tv": lambda x: -x * math.copysign(0.5, x - 1),
    "kl": lambda x: -x * (1 + math.log(x)),
    "rkl": lambda x: 1.0,
}
BRAKE_AT_THE_TARGET = {"js", "jf", "hd", "tv"}
BRAKE_BEFORE_THE_TARGET = {"kl"}  # from x = 1/e on
NO_BRAKE = {"rkl"}


def test_which_generators_brake_js_jf_hd_tv_at_the_target_kl_before_it_reverse_kl_never():
    """-(d loss / d logp) of one sampled response, on a grid of A/eta and of x = ratio / exp(A/eta)
    on both sides of the target. A page that says "-f' turns negative beyond the target" for every
    generator, or a change to a generator, turns this red."""
    assert BRAKE_AT_THE_TARGET | BRAKE_BEFORE_THE_TARGET | NO_BRAKE == set(NAMES)
    eta = 0.5
    for name in NAMES:
        for a in (-2.0, -0.5, 0.0, 1.0, 3.0):
            for log_x in (-4.0, -2.0, -1.5, -0.5, -0.1, 0.1, 0.5, 2.0, 4.0):
                logp = torch.tensor([a + log_x], dtype=torch.float64, requires_grad=True)
                loss = lad_loss(logp, torch.zeros(1, dtype=torch.float64),
                                torch.tensor([a * eta], dtype=torch.float64), eta=eta,
                                divergence=name, reduction="sum")
                (grad,) = torch.autograd.grad(loss, logp)
                push = -grad.item()
                x = math.exp(log_x)
                assert push == pytest.approx(math.exp(a) * PUSH_OVER_EXP_A[name](x), rel=1e-9)
                if name in BRAKE_AT_THE_TARGET:
                    assert (push < 0) == (x > 1), (name, a, log_x)
                elif name in BRAKE_BEFORE_THE_TARGET:
                    assert (push < 0) == (x > math.exp(-1)), (name, a, log_x)
                else:  # the same push at every ratio: nothing turns round
                    assert push == pytest.approx(math.exp(a), rel=1e-12) and push > 0

"""Check of exercise 12: which divergence a KL anchor follows on sequences, and where training with
it ends.

The truth is the enumeration over exercises/two_token.py's policy: the expected gradient of the real
kl_penalty as a loss (samples held fixed) is computed over every completion and compared with the
gradients of the candidate divergences; an end point is right when the exact expected training
update vanishes there. Answers computed in float32 pass. Wrong answers it rejects, each tried, with
the message naming the mistake: k2's weight given as its value d^2/2, k3's weight with its sign
flipped, k2's weight for k3; the expected gradient taken through the sampling probabilities, or with
the summed log-ratio for the per-token level; k3 said to follow KL(pi || pi_ref); pi* given as the
end point of k3 or of per-token k2, the sequence-level k3 end point for per-token k3; train_exact
with the per-token penalty for the sequence level; every anchor said to reach pi*.
"""
import pytest
import torch

from compare import assert_close, tv
from exercises.two_token import V, minimise, sequence_logps, token_logps
from kl_penalty import kl_penalty

D = torch.float64
GEN = torch.Generator().manual_seed(0)
REF_LOGITS = torch.randn(V + V * V, generator=GEN, dtype=D)
ADVANTAGES = torch.randn(V, V, generator=GEN, dtype=D)
LOGITS = torch.randn(V + V * V, generator=GEN, dtype=D)  # a policy away from the reference
BETA = 0.5
CASES = [("k2", "sequence"), ("k2", "token"), ("k3", "sequence"), ("k3", "token")]
# How small the expected update must be at a claimed end point: float32's rounding of the policy.
FIXED_POINT = 1e-5


@pytest.fixture
def ex12(exercise):
    return exercise("ex12_kl_anchor_direction")


def levels(level, logits, ref_logits=REF_LOGITS):
    if level == "sequence":
        return sequence_logps(logits).reshape(-1, 1), sequence_logps(ref_logits).reshape(-1, 1)
    return token_logps(logits).reshape(-1, 2), token_logps(ref_logits).reshape(-1, 2)


def penalty_gradient(estimator, level, logits, through_sampling=False):
    """The enumerated expected gradient of the real penalty as a loss: sum_y pi(y) grad
    penalty(y)."""
    z = logits.detach().clone().requires_grad_(True)
    pi = sequence_logps(z).exp().reshape(-1)
    logp, logp_ref = levels(level, z)
    weights = pi if through_sampling else pi.detach()
    (grad,) = torch.autograd.grad((weights * kl_penalty(logp, logp_ref, estimator).sum(-1)).sum(),
                                  z)
    return grad


def kl(p_log, q_log):
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def divergence_gradients(logits):
    """The gradient in the logits of each entry of FOLLOWED."""
    def per_step(z, policy_first):
        tokens, ref = token_logps(z), token_logps(REF_LOGITS)
        pairs = [(tokens[:, 0, 0], ref[:, 0, 0]), (tokens[:, :, 1], ref[:, :, 1])]
        first, second = [kl(p, q) if policy_first else kl(q, p) for p, q in pairs]
        return first + (tokens[:, 0, 0].exp().detach() * second).sum()  # prefix weights held fixed

    def whole(z, policy_first):
        p, q = sequence_logps(z).reshape(-1), sequence_logps(REF_LOGITS).reshape(-1)
        return kl(p, q) if policy_first else kl(q, p)

    functions = [lambda z: whole(z, True), lambda z: whole(z, False),
                 lambda z: per_step(z, True), lambda z: per_step(z, False)]
    grads = []
    for f in functions:
        z = logits.detach().clone().requires_grad_(True)
        grads.append(torch.autograd.grad(f(z), z)[0])
    return grads


def training_update(estimator, level, pi):
    """The exact expected update of train_exact at the policy pi [V, V]: zero at an end point."""
    pi = pi.detach().to(D)
    pi1 = pi.sum(1)
    logits = torch.cat([pi1.log(), (pi / pi1[:, None]).log().reshape(-1)]).requires_grad_(True)
    logp_seq = sequence_logps(logits).reshape(-1)
    logp, logp_ref = levels(level, logits)
    penalty = kl_penalty(logp, logp_ref, estimator).sum(-1)
    loss = (logp_seq.exp().detach() * (-ADVANTAGES.reshape(-1) * logp_seq + BETA * penalty)).sum()
    return torch.autograd.grad(loss, logits)[0]


def pi_star():
    tilted = (sequence_logps(REF_LOGITS) + ADVANTAGES / BETA).reshape(-1)
    return torch.softmax(tilted, 0).reshape(V, V)


def sequence_k3_end_point():
    """The maximiser of E[A] - beta KL(pi_ref || pi) over completions, found numerically."""
    ref = sequence_logps(REF_LOGITS).reshape(-1)

    def negative(z):
        logp = torch.log_softmax(z, 0)
        return -((logp.exp() * ADVANTAGES.reshape(-1)).sum() - BETA * kl(ref, logp))

    return torch.softmax(minimise(negative, ref.clone()), 0).reshape(V, V)


def token_k2_end_point():
    """Backward induction for k2 per token: pi*'s second step, a first step tilted by exp(Q /
    beta)."""
    tokens = token_logps(REF_LOGITS)
    second = torch.softmax(tokens[:, :, 1] + ADVANTAGES / BETA, -1)
    first = torch.softmax(tokens[:, 0, 0] + (second * ADVANTAGES).sum(-1) / BETA, -1)
    return first[:, None] * second


@pytest.mark.parametrize("estimator", ["k2", "k3"])
@pytest.mark.parametrize("dtype", [D, torch.float32])
def test_the_gradient_weight_of_each_estimator(ex12, estimator, dtype):
    logp = torch.linspace(-6, -0.1, 25, dtype=D)
    logp_ref = logp.flip(0) - 0.3
    x = logp.clone().requires_grad_(True)
    (truth,) = torch.autograd.grad(kl_penalty(x, logp_ref, estimator).sum(), x)
    d = logp - logp_ref
    mistakes = {"k2": {"d^2 / 2 is the penalty's value; its derivative in logp is d": 0.5 * d**2,
                       "the sign: d = logp - logp_ref, and k2 grows as logp moves away from "
                       "logp_ref": -d},
                "k3": {"the sign: exp(-d) + d - 1 has the derivative 1 - exp(-d) in d = logp - "
                       "logp_ref": torch.expm1(-d),
                       "d is k2's weight; k3's is 1 - exp(-d) = 1 - pi_ref / pi": d}}[estimator]
    assert_close(ex12.gradient_weight(estimator, logp.to(dtype), logp_ref.to(dtype)), truth,
                 f"gradient_weight('{estimator}')", mistakes=mistakes)


@pytest.mark.parametrize("estimator, level", CASES)
def test_the_expected_gradient_of_each_penalty(ex12, estimator, level):
    truth = penalty_gradient(estimator, level, LOGITS)
    mistakes = {"differentiated through pi(y) as well: a sampled loss holds the samples, and their "
                "probabilities, fixed": penalty_gradient(estimator, level, LOGITS,
                                                         through_sampling=True)}
    other = "sequence" if level == "token" else "token"
    why = ("per token, each token's penalty sees only its own log-ratio" if level == "token" else
           "at the sequence level the penalty takes the summed log-ratio")
    mistakes[f"that is the {other}-level penalty's gradient: {why}"] = \
        penalty_gradient(estimator, other, LOGITS)
    got = ex12.expected_penalty_gradient(estimator, level, LOGITS, REF_LOGITS)
    logp, logp_ref = levels(level, LOGITS)
    x = logp.clone().requires_grad_(True)
    (weight,) = torch.autograd.grad(kl_penalty(x, logp_ref, estimator).sum(), x)
    try:
        weight_is_right = torch.allclose(ex12.gradient_weight(estimator, logp, logp_ref), weight,
                                         atol=1e-6)
    except NotImplementedError:
        weight_is_right = True  # not built on it
    # then a wrong answer may look like another mistake: name the cause first
    if not weight_is_right:
        mistakes = {}
    try:
        assert_close(got, truth, f"expected_penalty_gradient('{estimator}', '{level}')",
                     mistakes=mistakes)
    except AssertionError as error:
        if weight_is_right:
            raise
        raise AssertionError(f"{error} (gradient_weight('{estimator}') is wrong too: if this "
                             "builds on it, fix that first)") from None


@pytest.mark.parametrize("estimator, level", CASES)
def test_which_divergence_each_penalty_follows(ex12, estimator, level):
    truth = penalty_gradient(estimator, level, LOGITS)
    names = ex12.FOLLOWED
    matches = [name for name, grad in zip(names, divergence_gradients(LOGITS))
               if torch.allclose(grad, truth, atol=1e-10)]
    assert len(matches) == 1  # the enumeration tells the four apart
    got = ex12.followed_divergence(estimator, level)
    assert got in names, (f"followed_divergence('{estimator}', '{level}') must be one of FOLLOWED, "
                          f"got {got!r}")
    hint = ""
    if estimator == "k3" and "KL(pi || pi_ref)" in got:
        hint = " k3's value estimates KL(pi || pi_ref), but its gradient follows KL(pi_ref || pi)."
    elif (level == "token") != got.startswith("per-step"):
        hint = (" Per token, each penalty sees only its own token's log-ratio, with the prefix "
                "held fixed.")
    assert got == matches[0], (f"followed_divergence('{estimator}', '{level}'): the enumerated "
                               "expected gradient "
                               f"equals the gradient of {matches[0]!r}, not {got!r}.{hint}")


@pytest.mark.parametrize("estimator, level", CASES)
@pytest.mark.parametrize("dtype", [D, torch.float32])
def test_each_end_point_is_where_training_stops(ex12, estimator, level, dtype):
    got = ex12.end_point(estimator, level, REF_LOGITS.to(dtype), ADVANTAGES.to(dtype), BETA)
    assert got.shape == (V, V), (f"end_point('{estimator}', '{level}'): expected shape ({V}, {V}), "
                                 f"got {tuple(got.shape)}")
    assert abs(float(got.sum()) - 1) < 1e-5, (f"end_point('{estimator}', '{level}') must sum to 1, "
                                              f"got {float(got.sum())}")
    update = float(training_update(estimator, level, got).abs().max())
    if update < FIXED_POINT:
        return
    known = {"pi*, the end point of k2 on the summed log-ratio": pi_star(),
             "the end point of k3 on the summed log-ratio": sequence_k3_end_point(),
             "the end point of k2 per token": token_k2_end_point()}
    for name, pi in known.items():
        if tv(got, pi) < 1e-5:
            hint = ("k3's gradient follows KL(pi_ref || pi): each step's end point is beta pi_ref "
                    "/ (mu - A)."
                    if estimator == "k3" else "")
            if level == "token" and "per token" not in name:
                hint += (" Per token, the first step sees the mean advantage Q(y1) of the second, "
                         "not its soft value.")
            raise AssertionError(f"end_point('{estimator}', '{level}') returned {name}; training "
                                 "with this anchor does not stop there (largest expected update "
                                 f"{update:.1e}). {hint.strip()}")
    raise AssertionError(f"end_point('{estimator}', '{level}'): the exact expected training update "
                         "is not zero there "
                         f"(largest entry {update:.1e}, allowed {FIXED_POINT:.0e})")


@pytest.mark.parametrize("estimator, level", CASES)
def test_training_ends_at_the_end_point(ex12, estimator, level):
    predicted = ex12.end_point(estimator, level, REF_LOGITS, ADVANTAGES, BETA)
    if float(training_update(estimator, level, predicted).abs().max()) >= FIXED_POINT:
        pytest.fail(f"train_exact('{estimator}', '{level}') cannot be judged until end_point is "
                    "right for it (see test_each_end_point_is_where_training_stops)")
    learned = ex12.train_exact(estimator, level, REF_LOGITS, ADVANTAGES, BETA)
    distance = tv(learned, predicted)
    if distance < 0.01:
        return
    other = "token" if level == "sequence" else "sequence"
    hint = ""
    if tv(learned, ex12.end_point(estimator, other, REF_LOGITS, ADVANTAGES, BETA)) < 0.01:
        hint = (f" It ended at the {other}-level end point: is the penalty applied at the {level} "
                "level?")
    raise AssertionError(f"train_exact('{estimator}', '{level}') should end within TV 0.01 of its "
                         f"end point (which is right: checked above), got {distance:.3f}.{hint}")


def test_which_anchor_reaches_pi_star(ex12):
    truth = {case: float(training_update(*case, pi_star()).abs().max()) < 1e-9 for case in CASES}
    assert truth == {case: case == ("k2", "sequence") for case in CASES}  # the enumeration
    got = {case: bool(ex12.reaches_pi_star(*case)) for case in CASES}
    wrong = [case for case in CASES if got[case] != truth[case]]
    assert not wrong, ("reaches_pi_star: pi* is a fixed point of training only with k2 on the "
                       f"summed log-ratio; wrong for {wrong}")

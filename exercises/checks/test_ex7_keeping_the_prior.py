"""Check of exercise 7: with a non-uniform prior, an entropy bonus forgets it, LAD keeps it, and the k3
penalty ends somewhere else again."""
import pytest
import torch

import bandit

ETA = 0.25
ADVANTAGES = bandit.bandit_advantages(bandit.uniform_policy())
PRIOR = torch.softmax(torch.arange(bandit.N_ARMS, dtype=torch.float32) / 12.5, 0)  # prefers later arms
# Six answers: 0 and 1 equally good, but the prior likes 0 six times more than 1.
TIE_PRIOR = torch.tensor([0.6, 0.1, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
TIE_ADVANTAGES = torch.tensor([1.0, 1.0, 0.2, -0.5, 0.0, 0.5], dtype=torch.float64)


@pytest.fixture
def ex7(exercise):
    return exercise("ex7_keeping_the_prior")


def tv(p, q):
    return 0.5 * float((p - q).abs().sum())


def gradient_on_the_simplex(objective, pi):
    """d objective(softmax(theta)) / d theta at softmax(theta) = pi: zero exactly at a stationary point."""
    theta = torch.log(pi).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(torch.softmax(theta, 0)), theta)
    return grad


def test_lad_keeps_the_priors_ratio_between_equally_good_answers(ex7):
    pi = ex7.lad_optimum(TIE_PRIOR, TIE_ADVANTAGES, ETA)
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12), "LAD's optimum must sum to 1"
    assert float(pi[0] / pi[1]) == pytest.approx(6.0, rel=1e-9), \
        "answers 0 and 1 are equally good: LAD should keep the prior's ratio 6 : 1 between them"
    weights = TIE_PRIOR * torch.exp(TIE_ADVANTAGES / ETA)
    assert torch.allclose(pi, weights / weights.sum(), rtol=1e-10), "expected pi_0 exp(A/eta) / Z"


def test_the_entropy_bonus_optimum(ex7):
    beta = 0.4
    pi = ex7.entropy_bonus_optimum(TIE_ADVANTAGES, beta)
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12), "the entropy-bonus optimum must sum to 1"

    def objective(p):  # E_pi[A] + beta H(pi)
        return (p * TIE_ADVANTAGES).sum() - beta * (p * torch.log(p)).sum()

    assert gradient_on_the_simplex(objective, pi).abs().max() < 1e-12, \
        "not a stationary point of E_pi[A] + beta H(pi)"
    assert float(pi[0] / pi[1]) == pytest.approx(1.0, rel=1e-9), \
        "an entropy bonus forgets the prior: two equally good answers should get equal probability"


def test_the_k3_penalty_optimum(ex7):
    beta = 0.4
    pi = ex7.k3_penalty_optimum(TIE_PRIOR, TIE_ADVANTAGES, beta)
    assert (pi > 0).all(), f"the k3 optimum beta pi_0 / (mu - A) is positive everywhere; got {pi.tolist()}"
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12), "the k3 optimum must sum to 1 (find mu so it does)"

    def objective(p):  # E_pi[A] - beta KL(pi_0 || pi), what the k3 loss's gradient climbs
        return (p * TIE_ADVANTAGES).sum() - beta * (TIE_PRIOR * torch.log(TIE_PRIOR / p)).sum()

    assert gradient_on_the_simplex(objective, pi).abs().max() < 1e-9, \
        "not a stationary point of E_pi[A] - beta KL(pi_0 || pi)"
    assert float(pi[0] / pi[1]) == pytest.approx(6.0, rel=1e-9), \
        "equal advantages: the k3 optimum should keep the prior's ratio 6 : 1"
    assert tv(pi, ex7.lad_optimum(TIE_PRIOR, TIE_ADVANTAGES, beta)) > 0.05, \
        "the k3 optimum should differ from LAD's target (it is not proportional to exp(A/beta))"


def test_a_uniform_prior_hides_the_difference(ex7):
    uniform = bandit.uniform_policy()
    assert tv(ex7.entropy_bonus_optimum(ADVANTAGES, ETA), ex7.lad_optimum(uniform, ADVANTAGES, ETA)) < 1e-6, \
        "with a uniform prior and beta = eta, the entropy-bonus optimum should be LAD's target"
    lad = ex7.lad_optimum(PRIOR, ADVANTAGES, ETA)
    closest = min(tv(ex7.entropy_bonus_optimum(ADVANTAGES, beta), lad) for beta in torch.logspace(-2, 1, 60).tolist())
    assert closest > 0.3, "with a skewed prior no entropy bonus reaches LAD's target"


@pytest.mark.parametrize("regulariser", ["lad", "entropy", "k3"])
def test_training_ends_at_the_predicted_optimum(ex7, regulariser):
    predicted = {
        "lad": ex7.lad_optimum(PRIOR, ADVANTAGES, ETA),
        "entropy": ex7.entropy_bonus_optimum(ADVANTAGES, ETA),
        "k3": ex7.k3_penalty_optimum(PRIOR, ADVANTAGES, ETA),
    }
    learned = ex7.train_exact(regulariser, PRIOR, ADVANTAGES, ETA)
    assert float(learned.sum()) == pytest.approx(1.0, abs=1e-5), "train_exact must return a policy summing to 1"
    distance = tv(learned, predicted[regulariser])
    assert distance < 0.01, f"{regulariser} should end within TV 0.01 of its predicted optimum, got {distance:.3f}"
    for other, pi in predicted.items():  # the three end points are far apart
        if other != regulariser:
            assert tv(learned, pi) > 0.3, f"{regulariser} ended near the {other} optimum"

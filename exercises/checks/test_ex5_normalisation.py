"""Check of exercise 5: advantage normalisation sets LAD's temperature; GRPO collapses without the std."""
import pytest
import torch

import bandit
from grpo_loss import grpo_loss

PI_0 = bandit.uniform_policy()
ADVANTAGES = bandit.bandit_advantages(PI_0)
ETA = 0.25


@pytest.fixture
def ex5(exercise):
    return exercise("ex5_normalisation")


def tv(p, q):
    return 0.5 * float((p - q).abs().sum())


def train_lad_exact(advantages, steps=400, lr=5e-2):
    """LAD on the bandit with these advantages, pi_old = pi_0 fixed, exact expectation over the arms."""
    args = bandit.Args(eta=ETA)
    logits = torch.zeros(bandit.N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        loss = bandit.policy_loss("lad", logits, PI_0, advantages, None, args)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.softmax(logits.detach(), -1)


def train_grpo_mean_only(steps=400, lr=2e-2):
    """GRPO on-policy, exact expectation over the arms, advantages centred under the current policy
    but not divided by their std."""
    logits = torch.zeros(bandit.N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        logp = torch.log_softmax(logits, -1)
        pi_old = logp.exp().detach()  # on-policy: pi_old is the current policy
        centred = ADVANTAGES - (pi_old * ADVANTAGES).sum()
        per_arm = grpo_loss(logp, logp.detach(), centred, clip_eps=None, reduction="none")
        loss = (pi_old * per_arm).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.softmax(logits.detach(), -1)


def test_normalised_advantages_have_mean_zero_and_std_one_under_pi_old(ex5):
    gen = torch.Generator().manual_seed(0)
    pi_old = torch.softmax(torch.randn(7, generator=gen, dtype=torch.float64), 0)
    advantages = 3 + 2 * torch.randn(7, generator=gen, dtype=torch.float64)
    scaled = ex5.normalise_advantages(advantages, pi_old, divide_by_std=True)
    assert float((pi_old * scaled).sum()) == pytest.approx(0.0, abs=1e-12)
    assert float((pi_old * scaled**2).sum()) == pytest.approx(1.0, rel=1e-12)
    centred = ex5.normalise_advantages(advantages, pi_old, divide_by_std=False)
    assert float((pi_old * centred).sum()) == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(advantages - centred, (advantages - centred)[0].expand(7), rtol=1e-12)  # a shift


def test_dividing_by_the_std_is_a_change_of_eta(ex5):
    gen = torch.Generator().manual_seed(1)
    pi_old = torch.softmax(torch.randn(7, generator=gen, dtype=torch.float64), 0)
    advantages = 2 * torch.randn(7, generator=gen, dtype=torch.float64)
    eta = 0.7
    normalised = ex5.normalise_advantages(advantages, pi_old)
    eta_prime = ex5.effective_eta(advantages, pi_old, eta)
    assert torch.allclose(bandit.target_distribution(pi_old, normalised, eta),
                          bandit.target_distribution(pi_old, advantages, eta_prime), rtol=1e-10)
    for divide_by_std in (False, True):
        assert torch.allclose(
            ex5.predicted_lad_target(advantages, pi_old, eta, divide_by_std),
            bandit.target_distribution(pi_old, ex5.normalise_advantages(advantages, pi_old, divide_by_std), eta),
            rtol=1e-10)
    assert 0.1 < ex5.effective_eta(ADVANTAGES, PI_0, ETA) < 0.13  # the bandit's std is about 0.48


@pytest.mark.parametrize("divide_by_std", [False, True])
def test_lad_trained_on_normalised_advantages_goes_where_predicted(ex5, divide_by_std):
    learned = train_lad_exact(ex5.normalise_advantages(ADVANTAGES, PI_0, divide_by_std))
    predicted = ex5.predicted_lad_target(ADVANTAGES, PI_0, ETA, divide_by_std)
    assert tv(learned, predicted) < 0.01
    raw_target = bandit.target_distribution(PI_0, ADVANTAGES, ETA)
    if divide_by_std:  # a different, sharper target than the mixture
        assert tv(learned, raw_target) > 0.1 and float(learned.max()) > 1.5 * float(raw_target.max())
    else:  # centring changes nothing
        assert tv(learned, raw_target) < 0.01


def test_grpo_with_mean_only_advantages_still_collapses(ex5):
    limit = ex5.predicted_grpo_limit(ADVANTAGES)
    assert float(limit.sum()) == pytest.approx(1.0) and float(limit[10]) == pytest.approx(1.0)
    assert torch.equal(ex5.predicted_grpo_limit(ex5.normalise_advantages(ADVANTAGES, PI_0, False)), limit)
    learned = train_grpo_mean_only()
    assert int(learned.argmax()) == int(limit.argmax())
    assert float(learned.max()) > 0.5, f"after 400 steps the best arm holds only {float(learned.max()):.2f}"
    assert tv(learned, limit) < tv(PI_0, limit) - 0.4  # well on its way to the point mass

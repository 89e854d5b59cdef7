"""Check of exercise 5: advantage normalisation sets LAD's temperature; GRPO collapses without the
std.

Answers computed in float32 pass (compare.assert_close's tolerance). Wrong answers it rejects, each
tried, with the message naming the mistake: an unweighted mean and std (advantages.mean(), .std()),
the sample std with n - 1, dividing by the variance, effective_eta = eta / std, a predicted
target that ignores the std, and one that normalises the advantages and hands them to a target
(the shortcut predicted_lad_target's docstring rules out). An answer that edits the caller's
advantages in place fails with that mistake's name (conftest.py's guard).
"""
import pytest
import torch

import bandit
from compare import assert_close, number, tv
from grpo_loss import grpo_loss

PI_0 = bandit.uniform_policy()
ADVANTAGES = bandit.bandit_advantages(PI_0)
ETA = 0.25


@pytest.fixture
def ex5(exercise):
    return exercise("ex5_normalisation")


def train_lad_exact(advantages, steps=400, lr=5e-2):
    """LAD on the bandit with these advantages, pi_old = pi_0 fixed, exact expectation over the
    arms."""
    settings = bandit.Settings(eta=ETA)
    logits = torch.zeros(bandit.N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        loss = bandit.step_loss("lad-fixed", logits, PI_0, advantages, None, settings)
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


def _wrong_normalisations(advantages, pi_old):
    """The mistakes a first attempt makes, each with the message that names it."""
    plain_mean, plain_std = advantages.mean(), advantages.std(unbiased=False)
    mean = (pi_old * advantages).sum()
    variance = (pi_old * (advantages - mean) ** 2).sum()
    n = len(advantages)
    return {
        "every response weighted equally (advantages.mean(), .std()): weight each response by "
        "pi_old(y)": (advantages - plain_mean) / plain_std,
        "the sample std with n - 1 (Bessel's correction): use the population std under pi_old, "
        "whose weights already sum to 1": (advantages - mean) / (variance * n / (n - 1)).sqrt(),
        "divided by the variance: divide by its square root, the std":
            (advantages - mean) / variance,
    }


def test_normalised_advantages_have_mean_zero_and_std_one_under_pi_old(ex5):
    """Rejects (tried): unweighted mean and std; Bessel's n - 1; dividing by the variance."""
    gen = torch.Generator().manual_seed(0)
    pi_old = torch.softmax(torch.randn(7, generator=gen, dtype=torch.float64), 0)
    advantages = 3 + 2 * torch.randn(7, generator=gen, dtype=torch.float64)
    mean = (pi_old * advantages).sum()
    std = (pi_old * (advantages - mean) ** 2).sum().sqrt()
    scaled = ex5.normalise_advantages(advantages, pi_old, divide_by_std=True)
    assert_close(scaled, (advantages - mean) / std, "normalise_advantages(divide_by_std=True), "
                 "(A - E_pi_old[A]) / Std_pi_old[A]",
                 mistakes=_wrong_normalisations(advantages, pi_old))
    assert_close((pi_old * scaled).sum(), 0.0, "the mean of the normalised advantages under pi_old",
                 atol=1e-5)
    assert_close((pi_old * scaled**2).sum(), 1.0,
                 "the variance of the normalised advantages under pi_old")
    centred = ex5.normalise_advantages(advantages, pi_old, divide_by_std=False)
    assert_close(centred, advantages - mean,
                 "normalise_advantages(divide_by_std=False), A - E_pi_old[A]",
                 mistakes={"every response weighted equally: subtract the mean under pi_old":
                           advantages - advantages.mean(),
                           "divided by the std although divide_by_std=False":
                           (advantages - mean) / std})


def test_dividing_by_the_std_is_a_change_of_eta(ex5):
    """Rejects (tried): eta / std instead of eta * std."""
    gen = torch.Generator().manual_seed(1)
    pi_old = torch.softmax(torch.randn(7, generator=gen, dtype=torch.float64), 0)
    advantages = 2 * torch.randn(7, generator=gen, dtype=torch.float64)
    eta = 0.7
    mean = (pi_old * advantages).sum()
    std = float((pi_old * (advantages - mean) ** 2).sum().sqrt())
    assert_close(number(ex5.effective_eta(advantages, pi_old, eta), "effective_eta"), eta * std,
                 "effective_eta (the raw advantages at this temperature give the normalised ones' "
                 "target)",
                 mistakes={"eta / std: dividing A by std is multiplying eta by std, "
                           "exp((A - m)/(eta std))": eta / std})
    for divide_by_std in (False, True):
        normalised = ex5.normalise_advantages(advantages, pi_old, divide_by_std)
        raw_target = bandit.target_policy(pi_old, advantages, eta)
        mistakes = {"the target of the raw advantages at eta: dividing by the std changes the "
                    "temperature": raw_target} if divide_by_std else None
        assert_close(ex5.predicted_lad_target(advantages, pi_old, eta, divide_by_std),
                     bandit.target_policy(pi_old, normalised, eta),
                     f"predicted_lad_target(divide_by_std={divide_by_std}), the target of the "
                     "normalised advantages", mistakes=mistakes)
    bandit_eta = number(ex5.effective_eta(ADVANTAGES, PI_0, ETA), "effective_eta")
    assert 0.1 < bandit_eta < 0.13, \
        f"the bandit's std under pi_0 is about 0.48, so eta' = 0.25 * 0.48 = 0.12; got {bandit_eta}"


@pytest.mark.parametrize("divide_by_std", [False, True])
def test_the_prediction_is_written_with_the_raw_advantages(ex5, monkeypatch, divide_by_std):
    """predicted_lad_target's docstring asks for the target of the raw advantages at the effective
    eta: the exercise is to see that normalising is a change of temperature. Mistake it catches:
    the shortcut, normalising and handing the result to a target (normalise_advantages called
    inside it, or bandit.target_policy given advantages that are not the raw ones plus a
    constant). Its value is right, so no value check can tell."""
    gen = torch.Generator().manual_seed(2)
    pi_old = torch.softmax(torch.randn(7, generator=gen, dtype=torch.float64), 0)
    advantages = 2 * torch.randn(7, generator=gen, dtype=torch.float64)
    shortcuts = []
    module, target_policy = ex5.module, bandit.target_policy
    normalise = module.normalise_advantages

    def recorded_normalise(*args, **kwargs):
        shortcuts.append("it calls normalise_advantages")
        return normalise(*args, **kwargs)

    def recorded_target(pi, given, eta):
        shift = torch.as_tensor(given, dtype=torch.float64) - advantages
        if float((shift - shift.mean()).abs().max()) > 1e-5 * float(advantages.abs().max()):
            shortcuts.append("it hands bandit.target_policy advantages that are not the raw ones "
                             "plus a constant")
        return target_policy(pi, given, eta)

    monkeypatch.setattr(module, "normalise_advantages", recorded_normalise)
    monkeypatch.setattr(bandit, "target_policy", recorded_target)
    if getattr(module, "target_policy", None) is target_policy:  # from bandit import target_policy
        monkeypatch.setattr(module, "target_policy", recorded_target)
    ex5.predicted_lad_target(advantages, pi_old, 0.7, divide_by_std)
    assert not shortcuts, (
        f"predicted_lad_target(divide_by_std={divide_by_std}) normalises and takes the target of "
        f"the result ({shortcuts[0]}): write it with the raw advantages, at eta or at "
        f"effective_eta, as its docstring asks")


@pytest.mark.parametrize("divide_by_std", [False, True])
def test_lad_trained_on_normalised_advantages_goes_where_predicted(ex5, divide_by_std):
    learned = train_lad_exact(ex5.normalise_advantages(ADVANTAGES, PI_0, divide_by_std))
    predicted = ex5.predicted_lad_target(ADVANTAGES, PI_0, ETA, divide_by_std)
    distance = tv(learned, predicted)
    assert distance < 0.01, \
        f"LAD should end within TV 0.01 of predicted_lad_target, got {distance:.3f}"
    raw_target = bandit.target_policy(PI_0, ADVANTAGES, ETA)
    if divide_by_std:  # a different, sharper target than the mixture
        sharper = float(learned.max()) > 1.5 * float(raw_target.max())
        assert tv(learned, raw_target) > 0.1 and sharper, \
            "dividing by the std (about 0.48) should give a clearly sharper target than the mixture"
    else:  # centring changes nothing
        assert tv(learned, raw_target) < 0.01, \
            "centring alone should leave LAD's target, the mixture, unchanged"


def test_grpo_with_mean_only_advantages_still_collapses(ex5):
    limit = ex5.predicted_grpo_limit(ADVANTAGES)
    assert float(limit.sum()) == pytest.approx(1.0) and float(limit[10]) == pytest.approx(1.0), \
        f"GRPO's limit should be all the mass on arm 10, the best arm; got {limit.tolist()}"
    centred = ex5.normalise_advantages(ADVANTAGES, PI_0, False)
    assert torch.equal(ex5.predicted_grpo_limit(centred), limit), \
        "centring the advantages keeps the best arm the best: GRPO's limit should not change"
    learned = train_grpo_mean_only()
    assert int(learned.argmax()) == int(limit.argmax()), \
        (f"GRPO should head for the predicted arm {int(limit.argmax())}, but its largest arm is "
         f"{int(learned.argmax())}")
    assert float(learned.max()) > 0.5, \
        f"after 400 steps the best arm holds only {float(learned.max()):.2f}"
    assert tv(learned, limit) < tv(PI_0, limit) - 0.4, \
        "GRPO should be well on its way to the point mass"

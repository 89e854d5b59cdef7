"""bandit.py's wiring: which settings send a figure under runs/, which methods the entropy bonus
and --grpo-pi-old fixed reach, and which way the step-time ratio points."""
import dataclasses
import json

import pytest
import torch

import bandit
from bandit_study.baselines import BASELINES, Baseline
from cli.settings import parse_settings


def parse(argv) -> bandit.Settings:
    return parse_settings(bandit.Settings, argv)


# Every setting that changes the numbers, with a value other than its default.
CHANGES_THE_NUMBERS = {
    "methods": [["lad-fixed", "lad", "grpo"], ["grpo"], ["grpo", "lad-fixed"]],
    "iterations": [100], "lr": [0.01], "eta": [0.5], "divergence": ["kl"], "group_size": [32],
    "grpo_pi_old": ["fixed"], "entropy_coef": [0.1], "flowrl_reward": ["raw"],
    "centre_advantages": [True], "seed": [1],
}
# What a figure may change without leaving plots/: where it goes, the timing, the mode, the run.
DOES_NOT = {"figure", "metrics_json", "timing_rounds", "exact", "ablation", "quick"}


def test_a_setting_that_changes_the_numbers_sends_the_figure_under_runs():
    """plots/ holds the committed figures of the documented commands. Any other command (several
    methods at once, another learning rate, another seed, ...) writes under runs/, which git
    ignores: else `python bandit.py --methods lad-fixed lad grpo` would overwrite plots/bandit.png
    with a figure no page describes. A setting added to bandit.py must say which it is here."""
    names = {field.name for field in dataclasses.fields(bandit.Settings)}
    assert names == set(CHANGES_THE_NUMBERS) | DOES_NOT
    for name, values in CHANGES_THE_NUMBERS.items():
        for value in values:
            settings = bandit.Settings(**{name: value})
            assert settings.figure == "runs/bandit.png", (name, value)
            ablation = bandit.Settings(**{name: value}, ablation="eta") if name != "methods" \
                else None
            if ablation is not None:
                assert (ablation.figure, ablation.metrics_json) == (
                    "runs/ablation_eta.png", "runs/ablation_eta.json"), name
    assert parse(["--methods", "lad-fixed", "lad", "grpo"]).figure == "runs/bandit.png"
    for argv in ([], ["--timing-rounds", "10"], ["--metrics-json", "plots/bandit_metrics.json"]):
        assert parse(argv).figure == "plots/bandit.png", argv
    assert parse(["--ablation", "eta"]).figure == "plots/ablation_eta.png"


@pytest.mark.parametrize("method", ["lad", "lad-fixed"])
def test_the_entropy_bonus_never_reaches_lad(method):
    """--entropy-coef is GRPO's and the baselines' regulariser; LAD's runs beside them must stay
    LAD's own, bit for bit."""
    plain = bandit.train(method, bandit.Settings(iterations=5), progress=False)
    bonus = bandit.train(method, bandit.Settings(iterations=5, entropy_coef=0.5), progress=False)
    assert torch.equal(plain.pi, bonus.pi)


@pytest.mark.parametrize("method", ("grpo",) + BASELINES)
def test_the_entropy_bonus_is_subtracted_from_grpos_and_each_baselines_loss(method):
    """The loss of grpo and of every baseline is lowered by entropy_coef times the entropy of the
    whole softmax (exact over the 50 arms), and a run with it ends elsewhere."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(bandit.N_ARMS, generator=gen).requires_grad_(True)
    arms = torch.randint(bandit.N_ARMS, (16,), generator=gen)
    advantages = bandit.bandit_advantages(bandit.uniform_policy())
    losses = []
    for coef in (0.0, 0.5):
        settings = bandit.Settings(entropy_coef=coef)
        baseline = Baseline(method, settings, bandit.CLIP_EPS) if method in BASELINES else None
        loss = bandit.step_loss(method, logits, None, advantages, arms, settings, baseline)
        losses.append(float(loss.detach()))
    entropy = float(bandit.entropy(torch.softmax(logits.detach(), 0)))
    assert losses[1] - losses[0] == pytest.approx(-0.5 * entropy, rel=1e-5)
    plain = bandit.train(method, bandit.Settings(iterations=5), progress=False)
    bonus = bandit.train(method, bandit.Settings(iterations=5, entropy_coef=0.5), progress=False)
    assert not torch.equal(plain.pi, bonus.pi)


@pytest.mark.parametrize("method", ("grpo",) + BASELINES + ("lad",))
def test_grpo_pi_old_fixed_reaches_grpo_and_every_baseline_but_not_lad(method, monkeypatch):
    """With --grpo-pi-old fixed, grpo and each baseline draw their group from pi_0 and take their
    ratio against it; with refresh (the default), from the current policy, with the ratio 1 (pi_old
    None). lad keeps its refreshed pi_old either way (lad-fixed is the LAD with pi_0)."""
    drawn_from, pi_olds = [], []
    multinomial, step_loss = torch.multinomial, bandit.step_loss

    def recording_multinomial(probabilities, *args, **kwargs):
        drawn_from.append(probabilities.clone())
        return multinomial(probabilities, *args, **kwargs)

    def recording_loss(method, logits, pi_old, *args, **kwargs):
        pi_olds.append(pi_old)
        return step_loss(method, logits, pi_old, *args, **kwargs)

    monkeypatch.setattr(torch, "multinomial", recording_multinomial)
    monkeypatch.setattr(bandit, "step_loss", recording_loss)
    for pi_old in ("fixed", "refresh"):
        learner = bandit.Learner(method, bandit.Settings(grpo_pi_old=pi_old))
        with torch.no_grad():
            learner.logits.copy_(torch.linspace(0, 3, bandit.N_ARMS))  # a policy far from pi_0
        drawn_from.clear()
        pi_olds.clear()
        policy = learner.policy()
        learner.step()
        frozen = pi_old == "fixed" and method != "lad"
        assert torch.equal(drawn_from[-1], learner.pi_0 if frozen else policy), (method, pi_old)
        assert (pi_olds[0] is learner.pi_0) if frozen else (pi_olds[0] is None), (method, pi_old)


def test_the_step_time_ratio_is_each_runs_step_over_the_reference_runs(tmp_path, monkeypatch):
    """step_time_ratio is a run's seconds per step over the reference's (grpo, else the first
    run): a LAD step that takes three times GRPO's reads 3, not 1/3. The timing and the figure are
    stubbed: the seconds are given."""
    seconds = {"lad-fixed": 3e-3, "grpo": 1e-3, "lad": 6e-3}
    monkeypatch.setattr(bandit, "step_time_side_by_side",
                        lambda learners, rounds: {key: seconds[key] for key in learners})
    monkeypatch.setattr(bandit, "draw_runs", lambda runs, metrics, ablation, title, path: path)
    for methods, want in [(["lad-fixed", "grpo"], {"lad-fixed": 3.0, "grpo": 1.0}),
                          (["lad-fixed", "lad"], {"lad-fixed": 1.0, "lad": 2.0})]:
        path = tmp_path / f"{methods[1]}.json"
        bandit.main(["--quick", "--iterations", "10", "--methods", *methods,
                     "--figure", str(tmp_path / "b.png"), "--metrics-json", str(path)])
        written = json.loads(path.read_text())
        assert {m: written[m]["step_time_ratio"] for m in methods} == want
        assert written["step_time"]["relative_to"] == ("grpo" if "grpo" in methods else methods[0])

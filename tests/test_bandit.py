"""Tests of bandit.py: the target, the metrics, the exact loss, the command line, and the --quick
experiment end to end."""
import json
import re

import pytest
import torch

import bandit
from bandit_study import task as bandit_task


def test_the_target_is_the_trimodal_mixture_and_the_advantages_are_finite():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    target = bandit.target_policy(pi_0, advantages, 0.25)
    assert torch.isfinite(advantages).all()
    assert torch.allclose(target, bandit_task.mixture(), atol=1e-6)
    # three local maxima, at the mode centres, the heaviest first
    peaks = [i for i in range(1, bandit.N_ARMS - 1) if target[i] > target[i - 1] and target[i] > target[i + 1]]
    assert peaks == [mu for mu, _, _ in bandit_task.MODES]
    assert int(target.argmax()) == bandit_task.MODES[0][0]
    summary = bandit.summarize(target, target)
    assert summary["tv"] == 0.0 and summary["modes_recovered"] == 3
    # centring the advantages keeps the target and raises its normaliser Z above 1 (Jensen)
    centred = bandit.bandit_advantages(pi_0, center=True)
    assert torch.allclose(bandit.target_policy(pi_0, centred, 0.25), target, atol=1e-6)
    assert float((pi_0 * centred).sum()) == pytest.approx(0.0, abs=1e-6)
    assert float((pi_0 * torch.exp(centred / 0.25)).sum()) > 1.5


def test_eta_sharpens_the_target_around_the_same_modes():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    peaks = [float(bandit.target_policy(pi_0, advantages, 1 / k).max()) for k in (0.5, 1, 4, 16)]
    assert peaks == sorted(peaks) and peaks[-1] > 3 * peaks[2]
    sharp = bandit.target_policy(pi_0, advantages, 1 / 16)
    assert torch.allclose(sharp, bandit_task.mixture() ** 4 / (bandit_task.mixture() ** 4).sum(), atol=1e-5)


def test_a_collapsed_policy_recovers_one_mode():
    target = bandit_task.mixture()
    collapsed = torch.zeros(bandit.N_ARMS)
    collapsed[10] = 1.0
    s = bandit.summarize(collapsed, target)
    assert s["modes_recovered"] == 1 and s["max_prob"] == 1.0 and s["entropy"] == 0.0
    assert s["tv"] == pytest.approx(1.0 - float(target[10]), abs=1e-6)


def test_quick_run_end_to_end(tmp_path):
    figure, metrics_path = tmp_path / "bandit.png", tmp_path / "m.json"
    metrics = bandit.main(["--quick", "--figure", str(figure), "--metrics-json", str(metrics_path)])
    assert figure.stat().st_size > 10_000
    written = json.loads(metrics_path.read_text())
    for method in ("lad", "grpo", "target"):
        assert {"tv", "max_prob", "entropy", "modes_recovered"} <= set(written[method])
    assert written["settings"]["steps"] == 400
    # the paper's picture, already after the quick run
    assert metrics["lad"]["tv"] < metrics["grpo"]["tv"]
    assert metrics["lad"]["modes_recovered"] == 3
    assert metrics["grpo"]["max_prob"] > 0.5 > metrics["lad"]["max_prob"]


def test_exact_mode_weights_each_arm_by_a_non_uniform_pi_old():
    """--exact's loss is the sum over arms of pi_old(arm) times the per-arm loss. In the bandit pi_old
    is uniform, where a bug that averaged the arms uniformly gives the same number; here it is not."""
    gen = torch.Generator().manual_seed(0)
    pi_old = torch.softmax(2 * torch.randn(bandit.N_ARMS, generator=gen), 0)
    logits = torch.randn(bandit.N_ARMS, generator=gen)
    advantages = bandit.bandit_advantages(bandit.uniform_policy())
    args = bandit.Args(exact=True)

    # By hand, in float64, from the Jensen-Shannon generator written out again.
    logp = torch.log_softmax(logits.double(), 0)
    ratio = torch.exp(logp - pi_old.double().log())
    weight = torch.exp(advantages.double() / args.eta)
    x = ratio / weight
    per_arm = weight * 0.5 * (x * x.log() - (x + 1) * torch.log((x + 1) / 2))
    expected = float((pi_old.double() * per_arm).sum())
    got = float(bandit.step_loss("lad", logits, pi_old, advantages, None, args))
    assert got == pytest.approx(expected, rel=1e-4)
    assert abs(float(per_arm.mean()) - expected) > 0.01 * abs(expected)  # uniform weights would fail

    # GRPO: advantages normalised with pi_old's mean and std, then -sum_arms pi_old * ratio * A_hat.
    a = advantages.double()
    mean = (pi_old.double() * a).sum()
    a_hat = (a - mean) / ((pi_old.double() * (a - mean) ** 2).sum().sqrt() + 1e-6)
    expected = float(-(pi_old.double() * ratio * a_hat).sum())
    got = float(bandit.step_loss("grpo", logits, pi_old, advantages, None, args))
    assert got == pytest.approx(expected, rel=1e-4)
    assert abs(float(-(ratio * (a - a.mean()) / a.std()).mean()) - expected) > 0.01 * abs(expected)


def test_the_progress_bar_counts_the_steps_asked_for(monkeypatch):
    """It counted 4001 steps for 4000; the history still ends at the final step."""
    lengths = []

    def counting_tqdm(iterable, **kwargs):
        lengths.append(len(iterable))
        return iterable

    monkeypatch.setattr(bandit, "tqdm", counting_tqdm)
    run = bandit.train("lad", bandit.Args(steps=25), record_every=10)
    assert lengths == [25]
    assert run.steps == [0, 10, 20, 25]


def test_same_seed_same_numbers_and_the_exact_mode_runs():
    args = bandit.parse_args(["--steps", "50", "--seed", "3"])
    a, b = bandit.train("lad", args, progress=False), bandit.train("lad", args, progress=False)
    assert torch.equal(a.pi, b.pi)
    other = bandit.train("lad", bandit.parse_args(["--steps", "50", "--seed", "4"]), progress=False)
    assert not torch.equal(a.pi, other.pi)
    exact = bandit.train("grpo", bandit.parse_args(["--steps", "50", "--exact"]), progress=False)
    assert exact.tv[-1] < exact.tv[0]


def test_refreshing_pi_old_makes_lad_sharpen_past_the_target():
    args = bandit.parse_args(["--quick", "--pi-old", "refresh"])
    run = bandit.train("lad", args, progress=False)
    target = bandit_task.mixture()
    assert float(run.pi.max()) > 2 * float(target.max())


@pytest.mark.parametrize("argv, flag", [
    (["--eta", "0"], "--eta"), (["--eta", "inf"], "--eta"), (["--eta", "nan"], "--eta"),
    (["--eta", "0.002"], "--eta"),  # exp(A/eta) would overflow float32
    (["--lr", "-1"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "2"], "--lr"),
    (["--steps", "0"], "--steps"), (["--group-size", "1"], "--group-size"),
    (["--grpo-entropy-coef", "-0.1"], "--grpo-entropy-coef"), (["--grpo-entropy-coef", "inf"], "--grpo-entropy-coef"),
    (["--seed", "-1"], "--seed"),
    (["--divergence", "chi2"], "--divergence"), (["--pi-old", "sometimes"], "--pi-old"),
    (["--ablation", "everything"], "--ablation"),
    (["--figure", "out.json"], "--figure"), (["--ablation", "animation", "--figure", "a.png"], "--figure"),
    (["--figure", "same.png", "--metrics-json", "same.png"], "--metrics-json"),
    (["--exact", "--ablation", "baselines"], "--exact"),
])
def test_bad_command_lines_are_one_line_argparse_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        bandit.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # usage lines, then one line: "<prog>: error: --flag ..." or "... error: argument --flag: ..."
    assert re.search(rf": error: (argument )?{re.escape(flag)}[ :]", err.strip().splitlines()[-1]), err


def test_an_unwritable_output_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    """A --metrics-json that is a folder, or a --figure under a regular file, used to fail with an
    OSError only after all the training."""
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output paths")

    monkeypatch.setattr(bandit, "train", no_training)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for argv, flag in [(["--metrics-json", str(tmp_path)], "--metrics-json"),
                       (["--figure", str(blocker / "fig.png")], "--figure"),
                       (["--ablation", "eta", "--figure", str(blocker / "eta.png")], "--figure")]:
        with pytest.raises(SystemExit) as info:
            bandit.main(["--quick"] + argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and f"error: {flag}" in err and "Traceback" not in err


def test_quick_runs_write_under_runs_quick_and_full_runs_write_the_readme_figures():
    """--quick used to replace plots/bandit.png with a 400-step figure."""
    assert bandit.parse_args([]).figure == "plots/bandit.png"
    quick = bandit.parse_args(["--quick"])
    assert quick.figure == f"{bandit.QUICK_DIR}/bandit.png" and quick.metrics_json is None
    eta = bandit.parse_args(["--quick", "--ablation", "eta"])
    assert (eta.figure, eta.metrics_json) == (f"{bandit.QUICK_DIR}/ablation_eta.png",
                                              f"{bandit.QUICK_DIR}/ablation_eta.json")
    assert bandit.parse_args(["--ablation", "animation"]).figure == "plots/ablation_animation.gif"
    assert not bandit.QUICK_DIR.startswith("plots")
    # --exact used to write over the sampled run's plots/bandit.png
    assert bandit.parse_args(["--exact"]).figure == "plots/bandit_exact.png"


def test_an_explicit_flag_wins_over_quick():
    """--quick used to override --steps and --lr silently."""
    assert (bandit.parse_args([]).steps, bandit.parse_args([]).lr) == (4000, 5e-3)
    quick = bandit.parse_args(["--quick"])
    assert (quick.steps, quick.lr) == (bandit.QUICK["steps"], bandit.QUICK["lr"])
    explicit = bandit.parse_args(["--quick", "--steps", "50", "--lr", "0.1"])
    assert (explicit.steps, explicit.lr) == (50, 0.1)
    assert bandit.parse_args(["--steps", "50"]).lr == 5e-3


def test_figure_titles_leave_out_the_setting_an_ablation_varies():
    """The ablation figures always said '1/eta = 4, pi_old: LAD fixed', even where that varied."""
    main = bandit.figure_title(bandit.experiment(bandit.parse_args([])))
    assert "1/eta = 4" in main and "LAD pi_old fixed" in main and "GRPO pi_old refresh" in main
    eta = bandit.figure_title(bandit.experiment(bandit.parse_args(["--ablation", "eta"])))
    assert "1/eta" not in eta and "LAD divergence js" in eta
    pi_old = bandit.figure_title(bandit.experiment(bandit.parse_args(["--ablation", "pi-old"])))
    assert "pi_old" not in pi_old and "1/eta = 4" in pi_old
    divergences = bandit.figure_title(bandit.experiment(bandit.parse_args(["--ablation", "divergences"])))
    assert "divergence" not in divergences and "centred" not in divergences and "GRPO" not in divergences
    assert "quick" in bandit.figure_title(bandit.experiment(bandit.parse_args(["--quick"])))
    baselines = bandit.figure_title(bandit.experiment(bandit.parse_args(["--ablation", "baselines"])))
    assert "GRPO and the baselines pi_old refresh" in baselines and "LAD pi_old fixed" in baselines


def _quick_ablation(name, tmp_path):
    figure = tmp_path / f"{name}.{'gif' if name == 'animation' else 'png'}"
    bandit.main(["--quick", "--ablation", name, "--figure", str(figure)])
    assert figure.stat().st_size > 10_000
    return json.loads(figure.with_suffix(".json").read_text())


def test_divergence_ablation_total_variation_is_the_odd_one_out(tmp_path):
    m = _quick_ablation("divergences", tmp_path)
    strict = ["kl", "rkl", "jf", "hd", "js"]
    assert all(m[d]["tv"] < 0.1 for d in strict + ["tv"])
    # with centred advantages (Z > 1) every pi <= Z * P_A minimises the TV objective: it drifts
    assert m["tv, centred A"]["tv"] > 3 * max(m[f"{d}, centred A"]["tv"] for d in strict)


def test_eta_ablation_follows_the_sharpening_target(tmp_path):
    m = _quick_ablation("eta", tmp_path)
    keys = [f"1/eta={k:g}" for k in (0.5, 1, 2, 4, 8, 16)]
    target_peaks = [m[k]["target_max_prob"] for k in keys]
    assert target_peaks == sorted(target_peaks)
    learned_peaks = [m[k]["max_prob"] for k in keys]
    assert learned_peaks == sorted(learned_peaks)
    assert all(m[k]["tv"] < 0.1 for k in keys)


def test_pi_old_ablation_refreshing_makes_lad_sharpen(tmp_path):
    m = _quick_ablation("pi-old", tmp_path)
    assert m["LAD fixed"]["tv"] < 0.05 and m["LAD fixed"]["modes_recovered"] == 3
    assert m["LAD refresh"]["max_prob"] > 5 * m["LAD fixed"]["max_prob"]
    assert m["GRPO refresh"]["max_prob"] > m["GRPO fixed"]["max_prob"] > m["LAD fixed"]["max_prob"]


def test_entropy_bonus_ablation_small_beta_collapses_large_beta_flattens(tmp_path):
    m = _quick_ablation("entropy-bonus", tmp_path)
    grpo = sorted((k for k in m if k.startswith("GRPO")), key=lambda k: float(k.split("=")[1]))
    assert m[grpo[0]]["max_prob"] > 0.9  # beta = 0: plain GRPO
    assert m[grpo[-1]]["entropy"] > m["target"]["entropy"]  # the largest beta: flatter than the target
    assert m["LAD"]["tv"] < min(m[k]["tv"] for k in grpo)


def test_animation_writes_a_gif_with_frames(tmp_path):
    from PIL import Image

    _quick_ablation("animation", tmp_path)
    with Image.open(tmp_path / "animation.gif") as gif:
        assert gif.n_frames > 10


def test_baselines_ablation_flowrl_matches_the_target_on_the_raw_advantage_the_others_collapse(tmp_path):
    m = _quick_ablation("baselines", tmp_path)
    assert set(m) >= {"lad", "grpo", "flowrl", "flowrl, raw A", "entadv", "clip-cov", "kl-cov", "target", "step_time"}
    for key in ("lad", "flowrl", "flowrl, raw A"):
        assert m[key]["modes_recovered"] == 3 and m[key]["max_prob"] < 0.1
    assert m["flowrl, raw A"]["tv"] < m["flowrl"]["tv"]  # the group's own std flattens FlowRL's fixed point
    for key in ("grpo", "entadv", "clip-cov", "kl-cov"):
        assert m[key]["max_prob"] > 0.9 and m[key]["modes_recovered"] == 1
    # FlowRL's beta makes pi* its fixed point; its learned log Z follows the true one
    assert m["flowrl"]["beta"] == pytest.approx(bandit.std_at_target(0.25) / 0.25, abs=1e-4)
    assert m["flowrl, raw A"]["beta"] == 4.0
    assert abs(m["flowrl"]["log_z"] - m["flowrl"]["true_log_z"]) < 0.1
    # one update per step: the ratio is 1 when the gradient is taken, so KL-Cov's penalty is silent
    summary = ("tv", "max_prob", "entropy", "mode_mass")
    assert [m["kl-cov"][k] for k in summary] == [m["grpo"][k] for k in summary]
    assert m["grpo"]["step_time_ratio"] == 1.0 and m["step_time"]["reference"] == "grpo"
    assert all(m[key]["step_time_ratio"] > 0 for key in ("lad", "flowrl", "clip-cov"))


def test_baselines_are_deterministic_and_run_on_sampled_groups_only():
    """Clip-Cov draws the samples it holds back with its own seeded generator: the same seed, the same
    numbers, once it has held some back (its policy differs from GRPO's)."""
    args = bandit.parse_args(["--steps", "100", "--lr", "0.1"])
    runs = {method: bandit.train(method, args, progress=False) for method in ("grpo", "flowrl", "clip-cov", "entadv")}
    for method in ("flowrl", "clip-cov", "entadv"):
        assert torch.equal(runs[method].pi, bandit.train(method, args, progress=False).pi)
    assert not torch.equal(runs["clip-cov"].pi, runs["grpo"].pi)
    with pytest.raises(ValueError, match="sampled groups"):
        bandit.step_loss("clip-cov", torch.zeros(bandit.N_ARMS, requires_grad=True), bandit.uniform_policy(),
                         bandit.bandit_advantages(bandit.uniform_policy()), None, bandit.Args(exact=True))


def test_flowrl_on_the_normalised_reward_reaches_pi_star_when_the_group_is_large():
    """docs/baselines.md's account of FlowRL's flatter end point in the bandit: with the group's mean and std
    replaced by the policy's own (a group of infinite size), beta = std_{pi*}(A) / eta makes pi* the
    fixed point, and log Z reaches its true value there."""
    from baselines.flowrl_loss import flowrl_loss

    pi_0 = bandit_task.uniform_policy().double()
    advantages = bandit_task.bandit_advantages(bandit_task.uniform_policy()).double()
    target = bandit_task.target_policy(pi_0, advantages, 0.25)
    learner = bandit.Learner("flowrl", bandit.Args())
    logits = torch.zeros(bandit_task.N_ARMS, dtype=torch.float64, requires_grad=True)
    log_z = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logits, log_z], lr=0.1)
    for _ in range(600):
        logp = torch.log_softmax(logits, 0)
        pi = logp.exp().detach()
        r_hat = (advantages - (pi * advantages).sum()) / bandit_task.advantage_std(pi, advantages)
        per_arm = flowrl_loss(logp, logp.detach(), pi_0.log(), log_z.expand(len(pi)), r_hat, beta=learner.beta,
                              reduction="none")
        optimizer.zero_grad()
        (pi * per_arm).sum().backward()
        optimizer.step()
    assert float(0.5 * (torch.softmax(logits.detach(), 0) - target).abs().sum()) < 0.005  # 64 samples: 0.055
    assert log_z.item() == pytest.approx(learner.true_log_z(learner.target), abs=0.01)


def test_a_rare_arm_pulls_its_own_normalised_reward_towards_zero_in_a_group_of_64():
    """Why FlowRL on r_hat ends flatter than pi* with 64 samples: an arm far below the mean inflates the
    std of the group it is drawn in, so its r_hat, averaged over the groups that hold it, is closer to 0
    than (A - mean) / std under the same policy. Common arms are not affected."""
    gen = torch.Generator().manual_seed(0)
    pi_0 = bandit_task.uniform_policy()
    advantages = bandit_task.bandit_advantages(pi_0)
    target = bandit_task.target_policy(pi_0, advantages, 0.25)
    large_group = (advantages - (target * advantages).sum()) / bandit_task.advantage_std(target, advantages)
    groups = torch.multinomial(target, 64 * 5000, replacement=True, generator=gen)
    r_hat = bandit.group_advantages(advantages[groups], group_size=64)
    mean_r_hat = torch.zeros(bandit_task.N_ARMS).index_add_(0, groups, r_hat)
    draws = torch.zeros(bandit_task.N_ARMS).index_add_(0, groups, torch.ones_like(r_hat))
    mean_r_hat /= draws.clamp(min=1)
    rare = (target < 0.002) & (draws >= 100)  # arms in the valleys, 3.5 to 4.5 std below the mean
    common = target > 0.03
    assert rare.sum() >= 4 and (mean_r_hat[rare] > 0.95 * large_group[rare]).all()  # pulled in by over 5%
    assert torch.allclose(mean_r_hat[common], large_group[common], atol=0.05)

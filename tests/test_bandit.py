"""Tests of bandit.py and bandit_study/: the target, the metrics, the loss of one iteration (sampled
and exact), which pi_old each method samples from, the written-out Adam, the command line, the
ablations, and the committed files against the commands that write them."""
import dataclasses
import json
import re
import shlex
from pathlib import Path

import pytest
import torch

import bandit
from bandit_study import adam as bandit_adam
from bandit_study import task as bandit_task
from bandit_study.ablations import ablation_runs
from cli.settings import parse_settings
from lad_loss import DIVERGENCES

REPOSITORY = Path(__file__).resolve().parent.parent


def parse(argv):
    return parse_settings(bandit.Settings, argv)


def test_the_target_is_the_trimodal_mixture_and_the_advantages_are_finite():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    target = bandit.target_policy(pi_0, advantages, 0.25)
    assert torch.isfinite(advantages).all()
    assert torch.allclose(target, bandit_task.mixture(), atol=1e-6)
    # three local maxima, at the mode centres, the heaviest first
    peaks = [i for i in range(1, bandit.N_ARMS - 1)
             if target[i] > target[i - 1] and target[i] > target[i + 1]]
    assert peaks == [centre for centre, _, _ in bandit_task.MODES]
    assert int(target.argmax()) == bandit_task.MODES[0][0]
    summary = bandit.summarise_policy(target, target)
    assert summary["tv"] == 0.0 and summary["modes_recovered"] == 3
    # centring the advantages keeps the target and raises its normaliser Z above 1 (Jensen)
    centred = bandit.bandit_advantages(pi_0, centre=True)
    assert torch.allclose(bandit.target_policy(pi_0, centred, 0.25), target, atol=1e-6)
    assert float((pi_0 * centred).sum()) == pytest.approx(0.0, abs=1e-6)
    assert float((pi_0 * torch.exp(centred / 0.25)).sum()) > 1.5


def test_eta_sharpens_the_target_around_the_same_modes():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    peaks = [float(bandit.target_policy(pi_0, advantages, 1 / k).max()) for k in (0.5, 1, 4, 16)]
    assert peaks == sorted(peaks) and peaks[-1] > 3 * peaks[2]
    sharp = bandit.target_policy(pi_0, advantages, 1 / 16)
    mixture = bandit_task.mixture()
    assert torch.allclose(sharp, mixture ** 4 / (mixture ** 4).sum(), atol=1e-5)


def test_a_collapsed_policy_recovers_one_mode():
    target = bandit_task.mixture()
    collapsed = torch.zeros(bandit.N_ARMS)
    collapsed[10] = 1.0
    s = bandit.summarise_policy(collapsed, target)
    assert s["modes_recovered"] == 1 and s["max_prob"] == 1.0 and s["entropy"] == 0.0
    assert s["tv"] == pytest.approx(1.0 - float(target[10]), abs=1e-6)


def test_quick_run_end_to_end(tmp_path):
    figure, metrics_path = tmp_path / "bandit.png", tmp_path / "m.json"
    metrics = bandit.main(["--quick", "--figure", str(figure), "--metrics-json", str(metrics_path)])
    assert figure.stat().st_size > 10_000
    written = json.loads(metrics_path.read_text())
    for key in ("lad-fixed", "grpo", "target"):
        assert {"tv", "max_prob", "entropy", "modes_recovered"} <= set(written[key])
    assert written["settings"]["iterations"] == 400
    assert written["settings"]["methods"] == ["lad-fixed", "grpo"]
    # the paper's picture, already after the quick run
    assert metrics["lad-fixed"]["tv"] < metrics["grpo"]["tv"]
    assert metrics["lad-fixed"]["modes_recovered"] == 3
    assert metrics["grpo"]["max_prob"] > 0.5 > metrics["lad-fixed"]["max_prob"]


def test_without_a_metrics_file_nothing_is_timed(tmp_path, monkeypatch):
    """The step timing (hundreds of extra steps per run) once ran in every command, `python
    bandit.py` included, whose figure does not show it: it belongs in the metrics file only."""
    def no_timing(*args, **kwargs):
        raise AssertionError("timed the steps without a metrics file to write them to")

    monkeypatch.setattr(bandit, "step_time_side_by_side", no_timing)
    metrics = bandit.main(["--quick", "--iterations", "20", "--figure", str(tmp_path / "b.png")])
    assert "step_time" not in metrics and "step_time_ratio" not in metrics["grpo"]


def test_exact_mode_weights_each_arm_by_a_non_uniform_pi_old():
    """--exact's loss is the sum over arms of pi_old(arm) times the per-arm loss. In the bandit
    pi_old is uniform, where a bug that averaged the arms uniformly gives the same number; here it
    is not."""
    gen = torch.Generator().manual_seed(0)
    pi_old = torch.softmax(2 * torch.randn(bandit.N_ARMS, generator=gen), 0)
    logits = torch.randn(bandit.N_ARMS, generator=gen)
    advantages = bandit.bandit_advantages(bandit.uniform_policy())
    settings = bandit.Settings(exact=True)

    # By hand, in float64, from the Jensen-Shannon generator written out again.
    logp = torch.log_softmax(logits.double(), 0)
    ratio = torch.exp(logp - pi_old.double().log())
    weight = torch.exp(advantages.double() / settings.eta)
    x = ratio / weight
    per_arm = weight * 0.5 * (x * x.log() - (x + 1) * torch.log((x + 1) / 2))
    expected = float((pi_old.double() * per_arm).sum())
    got = float(bandit.step_loss("lad-fixed", logits, pi_old, advantages, None, settings))
    assert got == pytest.approx(expected, rel=1e-4)
    assert abs(float(per_arm.mean()) - expected) > 0.01 * abs(expected)  # uniform weights fail

    # GRPO: A normalised with pi_old's mean and std, then the clipped surrogate weighted by pi_old.
    a = advantages.double()
    mean = (pi_old.double() * a).sum()
    a_hat = (a - mean) / ((pi_old.double() * (a - mean) ** 2).sum().sqrt() + 1e-6)
    clipped = ratio.clamp(1 - bandit.CLIP_EPS, 1 + bandit.CLIP_EPS)
    expected = float((pi_old.double() * torch.maximum(-ratio * a_hat, -clipped * a_hat)).sum())
    got = float(bandit.step_loss("grpo", logits, pi_old, advantages, None, settings))
    assert got == pytest.approx(expected, rel=1e-4)
    unclipped = float(-(pi_old.double() * ratio * a_hat).sum())
    assert abs(unclipped - expected) > 0.01 * abs(expected)  # a ratio far from 1: the clip acts


@pytest.mark.parametrize("method", ["lad", "grpo"])
def test_exact_on_policy_gradient_is_the_policy_gradient_with_pi_old_held_constant(method):
    """On-policy, --exact weights every arm by pi_old = the current policy. Those weights must be
    constants of the step: the gradient is then the policy gradient sum_y pi(y) w(y) grad log pi(y),
    with LAD's weight w = -f'(exp(-A/eta)) and GRPO's w = A_hat (normalised with pi's mean and
    std). If the weights stay attached to the graph (a dropped .detach()), the gradient gains a term
    through them, and GRPO's A_hat another through its mean and std: `--exact --methods lad` then
    ends with its largest arm at 0.49 instead of 0.995."""
    gen = torch.Generator().manual_seed(1)
    logits = (0.5 * torch.randn(bandit.N_ARMS, generator=gen)).requires_grad_(True)
    settings = bandit.Settings(exact=True)
    advantages = bandit.bandit_advantages(bandit.uniform_policy())
    loss = bandit.step_loss(method, logits, None, advantages, None, settings)
    (grad,) = torch.autograd.grad(loss, logits)

    pi = torch.softmax(logits.detach().double(), 0)
    a = advantages.double()
    if method == "lad":
        f_prime = DIVERGENCES[settings.divergence].f_prime
        w = -f_prime(torch.exp(-a / settings.eta))
    else:
        mean = (pi * a).sum()
        w = (a - mean) / ((pi * (a - mean) ** 2).sum().sqrt() + 1e-6)
    # The loss is minus the objective: its gradient is -sum_y pi(y) w(y) (e_y - pi).
    expected = -(pi * w - pi * (pi * w).sum())
    assert torch.allclose(grad.double(), expected, rtol=1e-4, atol=1e-7), (grad, expected)


def test_lad_fixed_samples_from_pi_0_and_lad_and_grpo_from_the_current_policy(monkeypatch):
    """lad-fixed that sampled its groups from the policy instead of the frozen pi_0 would be neither
    method: its ratio would be taken against pi_0 on arms drawn from elsewhere. lad and grpo that
    sampled from pi_0 would be off-policy."""
    drawn_from = []
    multinomial = torch.multinomial

    def recording(probabilities, *args, **kwargs):
        drawn_from.append(probabilities.clone())
        return multinomial(probabilities, *args, **kwargs)

    monkeypatch.setattr(torch, "multinomial", recording)
    for method, expected in [("lad-fixed", "pi_0"), ("lad", "policy"), ("grpo", "policy")]:
        learner = bandit.Learner(method, bandit.Settings(iterations=1))
        with torch.no_grad():
            learner.logits.copy_(torch.linspace(0, 3, bandit.N_ARMS))  # a policy far from pi_0
        drawn_from.clear()
        pi_old = {"pi_0": learner.pi_0, "policy": learner.policy()}[expected]
        learner.step()
        assert len(drawn_from) == 1 and torch.equal(drawn_from[0], pi_old), method


def test_grpo_is_clipped_and_on_policy_the_clip_never_acts(monkeypatch):
    """grpo means GRPO's clipped surrogate (clip_eps 0.2) in every chapter. On-policy the ratio is
    exactly 1 when the gradient is taken, so the clipped run is bit for bit the unclipped one; a
    log pi_old taken from another forward pass, equal only up to rounding, would break that. With
    pi_old frozen at pi_0 the clip acts, and the two differ."""
    on_policy = bandit.Settings(iterations=200, lr=2e-2)
    clipped = bandit.train("grpo", on_policy, progress=False).pi
    frozen = dataclasses.replace(on_policy, grpo_pi_old="fixed")
    clipped_frozen = bandit.train("grpo", frozen, progress=False).pi
    monkeypatch.setattr(bandit, "CLIP_EPS", None)
    assert torch.equal(bandit.train("grpo", on_policy, progress=False).pi, clipped)
    assert not torch.equal(bandit.train("grpo", frozen, progress=False).pi, clipped_frozen)


@pytest.mark.parametrize("method", ["lad-fixed", "flowrl"])
def test_the_written_out_adam_is_torch_optim_adam_bit_for_bit(method, monkeypatch):
    """bandit_study/adam.py promises torch.optim.Adam's numbers: a slip in its update (the bias
    correction of the wrong moment, eps inside the square root, a step count shared between
    FlowRL's two parameters) would move every committed number without any other test noticing."""
    settings = bandit.Settings(iterations=300, lr=2e-2)
    written_out = bandit.train(method, settings, progress=False)
    monkeypatch.setattr(bandit, "Adam", torch.optim.Adam)
    reference = bandit.train(method, settings, progress=False)
    assert torch.equal(written_out.pi, reference.pi)
    assert written_out.log_z == reference.log_z


def test_the_written_out_adam_skips_a_parameter_without_a_gradient():
    """As torch.optim.Adam does: a parameter whose .grad is None keeps its value and step count."""
    a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    optimizer = bandit_adam.Adam([a, b], lr=0.1)
    (a ** 2).sum().backward()
    optimizer.step()
    assert torch.equal(b.detach(), torch.ones(2)) and optimizer.state[1]["t"] == 0
    assert optimizer.state[0]["t"] == 1 and (a.detach() < 1).all()


def test_the_progress_bar_counts_the_iterations_asked_for(monkeypatch):
    """It counted 4001 steps for 4000; the history still ends at the final iteration."""
    lengths = []

    def counting_tqdm(iterable, **kwargs):
        lengths.append(len(iterable))
        return iterable

    monkeypatch.setattr(bandit, "tqdm", counting_tqdm)
    run = bandit.train("lad-fixed", bandit.Settings(iterations=25), record_every=10)
    assert lengths == [25]
    assert run.iterations == [0, 10, 20, 25]


def test_same_seed_same_numbers_and_the_exact_mode_runs():
    settings = parse(["--iterations", "50", "--seed", "3"])
    a = bandit.train("lad-fixed", settings, progress=False)
    b = bandit.train("lad-fixed", settings, progress=False)
    assert torch.equal(a.pi, b.pi)
    other = bandit.train("lad-fixed", parse(["--iterations", "50", "--seed", "4"]), progress=False)
    assert not torch.equal(a.pi, other.pi)
    exact = bandit.train("grpo", parse(["--iterations", "50", "--exact"]), progress=False)
    assert exact.tv[-1] < exact.tv[0]


def test_refreshing_pi_old_makes_lad_sharpen_past_the_target():
    run = bandit.train("lad", parse(["--quick"]), progress=False)
    target = bandit_task.mixture()
    assert float(run.pi.max()) > 2 * float(target.max())


@pytest.mark.parametrize("argv, flag", [
    (["--eta", "0"], "--eta"), (["--eta", "inf"], "--eta"), (["--eta", "nan"], "--eta"),
    (["--eta", "0.002"], "--eta"),  # exp(A/eta) would overflow float32
    (["--lr", "-1"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "nan"], "--lr"),
    (["--lr", "2"], "--lr"), (["--iterations", "0"], "--iterations"),
    (["--group-size", "1"], "--group-size"),
    (["--entropy-coef", "-0.1"], "--entropy-coef"), (["--entropy-coef", "inf"], "--entropy-coef"),
    (["--seed", "-1"], "--seed"), (["--timing-rounds", "-1"], "--timing-rounds"),
    (["--divergence", "chi2"], "--divergence"), (["--grpo-pi-old", "sometimes"], "--grpo-pi-old"),
    (["--methods", "ppo"], "--methods"), (["--methods", "lad", "lad"], "--methods"),
    (["--methods", "lad", "--ablation", "eta"], "--methods"),
    (["--ablation", "everything"], "--ablation"),
    (["--figure", "out.json"], "--figure"),
    (["--ablation", "animation", "--figure", "a.png"], "--figure"),
    (["--figure", "same.png", "--metrics-json", "same.png"], "--metrics-json"),
    (["--exact", "--ablation", "baselines"], "--exact"),
    (["--exact", "--methods", "flowrl"], "--exact"),
])
def test_bad_command_lines_are_one_line_argparse_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # usage lines, then one line: "<prog>: error: --flag ..." or "... error: argument --flag: ..."
    last = err.strip().splitlines()[-1]
    assert re.search(rf": error: (argument )?{re.escape(flag)}[ :]", last), err


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


def test_quick_runs_write_under_runs_quick_and_full_runs_write_the_committed_figures():
    """--quick used to replace plots/bandit.png with a 400-step figure."""
    assert parse([]).figure == "plots/bandit.png" and parse([]).metrics_json is None
    quick = parse(["--quick"])
    assert quick.figure == f"{bandit.QUICK_DIR}/bandit.png" and quick.metrics_json is None
    eta = parse(["--quick", "--ablation", "eta"])
    assert (eta.figure, eta.metrics_json) == (f"{bandit.QUICK_DIR}/ablation_eta.png",
                                              f"{bandit.QUICK_DIR}/ablation_eta.json")
    assert parse(["--ablation", "animation"]).figure == "plots/ablation_animation.gif"
    assert not bandit.QUICK_DIR.startswith("plots")
    # --exact used to write over the sampled run's plots/bandit.png
    assert parse(["--exact"]).figure == "plots/bandit_exact.png"


def test_an_explicit_flag_wins_over_quick():
    """--quick used to override --steps and --lr silently."""
    assert (parse([]).iterations, parse([]).lr) == (4000, 5e-3)
    quick = parse(["--quick"])
    assert (quick.iterations, quick.lr, quick.timing_rounds) == (400, 2e-2, 80)
    explicit = parse(["--quick", "--iterations", "50", "--lr", "0.1"])
    assert (explicit.iterations, explicit.lr) == (50, 0.1)
    assert parse(["--iterations", "50"]).lr == 5e-3


def test_figure_titles_say_the_lesson_and_leave_out_the_setting_an_ablation_varies():
    """The ablation figures always said '1/eta = 4, pi_old: LAD fixed', even where that varied. The
    main figure's title says which pi_old LAD keeps, and what happens when it is refreshed."""
    def title(argv):  # an ablation's title, without the "ablation 'NAME': " that opens it
        settings = parse(argv)
        heading = bandit.figure_title(bandit.experiment(settings), settings.ablation)
        return heading.split("': ", 1)[1] if settings.ablation else heading

    main = title([])
    assert "lad-fixed keeps pi_old = pi_0" in main and "refreshed every iteration (lad)" in main
    assert "1/eta = 4" in main and "GRPO pi_old refresh" in main
    eta = title(["--ablation", "eta"])
    assert "1/eta" not in eta and "LAD divergence js" in eta and "lad-fixed keeps" not in eta
    pi_old = title(["--ablation", "pi-old"])
    assert "pi_old" not in pi_old and "1/eta = 4" in pi_old
    divergences = title(["--ablation", "divergences"])
    assert "divergence" not in divergences and "centred" not in divergences
    assert "GRPO" not in divergences
    assert "quick" in title(["--quick"])
    assert "GRPO and the baselines pi_old refresh" in title(["--ablation", "baselines"])


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


def test_pi_old_ablation_refreshing_makes_lad_sharpen_and_a_frozen_pi_old_holds_grpo(tmp_path):
    m = _quick_ablation("pi-old", tmp_path)
    assert m["lad-fixed"]["tv"] < 0.05 and m["lad-fixed"]["modes_recovered"] == 3
    assert m["lad"]["max_prob"] > 5 * m["lad-fixed"]["max_prob"]
    assert m["grpo"]["max_prob"] > 0.9
    # the clip against a frozen pi_0: no arm gets far past 1.2 / 50
    assert m["grpo, pi_old fixed"]["max_prob"] < 0.05


def test_entropy_bonus_ablation_small_coefficients_collapse_large_ones_flatten(tmp_path):
    m = _quick_ablation("entropy-bonus", tmp_path)
    bonus = sorted((k for k in m if k.startswith("grpo, ")), key=lambda k: float(k.split("=")[1]))
    assert m["grpo"]["max_prob"] > 0.9  # no bonus: plain GRPO
    assert m[bonus[-1]]["entropy"] > m["target"]["entropy"]  # the largest: flatter than the target
    assert m["lad-fixed"]["tv"] < min(m[k]["tv"] for k in ["grpo"] + bonus)


def test_the_entropy_bonus_ablation_runs_the_coefficient_whose_optimum_is_lads_target():
    """GRPO + c H(pi) on A_hat = (A - mean) / std has the optimum softmax(A_hat / c), which is pi*
    when c = eta / std (std under pi*: 1.3 at 1/eta = 4). An inverted value, std / eta = 0.77, would
    still run, and the ablation would report that no coefficient reaches LAD's target."""
    settings = parse(["--ablation", "entropy-bonus"])
    coefs = [s.entropy_coef for _, method, s in bandit.experiment(settings) if method == "grpo"]
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    target = bandit.target_policy(pi_0, advantages, settings.eta)
    std = bandit_task.advantage_std(target, advantages)
    a_hat = (advantages - (target * advantages).sum()) / std
    distance = {c: float(bandit.total_variation(torch.softmax(a_hat / c, 0), target))
                for c in coefs if c > 0}
    best = min(distance, key=distance.get)
    assert distance[best] < 0.01, distance
    assert best == pytest.approx(settings.eta / std, abs=0.01)


def test_animation_writes_a_gif_with_frames(tmp_path):
    from PIL import Image

    _quick_ablation("animation", tmp_path)
    with Image.open(tmp_path / "animation.gif") as gif:
        assert gif.n_frames > 10


def test_baselines_ablation_flowrl_matches_pi_star_on_the_raw_advantage_the_others_collapse(
        tmp_path):
    m = _quick_ablation("baselines", tmp_path)
    assert set(m) >= {"lad-fixed", "grpo", "flowrl", "flowrl, raw A", "entadv", "clip-cov",
                      "kl-cov", "target", "step_time"}
    for key in ("lad-fixed", "flowrl", "flowrl, raw A"):
        assert m[key]["modes_recovered"] == 3 and m[key]["max_prob"] < 0.1
    assert m["flowrl, raw A"]["tv"] < m["flowrl"]["tv"]  # the group's own std flattens FlowRL's end
    for key in ("grpo", "entadv", "clip-cov", "kl-cov"):
        assert m[key]["max_prob"] > 0.9 and m[key]["modes_recovered"] == 1
    # FlowRL's beta makes pi* its fixed point; its learned log Z follows the true one
    assert m["flowrl"]["flowrl_reward_scale"] == pytest.approx(bandit.std_at_target(0.25) / 0.25,
                                                               abs=1e-4)
    assert m["flowrl, raw A"]["flowrl_reward_scale"] == 4.0
    assert abs(m["flowrl"]["log_z"] - m["flowrl"]["true_log_z"]) < 0.1
    # one update per iteration: the ratio is 1 when the gradient is taken, so KL-Cov's penalty is
    # silent
    summary = ("tv", "max_prob", "entropy", "mode_mass")
    assert [m["kl-cov"][k] for k in summary] == [m["grpo"][k] for k in summary]
    assert m["grpo"]["step_time_ratio"] == 1.0 and m["step_time"]["relative_to"] == "grpo"
    assert all(m[key]["step_time_ratio"] > 0 for key in ("lad-fixed", "flowrl", "clip-cov"))


def test_baselines_are_deterministic_and_run_on_sampled_groups_only():
    """Clip-Cov draws the samples it holds back with its own seeded generator: the same seed, the
    same numbers, once it has held some back (its policy differs from GRPO's)."""
    settings = parse(["--iterations", "100", "--lr", "0.1"])
    runs = {method: bandit.train(method, settings, progress=False)
            for method in ("grpo", "flowrl", "clip-cov", "entadv")}
    for method in ("flowrl", "clip-cov", "entadv"):
        assert torch.equal(runs[method].pi, bandit.train(method, settings, progress=False).pi)
    assert not torch.equal(runs["clip-cov"].pi, runs["grpo"].pi)
    with pytest.raises(ValueError, match="sampled groups"):
        bandit.step_loss("clip-cov", torch.zeros(bandit.N_ARMS, requires_grad=True),
                         bandit.uniform_policy(), bandit.bandit_advantages(bandit.uniform_policy()),
                         None, bandit.Settings(exact=True))


# The command that writes each committed bandit file (the docs print them beside their tables).
COMMANDS = {
    "plots/bandit_metrics.json": "python bandit.py --metrics-json plots/bandit_metrics.json",
    "plots/bandit_exact.json": "python bandit.py --exact --metrics-json plots/bandit_exact.json",
    **{f"plots/ablation_{name.replace('-', '_')}.json": f"python bandit.py --ablation {name}"
       for name in ("divergences", "eta", "pi-old", "entropy-bonus", "animation", "baselines")},
}


def test_every_committed_bandit_file_is_what_its_command_writes():
    """Each committed metrics file must record the settings its command gives, parsed as bandit.py
    parses it, paths relative to the repository; and the figure it names must be committed beside
    it. A file written by an edited command, by an older bandit.py (--steps, a lad that was
    lad-fixed) or from a temporary folder fails here."""
    committed = sorted(f"plots/{p.name}" for p in (REPOSITORY / "plots").glob("*.json")
                       if p.name.startswith(("bandit", "ablation_")))
    assert committed == sorted(COMMANDS)
    for path, command in COMMANDS.items():
        recorded = json.loads((REPOSITORY / path).read_text())["settings"]
        settings = parse(shlex.split(command)[2:])
        assert recorded == json.loads(json.dumps(dataclasses.asdict(settings))), path
        assert (REPOSITORY / recorded["figure"]).exists(), path


def test_flowrl_on_the_normalised_reward_reaches_pi_star_when_the_group_is_large():
    """The account of FlowRL's flatter end point in the bandit: with the group's mean and std
    replaced by the policy's own (a group of infinite size), beta = std_{pi*}(A) / eta makes pi* the
    fixed point, and log Z reaches its true value there."""
    from baselines.flowrl_loss import flowrl_loss

    pi_0 = bandit_task.uniform_policy().double()
    advantages = bandit_task.bandit_advantages(bandit_task.uniform_policy()).double()
    target = bandit_task.target_policy(pi_0, advantages, 0.25)
    learner = bandit.Learner("flowrl", bandit.Settings())
    baseline = learner.baseline
    logits = torch.zeros(bandit_task.N_ARMS, dtype=torch.float64, requires_grad=True)
    log_z = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logits, log_z], lr=0.1)
    for _ in range(600):
        logp = torch.log_softmax(logits, 0)
        pi = logp.exp().detach()
        r_hat = (advantages - (pi * advantages).sum()) / bandit_task.advantage_std(pi, advantages)
        per_arm = flowrl_loss(logp, logp.detach(), pi_0.log(), log_z.expand(len(pi)), r_hat,
                              reward_scale=baseline.flowrl_reward_scale, reduction="none")
        optimizer.zero_grad()
        (pi * per_arm).sum().backward()
        optimizer.step()
    final = torch.softmax(logits.detach(), 0)
    assert float(0.5 * (final - target).abs().sum()) < 0.005  # 64 samples: 0.055
    assert log_z.item() == pytest.approx(baseline.true_log_z(learner.target), abs=0.01)


def test_a_rare_arm_pulls_its_own_normalised_reward_towards_zero_in_a_group_of_64():
    """Why FlowRL on r_hat ends flatter than pi* with 64 samples: an arm far below the mean inflates
    the std of the group it is drawn in, so its r_hat, averaged over the groups that hold it, is
    closer to 0 than (A - mean) / std under the same policy. Common arms are not affected."""
    gen = torch.Generator().manual_seed(0)
    pi_0 = bandit_task.uniform_policy()
    advantages = bandit_task.bandit_advantages(pi_0)
    target = bandit_task.target_policy(pi_0, advantages, 0.25)
    large_group = (advantages - (target * advantages).sum()) / bandit_task.advantage_std(target,
                                                                                         advantages)
    groups = torch.multinomial(target, 64 * 5000, replacement=True, generator=gen)
    r_hat = bandit.group_advantages(advantages[groups], group_size=64)
    mean_r_hat = torch.zeros(bandit_task.N_ARMS).index_add_(0, groups, r_hat)
    draws = torch.zeros(bandit_task.N_ARMS).index_add_(0, groups, torch.ones_like(r_hat))
    mean_r_hat /= draws.clamp(min=1)
    rare = (target < 0.002) & (draws >= 100)  # arms in the valleys, 3.5 to 4.5 std below the mean
    common = target > 0.03
    assert rare.sum() >= 4 and (mean_r_hat[rare] > 0.95 * large_group[rare]).all()  # in by over 5%
    assert torch.allclose(mean_r_hat[common], large_group[common], atol=0.05)


def test_no_module_under_bandit_study_imports_a_script():
    """bandit_study/ holds what bandit.py uses; a module there that imported bandit.py (or another
    root script) would turn the arrows around."""
    scripts = {p.stem for p in REPOSITORY.glob("*.py")} - {"grpo_loss", "lad_loss", "kl_penalty"}
    for path in (REPOSITORY / "bandit_study").glob("*.py"):
        imports = re.findall(r"^(?:from|import) (\w+)", path.read_text(), flags=re.MULTILINE)
        assert not scripts & set(imports), (path.name, scripts & set(imports))

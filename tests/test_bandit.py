"""Tests of bandit.py: the target, the metrics, and the --quick experiment end to end."""
import json

import pytest
import torch

import bandit


def test_the_target_is_the_trimodal_mixture_and_the_advantages_are_finite():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    target = bandit.target_distribution(pi_0, advantages, 0.25)
    assert torch.isfinite(advantages).all()
    assert torch.allclose(target, bandit.mixture(), atol=1e-6)
    # three local maxima, at the mode centres, the heaviest first
    peaks = [i for i in range(1, bandit.N_ARMS - 1) if target[i] > target[i - 1] and target[i] > target[i + 1]]
    assert peaks == [mu for mu, _, _ in bandit.MODES]
    assert int(target.argmax()) == bandit.MODES[0][0]
    summary = bandit.summarize(target, target)
    assert summary["tv"] == 0.0 and summary["modes_recovered"] == 3
    # centring the advantages keeps the target and raises its normaliser Z above 1 (Jensen)
    centred = bandit.bandit_advantages(pi_0, center=True)
    assert torch.allclose(bandit.target_distribution(pi_0, centred, 0.25), target, atol=1e-6)
    assert float((pi_0 * centred).sum()) == pytest.approx(0.0, abs=1e-6)
    assert float((pi_0 * torch.exp(centred / 0.25)).sum()) > 1.5


def test_eta_sharpens_the_target_around_the_same_modes():
    pi_0 = bandit.uniform_policy()
    advantages = bandit.bandit_advantages(pi_0)
    peaks = [float(bandit.target_distribution(pi_0, advantages, 1 / k).max()) for k in (0.5, 1, 4, 16)]
    assert peaks == sorted(peaks) and peaks[-1] > 3 * peaks[2]
    sharp = bandit.target_distribution(pi_0, advantages, 1 / 16)
    assert torch.allclose(sharp, bandit.mixture() ** 4 / (bandit.mixture() ** 4).sum(), atol=1e-5)


def test_a_collapsed_policy_recovers_one_mode():
    target = bandit.mixture()
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
    target = bandit.mixture()
    assert float(run.pi.max()) > 2 * float(target.max())


@pytest.mark.parametrize("argv", [
    ["--eta", "0"], ["--lr", "-1"], ["--steps", "0"], ["--group-size", "1"],
    ["--divergence", "chi2"], ["--pi-old", "sometimes"], ["--ablation", "everything"],
    ["--grpo-entropy-coef", "-0.1"], ["--eta", "0.002"],
])
def test_bad_command_lines_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        bandit.parse_args(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


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

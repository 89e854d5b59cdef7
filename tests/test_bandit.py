"""Tests of bandit.py: the target, the metrics, and the --quick experiment end to end."""
import json

import pytest
import torch

import bandit


def test_the_target_is_the_trimodal_mixture_and_the_advantages_are_finite():
    pi_0 = torch.full((bandit.N_ARMS,), 1.0 / bandit.N_ARMS)
    advantages = bandit.bandit_advantages(0.25, pi_0)
    target = bandit.target_distribution(pi_0, advantages, 0.25)
    assert torch.isfinite(advantages).all()
    assert torch.allclose(target, bandit.mixture(), atol=1e-6)
    # three local maxima, at the mode centres, the heaviest first
    peaks = [i for i in range(1, bandit.N_ARMS - 1) if target[i] > target[i - 1] and target[i] > target[i + 1]]
    assert peaks == [mu for mu, _, _ in bandit.MODES]
    assert int(target.argmax()) == bandit.MODES[0][0]
    summary = bandit.summarize(target, target)
    assert summary["tv"] == 0.0 and summary["modes_recovered"] == 3


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
    ["--divergence", "chi2"], ["--pi-old", "sometimes"],
])
def test_bad_command_lines_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        bandit.parse_args(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err

"""Tests of the plotting helpers: what they draw, their errors, and the checks of output paths."""
import json
import math
import os
from types import SimpleNamespace

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import cli.outputs
import plots
from grpo_loss import grpo_loss
from grpo_loss import reduce_loss
from lad_loss import DIVERGENCES, lad_loss
from plots import gradient_weights
from cli.outputs import REPOSITORY, output_path_problem, repository_path, write_metrics_json
from plots import METHOD_COLORS, color_for, plot_curves, plot_distribution, save_figure
import plots.reasoning
from plots.bandit import run_styles


def test_distribution_draws_the_target_and_one_bar_per_outcome_per_method(tmp_path):
    fig, ax = plt.subplots()
    target = torch.tensor([0.2, 0.3, 0.5])
    plot_distribution(ax, target, {"lad": [0.2, 0.3, 0.5], "grpo": np.array([0.0, 0.0, 1.0])},
                      outcome_labels=["a", "b", "c"])
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert len(ax.patches) == 9  # 3 target bars + 3 + 3
    assert heights == sorted([0.2, 0.3, 0.5] * 2 + [0.0, 0.0, 1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    path = save_figure(fig, tmp_path / "deep" / "folder" / "d.png")
    assert path.stat().st_size > 0


def test_the_target_outline_covers_the_whole_of_the_first_and_last_bars():
    ("""The outline used to run from the first bar's centre to the last one's, leaving half of each
    out.""")
    fig, ax = plt.subplots()
    target = [0.2, 0.3, 0.5]
    plot_distribution(ax, target, {"lad": [0.2, 0.3, 0.5]})
    (outline,) = ax.get_lines()
    xs, ys = outline.get_xdata(), outline.get_ydata()
    assert (min(xs), max(xs)) == (-0.5, 2.5)
    assert ys[0] == 0.2 and ys[-1] == 0.5  # the first and the last bar's height at the outer edges
    # the drawn target is pi*, not the paper's P_A
    assert "pi^*" in ax.get_legend_handles_labels()[1][0]
    plt.close(fig)


def test_distribution_lengths_must_agree():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="outcomes"):
        plot_distribution(ax, [0.5, 0.5], {"lad": [1.0, 0.0, 0.0]})
    plt.close(fig)


def test_curves_take_their_own_x_and_a_std_band():
    fig, ax = plt.subplots()
    plot_curves(ax, {"lad": ([0, 1, 2], [1.0, 2.0, 3.0]), "grpo": ([0.5, 0.7], [1.0, 1.0], [0.1,
                                                                                            0.2])})
    lines = ax.get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[0, 1, 2], [0.5, 0.7]]
    assert lines[0].get_color() == color_for("lad") and lines[1].get_color() == color_for("grpo")
    assert len(ax.collections) == 1  # the band
    with pytest.raises(ValueError, match="curve"):
        plot_curves(ax, {"lad": ([0, 1],)})
    plt.close(fig)


def test_a_run_keeps_its_colour_in_its_bars_and_its_curves():
    """The pi_old and entropy-bonus figures drew LAD blue and GRPO red in the bars, and the same
    runs in other colours in the curves."""
    runs = {key: SimpleNamespace(method=method) for key, method in
            [("lad-fixed", "lad-fixed"), ("lad", "lad"), ("grpo, pi_old fixed", "grpo"),
             ("grpo", "grpo")]}
    colors, _ = run_styles(runs, "pi-old")
    assert len({colors[key] for key in runs}) == 4
    fig, (left, right) = plt.subplots(1, 2)
    plot_distribution(left, None, {"lad": [0.5, 0.5]}, colors=colors)
    plot_curves(right, {"lad": ([0, 1], [1.0, 0.5])}, colors=colors)
    color = matplotlib.colors.to_rgba(colors["lad"])
    assert left.patches[0].get_facecolor() == color
    assert matplotlib.colors.to_rgba(right.get_lines()[0].get_color()) == color
    plt.close(fig)
    # a method's only run has the method's colour; the divergences, one colour each, dashed when
    # centred
    assert run_styles({"flowrl": SimpleNamespace(method="flowrl")},
                      "baselines")[0]["flowrl"] == METHOD_COLORS["flowrl"]
    divergences = {key: SimpleNamespace(method="lad") for key in ["kl", "js", "kl, centred A"]}
    colors, styles = run_styles(divergences, "divergences")
    assert colors["kl"] == colors["kl, centred A"] != colors["js"]
    assert styles["kl, centred A"] == ("--")


def test_the_bandit_figure_is_titled_by_its_experiment_and_each_panel_by_its_run(monkeypatch):
    """A panel's title once overwrote the figure's: every figure was headed by its last panel."""
    figures = []
    monkeypatch.setattr(plots.bandit, "save_figure", lambda fig, path: figures.append(fig))
    target = np.full(4, 0.25)
    runs = {key: SimpleNamespace(method=key, pi=target, target=target, iterations=[0, 1],
                                 tv=[0.5, 0.1], entropy=[1.0, 1.0])
            for key in ("lad", "grpo")}
    metrics = {key: {"tv": 0.1, "max_prob": 0.25, "modes_recovered": 3} for key in runs}
    plots.bandit.draw_runs(runs, metrics, None, "the experiment", "unused.png")
    assert figures[0]._suptitle.get_text() == "the experiment"
    titles = [ax.get_title().split("\n")[0] for ax in figures[0].axes[:2]]
    assert titles == [plots.bandit.LABELS["lad"], "GRPO"]
    plt.close(figures[0])


def test_every_method_of_both_chapters_has_its_own_colour():
    methods = ["grpo", "lad", "grpo-kl", "lad-kl", "lad-fixed", "flowrl", "entadv", "clip-cov",
               "kl-cov"]
    assert len({METHOD_COLORS[m] for m in methods + ["target"]}) == len(methods) + 1


def test_log_axis_survives_curves_with_nothing_to_show():
    fig, ax = plt.subplots()
    plot_curves(ax, {"lad": ([0, 1], [np.nan, np.nan])}, logy=True)
    assert ax.get_yscale() == "linear"
    plot_curves(ax, {"grpo": ([0, 1], [1.0, 10.0])}, logy=True)
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_output_paths_that_can_be_written_have_no_problem_and_nothing_is_created(tmp_path):
    assert output_path_problem(tmp_path / "m.json") is None
    # parents get created
    assert output_path_problem(tmp_path / "new" / "deeper" / "m.json") is None
    assert output_path_problem(tmp_path / "new" / "figure.png", "figure") is None
    assert output_path_problem(tmp_path / "new" / "figures", "dir") is None
    assert output_path_problem(tmp_path, "dir") is None
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    assert output_path_problem(existing) is None  # overwriting a file is allowed
    assert sorted(os.listdir(tmp_path)) == ["old.json"], "the check must not create anything"


def test_a_directory_where_a_file_should_go_is_a_problem(tmp_path):
    ("""The bug it catches: --metrics-json pointing at a folder failed only after all the
    training.""")
    assert "folder" in output_path_problem(tmp_path)
    (tmp_path / "fig.png").mkdir()
    assert "folder" in output_path_problem(tmp_path / "fig.png", "figure")


def test_a_regular_file_above_the_path_is_a_problem_and_is_named(tmp_path):
    ("""The bug it catches: --figure or --out-dir under a regular file ended in an OSError
    traceback.""")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    for kind, name in [("file", "m.json"), ("figure", "f.png"), ("dir", "figures")]:
        problem = output_path_problem(blocker / "sub" / name, kind)
        assert problem is not None and str(blocker) in problem and "regular file" in problem
    assert "not a folder" in output_path_problem(blocker, "dir")


def test_a_figure_needs_a_suffix_matplotlib_can_write(tmp_path):
    for name in ["f.png", "f.PDF", "f.svg", "f.gif"]:
        assert output_path_problem(tmp_path / name, "figure") is None, name
    for name in ["f.json", "f", "f.pngx"]:
        assert ".png" in output_path_problem(tmp_path / name, "figure"), name


def test_a_folder_this_user_may_not_write_to_is_a_problem(tmp_path, monkeypatch):
    """Simulated with os.access (a root user may write anywhere, so chmod alone cannot show it)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    (folder / "m.json").write_text("{}")
    monkeypatch.setattr(cli.outputs.os, "access", lambda path,
                        mode: not str(path).startswith(str(folder)))
    assert "may not" in output_path_problem(folder / "new.json")
    assert "may not" in output_path_problem(folder / "deeper" / "new.json")
    assert "may not" in output_path_problem(folder / "m.json")
    assert "may not" in output_path_problem(folder, "dir")
    assert output_path_problem(tmp_path / "elsewhere.json") is None


def test_unknown_output_kind_is_a_value_error():
    with pytest.raises(ValueError, match="kind"):
        output_path_problem("x.json", "folder")


def test_metrics_files_record_paths_inside_the_repository_relative_to_it(tmp_path, monkeypatch):
    ("""Committed metrics files held absolute temporary paths, which name nothing on another
    clone.""")
    assert repository_path("plots/bandit.png") == "plots/bandit.png"
    assert repository_path(REPOSITORY / "plots" / "x.json") == os.path.join("plots", "x.json")
    # a relative path is read from the working directory, as the scripts do
    monkeypatch.chdir(tmp_path)
    assert repository_path("m.json") == str(tmp_path / "m.json")
    assert repository_path(REPOSITORY / "runs" / ".." / "plots" / "y.png") == os.path.join("plots",
                                                                                           "y.png")
    assert repository_path(None) is None


def test_metrics_json_creates_its_folder_and_round_trips(tmp_path):
    metrics = {"lad": {"tv": 0.001, "modes": [1, 2, 3]}, "settings": {"seed": 0}}
    path = write_metrics_json(tmp_path / "a" / "b" / "m.json", metrics)
    assert path == tmp_path / "a" / "b" / "m.json"
    assert json.loads(path.read_text()) == metrics
    assert path.read_text().startswith('{\n  "lad"')  # indented, for a reader and for diffs


# ---- plots/gradient_weights.py: the per-sample weight of LAD and GRPO against the ratio ----


@pytest.mark.parametrize("advantage", [0.5, -0.5])
@pytest.mark.parametrize("name", sorted(gradient_weights.DIVERGENCES))
def test_lad_weight_from_autograd_is_minus_f_prime_of_ratio_over_its_target(name, advantage):
    """The lesson's claim, read off the real loss: a sign error, a missing division by the ratio, or
    a weight computed against exp(-A/eta) instead of exp(A/eta) would each break it."""
    ratios = torch.tensor([0.05, 0.5, 1.0, 3.0, 40.0], dtype=torch.float64)
    weight = gradient_weights.gradient_weight(ratios, advantage, name, eta=0.25)
    x = ratios / math.exp(advantage / 0.25)
    assert torch.allclose(weight, -gradient_weights.DIVERGENCES[name].f_prime(x), rtol=1e-10,
                          atol=1e-12)


def test_grpo_weight_is_a_inside_the_trust_region_and_zero_past_the_clip():
    ratios = torch.tensor([0.5, 0.9, 1.1, 1.3, 3.0], dtype=torch.float64)
    up = gradient_weights.gradient_weight(ratios, 0.5, "grpo", clip_eps=0.2)
    assert up.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.0, 0.0])  # A > 0: stops above 1.2
    down = gradient_weights.gradient_weight(ratios, -0.5, "grpo", clip_eps=0.2)
    assert down.tolist() == pytest.approx([0.0, -0.5, -0.5, -0.5, -0.5])  # A < 0: stops below 0.8


@pytest.mark.parametrize("advantage", [0.5, -0.5])
def test_js_weight_changes_sign_where_the_ratio_reaches_exp_a_over_eta(advantage):
    target = math.exp(advantage / 0.25)
    below, above = gradient_weights.gradient_weight(
        torch.tensor([0.99 * target, 1.01 * target], dtype=torch.float64), advantage, "js",
        eta=0.25)
    assert below > 0 > above


@pytest.mark.parametrize("level", ["sequence", "token"])
def test_at_ratio_one_each_loss_is_a_policy_gradient_with_a_shaped_advantage(level):
    """The figure's note, on the real losses: where the gradient is taken at ratio 1 (one update per
    batch), lad_loss's gradient is that of -(w * logp) with w = -f'(exp(-A/eta)) (for JS
    1/2 (softplus(A/eta) - log 2)), and grpo_loss's that of -(A * logp): the clip never acts."""
    gen = torch.Generator().manual_seed(8)
    shape = (6,) if level == "sequence" else (3, 4)
    logp = (-torch.rand(shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    advantages = torch.randn(shape[0], generator=gen, dtype=torch.float64)
    mask = None if level == "sequence" else torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]],
                                                         dtype=torch.bool)
    a = advantages if level == "sequence" else advantages[:, None].expand(shape)
    eta = 0.25

    def gradient(loss):
        return torch.autograd.grad(loss, logp)[0]

    for name, d in DIVERGENCES.items():
        w = -d.f_prime(torch.exp(-a / eta))
        expected = gradient(reduce_loss(-(w * logp), mask, "mean"))
        assert torch.allclose(gradient(lad_loss(logp, logp.detach(), advantages, eta=eta,
                                                divergence=name, mask=mask)),
                              expected, rtol=1e-10, atol=1e-12), name
        if name == "js":
            assert torch.allclose(w, 0.5 * (torch.nn.functional.softplus(a / eta) - math.log(2)))
    expected = gradient(reduce_loss(-(a * logp), mask, "mean"))
    assert torch.allclose(gradient(grpo_loss(logp, logp.detach(), advantages, clip_eps=0.2,
                                             mask=mask)), expected)


def test_the_figure_is_written_and_a_bad_path_is_refused_before_drawing(tmp_path, capsys):
    figure = tmp_path / "w.png"
    gradient_weights.main(["--figure", str(figure)])
    assert figure.stat().st_size > 10_000
    with pytest.raises(SystemExit) as info:
        gradient_weights.main(["--figure", str(figure / "under_a_file.png")])
    assert info.value.code == 2 and "--figure" in capsys.readouterr().err


def _long_study(advantages, seeds, methods=("grpo-kl", "lad-kl")):
    """A metrics dict shaped like train_reasoning.py's, with two evaluations per run."""
    settings = {"advantage_source": advantages, "divergence": "js", "lad_ratio": "sequence",
                "kl_estimator": "k2", "lr": 2e-4,
                "group_size": 8, "prompts_per_iteration": 32, "minibatches": 1}
    run = lambda tv: {"evals": [{"iteration": 0, "tv_to_target": 0.7, "tv_shape": 0.0,
                                 "exact_accuracy": 0.3},
                                {"iteration": 50, "tv_to_target": tv, "tv_shape": tv / 2,
                                 "exact_accuracy": 0.6}]}
    return {"settings": settings, "curves": [{v: run(0.2 + 0.1 * s + 0.01 * i) for i,
                                              v in enumerate(methods)}
                                             for s in range(seeds)]}


def test_long_runs_colour_the_method_style_the_file_and_label_what_differs(tmp_path, monkeypatch):
    """A line per (file, method), mean over its seeds, named by the setting that tells the files
    apart: a label without it, or a style per method instead of per file, makes two studies
    unreadable."""
    figures = []
    monkeypatch.setattr(plots.reasoning, "save_figure", lambda fig, path,
                        rect=None: figures.append(fig))
    plots.reasoning.draw_long_runs([_long_study("sft", 1), _long_study("group", 3)], "unused.png")
    lines = {line.get_label(): line for line in figures[0].axes[0].get_lines()
             if not line.get_label().startswith("_")}
    assert set(lines) == {"grpo-kl, A sft", "lad-kl, A sft", "grpo-kl, A group", "lad-kl, A group"}
    assert (lines["lad-kl, A sft"].get_color() == lines["lad-kl, A group"].get_color()
            == METHOD_COLORS["lad-kl"])
    assert lines["lad-kl, A sft"].get_linestyle() == lines["grpo-kl, A sft"].get_linestyle()
    assert lines["lad-kl, A sft"].get_linestyle() != lines["lad-kl, A group"].get_linestyle()
    # 0.2, 0.3, 0.4 over three seeds
    assert np.allclose(lines["grpo-kl, A group"].get_ydata(), [0.7, 0.3])
    plt.close(figures[0])


def test_the_long_run_command_writes_its_figure_and_refuses_a_missing_file(tmp_path, capsys):
    study = tmp_path / "long.json"
    study.write_text(json.dumps(_long_study("sft", 2)))
    plots.reasoning.main([str(study), "--figure", str(tmp_path / "long.png")])
    assert (tmp_path / "long.png").stat().st_size > 10_000
    with pytest.raises(SystemExit) as info:
        plots.reasoning.main([str(tmp_path / "missing.json"), "--figure", str(tmp_path / "x.png")])
    assert info.value.code == 2 and "missing.json" in capsys.readouterr().err


def test_long_runs_that_differ_only_in_an_unnamed_setting_are_both_drawn(monkeypatch):
    """Two files whose labels would be the same (here: identical settings) once drew one line, the
    second file overwriting the first."""
    figures = []
    monkeypatch.setattr(plots.reasoning, "save_figure", lambda fig, path,
                        rect=None: figures.append(fig))
    plots.reasoning.draw_long_runs([_long_study("sft", 1, ("lad-kl",)), _long_study("sft", 2,
                                                                                    ("lad-kl",))],
                                                                                    "x.png")
    labels = [line.get_label() for line in figures[0].axes[0].get_lines()
              if not line.get_label().startswith("_")]
    assert labels == ["lad-kl", "lad-kl (file 2)"]
    plt.close(figures[0])


def test_the_committed_long_run_figure_is_drawn_from_the_committed_files(monkeypatch):
    """The files behind plots/reasoning_long_runs.png, as the figure's command names them, are read
    by the code that draws it: a settings key renamed in the committed files but not in
    STUDY_SETTINGS (or the reverse) raises here, where the synthetic studies above would not see it.
    The labels name what differs between the files: the source of A and dpg's own run."""
    figures = []
    monkeypatch.setattr(plots.reasoning, "save_figure",
                        lambda fig, path, rect=None: figures.append(fig))
    names = ["reasoning_long_sft.json", "reasoning_long_sft-normalised.json",
             "reasoning_long_rkl_sft.json", "reasoning_dpg_lr2e-4.json",
             "reasoning_sample_free.json"]
    studies = [json.loads((REPOSITORY / "plots" / name).read_text()) for name in names]
    plots.reasoning.draw_long_runs(studies, "unused.png")
    labels = {line.get_label() for line in figures[0].axes[0].get_lines()
              if not line.get_label().startswith("_")}
    assert {"grpo-kl, A sft, f = js, lr 0.0002, 32 prompts",
            "dpg, A group, lr 0.0002, 32 prompts", "distil, lr 0.001"} <= labels, labels
    plt.close(figures[0])


def test_the_long_run_figure_draws_the_distillation_floor_at_its_mean_end(monkeypatch):
    """The floor drawn is the distillation yardstick's last held-out TV (and shape TV), mean
    over its seeds, in the panels of those two metrics only. A floor taken from the first
    evaluation, from one seed or from another method would sit elsewhere."""
    figures = []
    monkeypatch.setattr(plots.reasoning, "save_figure",
                        lambda fig, path, rect=None: figures.append(fig))
    references = _long_study("sft", 3, ("distil", "exact"))
    plots.reasoning.draw_long_runs([_long_study("sft", 1), references], "x.png")
    dashed = [[line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"
               and line.get_color() == METHOD_COLORS["target"]] for ax in figures[0].axes[:3]]
    assert dashed[0] == [pytest.approx(0.3)]  # distil's end: 0.2, 0.3, 0.4 over three seeds
    assert dashed[1] == [pytest.approx(0.15)]
    assert dashed[2] == []
    plt.close(figures[0])

"""The bandit chapter's figures (bandit.py), drawn from runs it has already trained:

    figure_title(runs, ablation)                     what the figure shows: the lesson (the main
                                                     figure) and the settings every run shares
    draw_runs(runs, metrics, ablation, title, path)  one panel per run, its policy against pi*, then
                                                     panels of curves over training
    run_styles(runs, ablation)                       each run's colour and line style, the same in
                                                     its bars and in its curves

A run here is anything with .method, .pi, .target and the histories .iterations, .tv, .entropy (and,
for FlowRL, .log_z and .true_log_z): bandit.Run. This file needs neither torch nor the bandit.
"""
import math
from pathlib import Path

import matplotlib.pyplot as plt

from plots import (DIVERGENCE_COLORS, METHOD_COLORS, plot_curves, plot_distribution, save_figure,
                   shades)

# How a method is written in a legend or a title.
LABELS = {"lad-fixed": "LAD, pi_old = pi_0 (lad-fixed)", "lad": "LAD, pi_old refreshed (lad)",
          "grpo": "GRPO", "flowrl": "FlowRL", "entadv": "EntAdv", "clip-cov": "Clip-Cov",
          "kl-cov": "KL-Cov"}
LAD_METHODS = ("lad-fixed", "lad")
# The curves each figure shows under its distributions, and whether TV is drawn on a log scale
# (where the floors it reaches differ by more than ten times).
CURVES = {None: ("tv",), "divergences": ("tv",), "baselines": ("tv", "log_z")}
LOG_TV = {"divergences", "baselines"}
# The main figure's first line: what it shows, and what it leaves to --ablation pi-old.
LESSON = ("lad-fixed keeps pi_old = pi_0: its target pi* is fixed, and it converges there; GRPO "
          "collapses onto one arm. With pi_old refreshed every iteration (lad), LAD collapses too "
          "(--ablation pi-old).")


def figure_title(runs: list[tuple], ablation: str | None = None) -> str:
    """The figure's heading, from the experiment's (key, method, bandit.Settings) triples: the
    lesson (the main figure, when it holds lad-fixed), then the settings every run shares. A setting
    that an ablation varies is left out: the panels' titles name it."""
    lad = [a for _, method, a in runs if method in LAD_METHODS]
    others = [a for _, method, a in runs if method not in LAD_METHODS]

    def shared(group, name):  # the value every run in the group has, or None if they differ
        values = {getattr(a, name) for a in group}
        return values.pop() if len(values) == 1 else None

    first = runs[0][2]
    parts = [f"{first.iterations} iterations",
             "exact expectation" if first.exact else f"{first.group_size} samples/iteration"]
    if shared(lad + others, "eta") is not None:
        parts.append(f"1/eta = {1 / first.eta:g}")
    if shared(lad + others, "centre_advantages"):
        parts.append("centred A")
    if lad and shared(lad, "divergence"):
        parts.append(f"LAD divergence {lad[0].divergence}")
    if others and shared(others, "grpo_pi_old"):
        methods = {method for _, method, _ in runs}
        name = "GRPO" if methods <= {"lad-fixed", "lad", "grpo"} else "GRPO and the baselines"
        parts.append(f"{name} pi_old {others[0].grpo_pi_old}")
    if others and shared(others, "entropy_coef"):  # None when varied, 0.0 (left out) when off
        parts.append(f"GRPO entropy bonus {others[0].entropy_coef:g}")
    quick = "quick run (its numbers mean little): " if first.quick else ""
    settings = quick + "50-arm bandit, " + ", ".join(parts)
    if ablation is not None:
        return f"ablation '{ablation}': " + settings
    has_lesson = any(method == "lad-fixed" for _, method, _ in runs)
    return LESSON + "\n" + settings if has_lesson else settings


def run_styles(runs: dict, ablation: str | None) -> tuple[dict, dict]:
    """(colours, line styles), each a dict run key -> style. A method's only run has the method's
    colour; the divergences have one colour each and a dashed line with centred advantages; the runs
    of any other sweep are shades of their method's colour, light to dark in the sweep's order."""
    colors, linestyles = {}, {}
    by_method = {}
    for key, run in runs.items():
        by_method.setdefault(run.method, []).append(key)
    for method, keys in by_method.items():
        palette = [METHOD_COLORS[method]] if len(keys) == 1 else shades(method, len(keys))
        colors.update(zip(keys, palette))
    if ablation == "baselines":  # KL-Cov's curves lie on GRPO's, Clip-Cov's almost: GRPO's show
        linestyles.update({"clip-cov": "--", "kl-cov": ":"})
    if ablation == "divergences":  # keys "kl", ..., "kl, centred A", ...
        for key in runs:
            colors[key] = DIVERGENCE_COLORS[key.split(",")[0]]
            linestyles[key] = "--" if "centred" in key else "-"
    return colors, linestyles


def display_name(key: str, method: str) -> str:
    """A run's name in legends and titles: "flowrl, raw A" -> "FlowRL, raw A"; a sweep's keys as
    they are."""
    return LABELS[method] + key[len(method):] if key.startswith(method) else key


def _log_z_panel(ax, runs: dict, metrics: dict, colors: dict) -> None:
    """Each FlowRL run's learned log Z (solid) against the log Z that zeroes its residual for groups
    of its current policy (dotted), and the value that one takes at pi* (a grey line per run)."""
    for key, run in runs.items():
        if run.method != "flowrl":
            continue
        name, m = display_name(key, run.method), metrics[key]
        ax.plot(run.iterations, run.log_z, color=colors[key],
                label=f"{name} (reward scale {m['flowrl_reward_scale']:.2f}): learned")
        ax.plot(run.iterations, run.true_log_z, color=colors[key], linestyle=":",
                label=f"{name}: true, current policy")
        ax.axhline(m["log_z_at_target"], color=METHOD_COLORS["target"], linestyle="--", linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("log Z (grey: the true log Z at pi*)")
    ax.set_title("FlowRL's learned log Z against the true one", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="center right")


def draw_runs(runs: dict, metrics: dict, ablation: str | None, title: str, path) -> Path:
    """One panel per run (its policy against its target, TV, max arm and modes in the title), then
    one panel per curve over training. metrics: run key -> summary (summarise_policy, and FlowRL's
    reward scale and log Z). The divergences' twelve thumbnails get their TV curves in one row as
    wide as the figure."""
    curves = CURVES.get(ablation, ("tv", "entropy"))
    n_runs = len(runs)
    cols = 6 if ablation == "divergences" else 3 if n_runs + len(curves) in (3, 6, 9) else 4
    wide = ablation == "divergences"
    if wide:  # the thumbnails' rows, then one full-width row per curve
        rows = math.ceil(n_runs / cols) + len(curves)
    else:
        rows = math.ceil((n_runs + len(curves)) / cols)
    fig = plt.figure(figsize=((5 if cols <= 4 else 3.8) * cols, 3.9 * rows))
    grid = fig.add_gridspec(rows, cols)
    colors, linestyles = run_styles(runs, ablation)
    name = {key: display_name(key, run.method) for key, run in runs.items()}

    for i, (key, run) in enumerate(runs.items()):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        m = metrics[key]
        label = LABELS[run.method]
        # Two lines: in the six-column divergence figure one line would run into the next panel's.
        panel = (f"{name[key]}\nTV {m['tv']:.3f}, max arm {m['max_prob']:.2f}, "
                 f"{m['modes_recovered']}/3 modes")
        plot_distribution(ax, run.target, {label: run.pi}, colors={label: colors[key]}, title=panel)
        ax.title.set_fontsize(10)
        ax.set_xlabel("arm")
    labels = {"tv": "TV(policy, target)", "entropy": "entropy (nats)"}
    for j, curve in enumerate(curves):
        row, col = divmod(n_runs + j, cols)
        cell = grid[math.ceil(n_runs / cols) + j, :] if wide else grid[row, col]
        ax = fig.add_subplot(cell)
        if curve == "log_z":
            _log_z_panel(ax, runs, metrics, colors)
            continue
        histories = {name[key]: (run.iterations, getattr(run, curve)) for key, run in runs.items()}
        plot_curves(ax, histories, xlabel="iteration", ylabel=labels[curve],
                    title=f"{labels[curve]} over training",
                    logy=curve == "tv" and ablation in LOG_TV,
                    colors={name[k]: c for k, c in colors.items()},
                    linestyles={name[k]: s for k, s in linestyles.items()})
        ax.title.set_fontsize(10)
        if wide:  # twelve curves: the legend beside the panel, in two columns
            ax.legend(fontsize=8, frameon=False, ncol=2, loc="upper left",
                      bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)

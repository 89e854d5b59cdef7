"""The GPT chapter's figures (train_reasoning.py): the answers against pi*, the training curves,
and the long runs.

Each takes numbers the script has already computed (probabilities, evaluation histories), so this
file needs no model:

    draw_answers(probs, targets, tvs, ns, task, seed, path)  one panel per (method, prompt): the
                                                exact probability of each correct answer against pi*
    draw_training(histories, levels, frontiers, path)        held-out metrics over training,
                                                mean +- std over seeds (population std, ddof = 0),
                                                and the accuracy-diversity frontier
    draw_long_runs(studies, path)               TV to pi* over training for several runs' metrics
                                                files: `python -m plots.reasoning FILE.json ...`
"""
import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from cli.outputs import output_path_problem

from plots import METHOD_COLORS, color_for, plot_curves, plot_distribution, save_figure


def draw_answers(probs: dict, targets: list, tvs: dict, ns: list, task, seed: int, path) -> Path:
    """probs: method -> [pi(y|n) of every correct answer of n, for n in ns];
    targets: [pi* of n over its correct answers and, last, "anything else", for n in ns];
    tvs: method -> [its TV distance to pi* on n, for n in ns]; seed: the run drawn.

    Each panel normalises over the correct answers, p(y | correct). Restricted to the correct
    answers pi* is the SFT policy's own shape (the factor exp(A+/eta) is common to all of them), so
    the grey bars are also the SFT start. Bars that leave the grey shape are the collapse onto a
    few answers.
    """
    methods = list(probs)
    # Each panel has its own y scale: the anchored methods' bars stay low, and a shared scale would
    # flatten exactly the panels worth comparing with the grey shape.
    fig, axes = plt.subplots(len(methods), len(ns), figsize=(5.2 * len(ns), 2.5 * len(methods)),
                             squeeze=False)
    for j, n in enumerate(ns):
        pi_star = np.asarray(targets[j])
        target = pi_star[:-1] / pi_star[:-1].sum()
        for i, name in enumerate(methods):
            p = np.asarray(probs[name][j])
            plot_distribution(
                axes[i, j], target, {name: p / p.sum()},
                outcome_labels=[y[:-1] for y in task.valid_answers(n)],
                title=f"'{n}=' {name}: P(correct) {float(p.sum()):.2f}, "
                      f"TV to pi* {tvs[name][j]:.2f}",
                ylabel="p(answer | correct)" if j == 0 else "",
            )
            axes[i, j].title.set_fontsize(9)
            axes[i, j].tick_params(axis="x", labelsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    accuracy = ", ".join(f"'{n}=' {float(t[:-1].sum()):.3f}" for n, t in zip(ns, targets))
    fig.suptitle("Each correct answer's probability, normalised over the correct answers "
                 f"(seed {seed}). Grey: pi* = pi_sft exp(A/eta) / Z, the SFT shape; "
                 f"pi*(correct): {accuracy}", fontsize=10)
    return save_figure(fig, path)


def readable_log_ticks(ax) -> None:
    """Ticks at 1, 2, 5, 10, 20, 50, ... written as plain numbers, no minor ticks: a log axis whose
    labels can be read at a glance."""
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def draw_training(histories: list, levels, frontiers: dict, path) -> Path:
    """histories: one dict per seed, method -> {"iteration", "reward", "evals": [metrics, ...]};
    frontiers: method -> one frontier per seed over `levels` (NaN where that seed never got there).
    Every panel shows mean +- std over seeds; the frontier, over the seeds that reached each level,
    drawn where at least half of them did."""
    methods = list(histories[0])
    first = histories[0][methods[0]]
    iterations, eval_iterations = first["iteration"], [e["iteration"] for e in first["evals"]]

    def over_seeds(values):  # [seeds, points] -> (mean, std)
        values = np.array(values, dtype=float)
        return values.mean(0), values.std(0)

    def eval_curves(key):
        return {m: (eval_iterations,
                    *over_seeds([[e[key] for e in h[m]["evals"]] for h in histories]))
                for m in methods}

    def frontier(per_seed):  # [seeds, levels], NaN -> mean, std where >= half the seeds got there
        values = np.array(per_seed, dtype=float)
        reached = np.isfinite(values)
        count = np.maximum(reached.sum(0), 1)
        mean = np.where(reached, values, 0).sum(0) / count
        std = np.sqrt(np.where(reached, (values - mean) ** 2, 0).sum(0) / count)
        keep = reached.sum(0) >= max(1, (len(values) + 1) // 2)
        return np.where(keep, mean, np.nan), np.where(keep, std, np.nan)

    fig, axes = plt.subplots(2, 3, figsize=(17, 8.5))
    rewards = {m: (iterations, *over_seeds([h[m]["reward"] for h in histories])) for m in methods}
    plot_curves(axes[0, 0], rewards,
                xlabel="RL iteration", ylabel="mean reward of the sampled batch",
                title="training reward (lad-fixed: of the SFT sampler)")
    plot_curves(axes[0, 1], eval_curves("exact_accuracy"), xlabel="RL iteration",
                ylabel="P(correct), exact", title="held-out accuracy")
    plot_curves(axes[0, 2], eval_curves("effective_correct"), logy=True, xlabel="RL iteration",
                ylabel="exp(entropy over correct answers)",
                title="held-out effective correct answers")
    plot_curves(axes[1, 0], eval_curves("tv_to_target"), xlabel="RL iteration",
                ylabel="TV(pi, pi*), exact", title="held-out distance to the target pi*")
    plot_curves(axes[1, 1], eval_curves("tv_shape"), xlabel="RL iteration",
                ylabel="TV(pi(. | correct), pi*(. | correct))",
                title="held-out distance to pi*, shape part only")
    plot_curves(axes[1, 2], {m: (levels, *frontier(f)) for m, f in frontiers.items()}, logy=True,
                xlabel="held-out accuracy at least (exact P(correct))",
                ylabel="effective correct answers",
                title="accuracy-diversity frontier (seeds that got there)")
    for ax in (axes[0, 2], axes[1, 2]):
        if ax.get_yscale() == "log":
            readable_log_ticks(ax)
    fig.suptitle(f"Held-out prompts, mean ± std over {len(histories)} seed(s)", fontsize=10)
    return save_figure(fig, path)


# The settings that can tell one long run from another, in the order a label names them.
STUDY_SETTINGS = {"advantage_source": "A {}", "divergence": "f = {}", "lad_ratio": "{} ratio",
                  "kl_estimator": "{}", "lr": "lr {:g}", "group_size": "G {}",
                  "prompts_per_iteration": "{} prompts", "minibatches": "M {}"}


def draw_long_runs(studies: list, path, goal_tv: float = 0.1, goal_accuracy: float = 0.9) -> Path:
    """TV to pi*, its shape part and P(correct) over training, for several runs of
    train_reasoning.py. studies: metrics dicts as train_reasoning.py writes them (--metrics-json),
    each with "settings" and "curves" (per seed, method -> history). One curve per (file, method),
    mean +- std over its seeds, labelled by the settings that differ between the files. The goal is
    drawn dotted; where a file holds the distillation yardstick (reasoning/sample_free.py), its last
    held-out TV and shape TV, mean over seeds, are drawn dashed in grey (where one distillation
    ended, not a bound)."""
    varied = [k for k in STUDY_SETTINGS
              if len({json.dumps(s["settings"][k]) for s in studies}) > 1]
    # The colour says the method (as in every figure), the line style says the file: the settings it
    # changes, so that a run of one method under several settings reads as one family of lines.
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    keys = ["tv_to_target", "tv_shape", "exact_accuracy"]
    curves, colors, linestyles = {key: {} for key in keys}, {}, {}
    for i, study in enumerate(studies):
        for method in study["curves"][0]:
            named = [k for k in varied  # a sample-free method: its lr is what tells it
                     if (method not in ("distil", "exact") or k == "lr")
                     and not (method == "dpg" and k == "divergence")]  # dpg is f = -log x only
            label = ", ".join([method] + [STUDY_SETTINGS[k].format(study["settings"][k])
                                          for k in named])
            if label in colors:  # the files differ only in settings no label names: keep both
                label += f" (file {i + 1})"
            colors[label], linestyles[label] = color_for(method), styles[i % len(styles)]
            evals = [seed[method]["evals"] for seed in study["curves"]]
            x = [e["iteration"] for e in evals[0]]
            for key in keys:
                values = np.array([[e[key] for e in run] for run in evals])
                curves[key][label] = (x, values.mean(0), values.std(0))
    distilled = [s["curves"] for s in studies if "distil" in s["curves"][0]][:1]
    floors = [np.mean([seed["distil"]["evals"][-1][key] for seed in curves])
              for curves in distilled for key in keys[:2]]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6))
    titles = [("TV(pi, pi*), exact", "held-out distance to pi*"),
              ("TV(pi(. | correct), pi*(. | correct))", "the shape part of it"),
              ("P(correct), exact", "held-out accuracy")]
    for ax, key, (ylabel, title), goal in zip(axes, keys, titles, [goal_tv, None, goal_accuracy]):
        plot_curves(ax, curves[key], colors=colors, linestyles=linestyles)
        ax.get_legend().remove()
        if goal is not None:
            ax.axhline(goal, color="black", linestyle=":", linewidth=1)
        ax.set(xlabel="iteration", ylabel=ylabel, title=title)
    for ax, floor in zip(axes, floors):  # where the distillation yardstick ended (not a bound)
        ax.axhline(floor, color=METHOD_COLORS["target"], linestyle="--", linewidth=1.2)
    axes[0].set_yscale("log")
    readable_log_ticks(axes[0])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
               frameon=False)
    seeds = sorted({len(s["curves"]) for s in studies})
    fig.suptitle(f"Long runs on held-out prompts, mean ± std over {'/'.join(map(str, seeds))} "
                 f"seed(s); dotted: the goal, TV <= {goal_tv:g} with P(correct) >= "
                 f"{goal_accuracy:g}" + ("; dashed grey: the distillation yardstick, pi* "
                                         "distilled into the same GPT" if floors else ""),
                 fontsize=10)
    return save_figure(fig, path, rect=(0, 0.04 * ((len(labels) + 3) // 4), 1, 0.97))


def main(argv=None) -> None:
    """python -m plots.reasoning FILE.json [FILE.json ...] --figure PATH: draw_long_runs of those
    files."""
    parser = argparse.ArgumentParser(
        description="Draw long train_reasoning.py runs from their metrics files.")
    parser.add_argument("metrics", nargs="+",
                        help="metrics JSON files written by train_reasoning.py --metrics-json")
    parser.add_argument("--figure", default="plots/reasoning_long_runs.png",
                        help="where to write the figure")
    args = parser.parse_args(argv)
    problem = output_path_problem(args.figure, "figure")
    if problem:
        parser.error(f"--figure {args.figure}: {problem}")
    studies = []
    for name in args.metrics:
        try:
            studies.append(json.loads(Path(name).read_text()))
        except (OSError, ValueError) as error:
            parser.error(f"{name}: {error}")
    print(f"figure written to {draw_long_runs(studies, args.figure)}")


if __name__ == "__main__":
    main()

"""The GPT chapter's two figures (train_reasoning.py): the answers against pi*, and the training curves.

Both take numbers the script has already computed (probabilities, evaluation histories), so this
file needs no model:

    draw_answers(probs, targets, tvs, ns, task, seed, path)   one panel per (variant, prompt): the exact
                                                     probability of every correct answer against pi*
    draw_training(histories, levels, frontiers, path)   held-out metrics over training, mean +- std
                                                     over seeds, and the accuracy-diversity frontier
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from plots import plot_curves, plot_distribution, save_figure


def draw_answers(probs: dict, targets: list, tvs: dict, ns: list, task, seed: int, path) -> Path:
    """probs: variant name -> [pi(y|n) of every correct answer of n, for n in ns];
    targets: [pi* of n over its correct answers and, last, "anything else", for n in ns];
    tvs: variant name -> [its TV distance to pi* on n, for n in ns]; seed: the run drawn.

    Each panel normalises over the correct answers, p(y | correct). Restricted to the correct answers
    pi* is the SFT policy's own shape (the factor exp(A+/eta) is common to all of them), so the grey
    bars are also the SFT start. Bars that leave the grey shape are the collapse onto a few answers.
    """
    variants = list(probs)
    # Each panel has its own y scale: the anchored variants' bars stay low, and a shared scale would
    # flatten exactly the panels worth comparing with the grey shape.
    fig, axes = plt.subplots(len(variants), len(ns), figsize=(5.2 * len(ns), 2.5 * len(variants)), squeeze=False)
    for j, n in enumerate(ns):
        pi_star = np.asarray(targets[j])
        target = pi_star[:-1] / pi_star[:-1].sum()
        for i, name in enumerate(variants):
            p = np.asarray(probs[name][j])
            plot_distribution(
                axes[i, j], target, {name: p / p.sum()},
                outcome_labels=[y[:-1] for y in task.valid_answers(n)],
                title=f"'{n}=' {name}: P(correct) {float(p.sum()):.2f}, TV to pi* {tvs[name][j]:.2f}",
                ylabel="p(answer | correct)" if j == 0 else "",
            )
            axes[i, j].title.set_fontsize(9)
            axes[i, j].tick_params(axis="x", labelsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    accuracy = ", ".join(f"'{n}=' {float(t[:-1].sum()):.3f}" for n, t in zip(ns, targets))
    fig.suptitle(f"Each correct answer's probability, normalised over the correct answers (seed {seed}). "
                 f"Grey: pi* = pi_sft exp(A/eta) / Z, the SFT shape; pi*(correct): {accuracy}", fontsize=10)
    return save_figure(fig, path)


def readable_log_ticks(ax) -> None:
    """Ticks at 1, 2, 5, 10, 20, 50, ... written as plain numbers, no minor ticks: a log axis whose
    labels can be read at a glance."""
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def draw_training(histories: list, levels, frontiers: dict, path) -> Path:
    """histories: one dict per seed, variant -> {"iteration", "reward", "evals": [metrics, ...]};
    frontiers: variant -> one frontier per seed over `levels` (NaN where that seed never got there).
    Every panel shows mean +- std over seeds; the frontier, over the seeds that reached each level,
    drawn where at least half of them did."""
    variants = list(histories[0])
    first = histories[0][variants[0]]
    iterations, eval_iterations = first["iteration"], [e["iteration"] for e in first["evals"]]

    def over_seeds(values):  # [seeds, points] -> (mean, std)
        values = np.array(values, dtype=float)
        return values.mean(0), values.std(0)

    def eval_curves(key):
        return {m: (eval_iterations, *over_seeds([[e[key] for e in h[m]["evals"]] for h in histories]))
                for m in variants}

    def frontier(per_seed):  # [seeds, levels] with NaN -> mean and std where >= half the seeds got there
        values = np.array(per_seed, dtype=float)
        reached = np.isfinite(values).sum(0)
        keep = reached >= max(1, (len(values) + 1) // 2)
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
            quiet.filter(RuntimeWarning)
            mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
        return np.where(keep, mean, np.nan), np.where(keep, std, np.nan)

    fig, axes = plt.subplots(2, 3, figsize=(17, 8.5))
    plot_curves(axes[0, 0], {m: (iterations, *over_seeds([h[m]["reward"] for h in histories])) for m in variants},
                xlabel="RL iteration", ylabel="mean reward of the sampled batch",
                title="training reward (lad-fixed: of the SFT sampler)")
    plot_curves(axes[0, 1], eval_curves("exact_accuracy"), xlabel="RL iteration",
                ylabel="P(correct), exact", title="held-out accuracy")
    plot_curves(axes[0, 2], eval_curves("effective_correct"), logy=True, xlabel="RL iteration",
                ylabel="exp(entropy over correct answers)", title="held-out effective correct answers")
    plot_curves(axes[1, 0], eval_curves("tv_to_target"), xlabel="RL iteration",
                ylabel="TV(pi, pi*), exact", title="held-out distance to the target pi*")
    plot_curves(axes[1, 1], eval_curves("tv_shape"), xlabel="RL iteration",
                ylabel="TV(pi(. | correct), pi*(. | correct))", title="held-out distance to pi*, shape part only")
    plot_curves(axes[1, 2], {m: (levels, *frontier(f)) for m, f in frontiers.items()}, logy=True,
                xlabel="held-out accuracy at least (exact P(correct))", ylabel="effective correct answers",
                title="accuracy-diversity frontier (seeds that got there)")
    for ax in (axes[0, 2], axes[1, 2]):
        if ax.get_yscale() == "log":
            readable_log_ticks(ax)
    fig.suptitle(f"Held-out prompts, mean ± std over {len(histories)} seed(s)", fontsize=10)
    return save_figure(fig, path)

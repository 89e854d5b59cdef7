"""Plotting helpers shared by the experiments: a learned distribution against its target, and
curves.

The whole tutorial draws two kinds of pictures:
  * bars over outcomes (the bandit's 50 arms, or the correct answers of an arithmetic prompt): the
    target policy pi* = pi_old * exp(A/eta) / Z of Lemma 3.1 in grey, each method's learned
    distribution beside it;
  * curves over training (distance to the target, reward, entropy, ...), or one metric against
    another (diversity against accuracy).

Figures are written without a screen (matplotlib's Agg backend), so the scripts run on servers and
in CI. Usage:

    import matplotlib.pyplot as plt
    from plots import plot_distribution, plot_curves, save_figure

    fig, ax = plt.subplots()
    plot_distribution(ax, target, {"lad": pi_lad, "grpo": pi_grpo})
    save_figure(fig, "plots/example.png")

The command-line settings and the output files' checks live in cli/ (cli/settings.py,
cli/outputs.py).
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display needed, and the same pixels everywhere
import matplotlib.colors  # noqa: E402  (must come after the backend is chosen)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# One colour per method, the same in every figure of the tutorial (the names are the methods' names
# in bandit.py and train_reasoning.py). The rule: the hue says the loss, the shade and the line say
# the anchor.
#   hue    red: GRPO; blue: LAD; green: FlowRL; purple, brown, pink: GRPO with one of the paper's
#          entropy regularisers (EntAdv, Clip-Cov, KL-Cov)
#   shade  the loss alone: its full colour and a solid line; with a KL penalty to pi_sft: a dark
#          shade and a dashed line; with pi_old frozen at pi_sft: a light shade and a dash-dot line
METHOD_COLORS = {
    "target": "#9e9e9e",
    "grpo": "#d62728",
    "grpo-kl": "#67000d",
    "lad": "#1f77b4",
    "lad-kl": "#08306b",
    "lad-fixed": "#6baed6",
    "flowrl": "#2ca02c",
    "entadv": "#9467bd",
    "clip-cov": "#8c564b",
    "kl-cov": "#e377c2",
    # LAD's frozen objective from the policy's samples (dpg): orange, the distribution matchers'
    "dpg": "#e6550d",
    # the sample-free methods (reasoning/sample_free.py): black and grey, no hue
    "distil": "#000000",
    "exact": "#636363",
}
# The anchor's line style, so that the curves stay apart in grey scale and for colour-blind readers.
METHOD_LINESTYLES = {"grpo-kl": "--", "lad-kl": "--", "lad-fixed": "-."}
# For sweeps that are not methods, in a fixed order.
EXTRA_COLORS = ["#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
# LAD's six divergences, in every figure that compares them: JS, the paper's choice, in LAD's
# colour.
DIVERGENCE_COLORS = dict(
    zip(["js", "kl", "rkl", "jf", "tv", "hd"], [METHOD_COLORS["lad"]] + EXTRA_COLORS[:5])
)
DPI = 120


def color_for(name: str, index: int = 0) -> str:
    """The colour of a method by name, or the index-th sweep colour for anything else."""
    return METHOD_COLORS.get(name.lower(), EXTRA_COLORS[index % len(EXTRA_COLORS)])


def shades(name: str, n: int) -> list:
    """n shades of a method's colour, from light to dark: one per run of a sweep over one method's
    setting (an eta, a pi_old, an entropy bonus), in the sweep's order. Two runs: the colour itself,
    then a dark shade."""
    rgb = np.array(matplotlib.colors.to_rgb(METHOD_COLORS[name]))
    # < 0: towards white, > 0: towards black
    mix = np.linspace(-0.75 if n > 2 else 0.0, 0.65 if n > 2 else 0.5, n)
    return [tuple(rgb + (1 - rgb) * -m) if m < 0 else tuple(rgb * (1 - m)) for m in mix]


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def _outline(ax, target: np.ndarray, **kwargs):
    """The target's outline: a step line over the full width of every bar, from -0.5 to n - 0.5 (a
    line through the bar centres would leave out half of the first and of the last bar)."""
    edges = np.arange(len(target) + 1) - 0.5
    return ax.step(
        edges, np.append(target, target[-1]), where="post", color="black", linewidth=0.8, **kwargs
    )


def plot_distribution(
    ax, target, learned: dict, outcome_labels=None, title=None, ylabel="probability", colors=None
):
    """Bars over outcomes: the target pi* in grey bars with a black outline drawn on top, each
    learned distribution in narrower coloured bars side by side inside it (a perfect match fills the
    outline exactly).

    Args:
        ax: a matplotlib Axes.
        target: 1-D probabilities over outcomes (numpy, list or torch), or None to draw no target.
        learned: dict name -> 1-D probabilities with the same length as target.
        outcome_labels: optional tick labels, one per outcome (few outcomes: words; many: omit).
        title, ylabel: strings.
        colors: optional dict name -> colour, for names that are not methods (default: color_for).
    """
    series = {name: _as_numpy(p) for name, p in learned.items()}
    n = len(next(iter(series.values()))) if series else len(_as_numpy(target))
    positions = np.arange(n)
    if target is not None:
        target = _as_numpy(target)
        if len(target) != n:
            raise ValueError(f"target has {len(target)} outcomes but learned has {n}")
        ax.bar(
            positions,
            target,
            width=1.0,
            color=METHOD_COLORS["target"],
            alpha=0.45,
            label=r"target $\pi^*$",
        )
    width = 0.8 / max(len(series), 1)
    for i, (name, p) in enumerate(series.items()):
        if len(p) != n:
            raise ValueError(f"{name} has {len(p)} outcomes, expected {n}")
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(
            positions + offset,
            p,
            width=width,
            color=(colors or {}).get(name) or color_for(name, i),
            label=name,
        )
    if target is not None:  # on top, so the target stays visible where a bar covers it
        _outline(ax, target, zorder=3)
    if outcome_labels is not None:
        ax.set_xticks(positions)
        ax.set_xticklabels(outcome_labels, rotation=90 if n > 12 else 0, fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return ax


def plot_curves(
    ax, curves: dict, xlabel=None, ylabel=None, title=None, logy=False, colors=None, linestyles=None
):
    """Lines, one per entry of `curves`: name -> (x, y) or (x, y_mean, y_std) (a shaded +-std band).

    Each entry has its own x, so the same helper draws metrics over training steps and one metric
    against another (e.g. diversity against accuracy, a frontier). colors and linestyles: optional
    dicts name -> style, for names that are not methods (default: color_for, METHOD_LINESTYLES).
    """
    any_positive = False
    for i, (name, values) in enumerate(curves.items()):
        if len(values) not in (2, 3):
            raise ValueError(f"curve {name!r} must be (x, y) or (x, y_mean, y_std)")
        x, y = _as_numpy(values[0]), _as_numpy(values[1])
        any_positive |= bool((np.isfinite(y) & (y > 0)).any())
        color = (colors or {}).get(name) or color_for(name, i)
        linestyle = (linestyles or {}).get(name) or METHOD_LINESTYLES.get(name, "-")
        ax.plot(x, y, color=color, label=name, linestyle=linestyle)
        if len(values) == 3:
            std = _as_numpy(values[2])
            ax.fill_between(x, y - std, y + std, color=color, alpha=0.2, linewidth=0)
    if logy and any_positive:  # a log axis needs something positive to show
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return ax


def animate_distributions(
    target,
    frames: dict,
    steps,
    path,
    fps: int = 12,
    title=None,
    xlabel="outcome",
    ylabel="probability",
) -> Path:
    """An animated GIF: one panel per method, its distribution over outcomes at each recorded step,
    the target outlined in black. `frames` maps a method name to a list of 1-D distributions, one
    per entry of `steps`. Each frame's y axis reaches just above its tallest bar (or the target's),
    so that a policy that ends on one outcome does not flatten its own early frames; the tick labels
    say the
    scale. Written with matplotlib's Pillow writer (Pillow comes with matplotlib)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    target = _as_numpy(target)
    series = {name: [_as_numpy(p) for p in ps] for name, ps in frames.items()}
    fig, axes = plt.subplots(1, len(series), figsize=(5.5 * len(series), 3.8), squeeze=False)
    positions = np.arange(len(target))
    bars = {}
    for i, (ax, (name, ps)) in enumerate(zip(axes[0], series.items())):
        bars[name] = ax.bar(positions, ps[0], width=0.8, color=color_for(name, i), label=name)
        _outline(ax, target, label=r"target $\pi^*$")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, frameon=False, loc="upper right")
    heading = fig.suptitle("")

    def update(k):
        for ax, (name, ps) in zip(axes[0], series.items()):
            for bar, height in zip(bars[name], ps[k]):
                bar.set_height(height)
            ax.set_ylim(0, 1.1 * max(target.max(), ps[k].max()))
        heading.set_text(f"{title + ', ' if title else ''}step {steps[k]}")

    fig.tight_layout(rect=(0, 0, 1, 0.92))  # leave room for the heading
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, update, frames=len(steps)).save(path, writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path


def save_figure(fig, path, rect=None) -> Path:
    """Write `fig` to `path` (parent folders created), then close it to free memory. rect: the part
    of the figure (left, bottom, right, top, in 0..1) the axes may fill, leaving room for a figure
    legend.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path

"""The bridge from PPO: LAD's per-sample gradient weight against the ratio, beside GRPO's clipped
one.

PPO and GRPO push a sampled response y along ratio * A * grad log pi, ratio = pi_theta(y)/pi_old(y),
and the clip sets the push to zero once the ratio has moved clip_eps past 1 in the direction A
points. LAD pushes along ratio * (-f'(x)) * grad log pi with x = ratio / exp(A/eta) (lad_loss.py's
lesson). So both are policy gradients; what differs is the "advantage" that multiplies
ratio * grad log pi:

    GRPO:  A inside the trust region, 0 beyond the clip          (a step function of the ratio)
    LAD:   -f'(ratio / exp(A/eta))                                (non-increasing: smooth for five
           of the
                                                                   divergences, a step for TV, whose
                                                                   f' is -1/2 below 1 and +1/2
                                                                   above)

With one optimiser step per sampled batch (the bandit, and the GPT chapter's default) the gradient
is always taken at ratio = 1, marked on the figure. There each loss is a plain policy gradient with
a shaped advantage: A for GRPO (its clip never acts), -f'(exp(-A/eta)) for LAD, for JS
1/2 (softplus(A/eta) - log 2). tests/test_plots.py checks this on lad_loss and grpo_loss themselves.

This file draws both against the ratio, for one positive and one negative advantage, for each of the
paper's six divergences. The weights are not typed in from the formulas: they are read off autograd
on the real `lad_loss` and `grpo_loss`, as -(d loss / d logp) / ratio, so the figure shows what the
code does.

Run:  python -m plots.gradient_weights            (writes plots/gradient_weights.png)
"""
import argparse

import matplotlib.pyplot as plt
import matplotlib.transforms as transforms
import numpy as np
import torch

from grpo_loss import grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from cli.outputs import output_path_problem
from plots import DIVERGENCE_COLORS, METHOD_COLORS, save_figure

# The paper's temperature, and advantages of the size group normalisation gives. With 1/eta = 4,
# A = +-0.5 puts LAD's targets at ratios e^2 = 7.4 and e^-2 = 0.14, inside the plotted range.
ETA = 0.25
ADVANTAGES = (0.5, -0.5)
CLIP_EPS = 0.2
RATIOS = torch.logspace(-2, 2, 801, dtype=torch.float64)  # pi_theta / pi_old from 0.01 to 100
# The paper's main choice first, then the others in the order of its table.
ORDER = ["js", "kl", "rkl", "jf", "tv", "hd"]


def gradient_weight(ratios: torch.Tensor, advantage: float, method: str, eta: float = ETA,
                    clip_eps: float = CLIP_EPS) -> torch.Tensor:
    """The per-sample "advantage" of a policy gradient: -(d loss / d logp) / ratio, from autograd.

    ratios: [n] values of pi_theta / pi_old, one sample each (logp_old = 0, logp = log ratio).
    method: "grpo" (the clipped surrogate) or a LAD divergence name ("js", "kl", ...).
    reduction="sum" makes each sample's gradient its own d loss_i / d logp_i.
    """
    logp = torch.log(ratios).clone().requires_grad_(True)
    logp_old = torch.zeros_like(logp)
    advantages = torch.full_like(logp, advantage)
    if method == "grpo":
        loss = grpo_loss(logp, logp_old, advantages, clip_eps=clip_eps, reduction="sum")
    else:
        loss = lad_loss(logp, logp_old, advantages, eta=eta, divergence=method, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logp)
    return -grad / ratios


def draw(path, eta: float = ETA, advantages=ADVANTAGES, clip_eps: float = CLIP_EPS):
    """One panel per advantage: the six LAD weights and GRPO's, against the ratio (log axis)."""
    fig, axes = plt.subplots(
        1, len(advantages), figsize=(6.2 * len(advantages), 4.8), squeeze=False
    )
    x = RATIOS.numpy()
    for ax, advantage in zip(axes[0], advantages):
        target = float(np.exp(advantage / eta))
        ax.axvspan(1 - clip_eps, 1 + clip_eps, color=METHOD_COLORS["grpo"], alpha=0.08, linewidth=0)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(target, color="black", linestyle=":", linewidth=1)
        ax.axvline(1, color="grey", linewidth=1)  # where one update per batch takes the gradient
        top = transforms.blended_transform_factory(
            ax.transData, ax.transAxes
        )  # x in data, y in axes
        ax.text(
            target * 1.1,
            0.97,
            f"LAD's target\nratio exp(A/eta)\n= {target:.2g}",
            transform=top,
            fontsize=8,
            va="top",
        )
        ax.text(
            1 + clip_eps,
            0.03,
            "  GRPO's clip",
            transform=top,
            fontsize=8,
            color=METHOD_COLORS["grpo"],
        )
        ax.text(0.95, 0.03, "ratio = 1  ", transform=top, fontsize=8, color="grey", ha="right")
        one = torch.ones(1, dtype=torch.float64)
        for name in ORDER:  # JS, the paper's choice, thicker
            color = DIVERGENCE_COLORS[name]
            ax.plot(x, gradient_weight(RATIOS, advantage, name, eta).numpy(), color=color,
                    linewidth=2.4 if name == "js" else 1.2, label=f"LAD, {name}")
            ax.plot(
                1, float(gradient_weight(one, advantage, name, eta)), "o", color=color, markersize=4
            )
        ax.plot(
            x,
            gradient_weight(RATIOS, advantage, "grpo", clip_eps=clip_eps).numpy(),
            color=METHOD_COLORS["grpo"],
            linewidth=2.4,
            linestyle="--",
            label=f"GRPO, clip {clip_eps:g}",
        )
        ax.plot(1, advantage, "o", color=METHOD_COLORS["grpo"], markersize=4)
        ax.set_xscale("log")
        ax.set_ylim(
            -2.5, 2.5
        )  # rKL and JF grow without bound at small ratios: they leave the frame
        ax.set_xlabel("ratio pi_theta / pi_old of the sampled response")
        ax.set_ylabel("weight on ratio * grad log pi  (GRPO: A)")
        ax.set_title(f"A = {advantage:+g}, 1/eta = {1 / eta:g}")
        ax.grid(alpha=0.3)
    # One legend, beside the panels, where it covers no curve.
    axes[0, -1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(
        "Per-sample gradient weight: LAD's -f'(ratio / exp(A/eta)) against GRPO's clipped A "
        "(autograd on lad_loss and grpo_loss)\nDots: ratio = 1, where one update per batch takes "
        "every gradient: a policy gradient with the advantage A (GRPO: the clip never acts) or "
        "-f'(exp(-A/eta)) (LAD)",
        fontsize=10,
    )
    return save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--figure", default="plots/gradient_weights.png",
                   help="where to write the figure (default: %(default)s)")
    args = p.parse_args(argv)
    problem = output_path_problem(args.figure, "figure")
    if problem:
        p.error(f"--figure {args.figure}: {problem}")
    print(f"figure written to {draw(args.figure)}")


if __name__ == "__main__":
    main()

"""The paper's controlled experiment: a 50-arm bandit whose advantage distribution has three modes.

One prompt, 50 possible answers ("arms"). The policy is a softmax over 50 learnable logits, all zero
at the start, so pi_0 is uniform. Each arm has a fixed advantage A(arm), built from a mixture of three
Gaussians over the arm index with unequal weights:

    mixture(arm) = sum_k w_k N(arm; mu_k, sigma_k),   normalised over the 50 arms
    A(arm)       = eta * log(mixture(arm) / pi_0(arm))

We chose this A so that the advantage-induced target of Lemma 3.1 is the mixture itself:
P_A = pi_0 * exp(A/eta) / Z = mixture (and Z = 1). Scaling the Gaussian bumps directly would not do:
bumps of height 0.05 divided by eta = 0.25 give exp(0.2) ~ 1.2, an almost uniform target.

Both methods then train for 4000 Adam steps (lr 5e-3) with the same seed and the same number of
samples per step. Each step samples a group of arms from the method's pi_old and applies its loss:
  * LAD:  lad_loss(logp, logp_old, A) -- match P_A (Lemma 3.2, Jensen-Shannon by default);
  * GRPO: grpo_loss(logp, logp_old, group_advantages(A)) -- maximise the expected advantage.
The expected picture: LAD recovers all three modes in their proportions, GRPO piles its mass on the
best arm.

Which pi_old? pi_old is the policy that samples the group and the anchor of the trust region.
  * GRPO, as it is used in practice, is on-policy: its pi_old is the current policy, refreshed every
    step (`--grpo-pi-old refresh`, the default). One optimiser step per batch means the ratio is exactly
    1 when the gradient is taken, so GRPO's clip never acts and we leave it off.
  * LAD's target P_A is defined relative to pi_old. The paper's figure keeps pi_old at pi_0, the
    uniform initial policy (`--pi-old fixed`, the default): the target is then one fixed, known
    distribution, and LAD converges to it.
  * `--pi-old refresh` makes LAD on-policy too. Its target then moves: step k aims at
    pi_k * exp(A/eta), so the targets compound, pi_k ~ pi_0 * exp(k A / eta), and LAD sharpens over
    time as well, only more slowly than GRPO.
  * `--grpo-pi-old fixed` samples GRPO's groups from pi_0 and weights them by pi/pi_0. Its optimum,
    a point mass on the best arm, does not depend on pi_old; the importance weights only make the
    gradient noisier, so it gets there more slowly. (With its clip on, GRPO would stop every arm for
    good at ratio 1 +- 0.2 around the frozen pi_0: a trust region that never moves.)

`--exact` replaces the sampled group by the exact expectation over all 50 arms (each arm weighted by
pi_old): no sampling noise, the same optimum.

Run:  python bandit.py                      (the figure, plots/bandit.png, in seconds)
      python bandit.py --pi-old refresh     (LAD on-policy too: its targets compound)
      python bandit.py --quick              (a few hundred steps, for tests)
"""
import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from plots import plot_curves, plot_distribution, save_figure

N_ARMS = 50
# The three modes of the advantage distribution: (centre mu, width sigma, weight w). Unequal weights,
# so "collapse onto the best arm" has a clear winner (the centre of the heaviest mode).
MODES = [(10, 2.5, 0.5), (25, 2.5, 0.3), (40, 2.5, 0.2)]
# A mode counts as recovered when the policy puts at least half of the target's mass inside the
# window mu +- 2 sigma (rounded to whole arms).
MODE_WINDOW_SIGMAS = 2.0
RECOVERED_FRACTION = 0.5


@dataclass
class Args:
    steps: int = 4000  # optimiser steps per method
    lr: float = 5e-3  # Adam learning rate
    eta: float = 0.25  # trust-region temperature; the paper's main setting is 1/eta = 4
    divergence: str = "js"  # LAD's f-divergence
    group_size: int = 64  # arms sampled per step from pi_old
    pi_old: str = "fixed"  # LAD's pi_old: "fixed" (pi_0 throughout) or "refresh" (the current policy)
    grpo_pi_old: str = "refresh"  # GRPO's pi_old: on-policy by default, as GRPO is run in practice
    exact: bool = False  # use the exact expectation over all arms instead of a sampled group
    seed: int = 0
    figure: str = "plots/bandit.png"
    metrics_json: str | None = None
    quick: bool = False  # a few hundred steps, for tests


# ---------------------------------------------------------------------------------------------
# The bandit: advantages, the target, and the numbers we report about a policy.
# ---------------------------------------------------------------------------------------------

def mixture(n_arms: int = N_ARMS, modes=MODES) -> torch.Tensor:
    """The three-Gaussian mixture over arm indices, normalised to a distribution [n_arms]."""
    arms = torch.arange(n_arms, dtype=torch.float64)
    density = sum(w * torch.exp(-0.5 * ((arms - mu) / sigma) ** 2) / sigma for mu, sigma, w in modes)
    return (density / density.sum()).float()


def bandit_advantages(eta: float, pi_0: torch.Tensor) -> torch.Tensor:
    """A(arm) = eta * log(mixture / pi_0), chosen so that P_A = pi_0 * exp(A/eta) / Z is the mixture."""
    return eta * (torch.log(mixture(len(pi_0))) - torch.log(pi_0))


def target_distribution(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """P_A = pi_old * exp(A/eta) / Z (Lemma 3.1), normalised in log space."""
    return torch.softmax(torch.log(pi_old) + advantages / eta, dim=-1)


def mode_windows(n_arms: int = N_ARMS, modes=MODES) -> list[range]:
    return [
        range(max(0, round(mu - MODE_WINDOW_SIGMAS * s)), min(n_arms, round(mu + MODE_WINDOW_SIGMAS * s) + 1))
        for mu, s, _ in modes
    ]


def summarize(pi: torch.Tensor, target: torch.Tensor) -> dict:
    """tv (to the target), max_prob, argmax, entropy (nats) and modes_recovered of a distribution."""
    windows = mode_windows(len(pi))
    recovered = sum(
        float(pi[list(w)].sum()) >= RECOVERED_FRACTION * float(target[list(w)].sum()) for w in windows
    )
    return {
        "tv": 0.5 * float((pi - target).abs().sum()),
        "max_prob": float(pi.max()),
        "argmax": int(pi.argmax()),
        "entropy": float(-(pi * torch.log(pi.clamp_min(1e-30))).sum()),
        "modes_recovered": int(recovered),
    }


# ---------------------------------------------------------------------------------------------
# Training: one function for both methods, so that they differ in the loss and nothing else.
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    method: str
    pi: torch.Tensor  # the final policy [n_arms]
    steps: list = field(default_factory=list)  # the steps at which the history was recorded
    tv: list = field(default_factory=list)  # TV to the target P_A
    entropy: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # the policy at each recorded step
    seconds: float = 0.0


def policy_loss(method, logits, pi_old, advantages, arms, args: Args):
    """The loss for one step. `arms` is the sampled group [group_size], or None for the exact
    expectation, in which case every arm enters weighted by pi_old (a sampled group weights each
    sample 1/group_size: the same estimator, without the noise)."""
    logp_all = torch.log_softmax(logits, dim=-1)
    logp_old_all = torch.log(pi_old)
    if arms is None:
        weights, logp, logp_old, A = pi_old, logp_all, logp_old_all, advantages
    else:
        weights = torch.full((len(arms),), 1.0 / len(arms))
        logp, logp_old, A = logp_all[arms], logp_old_all[arms], advantages[arms]

    if method == "lad":
        per_sample = lad_loss(logp, logp_old, A, eta=args.eta, divergence=args.divergence, reduction="none")
    elif method == "grpo":
        if arms is None:  # the group is every arm: normalise with pi_old's mean and std
            mean = (pi_old * A).sum()
            A = (A - mean) / ((pi_old * (A - mean) ** 2).sum().sqrt() + 1e-6)
        else:
            A = group_advantages(A, group_size=len(arms))
        per_sample = grpo_loss(logp, logp_old, A, clip_eps=None, reduction="none")
    else:
        raise ValueError(f"method must be 'lad' or 'grpo', got {method!r}")
    return (weights * per_sample).sum()


def train(method: str, args: Args, record_every: int = 10, progress: bool = True) -> Run:
    pi_0 = torch.full((N_ARMS,), 1.0 / N_ARMS)
    advantages = bandit_advantages(args.eta, pi_0)
    target = target_distribution(pi_0, advantages, args.eta)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # the same arms for both methods
    logits = torch.zeros(N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=args.lr)
    run = Run(method, pi_0)
    pi_old_mode = args.pi_old if method == "lad" else args.grpo_pi_old

    start = time.perf_counter()
    for step in tqdm(range(args.steps + 1), desc=method, disable=not progress, leave=False):
        pi = torch.softmax(logits.detach(), dim=-1)
        if step % record_every == 0 or step == args.steps:
            run.steps.append(step)
            run.tv.append(0.5 * float((pi - target).abs().sum()))
            run.entropy.append(float(-(pi * torch.log(pi)).sum()))
            run.snapshots.append(pi)
        if step == args.steps:
            break
        pi_old = pi_0 if pi_old_mode == "fixed" else pi
        arms = None if args.exact else torch.multinomial(pi_old, args.group_size, replacement=True, generator=generator)
        loss = policy_loss(method, logits, pi_old, advantages, arms, args)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    run.seconds = time.perf_counter() - start
    run.pi = torch.softmax(logits.detach(), dim=-1)
    return run


# ---------------------------------------------------------------------------------------------
# Output: the figure, a table, a metrics file.
# ---------------------------------------------------------------------------------------------

def draw_figure(runs: dict, target: torch.Tensor, args: Args, path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for ax, (name, run) in zip(axes, runs.items()):
        s = summarize(run.pi, target)
        plot_distribution(
            ax, target, {name.upper(): run.pi},
            title=f"{name.upper()}: TV {s['tv']:.3f}, max arm {s['max_prob']:.2f}, {s['modes_recovered']}/3 modes",
        )
        ax.set_xlabel("arm")
    plot_curves(
        axes[2], {name.upper(): (run.steps, run.tv) for name, run in runs.items()},
        xlabel="step", ylabel="TV(policy, target)", title="distance to the target $P_A$",
    )
    fig.suptitle(
        f"50-arm bandit, pi_old: LAD {args.pi_old}, GRPO {args.grpo_pi_old}, {'exact expectation' if args.exact else f'{args.group_size} samples/step'}, "
        f"1/eta = {1 / args.eta:g}, LAD divergence {args.divergence}", fontsize=10,
    )
    return save_figure(fig, path)


def parse_args(argv=None) -> Args:
    defaults = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=defaults.steps, help="optimiser steps per method")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    p.add_argument("--eta", type=float, default=defaults.eta, help="trust-region temperature (> 0)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=defaults.divergence, help="LAD's f-divergence")
    p.add_argument("--group-size", type=int, default=defaults.group_size, help="arms sampled per step")
    p.add_argument("--pi-old", choices=["fixed", "refresh"], default=defaults.pi_old, help="LAD's pi_old: the uniform initial policy, or the current policy every step")
    p.add_argument("--grpo-pi-old", choices=["fixed", "refresh"], default=defaults.grpo_pi_old, help="GRPO's pi_old (refresh: on-policy)")
    p.add_argument("--exact", action="store_true", help="exact expectation over all arms instead of samples")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--figure", default=defaults.figure, help="where to write the figure")
    p.add_argument("--metrics-json", default=None, help="write the final metrics to this JSON file")
    p.add_argument("--quick", action="store_true", help="400 steps with a larger learning rate, for tests")
    ns = p.parse_args(argv)
    if ns.steps < 1:
        p.error("--steps must be >= 1")
    if not ns.lr > 0:
        p.error("--lr must be > 0")
    if not ns.eta > 0:
        p.error("--eta must be > 0")
    if ns.group_size < 2:
        p.error("--group-size must be >= 2 (GRPO normalises within the group)")
    args = Args(**{k: v for k, v in vars(ns).items()})
    if args.quick:
        args.steps, args.lr = 400, 2e-2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 50 numbers per step: threads only add overhead
    pi_0 = torch.full((N_ARMS,), 1.0 / N_ARMS)
    target = target_distribution(pi_0, bandit_advantages(args.eta, pi_0), args.eta)

    runs = {method: train(method, args) for method in ("lad", "grpo")}
    metrics = {name: {**summarize(run.pi, target), "seconds": round(run.seconds, 3)} for name, run in runs.items()}
    metrics["target"] = summarize(target, target)

    print(f"{'':8s}{'TV':>8s}{'max arm':>10s}{'entropy':>10s}{'modes':>8s}{'argmax':>8s}{'seconds':>9s}")
    for name, m in metrics.items():
        print(f"{name:8s}{m['tv']:8.3f}{m['max_prob']:10.3f}{m['entropy']:10.3f}{m['modes_recovered']:8d}"
              f"{m['argmax']:8d}{m.get('seconds', float('nan')):9.2f}")
    path = draw_figure(runs, target, args, args.figure)
    print(f"figure written to {path}")
    if args.metrics_json:
        metrics["settings"] = asdict(args)
        Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics_json).write_text(json.dumps(metrics, indent=2))
        print(f"metrics written to {args.metrics_json}")
    return metrics


if __name__ == "__main__":
    main()

"""The paper's controlled experiment: a 50-arm bandit whose advantage distribution has three modes.

One prompt, 50 possible answers ("arms"). The policy is a softmax over 50 learnable logits, all zero
at the start, so pi_0 is uniform. Each arm has a fixed advantage A(arm), built from a mixture of three
Gaussians over the arm index with unequal weights:

    mixture(arm) = sum_k w_k N(arm; mu_k, sigma_k),   normalised over the 50 arms
    A(arm)       = 0.25 * log(mixture(arm) / pi_0(arm))

We chose this A so that at the paper's setting 1/eta = 4 the advantage-induced target of Lemma 3.1 is
the mixture itself: P_A = pi_0 * exp(A/eta) / Z = mixture (and Z = 1). Scaling the Gaussian bumps
directly would not do: bumps of height 0.05 divided by eta = 0.25 give exp(0.2) ~ 1.2, an almost
uniform target. A belongs to the arms and stays fixed; another eta gives the target mixture^(0.25/eta).
With `--center-advantages` we subtract A's mean under pi_0, as a baseline would (a GRPO advantage has
mean zero too). P_A does not change, but its normaliser Z = E_{pi_0}[exp(A/eta)] grows from 1 to 2.8,
which matters for total variation, whose minimiser is then not unique (see lad_loss.py).

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

Ablations (`--ablation NAME`, each writes plots/ablation_NAME.png and .json in well under a minute):
  divergences     LAD with each of the six f-divergences
  eta             1/eta from 0.5 to 16: the target sharpens; does LAD follow?
  pi-old          pi_old fixed vs refreshed, for LAD and for GRPO
  entropy-bonus   GRPO + beta * entropy for several beta, against LAD
  animation       an animated GIF of both policies over training

Run:  python bandit.py                      (the figure, plots/bandit.png, in seconds)
      python bandit.py --ablation eta       (one of the ablations above)
      python bandit.py --quick              (a few hundred steps, for tests)
"""
import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from plots import animate_distributions, plot_curves, plot_distribution, save_figure

N_ARMS = 50
# The three modes of the advantage distribution: (centre mu, width sigma, weight w). Unequal weights,
# so "collapse onto the best arm" has a clear winner (the centre of the heaviest mode).
MODES = [(10, 2.5, 0.5), (25, 2.5, 0.3), (40, 2.5, 0.2)]
# The eta at which the target is exactly the mixture (see bandit_advantages).
ETA_OF_MIXTURE = 0.25
# A mode counts as recovered when the policy puts at least half of the target's mass inside the
# window mu +- 2 sigma (rounded to whole arms).
MODE_WINDOW_SIGMAS = 2.0
RECOVERED_FRACTION = 0.5
# The loss needs exp(A/eta) inside float32, whose largest value is about e^88.7.
MAX_LOG_WEIGHT = 80.0
ABLATIONS = ["divergences", "eta", "pi-old", "entropy-bonus", "animation"]


@dataclass
class Args:
    steps: int = 4000  # optimiser steps per method
    lr: float = 5e-3  # Adam learning rate
    eta: float = 0.25  # trust-region temperature; the paper's main setting is 1/eta = 4
    divergence: str = "js"  # LAD's f-divergence
    group_size: int = 64  # arms sampled per step from pi_old
    pi_old: str = "fixed"  # LAD's pi_old: "fixed" (pi_0 throughout) or "refresh" (the current policy)
    grpo_pi_old: str = "refresh"  # GRPO's pi_old: on-policy by default, as GRPO is run in practice
    grpo_entropy_coef: float = 0.0  # beta of an entropy bonus added to GRPO's loss (0: none)
    center_advantages: bool = False  # subtract A's mean under pi_0: same target P_A, Z > 1
    exact: bool = False  # use the exact expectation over all arms instead of a sampled group
    seed: int = 0
    ablation: str | None = None  # one of ABLATIONS, or None for the main figure
    figure: str | None = None  # default: plots/bandit.png, or plots/ablation_NAME.png (.gif)
    metrics_json: str | None = None  # default: none, or plots/ablation_NAME.json for an ablation
    quick: bool = False  # a few hundred steps, for tests


# ---------------------------------------------------------------------------------------------
# The bandit: advantages, the target, and the numbers we report about a policy.
# ---------------------------------------------------------------------------------------------

def mixture(n_arms: int = N_ARMS, modes=MODES) -> torch.Tensor:
    """The three-Gaussian mixture over arm indices, normalised to a distribution [n_arms]."""
    arms = torch.arange(n_arms, dtype=torch.float64)
    density = sum(w * torch.exp(-0.5 * ((arms - mu) / sigma) ** 2) / sigma for mu, sigma, w in modes)
    return (density / density.sum()).float()


def uniform_policy(n_arms: int = N_ARMS) -> torch.Tensor:
    return torch.full((n_arms,), 1.0 / n_arms)


def bandit_advantages(pi_0: torch.Tensor, center: bool = False) -> torch.Tensor:
    """A(arm) = 0.25 * log(mixture / pi_0): the target pi_0 * exp(A/eta) / Z is the mixture at eta = 0.25.
    With center=True, minus its mean under pi_0 (the same target, a larger Z)."""
    advantages = ETA_OF_MIXTURE * (torch.log(mixture(len(pi_0))) - torch.log(pi_0))
    return advantages - (pi_0 * advantages).sum() if center else advantages


def target_distribution(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """The target policy pi_old * exp(A/eta) / Z of Lemma 3.1, normalised in log space. It is the
    policy at which P_pi = P_A (lad_loss.py); the figures call it "the target P_A"."""
    return torch.softmax(torch.log(pi_old) + advantages / eta, dim=-1)


def mode_windows(n_arms: int = N_ARMS, modes=MODES) -> list[list[int]]:
    return [
        list(range(max(0, round(mu - MODE_WINDOW_SIGMAS * s)), min(n_arms, round(mu + MODE_WINDOW_SIGMAS * s) + 1)))
        for mu, s, _ in modes
    ]


def entropy(pi: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats (0 log 0 = 0)."""
    return -(pi * torch.log(pi.clamp_min(1e-30))).sum(-1)


def summarize(pi: torch.Tensor, target: torch.Tensor) -> dict:
    """tv (to the target), max_prob, argmax, entropy (nats), the mass in each mode's window and
    modes_recovered of a distribution."""
    mode_mass = [float(pi[w].sum()) for w in mode_windows(len(pi))]
    target_mass = [float(target[w].sum()) for w in mode_windows(len(pi))]
    return {
        "tv": 0.5 * float((pi - target).abs().sum()),
        "max_prob": float(pi.max()),
        "argmax": int(pi.argmax()),
        "entropy": float(entropy(pi)),
        "mode_mass": [round(m, 4) for m in mode_mass],
        "modes_recovered": sum(m >= RECOVERED_FRACTION * t for m, t in zip(mode_mass, target_mass)),
    }


# ---------------------------------------------------------------------------------------------
# Training: one function for both methods, so that they differ in the loss and nothing else.
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    method: str
    target: torch.Tensor  # P_A for this run's eta [n_arms]
    pi: torch.Tensor = None  # the final policy [n_arms]
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
        return (weights * per_sample).sum()
    if method != "grpo":
        raise ValueError(f"method must be 'lad' or 'grpo', got {method!r}")
    if arms is None:  # the group is every arm: normalise with pi_old's mean and std
        mean = (pi_old * A).sum()
        A = (A - mean) / ((pi_old * (A - mean) ** 2).sum().sqrt() + 1e-6)
    else:
        A = group_advantages(A, group_size=len(arms))
    per_sample = grpo_loss(logp, logp_old, A, clip_eps=None, reduction="none")
    # The entropy bonus, the usual remedy for collapse: computed exactly, it is cheap over 50 arms.
    return (weights * per_sample).sum() - args.grpo_entropy_coef * entropy(logp_all.exp())


def train(method: str, args: Args, record_every: int = 10, progress: bool = True, desc: str | None = None) -> Run:
    pi_0 = uniform_policy()
    advantages = bandit_advantages(pi_0, center=args.center_advantages)
    run = Run(method, target=target_distribution(pi_0, advantages, args.eta))
    pi_old_mode = args.pi_old if method == "lad" else args.grpo_pi_old

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # the same draws for every run
    logits = torch.zeros(N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=args.lr)

    start = time.perf_counter()
    for step in tqdm(range(args.steps + 1), desc=desc or method, disable=not progress, leave=False):
        pi = torch.softmax(logits.detach(), dim=-1)
        if step % record_every == 0 or step == args.steps:
            run.steps.append(step)
            run.tv.append(0.5 * float((pi - run.target).abs().sum()))
            run.entropy.append(float(entropy(pi)))
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
# What to run: the main comparison, or one ablation. Each entry is (key, method, settings).
# ---------------------------------------------------------------------------------------------

def experiment(args: Args) -> list[tuple[str, str, Args]]:
    if args.ablation is None or args.ablation == "animation":
        return [("lad", "lad", args), ("grpo", "grpo", args)]
    if args.ablation == "divergences":  # each divergence with Z = 1, then with centred advantages
        return [
            (d + (", centred A" if center else ""), "lad", replace(args, divergence=d, center_advantages=center))
            for center in (False, True) for d in ["kl", "rkl", "jf", "tv", "hd", "js"]
        ]
    if args.ablation == "eta":
        return [(f"1/eta={k:g}", "lad", replace(args, eta=1 / k)) for k in [0.5, 1, 2, 4, 8, 16]]
    if args.ablation == "pi-old":
        return [
            ("LAD fixed", "lad", replace(args, pi_old="fixed")),
            ("LAD refresh", "lad", replace(args, pi_old="refresh")),
            ("GRPO fixed", "grpo", replace(args, grpo_pi_old="fixed")),
            ("GRPO refresh", "grpo", replace(args, grpo_pi_old="refresh")),
        ]
    if args.ablation == "entropy-bonus":
        # Maximising E_pi[A_hat] + beta * H(pi), with A_hat = (A - mean) / std, has the optimum
        # pi ~ exp(A_hat / beta) = exp(A / (beta * std)): LAD's target (pi_0 is uniform here) when
        # beta = eta / std, with std taken under the target. We run that value among a log grid.
        pi_0 = uniform_policy()
        advantages = bandit_advantages(pi_0)
        target = target_distribution(pi_0, advantages, args.eta)
        std = float((target * (advantages - (target * advantages).sum()) ** 2).sum().sqrt())
        betas = sorted([0, 0.1, 0.3, 1, 3, round(args.eta / std, 2)])
        return [("LAD", "lad", args)] + [
            (f"GRPO beta={beta:g}", "grpo", replace(args, grpo_entropy_coef=beta)) for beta in betas
        ]
    raise ValueError(f"ablation must be one of {ABLATIONS}, got {args.ablation!r}")


# ---------------------------------------------------------------------------------------------
# Output: a figure, a table, a metrics file.
# ---------------------------------------------------------------------------------------------

def draw_figure(runs: dict, title: str, path, curves=("tv",), cols=None) -> Path:
    """One panel per run (its policy against its target), then one panel per curve over steps."""
    n_panels = len(runs) + len(curves)
    cols = cols or (3 if n_panels in (3, 6, 9) else 4)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=((5 if cols <= 4 else 3.8) * cols, 3.8 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, (key, run) in zip(axes, runs.items()):
        s = summarize(run.pi, run.target)
        plot_distribution(
            ax, run.target, {run.method.upper(): run.pi},
            title=f"{key}: TV {s['tv']:.3f}, max arm {s['max_prob']:.2f}, {s['modes_recovered']}/3 modes",
        )
        ax.set_xlabel("arm")
    labels = {"tv": "TV(policy, target)", "entropy": "entropy (nats)"}
    for ax, curve in zip(axes[len(runs):], curves):
        plot_curves(ax, {key: (run.steps, getattr(run, curve)) for key, run in runs.items()},
                    xlabel="step", ylabel=labels[curve], title=f"{labels[curve]} over training")
    for ax in axes[n_panels:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def print_table(metrics: dict) -> None:
    width = max(len(k) for k in metrics) + 2
    print(f"{'':{width}s}{'TV':>7s}{'max arm':>9s}{'entropy':>9s}{'modes':>7s}{'seconds':>9s}   mass in the mode windows")
    for key, m in metrics.items():
        masses = " ".join(f"{x:.2f}" for x in m["mode_mass"])
        seconds = f"{m['seconds']:9.2f}" if "seconds" in m else " " * 9
        print(f"{key:{width}s}{m['tv']:7.3f}{m['max_prob']:9.3f}{m['entropy']:9.3f}{m['modes_recovered']:7d}{seconds}   {masses}")


def parse_args(argv=None) -> Args:
    defaults = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=defaults.steps, help="optimiser steps per method")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    p.add_argument("--eta", type=float, default=defaults.eta, help="trust-region temperature (> 0)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=defaults.divergence, help="LAD's f-divergence")
    p.add_argument("--group-size", type=int, default=defaults.group_size, help="arms sampled per step")
    p.add_argument("--pi-old", choices=["fixed", "refresh"], default=defaults.pi_old,
                   help="LAD's pi_old: the uniform initial policy, or the current policy every step")
    p.add_argument("--grpo-pi-old", choices=["fixed", "refresh"], default=defaults.grpo_pi_old,
                   help="GRPO's pi_old (refresh: on-policy)")
    p.add_argument("--grpo-entropy-coef", type=float, default=defaults.grpo_entropy_coef,
                   help="beta of an entropy bonus for GRPO (>= 0)")
    p.add_argument("--center-advantages", action="store_true",
                   help="subtract A's mean under pi_0 (same target, normaliser Z > 1)")
    p.add_argument("--exact", action="store_true", help="exact expectation over all arms instead of samples")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--ablation", choices=ABLATIONS, default=None, help="run one ablation instead of the main figure")
    p.add_argument("--figure", default=None, help="where to write the figure (default: under plots/)")
    p.add_argument("--metrics-json", default=None, help="write the final metrics to this JSON file")
    p.add_argument("--quick", action="store_true", help="400 steps with a larger learning rate, for tests")
    ns = p.parse_args(argv)
    if ns.steps < 1:
        p.error("--steps must be >= 1")
    if not ns.lr > 0:
        p.error("--lr must be > 0")
    if not ns.eta > 0:
        p.error("--eta must be > 0")
    # exp(A/eta) must stay inside float32 (about e^88.7); a very negative A/eta only underflows to 0.
    largest = float(bandit_advantages(uniform_policy(), ns.center_advantages).max()) / ns.eta
    if largest > MAX_LOG_WEIGHT:
        p.error(f"--eta {ns.eta:g} is too small: A/eta reaches {largest:.0f}, beyond float32's range "
                f"(use 1/eta <= {MAX_LOG_WEIGHT / (largest * ns.eta):.0f})")
    if ns.group_size < 2:
        p.error("--group-size must be >= 2 (GRPO normalises within the group)")
    if not ns.grpo_entropy_coef >= 0:
        p.error("--grpo-entropy-coef must be >= 0")
    args = Args(**vars(ns))
    if args.quick:
        args.steps, args.lr = 400, 2e-2
    name = "bandit" if args.ablation is None else f"ablation_{args.ablation.replace('-', '_')}"
    if args.figure is None:
        args.figure = f"plots/{name}.{'gif' if args.ablation == 'animation' else 'png'}"
    if args.metrics_json is None and args.ablation is not None:
        args.metrics_json = str(Path(args.figure).with_suffix(".json"))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 50 numbers per step: threads only add overhead
    # The animation wants ~80 frames (20 with --quick); everything else a point every 10 steps.
    record_every = max(1, args.steps // (20 if args.quick else 80)) if args.ablation == "animation" else 10
    runs = {key: train(method, run_args, record_every, desc=key) for key, method, run_args in experiment(args)}

    metrics = {key: {**summarize(run.pi, run.target), "seconds": round(run.seconds, 3)} for key, run in runs.items()}
    if args.ablation == "eta":  # each 1/eta has its own target: say how sharp it is
        for key, run in runs.items():
            metrics[key]["target_max_prob"] = round(float(run.target.max()), 4)
            metrics[key]["target_entropy"] = round(float(entropy(run.target)), 4)
    else:  # one target shared by every run
        target = next(iter(runs.values())).target
        metrics["target"] = summarize(target, target)
    print_table(metrics)

    sampling = "exact expectation" if args.exact else f"{args.group_size} samples/step"
    title = (f"50-arm bandit, {args.steps} steps, {sampling}, 1/eta = {1 / args.eta:g}, LAD divergence "
             f"{args.divergence}, pi_old: LAD {args.pi_old}, GRPO {args.grpo_pi_old}")
    if args.ablation == "animation":
        lad, grpo = runs["lad"], runs["grpo"]
        path = animate_distributions(lad.target, {"LAD": lad.snapshots, "GRPO": grpo.snapshots}, lad.steps,
                                     args.figure, title="50-arm bandit, LAD (pi_old fixed) vs GRPO")
    else:
        curves, cols = ("tv", "entropy"), None
        if args.ablation is None:
            curves = ("tv",)
        elif args.ablation == "divergences":  # twelve panels, two rows of six, TV in their titles
            curves, cols = (), 6
        if args.ablation is not None:
            title = f"ablation '{args.ablation}': " + title
        path = draw_figure(runs, title, args.figure, curves, cols)
    print(f"figure written to {path}")
    if args.metrics_json:
        metrics["settings"] = asdict(args)
        Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics_json).write_text(json.dumps(metrics, indent=2))
        print(f"metrics written to {args.metrics_json}")
    return metrics


if __name__ == "__main__":
    main()

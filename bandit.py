"""The paper's controlled experiment: a 50-arm bandit whose advantage distribution has three modes.

One prompt, 50 possible answers ("arms"). The policy is a softmax over 50 learnable logits, all zero
at the start, so pi_0 is uniform. Each arm has a fixed advantage A(arm), built from a mixture of three
Gaussians over the arm index with unequal weights:

    mixture(arm) = sum_k w_k N(arm; mu_k, sigma_k),   normalised over the 50 arms
    A(arm)       = 0.25 * log(mixture(arm) / pi_0(arm))

We chose this A so that at the paper's setting 1/eta = 4 the target policy of Lemma 3.1 is the
mixture itself: pi* = pi_0 * exp(A/eta) / Z = mixture (and Z = 1). Scaling the Gaussian bumps
directly would not do: bumps of height 0.05 divided by eta = 0.25 give exp(0.2) ~ 1.2, an almost
uniform target. A belongs to the arms and stays fixed; another eta gives the target mixture^(0.25/eta).
With `--center-advantages` we subtract A's mean under pi_0, as a baseline would (a GRPO advantage has
mean zero too). pi* does not change, but its normaliser Z = E_{pi_0}[exp(A/eta)] grows from 1 to 2.8,
which matters for total variation, whose minimiser is then not unique (see lad_loss.py).

Both methods then train for 4000 Adam steps (lr 5e-3) with the same seed and the same number of
samples per step. Each step samples a group of arms from the method's pi_old and applies its loss:
  * LAD:  lad_loss(logp, logp_old, A) -- match pi* (Lemma 3.2, Jensen-Shannon by default);
  * GRPO: grpo_loss(logp, logp_old, group_advantages(A)) -- maximise the expected advantage.
The expected picture: LAD recovers all three modes in their proportions, GRPO piles its mass on the
best arm.

Which pi_old? pi_old is the policy that samples the group and the anchor of the trust region.
  * GRPO, as it is used in practice, is on-policy: its pi_old is the current policy, refreshed every
    step (`--grpo-pi-old refresh`, the default). One optimiser step per batch means the ratio is exactly
    1 when the gradient is taken, so GRPO's clip never acts and we leave it off.
  * LAD's target pi* is defined relative to pi_old. The paper's figure keeps pi_old at pi_0, the
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

Ablations (`--ablation NAME`, each writes plots/ablation_NAME.png and .json in under a minute):
  divergences     LAD with each of the six f-divergences
  eta             1/eta from 0.5 to 16: the target sharpens; does LAD follow?
  pi-old          pi_old fixed vs refreshed, for LAD and for GRPO
  entropy-bonus   GRPO + beta * entropy for several beta, against LAD
  animation       an animated GIF of both policies over training

Run:  python bandit.py                      (the figure, plots/bandit.png, in seconds)
      python bandit.py --ablation eta       (one of the ablations above)
      python bandit.py --quick              (400 steps, for tests and classrooms: its numbers mean
                                             little, and it writes under runs/quick/, not plots/)
"""
import argparse
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from plots import (animate_distributions, output_path_problem, plot_curves, plot_distribution, save_figure,
                   write_metrics_json)

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
# lad_loss forms exp(A/eta) (only x = ratio / exp(A/eta) is never formed), so A/eta must stay inside
# float32, whose largest value is about e^88.7.
MAX_LOG_WEIGHT = 80.0
ABLATIONS = ["divergences", "eta", "pi-old", "entropy-bonus", "animation"]
# --quick: a short run for tests and classrooms. An explicit --steps or --lr still wins, and its
# outputs go to a git-ignored folder so that it never replaces the committed figures.
QUICK = {"steps": 400, "lr": 2e-2}
QUICK_DIR = "runs/quick"


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
    center_advantages: bool = False  # subtract A's mean under pi_0: same target pi*, Z > 1
    exact: bool = False  # use the exact expectation over all arms instead of a sampled group
    seed: int = 0
    ablation: str | None = None  # one of ABLATIONS, or None for the main figure
    figure: str | None = None  # default: plots/bandit.png, or plots/ablation_NAME.png (.gif)
    metrics_json: str | None = None  # default: none, or plots/ablation_NAME.json for an ablation
    quick: bool = False  # QUICK's steps and lr unless given, outputs under QUICK_DIR


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


def target_policy(pi_old: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """The target policy pi* = pi_old * exp(A/eta) / Z of Lemma 3.1, normalised in log space. It is
    the policy at which the paper's P_pi = P_A (lad_loss.py); the figures draw it as "target pi*"."""
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
    target: torch.Tensor  # pi* for this run's eta [n_arms]
    pi: torch.Tensor = None  # the final policy [n_arms]
    steps: list = field(default_factory=list)  # the steps at which the history was recorded
    tv: list = field(default_factory=list)  # TV to the target pi*
    entropy: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # the policy at each recorded step
    seconds: float = 0.0

    def record(self, step: int, pi: torch.Tensor) -> None:
        self.steps.append(step)
        self.tv.append(0.5 * float((pi - self.target).abs().sum()))
        self.entropy.append(float(entropy(pi)))
        self.snapshots.append(pi)


def step_loss(method, logits, pi_old, advantages, arms, args: Args):
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
    run = Run(method, target=target_policy(pi_0, advantages, args.eta))
    pi_old_mode = args.pi_old if method == "lad" else args.grpo_pi_old

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # the same draws for every run
    logits = torch.zeros(N_ARMS, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=args.lr)

    start = time.perf_counter()
    for step in tqdm(range(args.steps), desc=desc or method, disable=not progress, leave=False):
        pi = torch.softmax(logits.detach(), dim=-1)
        if step % record_every == 0:
            run.record(step, pi)
        pi_old = pi_0 if pi_old_mode == "fixed" else pi
        arms = None if args.exact else torch.multinomial(pi_old, args.group_size, replacement=True, generator=generator)
        loss = step_loss(method, logits, pi_old, advantages, arms, args)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    run.pi = torch.softmax(logits.detach(), dim=-1)
    run.record(args.steps, run.pi)
    run.seconds = time.perf_counter() - start
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
        target = target_policy(pi_0, advantages, args.eta)
        std = float((target * (advantages - (target * advantages).sum()) ** 2).sum().sqrt())
        betas = sorted([0, 0.1, 0.3, 1, 3, round(args.eta / std, 2)])
        return [("LAD", "lad", args)] + [
            (f"GRPO beta={beta:g}", "grpo", replace(args, grpo_entropy_coef=beta)) for beta in betas
        ]
    raise ValueError(f"ablation must be one of {ABLATIONS}, got {args.ablation!r}")


# ---------------------------------------------------------------------------------------------
# Output: a figure, a table, a metrics file.
# ---------------------------------------------------------------------------------------------

def figure_title(runs: list[tuple[str, str, Args]]) -> str:
    """The settings every run of the experiment shares. A setting that an ablation varies is left out:
    the panels' titles name it."""
    lad = [a for _, method, a in runs if method == "lad"]
    grpo = [a for _, method, a in runs if method == "grpo"]

    def shared(group, name):  # the value every run in the group has, or None if they differ
        values = {getattr(a, name) for a in group}
        return values.pop() if len(values) == 1 else None

    first = runs[0][2]
    parts = [f"{first.steps} steps", "exact expectation" if first.exact else f"{first.group_size} samples/step"]
    if shared(lad + grpo, "eta") is not None:
        parts.append(f"1/eta = {1 / first.eta:g}")
    if shared(lad + grpo, "center_advantages"):
        parts.append("centred A")
    if lad and shared(lad, "divergence"):
        parts.append(f"LAD divergence {lad[0].divergence}")
    if lad and shared(lad, "pi_old"):
        parts.append(f"LAD pi_old {lad[0].pi_old}")
    if grpo and shared(grpo, "grpo_pi_old"):
        parts.append(f"GRPO pi_old {grpo[0].grpo_pi_old}")
    if grpo and shared(grpo, "grpo_entropy_coef"):  # None when varied, 0.0 (left out) when off
        parts.append(f"GRPO entropy bonus {grpo[0].grpo_entropy_coef:g}")
    quick = "quick run (its numbers mean little): " if first.quick else ""
    return quick + "50-arm bandit, " + ", ".join(parts)


def draw_figure(runs: dict, title: str, path, curves=("tv",), cols=None) -> Path:
    """One panel per run (its policy against its target), then one panel per curve over steps."""
    n_panels = len(runs) + len(curves)
    cols = cols or (3 if n_panels in (3, 6, 9) else 4)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=((5 if cols <= 4 else 3.8) * cols, 3.9 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, (key, run) in zip(axes, runs.items()):
        s = summarize(run.pi, run.target)
        # Two lines: in the six-column divergence figure one line would run into the next panel's.
        plot_distribution(
            ax, run.target, {run.method.upper(): run.pi},
            title=f"{key}\nTV {s['tv']:.3f}, max arm {s['max_prob']:.2f}, {s['modes_recovered']}/3 modes",
        )
        ax.title.set_fontsize(10)
        ax.set_xlabel("arm")
    labels = {"tv": "TV(policy, target)", "entropy": "entropy (nats)"}
    for ax, curve in zip(axes[len(runs):], curves):
        plot_curves(ax, {key: (run.steps, getattr(run, curve)) for key, run in runs.items()},
                    xlabel="step", ylabel=labels[curve], title=f"{labels[curve]} over training")
        ax.title.set_fontsize(10)
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
    """The command line, checked before any training: a bad value is a one-line error naming its flag."""
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None,
                   help=f"optimiser steps per method (default: {d.steps}; {QUICK['steps']} with --quick)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam learning rate (default: {d.lr:g}; {QUICK['lr']:g} with --quick)")
    p.add_argument("--eta", type=float, default=d.eta,
                   help=f"trust-region temperature, > 0 (default: {d.eta:g}, the paper's 1/eta = 4)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=d.divergence,
                   help=f"LAD's f-divergence (default: {d.divergence})")
    p.add_argument("--group-size", type=int, default=d.group_size,
                   help=f"arms sampled per step, >= 2 (default: {d.group_size})")
    p.add_argument("--pi-old", choices=["fixed", "refresh"], default=d.pi_old,
                   help=f"LAD's pi_old: the uniform initial policy, or the current policy every step (default: {d.pi_old})")
    p.add_argument("--grpo-pi-old", choices=["fixed", "refresh"], default=d.grpo_pi_old,
                   help=f"GRPO's pi_old; refresh is on-policy (default: {d.grpo_pi_old})")
    p.add_argument("--grpo-entropy-coef", type=float, default=d.grpo_entropy_coef,
                   help=f"beta of an entropy bonus for GRPO, >= 0 (default: {d.grpo_entropy_coef:g}, none)")
    p.add_argument("--center-advantages", action="store_true",
                   help="subtract A's mean under pi_0 (same target, normaliser Z > 1)")
    p.add_argument("--exact", action="store_true", help="exact expectation over all arms instead of samples")
    p.add_argument("--seed", type=int, default=d.seed,
                   help=f"seed of torch and of the sampled arms: the same seed gives the same numbers (default: {d.seed})")
    p.add_argument("--ablation", choices=ABLATIONS, default=None, help="run one ablation instead of the main figure")
    p.add_argument("--figure", default=None,
                   help="where to write the figure (default: plots/bandit.png, or plots/ablation_NAME.png, "
                        f".gif for the animation; under {QUICK_DIR}/ with --quick)")
    p.add_argument("--metrics-json", default=None,
                   help="write the final metrics to this JSON file (default: none for the main figure; "
                        "the figure's name with .json for an ablation)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['steps']} steps at lr {QUICK['lr']:g}, for tests and classrooms: its numbers mean "
                        f"little. Writes under {QUICK_DIR}/ unless --figure or --metrics-json say where; "
                        "an explicit --steps or --lr wins")
    ns = p.parse_args(argv)

    # Fill in the defaults that depend on --quick, then check every value before any work.
    ns.steps = ns.steps if ns.steps is not None else (QUICK["steps"] if ns.quick else d.steps)
    ns.lr = ns.lr if ns.lr is not None else (QUICK["lr"] if ns.quick else d.lr)
    if ns.steps < 1:
        p.error(f"--steps must be >= 1, got {ns.steps}")
    # Upper limits: Adam moves every logit by about lr per step, so beyond lr = 1 nothing is learned
    # gradually any more (and from about 3e37 the step overflows float32); an entropy bonus of
    # beta = 1e6 already makes GRPO's loss nothing but the bonus (and from about 1e37 it overflows).
    if not 0 < ns.lr <= 1:  # also catches NaN and inf
        p.error(f"--lr must be a number in (0, 1], got {ns.lr}")
    if not 0 < ns.eta < math.inf:
        p.error(f"--eta must be a finite number > 0, got {ns.eta}")
    # exp(A/eta) must stay inside float32 (about e^88.7); a very negative A/eta only underflows to 0.
    largest = float(bandit_advantages(uniform_policy(), ns.center_advantages).max()) / ns.eta
    if largest > MAX_LOG_WEIGHT:
        p.error(f"--eta {ns.eta:g} is too small: A/eta reaches {largest:.0f}, beyond float32's range "
                f"(use 1/eta <= {MAX_LOG_WEIGHT / (largest * ns.eta):.0f})")
    if not 2 <= ns.group_size <= 10**6:
        p.error(f"--group-size must be in [2, 10**6] (GRPO normalises within the group; for the exact "
                f"expectation use --exact), got {ns.group_size}")
    if not 0 <= ns.grpo_entropy_coef <= 1e6:
        p.error(f"--grpo-entropy-coef must be a number in [0, 1e6], got {ns.grpo_entropy_coef}")
    if not 0 <= ns.seed < 2**64:
        p.error(f"--seed must be in [0, 2**64), as torch.manual_seed takes it, got {ns.seed}")

    name = "bandit" if ns.ablation is None else f"ablation_{ns.ablation.replace('-', '_')}"
    folder = QUICK_DIR if ns.quick else "plots"
    if ns.figure is None:
        ns.figure = f"{folder}/{name}.{'gif' if ns.ablation == 'animation' else 'png'}"
    if ns.metrics_json is None and ns.ablation is not None:
        ns.metrics_json = str(Path(ns.figure).with_suffix(".json"))
    if ns.ablation == "animation" and Path(ns.figure).suffix.lower() != ".gif":
        p.error(f"--figure {ns.figure}: the animation is written as a GIF, so its name must end in .gif")
    for flag, path, kind in [("--figure", ns.figure, "figure"), ("--metrics-json", ns.metrics_json, "file")]:
        problem = path is not None and output_path_problem(path, kind)
        if problem:
            p.error(f"{flag} {path}: {problem}")
    if ns.metrics_json is not None and Path(ns.metrics_json).resolve() == Path(ns.figure).resolve():
        p.error(f"--metrics-json {ns.metrics_json}: the same file as --figure")
    return Args(**vars(ns))


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 50 numbers per step: threads only add overhead
    # The animation wants ~80 frames (20 with --quick); everything else a point every 10 steps.
    record_every = max(1, args.steps // (20 if args.quick else 80)) if args.ablation == "animation" else 10
    runs_to_do = experiment(args)
    runs = {key: train(method, run_args, record_every, desc=key) for key, method, run_args in runs_to_do}

    metrics = {key: {**summarize(run.pi, run.target), "seconds": round(run.seconds, 3)} for key, run in runs.items()}
    if args.ablation == "eta":  # each 1/eta has its own target: say how sharp it is
        for key, run in runs.items():
            metrics[key]["target_max_prob"] = round(float(run.target.max()), 4)
            metrics[key]["target_entropy"] = round(float(entropy(run.target)), 4)
    else:  # one target shared by every run
        target = next(iter(runs.values())).target
        metrics["target"] = summarize(target, target)
    print_table(metrics)

    title = figure_title(runs_to_do)
    if args.ablation == "animation":
        lad, grpo = runs["lad"], runs["grpo"]
        path = animate_distributions(lad.target, {"LAD": lad.snapshots, "GRPO": grpo.snapshots}, lad.steps,
                                     args.figure, title=title)
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
        print(f"metrics written to {write_metrics_json(args.metrics_json, metrics)}")
    return metrics


if __name__ == "__main__":
    main()

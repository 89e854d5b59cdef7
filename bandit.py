"""The paper's controlled experiment: LAD against GRPO on a 50-arm bandit whose advantage has three modes.

The bandit itself is in bandit_task.py: one prompt, 50 arms, and an advantage A chosen so that at the
paper's 1/eta = 4 the target pi* = pi_0 exp(A/eta) / Z is a mixture of three Gaussians; with it, the
numbers we report about a policy (TV to pi*, max arm, modes recovered).

Both methods train for 4000 Adam steps (lr 5e-3) with the same seed and the same number of
samples per step. Each step samples a group of arms from the method's pi_old and applies its loss:
  * LAD:  lad_loss(logp, logp_old, A) -- match pi* (Lemma 3.2, Jensen-Shannon by default);
  * GRPO: grpo_loss(logp, logp_old, group_advantages(A)) -- maximise the expected advantage.
The expected picture: LAD recovers all three modes in their proportions, GRPO piles its mass on the
best arm.

Which pi_old? pi_old is the policy that samples the group and the anchor of the trust region.
  * GRPO, as it is used in practice, is on-policy: its pi_old is the current policy, refreshed every
    step (`--grpo-pi-old refresh`, the default). One optimiser step per batch means the ratio is exactly
    1 when the gradient is taken (log pi_old is the same log-softmax as log pi, so not 1 up to
    rounding), so GRPO's clip never acts and we leave it off.
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

Ablations (`--ablation NAME`): the divergences, eta, pi_old, an entropy bonus for GRPO, an animation,
and the paper's other baselines (FlowRL, EntAdv, Clip-Cov, KL-Cov) beside LAD and GRPO.
bandit_ablations.py lists them and says what each compares.

Every metrics file also holds each run's optimiser step time relative to GRPO's (or to the first
run's), measured with the runs taking turns, one step each (step_time_side_by_side): a busy machine
slows them alike, which it does not do to the seconds each run took one after the other.

Run:  python bandit.py                      (the figure, plots/bandit.png, in seconds)
      python bandit.py --ablation eta       (one of the ablations above)
      python bandit.py --quick              (400 steps, for tests and classrooms: its numbers mean
                                             little, and it writes under runs/quick/, not plots/)
"""
import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from bandit_study.ablations import ABLATIONS, ablation_runs
from bandit_study.task import (N_ARMS, advantage_std, bandit_advantages, entropy, std_at_target, summarize,
                               target_policy, total_variation, uniform_policy)
from baselines.cov_loss import clip_cov_loss, kl_cov_loss
from baselines.entadv_loss import entadv_loss
from baselines.flowrl_loss import flowrl_loss
from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from cli.outputs import output_path_problem, repository_path, write_metrics_json
from plots import animate_distributions
from plots.bandit import draw_runs, figure_title

# lad_loss forms exp(A/eta) (only x = ratio / exp(A/eta) is never formed), so A/eta must stay inside
# float32, whose largest value is about e^88.7.
MAX_LOG_WEIGHT = 80.0
METHODS = ("lad", "grpo", "flowrl", "entadv", "clip-cov", "kl-cov")
# --quick: a short run for tests and classrooms. Its outputs go to a git-ignored folder so that it
# never replaces the committed figures; an explicit --steps or --lr still wins.
QUICK = {"steps": 400, "lr": 2e-2}
QUICK_DIR = "runs/quick"
# Rounds of step_time_side_by_side: each run takes this many steps, in turns with the others.
TIMING_ROUNDS = 500


@dataclass
class Args:
    steps: int = 4000  # optimiser steps per method
    lr: float = 5e-3  # Adam learning rate
    eta: float = 0.25  # trust-region temperature; the paper's main setting is 1/eta = 4
    divergence: str = "js"  # LAD's f-divergence
    group_size: int = 64  # arms sampled per step from pi_old
    pi_old: str = "fixed"  # LAD's pi_old: "fixed" (pi_0 throughout) or "refresh" (the current policy)
    grpo_pi_old: str = "refresh"  # GRPO's (and the baselines') pi_old: on-policy, as GRPO is run in practice
    grpo_entropy_coef: float = 0.0  # beta of an entropy bonus added to GRPO's loss (0: none)
    flowrl_reward: str = "normalised"  # FlowRL's r: GRPO's "normalised" A (as published) or the "raw" A
    center_advantages: bool = False  # subtract A's mean under pi_0: same target pi*, Z > 1
    exact: bool = False  # use the exact expectation over all arms instead of a sampled group
    seed: int = 0
    ablation: str | None = None  # one of ABLATIONS, or None for the main figure
    figure: str | None = None  # default: plots/bandit.png, or plots/ablation_NAME.png (.gif)
    metrics_json: str | None = None  # default: none, or plots/ablation_NAME.json for an ablation
    quick: bool = False  # QUICK's steps and lr unless given, outputs under QUICK_DIR


# ---------------------------------------------------------------------------------------------
# Training: one loss function and one learner for every method, so that they differ in the loss
# and nothing else.
# ---------------------------------------------------------------------------------------------

def step_loss(method, logits, pi_old, advantages, arms, args: Args, log_z=None, generator=None, beta=None):
    """The loss for one step. pi_old: [n_arms], or None for the current policy (on-policy). `arms` is
    the sampled group [group_size], or None for the exact expectation, in which case every arm enters
    weighted by pi_old (a sampled group weights each sample 1/group_size: the same estimator, without
    the noise). FlowRL needs its log Z and beta, Clip-Cov the generator that draws its arms to hold back."""
    logp_all = torch.log_softmax(logits, dim=-1)
    if pi_old is None:  # log pi_old is log pi itself: the ratio is exactly 1, not 1 up to rounding
        pi_old, logp_old_all = logp_all.exp().detach(), logp_all.detach()
    else:
        logp_old_all = torch.log(pi_old)
    if arms is None:
        weights, logp, logp_old, A = pi_old, logp_all, logp_old_all, advantages
    else:
        weights = torch.full((len(arms),), 1.0 / len(arms))
        logp, logp_old, A = logp_all[arms], logp_old_all[arms], advantages[arms]

    if method == "lad":
        per_sample = lad_loss(logp, logp_old, A, eta=args.eta, divergence=args.divergence, reduction="none")
        return (weights * per_sample).sum()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if arms is None and method != "grpo":
        raise ValueError(f"{method} runs on sampled groups only (--exact is for LAD and GRPO)")
    A_raw = A
    if arms is None:  # the group is every arm: normalise with pi_old's mean and std
        mean = (pi_old * A).sum()
        A = (A - mean) / ((pi_old * (A - mean) ** 2).sum().sqrt() + 1e-6)
    else:  # every method but LAD sees GRPO's group-normalised advantages (FlowRL: unless told otherwise)
        A = group_advantages(A, group_size=len(arms))

    if method == "flowrl":  # the reference is pi_0, the uniform start
        r = A_raw if args.flowrl_reward == "raw" else A
        logp_ref = torch.log(uniform_policy()[arms])
        per_sample = flowrl_loss(logp, logp_old, logp_ref, log_z.expand(len(arms)), r, beta=beta,
                                 reduction="none")
    elif method == "entadv":  # one decision: every sample's "token" entropy is the whole softmax's
        per_sample = entadv_loss(logp, logp_old, A, entropy(logp_all.exp()).expand(len(arms)),
                                 clip_eps=None, reduction="none")
    elif method == "clip-cov":
        per_sample = clip_cov_loss(logp, logp_old, A, generator=generator, clip_eps=None, reduction="none")
    elif method == "kl-cov":
        per_sample = kl_cov_loss(logp, logp_old, A, reduction="none")
    else:
        per_sample = grpo_loss(logp, logp_old, A, clip_eps=None, reduction="none")
    loss = (weights * per_sample).sum()
    if args.grpo_entropy_coef:  # the entropy bonus, the usual remedy for collapse: exact over 50 arms
        loss = loss - args.grpo_entropy_coef * entropy(logp_all.exp())
    return loss


class Learner:
    """What one method trains: 50 logits (and FlowRL's log Z), their Adam optimiser, and the generators
    that draw its arms (and Clip-Cov's held-back arms), seeded by args.seed: every method meets the
    same draws of its own policy."""

    def __init__(self, method: str, args: Args):
        self.method, self.args = method, args
        self.pi_0 = uniform_policy()
        self.advantages = bandit_advantages(self.pi_0, center=args.center_advantages)
        self.target = target_policy(self.pi_0, self.advantages, args.eta)
        self.pi_old_fixed = (args.pi_old if method == "lad" else args.grpo_pi_old) == "fixed"
        # FlowRL's beta, such that pi* is its fixed point: 1/eta on the raw A; on A normalised by the
        # group's std, std_{pi*}(A) / eta (the std the group has once the policy is at pi*).
        std = std_at_target(args.eta, args.center_advantages)
        self.beta = 1 / args.eta if args.flowrl_reward == "raw" else std / args.eta
        torch.manual_seed(args.seed)
        self.sampler = torch.Generator().manual_seed(args.seed)
        self.selector = torch.Generator().manual_seed(args.seed)
        self.logits = torch.zeros(N_ARMS, requires_grad=True)
        self.log_z = torch.zeros((), requires_grad=True)  # FlowRL's; starts at 0 like the logits
        trained = [self.logits, self.log_z] if method == "flowrl" else [self.logits]
        self.optimizer = torch.optim.Adam(trained, lr=args.lr)

    def policy(self) -> torch.Tensor:
        return torch.softmax(self.logits.detach(), dim=-1)

    def true_log_z(self, pi: torch.Tensor | None = None) -> float:
        """The log Z that zeroes FlowRL's residual for groups drawn from pi (default: the current policy),
        in the large-group limit: log sum_arms pi_0 exp(beta (A - mean) / std), mean and std under pi."""
        pi = self.policy() if pi is None else pi
        r = self.advantages
        if self.args.flowrl_reward != "raw":
            r = (r - (pi * r).sum()) / advantage_std(pi, r)
        return float(torch.logsumexp(torch.log(self.pi_0) + self.beta * r, 0))

    def step(self) -> None:
        pi_old = self.pi_0 if self.pi_old_fixed else None  # None: the current policy
        drawn_from = self.pi_0 if self.pi_old_fixed else self.policy()
        arms = None if self.args.exact else torch.multinomial(drawn_from, self.args.group_size,
                                                               replacement=True, generator=self.sampler)
        loss = step_loss(self.method, self.logits, pi_old, self.advantages, arms, self.args,
                         log_z=self.log_z, generator=self.selector, beta=self.beta)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


@dataclass
class Run:
    method: str
    target: torch.Tensor  # pi* for this run's eta [n_arms]
    pi: torch.Tensor = None  # the final policy [n_arms]
    steps: list = field(default_factory=list)  # the steps at which the history was recorded
    tv: list = field(default_factory=list)  # TV to the target pi*
    entropy: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # the policy at each recorded step
    log_z: list = field(default_factory=list)  # FlowRL: its learned log Z, and the true one
    true_log_z: list = field(default_factory=list)
    beta: float | None = None  # FlowRL: its beta, and the true log Z at pi*
    log_z_at_target: float | None = None
    seconds: float = 0.0

    def record(self, step: int, learner: Learner) -> None:
        pi = learner.policy()
        self.steps.append(step)
        self.tv.append(float(total_variation(pi, self.target)))
        self.entropy.append(float(entropy(pi)))
        self.snapshots.append(pi)
        if learner.method == "flowrl":
            self.log_z.append(float(learner.log_z.detach()))
            self.true_log_z.append(learner.true_log_z())


def train(method: str, args: Args, record_every: int = 10, progress: bool = True, desc: str | None = None) -> Run:
    learner = Learner(method, args)
    run = Run(method, target=learner.target)
    start = time.perf_counter()
    for step in tqdm(range(args.steps), desc=desc or method, disable=not progress, leave=False):
        if step % record_every == 0:
            run.record(step, learner)
        learner.step()
    run.record(args.steps, learner)
    run.pi = learner.policy()
    run.seconds = time.perf_counter() - start
    if method == "flowrl":
        run.beta, run.log_z_at_target = learner.beta, learner.true_log_z(learner.target)
    return run


def step_time_side_by_side(runs_to_do, rounds: int) -> dict:
    """What one optimiser step of each run costs, in seconds: the runs take turns, one step at a time,
    so that the machine's load falls on all of them alike, and each run's step time is the 10th
    percentile of its `rounds` steps, the cost of a step that nothing else interrupted (the median
    moves with the load). Fresh learners: training is left untouched."""
    learners = {key: Learner(method, run_args) for key, method, run_args in runs_to_do}
    seconds = {key: [] for key in learners}
    for _ in range(rounds):
        for key, learner in learners.items():
            start = time.perf_counter()
            learner.step()
            seconds[key].append(time.perf_counter() - start)
    return {key: sorted(s)[len(s) // 10] for key, s in seconds.items()}


def experiment(args: Args) -> list[tuple[str, str, Args]]:
    """What to run, as (key, method, settings): LAD against GRPO, or one ablation's runs."""
    if args.ablation is None:
        return [("lad", "lad", args), ("grpo", "grpo", args)]
    return ablation_runs(args.ablation, args, std_at_target(args.eta, args.center_advantages))


# ---------------------------------------------------------------------------------------------
# The command line, and the run: a figure, a table, a metrics file.
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None) -> Args:
    """The command line, checked before any training: a bad value is a one-line error naming its flag."""
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = lambda name, text: f"{text} (default: {getattr(d, name):g}; {QUICK[name]:g} with --quick)"
    p.add_argument("--steps", type=int, default=None, help=quick("steps", "optimiser steps per method"))
    p.add_argument("--lr", type=float, default=None, help=quick("lr", "Adam learning rate"))
    p.add_argument("--eta", type=float, default=d.eta, help=f"trust-region temperature, > 0 (default: {d.eta:g})")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=d.divergence,
                   help=f"LAD's f-divergence (default: {d.divergence})")
    p.add_argument("--group-size", type=int, default=d.group_size,
                   help=f"arms sampled per step, >= 2 (default: {d.group_size})")
    p.add_argument("--pi-old", choices=["fixed", "refresh"], default=d.pi_old,
                   help=f"LAD's pi_old: the uniform pi_0, or the current policy (default: {d.pi_old})")
    p.add_argument("--grpo-pi-old", choices=["fixed", "refresh"], default=d.grpo_pi_old,
                   help=f"GRPO's (and the baselines') pi_old (default: {d.grpo_pi_old}, on-policy)")
    p.add_argument("--grpo-entropy-coef", type=float, default=d.grpo_entropy_coef,
                   help=f"beta of an entropy bonus for GRPO, >= 0 (default: {d.grpo_entropy_coef:g}, none)")
    p.add_argument("--center-advantages", action="store_true", help="subtract A's mean under pi_0 (same pi*, Z > 1)")
    p.add_argument("--exact", action="store_true", help="exact expectation over all arms (LAD and GRPO)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"the same seed, the same numbers (default: {d.seed})")
    p.add_argument("--ablation", choices=ABLATIONS, default=None, help="run one ablation instead of the main figure")
    p.add_argument("--figure", default=None, help="where to write the figure (default: plots/bandit.png or "
                   "plots/ablation_NAME.png (.gif for the animation), '_exact' added with --exact; "
                   f"{QUICK_DIR}/ with --quick)")
    p.add_argument("--metrics-json", default=None, help="where to write the metrics (default: none for the main "
                   "figure, the figure's name with .json for an ablation)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK['steps']} steps at lr {QUICK['lr']:g} for tests and "
                   f"classrooms, written under {QUICK_DIR}/: its numbers mean little; an explicit --steps or --lr wins")
    parsed = p.parse_args(argv)
    for name, value in QUICK.items():  # an explicit flag wins over --quick
        if getattr(parsed, name) is None:
            setattr(parsed, name, value if parsed.quick else getattr(d, name))

    # Every value before any work. Upper limits: Adam moves every logit by about lr per step, so beyond
    # lr = 1 nothing is learned gradually any more (from about 3e37 the step overflows float32); an
    # entropy bonus of 1e6 already leaves GRPO's loss nothing but the bonus (from about 1e37 it overflows).
    for flag, ok, what in [
        ("--steps", parsed.steps >= 1, ">= 1"),
        ("--lr", 0 < parsed.lr <= 1, "a number in (0, 1]"),  # `not 0 < x` also catches NaN
        ("--eta", 0 < parsed.eta < math.inf, "a finite number > 0"),
        ("--group-size", 2 <= parsed.group_size <= 10**6, "in [2, 10**6] (GRPO normalises within the group; "
         "for the exact expectation use --exact)"),
        ("--grpo-entropy-coef", 0 <= parsed.grpo_entropy_coef <= 1e6, "a number in [0, 1e6]"),
        ("--seed", 0 <= parsed.seed < 2**64, "in [0, 2**64), as torch.manual_seed takes it"),
    ]:
        if not ok:
            p.error(f"{flag} must be {what}, got {getattr(parsed, flag[2:].replace('-', '_'))}")
    # exp(A/eta) must stay inside float32 (about e^88.7); a very negative A/eta only underflows to 0.
    largest = float(bandit_advantages(uniform_policy(), parsed.center_advantages).max()) / parsed.eta
    if largest > MAX_LOG_WEIGHT:
        p.error(f"--eta {parsed.eta:g} is too small: A/eta reaches {largest:.0f}, beyond float32's range "
                f"(use 1/eta <= {MAX_LOG_WEIGHT / (largest * parsed.eta):.0f})")
    if parsed.exact and parsed.ablation == "baselines":
        p.error("--exact: the baselines run on sampled groups (Clip-Cov and KL-Cov pick samples of the group)")

    name = "bandit" if parsed.ablation is None else f"ablation_{parsed.ablation.replace('-', '_')}"
    name += "_exact" if parsed.exact else ""
    if parsed.figure is None:
        suffix = "gif" if parsed.ablation == "animation" else "png"
        parsed.figure = f"{QUICK_DIR if parsed.quick else 'plots'}/{name}.{suffix}"
    if parsed.metrics_json is None and parsed.ablation is not None:
        parsed.metrics_json = str(Path(parsed.figure).with_suffix(".json"))
    if parsed.ablation == "animation" and Path(parsed.figure).suffix.lower() != ".gif":
        p.error(f"--figure {parsed.figure}: the animation is written as a GIF, so its name must end in .gif")
    for flag, path, kind in [("--figure", parsed.figure, "figure"), ("--metrics-json", parsed.metrics_json, "file")]:
        problem = path is not None and output_path_problem(path, kind)
        if problem:
            p.error(f"{flag} {path}: {problem}")
    if parsed.metrics_json is not None and Path(parsed.metrics_json).resolve() == Path(parsed.figure).resolve():
        p.error(f"--metrics-json {parsed.metrics_json}: the same file as --figure")
    return Args(**vars(parsed))


def print_table(rows: dict) -> None:
    width = max(len(k) for k in rows) + 2
    print(f"{'':{width}s}{'TV':>7s}{'max arm':>9s}{'entropy':>9s}{'modes':>7s}{'step/ref':>10s}   mass in the modes")
    for key, m in rows.items():
        ratio = f"{m['step_time_ratio']:10.2f}" if "step_time_ratio" in m else " " * 10
        masses = " ".join(f"{x:.2f}" for x in m["mode_mass"])
        print(f"{key:{width}s}{m['tv']:7.3f}{m['max_prob']:9.3f}{m['entropy']:9.3f}{m['modes_recovered']:7d}{ratio}"
              f"   {masses}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 50 numbers per step: threads only add overhead
    # The animation wants ~80 frames (20 with --quick); everything else a point every 10 steps.
    record_every = max(1, args.steps // (20 if args.quick else 80)) if args.ablation == "animation" else 10
    runs_to_do = experiment(args)
    runs = {key: train(method, run_args, record_every, desc=key) for key, method, run_args in runs_to_do}

    metrics = {key: {**summarize(run.pi, run.target), "seconds": round(run.seconds, 3)} for key, run in runs.items()}
    rounds = TIMING_ROUNDS // 6 if args.quick else TIMING_ROUNDS
    step_seconds = step_time_side_by_side(runs_to_do, rounds)
    reference = next((key for key, method, _ in runs_to_do if method == "grpo"), runs_to_do[0][0])
    for key in runs:
        metrics[key]["step_time_ratio"] = round(step_seconds[key] / step_seconds[reference], 3)
    for key, run in runs.items():  # FlowRL: its learned log Z against the true one, now and at pi*
        if run.method == "flowrl":
            metrics[key].update(beta=round(run.beta, 4), log_z=round(run.log_z[-1], 4),
                                true_log_z=round(run.true_log_z[-1], 4),
                                log_z_at_target=round(run.log_z_at_target, 4))
    if args.ablation == "eta":  # each 1/eta has its own target: say how sharp it is
        for key, run in runs.items():
            metrics[key]["target_max_prob"] = round(float(run.target.max()), 4)
            metrics[key]["target_entropy"] = round(float(entropy(run.target)), 4)
    else:  # one target shared by every run
        target = next(iter(runs.values())).target
        metrics["target"] = summarize(target, target)
    print_table(metrics)
    print(f"step/ref: each run's optimiser step over {reference}'s, the runs taking turns (step_time_side_by_side)")

    title = figure_title(runs_to_do)
    if args.ablation == "animation":
        lad, grpo = runs["lad"], runs["grpo"]
        path = animate_distributions(lad.target, {"LAD": lad.snapshots, "GRPO": grpo.snapshots}, lad.steps,
                                     args.figure, title=title, xlabel="arm")
    else:
        title = title if args.ablation is None else f"ablation '{args.ablation}': " + title
        path = draw_runs(runs, {key: metrics[key] for key in runs}, args.ablation, title, args.figure)
    print(f"figure written to {path}")
    if args.metrics_json:
        metrics["step_time"] = {"reference": reference, "rounds": rounds, "statistic": "10th percentile",
                                "seconds": {key: round(s, 7) for key, s in step_seconds.items()}}
        metrics["settings"] = {**asdict(args), "figure": repository_path(args.figure),
                               "metrics_json": repository_path(args.metrics_json)}
        print(f"metrics written to {write_metrics_json(args.metrics_json, metrics)}")
    return metrics


if __name__ == "__main__":
    main()

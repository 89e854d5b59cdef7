"""LAD against GRPO on the 50-arm bandit: the paper's controlled experiment, its bandit figure.

The bandit (bandit_study/task.py): one prompt, 50 answers ("arms"), a policy that is a softmax over
50 logits, uniform at the start (pi_0), and a fixed advantage A(arm) with three modes, chosen so
that at the paper's 1/eta = 4 Lemma 3.1's target pi* = pi_0 exp(A/eta) / Z is a mixture of three
Gaussians. Each method runs 4000 iterations. An iteration samples a group of 64 arms from pi_old,
scores them with A and takes one Adam step (lr 5e-3) on the method's loss:

    method     loss on the group                       pi_old (samples the group, anchors the ratio)
    lad-fixed  lad_loss(log pi, log pi_old, A)         pi_0, frozen: the paper's figure
    lad        the same                                the current policy, refreshed every iteration
    grpo       grpo_loss(log pi, log pi_old, A_hat)    the current policy, refreshed every iteration
               A_hat = (A - mean) / std over the group; the clip, clip_eps 0.2, as in every chapter

The lesson is in which pi_old LAD matches. lad-fixed's pi_old never moves, so its target pi* is one
fixed distribution, and it converges there: all three modes, in their proportions. GRPO climbs E[A]
and piles its mass on the best arm. Refresh LAD's pi_old every iteration (`lad`) and the ratio is 1
whenever the gradient is taken: each iteration is one REINFORCE step with the weight
w(A) = -f'(exp(-A/eta)) in place of the advantage, a step up E_pi[w(A)]. w increases with A (for
JS, w = (softplus(A/eta) - log 2) / 2), so `lad` ends on the best arm too, only more slowly than
GRPO (`--ablation pi-old`). (Targets that
compound, pi_k proportional to pi_0 exp(k A / eta), would describe it only if every refresh were
optimised to its end; one step per refresh matches no target.) The fixed anchor, not the loss alone,
is what makes "match the distribution" an end point here.

The ratio pi / pi_old. For lad and grpo pi_old is the policy that takes the step: the ratio is
exactly 1 when the gradient is taken (log pi_old is log pi itself, detached), GRPO's clip never
acts, and each loss is a policy gradient with its own weight per sample (lad_loss.py). lad-fixed is
off-policy: its ratio pi / pi_0 grows towards pi* / pi_0, about 4 at the heaviest mode, where LAD's
own brake at the target, not a clip, stops it.

`--exact` replaces the sampled group by the exact expectation over all 50 arms, each weighted by
pi_old: no sampling noise, the same end points. For LAD that is the expectation of the sampled
loss. For GRPO it is the large-group limit instead: A is normalised with pi_old's mean and
population std, where a sampled group uses its own mean and std (ddof = 1). The paper's other
baselines (FlowRL, EntAdv, Clip-Cov, KL-Cov), the ablations and the step timing live in
bandit_study/.

Run:  python bandit.py                               the figure, plots/bandit.png
      python bandit.py --methods lad-fixed lad grpo  the refreshed LAD beside them (under runs/)
      python bandit.py --ablation pi-old             an ablation (bandit_study/ablations.py)
      python bandit.py --quick                       400 iterations, for tests and classrooms,
                                                     under runs/quick/ (its numbers mean little)
"""
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch
from tqdm import tqdm

from bandit_study.ablations import ABLATIONS, ablation_runs
from bandit_study.adam import Adam
from bandit_study.baselines import BASELINES, Baseline
from bandit_study.task import (N_ARMS, bandit_advantages, std_at_target, summarise_policy,
                               target_policy, uniform_policy)
from bandit_study.timing import STATISTIC, step_time_side_by_side
from cli.outputs import output_path_problem, repository_path, write_metrics_json
from cli.settings import check, parse_settings, setting
from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from measures.distributions import entropy, total_variation
from plots import animate_distributions
from plots.bandit import draw_runs, figure_title

BANDIT_METHODS = ("lad-fixed", "lad", "grpo") + BASELINES
LAD_METHODS = ("lad-fixed", "lad")
PAPER_FIGURE = ["lad-fixed", "grpo"]  # what --methods trains unless told otherwise
CLIP_EPS = 0.2  # GRPO's clip, as in every chapter
# lad_loss forms exp(A/eta), so A/eta must stay inside float32, whose largest value is about e^88.7.
MAX_LOG_WEIGHT = 80.0
QUICK_DIR = "runs/quick"  # git-ignored: a --quick run never replaces a committed figure


@dataclass
class Settings:
    methods: list[str] = setting(PAPER_FIGURE, "what to train, side by side (an "
                                 "--ablation names its own runs)", choices=BANDIT_METHODS,
                                 distinct=True)
    iterations: int = setting(4000, "sampled groups per method, one Adam step each", low=1,
                              quick=400)
    # Beyond lr = 1 nothing is learned gradually any more: Adam moves each logit by about lr a step.
    lr: float = setting(5e-3, "Adam's learning rate", above=0, high=1, quick=2e-2)
    eta: float = setting(0.25, "the trust region's temperature: the target is pi_old exp(A/eta) "
                         "/ Z (the paper's main setting: 1/eta = 4)", above=0)
    # Checked in __post_init__, not by `choices`: exercise 4 registers a divergence at run time.
    divergence: str = setting("js", "LAD's f-divergence: " + ", ".join(sorted(DIVERGENCES)))
    group_size: int = setting(64, "arms sampled per iteration from pi_old (GRPO normalises within "
                              "the group; for the exact expectation use --exact)", low=2,
                              high=10**6)
    grpo_pi_old: str = setting("refresh", "pi_old of grpo and the baselines: the current policy, "
                               "or pi_0 frozen", choices=["refresh", "fixed"])
    # An entropy bonus of 1e6 already leaves GRPO's loss nothing but the bonus.
    entropy_coef: float = setting(0.0, "weight of an entropy bonus added to the loss of grpo and "
                                  "the baselines (0: none)", low=0, high=1e6)
    flowrl_reward: str = setting("normalised", "FlowRL's reward: GRPO's group-normalised A (as "
                                 "published) or the raw A", choices=["normalised", "raw"])
    centre_advantages: bool = setting(False, "subtract A's mean under pi_0 (the same pi*, Z > 1)")
    exact: bool = setting(False, "the exact expectation over all 50 arms instead of a sampled "
                          "group (lad-fixed, lad, grpo)")
    seed: int = setting(0, "the same seed, the same numbers", low=0, below=2**64)
    ablation: str | None = setting(None, "run one ablation instead of --methods",
                                   choices=ABLATIONS)
    figure: str | None = setting(None, "where to write the figure",
                                 default_text="plots/bandit.png, or plots/ablation_NAME.png (.gif "
                                 "for the animation); '_exact' added with --exact; under runs/ "
                                 f"when another setting changes, under {QUICK_DIR}/ with --quick")
    metrics_json: str | None = setting(None, "where to write the metrics", default_text="none for "
                                       "--methods, the figure's name with .json for an ablation")
    timing_rounds: int = setting(500, "steps each run takes in the step timing, the runs taking "
                                 "turns, when a metrics file is written (0: no timing)", low=0,
                                 quick=80)
    quick: bool = setting(False, "a short run for tests and classrooms, written under "
                          f"{QUICK_DIR}/: its numbers mean little")

    def default_folder(self) -> str:
        """plots/ for the committed experiments (every setting that changes the numbers at its
        default), runs/ otherwise: no other command overwrites a committed figure."""
        if self.quick:
            return QUICK_DIR
        free = {"figure", "metrics_json", "timing_rounds", "exact", "ablation", "quick"}
        default = {f.name: f.default_factory() if f.default is MISSING else f.default
                   for f in fields(self)}
        changed = [name for name in default if name not in free
                   and getattr(self, name) != default[name]]
        return "runs" if changed else "plots"

    def __post_init__(self):
        check(self)
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"--divergence must be one of {', '.join(sorted(DIVERGENCES))}, "
                             f"got {self.divergence}")
        A = bandit_advantages(uniform_policy(), self.centre_advantages)
        largest = float(A.max()) / self.eta
        if largest > MAX_LOG_WEIGHT:  # a very negative A/eta only underflows exp to 0: harmless
            raise ValueError(f"--eta {self.eta:g} is too small: A/eta reaches {largest:.0f}, "
                             "beyond float32's range (use 1/eta <= "
                             f"{MAX_LOG_WEIGHT / float(A.max()):.0f})")
        if self.ablation is not None and self.methods != PAPER_FIGURE:
            raise ValueError(f"--methods {' '.join(self.methods)}: --ablation {self.ablation} "
                             "names its own runs")
        runs_baselines = self.ablation == "baselines" or (
            self.ablation is None and any(m in BASELINES for m in self.methods))
        if self.exact and runs_baselines:
            raise ValueError("--exact: the baselines run on sampled groups only (Clip-Cov and "
                             "KL-Cov pick samples of the group)")
        name = "bandit" if self.ablation is None else "ablation_" + self.ablation.replace("-", "_")
        name += "_exact" if self.exact else ""
        suffix = ".gif" if self.ablation == "animation" else ".png"
        self.figure = self.figure or f"{self.default_folder()}/{name}{suffix}"
        if self.metrics_json is None and self.ablation is not None:
            self.metrics_json = str(Path(self.figure).with_suffix(".json"))
        if self.ablation == "animation" and Path(self.figure).suffix.lower() != ".gif":
            raise ValueError(f"--figure {self.figure}: the animation is written as a GIF, so its "
                             "name must end in .gif")
        for flag, path, kind in [("--figure", self.figure, "figure"),
                                 ("--metrics-json", self.metrics_json, "file")]:
            problem = path is not None and output_path_problem(path, kind)
            if problem:
                raise ValueError(f"{flag} {path}: {problem}")
        if self.metrics_json and Path(self.metrics_json).resolve() == Path(self.figure).resolve():
            raise ValueError(f"--metrics-json {self.metrics_json}: the same file as --figure")


# ---------------------------------------------------------------------------------------------
# The algorithm: one iteration's loss, and the learner that samples, scores and steps.
# ---------------------------------------------------------------------------------------------

def step_loss(method: str, logits, pi_old, advantages, arms, settings: Settings,
              baseline: Baseline | None = None) -> torch.Tensor:
    """The loss of one iteration, a scalar. logits [50]; pi_old [50], or None for the current policy
    (on-policy); advantages A [50]; arms, the sampled group [group_size], or None for the exact
    expectation over every arm weighted by pi_old (a sampled group weighs each sample 1/group_size;
    LAD's exact loss is the sampled one's expectation, GRPO's normalises A with pi_old's mean and
    population std, the large-group limit of the group's); baseline: what a baseline method needs
    (bandit_study/baselines.py)."""
    logp_all = torch.log_softmax(logits, dim=-1)
    if pi_old is None:  # log pi_old is log pi itself, a constant: the ratio is exactly 1
        pi_old, logp_old_all = logp_all.detach().exp(), logp_all.detach()
    else:
        logp_old_all = torch.log(pi_old)
    if arms is None:
        if method not in LAD_METHODS + ("grpo",):
            raise ValueError(f"{method} runs on sampled groups only (--exact is for LAD and GRPO)")
        logp, logp_old, A = logp_all, logp_old_all, advantages
    else:
        logp, logp_old, A = logp_all[arms], logp_old_all[arms], advantages[arms]

    if method in LAD_METHODS:  # match pi* = pi_old exp(A/eta) / Z (Lemma 3.2)
        per_sample = lad_loss(logp, logp_old, A, eta=settings.eta, divergence=settings.divergence,
                              reduction="none")
    else:  # GRPO's A_hat: A normalised over the group (exact: with pi_old's mean and std)
        if arms is None:
            mean = (pi_old * A).sum()
            A_hat = (A - mean) / ((pi_old * (A - mean) ** 2).sum().sqrt() + 1e-6)
        else:
            A_hat = group_advantages(A, group_size=len(arms))
        if method == "grpo":  # maximise E[ratio * A_hat], clipped
            per_sample = grpo_loss(logp, logp_old, A_hat, clip_eps=CLIP_EPS, reduction="none")
        else:
            per_sample = baseline.loss(logp, logp_old, A, A_hat, logp_all, arms)
    loss = per_sample.mean() if arms is not None else (pi_old * per_sample).sum()
    if settings.entropy_coef and method not in LAD_METHODS:  # exact over the 50 arms
        loss = loss - settings.entropy_coef * entropy(logp_all.exp())
    return loss


class Learner:
    """What one method trains: 50 logits (and a baseline's own parameters), their Adam, and the
    generator that draws its arms, seeded by settings.seed: every method meets the same draws of
    its own policy."""

    def __init__(self, method: str, settings: Settings):
        if method not in BANDIT_METHODS:
            raise ValueError(f"method must be one of {BANDIT_METHODS}, got {method!r}")
        self.method, self.settings = method, settings
        self.pi_0 = uniform_policy()
        self.advantages = bandit_advantages(self.pi_0, centre=settings.centre_advantages)
        self.target = target_policy(self.pi_0, self.advantages, settings.eta)
        # pi_0 is pi_old for lad-fixed, and for grpo and the baselines with --grpo-pi-old fixed.
        self.pi_old_fixed = method == "lad-fixed" or (
            method not in LAD_METHODS and settings.grpo_pi_old == "fixed")
        self.arms_gen = torch.Generator().manual_seed(settings.seed)
        self.logits = torch.zeros(N_ARMS, requires_grad=True)
        self.baseline = Baseline(method, settings, CLIP_EPS) if method in BASELINES else None
        extra = self.baseline.parameters if self.baseline else []  # FlowRL's log Z
        self.optimizer = Adam([self.logits] + extra, lr=settings.lr)

    def policy(self) -> torch.Tensor:
        return torch.softmax(self.logits.detach(), dim=-1)

    def step(self) -> None:
        """One iteration: a group drawn from pi_old, the method's loss, one Adam step."""
        pi_old = self.pi_0 if self.pi_old_fixed else None  # None: the current policy
        arms = None
        if not self.settings.exact:
            drawn_from = self.pi_0 if self.pi_old_fixed else self.policy()
            arms = torch.multinomial(drawn_from, self.settings.group_size, replacement=True,
                                     generator=self.arms_gen)
        loss = step_loss(self.method, self.logits, pi_old, self.advantages, arms, self.settings,
                         self.baseline)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


@dataclass
class Run:
    """One method's training: its final policy, and its history, recorded every few iterations."""
    method: str
    target: torch.Tensor  # pi* for this run's eta [50]
    pi: torch.Tensor | None = None  # the final policy [50]
    iterations: list = field(default_factory=list)  # the iterations at which the history was taken
    tv: list = field(default_factory=list)  # TV to pi*
    entropy: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # the policy at each recorded iteration
    log_z: list = field(default_factory=list)  # FlowRL: its learned log Z, and the true one
    true_log_z: list = field(default_factory=list)
    baseline_metrics: dict = field(default_factory=dict)  # FlowRL: its beta and log Z at the end
    seconds: float = 0.0

    def record(self, iteration: int, learner: Learner) -> None:
        pi = learner.policy()
        self.iterations.append(iteration)
        self.tv.append(float(total_variation(pi, self.target)))
        self.entropy.append(float(entropy(pi)))
        self.snapshots.append(pi)
        if learner.method == "flowrl":
            self.log_z.append(float(learner.baseline.log_z.detach()))
            self.true_log_z.append(learner.baseline.true_log_z(pi))


def train(method: str, settings: Settings, record_every: int = 10, progress: bool = True,
          desc: str | None = None) -> Run:
    learner = Learner(method, settings)
    run = Run(method, target=learner.target)
    start = time.perf_counter()
    for iteration in tqdm(range(settings.iterations), desc=desc or method, disable=not progress,
                          leave=False):
        if iteration % record_every == 0:
            run.record(iteration, learner)
        learner.step()
    run.record(settings.iterations, learner)
    run.pi = learner.policy()
    run.seconds = time.perf_counter() - start
    if learner.baseline:
        run.baseline_metrics = learner.baseline.metrics(run.pi, learner.target)
    return run


# ---------------------------------------------------------------------------------------------
# The experiment: what to run, then a table, a figure and a metrics file.
# ---------------------------------------------------------------------------------------------

def experiment(settings: Settings) -> list[tuple[str, str, Settings]]:
    """What to run, as (key, method, settings): --methods side by side, or one ablation's runs."""
    if settings.ablation is None:
        return [(method, method, settings) for method in settings.methods]
    std = std_at_target(settings.eta, settings.centre_advantages)
    return ablation_runs(settings.ablation, settings, std)


def print_table(rows: dict) -> None:
    width = max(len(k) for k in rows) + 2
    print(f"{'':{width}s}{'TV':>7s}{'max arm':>9s}{'entropy':>9s}{'modes':>7s}{'step/ref':>10s}"
          "   mass in the modes")
    for key, m in rows.items():
        ratio = f"{m['step_time_ratio']:10.2f}" if "step_time_ratio" in m else " " * 10
        masses = " ".join(f"{x:.2f}" for x in m["mode_mass"])
        print(f"{key:{width}s}{m['tv']:7.3f}{m['max_prob']:9.3f}{m['entropy']:9.3f}"
              f"{m['modes_recovered']:7d}{ratio}   {masses}")


def main(argv=None) -> dict:
    settings = parse_settings(Settings, argv, __doc__.split("\n")[0])
    torch.set_num_threads(1)  # 50 numbers per step: threads only add overhead
    runs_to_do = experiment(settings)
    # The animation wants ~80 frames (20 with --quick); everything else a point every 10 iterations.
    n_frames = 20 if settings.quick else 80
    animation = settings.ablation == "animation"
    record_every = max(1, settings.iterations // n_frames) if animation else 10
    runs = {key: train(method, s, record_every, desc=key) for key, method, s in runs_to_do}

    metrics = {key: {**summarise_policy(run.pi, run.target), "seconds": round(run.seconds, 3),
                     **run.baseline_metrics} for key, run in runs.items()}
    if settings.ablation == "eta":  # each 1/eta has its own target: say how sharp it is
        for key, run in runs.items():
            metrics[key]["target_max_prob"] = round(float(run.target.max()), 4)
            metrics[key]["target_entropy"] = round(float(entropy(run.target)), 4)
    else:  # one target shared by every run
        target = next(iter(runs.values())).target
        metrics["target"] = summarise_policy(target, target)
    relative_to = next((key for key, method, _ in runs_to_do if method == "grpo"),
                       runs_to_do[0][0])
    if settings.metrics_json and settings.timing_rounds:
        fresh = {key: Learner(method, s) for key, method, s in runs_to_do}
        step_seconds = step_time_side_by_side(fresh, settings.timing_rounds)
        for key in runs:
            ratio = step_seconds[key] / step_seconds[relative_to]
            metrics[key]["step_time_ratio"] = round(ratio, 3)
        metrics["step_time"] = {"relative_to": relative_to, "rounds": settings.timing_rounds,
                                "statistic": STATISTIC,
                                "seconds": {key: round(s, 7) for key, s in step_seconds.items()}}
    print_table({key: m for key, m in metrics.items() if key != "step_time"})
    if "step_time" in metrics:
        print(f"step/ref: each run's optimiser step over {relative_to}'s, the runs taking turns")
    if settings.ablation is None and "lad" not in settings.methods:
        print("LAD with pi_old refreshed every iteration collapses too: add it with "
              "--methods lad-fixed lad grpo, or see --ablation pi-old")

    title = figure_title(runs_to_do, settings.ablation)
    if settings.ablation == "animation":
        frames = {key: run.snapshots for key, run in runs.items()}
        path = animate_distributions(runs["lad-fixed"].target, frames, runs["lad-fixed"].iterations,
                                     settings.figure, title=title, xlabel="arm")
    else:
        path = draw_runs(runs, {key: metrics[key] for key in runs}, settings.ablation, title,
                         settings.figure)
    print(f"figure written to {path}")
    if settings.metrics_json:
        metrics["settings"] = {**asdict(settings), "figure": repository_path(settings.figure),
                               "metrics_json": repository_path(settings.metrics_json)}
        print(f"metrics written to {write_metrics_json(settings.metrics_json, metrics)}")
    return metrics


if __name__ == "__main__":
    main()

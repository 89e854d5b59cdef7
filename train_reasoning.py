"""GRPO vs LAD on a small GPT, with and without an anchor to the SFT policy.

The bandit (bandit.py) showed LAD matching a multi-modal target where GRPO collapses onto one arm.
Here the same losses train a language model, tiny_lm.GPT, on a task with many equally correct
answers (arithmetic.py: write N as a + b), and we ask the paper's question for LLMs: does LAD keep
the alternative correct answers alive, and can any variant reach the target

    pi*(y|x) = pi_sft(y|x) * exp(A(y)/eta) / Z(x),

Lemma 3.1's trust-region step from the SFT policy? Among the correct answers pi* keeps the SFT
policy's shape (every correct answer has the same A), and it moves almost all the mass onto them.
The variants (grpo, lad, grpo-kl, lad-kl, lad-fixed), what each one's loss optimises and when the two
losses differ at all are the subject of reasoning/methods.py: read it first.

The pipeline, for each seed:
  1. SFT warm start (sft.py): cross-entropy on correct answers and near misses, cached under --run-dir.
  2. RL: each iteration (one rollout) samples G answers for each of 32 training prompts from pi_old,
     the verifier gives reward 1 or 0, group_advantages normalises it within each group, and the
     variant's loss takes --epochs passes over the rollout, each cut into --minibatches mini-batches
     of whole groups, one Adam step per mini-batch (the default, 1 and 1: one step per rollout).
  3. Held-out evaluation every few iterations (evaluation.py): sampled accuracy, distinct correct
     answers, how the wrong samples are wrong, and exactly (every correct answer enumerated):
     P(correct), the effective number of correct answers exp(H), and the TV distance to pi*.

Run:  python train_reasoning.py                                    (one seed, the five variants)
      python train_reasoning.py --seed 0 1 2 3 4 --metrics-json plots/reasoning_metrics.json
                                                                   (the README's table and figures)
      python train_reasoning.py --quick                            (seconds; its numbers mean little)
"""
import argparse
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reasoning.arithmetic import SumTask
from reasoning.evaluation import (ACCURACY_LEVELS, aggregate_seeds, answer_probabilities, diversity_frontier, evaluate,
                        exact_metrics, large_group_advantages, largest_accuracy_drop, print_summary, targets_of,
                        tv_to_target)
from grpo_loss import group_advantages
from kl_penalty import KL_ESTIMATORS
from lad_loss import DIVERGENCES
from cli.outputs import output_path_problem, repository_path, write_metrics_json
from cli.settings import number
from plots.reasoning import draw_answers, draw_training
from reasoning.sft import sft_checkpoint
from tiny_lm import GPT
from reasoning.methods import BASELINES, METHODS, USES_REFERENCE, method_loss

# What --quick shrinks, unless given explicitly; the full-run values are Args' defaults.
QUICK = {"n_embd": 64, "sft_steps": 300, "sft_lr": 3e-3, "iterations": 12, "prompts_per_iteration": 16,
         "eval_every": 4, "eval_samples": 16, "out_dir": "runs/quick"}


@dataclass
class Args:
    seed: list[int] = field(default_factory=lambda: [0])  # one or more seeds; several give mean +- std
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # any of METHODS and BASELINES
    # the model (tiny_lm.GPTConfig)
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 96
    # stage 1: SFT warm start
    sft_steps: int = 1000
    sft_batch_size: int = 256
    sft_lr: float = 1e-3
    sft_correct_fraction: float = 0.5  # share of correct answers in the SFT data
    # stage 2: RL, identical for every variant
    iterations: int = 200  # rollouts
    prompts_per_iteration: int = 32
    group_size: int = 8  # G completions per prompt
    minibatches: int = 1  # optimiser steps per pass over a rollout, each on a mini-batch of whole groups
    epochs: int = 1  # passes over each rollout
    lr: float = 2e-4  # Adam, the same for every variant
    advantages: str = "group"  # "group": normalised in each sampled group; "sft" or "sft-normalised": sft_advantages
    clip_eps: float = 0.2  # GRPO's trust region
    eta: float = 0.25  # LAD's trust-region temperature (the paper: 1/eta = 4)
    divergence: str = "js"  # LAD's f-divergence
    lad_ratio: str = "sequence"  # "sequence" (Lemma 3.2's form) or "token": see reasoning/methods.py
    kl_estimator: str = "k2"  # the -kl anchors' penalty: "k2" follows KL(pi || pi_sft), "k3" KL(pi_sft || pi)
    kl_coef: float | None = None  # beta of the -kl variants; None means eta (k2's optimum is then pi*)
    flowrl_beta: float | None = None  # FlowRL's inverse temperature; None means 1/eta, LAD's
    log_z_lr: float = 0.1  # Adam's learning rate for FlowRL's per-prompt log Z (see train_rl)
    # evaluation
    eval_samples: int = 32  # k completions per held-out prompt
    eval_every: int = 10  # iterations between evaluations during RL
    match_accuracy: float = 0.6  # report each variant's diversity at this held-out accuracy (its frontier)
    # where things go
    out_dir: str = "plots"  # figures
    metrics_json: str | None = None
    run_dir: str = "runs"  # the cached SFT checkpoints
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    threads: int = 1  # torch CPU threads per process: one is fastest for a model this small, and stays fast on a busy machine
    workers: int = 2  # processes that run seeds and variants side by side
    quick: bool = False  # a smaller model and budget: the whole pipeline in seconds

    def __post_init__(self):
        if self.kl_coef is None:
            self.kl_coef = self.eta  # beta = eta: k2's optimum pi_sft exp(A/beta) / Z is LAD's pi*
        if self.flowrl_beta is None:
            self.flowrl_beta = 1 / self.eta  # LAD's temperature per unit of r_hat; not pi*: see reasoning/methods.py


# ---------------------------------------------------------------------------------------------
# Stage 2: RL. One loop for every variant, so that they differ in the loss and the anchor only.
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def sample_batch(sampler: GPT, task: SumTask, args: Args, prompt_gen, sample_gen, reference: GPT | None = None,
                 fixed_advantages: dict | None = None) -> dict:
    """One rollout: G completions for each of prompts_per_iteration training prompts, sampled by
    `sampler` (pi_old of this rollout), scored, with their advantages. Rows come in consecutive groups
    of G per prompt. With a `reference` model, also its log-probabilities of the same tokens (the KL
    anchor, fixed for the rollout). With `fixed_advantages` (n -> (A+, A-), sft_advantages), a correct
    completion of prompt n gets A+ and any other A-, instead of the group-normalised rewards."""
    picks = torch.randint(len(task.train_n), (args.prompts_per_iteration,), generator=prompt_gen)
    ns = [task.train_n[i] for i in picks.tolist()]
    prompts = task.prompts(ns).to(args.device)
    completions, _, mask = sampler.sample(
        prompts, task.MAX_COMPLETION, task.end_token, num_samples=args.group_size, generator=sample_gen
    )
    prompts = prompts.repeat_interleave(args.group_size, dim=0)  # one row per completion, groups consecutive
    # log pi_old from the same forward pass the loss runs, not sample's own log-probabilities, which
    # differ from it in the last bits: then the first step's ratio is exactly 1 (KL-Cov's |log ratio|
    # penalty would otherwise turn the rounding into a gradient).
    logp_old = sampler.completion_logprobs(prompts, completions, mask)
    texts = [task.decode(row) for row in completions.tolist()]
    n_of_row = [ns[i // args.group_size] for i in range(len(texts))]
    rewards = torch.tensor([float(task.is_correct(n, t)) for n, t in zip(n_of_row, texts)])
    if fixed_advantages is None:
        advantages = group_advantages(rewards, args.group_size)
    else:
        advantages = torch.tensor([fixed_advantages[n][0 if r else 1] for n, r in zip(n_of_row, rewards.tolist())])
    batch = {"ns": ns, "prompts": prompts, "completions": completions, "mask": mask, "logp_old": logp_old,
             "rewards": rewards, "advantages": advantages.to(args.device),
             "prompt_index": picks.repeat_interleave(args.group_size)}  # into task.train_n, for log Z
    if reference is not None:
        batch["logp_ref"] = reference.completion_logprobs(prompts, completions, mask)
    return batch


def sft_advantages(sft_model: GPT, task: SumTask, args: Args) -> dict:
    """n -> (A+, A-) for every training prompt: large_group_advantages of the SFT policy's exact
    P(correct), the A that defines pi* (--advantages sft). With --advantages sft-normalised, minus
    eta log Z(n), Z(n) = E_sft[exp(A/eta)]: the same pi* (a constant per prompt changes no
    softmax), but Z = 1, so that at the optimum of Lemma 3.2's loss x = 1 and -f'(x) = 0 for JS,
    instead of a large weight -f'(1/Z) that cancels only on average (the bandit's noise floor)."""
    advantages = {}
    for n, p in zip(task.train_n, answer_probabilities(sft_model, task, task.train_n)):
        success = min(max(float(p.sum()), 1e-12), 1 - 1e-12)
        a_plus, a_minus = large_group_advantages(success)
        if args.advantages == "sft-normalised":
            log_z = float(np.logaddexp(math.log(success) + a_plus / args.eta, math.log1p(-success) + a_minus / args.eta))
            a_plus, a_minus = a_plus - args.eta * log_z, a_minus - args.eta * log_z
        advantages[n] = (a_plus, a_minus)
    return advantages


def rl_models(method: str, sft_path: Path, args: Args) -> tuple[GPT, GPT, GPT | None]:
    """(the policy being trained, the model that samples each batch, the reference or None).
    Every variant starts from the SFT checkpoint; lad-fixed samples from a frozen copy of it, and the
    anchored variants score each batch with one (USES_REFERENCE)."""
    model = GPT.load(sft_path, map_location=args.device)
    frozen = None
    if method == "lad-fixed" or method in USES_REFERENCE:
        frozen = GPT.load(sft_path, map_location=args.device).requires_grad_(False)
    sampler = frozen if method == "lad-fixed" else model
    return model, sampler, frozen if method in USES_REFERENCE else None


def minibatches(batch: dict, args: Args, generator: torch.Generator) -> list[dict]:
    """The rollout cut into args.minibatches mini-batches of whole groups (group advantages need
    their group), in an order shuffled by `generator`; one mini-batch is the whole rollout as it is."""
    if args.minibatches == 1:
        return [batch]
    G = args.group_size
    order = torch.randperm(len(batch["ns"]), generator=generator)
    rows = (order.unsqueeze(1) * G + torch.arange(G)).reshape(-1)  # the rows of each group, in order
    tensors = [k for k, v in batch.items() if isinstance(v, torch.Tensor)]
    return [{k: batch[k][chunk] for k in tensors} for chunk in rows.chunk(args.minibatches)]


def rl_step(method: str, model: GPT, optimizer, batch: dict, args: Args, shuffle_gen: torch.Generator,
            log_z: torch.Tensor | None = None, cov_gen: torch.Generator | None = None) -> list[dict]:
    """args.epochs passes over one rollout, one optimiser step per mini-batch; pi_old (and pi_sft) stay
    fixed meanwhile. Returns each step's statistics (methods.method_loss). FlowRL also takes its
    per-prompt log Z (trained by the same optimiser), Clip-Cov a generator for its random tokens."""
    stats = []
    for _ in range(args.epochs):
        for mb in minibatches(batch, args, shuffle_gen):
            logp, entropy = model.completion_logprobs(mb["prompts"], mb["completions"], mb["mask"], entropy=True)
            if (method == "flowrl") != (log_z is not None):
                raise ValueError("log_z is FlowRL's, and FlowRL needs it")
            rows_log_z = None if log_z is None else log_z[mb["prompt_index"]]
            loss, step_stats = method_loss(method, logp, mb, args, entropy, rows_log_z, cov_gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stats.append(step_stats)
    return stats


def train_rl(method: str, task: SumTask, args: Args, seed: int, sft_path: Path) -> dict:
    """RL from the seed's SFT checkpoint. Returns the trained model, its learning curves and timing."""
    sft_model = GPT.load(sft_path, map_location=args.device)
    targets = targets_of(sft_model, task, task.heldout_n, args.eta)
    fixed_advantages = None if args.advantages == "group" else sft_advantages(sft_model, task, args)
    model, sampler, reference = rl_models(method, sft_path, args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    log_z = None
    if method == "flowrl":
        # FlowRL's log Z(x): one learned scalar per training prompt (the authors use a head on the
        # prompt's hidden state; with a fixed set of 66 prompts a table is the same thing, and held-out
        # prompts never need it). It must travel about beta * A+ (several units) within the run: at
        # the policy's learning rate Adam would move it 0.04 in 200 steps, hence its own.
        log_z = torch.zeros(len(task.train_n), device=args.device, requires_grad=True)
        optimizer.add_param_group({"params": [log_z], "lr": args.log_z_lr})
    # Separate random streams for prompts, samples, mini-batch order and Clip-Cov's choice: every
    # variant sees the same prompt sequence.
    prompt_gen = torch.Generator().manual_seed(seed)
    sample_gen = torch.Generator(device=args.device).manual_seed(seed + 1)
    shuffle_gen = torch.Generator().manual_seed(seed + 2)
    cov_gen = torch.Generator().manual_seed(seed + 3)
    history = {"iteration": [], "reward": [], "evals": [], "steps": {}}
    seconds = []
    for it in tqdm(range(args.iterations + 1), desc=f"{method} seed {seed}", leave=False, disable=args.workers > 1):
        if it % args.eval_every == 0 or it == args.iterations:
            metrics = evaluate(model, task, task.heldout_n, args.eval_samples, seed, targets, sft_model)
            history["evals"].append({"iteration": it, **metrics})
        if it == args.iterations:
            break
        start = time.perf_counter()  # time sampling + updates, not the evaluation
        batch = sample_batch(sampler, task, args, prompt_gen, sample_gen, reference, fixed_advantages)
        stats = rl_step(method, model, optimizer, batch, args, shuffle_gen, log_z, cov_gen)
        seconds.append(time.perf_counter() - start)
        history["iteration"].append(it)
        history["reward"].append(float(batch["rewards"].mean()))  # lad-fixed: the SFT sampler's reward
        for name in stats[0]:  # each statistic's mean over this rollout's steps
            history["steps"].setdefault(name, []).append(float(np.mean([s[name] for s in stats])))
    final = history["evals"][-1]
    print(f"{method} seed {seed}: held-out P(correct) {final['exact_accuracy']:.3f}, "
          f"effective correct {final['effective_correct']:.1f}, TV to pi* {final['tv_to_target']:.3f}")
    # The median, not the mean: on a shared machine a few iterations can stall for unrelated reasons.
    return {"model": model, "history": history, "seconds_per_iteration": float(np.median(seconds))}


def run_jobs(function, jobs: list, args: Args) -> list:
    """function(*job) for every job, results in the order of `jobs`. With --workers > 1, in that many
    processes, each on one thread: the runs are independent, so this is the parallelism that scales
    on a small CPU (one process per core, none waiting for another), and each job's numbers do not
    depend on it."""
    if args.workers == 1 or len(jobs) == 1 or args.device != "cpu":  # one GPU: one process
        return [function(*job) for job in jobs]
    context = multiprocessing.get_context("fork")  # the children inherit the task object as it is
    with ProcessPoolExecutor(min(args.workers, len(jobs)), mp_context=context,
                             initializer=torch.set_num_threads, initargs=(args.threads,)) as pool:
        return list(pool.map(function, *zip(*jobs)))  # map returns in submission order


def summarise_seed(task: SumTask, args: Args, seed: int, sft_path: Path, runs: dict) -> dict:
    """The SFT start's evaluation, and every variant's last evaluation with its frontier at
    --match-accuracy, how often its clip or brake acted, and its exact metrics on the training prompts."""
    sft_model = GPT.load(sft_path, map_location=args.device)
    targets = targets_of(sft_model, task, task.heldout_n, args.eta)
    train_targets = targets_of(sft_model, task, task.train_n, args.eta)
    evals = {"sft": [evaluate(sft_model, task, task.heldout_n, args.eval_samples, seed, targets, sft_model)]}
    evals.update({m: r["history"]["evals"] for m, r in runs.items()})
    models = {"sft": sft_model, **{m: r["model"] for m, r in runs.items()}}
    final = {}
    for name, history in evals.items():
        at_level = diversity_frontier(history, [args.match_accuracy])[0]
        final[name] = {**history[-1], "effective_at_accuracy": None if np.isnan(at_level) else float(at_level),
                       "largest_accuracy_drop": largest_accuracy_drop(history)}
        final[name].pop("iteration", None)
        if name != "sft":
            final[name].update({k: float(np.mean(v)) for k, v in runs[name]["history"]["steps"].items()})
        # The same exact metrics on the training prompts: does RL treat the prompts it trains on differently?
        train = exact_metrics(models[name], task, task.train_n, train_targets)
        final[name].update({f"train_{k}": v for k, v in train.items()})
    return {"sft_model": sft_model, "runs": runs, "final": final, "targets": targets}


# ---------------------------------------------------------------------------------------------
# Command line: every check happens here, before any training.
# ---------------------------------------------------------------------------------------------

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where it is None: those help texts say it in words."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None) -> Args:
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    count, positive, fraction = number(int, low=1), number(float, above=0), number(float, above=0, below=1)
    quick = lambda name, text: f"{text} (default {getattr(d, name)}, with --quick {QUICK[name]})"
    add = p.add_argument
    add("--seed", type=number(int, low=0), nargs="+", default=d.seed,
        help="one or more seeds; each trains its own SFT start and every variant from it")
    add("--methods", nargs="+", choices=METHODS + BASELINES, default=d.methods, metavar="METHOD",
        help=f"which variants to run, any of: {' '.join(METHODS + BASELINES)}")
    add("--n-layer", type=count, default=d.n_layer, help="transformer blocks")
    add("--n-head", type=count, default=d.n_head, help="attention heads per block")
    add("--n-embd", type=count, help=quick("n_embd", "embedding width"))
    add("--sft-steps", type=count, help=quick("sft_steps", "SFT optimiser steps"))
    add("--sft-batch-size", type=count, default=d.sft_batch_size, help="SFT examples per step")
    add("--sft-lr", type=positive, help=quick("sft_lr", "SFT AdamW learning rate"))
    add("--sft-correct-fraction", type=fraction, default=d.sft_correct_fraction,
        help="share of correct answers in the SFT data")
    add("--iterations", type=count, help=quick("iterations", "RL iterations (rollouts)"))
    add("--prompts-per-iteration", type=count, help=quick("prompts_per_iteration", "training prompts per rollout"))
    add("--group-size", type=number(int, low=2), default=d.group_size, help="G, completions per prompt (>= 2)")
    add("--minibatches", type=count, default=d.minibatches,
        help="mini-batches of whole groups per pass over a rollout, one optimiser step each")
    add("--epochs", type=count, default=d.epochs, help="passes over each rollout")
    add("--lr", type=positive, default=d.lr, help="RL Adam learning rate (every variant)")
    add("--advantages", choices=["group", "sft", "sft-normalised"], default=d.advantages,
        help="group: normalised within each sampled group; sft: from the SFT policy's exact success rate on "
             "the prompt; sft-normalised: the same minus eta log Z, so that Z = 1")
    add("--clip-eps", type=positive, default=d.clip_eps, help="GRPO's clip")
    add("--eta", type=positive, default=d.eta, help="LAD's temperature")
    add("--divergence", choices=sorted(DIVERGENCES), default=d.divergence, help="LAD's f-divergence")
    add("--lad-ratio", choices=["sequence", "token"], default=d.lad_ratio,
        help="LAD's ratio per completion (Lemma 3.2's form) or per token")
    add("--kl-estimator", choices=sorted(KL_ESTIMATORS), default=d.kl_estimator,
        help="the -kl penalty: k2 on each completion (follows KL(pi || pi_sft)) or k3 per token (KL(pi_sft || pi))")
    add("--kl-coef", type=number(float, low=0), help="beta of the -kl variants' penalty (default: --eta)")
    add("--flowrl-beta", type=positive, help="FlowRL's inverse temperature of r_hat (default: 1 / --eta)")
    add("--log-z-lr", type=positive, default=d.log_z_lr, help="Adam learning rate of FlowRL's per-prompt log Z")
    add("--eval-samples", type=number(int, low=16), help=quick("eval_samples", "k samples per held-out prompt (>= 16)"))
    add("--eval-every", type=count, help=quick("eval_every", "RL iterations between evaluations"))
    add("--match-accuracy", type=fraction, default=d.match_accuracy,
        help="held-out accuracy at which the table compares diversity")
    add("--out-dir", help=quick("out_dir", "where the figures go"))
    add("--metrics-json", help="write the metrics to this JSON file (default: none)")
    add("--run-dir", default=d.run_dir, help="where the SFT checkpoints are cached")
    add("--device", default=d.device, help="cpu or cuda")
    add("--threads", type=count, default=d.threads,
        help="torch CPU threads per process; 1 is fastest for this model, idle or busy (README)")
    add("--workers", type=count, default=d.workers,
        help="processes running the SFT starts and the RL runs side by side (numbers do not depend on it)")
    add("--quick", action="store_true",
        help="a small model and budget, for tests and classrooms: seconds, and numbers that mean little")
    parsed = p.parse_args(argv)
    for name, value in QUICK.items():  # an explicit flag wins over --quick
        if getattr(parsed, name) is None:
            setattr(parsed, name, value if parsed.quick else getattr(d, name))

    # The checks that involve several flags.
    if parsed.n_embd % parsed.n_head:
        p.error("--n-embd must be a multiple of --n-head")
    # The largest group-normalised advantage is (G - 1) / sqrt(G) (one success in the group), and
    # lad_loss forms exp(A/eta): keep it well inside float32 (exp(88) is its largest value).
    if (parsed.group_size - 1) / parsed.group_size**0.5 / parsed.eta > 80:
        p.error(f"--eta {parsed.eta} is too small for --group-size {parsed.group_size}: A/eta would overflow float32")
    if parsed.prompts_per_iteration % parsed.minibatches:
        p.error(f"--minibatches {parsed.minibatches} must divide --prompts-per-iteration "
                f"{parsed.prompts_per_iteration}: a mini-batch holds whole groups")
    if parsed.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {parsed.device}: CUDA is not available here")
    for flag in ("seed", "methods"):
        if len(set(getattr(parsed, flag))) != len(getattr(parsed, flag)):
            p.error(f"--{flag} values must be distinct")
    for flag, kind in [("out_dir", "dir"), ("run_dir", "dir"), ("metrics_json", "file")]:
        value = getattr(parsed, flag)
        problem = value is not None and output_path_problem(value, kind)
        if problem:
            p.error(f"--{flag.replace('_', '-')} {value}: {problem}")
    return Args(**vars(parsed))


def main(argv=None, task: SumTask | None = None) -> dict:
    """Run the pipeline. `task` swaps in a variant of the arithmetic task (a SumTask subclass with
    its own verifier, say); the command line always uses SumTask."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = task or SumTask()
    # The checkpoints' paths are fixed here, once: the cache key reads the code's files.
    sft_paths = run_jobs(sft_checkpoint, [(task, args, seed) for seed in args.seed], args)
    jobs = [(method, task, args, seed, path) for seed, path in zip(args.seed, sft_paths) for method in args.methods]
    runs = iter(run_jobs(train_rl, jobs, args))
    results = [summarise_seed(task, args, seed, path, {m: next(runs) for m in args.methods})
               for seed, path in zip(args.seed, sft_paths)]
    metrics = aggregate_seeds(results, args.methods)
    paths = {k: repository_path(getattr(args, k)) for k in ("out_dir", "metrics_json", "run_dir")}
    metrics["settings"] = {**asdict(args), **paths, "n_train_prompts": len(task.train_n), "heldout_n": task.heldout_n,
                           "n_params": results[0]["sft_model"].num_params()}
    print_summary(metrics, args.seed, args.eval_samples, args.match_accuracy, len(task.heldout_n))

    first = results[0]  # the answer figure shows the first seed's models; the curves show every seed
    ns = sorted(task.heldout_n)[:3]  # the smallest held-out N: few enough bars to read
    probs = {m: answer_probabilities(r["model"], task, ns) for m, r in first["runs"].items()}
    targets = [first["targets"][task.heldout_n.index(n)] for n in ns]
    tvs = {m: [tv_to_target(p, t) for p, t in zip(ps, targets)] for m, ps in probs.items()}
    paths = [
        draw_answers(probs, targets, tvs, ns, task, args.seed[0], Path(args.out_dir) / "reasoning_answers.png"),
        draw_training([{m: r["history"] for m, r in res["runs"].items()} for res in results], ACCURACY_LEVELS,
                      {m: [diversity_frontier(res["runs"][m]["history"]["evals"]) for res in results]
                       for m in args.methods},
                      Path(args.out_dir) / "reasoning_training.png"),
    ]
    print("figures written to " + ", ".join(map(str, paths)))
    if args.metrics_json:
        metrics["curves"] = [{m: r["history"] for m, r in res["runs"].items()} for res in results]
        print(f"metrics written to {write_metrics_json(args.metrics_json, metrics)}")
    return metrics


if __name__ == "__main__":
    main()

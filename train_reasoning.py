"""GRPO vs LAD on a small GPT, with and without an anchor to the SFT policy.

The bandit (bandit.py) showed LAD matching a multi-modal target where GRPO collapses onto one arm.
Here the same losses train a language model, tiny_lm.GPT, on a task with many equally correct
answers (arithmetic.py: write N as a + b), and we ask the paper's question for LLMs: does LAD keep
the alternative correct answers alive, and what does it take?

The target. Lemma 3.1's trust-region step from the SFT policy has the optimum

    pi*(y|x) = pi_sft(y|x) * exp(A(y)/eta) / Z(x).

Every correct answer gets the same advantage, so among the correct answers pi* keeps the SFT
policy's shape, and it moves almost all the mass onto them. Maximising E[A] - beta * KL(pi || pi_sft)
has the same optimum with eta = beta: a KL penalty to the SFT policy and LAD with pi_old = pi_sft aim
at the same pi*. Five variants, chosen with --methods, run from one SFT checkpoint with the same
prompts, samples per prompt and optimiser steps:

    grpo       clipped surrogate; pi_old is the model that sampled the batch (refreshed every batch)
    lad        lad_loss instead; pi_old refreshed the same way
    grpo-kl    grpo + kl_coef * k3 KL(pi || pi_sft)      (kl_coef defaults to eta: the same pi*)
    lad-kl     lad  + the same penalty
    lad-fixed  lad with pi_old frozen at pi_sft, which also samples every batch: the bandit's setting

The pipeline, for each seed:
  1. SFT warm start: cross-entropy on correct answers and near misses, cached under --run-dir.
  2. RL: each iteration samples G answers for each of 32 training prompts, the verifier gives reward
     1 or 0, group_advantages normalises it within each group, and the loss takes one Adam step on
     the batch (--updates-per-batch: with several steps per batch, held-out accuracy sometimes fell
     sharply and recovered; see the README).
  3. Held-out evaluation every few iterations: sampled accuracy, pass@k, distinct correct answers,
     how the wrong samples are wrong, and exactly (every correct answer enumerated): P(correct), the
     effective number of correct answers exp(H), and the TV distance to pi*.

Run:  python train_reasoning.py                                    (one seed, all five variants)
      python train_reasoning.py --seed 0 1 2 3 4 --metrics-json plots/reasoning_metrics.json
                                                                   (the README's table and figures)
      python train_reasoning.py --quick                            (seconds; its numbers mean little)
"""
import argparse
import hashlib
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from arithmetic import SumTask
from evaluation import (ACCURACY_LEVELS, answer_probabilities, diversity_frontier, evaluate, exact_metrics,
                        largest_accuracy_drop, targets_of, tv_to_target)
from grpo_loss import group_advantages, grpo_loss
from kl_penalty import k3_penalty
from lad_loss import DIVERGENCES, lad_loss, reduce_loss
from plots import output_path_problem, write_metrics_json
from plots.reasoning import draw_answers, draw_training
from tiny_lm import GPT, GPTConfig

METHODS = ("grpo", "lad", "grpo-kl", "lad-kl", "lad-fixed")
# What --quick shrinks, unless given explicitly; the full-run values are Args' defaults.
QUICK = {"n_embd": 64, "sft_steps": 300, "sft_lr": 3e-3, "iterations": 12, "prompts_per_iteration": 16,
         "eval_every": 4, "eval_samples": 16}


@dataclass
class Args:
    seed: list[int] = field(default_factory=lambda: [0])  # one or more seeds; several give mean +- std
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # any subset of METHODS
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
    iterations: int = 200  # sampled batches
    prompts_per_iteration: int = 32
    group_size: int = 8  # G completions per prompt
    updates_per_batch: int = 1  # optimiser steps on each sampled batch; with 4, accuracy fell and recovered (README)
    lr: float = 2e-4  # Adam, the same for every variant
    clip_eps: float = 0.2  # GRPO's trust region
    eta: float = 0.25  # LAD's trust-region temperature (the paper: 1/eta = 4)
    divergence: str = "js"  # LAD's f-divergence
    lad_ratio: str = "token"  # "token" or "sequence" (Lemma 3.2's form): see variant_loss
    kl_coef: float | None = None  # beta of the -kl variants; None means eta, so they share LAD's pi*
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


# ---------------------------------------------------------------------------------------------
# Stage 1: the SFT warm start, cached.
# ---------------------------------------------------------------------------------------------

def model_config(task: SumTask, args: Args) -> GPTConfig:
    return GPTConfig(
        vocab_size=len(task.chars), block_size=task.PROMPT_LEN + task.MAX_COMPLETION,
        n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
    )


def sft_checkpoint_path(task: SumTask, args: Args, seed: int) -> Path:
    """The cache key is every setting that changes the SFT weights (and nothing else)."""
    key = {
        "seed": seed, "config": asdict(model_config(task, args)), "device": torch.device(args.device).type,
        "task_class": type(task).__name__,
        "task": [task.N_MIN, task.N_MAX, task.N_HELDOUT, task.SPLIT_SEED],
        **{k: getattr(args, k) for k in ("sft_steps", "sft_batch_size", "sft_lr", "sft_correct_fraction")},
    }
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(args.run_dir) / f"sft-{digest}.pt"


def train_sft(task: SumTask, args: Args, seed: int) -> Path:
    """Train the warm start of one seed, or find it in the cache. Returns the checkpoint's path."""
    path = sft_checkpoint_path(task, args, seed)
    if path.exists():
        print(f"SFT seed {seed}: the cached warm start {path}")
        return path
    torch.manual_seed(seed)
    model = GPT(model_config(task, args)).to(args.device)
    prompts, completions, mask, weight = (t.to(args.device) for t in task.sft_data(args.sft_correct_fraction))
    generator = torch.Generator(device=args.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.0)
    for _ in tqdm(range(args.sft_steps), desc=f"SFT seed {seed}", leave=False, disable=args.workers > 1):
        i = torch.multinomial(weight, args.sft_batch_size, replacement=True, generator=generator)
        logp = model.completion_logprobs(prompts[i], completions[i], mask[i])
        loss = -logp.sum() / mask[i].sum()  # cross-entropy per completion token
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    # Write to a temporary name, then rename: a run that starts meanwhile never reads half a file.
    os.replace(model.save(path.with_suffix(f".tmp{os.getpid()}")), path)
    print(f"SFT seed {seed}: saved the warm start to {path}")
    return path


# ---------------------------------------------------------------------------------------------
# Stage 2: RL. One loop for every variant, so that they differ in the loss and the anchor only.
# ---------------------------------------------------------------------------------------------

def variant_loss(method: str, model: GPT, batch: dict, args: Args) -> torch.Tensor:
    """The loss of one variant on one sampled batch.

    logp and logp_old are per token [batch, tokens], zero on padding. The advantage A is one number
    per completion, broadcast over its tokens.
      * grpo*: the usual token-level ratio pi_theta(y_t|...) / pi_old(y_t|...), clipped.
      * lad*, --lad-ratio token (the default): every token gets its own ratio and its own target
        exp(A/eta), like GRPO's token-level ratio (the completion's implicit target is then
        exp(length * A / eta), a stronger push).
      * lad*, --lad-ratio sequence: one ratio per completion, pi_theta(y|x) / pi_old(y|x) = exp(sum of
        the token log-ratios), the form Lemma 3.2 is stated in.
      * *-kl: plus kl_coef times the k3 estimate of KL(pi || pi_sft), per token and averaged like the
        policy term, so the trade-off between A and the penalty is that of E[A] - beta * KL.
    For lad-fixed, logp_old is log pi_sft: the batch was sampled by the frozen SFT model.
    """
    logp = model.completion_logprobs(batch["prompts"], batch["completions"], batch["mask"])
    logp_old, A, mask = batch["logp_old"], batch["advantages"], batch["mask"]
    if method.startswith("grpo"):
        loss = grpo_loss(logp, logp_old, A, clip_eps=args.clip_eps, mask=mask)
    elif args.lad_ratio == "token":
        loss = lad_loss(logp, logp_old, A, eta=args.eta, divergence=args.divergence, mask=mask)
    else:
        loss = lad_loss(logp.sum(1), logp_old.sum(1), A, eta=args.eta, divergence=args.divergence)
    if method.endswith("-kl"):
        loss = loss + args.kl_coef * reduce_loss(k3_penalty(logp, batch["logp_ref"]), mask, "mean")
    return loss


@torch.no_grad()
def sample_batch(sampler: GPT, task: SumTask, args: Args, prompt_gen, sample_gen, reference: GPT | None = None) -> dict:
    """Sample G completions for each of prompts_per_iteration training prompts from `sampler` (pi_old
    of this batch), score them, and compute the group-normalised advantages. With a `reference`
    model, also its log-probabilities of the same tokens (for the KL penalty; fixed for the batch)."""
    picks = torch.randint(len(task.train_n), (args.prompts_per_iteration,), generator=prompt_gen)
    ns = [task.train_n[i] for i in picks.tolist()]
    prompts = task.prompts(ns).to(args.device)
    completions, logp_old, mask = sampler.sample(
        prompts, task.MAX_COMPLETION, task.end_token, num_samples=args.group_size, generator=sample_gen
    )
    prompts = prompts.repeat_interleave(args.group_size, dim=0)  # one row per completion, groups consecutive
    texts = [task.decode(row) for row in completions.tolist()]
    rewards = torch.tensor([float(task.is_correct(ns[i // args.group_size], t)) for i, t in enumerate(texts)])
    batch = {"ns": ns, "prompts": prompts, "completions": completions, "mask": mask, "logp_old": logp_old,
             "rewards": rewards, "advantages": group_advantages(rewards, args.group_size).to(args.device)}
    if reference is not None:
        batch["logp_ref"] = reference.completion_logprobs(prompts, completions, mask)
    return batch


def rl_models(method: str, sft_path: Path, args: Args) -> tuple[GPT, GPT, GPT | None]:
    """(the policy being trained, the model that samples each batch, the KL reference or None).
    Every variant starts from the SFT checkpoint; lad-fixed samples from a frozen copy of it."""
    model = GPT.load(sft_path, map_location=args.device)
    frozen = None
    if method == "lad-fixed" or method.endswith("-kl"):
        frozen = GPT.load(sft_path, map_location=args.device).requires_grad_(False)
    sampler = frozen if method == "lad-fixed" else model
    return model, sampler, frozen if method.endswith("-kl") else None


def rl_step(method: str, model: GPT, optimizer, batch: dict, args: Args) -> None:
    """updates_per_batch optimiser steps on one batch; pi_old (and pi_sft) stay fixed meanwhile."""
    for _ in range(args.updates_per_batch):
        loss = variant_loss(method, model, batch, args)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def train_rl(method: str, task: SumTask, args: Args, seed: int) -> dict:
    """RL from the seed's SFT checkpoint. Returns the trained model, its learning curves and timing."""
    sft_path = sft_checkpoint_path(task, args, seed)
    sft_model = GPT.load(sft_path, map_location=args.device)
    targets = targets_of(sft_model, task, task.heldout_n, args.eta)
    model, sampler, reference = rl_models(method, sft_path, args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Separate random streams for prompts and samples: every variant sees the same prompt sequence.
    prompt_gen = torch.Generator().manual_seed(seed)
    sample_gen = torch.Generator(device=args.device).manual_seed(seed + 1)
    history = {"iteration": [], "reward": [], "evals": []}
    seconds = []
    for it in tqdm(range(args.iterations + 1), desc=f"{method} seed {seed}", leave=False, disable=args.workers > 1):
        if it % args.eval_every == 0 or it == args.iterations:
            metrics = evaluate(model, task, task.heldout_n, args.eval_samples, seed, targets, sft_model)
            history["evals"].append({"iteration": it, **metrics})
        if it == args.iterations:
            break
        start = time.perf_counter()  # time sampling + updates, not the evaluation
        batch = sample_batch(sampler, task, args, prompt_gen, sample_gen, reference)
        rl_step(method, model, optimizer, batch, args)
        seconds.append(time.perf_counter() - start)
        history["iteration"].append(it)
        history["reward"].append(float(batch["rewards"].mean()))  # lad-fixed: the SFT sampler's reward
    final = history["evals"][-1]
    print(f"{method} seed {seed}: held-out P(correct) {final['exact_accuracy']:.3f}, "
          f"effective correct {final['effective_correct']:.1f}, TV to pi* {final['tv_to_target']:.3f}")
    # The median, not the mean: on a shared machine a few iterations can stall for unrelated reasons.
    return {"model": model, "history": history, "seconds_per_iteration": float(np.median(seconds))}


def run_jobs(function, jobs: list, args: Args) -> list:
    """function(*job) for every job, in order. With --workers > 1, in that many processes, each on one
    thread: the runs are independent, so this is the parallelism that scales on a small CPU (one
    process per core, none waiting for another), and each job's numbers do not depend on it."""
    if args.workers == 1 or len(jobs) == 1 or args.device != "cpu":  # one GPU: one process
        return [function(*job) for job in jobs]
    context = multiprocessing.get_context("fork")  # the children inherit the task object as it is
    with ProcessPoolExecutor(min(args.workers, len(jobs)), mp_context=context,
                             initializer=torch.set_num_threads, initargs=(args.threads,)) as pool:
        return list(pool.map(function, *zip(*jobs)))


# ---------------------------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------------------------

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where it is None: those help texts say the default in words
    (the settings --quick shrinks, --kl-coef)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None) -> Args:
    """Every check happens here, before any training: a bad flag costs an error line, not a run."""
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--seed", type=int, nargs="+", default=d.seed,
                   help="one or more seeds; each trains its own SFT start and every variant from it")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=d.methods, metavar="METHOD",
                   help=f"which variants to run, any of: {' '.join(METHODS)}")
    quick_help = lambda text, name: f"{text} (default {getattr(d, name)}, with --quick {QUICK[name]})"
    p.add_argument("--n-layer", type=int, default=d.n_layer, help="transformer blocks")
    p.add_argument("--n-head", type=int, default=d.n_head, help="attention heads per block")
    p.add_argument("--n-embd", type=int, default=None, help=quick_help("embedding width", "n_embd"))
    p.add_argument("--sft-steps", type=int, default=None, help=quick_help("SFT optimiser steps", "sft_steps"))
    p.add_argument("--sft-batch-size", type=int, default=d.sft_batch_size, help="SFT examples per step")
    p.add_argument("--sft-lr", type=float, default=None, help=quick_help("SFT AdamW learning rate", "sft_lr"))
    p.add_argument("--sft-correct-fraction", type=float, default=d.sft_correct_fraction,
                   help="share of correct answers in the SFT data")
    p.add_argument("--iterations", type=int, default=None, help=quick_help("RL iterations (sampled batches)", "iterations"))
    p.add_argument("--prompts-per-iteration", type=int, default=None,
                   help=quick_help("training prompts per batch", "prompts_per_iteration"))
    p.add_argument("--group-size", type=int, default=d.group_size, help="G, completions per prompt")
    p.add_argument("--updates-per-batch", type=int, default=d.updates_per_batch,
                   help="optimiser steps per sampled batch")
    p.add_argument("--lr", type=float, default=d.lr, help="RL Adam learning rate (every variant)")
    p.add_argument("--clip-eps", type=float, default=d.clip_eps, help="GRPO's clip")
    p.add_argument("--eta", type=float, default=d.eta, help="LAD's temperature (> 0)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=d.divergence, help="LAD's f-divergence")
    p.add_argument("--lad-ratio", choices=["sequence", "token"], default=d.lad_ratio,
                   help="LAD's ratio per completion or per token")
    p.add_argument("--kl-coef", type=float, default=d.kl_coef,
                   help="beta of the k3 KL(pi || pi_sft) penalty of grpo-kl and lad-kl (>= 0; default: --eta)")
    p.add_argument("--eval-samples", type=int, default=None, help=quick_help("k samples per held-out prompt", "eval_samples"))
    p.add_argument("--eval-every", type=int, default=None, help=quick_help("RL iterations between evaluations", "eval_every"))
    p.add_argument("--match-accuracy", type=float, default=d.match_accuracy,
                   help="held-out accuracy at which the table compares diversity")
    p.add_argument("--out-dir", default=None, help="where the figures go (default plots/, with --quick runs/quick/)")
    p.add_argument("--metrics-json", default=d.metrics_json, help="write the metrics to this JSON file")
    p.add_argument("--run-dir", default=d.run_dir, help="where the SFT checkpoints are cached")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch CPU threads per process; 1 is fastest for this model, idle or busy (README)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="processes running the SFT starts and the RL runs side by side (numbers do not depend on it)")
    p.add_argument("--quick", action="store_true",
                   help="a small model and budget, for tests and classrooms: seconds, and numbers that mean little")
    ns = p.parse_args(argv)
    for name, quick in QUICK.items():  # an explicit flag wins over --quick
        if getattr(ns, name) is None:
            setattr(ns, name, quick if ns.quick else getattr(d, name))
    if ns.out_dir is None:
        ns.out_dir = "runs/quick" if ns.quick else d.out_dir

    flag = lambda name: "--" + name.replace("_", "-")
    for name in ["sft_lr", "lr", "clip_eps", "eta", "kl_coef", "match_accuracy", "sft_correct_fraction"]:
        value = getattr(ns, name)
        if value is not None and not math.isfinite(value):
            p.error(f"{flag(name)} must be a finite number, got {value}")
    for name in ["n_layer", "n_head", "n_embd", "sft_steps", "sft_batch_size", "iterations",
                 "prompts_per_iteration", "updates_per_batch", "eval_every", "threads", "workers"]:
        if getattr(ns, name) < 1:
            p.error(f"{flag(name)} must be >= 1")
    for name in ["sft_lr", "lr", "clip_eps", "eta"]:
        if not getattr(ns, name) > 0:
            p.error(f"{flag(name)} must be > 0")
    if ns.kl_coef is not None and ns.kl_coef < 0:
        p.error("--kl-coef must be >= 0")
    if ns.n_embd % ns.n_head:
        p.error("--n-embd must be a multiple of --n-head")
    if not 0 < ns.match_accuracy < 1:
        p.error("--match-accuracy must be strictly between 0 and 1")
    if not 0 < ns.sft_correct_fraction < 1:
        p.error("--sft-correct-fraction must be strictly between 0 and 1")
    if ns.group_size < 2:
        p.error("--group-size must be >= 2 (advantages are relative to the group)")
    # The largest group-normalised advantage is (G - 1) / sqrt(G) (one success in the group), and
    # lad_loss forms exp(A/eta): keep it well inside float32 (exp(88) is its largest value).
    if (ns.group_size - 1) / ns.group_size**0.5 / ns.eta > 80:
        p.error(f"--eta {ns.eta} is too small for --group-size {ns.group_size}: A/eta would overflow float32")
    if ns.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {ns.device}: CUDA is not available here")
    if ns.eval_samples < 16:
        p.error("--eval-samples must be >= 16")
    if len(set(ns.seed)) != len(ns.seed):
        p.error("--seed values must be distinct")
    if len(set(ns.methods)) != len(ns.methods):
        p.error("--methods values must be distinct")
    for name, value, kind in [("out_dir", ns.out_dir, "dir"), ("run_dir", ns.run_dir, "dir"),
                              ("metrics_json", ns.metrics_json, "file")]:
        problem = value is not None and output_path_problem(value, kind)
        if problem:
            p.error(f"{flag(name)} {value}: {problem}")
    args = Args(**vars(ns))
    if args.kl_coef is None:
        args.kl_coef = args.eta  # beta = eta: the KL-anchored optimum pi_sft exp(A/beta) / Z is LAD's pi*
    return args


def summarise_seed(task: SumTask, args: Args, seed: int, runs: dict) -> dict:
    """The SFT start's evaluation, and every variant's last evaluation with its frontier at
    --match-accuracy and its exact metrics on the training prompts."""
    sft_model = GPT.load(sft_checkpoint_path(task, args, seed), map_location=args.device)
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
        # The same exact metrics on the training prompts: does RL treat the prompts it trains on differently?
        train = exact_metrics(models[name], task, task.train_n, train_targets)
        final[name].update({f"train_{k}": v for k, v in train.items()})
    return {"sft_model": sft_model, "runs": runs, "final": final, "targets": targets}


# The comparisons the README draws, when both sides were run: (variant, baseline).
COMPARISONS = [("lad", "grpo"), ("lad-kl", "grpo-kl"), ("lad-fixed", "lad-kl"), ("grpo-kl", "grpo"), ("lad-kl", "lad")]
COMPARED = ["exact_accuracy", "effective_correct", "tv_to_target", "tv_shape", "effective_at_accuracy",
            "largest_accuracy_drop"]


def aggregate(results: list, args: Args, task: SumTask) -> dict:
    """Per variant: the mean over seeds of every metric, their std, the per-seed values, and timing;
    per comparison, the per-seed differences."""
    names, keys = list(results[0]["final"]), list(results[0]["final"]["sft"])
    metrics = {}
    for name in names:
        values = {k: [r["final"][name][k] for r in results] for k in keys}
        # None marks a seed whose run never reached --match-accuracy; mean and std skip it.
        known = {k: [x for x in v if x is not None] for k, v in values.items()}
        metrics[name] = {k: float(np.mean(v)) if v else None for k, v in known.items()}
        metrics[name]["std"] = {k: float(np.std(v)) if v else None for k, v in known.items()}
        metrics[name]["per_seed"] = values
        metrics[name]["seeds_reaching_match_accuracy"] = len(known["effective_at_accuracy"])
    seconds = {m: [r["runs"][m]["seconds_per_iteration"] for r in results] for m in args.methods}
    metrics["seconds_per_iteration"] = {m: float(np.mean(s)) for m, s in seconds.items()}
    if "grpo" in seconds:  # each seed's ratio is measured within one run, on the same machine state
        metrics["time_over_grpo"] = {m: float(np.mean(np.divide(s, seconds["grpo"]))) for m, s in seconds.items()}
    differences = {}
    for a, b in COMPARISONS:
        if a in metrics and b in metrics:
            differences[f"{a} - {b}"] = {}
            for k in COMPARED:
                d = [None if x is None or y is None else x - y
                     for x, y in zip(metrics[a]["per_seed"][k], metrics[b]["per_seed"][k])]
                known = [x for x in d if x is not None]
                differences[f"{a} - {b}"][k] = {"per_seed": d, "mean": float(np.mean(known)) if known else None,
                                                "std": float(np.std(known)) if known else None}
    metrics["differences"] = differences
    metrics["settings"] = {**asdict(args), "n_train_prompts": len(task.train_n), "heldout_n": task.heldout_n,
                           "n_params": results[0]["sft_model"].num_params()}
    return metrics


def print_summary(metrics: dict, args: Args, task: SumTask) -> None:
    names = ["sft"] + list(args.methods)
    print(f"\n{len(task.heldout_n)} held-out prompts, k = {args.eval_samples} samples each, "
          f"mean ± std over seeds {args.seed}")
    print(f"{'':28s}" + "".join(f"{name:>17s}" for name in names))
    for k in metrics["sft"]["per_seed"]:
        label = f"effective at acc >= {args.match_accuracy:g}" if k == "effective_at_accuracy" else k
        print(f"{label:28s}" + "".join(
            f"{metrics[n][k]:>9.3f} ± {metrics[n]['std'][k]:<5.3f}" if metrics[n][k] is not None
            else f"{'-':>17s}" for n in names))
    print(f"{'  (seeds that got there)':28s}" + "".join(
        f"{metrics[n]['seeds_reaching_match_accuracy']:>13d} / {len(args.seed)}" for n in names))
    print("seconds per RL iteration (median): "
          + ", ".join(f"{m} {t:.3f}" for m, t in metrics["seconds_per_iteration"].items()))
    if "time_over_grpo" in metrics:
        print("time per iteration / GRPO's:       "
              + ", ".join(f"{m} {t:.2f}" for m, t in metrics["time_over_grpo"].items()))
    for pair, diffs in metrics["differences"].items():
        print(f"{pair:20s}" + "   ".join(
            f"{k} {d['mean']:+.3f} ± {d['std']:.3f} [" + " ".join("-" if x is None else f"{x:+.2f}" for x in d["per_seed"]) + "]"
            for k, d in diffs.items() if d["mean"] is not None))


def main(argv=None, task: SumTask | None = None) -> dict:
    """Run the pipeline. `task` swaps in a variant of the arithmetic task (a SumTask subclass with
    its own verifier, say); the command line always uses SumTask."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = task or SumTask()
    run_jobs(train_sft, [(task, args, seed) for seed in args.seed], args)
    jobs = [(method, task, args, seed) for seed in args.seed for method in args.methods]
    runs = iter(run_jobs(train_rl, jobs, args))
    results = [summarise_seed(task, args, seed, {m: next(runs) for m in args.methods}) for seed in args.seed]
    metrics = aggregate(results, args, task)
    print_summary(metrics, args, task)

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

"""GRPO vs LAD on a small GPT: an arithmetic task where every prompt has many correct answers.

The bandit (bandit.py) showed LAD matching a multi-modal target where GRPO collapses onto one arm.
Here the same two loss functions train a language model, tiny_lm.GPT, on a task with many equally
correct answers, and we ask the paper's question for LLMs: does LAD keep the alternative correct
answers alive without losing accuracy, at GRPO's cost?

The pipeline, for each seed:
  1. Stage 1, SFT warm start. Cross-entropy on a mix of correct answers and near misses, so the start
     policy knows the format, spreads over almost all correct answers, and is right about 30% of the
     time on held-out prompts. Cached under --run-dir; GRPO and LAD both start from this checkpoint.
  2. Stage 2, RL. GRPO (grpo_loss) and LAD (lad_loss) with the same seed, prompts, group size,
     samples and optimiser steps: each iteration samples G answers for each of 32 training prompts,
     the verifier gives reward 1 or 0, group_advantages normalises it within each group, and the loss
     takes 4 Adam steps on the batch. pi_old is the model that sampled it (so the ratio starts at 1
     and moves during those 4 steps). Neither method uses a KL penalty to a reference model.
  3. Evaluation on held-out prompts every few iterations: sampled accuracy, pass@k, distinct correct
     answers among k samples, distinct-n, and the *exact* distribution over every correct answer
     (enumerated, from summed token log-probs), whose entropy says how many answers the model really
     keeps. Then the figures: the learned distribution over answers against the advantage-induced
     target (draw_answers), the training curves and the accuracy-diversity frontier (draw_training).

Run:  python train_reasoning.py                       (one seed, about 2 minutes on 2 CPU cores)
      python train_reasoning.py --seed 0 1 2 --metrics-json plots/reasoning_metrics.json
                                                      (the README's table and figures, ~6 minutes)
      python train_reasoning.py --quick --out-dir /tmp/fig --metrics-json /tmp/m.json   (~15 s)
"""
import argparse
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from grpo_loss import group_advantages, grpo_loss
from lad_loss import DIVERGENCES, lad_loss
from arithmetic import SumTask
from plots import plot_curves, plot_distribution, save_figure
from tiny_lm import GPT, GPTConfig


@dataclass
class Args:
    seed: list[int] = field(default_factory=lambda: [0])  # one or more seeds; several give mean +- std
    method: str = "both"  # "grpo", "lad" or "both"
    # the model (tiny_lm.GPTConfig)
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 96
    # stage 1: SFT warm start
    sft_steps: int = 1000
    sft_batch_size: int = 256
    sft_lr: float = 1e-3
    sft_correct_fraction: float = 0.5  # share of correct answers in the SFT data
    # stage 2: RL, identical for both methods
    iterations: int = 200  # sampled batches
    prompts_per_iteration: int = 32
    group_size: int = 8  # G completions per prompt
    updates_per_batch: int = 4  # optimiser steps on each sampled batch (pi_old stays fixed meanwhile)
    lr: float = 2e-4  # Adam, the same for both methods
    clip_eps: float = 0.2  # GRPO's trust region
    eta: float = 0.25  # LAD's trust-region temperature (the paper: 1/eta = 4)
    divergence: str = "js"  # LAD's f-divergence
    lad_ratio: str = "token"  # "token" (measured best here) or "sequence" (Lemma 3.2's form): see policy_loss
    # evaluation
    eval_samples: int = 32  # k completions per held-out prompt
    eval_every: int = 10  # iterations between evaluations during RL
    match_accuracy: float = 0.6  # report each method's diversity at this held-out accuracy (its frontier)
    # where things go
    out_dir: str = "plots"  # figures
    metrics_json: str | None = None
    run_dir: str = "runs"  # the cached SFT checkpoints
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    threads: int = 2  # CPU threads; the model is tiny, more rarely helps
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


def train_sft(task: SumTask, args: Args, seed: int) -> GPT:
    path = sft_checkpoint_path(task, args, seed)
    if path.exists():
        print(f"SFT: loading the cached warm start {path}")
        return GPT.load(path, map_location=args.device)
    torch.manual_seed(seed)
    model = GPT(model_config(task, args)).to(args.device)
    prompts, completions, mask, weight = (t.to(args.device) for t in task.sft_data(args.sft_correct_fraction))
    generator = torch.Generator(device=args.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.0)
    for _ in tqdm(range(args.sft_steps), desc=f"SFT seed {seed}", leave=False):
        i = torch.multinomial(weight, args.sft_batch_size, replacement=True, generator=generator)
        logp = model.completion_logprobs(prompts[i], completions[i], mask[i])
        loss = -logp.sum() / mask[i].sum()  # cross-entropy per completion token
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    # Write to a temporary name, then rename: a run that starts meanwhile never reads half a file.
    os.replace(model.save(path.with_suffix(f".tmp{os.getpid()}")), path)
    print(f"SFT: saved the warm start to {path}")
    return model


# ---------------------------------------------------------------------------------------------
# Evaluation: sampled metrics, and the exact distribution over every correct answer.
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def answer_probabilities(model: GPT, task: SumTask, ns) -> list[torch.Tensor]:
    """For each prompt n, pi(y|n) of every correct answer y (in valid_answers order), exactly:
    exp of the summed token log-probs. One forward pass over all answers of all prompts."""
    answers = [task.valid_answers(n) for n in ns]
    texts = [y for a in answers for y in a]
    prompts = task.prompts([n for n, a in zip(ns, answers) for _ in a]).to(model.lm_head.weight.device)
    completions, mask = (t.to(prompts.device) for t in task.completions(texts))
    p = model.completion_logprobs(prompts, completions, mask).sum(1).double().exp().cpu()
    return list(torch.split(p, [len(a) for a in answers]))


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct-n: unique character n-grams / all n-grams over a set of completions."""
    grams = [t[i : i + n] for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


@torch.no_grad()
def evaluate(model: GPT, task: SumTask, ns, k: int, seed: int) -> dict:
    """Held-out metrics, averaged over the prompts ns. Every model is evaluated on the same random
    stream (seeded generator), so differences between models are not sampling luck."""
    device = model.lm_head.weight.device
    generator = torch.Generator(device=device).manual_seed(10_000 + seed)
    prompts = task.prompts(ns).to(device)
    tokens, _, _ = model.sample(prompts, task.MAX_COMPLETION, task.end_token, k, generator=generator)
    texts = [task.decode(row) for row in tokens.tolist()]
    correct = torch.tensor([task.is_correct(ns[i // k], t) for i, t in enumerate(texts)]).view(len(ns), k)
    groups = [texts[i * k : (i + 1) * k] for i in range(len(ns))]
    distinct_correct = [len({t for t, ok in zip(g, c) if ok}) for g, c in zip(groups, correct.tolist())]
    # Exact: normalise pi over the correct answers, p(y | correct); its entropy and exp(entropy), the
    # "effective number of correct answers" (N - 1 when the model spreads evenly, 1 when it has collapsed).
    probs = answer_probabilities(model, task, ns)
    conditional = [p / p.sum() for p in probs]
    entropy = torch.tensor([float(-(q * q.clamp_min(1e-300).log()).sum()) for q in conditional])
    return {
        "accuracy": float(correct.float().mean()),
        "pass_at_k": float(correct.any(1).float().mean()),
        "distinct_correct": float(np.mean(distinct_correct)),
        "entropy_correct": float(entropy.mean()),
        "effective_correct": float(entropy.exp().mean()),  # mean over prompts of exp(H)
        "exact_accuracy": float(np.mean([float(p.sum()) for p in probs])),  # pi(correct), no sampling
        "distinct_2": float(np.mean([distinct_n(g, 2) for g in groups])),
        "distinct_3": float(np.mean([distinct_n(g, 3) for g in groups])),
    }


ACCURACY_LEVELS = np.round(np.arange(0.0, 1.0001, 0.02), 2)


def diversity_frontier(evals: list, levels=ACCURACY_LEVELS) -> np.ndarray:
    """The accuracy-diversity frontier of one run, from its evaluations during training: for each
    accuracy level, the largest effective number of correct answers among the checkpoints whose exact
    held-out accuracy is at least that level (NaN where no checkpoint got there). Diversity falls as
    accuracy rises during RL, so comparing methods at one iteration mixes the two; the frontier
    compares them at matched accuracy."""
    accuracy = np.array([e["exact_accuracy"] for e in evals])
    effective = np.array([e["effective_correct"] for e in evals])
    return np.array([effective[accuracy >= lv].max() if (accuracy >= lv).any() else np.nan for lv in levels])


# ---------------------------------------------------------------------------------------------
# Stage 2: RL. One loop for both methods, so that they differ in the loss and nothing else.
# ---------------------------------------------------------------------------------------------

def policy_loss(method: str, model: GPT, batch: dict, args: Args) -> torch.Tensor:
    """GRPO's clipped surrogate or LAD's divergence, on one sampled batch.

    logp and logp_old are per token [batch, tokens], zero on padding. The advantage A is one number
    per completion, broadcast over its tokens.
      * GRPO: the usual token-level ratio pi_theta(y_t|...) / pi_old(y_t|...), clipped.
      * LAD, --lad-ratio sequence: one ratio per completion, pi_theta(y|x) / pi_old(y|x) = exp(sum of
        the token log-ratios), which is the form Lemma 3.2 is stated in. A completion's ratio is
        pushed towards exp(A/eta) as a whole.
      * LAD, --lad-ratio token (the default): every token gets its own ratio and its own target
        exp(A/eta), like GRPO's token-level ratio. Per token that is a much stronger push (the
        completion's ratio is the product of its tokens', so its implicit target is
        exp(length * A / eta)). Over three seeds it reached a higher held-out accuracy than the
        sequence form with as many correct answers kept at matched accuracy (the README's table), so
        it is the default; the sequence form is one flag away.
    """
    logp = model.completion_logprobs(batch["prompts"], batch["completions"], batch["mask"])
    logp_old, A, mask = batch["logp_old"], batch["advantages"], batch["mask"]
    if method == "grpo":
        return grpo_loss(logp, logp_old, A, clip_eps=args.clip_eps, mask=mask)
    if args.lad_ratio == "token":
        return lad_loss(logp, logp_old, A, eta=args.eta, divergence=args.divergence, mask=mask)
    return lad_loss(logp.sum(1), logp_old.sum(1), A, eta=args.eta, divergence=args.divergence)


@torch.no_grad()
def sample_batch(model: GPT, task: SumTask, args: Args, prompt_gen, sample_gen) -> dict:
    """Sample G completions for each of prompts_per_iteration training prompts, score them, and
    compute the group-normalised advantages. The sampling model is pi_old for this batch."""
    picks = torch.randint(len(task.train_n), (args.prompts_per_iteration,), generator=prompt_gen)
    ns = [task.train_n[i] for i in picks.tolist()]
    prompts = task.prompts(ns).to(args.device)
    completions, logp_old, mask = model.sample(
        prompts, task.MAX_COMPLETION, task.end_token, num_samples=args.group_size, generator=sample_gen
    )
    texts = [task.decode(row) for row in completions.tolist()]
    rewards = torch.tensor([float(task.is_correct(ns[i // args.group_size], t)) for i, t in enumerate(texts)])
    return {
        "prompts": prompts.repeat_interleave(args.group_size, dim=0), "completions": completions,
        "mask": mask, "logp_old": logp_old, "rewards": rewards,
        "advantages": group_advantages(rewards, args.group_size).to(args.device),
    }


def train_rl(method: str, sft_path: Path, task: SumTask, args: Args, seed: int) -> dict:
    """RL from the SFT checkpoint. Returns the trained model, its learning curves and its timing."""
    model = GPT.load(sft_path, map_location=args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Separate random streams for prompts and samples: both methods see the same prompt sequence.
    prompt_gen = torch.Generator().manual_seed(seed)
    sample_gen = torch.Generator(device=args.device).manual_seed(seed + 1)
    history = {"iteration": [], "reward": [], "evals": []}
    seconds = []
    for it in tqdm(range(args.iterations + 1), desc=f"{method.upper()} seed {seed}", leave=False):
        if it % args.eval_every == 0 or it == args.iterations:
            metrics = evaluate(model, task, task.heldout_n, args.eval_samples, seed)
            history["evals"].append({"iteration": it, **metrics})
        if it == args.iterations:
            break
        start = time.perf_counter()  # time sampling + updates, not the evaluation
        batch = sample_batch(model, task, args, prompt_gen, sample_gen)
        for _ in range(args.updates_per_batch):
            loss = policy_loss(method, model, batch, args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
        history["iteration"].append(it)
        history["reward"].append(float(batch["rewards"].mean()))
    # The median, not the mean: on a shared machine a few iterations can stall for unrelated reasons.
    return {"model": model, "history": history, "seconds_per_iteration": float(np.median(seconds))}


# ---------------------------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------------------------

def target_accuracy(p_sft: float, eta: float) -> float:
    """P_A(correct) of the one-step target pi_sft * exp(A/eta) / Z (Lemma 3.1) for a prompt on which
    pi_sft is right with probability p_sft. A is the group-normalised 0/1 reward in the large-group
    limit: A+ = (1 - p) / std = sqrt((1 - p) / p) for a correct answer, A- = -sqrt(p / (1 - p)) else."""
    p_sft = min(max(p_sft, 1e-9), 1 - 1e-9)
    a_plus, a_minus = math.sqrt((1 - p_sft) / p_sft), -math.sqrt(p_sft / (1 - p_sft))
    correct, wrong = math.log(p_sft) + a_plus / eta, math.log(1 - p_sft) + a_minus / eta
    return 1 / (1 + math.exp(wrong - correct))


def draw_answers(models: dict, task: SumTask, eta: float, path, n_prompts: int = 3) -> Path:
    """For a few held-out prompts: p(y | correct) of every correct answer y under GRPO and LAD,
    beside the advantage-induced target P_A built from the SFT policy.

    The target is P_A(y) ~ pi_sft(y) * exp(A(y)/eta). With a 0/1 verifier and group normalisation,
    every correct answer of a prompt gets the same advantage A+, so exp(A+/eta) is a common factor
    that cancels among the correct answers: restricted to them, the target is pi_sft(y | correct),
    the SFT policy's own preferences (it also moves almost all mass onto correct answers: see
    target_accuracy). Each later RL iteration multiplies every correct answer by one common factor
    again, so the compounded target (bandit.py's --pi-old refresh) keeps this shape. Bars that leave it are the
    collapse onto a few answers that LAD's theory rules out.
    """
    ns = sorted(task.heldout_n)[:n_prompts]  # the smallest held-out N: few enough bars to read
    probs = {name: answer_probabilities(m, task, ns) for name, m in models.items()}
    fig, axes = plt.subplots(n_prompts, 1, figsize=(11, 2.9 * n_prompts))
    for j, (ax, n) in enumerate(zip(np.atleast_1d(axes), ns)):
        p_sft = probs["sft"][j]
        learned = {name: p[j] / p[j].sum() for name, p in probs.items() if name != "sft"}
        accuracy = {"target": target_accuracy(float(p_sft.sum()), eta)}
        accuracy.update({name: float(p[j].sum()) for name, p in probs.items()})
        plot_distribution(
            ax, p_sft / p_sft.sum(), learned, outcome_labels=[y[:-1] for y in task.valid_answers(n)],
            title=f"held-out prompt '{n}='   P(correct): " + ", ".join(f"{k} {v:.2f}" for k, v in accuracy.items()),
            ylabel="p(answer | correct)",
        )
    fig.suptitle("Probability of each correct answer, normalised over the correct answers; "
                 "target = pi_sft * exp(A/eta), i.e. the SFT policy's shape", fontsize=10)
    return save_figure(fig, path)


def draw_training(runs_per_seed: list, path) -> Path:
    """Reward and diversity over training, and the accuracy-diversity frontier; mean +- std over seeds."""
    methods = list(runs_per_seed[0])
    first = runs_per_seed[0][methods[0]]["history"]
    iterations, eval_iterations = first["iteration"], [e["iteration"] for e in first["evals"]]

    def over_seeds(values):  # [seeds, points] -> (mean, std)
        values = np.array(values)
        return values.mean(0), values.std(0)

    def eval_curve(method, key):
        evals = [r[method]["history"]["evals"] for r in runs_per_seed]
        return (eval_iterations, *over_seeds([[e[key] for e in run] for run in evals]))

    def frontier(method):  # NaN past the accuracy some seed never reached, so it is not drawn there
        runs = [r[method]["history"]["evals"] for r in runs_per_seed]
        return (ACCURACY_LEVELS, *over_seeds([diversity_frontier(evals) for evals in runs]))

    fig, axes = plt.subplots(1, 4, figsize=(19, 4))
    rewards = {m: (iterations, *over_seeds([r[m]["history"]["reward"] for r in runs_per_seed])) for m in methods}
    plot_curves(axes[0], rewards, xlabel="RL iteration", ylabel="mean reward of the sampled batch",
                title="training reward")
    plot_curves(axes[1], {m: eval_curve(m, "distinct_correct") for m in methods}, xlabel="RL iteration",
                ylabel="distinct correct answers among k samples", title="held-out diversity (sampled)")
    plot_curves(axes[2], {m: eval_curve(m, "effective_correct") for m in methods}, logy=True,
                xlabel="RL iteration", ylabel="exp(entropy over correct answers)", title="held-out diversity (exact)")
    plot_curves(axes[3], {m: frontier(m) for m in methods}, logy=True,
                xlabel="held-out accuracy at least (exact P(correct))", ylabel="effective correct answers",
                title="accuracy-diversity frontier")
    fig.suptitle(f"GRPO vs LAD on held-out prompts, mean ± std over {len(runs_per_seed)} seed(s)", fontsize=10)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None) -> Args:
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seed", type=int, nargs="+", default=d.seed, help="one or more seeds (several: mean +- std)")
    p.add_argument("--method", choices=["grpo", "lad", "both"], default=d.method, help="which RL method(s) to run")
    p.add_argument("--n-layer", type=int, default=d.n_layer, help="transformer blocks")
    p.add_argument("--n-head", type=int, default=d.n_head, help="attention heads per block")
    p.add_argument("--n-embd", type=int, default=d.n_embd, help="embedding width")
    p.add_argument("--sft-steps", type=int, default=d.sft_steps, help="SFT optimiser steps")
    p.add_argument("--sft-batch-size", type=int, default=d.sft_batch_size, help="SFT examples per step")
    p.add_argument("--sft-lr", type=float, default=d.sft_lr, help="SFT AdamW learning rate")
    p.add_argument("--sft-correct-fraction", type=float, default=d.sft_correct_fraction,
                   help="share of correct answers in the SFT data")
    p.add_argument("--iterations", type=int, default=d.iterations, help="RL iterations (sampled batches)")
    p.add_argument("--prompts-per-iteration", type=int, default=d.prompts_per_iteration, help="training prompts per batch")
    p.add_argument("--group-size", type=int, default=d.group_size, help="G, completions per prompt")
    p.add_argument("--updates-per-batch", type=int, default=d.updates_per_batch,
                   help="optimiser steps per sampled batch")
    p.add_argument("--lr", type=float, default=d.lr, help="RL Adam learning rate (both methods)")
    p.add_argument("--clip-eps", type=float, default=d.clip_eps, help="GRPO's clip")
    p.add_argument("--eta", type=float, default=d.eta, help="LAD's temperature (> 0)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default=d.divergence, help="LAD's f-divergence")
    p.add_argument("--lad-ratio", choices=["sequence", "token"], default=d.lad_ratio,
                   help="LAD's ratio per completion or per token")
    p.add_argument("--eval-samples", type=int, default=d.eval_samples, help="k samples per held-out prompt")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="RL iterations between evaluations")
    p.add_argument("--match-accuracy", type=float, default=d.match_accuracy,
                   help="held-out accuracy at which the table compares diversity")
    p.add_argument("--out-dir", default=d.out_dir, help="where the figures go")
    p.add_argument("--metrics-json", default=d.metrics_json, help="write the metrics to this JSON file")
    p.add_argument("--run-dir", default=d.run_dir, help="where the SFT checkpoints are cached")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="small model and budget, for tests and classrooms")
    ns = p.parse_args(argv)
    positive = ["n_layer", "n_head", "n_embd", "sft_steps", "sft_batch_size", "iterations",
                "prompts_per_iteration", "updates_per_batch", "eval_every", "threads"]
    for name in positive:
        if getattr(ns, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ["sft_lr", "lr", "clip_eps", "eta"]:
        if not getattr(ns, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
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
    args = Args(**vars(ns))
    if args.quick:  # the whole pipeline in 10-15 seconds on 2 CPU cores; the numbers mean little
        args.n_embd, args.sft_steps, args.sft_lr = 64, 300, 3e-3
        args.iterations, args.prompts_per_iteration, args.eval_every, args.eval_samples = 12, 16, 4, 16
    return args


def run_seed(task: SumTask, args: Args, seed: int) -> dict:
    sft_model = train_sft(task, args, seed)
    sft_path = sft_checkpoint_path(task, args, seed)
    methods = ["grpo", "lad"] if args.method == "both" else [args.method]
    runs = {m: train_rl(m, sft_path, task, args, seed) for m in methods}
    evals = {"sft": [evaluate(sft_model, task, task.heldout_n, args.eval_samples, seed)]}
    evals.update({m: r["history"]["evals"] for m, r in runs.items()})
    final = {}
    for name, history in evals.items():  # the last evaluation, and the frontier at --match-accuracy
        at_level = diversity_frontier(history, [args.match_accuracy])[0]
        final[name] = {**history[-1], "effective_at_accuracy": None if np.isnan(at_level) else float(at_level)}
        final[name].pop("iteration", None)
    return {"sft_model": sft_model, "runs": runs, "final": final}


def aggregate(results: list, args: Args, task: SumTask) -> dict:
    """Per method: the mean over seeds of every metric, their std, the per-seed values, and timing."""
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
    methods = names[1:]  # everything but "sft"
    seconds = {m: float(np.mean([r["runs"][m]["seconds_per_iteration"] for r in results])) for m in methods}
    metrics["seconds_per_iteration"] = seconds
    if set(methods) == {"grpo", "lad"}:
        metrics["lad_over_grpo_time"] = seconds["lad"] / seconds["grpo"]
    metrics["settings"] = {**asdict(args), "n_train_prompts": len(task.train_n), "heldout_n": task.heldout_n,
                           "n_params": results[0]["sft_model"].num_params()}
    return metrics


def print_table(metrics: dict, args: Args, task: SumTask) -> None:
    names = [n for n in ("sft", "grpo", "lad") if n in metrics]
    print(f"\n{len(task.heldout_n)} held-out prompts, k = {args.eval_samples} samples each, "
          f"mean ± std over seeds {args.seed}")
    print(f"{'':26s}" + "".join(f"{name:>18s}" for name in names))
    for k in metrics["sft"]["per_seed"]:
        label = f"effective at acc >= {args.match_accuracy:g}" if k == "effective_at_accuracy" else k
        print(f"{label:26s}" + "".join(
            f"{metrics[n][k]:>10.3f} ± {metrics[n]['std'][k]:<5.3f}" if metrics[n][k] is not None
            else f"{'-':>18s}" for n in names))
    print(f"{'  (seeds that got there)':26s}" + "".join(
        f"{metrics[n]['seeds_reaching_match_accuracy']:>14d} / {len(args.seed)}" for n in names))
    timing = metrics["seconds_per_iteration"]
    print("seconds per RL iteration (median): " + ", ".join(f"{m} {t:.3f}" for m, t in timing.items())
          + (f"  (LAD / GRPO = {metrics['lad_over_grpo_time']:.2f})" if "lad_over_grpo_time" in metrics else ""))


def main(argv=None, task: SumTask | None = None) -> dict:
    """Run the pipeline. `task` swaps in a variant of the arithmetic task (a SumTask subclass with
    its own verifier, say); the command line always uses SumTask."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = task or SumTask()
    results = [run_seed(task, args, seed) for seed in args.seed]
    metrics = aggregate(results, args, task)
    print_table(metrics, args, task)

    first = results[0]  # the answer figure shows the first seed's models; the curves show every seed
    paths = [
        draw_answers({"sft": first["sft_model"], **{m: r["model"] for m, r in first["runs"].items()}},
                     task, args.eta, Path(args.out_dir) / "reasoning_answers.png"),
        draw_training([r["runs"] for r in results], Path(args.out_dir) / "reasoning_training.png"),
    ]
    print("figures written to " + ", ".join(map(str, paths)))
    if args.metrics_json:
        metrics["curves"] = [{m: r["history"] for m, r in res["runs"].items()} for res in results]
        Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics_json).write_text(json.dumps(metrics, indent=1))
        print(f"metrics written to {args.metrics_json}")
    return metrics


if __name__ == "__main__":
    main()

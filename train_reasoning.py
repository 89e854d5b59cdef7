"""GRPO against LAD on a small GPT: does LAD keep the alternative correct answers alive?

The bandit (bandit.py) showed LAD matching a multi-modal target where GRPO collapses onto one arm.
Here the same losses train a language model (tiny_lm.GPT) on a task with many equally correct
answers (reasoning/arithmetic.py: write N as a + b), and we ask the paper's question for LLMs: does
LAD keep the alternative correct answers alive, and can any method reach Lemma 3.1's target from
the SFT policy,

    pi*(y|x) = pi_sft(y|x) exp(A(y)/eta) / Z(x)?

Among the correct answers pi* keeps the SFT policy's shape (every correct answer has the same A),
and it moves almost all the mass onto them. The methods (grpo, lad, lad-fixed, grpo-kl, lad-kl, and
the paper's other baselines), what each loss optimises and which model samples each rollout are in
reasoning/methods.py: read it first.

For each seed: an SFT warm start (reasoning/sft.py, cached under --sft-cache-dir); then, for each
method, --iterations RL iterations from it (`rl_iteration`: sample a rollout from pi_old, verify,
advantages, the method's loss, the optimiser steps), evaluated on held-out prompts every
--eval-every iterations (reasoning/evaluation.py), exactly where it can be: P(correct), the
effective number of correct answers exp(H), and the TV distance to pi*.

Run:  python train_reasoning.py --quick     seconds, numbers that mean little (figures: runs/quick)
      python train_reasoning.py             one seed, the five methods (figures: runs/)
      python train_reasoning.py --seeds 0 1 2 3 4 --metrics-json plots/reasoning_metrics.json \\
          --out-dir plots                   the chapter's table and figures, the committed ones
"""
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cli.outputs import output_path_problem, repository_path, write_metrics_json
from cli.settings import check, flag, parse_settings, setting
from grpo_loss import group_advantages
from kl_penalty import KL_ESTIMATORS
from lad_loss import DIVERGENCES
from plots.reasoning import draw_answers, draw_training
from reasoning.arithmetic import SumTask
from reasoning.evaluation import (ACCURACY_LEVELS, aggregate_seeds, answer_probabilities,
                                  diversity_frontier, evaluate, print_summary, summarise_seed,
                                  targets_of, tv_to_target)
from reasoning.methods import BASELINES, MATCHING, METHODS, method_loss, rl_models
from reasoning.parallel import run_jobs
from reasoning.sample_free import SAMPLE_FREE, sample_free_iteration
from reasoning.rollout import (RandomStreams, minibatches, sample_rollout, sampled_success,
                               sft_advantages)
from reasoning.sft import sft_checkpoint
from tiny_lm import GPT

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Settings:
    seeds: list[int] = setting([0], "one or more seeds; each trains its own SFT start and every "
                              "method from it", low=0, distinct=True)
    methods: list[str] = setting(list(METHODS), "what to train, any of: "
                                 + " ".join(METHODS + BASELINES + MATCHING) + "; or the "
                                 "sample-free methods: " + " ".join(SAMPLE_FREE),
                                 choices=METHODS + BASELINES + MATCHING + SAMPLE_FREE,
                                 distinct=True)
    # the model (tiny_lm.GPTConfig)
    n_layer: int = setting(2, "transformer blocks", low=1)
    n_head: int = setting(4, "attention heads per block", low=1)
    n_embd: int = setting(96, "embedding width, a multiple of --n-head", low=1, quick=64)
    # stage 1: the SFT warm start (reasoning/sft.py)
    sft_steps: int = setting(1000, "SFT optimiser steps", low=1, quick=300)
    sft_batch_size: int = setting(256, "SFT examples per step", low=1)
    sft_lr: float = setting(1e-3, "SFT AdamW learning rate", above=0, quick=3e-3)
    sft_correct_fraction: float = setting(0.5, "share of correct answers in the SFT data",
                                          above=0, below=1)
    # stage 2: RL, the same for every method
    iterations: int = setting(200, "RL iterations, one rollout each", low=1, quick=12)
    prompts_per_iteration: int = setting(32, "training prompts per rollout", low=1, quick=16)
    group_size: int = setting(8, "G, completions per prompt", low=2)
    minibatches: int = setting(1, "mini-batches of whole groups per pass over a rollout, one "
                               "optimiser step each", low=1)
    epochs: int = setting(1, "passes over each rollout", low=1)
    lr: float = setting(2e-4, "RL Adam learning rate (every method)", above=0)
    adam_beta2: float = setting(0.999, "RL Adam's beta2, the decay of its second-moment estimate "
                                "(torch's default; LLM pre-training often uses 0.95)", above=0,
                                below=1)
    advantage_source: str = setting("group", "where A comes from. group: the rewards normalised "
                                    "within each sampled group; sft: the SFT policy's (A+, A-) of "
                                    "the prompt, the A of pi*; sft-normalised: those minus eta log "
                                    "Z, so that Z = 1; sft-sampled: as sft, with the success rate "
                                    "estimated from 64 SFT samples per prompt, drawn once",
                                    choices=["group", "sft", "sft-normalised", "sft-sampled"])
    clip_eps: float = setting(0.2, "GRPO's clip", above=0)
    eta: float = setting(0.25, "LAD's temperature (the paper: 1/eta = 4)", above=0)
    divergence: str = setting("js", "LAD's f-divergence", choices=sorted(DIVERGENCES))
    lad_ratio: str = setting("sequence", "LAD's ratio per completion (Lemma 3.2's form) or per "
                             "token", choices=["sequence", "token"])
    kl_estimator: str = setting("k2", "the -kl methods' penalty: k2 on each completion (follows "
                                "KL(pi || pi_sft)) or k3 per token (KL(pi_sft || pi))",
                                choices=sorted(KL_ESTIMATORS))
    kl_coef: float | None = setting(None, "beta, the -kl methods' KL coefficient", low=0,
                                    default_text="--eta: grpo-kl's k2 optimum is then pi*, "
                                    "lad-kl's pi_sft exp(w(A)/beta) / Z (reasoning/methods.py)")
    flowrl_reward_scale: float | None = setting(None, "FlowRL's scale of r_hat (its paper's beta)",
                                                above=0, default_text="1 / --eta, LAD's")
    log_z_lr: float = setting(0.1, "Adam learning rate of FlowRL's per-prompt log Z", above=0)
    dpg_same_a_groups: str = setting("keep", "dpg's groups whose completions all share one A (all "
                                     "right or all wrong): keep (weights pi_sft / q) or drop "
                                     "(weight 0)", choices=["keep", "drop"])
    # evaluation (reasoning/evaluation.py)
    eval_samples: int = setting(32, "k, samples per held-out prompt", low=16, quick=16)
    eval_every: int = setting(10, "RL iterations between evaluations", low=1, quick=4)
    match_accuracy: float = setting(0.6, "held-out accuracy at which the table compares "
                                    "diversity", above=0, below=1)
    # where things go (runs/ is not committed; the chapter's own figures: --out-dir plots)
    out_dir: str = setting("runs", "where the figures go", quick="runs/quick")
    metrics_json: str | None = setting(None, "write the metrics to this JSON file")
    sft_cache_dir: str = setting("runs", "where the SFT checkpoints are cached")
    # how the work is spread
    device: str = setting(DEVICE, "cpu or cuda", default_text="cuda where available, else cpu")
    threads: int = setting(1, "torch CPU threads per process (1 is fastest for this model)",
                           low=1)
    workers: int = setting(2, "processes running the SFT starts and the RL runs side by side "
                           "(the numbers do not depend on it)", low=1)
    quick: bool = setting(False, "a small model and budget, for tests and classrooms: seconds, "
                          "numbers that mean little")

    def __post_init__(self):
        check(self)
        if self.kl_coef is None:  # beta = eta: grpo-kl's k2 optimum pi_sft exp(A/beta) / Z is pi*
            self.kl_coef = self.eta
        if self.flowrl_reward_scale is None:  # LAD's 1/eta per unit of r_hat (not pi*: methods.py)
            self.flowrl_reward_scale = 1 / self.eta
        if self.n_embd % self.n_head:
            raise ValueError(f"--n-embd {self.n_embd} must be a multiple of --n-head {self.n_head}")
        # The largest group-normalised advantage is (G - 1) / sqrt(G) (one success in the group),
        # and lad_loss forms exp(A/eta): keep it well inside float32 (exp(88) is its largest value).
        if (self.group_size - 1) / self.group_size**0.5 / self.eta > 80:
            raise ValueError(f"--eta {self.eta} is too small for --group-size {self.group_size}: "
                             "A/eta would overflow float32")
        if self.prompts_per_iteration % self.minibatches:
            raise ValueError(f"--minibatches {self.minibatches} must divide "
                             f"--prompts-per-iteration {self.prompts_per_iteration}: a mini-batch "
                             "holds whole groups")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: CUDA is not available here")
        for name, kind in [("out_dir", "dir"), ("sft_cache_dir", "dir"), ("metrics_json", "file")]:
            path = getattr(self, name)
            problem = path is not None and output_path_problem(path, kind)
            if problem:
                raise ValueError(f"{flag(name)} {path}: {problem}")


def rl_iteration(method: str, policy: GPT, sampler: GPT, pi_ref: GPT | None, optimizer,
                 task: SumTask, settings: Settings, streams: RandomStreams,
                 fixed_advantages: dict | None = None,
                 log_z: torch.Tensor | None = None) -> tuple[dict, list[dict]]:
    """One RL iteration of `method`, as it runs. `sampler` is pi_old: the policy itself, or the
    frozen SFT model for lad-fixed (reasoning.methods.rl_models); it and the anchor `pi_ref`
    stay fixed for the whole iteration. fixed_advantages: n -> (A+, A-) (--advantage-source sft or
    sft-normalised) instead of the group's. log_z: FlowRL's per-prompt log Z, which `optimizer`
    trains too. Returns the rollout, rewards and advantages included, and each step's statistics."""
    G = settings.group_size
    # 1. Sample a rollout from pi_old: G completions of each of --prompts-per-iteration training
    #    prompts, with log pi_old of every token (and log pi_sft, for an anchored method).
    rollout = sample_rollout(sampler, task, settings.prompts_per_iteration, G, streams.prompt_gen,
                             streams.sample_gen, pi_ref, settings.device)
    # 2. Verify: reward 1 for a correct answer of the completion's own prompt, else 0.
    n_of_row = [n for n in rollout["ns"] for _ in range(G)]
    texts = [task.decode(row) for row in rollout["completions"].tolist()]
    rewards = torch.tensor([float(task.is_correct(n, t)) for n, t in zip(n_of_row, texts)])
    # 3. Advantages: the reward normalised within its group, or the SFT policy's A of the prompt.
    if fixed_advantages is None:
        advantages = group_advantages(rewards, G)
    else:
        advantages = torch.tensor([fixed_advantages[n][0 if reward else 1]  # correct: A+
                                   for n, reward in zip(n_of_row, rewards.tolist())])
    rollout.update(rewards=rewards, advantages=advantages.to(settings.device))
    # 4. The method's loss and the optimiser steps: --epochs passes over the rollout, each cut into
    #    --minibatches mini-batches of whole groups, one step each (by default: one step).
    if (method == "flowrl") != (log_z is not None):
        raise ValueError("log_z is FlowRL's, and FlowRL needs it")
    stats = []
    for _ in range(settings.epochs):
        for batch in minibatches(rollout, settings.minibatches, G, streams.shuffle_gen):
            logp, entropy = policy.completion_logprobs(batch["prompts"], batch["completions"],
                                                       batch["mask"], entropy=True)
            batch_log_z = None if log_z is None else log_z[batch["prompt_index"]]
            loss, step_stats = method_loss(method, logp, batch, settings, entropy, batch_log_z,
                                           streams.cov_gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stats.append(step_stats)
    return rollout, stats


def train_rl(method: str, task: SumTask, settings: Settings, seed: int, sft_path: Path) -> dict:
    """One method's RL run from the seed's SFT checkpoint, evaluated on the held-out prompts every
    --eval-every iterations and at the end. Returns the trained policy, its learning curves and
    its median seconds per iteration."""
    sft_model = GPT.load(sft_path, map_location=settings.device)
    targets = targets_of(sft_model, task, task.heldout_n, settings.eta)  # pi* of each prompt
    fixed_advantages = None
    if settings.advantage_source != "group":
        success = None  # the exact success rate: an oracle, as the chapter labels it
        if settings.advantage_source == "sft-sampled":  # its own stream: the runs' draws stay
            success_gen = torch.Generator(device=settings.device).manual_seed(seed + 4)
            success = sampled_success(sft_model, task, success_gen)
        fixed_advantages = sft_advantages(sft_model, task, settings.eta, success=success,
                                          normalised=settings.advantage_source == "sft-normalised")
    policy, sampler, pi_ref = rl_models(method, sft_path, settings.device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr,
                                 betas=(0.9, settings.adam_beta2))
    log_z = None
    if method == "flowrl":
        # FlowRL's log Z(x): one learned number per training prompt (the authors use a head on
        # the prompt's hidden state; for a fixed set of prompts a table is the same thing). It must
        # travel about flowrl_reward_scale * A+ (several units) in a run: at the policy's learning
        # rate Adam would move it 0.04 in 200 steps, hence its own.
        log_z = torch.zeros(len(task.train_n), device=settings.device, requires_grad=True)
        optimizer.add_param_group({"params": [log_z], "lr": settings.log_z_lr})
    streams = RandomStreams.seeded(seed, settings.device)  # every method: the same prompts
    if method in SAMPLE_FREE:  # pi* of every training prompt: the sample-free methods train on it
        train_targets = targets_of(sft_model, task, task.train_n, settings.eta)
    history = {"iteration": [], "reward": [], "evals": [], "steps": {}}
    seconds = []
    for it in tqdm(range(settings.iterations + 1), desc=f"{method} seed {seed}", leave=False,
                   disable=settings.workers > 1):
        if it % settings.eval_every == 0 or it == settings.iterations:
            metrics = evaluate(policy, task, task.heldout_n, settings.eval_samples, seed, targets,
                               sft_model)
            history["evals"].append({"iteration": it, **metrics})
        if it == settings.iterations:
            break
        start = time.perf_counter()  # time sampling and updates, not the evaluation
        if method in SAMPLE_FREE:  # no rollout: an exact step (reasoning/sample_free.py)
            stats = [sample_free_iteration(method, policy, optimizer, task,
                                           settings.prompts_per_iteration, streams.prompt_gen,
                                           train_targets)]
            reward = stats[0]["p_correct"]  # the exact P(correct) of the step's prompts
        else:
            rollout, stats = rl_iteration(method, policy, sampler, pi_ref, optimizer, task,
                                          settings, streams, fixed_advantages, log_z)
            reward = float(rollout["rewards"].mean())  # lad-fixed: its sampler's
        seconds.append(time.perf_counter() - start)
        history["iteration"].append(it)
        history["reward"].append(reward)
        for name in stats[0]:  # each statistic's mean over this iteration's steps
            history["steps"].setdefault(name, []).append(float(np.mean([s[name] for s in stats])))
    final = history["evals"][-1]
    print(f"{method} seed {seed}: held-out P(correct) {final['exact_accuracy']:.3f}, effective "
          f"correct {final['effective_correct']:.1f}, TV to pi* {final['tv_to_target']:.3f}")
    # The median, not the mean: on a shared machine a few iterations can stall for other reasons.
    return {"model": policy, "history": history, "seconds_per_iteration": float(np.median(seconds))}


def main(argv=None, task: SumTask | None = None) -> dict:
    """The pipeline: every seed's SFT start, every (seed, method) RL run, the table and the figures.
    `task` swaps in another version of the arithmetic task (a SumTask subclass with its own
    verifier, say); the command line always uses SumTask."""
    settings = parse_settings(Settings, argv, __doc__.split("\n")[0])
    torch.set_num_threads(settings.threads)
    task = task or SumTask()
    pool = {"workers": settings.workers, "threads": settings.threads, "device": settings.device}
    sft_paths = run_jobs(sft_checkpoint, [(task, settings, s) for s in settings.seeds], **pool)
    jobs = [(method, task, settings, seed, path)
            for seed, path in zip(settings.seeds, sft_paths) for method in settings.methods]
    runs = iter(run_jobs(train_rl, jobs, **pool))
    results = [summarise_seed(task, settings, seed, path, {m: next(runs) for m in settings.methods})
               for seed, path in zip(settings.seeds, sft_paths)]
    metrics = aggregate_seeds(results, settings.methods)
    paths = {k: repository_path(getattr(settings, k))
             for k in ("out_dir", "metrics_json", "sft_cache_dir")}
    metrics["settings"] = {**asdict(settings), **paths, "n_train_prompts": len(task.train_n),
                           "heldout_n": task.heldout_n,
                           "n_params": results[0]["sft_model"].num_params()}
    print_summary(metrics, settings.seeds, settings.eval_samples, settings.match_accuracy,
                  len(task.heldout_n))

    first = results[0]  # the answer figure shows the first seed's models; the curves every seed's
    ns = sorted(task.heldout_n)[:3]  # the smallest held-out N: few enough bars to read
    probs = {m: answer_probabilities(r["model"], task, ns) for m, r in first["runs"].items()}
    targets = [first["targets"][task.heldout_n.index(n)] for n in ns]
    tvs = {m: [tv_to_target(p, t) for p, t in zip(ps, targets)] for m, ps in probs.items()}
    curves = [{m: r["history"] for m, r in res["runs"].items()} for res in results]
    frontiers = {m: [diversity_frontier(res["runs"][m]["history"]["evals"]) for res in results]
                 for m in settings.methods}
    out_dir = Path(settings.out_dir)
    figures = [draw_answers(probs, targets, tvs, ns, task, settings.seeds[0],
                            out_dir / "reasoning_answers.png"),
               draw_training(curves, ACCURACY_LEVELS, frontiers,
                             out_dir / "reasoning_training.png")]
    print("figures written to " + ", ".join(map(str, figures)))
    if settings.metrics_json:
        metrics["curves"] = curves
        print(f"metrics written to {write_metrics_json(settings.metrics_json, metrics)}")
    return metrics


if __name__ == "__main__":
    main()

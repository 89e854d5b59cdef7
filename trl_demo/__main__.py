"""LAD in TRL's trainer on the arithmetic task: the demo's command line (python -m trl_demo).

LADTrainer (or TRL's own GRPO loss) on SumTask, over seeds, each method from the same warm start.

Run it
------
    python -m trl_demo                 # offline: a tiny Qwen2-style model, LAD, seed 0
    python -m trl_demo --seeds 0 1 2 3 4 --methods lad grpo \
        --metrics-json plots/lad_trl_metrics.json
    python -m trl_demo --quick         # 200 warm-start steps, 4 iterations (runs/quick/lad_trl)
    python -m trl_demo --model Qwen/Qwen2.5-0.5B                       # a hub model, on a GPU
    accelerate launch --num_processes 8 -m trl_demo --model Qwen/Qwen2.5-1.5B   # several GPUs

`main` composes the pieces of this folder: the task is reasoning.arithmetic.SumTask (write N as
a+b), its verifier is the reward (task.py), and the held-out prompts are evaluated before and
after training (runs.py). The tiny model gets a supervised warm start first
(model.tiny_sft_model); with several methods, each starts from the same one. The models are saved
to runs/lad_trl/METHOD-seedSEED/ (--out-dir). The logged `loss` is weighted by exp(A/eta): with
eta = 0.25 and one right answer in a group of 8 (A/eta near 10) it is in the hundreds. Follow the
reward, `lad/above_target` and the entropy, not its size.
"""
import copy
import dataclasses
import os
import sys
from dataclasses import dataclass

# The tiny model needs nothing from the Hugging Face hub. Offline mode makes that certain (a stray
# download fails at once instead of waiting on a network that is not there) and also turns off
# TRL's usage telemetry. huggingface_hub reads the variable when it is imported, hence before the
# imports below, and only when this runs as the command without --model (a hub model needs it).
if __name__ == "__main__" and not any(a == "--model" or a.startswith("--model=")
                                      for a in sys.argv[1:]):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from cli.outputs import output_path_problem, repository_path, write_metrics_json
from cli.settings import check, flag, parse_settings, setting
from lad_loss import DIVERGENCES
from lad_trl import LAD_RATIOS, LADConfig, LADTrainer
from reasoning.arithmetic import SumTask
from trl_demo.model import char_tokenizer, hub_tokenizer, tiny_sft_model
from trl_demo.runs import machine, summarise_seeds, train_and_evaluate
from trl_demo.task import HUB_PROMPT, TINY_PROMPT, sum_dataset, verifier_reward


@dataclass
class Settings:
    """The demo's command line (cli/settings.py builds it). The defaults are the committed
    plots/lad_trl_metrics.json's; --quick runs in seconds, for tests and classrooms."""

    model: str | None = setting(None, "a hub model name or a local folder (GPU)",
                                default_text="the tiny model, offline")
    methods: list[str] = setting(["lad"], "lad, grpo (TRL's own GRPO loss) or both, each from "
                                 "the same start", choices=["lad", "grpo"], distinct=True)
    seeds: list[int] = setting([0], "one or more seeds, run one after another", low=0,
                              distinct=True)
    eta: float = setting(0.25, "LAD's temperature (the paper's 1/eta = 4)", above=0)
    divergence: str = setting("js", "LAD's f-divergence", choices=sorted(DIVERGENCES))
    lad_ratio: str = setting("token", "one ratio per token or per completion", choices=LAD_RATIOS)
    iterations: int = setting(300, "sampled batches, each scored and trained on", low=1, quick=4)
    group_size: int = setting(8, "completions per prompt, G: advantages are relative to the group",
                              low=2)
    prompts_per_iteration: int = setting(8, "prompts per device and iteration", low=1)
    epochs: int = setting(1, "optimiser steps on each sampled batch (TRL's num_iterations; with "
                          "more, pi_old is the model that sampled it)", low=1)
    lr: float | None = setting(None, "learning rate", above=0,
                               default_text="1e-3 tiny model, 1e-6 hub model")
    sft_steps: int = setting(2000, "warm-start steps of the tiny model (a hub model has none)",
                             low=0, quick=200)
    max_completion_length: int | None = setting(
        None, "tokens per completion", low=1,
        default_text="6 tiny model (SumTask's longest answer), 16 hub model")
    # 32 samples per held-out prompt bring the standard error of its reward to about 0.015.
    eval_samples: int = setting(32, "samples per held-out prompt, before and after training",
                                low=1, quick=2)
    threads: int = setting(1, "torch CPU threads", low=1)
    out_dir: str = setting("runs/lad_trl", "the trained models go to OUT_DIR/METHOD-seedSEED",
                           quick="runs/quick/lad_trl")
    metrics_json: str | None = setting(None, "write the settings and each run's numbers here")
    report_to: str = setting("none", "TRL's loggers: none, tensorboard, wandb, ...")
    quick: bool = setting(False, "the --quick values above: seconds, for tests")

    def __post_init__(self):
        check(self)
        for name, kind in [("out_dir", "dir"), ("metrics_json", "file")]:
            path = getattr(self, name)
            problem = path is not None and output_path_problem(path, kind)
            if problem:
                raise ValueError(f"{flag(name)} {path}: {problem}")


def build_trainer(settings: Settings, task: SumTask, tokenizer, model, seed: int,
                  method: str) -> LADTrainer:
    """The trainer of one run: the task's datasets and reward, and the config."""
    tiny = settings.model is None
    G = settings.group_size
    steps = settings.iterations * settings.epochs  # TRL counts optimiser steps
    config = LADConfig(
        output_dir=os.path.join(settings.out_dir, f"{method}-seed{seed}"),
        lad=method == "lad", eta=settings.eta, divergence=settings.divergence,
        lad_ratio=settings.lad_ratio, max_steps=steps, num_iterations=settings.epochs,
        learning_rate=settings.lr or (1e-3 if tiny else 1e-6),
        num_generations=G, per_device_train_batch_size=settings.prompts_per_iteration * G,
        num_generations_eval=settings.eval_samples,
        per_device_eval_batch_size=len(task.heldout_n) * settings.eval_samples,
        max_completion_length=settings.max_completion_length or (task.MAX_COMPLETION if tiny
                                                                 else 16),
        temperature=1.0, seed=seed, logging_steps=max(1, min(10, steps // 10)),
        report_to=settings.report_to, save_strategy="no",
        # With a stored pi_old (epochs > 1), dropout would add noise to every ratio pi/pi_old.
        disable_dropout=True,
        # A model this small trains faster in float32 and without recomputing activations. A real
        # one gets TRL's defaults: bf16 (where there is a GPU) and activation checkpointing.
        bf16=not tiny and torch.cuda.is_available(), activation_checkpointing=not tiny,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    prompt = TINY_PROMPT if tiny else HUB_PROMPT
    return LADTrainer(
        model=model, reward_funcs=verifier_reward(task, tokenizer), args=config,
        train_dataset=sum_dataset(task.train_n, prompt),
        eval_dataset=sum_dataset(task.heldout_n, prompt), processing_class=tokenizer,
    )


def main(argv=None) -> list[dict]:
    """For each seed: the start (the tiny model after its warm start, or the hub model's name,
    which TRL loads on each process), then each method from a copy of it, evaluated before and
    after. Returns the runs' numbers; with --metrics-json, writes them with their summary."""
    settings = parse_settings(Settings, argv, __doc__.split("\n")[0])
    torch.set_num_threads(settings.threads)
    task = SumTask()
    tokenizer = char_tokenizer(task) if settings.model is None else hub_tokenizer(settings.model)
    runs = []
    for seed in settings.seeds:
        start = settings.model or tiny_sft_model(task, tokenizer, seed, settings.sft_steps)
        for method in settings.methods:
            trainer = build_trainer(settings, task, tokenizer, copy.deepcopy(start), seed, method)
            runs.append(train_and_evaluate(trainer, seed, method, settings.eval_samples))
    summary = summarise_seeds(runs, settings.methods)
    if settings.metrics_json:
        recorded = dict(dataclasses.asdict(settings), out_dir=repository_path(settings.out_dir),
                        metrics_json=repository_path(settings.metrics_json))
        metrics = {"settings": recorded, "machine": machine(), "summary": summary, "runs": runs}
        print(f"metrics written to {write_metrics_json(settings.metrics_json, metrics)}")
    return runs


if __name__ == "__main__":
    main()

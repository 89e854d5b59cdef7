"""What a demo run measures, and the summary over seeds that the metrics file holds.

A run is one method (lad or grpo) from one seed's warm start: the held-out reward before training,
TRL's training, the held-out reward after. Over seeds, the spread is the sample std
(statistics.stdev, n - 1); the GPT chapter's is numpy's population std.
"""
import importlib.metadata
import math
import statistics

import torch
from trl import GRPOTrainer


def heldout_reward(trainer: GRPOTrainer, samples: int) -> tuple[float, float]:
    """The verifier's mean over the `samples` completions of all held-out prompts (TRL's
    evaluation), and its standard error: the std of those rewards / sqrt(their number), so the
    spread between prompts counts too."""
    metrics = trainer.evaluate()
    return metrics["eval_reward"], metrics["eval_reward_std"] / samples**0.5


def train_and_evaluate(trainer: GRPOTrainer, seed: int, method: str, eval_samples: int) -> dict:
    """Held-out reward before training, the training, held-out reward after; saves the model.

    Returns the run's numbers: the held-out reward before and after and their standard errors, and
    the first and last logged training reward, entropy and (LAD) lad/above_target. The method is
    recorded under the key "loss", the committed metrics files' name for it.
    """
    samples = len(trainer.eval_dataset) * eval_samples
    before, se_before = heldout_reward(trainer, samples)
    trainer.train()
    after, se_after = heldout_reward(trainer, samples)
    trainer.save_model(trainer.args.output_dir)
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    run = {"seed": seed, "loss": method, "heldout_reward_before": before,
           "heldout_reward_after": after, "heldout_se_before": se_before,
           "heldout_se_after": se_after}
    for name in ["reward", "entropy"] + (["lad/above_target"] if method == "lad" else []):
        run[f"train_{name}_first"], run[f"train_{name}_last"] = logs[0][name], logs[-1][name]
    iterations = trainer.args.max_steps // trainer.args.num_iterations
    print(f"seed {seed}, {method.upper()}: held-out reward (the verifier, {eval_samples} samples "
          f"per prompt) {before:.3f} +- {se_before:.3f} before, {after:.3f} +- {se_after:.3f} "
          f"after {iterations} iterations; model saved to {trainer.args.output_dir}")
    return run


def summarise_seeds(runs: list[dict], methods) -> dict:
    """For each method, over seeds: mean and sample std (n - 1) of the held-out reward before,
    after and of the gain; on how many seeds the gain exceeds twice its standard error (the two
    rewards' SEs combined); and the smallest gain in those units."""
    summary = {}
    for method in methods:
        mine = [r for r in runs if r["loss"] == method]
        gains = [r["heldout_reward_after"] - r["heldout_reward_before"] for r in mine]
        se = [math.hypot(r["heldout_se_before"], r["heldout_se_after"]) for r in mine]
        z = [g / s for g, s in zip(gains, se) if s > 0]  # s = 0 only if every reward was 0, or 1
        mean_std = {"n_seeds": len(mine), "gain_over_two_se": sum(v > 2 for v in z),
                    "smallest_gain_in_se": min(z, default=None)}
        for name, values in [("before", [r["heldout_reward_before"] for r in mine]),
                             ("after", [r["heldout_reward_after"] for r in mine]),
                             ("gain", gains)]:
            mean_std[f"{name}_mean"] = statistics.mean(values)
            mean_std[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[method] = mean_std
        print(f"{method.upper()} over {len(mine)} seeds: held-out reward "
              f"{mean_std['before_mean']:.3f} +- {mean_std['before_std']:.3f} before, "
              f"{mean_std['after_mean']:.3f} +- {mean_std['after_std']:.3f} after; "
              f"gain above 2 SE on {mean_std['gain_over_two_se']}")
    return summary


def machine() -> dict:
    """What a run's numbers depend on besides its settings and seed: the library versions, and the
    CPU kernels torch chose (AVX2, AVX512, ...; ATEN_CPU_CAPABILITY picks others) or the GPU."""
    names = ["torch", "transformers", "trl", "accelerate"]
    versions = {name: importlib.metadata.version(name) for name in names}
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {**versions, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "gpu": gpu}

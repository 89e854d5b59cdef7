"""LAD inside TRL: the loss of lad_loss.py on a trainer that already scales to real models and GPUs.

`train_reasoning.py` runs LAD in a loop we wrote, for a 226k-parameter GPT on one CPU. A 0.5B-7B
model on several GPUs needs what that loop leaves out (batched generation, distributed data, mixed
precision, sharded optimiser states), and TRL's `GRPOTrainer`, run with accelerate, DeepSpeed or
FSDP, already has all of it. GRPO and LAD share every step of an iteration but one:

    sample G completions per prompt from pi_old          TRL: generation
    score them with the verifier                          TRL: reward functions
    A = (r - mean_group) / (std_group + eps)              TRL: group advantages
    logp_old = log pi_old of every sampled token          TRL: old_per_token_logps
    logp = log pi_theta of the same tokens, and a mask    TRL: completion_mask
    GRPO: -min(ratio * A, clip(ratio) * A)                TRL: GRPOTrainer._compute_loss
    LAD:  exp(A/eta) * f(x),  log x = logp - logp_old - A/eta     here: LADTrainer.compute_loss

So `LADTrainer` subclasses `GRPOTrainer` and overrides `compute_loss` (and adds one count to the
sampled batch, below), and `LADConfig` adds LAD's three settings to `GRPOConfig`: `eta` (0.25, the
paper's 1/eta = 4), `divergence` ("js") and `lad_ratio` ("token" or "sequence", as `--lad-ratio` in
train_reasoning.py: one ratio per token, as GRPO's clip uses, or Lemma 3.2's one ratio per
completion, the sum of its token log-ratios). `lad=False` gives back TRL's own GRPO loss, unchanged,
for a comparison on equal terms.

Averaging. The loss is the mean over the tokens (completions, with lad_ratio="sequence") of the whole
generation batch, all processes and micro-batches together, as TRL's default loss_type="dapo" does:
one GPU or eight, with or without gradient accumulation, every optimiser step follows the same
gradient. (A mean per micro-batch would weigh a token by 1 / its micro-batch's count; see
LADTrainer._loss_normaliser.)

No GRPO setting is dropped silently. Those that add a term to GRPO's loss (a KL penalty, an entropy
bonus, ...) have no LAD counterpart, and those that shape GRPO's clipped surrogate (epsilon, delta,
importance_sampling_level, the sapo_ and vespo_ settings, a loss_type other than "dapo") are not read
by LAD: with lad=True, LADConfig refuses all of them (GRPO_LOSS_SETTINGS, GRPO_SURROGATE_SETTINGS).
It warns when the advantages are not normalised by each group's std (scale_rewards), because the
scale of A changes what eta means (see LADConfig).

Two settings matter more for LAD than for GRPO, whose clip hides small errors in the ratio:
`disable_dropout=True` (the command sets it: with a stored pi_old, dropout adds noise to every ratio
pi_theta/pi_old) and, with lad_ratio="sequence" in bf16, `cast_lm_head_to_fp32=True` (a completion's
ratio sums its tokens' log-ratios, and with them their bf16 rounding errors; TRL offers it for models
whose LM head is not tied to the embeddings).

The TRL internals this file relies on (trl==1.16.0, pinned in requirements-trl.txt)
-----------------------------------------------------------------------------------
* `compute_loss(model, inputs, ...)` is called by transformers' Trainer on each micro-batch, with the
  dict that `GRPOTrainer._generate_and_score_completions` builds for the whole generation batch and
  splits. We read its keys `prompt_ids`, `prompt_mask`, `completion_ids`, `completion_mask`
  ([batch, tokens]), `advantages` ([batch]), `old_per_token_logps` ([batch, tokens]; absent when each
  batch is used for one step only, and then pi_old is the current model), `tool_mask` (optional) and
  `num_items_in_batch` (the generation batch's unmasked tokens, over all processes). LADTrainer's
  `_generate_and_score_completions` adds `num_completions_in_batch`, the same count for completions.
* `_get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
  compute_entropy=True)` returns log pi_theta of each completion token (logits divided by the sampling
  temperature, as for logp_old), the entropies, and an auxiliary loss. It is private.
* `loss_is_scaled_for_ga = True` (transformers then adds up the micro-batches' losses without
  dividing), and `args.steps_per_generation`, the micro-batches per generation batch and process.
* `self._metrics[mode][name]`: lists that `GRPOTrainer.log` averages into each log line.
* `aux_loss_enabled` and `_is_vlm`: a mixture-of-experts balancing loss, and a vision-language
  model whose images compute_loss would have to pass on. LADTrainer refuses both.
When TRL changes, check those, and read the new `GRPOTrainer._compute_loss` for terms added to GRPO's
loss (a new one belongs in GRPO_LOSS_SETTINGS) and for changes to loss_type="dapo"'s normaliser.
`tests/test_lad_trl.py` compares this trainer's loss with lad_loss on a fixed batch, split in three
ways, and through Trainer.training_step, and with `lad=False` with TRL's own loss, so a renamed key
or a changed return value fails there first.

Run it
------
    python lad_trl.py                   # offline: a tiny Qwen2-style model from a config, LAD, seed 0
    python lad_trl.py --seed 0 1 2 3 4 --loss lad grpo --metrics-json plots/lad_trl_metrics.json
    python lad_trl.py --quick           # 200 warm-start and 4 training steps, for tests (runs/quick/)
    python lad_trl.py --model Qwen/Qwen2.5-0.5B                        # a hub model, on a GPU
    accelerate launch --num_processes 8 lad_trl.py --model Qwen/Qwen2.5-1.5B   # several GPUs

The task is arithmetic.py's SumTask (write N as a+b), its verifier is the reward, and the held-out
prompts are evaluated before and after training. The tiny model gets a supervised warm start first
(see `hf_sft_warm_start`); with several losses, each starts from the same one. The models are saved to
runs/lad_trl/LOSS-seedSEED/ (--output-dir). The logged `loss` is weighted by exp(A/eta): with
eta = 0.25 and one right answer in a group of 8 (A/eta near 10) it is in the hundreds. Follow the
reward, `lad/above_target` and the entropy, not its size.
"""
import argparse
import copy
import importlib.metadata
import math
import os
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# The tiny model needs nothing from the Hugging Face hub. Offline mode makes that certain (a stray
# download fails at once instead of waiting on a network that is not there) and also turns off TRL's
# usage telemetry. huggingface_hub reads the variable when it is imported, hence before the imports
# below, and only when this file runs as a script without --model (a hub model needs the hub).
if __name__ == "__main__" and not any(a == "--model" or a.startswith("--model=") for a in sys.argv[1:]):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from datasets import Dataset
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer

from reasoning.arithmetic import SumTask
from lad_loss import DIVERGENCES, get_divergence, lad_loss
from cli.outputs import output_path_problem, repository_path, write_metrics_json
from cli.settings import number
from reasoning.sft import sft_warm_start

LAD_RATIOS = ("token", "sequence")

# GRPOConfig settings that add a term to GRPO's per-token loss or reweight it, with the value that
# turns each off. LADTrainer replaces that loss, so with lad=True each must stay at this value.
GRPO_LOSS_SETTINGS = {
    "beta": 0.0,  # KL penalty to a reference model
    "entropy_coef": 0.0,  # entropy bonus
    "use_adaptive_entropy": False,  # adaptive entropy bonus
    "top_entropy_quantile": 1.0,  # train only on high-entropy tokens
    "off_policy_mask_threshold": None,  # drop stale negative-advantage sequences
}
# GRPOConfig settings that shape GRPO's clipped surrogate, at TRL's defaults. LAD has no clip (its trust
# region is eta) and its own ratio level (lad_ratio), so it reads none of them: with lad=True each must
# stay at its default, or a user would believe it changed something.
GRPO_SURROGATE_SETTINGS = {
    # TRL's "sequence" level averages a completion's token log-ratios; lad_ratio="sequence" sums them.
    "importance_sampling_level": "token",
    "epsilon": 0.2, "epsilon_high": None, "delta": None,  # the clip range and INTELLECT-2's upper bound
    "sapo_temperature_neg": 1.05, "sapo_temperature_pos": 1.0,  # loss_type="sapo"
    "vespo_k_pos": 2.0, "vespo_lambda_pos": 3.0, "vespo_k_neg": 3.0, "vespo_lambda_neg": 2.0,  # "vespo"
}
# LAD averages over the tokens (or completions) of the whole generation batch, as this loss_type does.
LAD_LOSS_TYPE = "dapo"


@dataclass
class LADConfig(GRPOConfig):
    """GRPOConfig plus LAD's settings, with lad_loss's defaults.

    The scale of A sets LAD's target exp(A/eta), so eta means what lad_loss.py says only for TRL's
    default advantages, normalised by each group's std (scale_rewards="group", rewards summed before
    they are normalised). With scale_rewards="batch" or "none", or multi_objective_aggregation=
    "normalize_then_sum", A has another scale and the effective eta changes (with "none" it also grows
    with the rewards and their reward_weights); LADConfig warns.
    """

    lad: bool = field(default=True, metadata={"help": "Train with the LAD loss; False gives TRL's GRPO loss."})
    eta: float = field(default=0.25, metadata={"help": "LAD's temperature, > 0 (the paper's 1/eta = 4)."})
    divergence: str = field(default="js", metadata={"help": f"One of {sorted(DIVERGENCES)}."})
    lad_ratio: str = field(default="token", metadata={"help": "One ratio per token, or one per completion."})

    def __post_init__(self):
        if not self.eta > 0:  # also catches NaN
            raise ValueError(f"eta must be > 0, got {self.eta}")
        get_divergence(self.divergence)  # ValueError naming `divergence` if unknown
        if self.lad_ratio not in LAD_RATIOS:
            raise ValueError(f"lad_ratio must be one of {list(LAD_RATIOS)}, got {self.lad_ratio!r}")
        if self.lad:
            for name, off in GRPO_LOSS_SETTINGS.items():
                if getattr(self, name) != off:
                    raise ValueError(f"{name}={getattr(self, name)!r} changes GRPO's loss, which LAD replaces; "
                                     f"set {name}={off!r} or lad=False")
            for name, default in GRPO_SURROGATE_SETTINGS.items():
                if getattr(self, name) != default:
                    raise ValueError(f"{name}={getattr(self, name)!r} shapes GRPO's clipped surrogate, which LAD "
                                     f"does not use (its ratio level is lad_ratio); leave {name}={default!r} or "
                                     "set lad=False")
            if self.loss_type != LAD_LOSS_TYPE:
                raise ValueError(f"loss_type={self.loss_type!r}: LAD averages over the generation batch's tokens "
                                 f"(or completions), as loss_type={LAD_LOSS_TYPE!r} does; set "
                                 f"loss_type={LAD_LOSS_TYPE!r} or lad=False")
            if self.use_vllm and self.vllm_importance_sampling_correction:
                # TRL reweights GRPO's per-token loss by pi_old / pi_vllm; LADTrainer does not.
                raise ValueError("vllm_importance_sampling_correction=True is not applied to the LAD loss; "
                                 "set it to False or lad=False")
        super().__post_init__()  # also turns scale_rewards=True/False into "group"/"none"
        if self.lad and (self.scale_rewards != "group" or self.multi_objective_aggregation != "sum_then_normalize"):
            warnings.warn(f"scale_rewards={self.scale_rewards!r}, multi_objective_aggregation="
                          f"{self.multi_objective_aggregation!r}: the advantages are not normalised by each "
                          "group's std, so their scale, and with it LAD's effective eta, differs from what "
                          f"eta={self.eta} means with scale_rewards='group'", stacklevel=3)


def loss_mask(inputs) -> torch.Tensor:
    """The tokens that count, [batch, tokens]: a completion's own tokens (not padding, not tool outputs)."""
    mask = inputs["completion_mask"]
    return (mask if "tool_mask" not in inputs else mask * inputs["tool_mask"]).bool()


class LADTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with the policy loss swapped for lad_loss. Everything else is TRL's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.lad and self.aux_loss_enabled:
            raise ValueError("router_aux_loss_coef: the mixture-of-experts balancing loss is not added to "
                             "the LAD loss; set router_aux_loss_coef=0.0 or lad=False")
        if self.args.lad and self._is_vlm:  # compute_loss passes text only: the images would be dropped
            raise ValueError("processing_class: LADTrainer handles text-only models; use lad=False for "
                             "a vision-language model")

    def _generate_and_score_completions(self, inputs):
        """TRL's sampling and scoring, plus the number of completions that count in the whole generation
        batch, over all processes: the sequence ratio's average needs it (TRL counts only tokens)."""
        batch = super()._generate_and_score_completions(inputs)
        batch["num_completions_in_batch"] = self.accelerator.gather(loss_mask(batch).any(-1).sum()).sum()
        return batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.args.lad:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if return_outputs:
            raise ValueError("return_outputs: the LAD loss has no model outputs to return")

        # logp: log pi_theta of every completion token, computed the way TRL computes it for GRPO.
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([inputs["prompt_ids"], completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], completion_mask], dim=1)
        logp, entropies, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True
        )  # [batch, tokens]
        # logp_old: log pi_old of the same tokens. TRL leaves it out when the batch that was just
        # sampled is used for one optimiser step only: then pi_old is pi_theta (ratio 1, as in GRPO).
        logp_old = inputs.get("old_per_token_logps")
        logp_old = logp.detach() if logp_old is None else logp_old
        mask = loss_mask(inputs)  # False on padding after the end of a completion (and on tool outputs)
        advantages = inputs["advantages"]  # [batch]: one group-normalised advantage per completion

        # ---- LAD replaces GRPO here ----
        if self.args.lad_ratio == "sequence":
            # Lemma 3.2's ratio pi_theta(y) / pi_old(y): the sum of a completion's token log-ratios.
            # torch.where, not a product with the mask: a padding position may hold anything, even -inf.
            logp_y = torch.where(mask, logp, 0.0).sum(-1)  # [batch]
            logp_old_y = torch.where(mask, logp_old, 0.0).sum(-1)
            loss = lad_loss(logp_y, logp_old_y, advantages, self.args.eta, self.args.divergence,
                            mask=mask.any(-1), reduction="sum")  # a completion masked out entirely does not count
            count = inputs["num_completions_in_batch"]
        else:
            loss = lad_loss(logp, logp_old, advantages, self.args.eta, self.args.divergence, mask=mask,
                            reduction="sum")
            count = inputs["num_items_in_batch"]  # TRL's count of the generation batch's unmasked tokens
        # ---------------------------------

        mode = "train" if self.model.training else "eval"
        self._log_lad_metrics(mode, logp, logp_old, advantages, entropies, mask)
        return loss / self._loss_normaliser(count, mode)

    def _loss_normaliser(self, count, mode):
        """What a micro-batch's summed loss is divided by: the generation batch's `count` of tokens (or
        completions), as TRL's loss_type="dapo" divides, corrected for how the batch is split.

        `count` covers the whole generation batch: every process, and the steps_per_generation
        micro-batches that each process splits its part into. Two corrections give a micro-batch its share:
        * the processes' gradients are averaged (DDP), so each divides by count / num_processes: the
          average of the processes' sums divided by that is the sum over all of them divided by count;
        * transformers adds up the gradient_accumulation_steps micro-batches of one optimiser step
          without dividing (GRPOTrainer sets loss_is_scaled_for_ga), and when one generation batch
          serves several optimiser steps (steps_per_generation > gradient_accumulation_steps), each
          step divides by its share of the count. By default the two are equal: a factor 1.
        A mean per micro-batch (loss_type="bnpo") would instead weigh a token by 1 / the count of the
        micro-batch it landed in, and the gradient would change with the split.
        """
        normaliser = count.clamp(min=1) / self.accelerator.num_processes
        if mode == "train":  # evaluation neither accumulates nor splits the batch
            normaliser = normaliser * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        return normaliser

    @torch.no_grad()
    def _log_lad_metrics(self, mode, logp, logp_old, advantages, entropies, mask):
        """Log the mean entropy (as GRPO does) and `lad/above_target`: the share of ratios pi_theta/pi_old
        above their target exp(A/eta), i.e. x > 1; of tokens, or of completions with lad_ratio="sequence"
        (the ratios the loss weighs).

        There LAD's gradient weight -f'(x) is negative and pushes the ratio down: for wrong answers
        (A < 0, target below 1) from the first step on, for correct answers only once their ratio
        overshoots. That second kind is the brake on runaway probabilities.
        """
        log_ratio = torch.where(mask, logp - logp_old, 0.0)  # padding may hold -inf in logp_old
        if self.args.lad_ratio == "sequence":
            above = (log_ratio.sum(-1) - advantages / self.args.eta > 0)[mask.any(-1)]
        else:
            above = (log_ratio - advantages.unsqueeze(-1) / self.args.eta > 0)[mask]
        for name, values in [("entropy", entropies[mask]), ("lad/above_target", above.float())]:
            totals = torch.stack([values.sum(), torch.tensor(values.numel(), dtype=values.dtype, device=values.device)])
            totals = self.accelerator.reduce(totals, reduction="sum")  # over all processes
            self._metrics[mode][name].append((totals[0] / totals[1].clamp(min=1)).item())


# ---------------------------------------------------------------------------------------------
# The task, the reward, and the tiny model.
# ---------------------------------------------------------------------------------------------

def char_tokenizer(task: SumTask) -> PreTrainedTokenizerFast:
    """SumTask's character encoding as a Hugging Face tokenizer: token i is task.chars[i].

    The task's end marker "." is the end-of-sequence token, so generation stops after "a+b.", and
    it is also the padding, as in SumTask ("5+32." -> "5+32.."), where the mask hides it.
    """
    tokenizer = Tokenizer(models.WordLevel(vocab=dict(task.stoi), unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    tokenizer.decoder = decoders.Fuse()  # join the characters back without spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=task.end, pad_token=task.end)


def tiny_model(vocab_size: int, end_token: int, seed: int) -> Qwen2ForCausalLM:
    """A 2-layer Qwen2-style model (132k parameters) with random weights, built from a config."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=16,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=end_token, pad_token_id=end_token,
    )
    return Qwen2ForCausalLM(config)


def hf_sft_warm_start(model, task: SumTask, steps: int, seed: int, lr: float = 3e-3, batch_size: int = 64):
    """Cross-entropy on SumTask's SFT data (correct answers and near misses, half each), with sft.py's
    routine, the one the GPT chapter uses.

    GRPO and LAD learn only from differences within a group. A model with random weights almost never
    writes a correct sum, so every group scores all zeros, every advantage is 0, and so is the
    gradient (LAD's too: JS has f'(1) = 0). The GPT chapter starts from an SFT checkpoint for the same
    reason; a hub model starts from its pretraining instead.
    """
    def completion_logprobs(prompts, completions, mask):
        # The character tokenizer's ids are SumTask's, so the task's tensors are the model's input.
        logits = model(input_ids=torch.cat([prompts, completions], dim=1)).logits
        logits = logits[:, prompts.shape[1] - 1 : -1]  # the positions that predict the completion
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)
        return logp.masked_fill(~mask, 0.0)

    model.train()
    # Weight decay 0.01, AdamW's default, is the setting the demo's warm start was chosen with (README).
    return sft_warm_start(completion_logprobs, model.parameters(), task.sft_data(correct_fraction=0.5),
                                 steps=steps, batch_size=batch_size, lr=lr, seed=seed, weight_decay=0.01)


# The tiny model reads SumTask's own prompt "37=". A pretrained model reads text, so it gets two
# worked examples in the same format first; it answers after "=" and the verifier reads up to ".".
TINY_PROMPT = "{n}="
HUB_PROMPT = "Write each number as a sum of two positive integers.\n12=5+7.\n30=14+16.\n{n}="


def sum_dataset(ns, prompt: str) -> Dataset:
    """One row per prompt; TRL passes the column `n` on to the reward function."""
    return Dataset.from_dict({"prompt": [prompt.format(n=n) for n in ns], "n": list(ns)})


def verifier_reward(task: SumTask, tokenizer):
    """The reward: 1.0 when SumTask's verifier accepts the answer, else 0.0."""

    def correct(completion_ids, n, **kwargs):
        rewards = []
        for ids, target in zip(completion_ids, n):
            text = tokenizer.decode(ids)  # special tokens kept: the tiny model's "." is one of them
            answer = text[: text.index(task.end) + 1].strip() if task.end in text else text
            rewards.append(float(task.is_correct(target, answer)))
        return rewards

    return correct


# ---------------------------------------------------------------------------------------------
# The command line: one or more seeds, LAD and/or GRPO from the same warm start of each seed.
# ---------------------------------------------------------------------------------------------

# The demo's settings (the README's numbers come from them) and what --quick puts in their place, for
# tests and classrooms (seconds, numbers that mean little). A flag given on the command line wins.
# With 1000 warm-start steps the held-out reward rose on some seeds only (the training reward on all);
# from 2000, RL's gains carry over to the held-out prompts on every seed we ran (README). 32 samples
# per held-out prompt bring the standard error of that reward to about 0.015 (8 samples: 0.03).
DEFAULTS = {"steps": 300, "sft_steps": 2000, "eval_samples": 32, "output_dir": "runs/lad_trl"}
QUICK = {"steps": 4, "sft_steps": 200, "eval_samples": 2, "output_dir": "runs/quick/lad_trl"}


def parse_args(argv=None):
    """Every check happens here, before any training: a bad flag costs an error line, not a run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    default = lambda name: f"{DEFAULTS[name]}; --quick: {QUICK[name]}"  # noqa: E731
    p.add_argument("--model", default=None,
                   help="a hub model name or a local folder (GPU); default: the tiny model, offline")
    p.add_argument("--loss", nargs="+", choices=["lad", "grpo"], default=["lad"],
                   help="lad, grpo (TRL's own GRPO loss) or both, each from the same start (lad)")
    p.add_argument("--seed", nargs="+", type=number(int, low=0), default=[0], help="one or more seeds, run one after another (0)")
    p.add_argument("--eta", type=number(float, above=0), default=0.25, help="LAD temperature (0.25: the paper's 1/eta = 4)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default="js", help="LAD's f-divergence (js)")
    p.add_argument("--lad-ratio", choices=LAD_RATIOS, default="token", help="one ratio per token or per completion (token)")
    p.add_argument("--steps", type=number(int, low=1), default=None, help=f"optimiser steps ({default('steps')})")
    p.add_argument("--group-size", type=number(int, low=2), default=8,
                   help="completions per prompt, G, at least 2: advantages are relative to the group (8)")
    p.add_argument("--prompts-per-step", type=number(int, low=1), default=8, help="prompts per device and step (8)")
    p.add_argument("--num-iterations", type=number(int, low=1), default=1,
                   help="optimiser steps on each sampled batch (1, TRL's default; with more, pi_old is the model "
                        "that sampled it)")
    p.add_argument("--lr", type=number(float, above=0), default=None, help="default: 1e-3 tiny model, 1e-6 hub model")
    p.add_argument("--sft-steps", type=number(int, low=0), default=None,
                   help=f"warm-start steps of the tiny model ({default('sft_steps')})")
    p.add_argument("--max-completion-length", type=number(int, low=1), default=None,
                   help="default: 6 tiny model (SumTask's longest answer), 16 hub model")
    p.add_argument("--eval-samples", type=number(int, low=1), default=None,
                   help=f"samples per held-out prompt, before and after training ({default('eval_samples')})")
    p.add_argument("--threads", type=number(int, low=1), default=1, help="torch CPU threads (1)")
    p.add_argument("--output-dir", default=None,
                   help=f"the trained models go to OUTPUT_DIR/LOSS-seedSEED ({default('output_dir')})")
    p.add_argument("--metrics-json", default=None, help="write the settings and each run's numbers to this file")
    p.add_argument("--report-to", default="none", help="TRL's loggers: none, tensorboard, wandb, ...")
    p.add_argument("--quick", action="store_true", help="the --quick values above: seconds, for tests")
    args = p.parse_args(argv)
    for name in DEFAULTS:  # an explicit flag wins over --quick
        if getattr(args, name) is None:
            setattr(args, name, (QUICK if args.quick else DEFAULTS)[name])
    if len(set(args.seed)) != len(args.seed):  # a repeated seed would write the same LOSS-seedSEED folder twice
        p.error(f"argument --seed: values must be distinct, got {' '.join(map(str, args.seed))}")
    for flag, path, kind in [("--output-dir", args.output_dir, "dir"), ("--metrics-json", args.metrics_json, "file")]:
        problem = path is not None and output_path_problem(path, kind)
        if problem:
            p.error(f"argument {flag}: {path}: {problem}")
    args.loss = list(dict.fromkeys(args.loss))  # each loss once, in the order given
    return args


def make_tokenizer(args, task: SumTask):
    """The tiny model's character tokenizer, or the hub model's own (TRL would load it itself, but the
    reward function needs it first)."""
    if args.model is None:
        return char_tokenizer(task)
    return AutoTokenizer.from_pretrained(args.model, padding_side="left", truncation_side="left")


def initial_model(args, task: SumTask, tokenizer, seed: int):
    """The policy both losses start from: the tiny model after its warm start, or the hub model's
    name (TRL loads it, on each process)."""
    if args.model is not None:
        return args.model
    model = tiny_model(len(tokenizer), tokenizer.eos_token_id, seed)
    if args.sft_steps:
        loss = hf_sft_warm_start(model, task, args.sft_steps, seed)
        print(f"seed {seed}: SFT warm start, {args.sft_steps} steps, final cross-entropy {loss:.3f}")
    return model


def build_trainer(args, task: SumTask, tokenizer, model, seed: int, loss: str) -> LADTrainer:
    """The trainer of one run: the task's datasets and reward, and the config."""
    tiny = args.model is None
    prompt = TINY_PROMPT if tiny else HUB_PROMPT
    G = args.group_size
    config = LADConfig(
        output_dir=os.path.join(args.output_dir, f"{loss}-seed{seed}"),
        lad=loss == "lad", eta=args.eta, divergence=args.divergence, lad_ratio=args.lad_ratio,
        max_steps=args.steps, learning_rate=args.lr or (1e-3 if tiny else 1e-6),
        num_generations=G, num_generations_eval=args.eval_samples, per_device_train_batch_size=args.prompts_per_step * G,
        per_device_eval_batch_size=len(task.heldout_n) * args.eval_samples, num_iterations=args.num_iterations,
        max_completion_length=args.max_completion_length or (task.MAX_COMPLETION if tiny else 16),
        temperature=1.0, seed=seed, logging_steps=max(1, min(10, args.steps // 10)),
        report_to=args.report_to, save_strategy="no",
        # With a stored pi_old (num_iterations > 1), dropout would add noise to every ratio pi/pi_old.
        disable_dropout=True,
        # A model this small trains faster in float32 and without recomputing activations. A real one
        # gets TRL's defaults: bf16 (where there is a GPU) and activation checkpointing.
        bf16=not tiny and torch.cuda.is_available(), activation_checkpointing=not tiny,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    return LADTrainer(
        model=model, reward_funcs=verifier_reward(task, tokenizer), args=config,
        train_dataset=sum_dataset(task.train_n, prompt), eval_dataset=sum_dataset(task.heldout_n, prompt),
        processing_class=tokenizer,
    )


def heldout_reward(trainer: LADTrainer, samples: int):
    """The verifier's mean over samples completions of every held-out prompt, and its standard error
    (the std of those rewards / sqrt(their number): the spread between prompts counts too)."""
    metrics = trainer.evaluate()
    return metrics["eval_reward"], metrics["eval_reward_std"] / samples**0.5


def train_and_evaluate(trainer: LADTrainer, args, seed: int, loss: str) -> dict:
    """Held-out reward before training, the training, held-out reward after; saves the model.
    Returns the run's numbers: held-out reward and its standard error, and the first and last logged
    training reward, entropy and (LAD) lad/above_target."""
    samples = len(trainer.eval_dataset) * args.eval_samples
    before, se_before = heldout_reward(trainer, samples)
    trainer.train()
    after, se_after = heldout_reward(trainer, samples)
    trainer.save_model(trainer.args.output_dir)
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    run = {"seed": seed, "loss": loss, "heldout_reward_before": before, "heldout_reward_after": after,
           "heldout_se_before": se_before, "heldout_se_after": se_after}
    for name in ["reward", "entropy"] + (["lad/above_target"] if loss == "lad" else []):
        run[f"train_{name}_first"], run[f"train_{name}_last"] = logs[0][name], logs[-1][name]
    print(f"seed {seed}, {loss.upper()}: held-out reward (the verifier, {args.eval_samples} samples per prompt) "
          f"{before:.3f} +- {se_before:.3f} before, {after:.3f} +- {se_after:.3f} after {args.steps} steps; "
          f"model saved to {trainer.args.output_dir}")
    return run


def summarise(runs: list[dict], losses) -> dict:
    """For each loss, over seeds: mean and std (n - 1) of the held-out reward before, after and of the
    gain, and on how many seeds the gain exceeds twice its standard error (the two rewards' SEs
    combined), and the smallest gain in those units."""
    summary = {}
    for loss in losses:
        mine = [r for r in runs if r["loss"] == loss]
        gains = [r["heldout_reward_after"] - r["heldout_reward_before"] for r in mine]
        se = [math.hypot(r["heldout_se_before"], r["heldout_se_after"]) for r in mine]  # of each gain
        z = [g / s for g, s in zip(gains, se) if s > 0]  # (s = 0 only if every reward was 0, or every one 1)
        summary[loss] = {"seeds": len(mine), "gain_over_two_se": sum(v > 2 for v in z),
                         "smallest_gain_in_se": min(z, default=None)}
        for name, values in [("before", [r["heldout_reward_before"] for r in mine]),
                             ("after", [r["heldout_reward_after"] for r in mine]), ("gain", gains)]:
            summary[loss][f"{name}_mean"] = statistics.mean(values)
            summary[loss][f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{loss.upper()} over {len(mine)} seeds: held-out reward {summary[loss]['before_mean']:.3f} "
              f"+- {summary[loss]['before_std']:.3f} before, {summary[loss]['after_mean']:.3f} "
              f"+- {summary[loss]['after_std']:.3f} after; gain above 2 SE on {summary[loss]['gain_over_two_se']}")
    return summary


def machine() -> dict:
    """What a run's numbers depend on besides its settings and seed: the library versions, and the CPU
    kernels torch chose (AVX2, AVX512, ...; ATEN_CPU_CAPABILITY picks others) or the GPU."""
    versions = {name: importlib.metadata.version(name) for name in ["torch", "transformers", "trl", "accelerate"]}
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {**versions, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "gpu": gpu}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = SumTask()
    tokenizer = make_tokenizer(args, task)
    runs = []
    for seed in args.seed:
        start = initial_model(args, task, tokenizer, seed)
        for loss in args.loss:  # each loss from a copy of the same start
            trainer = build_trainer(args, task, tokenizer, copy.deepcopy(start), seed, loss)
            runs.append(train_and_evaluate(trainer, args, seed, loss))
    summary = summarise(runs, args.loss)
    if args.metrics_json:
        settings = dict(vars(args), output_dir=repository_path(args.output_dir),
                        metrics_json=repository_path(args.metrics_json))
        metrics = {"settings": settings, "machine": machine(), "summary": summary, "runs": runs}
        path = write_metrics_json(args.metrics_json, metrics)
        print(f"metrics written to {path}")
    return runs


if __name__ == "__main__":
    main()

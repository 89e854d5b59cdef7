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

So `LADTrainer` subclasses `GRPOTrainer` and overrides one method, `compute_loss`, and `LADConfig`
adds LAD's three settings to `GRPOConfig`: `eta` (0.25, the paper's 1/eta = 4), `divergence` ("js")
and `lad_ratio` ("token" or "sequence", as `--lad-ratio` in train_reasoning.py: one ratio per token,
as GRPO's clip uses, or Lemma 3.2's one ratio per completion, the sum of its token log-ratios).
`lad=False` gives back TRL's own GRPO loss, unchanged, for a comparison on equal terms.

GRPO settings that add a term to GRPO's loss (a KL penalty, an entropy bonus, ...) have no LAD
counterpart here; rather than drop them silently, LADConfig refuses them (see GRPO_LOSS_SETTINGS).
Settings that only shape GRPO's clipped surrogate (loss_type, epsilon, importance_sampling_level)
are ignored by LAD: it averages over the unmasked tokens (or completions) of each micro-batch.

The TRL internals this file relies on (trl==1.16.0, pinned in requirements-trl.txt)
-----------------------------------------------------------------------------------
* `compute_loss(model, inputs, ...)` is called by transformers' Trainer on each micro-batch, with the
  dict that `GRPOTrainer._generate_and_score_completions` builds. We read its keys `prompt_ids`,
  `prompt_mask`, `completion_ids`, `completion_mask` ([batch, tokens]), `advantages` ([batch]),
  `old_per_token_logps` ([batch, tokens]; absent when each batch is used for one step only, and then
  pi_old is the current model) and `tool_mask` (optional).
* `_get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
  compute_entropy=True)` returns log pi_theta of each completion token (logits divided by the sampling
  temperature, as for logp_old), the entropies, and an auxiliary loss. It is private.
* `loss_is_scaled_for_ga = True`: compute_loss itself divides by `current_gradient_accumulation_steps`.
* `self._metrics[mode][name]`: lists that `GRPOTrainer.log` averages into each log line.
* `aux_loss_enabled` and `_is_vlm`: a mixture-of-experts balancing loss, and a vision-language
  model whose images compute_loss would have to pass on. LADTrainer refuses both.
When TRL changes, check those five, and read the new `GRPOTrainer._compute_loss` for terms added to
GRPO's loss: a new one belongs in GRPO_LOSS_SETTINGS. `tests/test_lad_trl.py` compares this trainer's
loss with lad_loss on a fixed batch, and with `lad=False` with TRL's own loss, so a renamed key or a
changed return value fails there first.

Run it
------
    python lad_trl.py                   # offline: a tiny Qwen2-style model from a config, random weights
    python lad_trl.py --quick           # the same with 200 warm-start and 4 training steps, for tests
    python lad_trl.py --model Qwen/Qwen2.5-0.5B                        # a hub model, on a GPU
    accelerate launch --num_processes 8 lad_trl.py --model Qwen/Qwen2.5-1.5B   # several GPUs

The task is arithmetic.py's SumTask (write N as a+b), its verifier is the reward, and the held-out
prompts are evaluated before and after training. The tiny model gets a short supervised warm start
first (see `sft_warm_start`). The model is saved to runs/lad_trl/ (--output-dir). The logged `loss`
is weighted by exp(A/eta): with eta = 0.25 and one right answer in a group of 8 (A/eta near 10) it
is in the hundreds. Follow the reward, `lad/above_target` and the entropy, not its size.
"""
import argparse
import os
import sys
from dataclasses import dataclass, field

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

from arithmetic import SumTask
from lad_loss import DIVERGENCES, get_divergence, lad_loss

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


@dataclass
class LADConfig(GRPOConfig):
    """GRPOConfig plus LAD's settings, with lad_loss's defaults."""

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
            if self.use_vllm and self.vllm_importance_sampling_correction:
                # TRL reweights GRPO's per-token loss by pi_old / pi_vllm; LADTrainer does not.
                raise ValueError("vllm_importance_sampling_correction=True is not applied to the LAD loss; "
                                 "set it to False or lad=False")
        super().__post_init__()


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
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        mask = mask.bool()  # False on padding after the end of a completion (and on tool outputs)
        advantages = inputs["advantages"]  # [batch]: one group-normalised advantage per completion

        # ---- LAD replaces GRPO here ----
        if self.args.lad_ratio == "sequence":
            # Lemma 3.2's ratio pi_theta(y) / pi_old(y): the sum of a completion's token log-ratios.
            # torch.where, not a product with the mask: a padding position may hold anything, even -inf.
            logp_y = torch.where(mask, logp, 0.0).sum(-1)  # [batch]
            logp_old_y = torch.where(mask, logp_old, 0.0).sum(-1)
            loss = lad_loss(logp_y, logp_old_y, advantages, self.args.eta, self.args.divergence,
                            mask=mask.any(-1))  # a completion masked out entirely does not count
        else:
            loss = lad_loss(logp, logp_old, advantages, self.args.eta, self.args.divergence, mask=mask)
        # ---------------------------------

        mode = "train" if self.model.training else "eval"
        self._log_lad_metrics(mode, logp, logp_old, advantages, entropies, mask)
        # transformers' Trainer adds up the micro-batches of one optimiser step; GRPOTrainer tells it
        # (loss_is_scaled_for_ga) that the division by their number happens here, as for GRPO.
        if mode == "train":
            loss = loss / self.current_gradient_accumulation_steps
        return loss

    @torch.no_grad()
    def _log_lad_metrics(self, mode, logp, logp_old, advantages, entropies, mask):
        """Log the mean entropy (as GRPO does) and `lad/above_target`, the share of tokens whose ratio
        pi_theta/pi_old is above its target exp(A/eta), i.e. x > 1.

        There LAD's gradient weight -f'(x) is negative and pushes the token down: tokens of wrong
        answers (A < 0, target below 1) from the first step on, tokens of correct answers only once
        their ratio overshoots. That second kind is the brake on runaway probabilities.
        """
        log_x = (logp - logp_old) - advantages.unsqueeze(-1) / self.args.eta
        for name, value in [("entropy", entropies), ("lad/above_target", (log_x > 0).float())]:
            totals = torch.stack([value[mask].sum(), mask.sum().float()])
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


def sft_warm_start(model, task: SumTask, steps: int, seed: int, lr: float = 3e-3, batch_size: int = 64):
    """Cross-entropy on SumTask's SFT data (correct answers and near misses, half each).

    GRPO and LAD learn only from differences within a group. A model with random weights almost never
    writes a correct sum, so every group scores all zeros, every advantage is 0, and so is the
    gradient (LAD's too: JS has f'(1) = 0). The GPT chapter starts from an SFT checkpoint for the same
    reason; a hub model starts from its pretraining instead.
    """
    prompts, completions, mask, weight = task.sft_data(correct_fraction=0.5)
    input_ids = torch.cat([prompts, completions], dim=1)
    scored = torch.cat([torch.zeros_like(prompts, dtype=torch.bool), mask], dim=1)
    labels = input_ids.masked_fill(~scored, -100)  # the prompt is given; padding is not an answer
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        batch = torch.multinomial(weight, batch_size, replacement=True, generator=generator)
        loss = model(input_ids=input_ids[batch], labels=labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


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
# The command line.
# ---------------------------------------------------------------------------------------------

def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--model", default=None,
                   help="a hub model name or a local folder (GPU); default: the tiny model, offline")
    p.add_argument("--loss", choices=["lad", "grpo"], default="lad", help="grpo: TRL's own GRPO loss")
    p.add_argument("--eta", type=positive(float), default=0.25, help="LAD temperature (1/eta = 4)")
    p.add_argument("--divergence", choices=sorted(DIVERGENCES), default="js")
    p.add_argument("--lad-ratio", choices=LAD_RATIOS, default="token")
    p.add_argument("--steps", type=positive(int), default=None, help="optimiser steps (300; --quick: 4)")
    p.add_argument("--group-size", type=positive(int), default=8, help="completions per prompt, G")
    p.add_argument("--prompts-per-step", type=positive(int), default=8, help="prompts per device and step")
    p.add_argument("--num-iterations", type=positive(int), default=2,
                   help="optimiser steps on each sampled batch (pi_old is the model that sampled it)")
    p.add_argument("--lr", type=positive(float), default=None, help="default: 1e-3 tiny model, 1e-6 hub model")
    p.add_argument("--sft-steps", type=int, default=None,
                   help="warm-start steps of the tiny model (1000; --quick: 200)")
    p.add_argument("--max-completion-length", type=positive(int), default=None,
                   help="default: 6 tiny model (SumTask's longest answer), 16 hub model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default="runs/lad_trl")
    p.add_argument("--report-to", default="none", help="TRL's loggers: none, tensorboard, wandb, ...")
    p.add_argument("--quick", action="store_true", help="fewer steps (see --steps, --sft-steps), for tests")
    args = p.parse_args(argv)
    if args.group_size < 2:
        p.error(f"argument --group-size: must be >= 2 (advantages are relative to the group), got {args.group_size}")
    if args.sft_steps is not None and args.sft_steps < 0:
        p.error(f"argument --sft-steps: must be >= 0, got {args.sft_steps}")
    # --quick changes the defaults; a number given on the command line wins.
    args.steps = args.steps or (4 if args.quick else 300)
    args.sft_steps = (200 if args.quick else 1000) if args.sft_steps is None else args.sft_steps
    return args


def build_trainer(args) -> LADTrainer:
    """The model (tiny and warm-started, or a hub name), the task's datasets and reward, the config."""
    task = SumTask()
    tiny = args.model is None
    if tiny:
        tokenizer = char_tokenizer(task)
        model = tiny_model(len(tokenizer), tokenizer.eos_token_id, args.seed)
        if args.sft_steps:
            loss = sft_warm_start(model, task, args.sft_steps, args.seed)
            print(f"SFT warm start: {args.sft_steps} steps, final cross-entropy {loss:.3f}")
    else:
        # TRL would load the tokenizer itself; the reward function needs it first.
        tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left", truncation_side="left")
        model = args.model  # TRL loads the model, on each process
    prompt = TINY_PROMPT if tiny else HUB_PROMPT
    G = args.group_size
    config = LADConfig(
        output_dir=args.output_dir,
        lad=args.loss == "lad", eta=args.eta, divergence=args.divergence, lad_ratio=args.lad_ratio,
        max_steps=args.steps, learning_rate=args.lr or (1e-3 if tiny else 1e-6),
        num_generations=G, num_generations_eval=G, per_device_train_batch_size=args.prompts_per_step * G,
        per_device_eval_batch_size=len(task.heldout_n) * G, num_iterations=args.num_iterations,
        max_completion_length=args.max_completion_length or (task.MAX_COMPLETION if tiny else 16),
        temperature=1.0, seed=args.seed, logging_steps=max(1, min(10, args.steps // 10)),
        report_to=args.report_to, save_strategy="no",
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


def train_and_evaluate(trainer: LADTrainer, args):
    """Held-out reward before training, the training, held-out reward after; saves the model."""
    before = trainer.evaluate()["eval_reward"]
    trainer.train()
    after = trainer.evaluate()["eval_reward"]
    trainer.save_model(args.output_dir)
    print(f"held-out reward (the verifier, {args.group_size} samples per prompt): {before:.3f} before, "
          f"{after:.3f} after {args.steps} steps of {args.loss.upper()}; model saved to {args.output_dir}")
    return before, after


def main(argv=None):
    args = parse_args(argv)
    return train_and_evaluate(build_trainer(args), args)


if __name__ == "__main__":
    main()

"""LAD inside TRL: LADConfig and LADTrainer, the loss of lad_loss.py on TRL's GRPOTrainer.

Use it as TRL's GRPOTrainer (trl==1.16.0, `pip install -r requirements-trl.txt`):

    from lad_trl import LADConfig, LADTrainer
    config = LADConfig(output_dir="runs/lad", eta=0.25, divergence="js", lad_ratio="token")
    trainer = LADTrainer(model="Qwen/Qwen2.5-0.5B", reward_funcs=reward, args=config,
                         train_dataset=dataset)
    trainer.train()

`dataset` has a "prompt" column; `reward(completions, **kwargs)` returns one float per completion
(TRL passes the dataset's other columns as keyword arguments); every other GRPOConfig setting
(num_generations, learning_rate, ...) goes into LADConfig, and without a GPU bf16=False (TRL's
default needs one).
`python -m trl_demo` runs it offline on the arithmetic task (trl_demo/).

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
sampled batch, below), and `LADConfig` adds LAD's settings to `GRPOConfig`: `eta` (0.25, the
paper's 1/eta = 4), `divergence` ("js") and `lad_ratio` ("token": one ratio per token, as GRPO's
clip uses; or "sequence": Lemma 3.2's one ratio per completion, the sum of its token log-ratios).
`lad=False` gives back TRL's own GRPO loss, unchanged, for a comparison on equal terms.

Token or sequence ratio: two defaults, on purpose. `lad_ratio` defaults to "token" here
(LADConfig, and so the demo's --lad-ratio) and to "sequence" in the GPT chapter
(train_reasoning.py's --lad-ratio; reasoning/methods.py says why). The GPT chapter checks Lemma
3.2's exact form, whose minimiser is pi*, on answers of at most 6 tokens. A trainer for real models
compares each token with its target, as GRPO's clip and TRL's importance_sampling_level="token" do:
one ratio per completion sums hundreds of token log-ratios, and their bf16 rounding, into one
exponent. With one update per sampled batch (both chapters' default) every ratio is 1, every token
of a completion gets the same weight under both forms, and the two gradients differ only by a factor
per batch: its mean completion length (the token form divides by the batch's tokens, the sequence
form by its completions). The committed demo numbers are the token form's.

Averaging. The loss is the mean over the tokens (completions, with lad_ratio="sequence") of the
whole generation batch, all processes and micro-batches together, as TRL's default loss_type="dapo"
does: one GPU or eight, with or without gradient accumulation, every optimiser step follows the same
gradient. (A mean per micro-batch would weigh a token by 1 / its micro-batch's count; see
LADTrainer._loss_normaliser.)

No GRPO setting is dropped silently. Those that add a term to GRPO's loss (a KL penalty, an entropy
bonus, ...) have no LAD counterpart, and those that shape GRPO's clipped surrogate (epsilon, delta,
importance_sampling_level, the sapo_ and vespo_ settings, a loss_type other than "dapo") are not
read by LAD: with lad=True, LADConfig refuses all of them (GRPO_LOSS_SETTINGS,
GRPO_SURROGATE_SETTINGS). It warns when the advantages are not normalised by each group's std
(scale_rewards), because the scale of A changes what eta means (see LADConfig).

Two settings matter more for LAD than for GRPO, whose clip hides small errors in the ratio:
`disable_dropout=True` (the demo sets it: with a stored pi_old, dropout adds noise to every ratio
pi_theta/pi_old) and, with lad_ratio="sequence" in bf16, `cast_lm_head_to_fp32=True` (a
completion's ratio sums its tokens' log-ratios, and with them their bf16 rounding errors; TRL offers
it for models whose LM head is not tied to the embeddings).

The TRL internals this file relies on (trl==1.16.0, pinned in requirements-trl.txt)
-----------------------------------------------------------------------------------
* `compute_loss(model, inputs, ...)` is called by transformers' Trainer on each micro-batch, with
  the dict that `GRPOTrainer._generate_and_score_completions` builds for the whole generation batch
  and splits. We read its keys `prompt_ids`, `prompt_mask`, `completion_ids`, `completion_mask`
  ([batch, tokens]), `advantages` ([batch]), `old_per_token_logps` ([batch, tokens]; absent when
  each batch is used for one step only, and then pi_old is the current model), `tool_mask`
  (optional) and `num_items_in_batch` (the generation batch's unmasked tokens, over all processes).
  LADTrainer's `_generate_and_score_completions` adds `num_completions_in_batch`, the same count
  for completions.
* `_get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
  compute_entropy=True)` returns log pi_theta of each completion token (logits divided by the
  sampling temperature, as for logp_old), the entropies, and an auxiliary loss. It is private.
* `loss_is_scaled_for_ga = True` (transformers then adds up the micro-batches' losses without
  dividing), and `args.steps_per_generation`, the micro-batches per generation batch and process.
* `self._metrics[mode][name]`: lists that `GRPOTrainer.log` averages into each log line.
* `aux_loss_enabled` and `_is_vlm`: a mixture-of-experts balancing loss, and a vision-language
  model whose images compute_loss would have to pass on. LADTrainer refuses both.
When TRL changes, check those, and read the new `GRPOTrainer._compute_loss` for terms added to
GRPO's loss (a new one belongs in GRPO_LOSS_SETTINGS) and for changes to loss_type="dapo"'s
normaliser. `tests/test_lad_trl.py` compares this trainer's loss with lad_loss on a fixed batch,
split in three ways, and through Trainer.training_step, and with `lad=False` with TRL's own loss,
and sorts every GRPOConfig setting into what LAD refuses and what it uses, so a renamed key, a
changed return value or a new setting fails there first. `tests/test_lad_trl_against_trl.py`
feeds a batch that TRL samples itself to this trainer and to TRL's own GRPO loss, and
`tests/test_lad_trl_two_processes.py` runs one generation batch on two real processes (gloo)
against the same batch on one.

The demo
--------
trl_demo/ trains this trainer, and TRL's own GRPO loss, on the GPT chapter's arithmetic task with a
tiny model, offline, on CPU (`python -m trl_demo --help`; docs/trl.md shows its results).
"""
import warnings
from dataclasses import dataclass, field

import torch
from trl import GRPOConfig, GRPOTrainer

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
# GRPOConfig settings that shape GRPO's clipped surrogate, at TRL's defaults. LAD has no clip (its
# trust region is eta) and its own ratio level (lad_ratio), so it reads none of them: with lad=True
# each must stay at its default, or a user would believe it changed something.
GRPO_SURROGATE_SETTINGS = {
    # TRL's "sequence" level averages a completion's token log-ratios; lad_ratio="sequence" sums
    # them.
    "importance_sampling_level": "token",
    # the clip range, and INTELLECT-2's upper bound on the ratio
    "epsilon": 0.2, "epsilon_high": None, "delta": None,
    "sapo_temperature_neg": 1.05, "sapo_temperature_pos": 1.0,  # loss_type="sapo"
    "vespo_k_pos": 2.0, "vespo_lambda_pos": 3.0,  # loss_type="vespo"
    "vespo_k_neg": 3.0, "vespo_lambda_neg": 2.0,
}
# LAD averages over the tokens (or completions) of the whole generation batch, as this loss_type
# does.
LAD_LOSS_TYPE = "dapo"


@dataclass
class LADConfig(GRPOConfig):
    """GRPOConfig plus LAD's settings, with lad_loss's defaults.

    The scale of A sets LAD's target exp(A/eta), so eta means what lad_loss.py says only for TRL's
    default advantages, normalised by each group's std (scale_rewards="group", rewards summed before
    they are normalised). With scale_rewards="batch" or "none", or multi_objective_aggregation=
    "normalize_then_sum", A has another scale and the effective eta changes (with "none" it also
    grows with the rewards and their reward_weights); LADConfig warns.
    """

    lad: bool = field(default=True, metadata={
        "help": "Train with the LAD loss; False gives TRL's GRPO loss."})
    eta: float = field(default=0.25, metadata={
        "help": "LAD's temperature, > 0 (the paper's 1/eta = 4)."})
    divergence: str = field(default="js", metadata={"help": f"One of {sorted(DIVERGENCES)}."})
    lad_ratio: str = field(default="token", metadata={
        "help": "One ratio per token, or one per completion (see lad_trl.py's docstring)."})

    def __post_init__(self):
        if not self.eta > 0:  # also catches NaN
            raise ValueError(f"eta must be > 0, got {self.eta}")
        get_divergence(self.divergence)  # ValueError naming `divergence` if unknown
        if self.lad_ratio not in LAD_RATIOS:
            raise ValueError(f"lad_ratio must be one of {list(LAD_RATIOS)}, got {self.lad_ratio!r}")
        if self.lad:
            self._refuse_what_lad_would_ignore()
        super().__post_init__()  # also turns scale_rewards=True/False into "group"/"none"
        if self.lad and (self.scale_rewards != "group"
                         or self.multi_objective_aggregation != "sum_then_normalize"):
            warnings.warn(f"scale_rewards={self.scale_rewards!r}, multi_objective_aggregation="
                          f"{self.multi_objective_aggregation!r}: the advantages are not "
                          "normalised by each group's std, so their scale, and with it LAD's "
                          f"effective eta, differs from what eta={self.eta} means with "
                          "scale_rewards='group'",
                          stacklevel=3)

    def _refuse_what_lad_would_ignore(self):
        """A ValueError naming the first GRPO setting that LAD would not apply."""
        for name, off in GRPO_LOSS_SETTINGS.items():
            if getattr(self, name) != off:
                raise ValueError(f"{name}={getattr(self, name)!r} changes GRPO's loss, which LAD "
                                 f"replaces; set {name}={off!r} or lad=False")
        for name, default in GRPO_SURROGATE_SETTINGS.items():
            if getattr(self, name) != default:
                raise ValueError(f"{name}={getattr(self, name)!r} shapes GRPO's clipped surrogate, "
                                 "which LAD does not use (its ratio level is lad_ratio); leave "
                                 f"{name}={default!r} or set lad=False")
        if self.loss_type != LAD_LOSS_TYPE:
            raise ValueError(f"loss_type={self.loss_type!r}: LAD averages over the generation "
                             f"batch's tokens (or completions), as loss_type={LAD_LOSS_TYPE!r} "
                             f"does; set loss_type={LAD_LOSS_TYPE!r} or lad=False")
        if self.use_vllm and self.vllm_importance_sampling_correction:
            # TRL reweights GRPO's per-token loss by pi_old / pi_vllm; LADTrainer does not.
            raise ValueError("vllm_importance_sampling_correction=True is not applied to the LAD "
                             "loss; set it to False or lad=False")


def loss_mask(inputs) -> torch.Tensor:
    """The tokens that count, [batch, tokens]: a completion's own, not padding nor tool outputs."""
    mask = inputs["completion_mask"]
    return (mask if "tool_mask" not in inputs else mask * inputs["tool_mask"]).bool()


class LADTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with the policy loss swapped for lad_loss. Everything else is TRL's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.lad and self.aux_loss_enabled:
            raise ValueError("router_aux_loss_coef: the mixture-of-experts balancing loss is not "
                             "added to the LAD loss; set router_aux_loss_coef=0.0 or lad=False")
        if self.args.lad and self._is_vlm:  # compute_loss passes text only: images would be dropped
            raise ValueError("processing_class: LADTrainer handles text-only models; use lad=False "
                             "for a vision-language model")

    def _generate_and_score_completions(self, inputs):
        """TRL's sampling and scoring, plus the number of completions that count in the whole
        generation batch, over all processes: the sequence ratio's average needs it (TRL counts
        only tokens)."""
        batch = super()._generate_and_score_completions(inputs)
        counted = loss_mask(batch).any(-1).sum()
        batch["num_completions_in_batch"] = self.accelerator.gather(counted).sum()
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
        # sampled is used for one optimiser step only: then pi_old is pi_theta (ratio 1, as GRPO's).
        logp_old = inputs.get("old_per_token_logps")
        logp_old = logp.detach() if logp_old is None else logp_old
        mask = loss_mask(inputs)  # False on padding after a completion's end (and on tool outputs)
        advantages = inputs["advantages"]  # [batch]: one group-normalised advantage per completion

        # ---- LAD replaces GRPO here ----
        if self.args.lad_ratio == "sequence":
            # Lemma 3.2's ratio pi_theta(y) / pi_old(y): the sum of a completion's token log-ratios.
            # torch.where, not a product with the mask: padding may hold anything, even -inf.
            logp_y = torch.where(mask, logp, 0.0).sum(-1)  # [batch]
            logp_old_y = torch.where(mask, logp_old, 0.0).sum(-1)
            # a completion masked out entirely does not count
            loss = lad_loss(logp_y, logp_old_y, advantages, self.args.eta, self.args.divergence,
                            mask=mask.any(-1), reduction="sum")
            count = inputs["num_completions_in_batch"]
        else:
            loss = lad_loss(logp, logp_old, advantages, self.args.eta, self.args.divergence,
                            mask=mask, reduction="sum")
            count = inputs["num_items_in_batch"]  # TRL's count of the generation batch's tokens
        # ---------------------------------

        mode = "train" if self.model.training else "eval"
        self._log_lad_metrics(mode, logp, logp_old, advantages, entropies, mask)
        return loss / self._loss_normaliser(count, mode)

    def _loss_normaliser(self, count, mode):
        """What a micro-batch's summed loss is divided by: the generation batch's `count` of tokens
        (or completions), as TRL's loss_type="dapo" divides, corrected for how the batch is split.

        `count` covers the whole generation batch: every process, and the steps_per_generation
        micro-batches that each process splits its part into. Two corrections give a micro-batch
        its share:
        * the processes' gradients are averaged (DDP), so each divides by count / num_processes:
          the average of the processes' sums divided by that is the sum over all of them / count;
        * transformers adds up the gradient_accumulation_steps micro-batches of one optimiser step
          without dividing (GRPOTrainer sets loss_is_scaled_for_ga), and when one generation batch
          serves several optimiser steps (steps_per_generation > gradient_accumulation_steps), each
          step divides by its share of the count. By default the two are equal: a factor 1.
        A mean per micro-batch (loss_type="bnpo") would instead weigh a token by 1 / the count of
        the micro-batch it landed in, and the gradient would change with the split.
        """
        normaliser = count.clamp(min=1) / self.accelerator.num_processes
        if mode == "train":  # evaluation neither accumulates nor splits the batch
            steps = self.current_gradient_accumulation_steps / self.args.steps_per_generation
            normaliser = normaliser * steps
        return normaliser

    @torch.no_grad()
    def _log_lad_metrics(self, mode, logp, logp_old, advantages, entropies, mask):
        """Log the mean entropy over the tokens that count (as GRPO does) and `lad/above_target`:
        the share of ratios pi_theta/pi_old above their target exp(A/eta), i.e. x > 1; of tokens,
        or of completions with lad_ratio="sequence" (the ratios the loss weighs: a completion
        masked out entirely is not one of them).

        What happens there depends on the divergence. A sample's weight on grad log pi_theta is
        ratio * (-f'(x)). For the generators with f'(1) = 0 (js, the default, jf, tv, hd) it turns
        negative exactly at x = 1 and pushes the ratio back: for wrong answers (A < 0, target
        below 1) from the first step on, for correct answers once their ratio overshoots, the
        brake on runaway probabilities. kl's, -ratio (log x + 1), turns negative already at
        x = 1/e, below the target. rkl's, ratio / x = exp(A/eta), does not depend on the ratio and
        is never negative: no sample is braked, and for rkl this share marks nothing.
        """
        log_ratio = torch.where(mask, logp - logp_old, 0.0)  # padding may hold -inf in logp_old
        if self.args.lad_ratio == "sequence":
            above = (log_ratio.sum(-1) - advantages / self.args.eta > 0)[mask.any(-1)]
        else:
            above = (log_ratio - advantages.unsqueeze(-1) / self.args.eta > 0)[mask]
        for name, values in [("entropy", entropies[mask]), ("lad/above_target", above.float())]:
            totals = torch.stack([values.sum(), values.new_tensor(values.numel())])
            totals = self.accelerator.reduce(totals, reduction="sum")  # over all processes
            self._metrics[mode][name].append((totals[0] / totals[1].clamp(min=1)).item())


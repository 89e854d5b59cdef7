"""Tests of LAD's trainer inside TRL (lad_trl.LADConfig, LADTrainer): on a fixed batch the trainer's
loss is lad_loss, averaged so that the gradient does not depend on how the batch is split over
micro-batches and processes; with LAD off it is TRL's own GRPO loss; every GRPO setting LAD would
ignore is refused; lad/above_target counts the ratios the loss weighs. All offline, on CPU.
The demo's tests are in test_lad_trl_demo.py, the two real processes in
test_lad_trl_two_processes.py.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import ast
import dataclasses
import re
from pathlib import Path

import pytest

import trl_or_skip  # noqa: F401  (skips this module where TRL is not installed)

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from transformers import TrainingArguments
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import split_tensor_dict

import lad_trl
from lad_loss import lad_loss
from reasoning.arithmetic import SumTask
from trl_demo.model import char_tokenizer, tiny_model
from trl_demo.task import TINY_PROMPT, sum_dataset, verifier_reward

TASK = SumTask()
TEMPERATURE = 0.7  # not 1, so a logp computed without the sampling temperature would not match


def cpu_config(tmp_path, config_class=lad_trl.LADConfig, **settings):
    return config_class(
        output_dir=str(tmp_path), report_to="none", bf16=False, activation_checkpointing=False,
        dataloader_pin_memory=False, **settings,
    )


def make_trainer(tmp_path, config_class=lad_trl.LADConfig, trainer_class=lad_trl.LADTrainer,
                 model=None, processing_class=None, **settings):
    """A trainer around a fresh tiny model (seed 0: every call gets the same weights), untrained."""
    tokenizer = char_tokenizer(TASK)
    model = model or tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0)
    settings = {"per_device_train_batch_size": 6, "num_generations": 2,
                "temperature": TEMPERATURE, **settings}
    return trainer_class(
        model=model, reward_funcs=verifier_reward(TASK, tokenizer),
        args=cpu_config(tmp_path, config_class, **settings),
        train_dataset=sum_dataset(TASK.train_n, TINY_PROMPT),
        processing_class=processing_class or tokenizer,
    )


def fixed_batch(with_old=True, log_zero_padding=True):
    """Six completions of three prompts, as GRPOTrainer hands a generation batch to compute_loss.

    The completions have different lengths, so the mask hides 0 to 2 padding positions, and there
    logp_old holds values far from anything real: 25 (a loss that ignored the mask would change a
    lot) and -inf (log 0: multiplying it by a 0 in the mask would give NaN, not 0). The fifth
    completion is masked out entirely, as TRL does with mask_truncated_completions: it must not
    count. Its two halves hold 15 and 9 tokens, and 3 and 2 completions that count: a mean per half
    weighs them differently from a mean over the whole batch.
    """
    prompt_ids = TASK.prompts([37, 37, 52, 52, 17, 17])
    completion_ids, completion_mask = TASK.completions(
        ["12+25.", "5+3.", "50+2.", "1+51.", "11+41.", "9+8."])
    completion_mask[4] = False
    generator = torch.Generator().manual_seed(0)
    # log-probabilities in (-3, 0]
    logp_old = -torch.rand(completion_ids.shape, generator=generator) * 3
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask.long(),
        "advantages": torch.tensor([1.2, -0.7, 0.4, -1.5, 2.0, -0.3]),
    }
    if with_old:
        padding = torch.full_like(logp_old, 25.0)
        if log_zero_padding:  # TRL's own GRPO loss turns this into NaN: it multiplies by the mask
            padding[1] = -float("inf")  # the second completion, "5+3.", has two padding positions
        inputs["old_per_token_logps"] = torch.where(completion_mask, logp_old, padding)
    return with_counts(inputs)


def with_counts(inputs):
    """The generation batch's counts, as TRL (tokens) and LADTrainer (completions) add them."""
    mask = lad_trl.loss_mask(inputs)
    return dict(inputs, num_items_in_batch=mask.sum(), num_completions_in_batch=mask.any(-1).sum())


def reference_logp(model, inputs):
    """log pi_theta of each completion token, from the model's plain forward pass (no TRL code)."""
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    prompt_len, completion_len = inputs["prompt_ids"].size(1), inputs["completion_ids"].size(1)
    # the logits at position t predict token t + 1
    logits = logits[:, prompt_len - 1 : prompt_len - 1 + completion_len] / TEMPERATURE
    logp = F.log_softmax(logits, dim=-1)
    return logp.gather(-1, inputs["completion_ids"].unsqueeze(-1)).squeeze(-1)


def expected_lad_loss(logp, inputs, lad_ratio, eta=0.25, divergence="js", mask=None):
    """lad_loss's mean on the same log-probabilities, advantages and mask, at the token or
    sequence level."""
    mask = inputs["completion_mask"].bool() if mask is None else mask
    logp_old = inputs.get("old_per_token_logps", logp.detach())
    if lad_ratio == "token":
        return lad_loss(logp, logp_old, inputs["advantages"], eta, divergence, mask=mask)
    counted = mask.any(-1)  # the completions with at least one token that counts
    sum_masked = lambda x: torch.where(mask, x, 0.0).sum(-1)[counted]  # noqa: E731
    return lad_loss(sum_masked(logp), sum_masked(logp_old), inputs["advantages"][counted], eta,
                    divergence)


def gradient(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("with_old", [True, False], ids=["off-policy", "on-policy"])
@pytest.mark.parametrize("lad_ratio,divergence,eta",
                         [("token", "js", 0.25), ("sequence", "hd", 0.5)])
def test_trainer_loss_and_gradient_are_lad_loss_on_the_same_batch(tmp_path, lad_ratio, divergence,
                                                                  eta, with_old):
    """Catches a flipped sign, the wrong ratio level, a mask left out, logp taken at the wrong
    positions or temperature, a detached logp, and logp_old missing when TRL leaves it out."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio, divergence=divergence, eta=eta)
    model = trainer.model.eval()  # eval: one batch, nothing accumulated (the splits are below)
    inputs = fixed_batch(with_old)

    loss = trainer.compute_loss(model, inputs)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    expected = expected_lad_loss(reference_logp(model, inputs), inputs, lad_ratio, eta, divergence)
    expected.backward()

    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for grad, p in zip(grads, model.parameters()):
        torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in grads)

    # The batch can tell the variants apart, so the equality above is not a coincidence.
    with torch.no_grad():
        logp = reference_logp(model, inputs)
        other_level = "sequence" if lad_ratio == "token" else "token"
        assert not torch.isclose(expected,
                                 expected_lad_loss(logp, inputs, other_level, eta, divergence))
        flipped = dict(inputs, advantages=-inputs["advantages"])
        assert not torch.isclose(expected,
                                 expected_lad_loss(logp, flipped, lad_ratio, eta, divergence))
        if with_old:
            unmasked = dict(inputs, completion_mask=torch.ones_like(inputs["completion_mask"]))
            assert not torch.isclose(expected,
                                     expected_lad_loss(logp, unmasked, lad_ratio, eta, divergence))


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_tokens_hidden_by_the_tool_mask_do_not_count(tmp_path, lad_ratio):
    """Tool outputs inside a completion (TRL's tool_mask) are neither trained on nor counted in the
    average: the loss is lad_loss under completion_mask * tool_mask. Catches a tool_mask ignored."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio)
    model = trainer.model.eval()
    tool_mask = torch.ones_like(fixed_batch()["completion_mask"])
    tool_mask[0, 1:4] = 0  # "12+25.": "2+2" came from a tool
    tool_mask[3, :] = 0  # "1+51.": all of it, so at the sequence level it does not count at all
    inputs = with_counts(dict(fixed_batch(), tool_mask=tool_mask))

    loss = trainer.compute_loss(model, inputs)
    logp = reference_logp(model, inputs)
    mask = (inputs["completion_mask"] * tool_mask).bool()
    torch.testing.assert_close(loss, expected_lad_loss(logp, inputs, lad_ratio, mask=mask),
                               rtol=1e-5, atol=1e-6)
    # the batch tells them apart
    assert not torch.isclose(loss, expected_lad_loss(logp, inputs, lad_ratio))


# How a generation batch of six completions reaches the optimiser: (processes, micro-batches per
# process and optimiser step, micro-batches per process and generation batch). TRL splits the batch
# in order, so the halves are fixed_batch's first and last three. In the last split the generation
# batch serves two optimiser steps, and split_gradient returns their sum (at the same weights).
SPLITS = {"one micro-batch": (1, 1, 1), "accumulation 2": (1, 2, 2), "two processes": (2, 1, 1),
          "two optimiser steps": (1, 1, 2)}


def split_gradient(trainer, inputs, processes, accumulation, steps_per_generation, monkeypatch):
    """The gradient of the generation batch, split as in SPLITS, divided by its number of optimiser
    steps. Each process adds up the gradients of its micro-batches (as transformers does, the loss
    already scaled for accumulation); the processes' gradients are then averaged, as DDP's
    all-reduce does."""
    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: processes))
    monkeypatch.setattr(trainer.args, "steps_per_generation", steps_per_generation)
    trainer.current_gradient_accumulation_steps = accumulation
    model = trainer.model.train()
    per_process = []
    for shard in split_tensor_dict(inputs, processes):
        model.zero_grad()
        for micro_batch in split_tensor_dict(shard, steps_per_generation):
            trainer.compute_loss(model, micro_batch).backward()
        per_process.append(gradient(model))
    return torch.stack(per_process).mean(0) / (steps_per_generation // accumulation)


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_the_gradient_does_not_depend_on_how_the_batch_is_split(tmp_path, lad_ratio, monkeypatch):
    """One micro-batch, two with gradient accumulation, two processes, or two optimiser steps on
    one generation batch: the same gradient per step, the one of lad_loss's mean over the whole
    batch. Catches a mean per micro-batch (as TRL's loss_type="bnpo" takes): it weighs a token by
    1 / its micro-batch's count, and the two halves here hold 15 and 9 tokens (3 and 2
    completions); and a normaliser that forgets the processes or the steps per generation batch."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio)
    inputs = fixed_batch()
    grads = {name: split_gradient(trainer, inputs, *split, monkeypatch)
             for name, split in SPLITS.items()}
    trainer.model.zero_grad()
    expected_lad_loss(reference_logp(trainer.model, inputs), inputs, lad_ratio).backward()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, gradient(trainer.model), rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("loss_type,agrees", [("dapo", True), ("bnpo", False)])
def test_the_split_simulation_reproduces_trls_own_averaging(tmp_path, loss_type, agrees,
                                                            monkeypatch):
    """The simulation above is TRL's: its own loss_type="dapo", which LAD's averaging copies, gives
    the same gradient on every split, and loss_type="bnpo" does not (so the batch can tell them
    apart)."""
    trainer = make_trainer(tmp_path, lad=False, loss_type=loss_type)
    inputs = fixed_batch(log_zero_padding=False)
    grads = [split_gradient(trainer, inputs, *split, monkeypatch) for split in SPLITS.values()]
    same = [torch.allclose(grad, grads[0], rtol=1e-5, atol=1e-5) for grad in grads[1:]]
    assert all(same) if agrees else not any(same)


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_training_step_with_accumulation_gives_the_one_batch_gradient(tmp_path, lad_ratio,
                                                                      monkeypatch):
    """Through transformers' Trainer.training_step, which divides the loss by the accumulation
    steps unless the trainer says compute_loss did (loss_is_scaled_for_ga). Accumulation 1 and 2
    must give lad_loss's gradient on the whole batch; dividing twice would halve it with
    accumulation 2."""
    inputs = fixed_batch()
    for accumulation in [1, 2]:
        trainer = make_trainer(tmp_path / str(accumulation), lad_ratio=lad_ratio,
                               gradient_accumulation_steps=accumulation,
                               per_device_train_batch_size=6 // accumulation)
        # no sampling: our batch
        monkeypatch.setattr(trainer, "_prepare_inputs", lambda micro_batch: micro_batch)
        trainer.current_gradient_accumulation_steps = accumulation  # as the training loop sets it
        model = trainer.model
        model.zero_grad()
        for micro_batch in split_tensor_dict(inputs, accumulation):
            trainer.training_step(model, micro_batch, num_items_in_batch=None)
        accumulated = gradient(model)
        model.zero_grad()
        expected_lad_loss(reference_logp(model, inputs), inputs, lad_ratio).backward()
        torch.testing.assert_close(accumulated, gradient(model), rtol=1e-5, atol=1e-5,
                                   msg=f"accumulation {accumulation}")


def test_with_lad_off_the_loss_is_trls_own_grpo_loss(tmp_path, monkeypatch):
    """lad=False must hand back GRPOTrainer's loss untouched, here with a loss_type that is not
    TRL's default and accumulation 2 in training mode: the same losses and gradient as a plain
    GRPOTrainer. Catches LADConfig overriding a GRPO setting (loss_type) or LADTrainer rescaling
    GRPO's loss."""
    inputs = fixed_batch(log_zero_padding=False)
    grads = {}
    for name, config_class, trainer_class in [("grpo", GRPOConfig, GRPOTrainer),
                                              ("off", lad_trl.LADConfig, lad_trl.LADTrainer)]:
        settings = {"lad": False} if name == "off" else {}
        trainer = make_trainer(tmp_path / name, config_class, trainer_class, loss_type="bnpo",
                               gradient_accumulation_steps=2, per_device_train_batch_size=3,
                               **settings)
        assert trainer.args.steps_per_generation == 2
        grads[name] = split_gradient(trainer, inputs, 1, 2, 2, monkeypatch)
    torch.testing.assert_close(grads["off"], grads["grpo"], rtol=1e-6, atol=1e-7)
    lad = make_trainer(tmp_path / "lad", gradient_accumulation_steps=2,
                       per_device_train_batch_size=3)
    assert not torch.allclose(split_gradient(lad, inputs, 1, 2, 2, monkeypatch), grads["grpo"])


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_above_target_is_the_share_of_the_ratios_the_loss_weighs(tmp_path, lad_ratio):
    """lad/above_target: the share of tokens with x > 1 (token ratio), of completions with x > 1
    (sequence ratio), where log x = log-ratio - A/eta. Catches per-token x logged at sequence
    level."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio)
    model = trainer.model.eval()
    inputs = fixed_batch()
    trainer.compute_loss(model, inputs)
    logged = trainer._metrics["eval"]["lad/above_target"][-1]

    with torch.no_grad():
        mask = inputs["completion_mask"].bool()
        log_ratio = reference_logp(model, inputs) - inputs["old_per_token_logps"]
        log_ratio = torch.where(mask, log_ratio, 0.0)
        a = inputs["advantages"] / trainer.args.eta
        per_token = (log_ratio - a.unsqueeze(-1) > 0)[mask].float().mean().item()
        per_completion = (log_ratio.sum(-1) - a > 0)[mask.any(-1)].float().mean().item()
    assert per_token != pytest.approx(per_completion)  # the batch tells them apart
    assert logged == pytest.approx(per_token if lad_ratio == "token" else per_completion)


def test_logged_entropy_averages_over_the_tokens_that_count_only(tmp_path):
    """The logged `entropy` is the mean, over the positions the loss weighs (completion_mask times
    tool_mask), of the entropy of pi_theta(. | prefix) at the sampling temperature. Catches a mean
    that takes in the padding, the tool outputs or the completion masked out entirely: TRL
    reports 0 entropy at padding, so such a mean would read lower."""
    trainer = make_trainer(tmp_path)
    model = trainer.model.eval()
    tool_mask = torch.ones_like(fixed_batch()["completion_mask"])
    tool_mask[0, 1:4] = 0
    inputs = with_counts(dict(fixed_batch(), tool_mask=tool_mask))
    trainer.compute_loss(model, inputs)
    logged = trainer._metrics["eval"]["entropy"][-1]

    with torch.no_grad():
        input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        start, length = inputs["prompt_ids"].size(1) - 1, inputs["completion_ids"].size(1)
        logits = model(input_ids=input_ids).logits[:, start : start + length] / TEMPERATURE
        entropy = -(F.softmax(logits, -1) * F.log_softmax(logits, -1)).sum(-1)  # [batch, tokens]
    counted = (inputs["completion_mask"] * tool_mask).bool()
    assert logged == pytest.approx(entropy[counted].mean().item(), rel=1e-5)
    for wider in [inputs["completion_mask"].bool(), torch.ones_like(counted)]:
        assert logged != pytest.approx(entropy[wider].mean().item(), rel=1e-3)


@pytest.mark.parametrize("lad_ratio,share", [("token", 3 / 6), ("sequence", 2 / 3)])
def test_above_target_does_not_count_a_completion_masked_out_entirely(tmp_path, lad_ratio, share):
    """Catches lad/above_target counting completions masked out entirely (as TRL masks truncated
    ones with mask_truncated_completions): the sequence level's `[mask.any(-1)]` or the token
    level's `[mask]` dropped. Their masked log-ratio is 0, so a wrong answer's (A < 0) would count
    as above its target, and a right answer's as below.

    A hand-made batch, eta = 0.5, log x = log-ratio - A/eta known for every token:
        row  mask    A/eta  log-ratio     x > 1 per token     per completion
        0    1 0 0    2     3             yes                 yes (3 - 2)
        1    1 1 0   -1     0 0           yes yes             yes (0 + 1)
        2    1 1 1    0.5   -0.5 0 0      no no no            no (-0.5 - 0.5)
        3    0 0 0   -2     (masked)      would be yes x3     would be yes
        4    0 0 0    2     (masked)      would be no x3      would be no
    The shares are 3/6 of the tokens and 2/3 of the completions; counting rows 3 and 4 (and the
    padding) would give 7/15 and 3/5. logp_old holds -inf on every masked position."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio, eta=0.5)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]]).bool()
    advantages = torch.tensor([1.0, -0.5, 0.25, -1.0, 1.0])
    log_ratio = torch.tensor([[3.0, 0, 0], [0, 0, 0], [-0.5, 0, 0], [0, 0, 0], [0, 0, 0]])
    logp_old = torch.where(mask, -1.0, -float("inf"))
    logp = torch.where(mask, -1.0 + log_ratio, 0.0)
    trainer._log_lad_metrics("eval", logp, logp_old, advantages, torch.zeros(mask.shape), mask)
    assert trainer._metrics["eval"]["lad/above_target"][-1] == pytest.approx(share)


def test_the_generation_batch_counts_the_completions_that_count(tmp_path):
    """LADTrainer adds num_completions_in_batch to TRL's sampled batch: the completions with a
    token that counts. With max_completion_length 3 and mask_truncated_completions, most answers
    are cut, so their mask is all zero and counting rows instead would be wrong."""
    trainer = make_trainer(tmp_path, max_completion_length=3, mask_truncated_completions=True,
                           per_device_train_batch_size=16, num_generations=8)
    trainer.model.train()
    prompts = [{"prompt": f"{n}=", "n": n} for n in [37, 37] * 8]
    batch = trainer._generate_and_score_completions(prompts)
    counted = batch["completion_mask"].bool().any(-1)
    assert batch["num_completions_in_batch"] == counted.sum() < len(counted)
    assert batch["num_items_in_batch"] == batch["completion_mask"].sum()


# Every setting of TRL 1.16's GRPOConfig (those it adds to transformers' TrainingArguments), sorted
# into four groups by reading GRPOTrainer, not lad_trl's lists: a setting dropped from those lists
# while LAD still ignores it turns the refusal test red, and a TRL release that adds a setting
# fails test_every_grpo_setting_is_sorted_into_one_group until someone decides where it goes.
#
# GRPO's loss reads them and LAD's does not; each with settings that turn it on:
IGNORED_BY_LAD = {
    "beta": {"beta": 0.04},  # KL penalty to a reference model
    "entropy_coef": {"entropy_coef": 0.01},
    "use_adaptive_entropy": {"use_adaptive_entropy": True},
    "top_entropy_quantile": {"top_entropy_quantile": 0.2},
    "off_policy_mask_threshold": {"off_policy_mask_threshold": 0.5},
    "vllm_importance_sampling_correction": {"use_vllm": True},  # on by default, with vLLM
    "loss_type": {"loss_type": "bnpo"},
    "importance_sampling_level": {"importance_sampling_level": "sequence"},
    "epsilon": {"epsilon": 0.3},
    "epsilon_high": {"epsilon_high": 0.28},
    "delta": {"delta": 2.0},
    "sapo_temperature_neg": {"sapo_temperature_neg": 2.0},
    "sapo_temperature_pos": {"sapo_temperature_pos": 2.0},
    "vespo_k_pos": {"vespo_k_pos": 1.0},
    "vespo_lambda_pos": {"vespo_lambda_pos": 1.0},
    "vespo_k_neg": {"vespo_k_neg": 1.0},
    "vespo_lambda_neg": {"vespo_lambda_neg": 1.0},
}
# GRPO's loss reads them only while the setting named beside each is on, and LAD refuses that one.
INERT_UNLESS = {
    "use_bias_correction_kl": "beta", "sync_ref_model": "beta", "ref_model_mixup_alpha": "beta",
    "ref_model_sync_steps": "beta",
    "entropy_coef_min": "use_adaptive_entropy", "entropy_coef_max": "use_adaptive_entropy",
    "entropy_coef_delta": "use_adaptive_entropy", "entropy_target": "use_adaptive_entropy",
    "vllm_importance_sampling_mode": "vllm_importance_sampling_correction",
    "vllm_importance_sampling_clip_max": "vllm_importance_sampling_correction",
    "vllm_importance_sampling_clip_min": "vllm_importance_sampling_correction",
    "vllm_importance_sampling_cap": "vllm_importance_sampling_correction",
}
# Refused by LADTrainer, from the model (test_a_mixture_of_experts_balancing_loss_is_refused).
REFUSED_BY_THE_TRAINER = {"router_aux_loss_coef"}
# Everything else: the model, generation, rewards and advantages, the batch's shape, vLLM's
# server, logging. LAD uses each as GRPO does.
USED_AS_GRPO_USES_THEM = {
    "model_init_kwargs", "trust_remote_code", "disable_dropout", "cast_lm_head_to_fp32",
    "num_generations", "num_generations_eval", "max_completion_length",
    "ds3_gather_for_generation", "shuffle_dataset", "pad_to_multiple_of",
    "generation_batch_size", "steps_per_generation", "temperature", "top_p", "top_k", "min_p",
    "generation_kwargs", "chat_template_kwargs", "repetition_penalty", "cache_implementation",
    "use_vllm", "vllm_mode", "vllm_model_impl", "vllm_enable_sleep_mode",
    "vllm_structured_outputs_regex", "vllm_server_base_url", "vllm_server_host",
    "vllm_server_port", "vllm_server_timeout", "vllm_group_port", "vllm_gpu_memory_utilization",
    "vllm_max_model_length", "vllm_tensor_parallel_size", "num_iterations", "reward_weights",
    "multi_objective_aggregation", "scale_rewards", "mask_truncated_completions",
    "max_tool_calling_iterations", "log_completions", "log_multimodal",
    "num_completions_to_print", "log_unique_prompts", "log_completions_hub_repo",
    "use_transformers_continuous_batching", "transformers_continuous_batching_config",
    "use_transformers_paged",
}


def test_every_grpo_setting_is_sorted_into_one_group():
    """Catches a TRL upgrade that adds a setting (a new term in GRPO's loss would be dropped by
    LAD without a word) or renames one: each of GRPOConfig's own settings is in exactly one group
    above, and every inert one waits on a refused one."""
    grpo_settings = ({f.name for f in dataclasses.fields(GRPOConfig)}
                     - {f.name for f in dataclasses.fields(TrainingArguments)})
    groups = [set(IGNORED_BY_LAD), set(INERT_UNLESS), REFUSED_BY_THE_TRAINER,
              USED_AS_GRPO_USES_THEM]
    assert sum(map(len, groups)) == len(set().union(*groups)), "a setting in two groups"
    assert set().union(*groups) == grpo_settings
    assert set(INERT_UNLESS.values()) <= set(IGNORED_BY_LAD)


def test_lad_trls_refusal_lists_are_the_settings_lad_would_ignore():
    """lad_trl's lists plus its two checks by name are exactly IGNORED_BY_LAD. Catches a setting
    dropped from GRPO_LOSS_SETTINGS or GRPO_SURROGATE_SETTINGS while LAD still ignores it (and
    one listed that LAD uses)."""
    listed = (set(lad_trl.GRPO_LOSS_SETTINGS) | set(lad_trl.GRPO_SURROGATE_SETTINGS)
              | {"loss_type", "vllm_importance_sampling_correction"})
    assert listed == set(IGNORED_BY_LAD)


@pytest.mark.parametrize("name", sorted(IGNORED_BY_LAD))
def test_every_setting_lad_would_ignore_is_refused_by_name(tmp_path, name):
    """With LAD on, a GRPO setting LAD would ignore is a ValueError naming it, not a run that
    silently differs from what was asked. Catches a setting dropped from lad_trl's refusal lists
    (or a check that skips one) while LAD still ignores it."""
    with pytest.raises(ValueError, match=name):
        cpu_config(tmp_path, **IGNORED_BY_LAD[name])


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "bnpo", "sapo"])
def test_every_loss_type_but_dapo_is_refused(tmp_path, loss_type):
    """LAD averages over the whole generation batch, as "dapo" does; another loss_type would
    change GRPO's averaging, which LAD does not read."""
    with pytest.raises(ValueError, match="loss_type"):
        cpu_config(tmp_path, loss_type=loss_type)


@pytest.mark.parametrize("settings,name", [({"eta": 0.0}, "eta"), ({"eta": -1.0}, "eta"),
                                           ({"eta": float("nan")}, "eta"),
                                           ({"divergence": "kld"}, "divergence"),
                                           ({"lad_ratio": "word"}, "lad_ratio")])
def test_bad_lad_settings_raise_a_value_error_naming_the_setting(tmp_path, settings, name):
    with pytest.raises(ValueError, match=name):
        cpu_config(tmp_path, **settings)


def test_grpo_only_settings_are_allowed_with_lad_off(tmp_path):
    config = cpu_config(tmp_path, lad=False, beta=0.04, loss_type="bnpo", epsilon=0.3)
    assert (config.beta, config.loss_type, config.epsilon) == (0.04, "bnpo", 0.3)


def test_a_mixture_of_experts_balancing_loss_is_refused(tmp_path):
    """GRPO adds the router's balancing loss to its own; LAD's compute_loss does not."""
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    config = Qwen2MoeConfig(vocab_size=len(TASK.chars), hidden_size=16, intermediate_size=32,
                            moe_intermediate_size=16, shared_expert_intermediate_size=16,
                            num_experts=2, num_experts_per_tok=1, num_hidden_layers=1,
                            num_attention_heads=2, num_key_value_heads=2)
    assert config.router_aux_loss_coef > 0
    with pytest.raises(ValueError, match="router_aux_loss_coef"):
        make_trainer(tmp_path, model=Qwen2MoeForCausalLM(config))
    # off: accepted
    make_trainer(tmp_path, model=Qwen2MoeForCausalLM(config), router_aux_loss_coef=0.0)


def test_a_vision_language_processor_is_refused(tmp_path):
    """GRPOTrainer treats a model as vision-language when its processing class is a processor;
    LADTrainer's compute_loss passes no images, so it refuses."""
    from transformers import ProcessorMixin

    class TextOnlyProcessor(ProcessorMixin):  # the smallest processor: a tokenizer and nothing else
        def __init__(self, tokenizer):
            super().__init__(tokenizer)

    tokenizer = char_tokenizer(TASK)
    model = tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0)
    model.config.image_token_id = 0  # GRPOTrainer keeps a VLM from sampling its image token
    with pytest.raises(ValueError, match="processing_class"):
        make_trainer(tmp_path, model=model, processing_class=TextOnlyProcessor(tokenizer))


@pytest.mark.parametrize(
    "settings,warns",
    [
        ({}, False),
        ({"scale_rewards": True}, False),  # TRL's other spelling of "group"
        ({"scale_rewards": "batch"}, True),
        ({"scale_rewards": "none"}, True),
        ({"multi_objective_aggregation": "normalize_then_sum"}, True),
        ({"scale_rewards": "none", "lad": False}, False),  # GRPO has no eta
    ],
)
def test_advantages_on_another_scale_warn_that_eta_changes_meaning(tmp_path, settings, warns,
                                                                   recwarn):
    cpu_config(tmp_path, **settings)
    eta_warnings = [w for w in recwarn if "effective eta" in str(w.message)]
    assert len(eta_warnings) == (1 if warns else 0)


def four_line_use(text: str) -> str:
    """The code from `from lad_trl import` to `trainer.train()`, continuation lines joined."""
    start = text.index("from lad_trl import LADConfig, LADTrainer")
    end = text.index("trainer.train()", start) + len("trainer.train()")
    return "\n".join(re.sub(r"\s+", " ", line).strip()
                     for line in re.sub(r",\s*\n\s*", ", ", text[start:end]).splitlines())


def test_the_four_line_use_is_one_text_on_every_page_and_names_real_settings():
    """lad_trl.py's docstring, README.md and docs/trl.md show the same four lines (a setting
    renamed on one page and not the others turns this red), the code parses, and every keyword
    it gives LADConfig is one of its fields."""
    root = Path(__file__).resolve().parent.parent
    texts = {name: (root / name).read_text() for name in ["README.md", "docs/trl.md"]}
    texts["lad_trl.py"] = lad_trl.__doc__
    uses = {name: four_line_use(text) for name, text in texts.items()}
    assert len(set(uses.values())) == 1, uses
    code = uses["lad_trl.py"]
    assert len(code.splitlines()) == 4
    calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "LADConfig"]
    fields = {f.name for f in dataclasses.fields(lad_trl.LADConfig)}
    assert calls and all(k.arg in fields for call in calls for k in call.keywords)

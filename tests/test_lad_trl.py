"""Tests of LAD inside TRL (lad_trl.py): on a fixed batch the trainer's loss is lad_loss, averaged so
that the gradient does not depend on how the batch is split over micro-batches and processes; with
LAD off it is TRL's own GRPO loss; settings LAD would ignore are refused; a few real steps of the tiny
model train; the command writes its metrics; --model runs a model saved to a folder. All offline, on CPU.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import json
import math
import os
import re
from pathlib import Path

import pytest

# Nothing here needs the Hugging Face hub. huggingface_hub reads this when it is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
try:
    import trl  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "trl":
        raise  # TRL is there but something it needs is not: that is a failure, not a skip
    pytest.skip("TRL is not installed: pip install -r requirements-trl.txt", allow_module_level=True)

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import split_tensor_dict

import lad_trl
from reasoning.arithmetic import SumTask
from lad_loss import lad_loss

TASK = SumTask()
TEMPERATURE = 0.7  # not 1, so a logp computed without the sampling temperature would not match
REPOSITORY = Path(__file__).resolve().parent.parent


def cpu_config(tmp_path, config_class=lad_trl.LADConfig, **settings):
    return config_class(
        output_dir=str(tmp_path), report_to="none", bf16=False, activation_checkpointing=False,
        dataloader_pin_memory=False, **settings,
    )


def make_trainer(tmp_path, config_class=lad_trl.LADConfig, trainer_class=lad_trl.LADTrainer, model=None,
                 processing_class=None, **settings):
    """A trainer around a fresh tiny model (seed 0: every call gets the same weights), not trained."""
    tokenizer = lad_trl.char_tokenizer(TASK)
    model = model or lad_trl.tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0)
    settings = {"per_device_train_batch_size": 6, "num_generations": 2, "temperature": TEMPERATURE, **settings}
    return trainer_class(
        model=model, reward_funcs=lad_trl.verifier_reward(TASK, tokenizer), args=cpu_config(tmp_path, config_class, **settings),
        train_dataset=lad_trl.sum_dataset(TASK.train_n, lad_trl.TINY_PROMPT), processing_class=processing_class or tokenizer,
    )


def fixed_batch(with_old=True, log_zero_padding=True):
    """Six completions of three prompts, as GRPOTrainer hands a generation batch to compute_loss.

    The completions have different lengths, so the mask hides 0 to 2 padding positions, and there
    logp_old holds values far from anything real: 25 (a loss that ignored the mask would change a
    lot) and -inf (log 0: multiplying it by a 0 in the mask would give NaN, not 0). The fifth
    completion is masked out entirely, as TRL does with mask_truncated_completions: it must not count.
    Its two halves hold 15 and 9 tokens, and 3 and 2 completions that count: a mean per half weighs
    them differently from a mean over the whole batch.
    """
    prompt_ids = TASK.prompts([37, 37, 52, 52, 17, 17])
    completion_ids, completion_mask = TASK.completions(["12+25.", "5+3.", "50+2.", "1+51.", "11+41.", "9+8."])
    completion_mask[4] = False
    generator = torch.Generator().manual_seed(0)
    logp_old = -torch.rand(completion_ids.shape, generator=generator) * 3  # log-probabilities in (-3, 0]
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
    return F.log_softmax(logits, dim=-1).gather(-1, inputs["completion_ids"].unsqueeze(-1)).squeeze(-1)


def expected_lad_loss(logp, inputs, lad_ratio, eta=0.25, divergence="js", mask=None):
    """lad_loss's mean on the same log-probabilities, advantages and mask, at the token or sequence level."""
    mask = inputs["completion_mask"].bool() if mask is None else mask
    logp_old = inputs.get("old_per_token_logps", logp.detach())
    if lad_ratio == "token":
        return lad_loss(logp, logp_old, inputs["advantages"], eta, divergence, mask=mask)
    counted = mask.any(-1)  # the completions with at least one token that counts
    sum_masked = lambda x: torch.where(mask, x, 0.0).sum(-1)[counted]  # noqa: E731
    return lad_loss(sum_masked(logp), sum_masked(logp_old), inputs["advantages"][counted], eta, divergence)


def gradient(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("with_old", [True, False], ids=["off-policy", "on-policy"])
@pytest.mark.parametrize("lad_ratio,divergence,eta", [("token", "js", 0.25), ("sequence", "hd", 0.5)])
def test_trainer_loss_and_gradient_are_lad_loss_on_the_same_batch(tmp_path, lad_ratio, divergence, eta, with_old):
    """Catches a flipped sign, the wrong ratio level, a mask left out, logp taken at the wrong
    positions or temperature, a detached logp, and logp_old missing when TRL leaves it out."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio, divergence=divergence, eta=eta)
    model = trainer.model.eval()  # eval: one batch, nothing accumulated (the splits are tested below)
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
        assert not torch.isclose(expected, expected_lad_loss(logp, inputs, other_level, eta, divergence))
        flipped = dict(inputs, advantages=-inputs["advantages"])
        assert not torch.isclose(expected, expected_lad_loss(logp, flipped, lad_ratio, eta, divergence))
        if with_old:
            unmasked = dict(inputs, completion_mask=torch.ones_like(inputs["completion_mask"]))
            assert not torch.isclose(expected, expected_lad_loss(logp, unmasked, lad_ratio, eta, divergence))


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
    torch.testing.assert_close(loss, expected_lad_loss(logp, inputs, lad_ratio, mask=mask), rtol=1e-5, atol=1e-6)
    assert not torch.isclose(loss, expected_lad_loss(logp, inputs, lad_ratio))  # the batch tells them apart


# How a generation batch of six completions reaches the optimiser: (processes, micro-batches per process
# and optimiser step, micro-batches per process and generation batch). TRL splits the batch in order,
# so the halves are fixed_batch's first and last three. In the last split the generation batch serves
# two optimiser steps, and split_gradient returns their sum (at the same weights).
SPLITS = {"one micro-batch": (1, 1, 1), "accumulation 2": (1, 2, 2), "two processes": (2, 1, 1),
          "two optimiser steps": (1, 1, 2)}


def split_gradient(trainer, inputs, processes, accumulation, steps_per_generation, monkeypatch):
    """The gradient of the generation batch, split as in SPLITS, divided by its number of optimiser
    steps. Each process adds up the gradients of its micro-batches (as transformers does, the loss
    already scaled for accumulation); the processes' gradients are then averaged, as DDP's all-reduce
    does."""
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
    """One micro-batch, two with gradient accumulation, two processes, or two optimiser steps on one
    generation batch: the same gradient per step, the one of lad_loss's mean over the whole batch.
    Catches a mean per micro-batch (as TRL's loss_type="bnpo" takes): it weighs a token by 1 / its
    micro-batch's count, and the two halves here hold 15 and 9 tokens (3 and 2 completions); and a
    normaliser that forgets the processes or the steps per generation batch."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio)
    inputs = fixed_batch()
    grads = {name: split_gradient(trainer, inputs, *split, monkeypatch) for name, split in SPLITS.items()}
    trainer.model.zero_grad()
    expected_lad_loss(reference_logp(trainer.model, inputs), inputs, lad_ratio).backward()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, gradient(trainer.model), rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("loss_type,agrees", [("dapo", True), ("bnpo", False)])
def test_the_split_simulation_reproduces_trls_own_averaging(tmp_path, loss_type, agrees, monkeypatch):
    """The simulation above is TRL's: its own loss_type="dapo", which LAD's averaging copies, gives the
    same gradient on every split, and loss_type="bnpo" does not (so the batch can tell them apart)."""
    trainer = make_trainer(tmp_path, lad=False, loss_type=loss_type)
    inputs = fixed_batch(log_zero_padding=False)
    grads = [split_gradient(trainer, inputs, *split, monkeypatch) for split in SPLITS.values()]
    same = [torch.allclose(grad, grads[0], rtol=1e-5, atol=1e-5) for grad in grads[1:]]
    assert all(same) if agrees else not any(same)


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_training_step_with_accumulation_gives_the_one_batch_gradient(tmp_path, lad_ratio, monkeypatch):
    """Through transformers' Trainer.training_step, which divides the loss by the accumulation steps
    unless the trainer says compute_loss did (loss_is_scaled_for_ga). Accumulation 1 and 2 must give
    lad_loss's gradient on the whole batch; dividing twice would halve it with accumulation 2."""
    inputs = fixed_batch()
    for accumulation in [1, 2]:
        trainer = make_trainer(tmp_path / str(accumulation), lad_ratio=lad_ratio,
                               gradient_accumulation_steps=accumulation, per_device_train_batch_size=6 // accumulation)
        monkeypatch.setattr(trainer, "_prepare_inputs", lambda micro_batch: micro_batch)  # no sampling: our batch
        trainer.current_gradient_accumulation_steps = accumulation  # as the training loop sets it
        model = trainer.model
        model.zero_grad()
        for micro_batch in split_tensor_dict(inputs, accumulation):
            trainer.training_step(model, micro_batch, num_items_in_batch=None)
        accumulated = gradient(model)
        model.zero_grad()
        expected_lad_loss(reference_logp(model, inputs), inputs, lad_ratio).backward()
        torch.testing.assert_close(accumulated, gradient(model), rtol=1e-5, atol=1e-5, msg=f"accumulation {accumulation}")


def test_with_lad_off_the_loss_is_trls_own_grpo_loss(tmp_path, monkeypatch):
    """lad=False must hand back GRPOTrainer's loss untouched, here with a loss_type that is not TRL's
    default and accumulation 2 in training mode: the same losses and gradient as a plain GRPOTrainer.
    Catches LADConfig overriding a GRPO setting (loss_type) or LADTrainer rescaling GRPO's loss."""
    inputs = fixed_batch(log_zero_padding=False)
    grads = {}
    for name, config_class, trainer_class in [("grpo", GRPOConfig, GRPOTrainer),
                                              ("off", lad_trl.LADConfig, lad_trl.LADTrainer)]:
        settings = {"lad": False} if name == "off" else {}
        trainer = make_trainer(tmp_path / name, config_class, trainer_class, loss_type="bnpo",
                               gradient_accumulation_steps=2, per_device_train_batch_size=3, **settings)
        assert trainer.args.steps_per_generation == 2
        grads[name] = split_gradient(trainer, inputs, 1, 2, 2, monkeypatch)
    torch.testing.assert_close(grads["off"], grads["grpo"], rtol=1e-6, atol=1e-7)
    lad = make_trainer(tmp_path / "lad", gradient_accumulation_steps=2, per_device_train_batch_size=3)
    assert not torch.allclose(split_gradient(lad, inputs, 1, 2, 2, monkeypatch), grads["grpo"])


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_above_target_is_the_share_of_the_ratios_the_loss_weighs(tmp_path, lad_ratio):
    """lad/above_target: the share of tokens with x > 1 (token ratio), of completions with x > 1
    (sequence ratio), where log x = log-ratio - A/eta. Catches per-token x logged at sequence level."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio)
    model = trainer.model.eval()
    inputs = fixed_batch()
    trainer.compute_loss(model, inputs)
    logged = trainer._metrics["eval"]["lad/above_target"][-1]

    with torch.no_grad():
        mask = inputs["completion_mask"].bool()
        log_ratio = torch.where(mask, reference_logp(model, inputs) - inputs["old_per_token_logps"], 0.0)
        a = inputs["advantages"] / trainer.args.eta
        per_token = (log_ratio - a.unsqueeze(-1) > 0)[mask].float().mean().item()
        per_completion = (log_ratio.sum(-1) - a > 0)[mask.any(-1)].float().mean().item()
    assert per_token != pytest.approx(per_completion)  # the batch tells them apart
    assert logged == pytest.approx(per_token if lad_ratio == "token" else per_completion)


def test_the_generation_batch_counts_the_completions_that_count(tmp_path):
    """LADTrainer adds num_completions_in_batch to TRL's sampled batch: the completions with a token
    that counts. With max_completion_length 3 and mask_truncated_completions, most answers are cut,
    so their mask is all zero and counting rows instead would be wrong."""
    trainer = make_trainer(tmp_path, max_completion_length=3, mask_truncated_completions=True,
                           per_device_train_batch_size=16, num_generations=8)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([{"prompt": f"{n}=", "n": n} for n in [37, 37] * 8])
    counted = batch["completion_mask"].bool().any(-1)
    assert batch["num_completions_in_batch"] == counted.sum() < len(counted)
    assert batch["num_items_in_batch"] == batch["completion_mask"].sum()


@pytest.mark.parametrize(
    "settings,name",
    [
        ({"eta": 0.0}, "eta"),
        ({"eta": -1.0}, "eta"),
        ({"eta": float("nan")}, "eta"),
        ({"divergence": "kld"}, "divergence"),
        ({"lad_ratio": "word"}, "lad_ratio"),
        # terms GRPO would add to its loss, which LAD would drop silently
        ({"beta": 0.04}, "beta"),
        ({"entropy_coef": 0.01}, "entropy_coef"),
        ({"use_adaptive_entropy": True}, "use_adaptive_entropy"),
        ({"top_entropy_quantile": 0.2}, "top_entropy_quantile"),
        ({"off_policy_mask_threshold": 0.5}, "off_policy_mask_threshold"),
        ({"use_vllm": True}, "vllm_importance_sampling_correction"),  # TRL's default correction is on
        # settings of GRPO's surrogate and averaging that LAD does not read
        ({"loss_type": "bnpo"}, "loss_type"),
        ({"loss_type": "grpo"}, "loss_type"),
        ({"importance_sampling_level": "sequence"}, "importance_sampling_level"),
        ({"epsilon": 0.3}, "epsilon"),
        ({"epsilon_high": 0.28}, "epsilon_high"),
        ({"delta": 2.0}, "delta"),
        ({"sapo_temperature_neg": 2.0}, "sapo_temperature_neg"),
        ({"vespo_k_pos": 1.0}, "vespo_k_pos"),
    ],
)
def test_bad_settings_raise_a_value_error_naming_the_setting(tmp_path, settings, name):
    with pytest.raises(ValueError, match=name):
        cpu_config(tmp_path, **settings)


def test_grpo_only_settings_are_allowed_with_lad_off(tmp_path):
    config = cpu_config(tmp_path, lad=False, beta=0.04, loss_type="bnpo", epsilon=0.3)
    assert (config.beta, config.loss_type, config.epsilon) == (0.04, "bnpo", 0.3)


def test_a_mixture_of_experts_balancing_loss_is_refused(tmp_path):
    """GRPO adds the router's balancing loss to its own; LAD's compute_loss does not."""
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    config = Qwen2MoeConfig(vocab_size=len(TASK.chars), hidden_size=16, intermediate_size=32, moe_intermediate_size=16,
                            shared_expert_intermediate_size=16, num_experts=2, num_experts_per_tok=1,
                            num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    assert config.router_aux_loss_coef > 0
    with pytest.raises(ValueError, match="router_aux_loss_coef"):
        make_trainer(tmp_path, model=Qwen2MoeForCausalLM(config))
    make_trainer(tmp_path, model=Qwen2MoeForCausalLM(config), router_aux_loss_coef=0.0)  # off: accepted


def test_a_vision_language_processor_is_refused(tmp_path):
    """GRPOTrainer treats a model as vision-language when its processing class is a processor;
    LADTrainer's compute_loss passes no images, so it refuses."""
    from transformers import ProcessorMixin

    class TextOnlyProcessor(ProcessorMixin):  # the smallest processor: a tokenizer and nothing else
        def __init__(self, tokenizer):
            super().__init__(tokenizer)

    tokenizer = lad_trl.char_tokenizer(TASK)
    model = lad_trl.tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0)
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
def test_advantages_on_another_scale_warn_that_eta_changes_meaning(tmp_path, settings, warns, recwarn):
    cpu_config(tmp_path, **settings)
    eta_warnings = [w for w in recwarn if "effective eta" in str(w.message)]
    assert len(eta_warnings) == (1 if warns else 0)


def test_the_command_turns_dropout_off(tmp_path):
    """With a stored pi_old, dropout would add noise to every ratio pi_theta/pi_old. A GPT-2-style
    model has dropout 0.1 by default; the trainer the command builds must switch it off."""
    from transformers import GPT2Config, GPT2LMHeadModel

    args = lad_trl.parse_args(["--quick", "--output-dir", str(tmp_path)])
    tokenizer = lad_trl.char_tokenizer(TASK)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=16, n_embd=16, n_layer=1, n_head=2))
    assert any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    trainer = lad_trl.build_trainer(args, TASK, tokenizer, model, seed=0, loss="lad")
    trainer.model.train()
    inputs = torch.tensor([TASK.encode("37=12+25.")])
    torch.testing.assert_close(trainer.model(inputs).logits, trainer.model(inputs).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    "argv,argument",
    [
        (["--eta", "0"], "--eta"),
        (["--eta", "nan"], "--eta"),
        (["--divergence", "kld"], "--divergence"),
        (["--lad-ratio", "word"], "--lad-ratio"),
        (["--group-size", "1"], "--group-size"),
        (["--steps", "0"], "--steps"),
        (["--sft-steps", "-1"], "--sft-steps"),
        (["--eval-samples", "0"], "--eval-samples"),
        (["--threads", "0"], "--threads"),
        (["--loss", "ppo"], "--loss"),
        (["--seed", "one"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "0", "0"], "--seed"),
        (["--output-dir", "lad_trl.py"], "--output-dir"),  # a regular file, not a folder
        (["--output-dir", "lad_trl.py/run"], "--output-dir"),  # under a regular file
        (["--metrics-json", "plots"], "--metrics-json"),  # a folder, not a file
    ],
)
def test_bad_command_line_arguments_are_an_argparse_error(capsys, argv, argument, monkeypatch):
    """Exit status 2 and one error line naming the argument, not a traceback, before any work."""
    monkeypatch.chdir(REPOSITORY)  # the paths above are the repository's own files and folders
    with pytest.raises(SystemExit) as exit_info:
        lad_trl.parse_args(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and f"argument {argument}" in error_lines[0]


def test_quick_changes_the_defaults_and_an_explicit_flag_wins():
    """--quick never writes where the full run does, and a flag given on the command line wins."""
    full, quick = lad_trl.parse_args([]), lad_trl.parse_args(["--quick"])
    for name in lad_trl.DEFAULTS:
        assert (getattr(full, name), getattr(quick, name)) == (lad_trl.DEFAULTS[name], lad_trl.QUICK[name])
    assert lad_trl.QUICK["output_dir"].startswith("runs/quick/") and quick.metrics_json is None
    explicit = lad_trl.parse_args(["--quick", "--steps", "7", "--sft-steps", "0", "--eval-samples", "3",
                                   "--output-dir", "runs/x"])
    assert (explicit.steps, explicit.sft_steps, explicit.eval_samples, explicit.output_dir) == (7, 0, 3, "runs/x")
    assert lad_trl.parse_args([]).num_iterations == 1  # TRL's default: one update per sampled batch


def test_char_tokenizer_is_the_tasks_encoding():
    tokenizer = lad_trl.char_tokenizer(TASK)
    assert tokenizer("37=")["input_ids"] == TASK.encode("37=")
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == TASK.end_token
    assert tokenizer.decode(TASK.encode("12+25.")) == "12+25."


def test_reward_is_the_verifier():
    tokenizer = lad_trl.char_tokenizer(TASK)
    reward = lad_trl.verifier_reward(TASK, tokenizer)
    completions = ["12+25.", "12+24.", "37+0.", "12+25", "5+32.."]  # the last: end marker, then padding
    ids = [TASK.encode(text) for text in completions]
    assert reward(completion_ids=ids, n=[37] * 5) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_a_few_steps_of_the_tiny_model_train_offline(tmp_path, capsys):
    """The --quick command end to end on CPU: warm start, held-out evaluation, 4 LAD steps, save.
    The loss stays finite and the weights move."""
    args = lad_trl.parse_args(["--quick", "--output-dir", str(tmp_path)])
    tokenizer = lad_trl.char_tokenizer(TASK)
    trainer = lad_trl.build_trainer(args, TASK, tokenizer, lad_trl.initial_model(args, TASK, tokenizer, 0), 0, "lad")
    start = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    run = lad_trl.train_and_evaluate(trainer, args, 0, "lad")

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == args.steps
    assert all(math.isfinite(entry["loss"]) for entry in logs)
    # Some group had both a correct and a wrong answer, so there was something to learn from.
    assert min(entry["frac_reward_zero_std"] for entry in logs if "frac_reward_zero_std" in entry) < 1
    moved = [name for name, p in trainer.model.named_parameters() if not torch.equal(p, start[name])]
    assert moved, "no parameter changed"
    assert 0 <= run["heldout_reward_before"] <= 1 and 0 <= run["heldout_reward_after"] <= 1
    assert (tmp_path / "lad-seed0" / "model.safetensors").exists()
    assert "held-out reward" in capsys.readouterr().out


def test_metrics_json_holds_each_seeds_before_and_after_for_each_loss(tmp_path):
    """What the README's table quotes: per seed and loss, the held-out reward before and after, with
    the settings (paths as given) and the mean and std over seeds. Also: a seed's numbers do not depend
    on the runs before it in the same process (the same as a command with that seed and loss alone)."""
    common = ["--quick", "--sft-steps", "20", "--steps", "2", "--output-dir", str(tmp_path / "runs")]
    path = tmp_path / "metrics.json"
    runs = lad_trl.main(common + ["--seed", "3", "4", "--loss", "lad", "grpo", "--metrics-json", str(path)])
    written = json.loads(path.read_text())

    assert [(r["seed"], r["loss"]) for r in written["runs"]] == [(3, "lad"), (3, "grpo"), (4, "lad"), (4, "grpo")]
    assert written["runs"] == json.loads(json.dumps(runs))
    assert (written["settings"]["seed"], written["settings"]["loss"]) == ([3, 4], ["lad", "grpo"])
    assert (written["settings"]["steps"], written["settings"]["metrics_json"]) == (2, str(path))
    assert written["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for loss in ["lad", "grpo"]:
        mine = [r for r in runs if r["loss"] == loss]
        for name in ["before", "after"]:
            values = [r[f"heldout_reward_{name}"] for r in mine]
            assert written["summary"][loss][f"{name}_mean"] == pytest.approx(sum(values) / 2)
            assert written["summary"][loss][f"{name}_std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    # Both losses start from the same warm start and the same evaluation samples.
    assert runs[0]["heldout_reward_before"] == runs[1]["heldout_reward_before"]

    alone = lad_trl.main(common + ["--seed", "4", "--loss", "grpo"])
    assert alone == [runs[3]]


@pytest.mark.parametrize("name", ["lad_trl_metrics.json", "lad_trl_metrics_no_avx.json"])
def test_committed_metrics_record_paths_relative_to_the_repository(name):
    """A committed metrics file must not hold one machine's folders (cli.outputs.repository_path)."""
    settings = json.loads((REPOSITORY / "plots" / name).read_text())["settings"]
    assert (settings["metrics_json"], settings["output_dir"]) == (f"plots/{name}", "runs/lad_trl")


def test_the_model_option_runs_a_saved_gpt2_style_model(tmp_path):
    """--model NAME takes a hub name or a local folder; a tiny GPT-2-style model saved to a folder,
    with a byte-level BPE tokenizer trained here, runs that path offline: the tokenizer loaded by
    name, the prompt with worked examples, the reward decoded from text, activation checkpointing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [lad_trl.HUB_PROMPT.format(n=n) + answer for n in TASK.train_n for answer in TASK.valid_answers(n)[:3]]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    folder = tmp_path / "tiny-gpt2"
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")
    hf_tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(hf_tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=hf_tokenizer.eos_token_id, eos_token_id=hf_tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    reward = lad_trl.verifier_reward(TASK, hf_tokenizer)  # decodes text, reads up to the first "."
    answers = ["12+25.<|endoftext|>", " 12+25.\n12=5+7.", "12+24.", "12+25"]
    assert reward(completion_ids=[hf_tokenizer.encode(a) for a in answers], n=[37] * 4) == [1.0, 1.0, 0.0, 0.0]

    argv = ["--model", str(folder), "--steps", "2", "--group-size", "2", "--prompts-per-step", "2",
            "--max-completion-length", "8", "--eval-samples", "2", "--output-dir", str(tmp_path / "run")]
    [run] = lad_trl.main(argv)
    assert 0 <= run["heldout_reward_before"] <= 1 and 0 <= run["heldout_reward_after"] <= 1
    assert (tmp_path / "run" / "lad-seed0" / "model.safetensors").exists()

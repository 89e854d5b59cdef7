"""Tests of LAD inside TRL (lad_trl.py): on a fixed batch the trainer's loss is lad_loss, with LAD off
it is TRL's own GRPO loss, bad settings are refused, a few real steps of the tiny model train, and
--model runs a model saved to a folder. All offline, on CPU.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import math
import os

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
from trl import GRPOConfig, GRPOTrainer

import lad_trl
from arithmetic import SumTask
from lad_loss import lad_loss

TASK = SumTask()
TEMPERATURE = 0.7  # not 1, so a logp computed without the sampling temperature would not match


def cpu_config(tmp_path, config_class=lad_trl.LADConfig, **settings):
    return config_class(
        output_dir=str(tmp_path), report_to="none", bf16=False, activation_checkpointing=False,
        dataloader_pin_memory=False, **settings,
    )


def make_trainer(tmp_path, config_class=lad_trl.LADConfig, trainer_class=lad_trl.LADTrainer, **settings):
    """A trainer around a fresh tiny model (seed 0: every call gets the same weights), not trained."""
    tokenizer = lad_trl.char_tokenizer(TASK)
    model = lad_trl.tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0)
    config = cpu_config(
        tmp_path, config_class, per_device_train_batch_size=4, num_generations=2, temperature=TEMPERATURE, **settings
    )
    return trainer_class(
        model=model, reward_funcs=lad_trl.verifier_reward(TASK, tokenizer), args=config,
        train_dataset=lad_trl.sum_dataset(TASK.train_n, lad_trl.TINY_PROMPT), processing_class=tokenizer,
    )


def fixed_batch(with_old=True, log_zero_padding=True):
    """Five completions of two prompts, as GRPOTrainer hands them to compute_loss.

    The completions have different lengths, so the mask hides 0 to 2 padding positions, and there
    logp_old holds values far from anything real: 25 (a loss that ignored the mask would change a
    lot) and -inf (log 0: multiplying it by a 0 in the mask would give NaN, not 0). The last
    completion is masked out entirely, as TRL does with mask_truncated_completions: it must not count.
    """
    prompt_ids = TASK.prompts([37, 37, 52, 52, 52])
    completion_ids, completion_mask = TASK.completions(["12+25.", "5+3.", "50+2.", "1+51.", "11+41."])
    completion_mask[-1] = False
    generator = torch.Generator().manual_seed(0)
    logp_old = -torch.rand(completion_ids.shape, generator=generator) * 3  # log-probabilities in (-3, 0]
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask.long(),
        "advantages": torch.tensor([1.2, -0.7, 0.4, -1.5, 2.0]),
        "num_items_in_batch": completion_mask.sum(),
    }
    if with_old:
        padding = torch.full_like(logp_old, 25.0)
        if log_zero_padding:  # TRL's own GRPO loss turns this into NaN: it multiplies by the mask
            padding[1] = -float("inf")  # the second completion, "5+3.", has two padding positions
        inputs["old_per_token_logps"] = torch.where(completion_mask, logp_old, padding)
    return inputs


def reference_logp(model, inputs):
    """log pi_theta of each completion token, from the model's plain forward pass (no TRL code)."""
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    prompt_len, completion_len = inputs["prompt_ids"].size(1), inputs["completion_ids"].size(1)
    # the logits at position t predict token t + 1
    logits = logits[:, prompt_len - 1 : prompt_len - 1 + completion_len] / TEMPERATURE
    return F.log_softmax(logits, dim=-1).gather(-1, inputs["completion_ids"].unsqueeze(-1)).squeeze(-1)


def expected_lad_loss(logp, inputs, lad_ratio, eta=0.25, divergence="js"):
    """lad_loss on the same log-probabilities, advantages and mask, at the token or sequence level."""
    mask = inputs["completion_mask"].bool()
    logp_old = inputs.get("old_per_token_logps", logp.detach())
    if lad_ratio == "token":
        return lad_loss(logp, logp_old, inputs["advantages"], eta, divergence, mask=mask)
    counted = mask.any(-1)  # the completions with at least one token that counts
    sum_masked = lambda x: torch.where(mask, x, 0.0).sum(-1)[counted]  # noqa: E731
    return lad_loss(sum_masked(logp), sum_masked(logp_old), inputs["advantages"][counted], eta, divergence)


@pytest.mark.parametrize("with_old", [True, False], ids=["off-policy", "on-policy"])
@pytest.mark.parametrize("lad_ratio,divergence,eta", [("token", "js", 0.25), ("sequence", "hd", 0.5)])
def test_trainer_loss_and_gradient_are_lad_loss_on_the_same_batch(tmp_path, lad_ratio, divergence, eta, with_old):
    """Catches a flipped sign, the wrong ratio level, a mask left out, logp taken at the wrong
    positions or temperature, a detached logp, and logp_old missing when TRL leaves it out."""
    trainer = make_trainer(tmp_path, lad_ratio=lad_ratio, divergence=divergence, eta=eta)
    model = trainer.model.eval()  # eval: no division for gradient accumulation (tested below)
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


def test_gradient_accumulation_divides_the_loss_by_the_micro_batches(tmp_path):
    """GRPOTrainer tells transformers that compute_loss scales for accumulation; forgetting it would
    multiply the learning rate by the number of micro-batches."""
    trainer = make_trainer(tmp_path)
    model = trainer.model.train()
    inputs = fixed_batch()
    trainer.current_gradient_accumulation_steps = 1
    single = trainer.compute_loss(model, inputs)
    trainer.current_gradient_accumulation_steps = 4
    torch.testing.assert_close(trainer.compute_loss(model, inputs), single / 4)


def test_with_lad_off_the_loss_is_trls_own_grpo_loss(tmp_path):
    """lad=False must hand back GRPOTrainer's loss untouched: the same number as a plain GRPOTrainer
    on the same weights and batch (and a different one from LAD's)."""
    inputs = fixed_batch(log_zero_padding=False)
    grpo = make_trainer(tmp_path / "grpo", config_class=GRPOConfig, trainer_class=GRPOTrainer)
    off = make_trainer(tmp_path / "off", lad=False)
    lad = make_trainer(tmp_path / "lad")
    losses = {}
    for name, trainer in [("grpo", grpo), ("off", off), ("lad", lad)]:
        trainer.model.eval()
        losses[name] = trainer.compute_loss(trainer.model, inputs)
    torch.testing.assert_close(losses["off"], losses["grpo"], rtol=1e-6, atol=1e-7)
    assert not torch.isclose(losses["lad"], losses["grpo"])


@pytest.mark.parametrize(
    "settings,name",
    [
        ({"eta": 0.0}, "eta"),
        ({"eta": -1.0}, "eta"),
        ({"eta": float("nan")}, "eta"),
        ({"divergence": "kld"}, "divergence"),
        ({"lad_ratio": "word"}, "lad_ratio"),
        ({"beta": 0.04}, "beta"),  # GRPO's KL penalty would be dropped silently
        ({"entropy_coef": 0.01}, "entropy_coef"),  # and so would its entropy bonus
        ({"top_entropy_quantile": 0.2}, "top_entropy_quantile"),
    ],
)
def test_bad_settings_raise_a_value_error_naming_the_setting(tmp_path, settings, name):
    with pytest.raises(ValueError, match=name):
        cpu_config(tmp_path, **settings)


def test_grpo_only_settings_are_allowed_with_lad_off(tmp_path):
    config = cpu_config(tmp_path, lad=False, beta=0.04)
    assert config.beta == 0.04


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
        (["--loss", "ppo"], "--loss"),
    ],
)
def test_bad_command_line_arguments_are_an_argparse_error(capsys, argv, argument):
    """Exit status 2 and one error line naming the argument, not a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        lad_trl.parse_args(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and f"argument {argument}" in error_lines[0]


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
    trainer = lad_trl.build_trainer(args)
    start = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    before, after = lad_trl.train_and_evaluate(trainer, args)

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == args.steps
    assert all(math.isfinite(entry["loss"]) for entry in logs)
    # Some group had both a correct and a wrong answer, so there was something to learn from.
    assert min(entry["frac_reward_zero_std"] for entry in logs if "frac_reward_zero_std" in entry) < 1
    moved = [name for name, p in trainer.model.named_parameters() if not torch.equal(p, start[name])]
    assert moved, "no parameter changed"
    assert 0 <= before <= 1 and 0 <= after <= 1
    assert (tmp_path / "model.safetensors").exists()
    assert "held-out reward" in capsys.readouterr().out


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
            "--max-completion-length", "8", "--output-dir", str(tmp_path / "run")]
    before, after = lad_trl.main(argv)
    assert 0 <= before <= 1 and 0 <= after <= 1
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_quick_changes_the_defaults_and_an_explicit_number_wins():
    assert (lad_trl.parse_args([]).steps, lad_trl.parse_args([]).sft_steps) == (300, 1000)
    quick = lad_trl.parse_args(["--quick", "--steps", "7"])
    assert (quick.steps, quick.sft_steps) == (7, 200)

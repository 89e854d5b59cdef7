"""Tests of the demo, trl_demo/ (`python -m trl_demo`: its Settings, build_trainer and main): the
command line refuses bad input before any work; the tokenizer is the task's encoding and the reward
its verifier; a few real steps of the tiny model train; the command writes its metrics, and each
committed metrics file records the settings of the command that wrote it; --model runs a model
saved to a folder; the demo's other modules do not import its command line. All offline, on CPU.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import ast
import dataclasses
import json
import math
import shlex
from pathlib import Path

import pytest

import trl_or_skip  # noqa: F401  (skips this module where TRL is not installed)

import torch

from cli.outputs import repository_path
from cli.settings import parse_settings
from reasoning.arithmetic import SumTask
from trl_demo.model import char_tokenizer, tiny_sft_model
from trl_demo import __main__ as demo
from trl_demo.runs import train_and_evaluate
from trl_demo.task import HUB_PROMPT, verifier_reward

TASK = SumTask()
REPOSITORY = Path(__file__).resolve().parent.parent


def settings_of(argv):
    return parse_settings(demo.Settings, argv)


def test_the_command_turns_dropout_off(tmp_path):
    """With a stored pi_old, dropout would add noise to every ratio pi_theta/pi_old. A GPT-2-style
    model has dropout 0.1 by default; the trainer the command builds must switch it off."""
    from transformers import GPT2Config, GPT2LMHeadModel

    settings = settings_of(["--quick", "--out-dir", str(tmp_path)])
    tokenizer = char_tokenizer(TASK)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=16, n_embd=16,
                                       n_layer=1, n_head=2))
    assert any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    trainer = demo.build_trainer(settings, TASK, tokenizer, model, seed=0, method="lad")
    trainer.model.train()
    inputs = torch.tensor([TASK.encode("37=12+25.")])
    torch.testing.assert_close(trainer.model(inputs).logits, trainer.model(inputs).logits,
                               rtol=0, atol=0)


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--eta", "0"], "--eta"),
        (["--eta", "nan"], "--eta"),
        (["--divergence", "kld"], "--divergence"),
        (["--lad-ratio", "word"], "--lad-ratio"),
        (["--group-size", "1"], "--group-size"),
        (["--iterations", "0"], "--iterations"),
        (["--epochs", "0"], "--epochs"),
        (["--sft-steps", "-1"], "--sft-steps"),
        (["--eval-samples", "0"], "--eval-samples"),
        (["--threads", "0"], "--threads"),
        (["--methods", "ppo"], "--methods"),
        (["--methods", "lad", "lad"], "--methods"),  # one run folder written twice
        (["--seeds", "one"], "--seeds"),
        (["--seeds", "-1"], "--seeds"),
        (["--seeds", "0", "0"], "--seeds"),
        (["--out-dir", "lad_trl.py"], "--out-dir"),  # a regular file, not a folder
        (["--out-dir", "lad_trl.py/run"], "--out-dir"),  # under a regular file
        (["--metrics-json", "plots"], "--metrics-json"),  # a folder, not a file
        # the old vocabulary: refused, not taken for something else
        (["--steps", "3"], "--steps"),
        (["--loss", "lad"], "--loss"),
        (["--prompts-per-step", "4"], "--prompts-per-step"),
        (["--num-iterations", "2"], "--num-iterations"),
        (["--output-dir", "runs/x"], "--output-dir"),
    ],
)
def test_bad_command_line_arguments_are_one_error_line_naming_the_flag(capsys, argv, flag,
                                                                       monkeypatch):
    """Exit status 2 and one error line naming the flag, not a traceback, before any work."""
    monkeypatch.chdir(REPOSITORY)  # the paths above are the repository's own files and folders
    with pytest.raises(SystemExit) as exit_info:
        settings_of(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and flag in error_lines[0]


@pytest.mark.parametrize("settings,flag", [({"iterations": 0}, "--iterations"),
                                           ({"methods": ["lad", "ppo"]}, "--methods"),
                                           ({"out_dir": "lad_trl.py"}, "--out-dir")])
def test_settings_built_in_code_are_checked_as_the_command_line_is(settings, flag, monkeypatch):
    """A ValueError naming the flag: the checks live in the dataclass, not in the parser."""
    monkeypatch.chdir(REPOSITORY)
    with pytest.raises(ValueError, match=flag):
        demo.Settings(**settings)


def test_quick_changes_only_its_settings_and_an_explicit_flag_wins():
    """--quick never writes where the full run does, and a flag given on the command line wins."""
    full, quick = settings_of([]), settings_of(["--quick"])
    for field in dataclasses.fields(demo.Settings):
        if field.name != "quick":
            value = field.metadata["quick"]
            assert getattr(quick, field.name) == (getattr(full, field.name) if value is None
                                                  else value), field.name
    assert quick.out_dir.startswith("runs/quick/") and quick.metrics_json is None
    explicit = settings_of(["--quick", "--iterations", "7", "--sft-steps", "0",
                            "--eval-samples", "3", "--out-dir", "runs/x"])
    assert (explicit.iterations, explicit.sft_steps, explicit.eval_samples,
            explicit.out_dir) == (7, 0, 3, "runs/x")
    assert full.epochs == 1  # TRL's default: one update per sampled batch


def test_char_tokenizer_is_the_tasks_encoding():
    tokenizer = char_tokenizer(TASK)
    assert tokenizer("37=")["input_ids"] == TASK.encode("37=")
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == TASK.end_token
    assert tokenizer.decode(TASK.encode("12+25.")) == "12+25."


def test_reward_is_the_verifier():
    tokenizer = char_tokenizer(TASK)
    reward = verifier_reward(TASK, tokenizer)
    # the last: end marker, then padding
    completions = ["12+25.", "12+24.", "37+0.", "12+25", "5+32.."]
    ids = [TASK.encode(text) for text in completions]
    assert reward(completion_ids=ids, n=[37] * 5) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_a_few_iterations_of_the_tiny_model_train_offline(tmp_path, capsys):
    """The --quick command end to end on CPU: warm start, held-out evaluation, 4 LAD iterations,
    save. The loss stays finite and the weights move."""
    settings = settings_of(["--quick", "--out-dir", str(tmp_path)])
    tokenizer = char_tokenizer(TASK)
    start = tiny_sft_model(TASK, tokenizer, 0, settings.sft_steps)
    trainer = demo.build_trainer(settings, TASK, tokenizer, start, 0, "lad")
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    run = train_and_evaluate(trainer, 0, "lad", settings.eval_samples)

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == settings.iterations
    assert all(math.isfinite(entry["loss"]) for entry in logs)
    # Some group had both a correct and a wrong answer, so there was something to learn from.
    assert min(e["frac_reward_zero_std"] for e in logs if "frac_reward_zero_std" in e) < 1
    moved = [name for name, p in trainer.model.named_parameters()
             if not torch.equal(p, before[name])]
    assert moved, "no parameter changed"
    assert 0 <= run["heldout_reward_before"] <= 1 and 0 <= run["heldout_reward_after"] <= 1
    assert (tmp_path / "lad-seed0" / "model.safetensors").exists()
    assert "held-out reward" in capsys.readouterr().out


def test_epochs_are_optimiser_steps_on_each_sampled_batch(tmp_path):
    """--iterations counts sampled batches and --epochs the optimiser steps on each (TRL's
    num_iterations), so TRL's max_steps is their product. Catches --iterations passed as
    max_steps: with --epochs 2 the run would sample half the batches asked for."""
    settings = settings_of(["--quick", "--iterations", "3", "--epochs", "2",
                            "--out-dir", str(tmp_path)])
    tokenizer = char_tokenizer(TASK)
    model = tiny_sft_model(TASK, tokenizer, 0, sft_steps=0)
    config = demo.build_trainer(settings, TASK, tokenizer, model, 0, "lad").args
    assert (config.max_steps, config.num_iterations) == (6, 2)


def test_metrics_json_holds_each_seeds_before_and_after_for_each_method(tmp_path):
    """What the docs' table quotes: per seed and method, the held-out reward before and after,
    with the settings (paths as given) and the mean and sample std over seeds. Also: a seed's
    numbers do not depend on the runs before it in the same process (the same as a command with
    that seed and method alone)."""
    common = ["--quick", "--sft-steps", "20", "--iterations", "2",
              "--out-dir", str(tmp_path / "runs")]
    path = tmp_path / "metrics.json"
    runs = demo.main(common + ["--seeds", "3", "4", "--methods", "lad", "grpo",
                                  "--metrics-json", str(path)])
    written = json.loads(path.read_text())

    assert [(r["seed"], r["loss"]) for r in written["runs"]] == [(3, "lad"), (3, "grpo"),
                                                                 (4, "lad"), (4, "grpo")]
    assert written["runs"] == json.loads(json.dumps(runs))
    recorded = written["settings"]
    assert (recorded["seeds"], recorded["methods"]) == ([3, 4], ["lad", "grpo"])
    assert (recorded["iterations"], recorded["metrics_json"]) == (2, str(path))
    assert written["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for method in ["lad", "grpo"]:
        mine = [r for r in runs if r["loss"] == method]
        for name in ["before", "after"]:
            values = [r[f"heldout_reward_{name}"] for r in mine]
            summary = written["summary"][method]
            assert summary[f"{name}_mean"] == pytest.approx(sum(values) / 2)
            assert summary[f"{name}_std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    # Both methods start from the same warm start and the same evaluation samples.
    assert runs[0]["heldout_reward_before"] == runs[1]["heldout_reward_before"]

    alone = demo.main(common + ["--seeds", "4", "--methods", "grpo"])
    assert alone == [runs[3]]


# The commands that wrote the committed metrics files, as the docs print them beside the tables.
COMMITTED = {
    "lad_trl_metrics.json": "python -m trl_demo --seeds 0 1 2 3 4 --methods lad grpo "
                            "--metrics-json plots/lad_trl_metrics.json",
    "lad_trl_metrics_no_avx.json": "ATEN_CPU_CAPABILITY=default python -m trl_demo "
                                   "--seeds 0 1 2 3 4 --methods lad grpo "
                                   "--metrics-json plots/lad_trl_metrics_no_avx.json",
}


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_each_committed_metrics_file_records_the_settings_of_its_command(name, monkeypatch):
    """The command, parsed as the demo parses it, gives exactly the settings the committed file
    records, with its paths relative to the repository. Catches a default that drifted from the
    committed numbers, a flag renamed without the file, and a file that names one machine's
    folders (cli.outputs.repository_path)."""
    monkeypatch.chdir(REPOSITORY)
    words = shlex.split(COMMITTED[name])
    settings = settings_of(words[words.index("trl_demo") + 1:])
    expected = dict(dataclasses.asdict(settings), out_dir=repository_path(settings.out_dir),
                    metrics_json=repository_path(settings.metrics_json))
    recorded = json.loads((REPOSITORY / "plots" / name).read_text())["settings"]
    assert recorded == expected
    assert (recorded["metrics_json"], recorded["out_dir"]) == (f"plots/{name}", "runs/lad_trl")


def test_the_model_option_runs_a_saved_gpt2_style_model(tmp_path):
    """--model NAME takes a hub name or a local folder; a tiny GPT-2-style model saved to a folder,
    with a byte-level BPE tokenizer trained here, runs that path offline: the tokenizer loaded by
    name, the prompt with worked examples, the reward decoded from text, activation
    checkpointing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [HUB_PROMPT.format(n=n) + answer for n in TASK.train_n
              for answer in TASK.valid_answers(n)[:3]]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    folder = tmp_path / "tiny-gpt2"
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")
    hf_tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(hf_tokenizer), n_positions=64, n_embd=32, n_layer=1,
                        n_head=2, bos_token_id=hf_tokenizer.eos_token_id,
                        eos_token_id=hf_tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    reward = verifier_reward(TASK, hf_tokenizer)  # decodes text, reads up to the first "."
    answers = ["12+25.<|endoftext|>", " 12+25.\n12=5+7.", "12+24.", "12+25"]
    ids = [hf_tokenizer.encode(a) for a in answers]
    assert reward(completion_ids=ids, n=[37] * 4) == [1.0, 1.0, 0.0, 0.0]

    argv = ["--model", str(folder), "--iterations", "2", "--group-size", "2",
            "--prompts-per-iteration", "2", "--max-completion-length", "8", "--eval-samples", "2",
            "--out-dir", str(tmp_path / "run")]
    [run] = demo.main(argv)
    assert 0 <= run["heldout_reward_before"] <= 1 and 0 <= run["heldout_reward_after"] <= 1
    assert (tmp_path / "run" / "lad-seed0" / "model.safetensors").exists()


def test_the_demos_parts_import_neither_its_command_line_nor_a_chapter_script():
    """trl_demo/'s task, model and runs are composed by its command line (__main__.py) and must not
    import it, nor a chapter script: a circle, or a part that cannot be read without the command.
    The command line itself imports the trainer, lad_trl.py, and nothing imports the command."""
    scripts = {"bandit", "train_reasoning", "trl_demo.__main__"}
    for path in sorted((REPOSITORY / "trl_demo").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
        assert not imported & scripts and not {n.split(".")[0] for n in imported} & scripts, path
        if path.name != "__main__.py":
            assert "lad_trl" not in {name.split(".")[0] for name in imported}, path.name

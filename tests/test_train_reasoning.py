"""Tests of the arithmetic task, its verifier, the SFT warm start and its cache, the command line,
and the GRPO-vs-LAD pipeline end to end (--quick)."""
import importlib.util
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import train_reasoning as tr
from cli.settings import parse_settings
from reasoning import sft
from reasoning.arithmetic import SumTask
from reasoning.methods import METHODS
from reasoning.parallel import run_jobs

TASK = SumTask()


def brute_force_correct(n: int, alphabet: str = "0123456789+=", max_len: int = 5) -> set:
    """Every string the model could write (up to the end marker) that the verifier accepts."""
    return {
        "".join(body) + "."
        for length in range(1, max_len + 1)
        for body in itertools.product(alphabet, repeat=length)
        if TASK.is_correct(n, "".join(body) + ".")
    }


@pytest.mark.parametrize("n", [10, 37, 99])
def test_valid_answers_are_exactly_what_the_verifier_accepts(n):
    """The enumeration is complete: no other completion of up to MAX_COMPLETION characters is
    accepted."""
    answers = TASK.valid_answers(n)
    assert len(answers) == len(set(answers)) == n - 1
    assert brute_force_correct(n, max_len=TASK.MAX_COMPLETION - 1) == set(answers)


def test_verifier_accepts_exactly_the_positive_decompositions():
    n = 23
    candidates = [f"{a}+{b}." for a in range(0, 30) for b in range(0, 30)]
    accepted = {c for c in candidates if TASK.is_correct(n, c)}
    assert accepted == {f"{a}+{n - a}." for a in range(1, n)}
    # shortcuts, leading zeros, missing end marker, extra terms, garbage
    for wrong in ["23+0.", "0+23.", "01+22.", "1+022.", "1+22", "1+22..", "1+2+20.", "+23.", "1+.",
                  "", "=.", "1=22."]:
        assert not TASK.is_correct(n, wrong), wrong


def test_decode_cuts_after_the_end_marker():
    assert TASK.decode(TASK.encode("12+25...")) == "12+25."
    assert TASK.decode(TASK.encode("1+2")) == "1+2"  # never ended: kept as is (and rejected)


def test_prompt_split_is_disjoint_and_large_enough():
    heldout, train = set(TASK.heldout_n), set(TASK.train_n)
    assert not heldout & train
    assert heldout | train == set(range(TASK.N_MIN, TASK.N_MAX + 1))
    assert len(heldout) >= 16


def test_sft_data_mixes_correct_and_wrong_answers_in_the_requested_proportion():
    prompts, completions, mask, weight = TASK.sft_data(correct_fraction=0.3)
    assert torch.isclose(weight.sum(), torch.tensor(1.0))
    ns = [int(TASK.decode(p.tolist())[:-1]) for p in prompts]
    texts = [TASK.decode(c.tolist()) for c in completions]
    correct = torch.tensor([TASK.is_correct(n, t) for n, t in zip(ns, texts)])
    assert set(ns) == set(TASK.train_n)  # never a held-out prompt
    assert torch.isclose(weight[correct].sum(), torch.tensor(0.3))
    assert torch.equal(mask.sum(1), torch.tensor([len(t) for t in texts]))


def parse(argv) -> tr.Settings:
    return parse_settings(tr.Settings, argv)


def test_bad_arguments_are_rejected_before_any_work_with_the_flag_named(capsys, tmp_path):
    """Each bad value must stop the command line with an argparse error (exit 2) that names its
    flag, not crash later in training or after it (a NaN learning rate, an unwritable metrics
    file)."""
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    for argv, name in [(["--group-size", "1"], "--group-size"), (["--eta", "0"], "--eta"),
                       (["--eval-samples", "4"], "--eval-samples"),
                       (["--methods", "ppo"], "--methods"),
                       (["--methods", "lad", "lad"], "--methods"),
                       (["--sft-correct-fraction", "1.5"], "--sft-correct-fraction"),
                       (["--kl-coef", "-1"], "--kl-coef"), (["--kl-coef", "nan"], "--kl-coef"),
                       (["--minibatches", "5"], "--minibatches"),
                       (["--minibatches", "0"], "--minibatches"),
                       (["--n-embd", "30"], "--n-embd"), (["--eta", "0.01"], "--eta"),
                       (["--kl-estimator", "k1"], "--kl-estimator"),
                       (["--advantage-source", "oracle"], "--advantage-source"),
                       (["--seeds", "-1"], "--seeds"), (["--seeds", "1", "1"], "--seeds"),
                       (["--lr", "abc"], "--lr"), (["--lr", "inf"], "--lr"),
                       (["--eta", "nan"], "--eta"), (["--clip-eps", "-inf"], "--clip-eps"),
                       (["--metrics-json", str(tmp_path)], "--metrics-json"),
                       (["--out-dir", str(a_file / "figures")], "--out-dir"),
                       (["--sft-cache-dir", str(a_file)], "--sft-cache-dir")]:
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert name in err.splitlines()[-1], (argv, err)
    with pytest.raises(ValueError, match="--minibatches"):  # the same checks for code
        tr.Settings(minibatches=5)


def test_a_run_that_is_not_the_tables_writes_nothing_the_repository_tracks():
    """The committed figures plots/reasoning_*.png come from the five-seed command, which names
    --out-dir plots. A one-seed `python train_reasoning.py` or a --quick run must write its
    figures and checkpoints under runs/, which git ignores, never over the committed ones."""
    ignored = (Path(__file__).resolve().parent.parent / ".gitignore").read_text().splitlines()
    assert "runs/" in ignored
    for argv in ([], ["--quick"], ["--seeds", "0", "1", "--iterations", "5"]):
        settings = parse(argv)
        for path in (settings.out_dir, settings.sft_cache_dir):
            assert Path(path).parts[0] == "runs", (argv, path)
        assert settings.metrics_json is None


def test_quick_shrinks_only_what_is_not_given():
    full, quick = parse([]), parse(["--quick"])
    assert quick.iterations < full.iterations and quick.n_embd < full.n_embd
    assert quick.out_dir != full.out_dir
    explicit = parse(["--quick", "--iterations", "7", "--n-embd", "48", "--out-dir", "elsewhere"])
    assert (explicit.iterations, explicit.n_embd, explicit.out_dir) == (7, 48, "elsewhere")
    assert explicit.eval_every == quick.eval_every  # the rest still shrinks
    # one pi* for both anchors: the KL coefficient is eta unless given
    assert full.kl_coef == full.eta and parse(["--eta", "0.5"]).kl_coef == 0.5
    assert parse(["--kl-coef", "0.1"]).kl_coef == 0.1
    assert full.methods == list(METHODS)


def test_quick_run_end_to_end_writes_metrics_and_figures_and_is_deterministic(tmp_path):
    # One thread: the suite may share the CPU with other work, and oversubscribed threads crawl.
    argv = ["--quick", "--seeds", "3", "--threads", "1", "--metrics-json", str(tmp_path / "m.json"),
            "--out-dir", str(tmp_path / "fig"), "--sft-cache-dir", str(tmp_path / "runs")]
    returned = tr.main(argv)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert (tmp_path / "fig" / "reasoning_answers.png").stat().st_size > 0
    assert (tmp_path / "fig" / "reasoning_training.png").stat().st_size > 0
    assert len(list((tmp_path / "runs").glob("sft-*.pt"))) == 1  # the cached warm start
    largest = max(TASK.heldout_n) - 1  # most correct answers any held-out prompt has
    for name in ["sft", *METHODS]:
        m = metrics[name]
        assert 0 <= m["accuracy"] <= 1
        assert 0 <= m["distinct_correct"] <= metrics["settings"]["eval_samples"]
        assert 1 - 1e-9 <= m["effective_correct"] <= largest
        assert 0 <= m["tv_shape"] <= 1 and 0 <= m["tv_to_target"] <= 1
        assert m["wellformed_wrong"] + m["malformed"] == pytest.approx(1 - m["accuracy"])
        assert m["train_exact_accuracy"] is not None
    assert metrics["settings"]["seeds"] == [3] and metrics["time_over_grpo"]["grpo"] == 1.0
    assert set(metrics["time_over_grpo"]) == set(METHODS)
    d = metrics["differences"]["lad-kl - grpo-kl"]["effective_correct"]["per_seed"][0]
    assert d == pytest.approx(metrics["lad-kl"]["effective_correct"]
                              - metrics["grpo-kl"]["effective_correct"])

    # A second run reuses the cached SFT checkpoint and reproduces every number, whichever methods
    # run beside it (each has its own random streams) and whether they run in parallel processes
    # (the first run: --workers 2, the default) or one after the other in this one.
    again = tr.main(argv[:-6] + ["--workers", "1", "--methods", "lad-fixed", "grpo-kl",
                                 "--out-dir", str(tmp_path / "fig2"),
                                 "--sft-cache-dir", str(tmp_path / "runs")])
    for name in ["sft", "lad-fixed", "grpo-kl"]:
        assert again[name]["per_seed"] == returned[name]["per_seed"]


def test_sft_loss_is_the_cross_entropy_per_completion_token_not_per_padded_slot():
    """Every completion token has log-probability -0.5, so the cross-entropy per token is 0.5
    whatever the lengths ("1+9." has 4 tokens, "12+25." 6, of 6 slots each). A loss averaged over
    the padding as well would be smaller, and would weigh short answers less than long ones."""
    completions, mask = TASK.completions(["1+9.", "12+25."])
    data = (TASK.prompts([10, 37]), completions, mask, torch.tensor([0.5, 0.5]))
    w = torch.nn.Parameter(torch.tensor(-0.5))

    def completion_logprobs(prompts, completions, mask):  # tiny_lm's contract: 0 on padding
        return torch.where(mask, w.expand(completions.shape), torch.zeros(completions.shape))

    loss = sft.sft_warm_start(completion_logprobs, [w], data, steps=1, batch_size=8, lr=1e-3,
                              seed=0)
    assert loss == 0.5


def test_sft_cache_key_changes_with_the_code_torch_and_threads_but_not_with_rl_settings(
        tmp_path, monkeypatch):
    """A checkpoint trained by other code, another torch or another thread count is not reused."""
    settings = parse(["--sft-cache-dir", str(tmp_path)])
    key = sft.sft_checkpoint_path(TASK, settings, 0)
    cache = ["--sft-cache-dir", str(tmp_path)]
    assert sft.sft_checkpoint_path(TASK, parse(cache + ["--lr", "1e-3"]), 0) == key
    assert sft.sft_checkpoint_path(TASK, parse(cache + ["--threads", "2"]), 0) != key
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert sft.sft_checkpoint_path(TASK, settings, 0) != key
    monkeypatch.undo()
    # stands in for edited code
    monkeypatch.setattr(sft, "SFT_CODE", sft.SFT_CODE + ["reasoning/methods.py"])
    assert sft.sft_checkpoint_path(TASK, settings, 0) != key


TASK_FILE = """
from reasoning.arithmetic import SumTask


class SingleAnswerTask(SumTask):
    def sft_data(self, correct_fraction):
        return super().sft_data({fraction})
"""


def _task_from_file(path: Path, fraction: float):
    """A SumTask subclass called SingleAnswerTask, defined in its own file, as an exercise writes
    one."""
    path.write_text(TASK_FILE.format(fraction=fraction))
    spec = importlib.util.spec_from_file_location(f"task_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SingleAnswerTask()


def test_sft_cache_key_reads_the_tasks_own_code(tmp_path):
    """Two tasks with the same class name and constants whose SFT data differ (a student's
    exercise file before and after a fix) train different warm starts: a key blind to the task's
    code would hand the second the first one's cached checkpoint. The same code gives the same
    key, so the cache still works."""
    settings = parse(["--sft-cache-dir", str(tmp_path)])
    before = _task_from_file(tmp_path / "before.py", 0.5)
    after = _task_from_file(tmp_path / "after.py", 0.9)
    same = _task_from_file(tmp_path / "same.py", 0.5)
    assert type(before).__name__ == type(after).__name__
    key = sft.sft_checkpoint_path(before, settings, 0)
    assert sft.sft_checkpoint_path(after, settings, 0) != key
    assert sft.sft_checkpoint_path(same, settings, 0) == key
    assert sft.sft_checkpoint_path(TASK, settings, 0) != key


def _sleep_then_return(index: int, seconds: float) -> int:
    import time
    time.sleep(seconds)
    return index


def test_run_jobs_returns_results_in_job_order_even_when_later_jobs_finish_first():
    """The first job is the slowest: a pool that collected results as they finish would return them
    reversed, and the methods' runs would be attributed to the wrong names."""
    jobs = [(i, 0.3 * (3 - i)) for i in range(4)]
    assert run_jobs(_sleep_then_return, jobs, workers=2) == [0, 1, 2, 3]


def test_the_warm_start_reads_only_the_settings_its_module_declares(tmp_path):
    """reasoning/sft.py trains and caches a checkpoint from exactly the fields SFTSettings lists: a
    read of any other setting fails here, and the cache key is the one the full settings give."""
    declared = list(sft.SFTSettings.__annotations__)
    full = parse(["--sft-cache-dir", str(tmp_path), "--sft-steps", "2", "--n-layer", "1",
                  "--n-head", "2", "--n-embd", "16"])
    assert set(declared) <= set(vars(full))
    only = SimpleNamespace(**{k: getattr(full, k) for k in declared})
    path = sft.sft_checkpoint(TASK, only, 0)
    assert path.is_file() and path == sft.sft_checkpoint_path(TASK, full, 0)

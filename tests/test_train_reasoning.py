"""Tests of the arithmetic task, its verifier, and the GRPO-vs-LAD pipeline end to end (--quick)."""
import itertools
import json

import pytest
import torch

import train_reasoning as tr
from arithmetic import SumTask

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
    """The enumeration is complete: no other completion of up to MAX_COMPLETION characters is accepted."""
    answers = TASK.valid_answers(n)
    assert len(answers) == len(set(answers)) == n - 1
    assert brute_force_correct(n, max_len=TASK.MAX_COMPLETION - 1) == set(answers)


def test_verifier_accepts_exactly_the_positive_decompositions():
    n = 23
    candidates = [f"{a}+{b}." for a in range(0, 30) for b in range(0, 30)]
    accepted = {c for c in candidates if TASK.is_correct(n, c)}
    assert accepted == {f"{a}+{n - a}." for a in range(1, n)}
    # shortcuts, leading zeros, missing end marker, extra terms, garbage
    for wrong in ["23+0.", "0+23.", "01+22.", "1+022.", "1+22", "1+22..", "1+2+20.", "+23.", "1+.", "", "=.", "1=22."]:
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


def test_bad_arguments_are_rejected_with_the_argument_named(capsys):
    for argv, name in [(["--group-size", "1"], "--group-size"), (["--eta", "0"], "--eta"),
                       (["--eval-samples", "4"], "--eval-samples"), (["--method", "ppo"], "--method"),
                       (["--sft-correct-fraction", "1.5"], "--sft-correct-fraction")]:
        with pytest.raises(SystemExit):
            tr.parse_args(argv)
        assert name in capsys.readouterr().err


def test_quick_run_end_to_end_writes_metrics_and_figures_and_is_deterministic(tmp_path):
    # One thread: the test suite may share the CPU with other work, and oversubscribed threads crawl.
    argv = ["--quick", "--seed", "3", "--threads", "1", "--metrics-json", str(tmp_path / "m.json"),
            "--out-dir", str(tmp_path / "fig"), "--run-dir", str(tmp_path / "runs")]
    returned = tr.main(argv)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert (tmp_path / "fig" / "reasoning_answers.png").stat().st_size > 0
    assert (tmp_path / "fig" / "reasoning_training.png").stat().st_size > 0
    assert len(list((tmp_path / "runs").glob("sft-*.pt"))) == 1  # the cached warm start
    largest = max(TASK.heldout_n) - 1  # most correct answers any held-out prompt has
    for name in ["sft", "grpo", "lad"]:
        m = metrics[name]
        assert 0 <= m["accuracy"] <= m["pass_at_k"] <= 1
        assert 0 <= m["distinct_correct"] <= metrics["settings"]["eval_samples"]
        assert 1 - 1e-9 <= m["effective_correct"] <= largest
        assert 0 <= m["entropy_correct"] <= torch.log(torch.tensor(float(largest))).item()
    assert metrics["settings"]["seed"] == [3] and metrics["lad_over_grpo_time"] > 0

    # A second run reuses the cached SFT checkpoint and reproduces every number.
    again = tr.main(argv)
    for name in ["sft", "grpo", "lad"]:
        assert again[name]["per_seed"] == returned[name]["per_seed"]

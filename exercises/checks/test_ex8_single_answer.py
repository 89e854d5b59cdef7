"""Check of exercise 8: a single-answer variant of the arithmetic task, and one quick GRPO-vs-LAD
run.

Wrong answers it rejects, each tried, with the message naming the mistake: the balanced answer the
wrong way round (a = N - N // 2), every decomposition accepted (SumTask's verifier alone), figures
written into the repository's plots/ (--out-dir plots), and no --metrics-json.
"""
import itertools
from pathlib import Path

import pytest
import torch

REPOSITORY_PLOTS = Path(__file__).resolve().parents[2] / "plots"


@pytest.fixture
def ex8(exercise):
    return exercise("ex8_single_answer")


def _accepted(task, n, max_len=5):
    """Every completion of up to max_len characters (before the end marker) that the verifier
    accepts."""
    return {
        "".join(body) + "."
        for length in range(1, max_len + 1)
        for body in itertools.product("0123456789+", repeat=length)
        if task.is_correct(n, "".join(body) + ".")
    }


@pytest.mark.parametrize("n, answer", [(10, "5+5."), (37, "18+19."), (99, "49+50.")])
def test_exactly_the_balanced_answer_is_correct(ex8, n, answer):
    task = ex8.SingleAnswerTask()
    assert task.valid_answers(n) == [answer], f"for N = {n} the only valid answer is {answer!r}"
    accepted = _accepted(task, n, max_len=5)
    assert accepted == {answer}, (f"for N = {n} the verifier should accept only {answer!r}; it "
                                  f"accepts {sorted(accepted)[:10]}")
    for wrong in [f"{n - n // 2}+{n // 2}." if n % 2 else "1+9.", f"{n}+0.", "0" + answer,
                  answer[:-1]]:
        assert not task.is_correct(n, wrong), f"{wrong!r} should be rejected for N = {n}"


def test_sft_pool_has_one_correct_answer_per_prompt_in_the_requested_share(ex8):
    task = ex8.SingleAnswerTask()
    prompts, completions, mask, weight = task.sft_data(correct_fraction=0.4)
    ns = [int(task.decode(p.tolist())[:-1]) for p in prompts]
    texts = [task.decode(c.tolist()) for c in completions]
    correct = torch.tensor([task.is_correct(n, t) for n, t in zip(ns, texts)])
    assert set(ns) == set(task.train_n), ("the SFT pool should hold every training prompt and no "
                                          "held-out one")
    assert int(correct.sum()) == len(task.train_n), \
        (f"expected one correct example per training prompt ({len(task.train_n)}), got "
         f"{int(correct.sum())}")
    assert torch.isclose(weight.sum(), torch.tensor(1.0, dtype=weight.dtype)), \
        "the example weights must sum to 1"
    assert torch.isclose(weight[correct].sum(), torch.tensor(0.4, dtype=weight.dtype)), \
        ("correct_fraction = 0.4 of the weight should be on correct examples, got "
         f"{float(weight[correct].sum()):.3f}")
    assert torch.equal(mask.sum(1), torch.tensor([len(t) for t in texts])), \
        "the mask should cover exactly each completion's characters (use task.completions)"
    # the wrong examples are near misses of the balanced answer: same first term
    for n, t, ok in zip(ns, texts, correct.tolist()):
        if not ok:
            assert t.split("+")[0] == str(n // 2), (f"{t!r} for N = {n} is not a near miss of the "
                                                    "balanced answer")


def _repository_figures():
    """Every file in the repository's own plots/ folder, with its size and modification time."""
    return {path.name: (path.stat().st_size,
                        path.stat().st_mtime_ns) for path in REPOSITORY_PLOTS.iterdir()}


def test_quick_run_learns_the_answer_and_diversity_is_trivially_one(ex8, tmp_path):
    """Everything may go under workdir (workdir/plots included); the metrics must be at
    workdir/metrics.json, and the repository's own plots/, which holds the committed figures, must
    be left alone."""
    before = _repository_figures()
    metrics = ex8.run_quick(tmp_path, seed=0)
    changed = sorted(name for name,
                     stamp in _repository_figures().items() if before.get(name) != stamp)
    assert not changed, ("run_quick wrote into the repository's plots/ folder "
                         f"({', '.join(changed)}), which "
                         "holds the committed figures: give --out-dir a folder under workdir")
    assert (tmp_path / "metrics.json").exists(), \
        "run_quick should write its metrics to workdir/metrics.json (--metrics-json)"
    sft, grpo, lad = metrics["sft"], metrics["grpo"], metrics["lad"]
    assert 0.05 < sft["accuracy"] < 0.95, "the warm start should find the answer some of the time"
    for name, m in [("sft", sft), ("grpo", grpo), ("lad", lad)]:
        assert m["effective_correct"] == pytest.approx(1.0), \
            f"{name}: with one correct answer the effective number of correct answers is exactly 1"
        assert m["distinct_correct"] <= 1.0, \
            f"{name}: at most one distinct correct answer can be sampled"
    start = sft["exact_accuracy"]
    assert grpo["exact_accuracy"] > start and lad["exact_accuracy"] > start, (
        f"both methods should raise the accuracy above the SFT start: {start:.3f} -> "
        f"GRPO {grpo['exact_accuracy']:.3f}, LAD {lad['exact_accuracy']:.3f}")

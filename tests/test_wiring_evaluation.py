"""The numbers reasoning/evaluation.py reports, each against a hand computation on probabilities
or scripted models chosen so that the plausible wrong formula gives another number: the shape TV,
the mean length of a correct answer, the share outside the SFT support, the time ratio over GRPO
and a run's mean share."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reasoning import evaluation
from reasoning.arithmetic import SumTask

TASK = SumTask()


def test_exact_metrics_normalise_the_shape_over_the_correct_answers_and_weigh_lengths_by_it(
        monkeypatch):
    """Two prompts whose model probabilities and pi* are written out: P(correct) 0.5 and 0.8,
    pi*(correct) 0.9 and 0.6, answers of 4 and 5 characters. The shape TV compares p / P(correct)
    with pi*(correct answers) / pi*(correct); the mean length weighs each answer's length by
    p / P(correct). Leaving either side unnormalised, averaging the lengths uniformly or weighing
    them by p itself each gives another number."""
    ns = [12, 13]
    gen = torch.Generator().manual_seed(0)
    probs, targets = [], []
    for n, accuracy, target_accuracy in [(12, 0.5, 0.9), (13, 0.8, 0.6)]:
        shape = torch.softmax(2 * torch.randn(n - 1, generator=gen, dtype=torch.float64), 0)
        probs.append(accuracy * shape)
        target_shape = torch.softmax(torch.randn(n - 1, generator=gen, dtype=torch.float64), 0)
        targets.append(torch.cat([target_accuracy * target_shape,
                                  torch.tensor([1 - target_accuracy], dtype=torch.float64)]))
    monkeypatch.setattr(evaluation, "answer_probabilities", lambda model, task, ns: probs)
    metrics = evaluation.exact_metrics(None, TASK, ns, targets)

    tv, shape_tv, length, effective = [], [], [], []
    for n, p, t in zip(ns, probs, targets):
        p, t = p.numpy(), t.numpy()
        model = np.append(p, 1 - p.sum())
        tv.append(0.5 * np.abs(model - t).sum())
        shape_tv.append(0.5 * np.abs(p / p.sum() - t[:-1] / t[:-1].sum()).sum())
        lengths = np.array([len(f"{a}+{n - a}.") for a in range(1, n)])
        assert len(set(lengths)) == 2, "the test needs answers of two lengths"
        length.append((p * lengths).sum() / p.sum())
        q = p / p.sum()
        effective.append(math.exp(-(q * np.log(q)).sum()))
    want = {"exact_accuracy": 0.65, "tv_to_target": np.mean(tv), "tv_shape": np.mean(shape_tv),
            "correct_length": np.mean(length), "effective_correct": np.mean(effective)}
    assert metrics == pytest.approx(want, rel=1e-9)


class ScriptedModel(torch.nn.Module):
    """For prompt n it always samples "1+(n-1).", correct for n only, and scores a completion with
    `per_token` per token when it is correct for the prompt it is scored with, `elsewhere`
    otherwise."""

    def __init__(self, per_token: float, elsewhere: float = -1.0):
        super().__init__()
        self.per_token, self.elsewhere = per_token, elsewhere
        self.lm_head = torch.nn.Linear(1, 1)

    def sample(self, prompts, max_new_tokens, end_token, num_samples, generator=None):
        texts = [f"1+{int(TASK.decode(row)[:-1]) - 1}."
                 for row in prompts.tolist() for _ in range(num_samples)]
        completions, mask = TASK.completions(texts)
        return completions, torch.zeros(completions.shape), mask

    def completion_logprobs(self, prompts, completions, mask):
        right = torch.tensor([TASK.is_correct(int(TASK.decode(p)[:-1]), TASK.decode(c))
                              for p, c in zip(prompts.tolist(), completions.tolist())])
        value = torch.where(right, self.per_token, self.elsewhere).unsqueeze(1)
        return torch.where(mask, value.expand(completions.shape), torch.zeros(completions.shape))


def test_sampled_accuracy_scores_each_sample_against_its_own_prompt():
    model = ScriptedModel(per_token=-0.1, elsewhere=-0.1)  # always right for its own prompt
    ns = TASK.heldout_n[:5]
    targets = [evaluation.answer_target(p, 0.25)
               for p in evaluation.answer_probabilities(model, TASK, ns)]
    metrics = evaluation.evaluate(model, TASK, ns, 16, 0, targets, model)
    assert metrics["accuracy"] == 1.0 and metrics["distinct_correct"] == 1.0
    assert metrics["wellformed_wrong"] == 0.0 and metrics["malformed"] == 0.0


def test_the_share_outside_the_sft_support_is_scored_by_the_sft_model_over_whole_completions():
    """A sample is outside the SFT support when pi_sft of the whole completion (the sum of its
    tokens' log-probabilities, against its own prompt) is below 1e-4. The SFT model gives -2 per
    token: "1+9." (4 tokens, -8) is inside, "1+36." and "1+49." (5 tokens, -10) are outside, so
    the share is 2/3. Scored by the evaluated model (-0.1 per token: 0), per token (0), against
    1e-4 instead of its log (1), with the comparison reversed (1/3) or against another row's
    prompt, it is not."""
    model, sft_model = ScriptedModel(-0.1), ScriptedModel(-2.0)
    ns = [10, 37, 50]
    targets = [evaluation.answer_target(p, 0.25)
               for p in evaluation.answer_probabilities(model, TASK, ns)]
    metrics = evaluation.evaluate(model, TASK, ns, 16, 0, targets, sft_model)
    assert metrics["accuracy"] == 1.0
    assert metrics["outside_sft_support"] == pytest.approx(2 / 3)
    assert -8.0 > math.log(evaluation.SFT_SUPPORT) > -10.0


def run(seconds: float, history: dict | None = None) -> dict:
    return {"seconds_per_iteration": seconds, "history": history, "model": None}


def test_the_time_over_grpo_is_the_mean_of_each_seeds_ratio_of_the_method_to_grpo():
    """Seed 1: grpo 1 s, flowrl 2 s; seed 2: grpo 4 s, flowrl 4 s. Each seed's ratio flowrl / grpo
    is 2 and 1, their mean 1.5; the ratio of the means would be 1.2, and grpo / flowrl 0.75."""
    def seed(grpo, flowrl):
        final = {m: {"exact_accuracy": 0.5, "effective_at_accuracy": None}
                 for m in ("grpo", "flowrl")}
        return {"final": final, "runs": {"grpo": run(grpo), "flowrl": run(flowrl)}}

    metrics = evaluation.aggregate_seeds([seed(1.0, 2.0), seed(4.0, 4.0)], ["grpo", "flowrl"])
    assert metrics["time_over_grpo"] == {"grpo": 1.0, "flowrl": 1.5}
    assert metrics["seconds_per_iteration"] == {"grpo": 2.5, "flowrl": 3.0}


def test_a_seeds_summary_reports_a_runs_mean_share_over_its_iterations_not_its_last(monkeypatch):
    """The table's clip and brake shares are each run's mean over its iterations (0.1, 0.2, 0.6:
    0.3), not the last iteration's (0.6); its held-out numbers are its last evaluation's, with the
    frontier and the largest drop over all of them. The models are stubbed: no model is needed to
    aggregate."""
    evals = [{"iteration": 0, "exact_accuracy": 0.3, "effective_correct": 9.0},
             {"iteration": 5, "exact_accuracy": 0.7, "effective_correct": 4.0},
             {"iteration": 10, "exact_accuracy": 0.5, "effective_correct": 3.0}]
    history = {"evals": evals, "steps": {"above_target": [0.1, 0.2, 0.6],
                                         "abs_log_ratio": [0.0, 0.3, 0.3]}}
    monkeypatch.setattr(evaluation, "GPT", SimpleNamespace(load=lambda *args, **kwargs: None))
    monkeypatch.setattr(evaluation, "targets_of", lambda *args: [])
    monkeypatch.setattr(evaluation, "evaluate", lambda *args: {"iteration": 0,
                                                               "exact_accuracy": 0.2,
                                                               "effective_correct": 9.0})
    monkeypatch.setattr(evaluation, "exact_metrics", lambda *args: {"exact_accuracy": 0.4})
    settings = SimpleNamespace(device="cpu", eta=0.25, eval_samples=16, match_accuracy=0.6)
    assert set(vars(settings)) == set(evaluation.SummarySettings.__annotations__)  # no more
    summary = evaluation.summarise_seed(TASK, settings, 0, "unused", {"lad": run(1.0, history)})
    lad = summary["final"]["lad"]
    assert lad["above_target"] == pytest.approx(0.3)
    assert lad["abs_log_ratio"] == pytest.approx(0.2)
    assert lad["exact_accuracy"] == 0.5 and lad["effective_correct"] == 3.0
    assert lad["effective_at_accuracy"] == 4.0
    assert lad["largest_accuracy_drop"] == pytest.approx(0.2)
    assert lad["train_exact_accuracy"] == 0.4 and "iteration" not in lad

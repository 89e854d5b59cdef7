"""Solution to exercise 8: with one correct answer, LAD's target and GRPO's goal coincide.

The predictions.
  * With a 0/1 verifier, Lemma 3.1's target multiplies every correct answer by exp(A+/eta) and every
    wrong one by exp(A-/eta). With one correct answer there is nothing to keep in proportion: the
    target is "the balanced answer, with most of the mass", and GRPO's end point (all the mass on
    the best answer) is the same answer. LAD's promise about equally rewarded answers is vacuous
    here.
  * The effective number of correct answers is exp(0) = 1 for every model, trivially: the entropy
    over a single answer is 0. Diversity metrics only mean something when several answers are right.
  * If the warm start spread over all N - 1 correct answers, it would write the balanced one with
    probability about p_correct / (N - 1), well under 1% for most N. A group of 8 samples would then
    almost never contain it, every reward in the group would be 0, and group_advantages returns 0
    for such a group (its std is 0): neither method would get any signal. That is why the SFT pool
    changes too, so that the warm start finds the answer often enough for RL to have something to
    reinforce. (Sparse rewards defeat GRPO and LAD alike; LAD's target is still pi_sft * exp(A/eta),
    and A is 0 when nothing in the group is rewarded.)

What the run shows (the check asserts the parts that are not noise): the warm start is right part of
the time, both methods raise the accuracy, and every model's effective number of correct answers is
exactly 1. Whether GRPO or LAD gets there faster in a short run is within seed noise; with one
correct answer they optimise towards the same policy, so there is no diversity to trade against
accuracy.
"""
from pathlib import Path

import torch

import train_reasoning
from reasoning.arithmetic import SumTask


class SingleAnswerTask(SumTask):
    """Like SumTask, but only "a+b." with a = N // 2, b = N - a is correct."""

    @staticmethod
    def valid_answers(n: int) -> list[str]:
        a = n // 2
        return [f"{a}+{n - a}."]

    @staticmethod
    def is_correct(n: int, completion: str) -> bool:
        # SumTask.is_correct already enforces the format (digits, no leading zeros, a, b >= 1, the
        # end marker); on top of it, only the balanced decomposition counts.
        balanced = SingleAnswerTask.valid_answers(n)[0]
        return SumTask.is_correct(n, completion) and completion == balanced

    def sft_data(self, correct_fraction: float):
        """One correct example per training prompt and its near misses; a prompt uniformly, then
        correct with probability correct_fraction, else one near miss uniformly."""
        texts, ns, weight = [], [], []
        for n in self.train_n:
            a = n // 2
            b = n - a
            wrong = [f"{a}+{b + d}." for d in (-2, -1, 1, 2) if b + d >= 1]
            p_prompt = 1 / len(self.train_n)
            texts += [f"{a}+{b}."] + wrong
            ns += [n] * (1 + len(wrong))
            near_miss = p_prompt * (1 - correct_fraction) / len(wrong)
            weight += [p_prompt * correct_fraction] + [near_miss] * len(wrong)
        completions, mask = self.completions(texts)
        return self.prompts(ns), completions, mask, torch.tensor(weight)


def run_quick(workdir: Path, seed: int = 0) -> dict:
    workdir = Path(workdir)
    argv = ["--quick", "--seeds", str(seed), "--threads", "1", "--methods", "grpo", "lad",
            "--out-dir", str(workdir / "plots"), "--sft-cache-dir", str(workdir / "runs"),
            "--metrics-json", str(workdir / "metrics.json")]
    return train_reasoning.main(argv, task=SingleAnswerTask())

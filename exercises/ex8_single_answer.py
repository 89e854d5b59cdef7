"""Exercise 8 (hard): one correct answer per prompt. What is left for LAD to keep?

train_reasoning.py's task has N - 1 correct answers for the prompt "N=" ("1+36.", ..., "36+1." for
N = 37), and the question there is whether LAD keeps them all alive where GRPO keeps one or two.
Take that question away: make a variant of the task in which exactly one answer is correct, the
balanced one, a = N // 2 and b = N - a ("18+19." for N = 37, "6+6." for N = 12).

Before you run anything, predict on paper:
  * Lemma 3.1's target pi_sft * exp(A/eta) / Z with a 0/1 verifier: what does it look like when only
    one answer is rewarded? What are "the relative probabilities of equally rewarded answers" now?
  * What will the effective number of correct answers, exp(entropy over the correct answers), be
    for the SFT model, for GRPO and for LAD?
  * The SFT warm start of train_reasoning.py trains on all N - 1 correct answers. How often would it
    write the balanced one, and what does that do to group-normalised advantages when a group of 8
    samples contains no correct answer at all? (Look at grpo_loss.group_advantages.)

Then write:
  SingleAnswerTask      a subclass of arithmetic.SumTask with
                          valid_answers(n)  -> [the balanced answer]
                          is_correct(n, completion) -> True only for it (same format rules)
                          sft_data(correct_fraction) -> the SFT pool with the balanced answer as the
                            only correct example per prompt, plus its near misses "a+(b-2).",
                            "a+(b-1).", "a+(b+1).", "a+(b+2)." (kept when b + d >= 1); same return
                            values and the same weighting scheme as SumTask.sft_data.
  run_quick             train_reasoning's pipeline with --quick on your task, returning its metrics.
                        train_reasoning.main(argv, task=...) takes a task object and the command
                        line as a list of strings. Give it:
                          --quick --seed SEED --threads 1 --methods grpo lad
                          --out-dir    a folder under workdir for the figures (workdir/plots is
                          fine) --sft-cache-dir    a folder under workdir for the SFT checkpoint
                          --metrics-json workdir/metrics.json   (the check reads this file)
                        The check refuses only writes into the repository's own plots/ folder, which
                        holds the committed figures. main returns the metrics: a dict with "sft",
                        "grpo" and "lad", each holding "accuracy", "exact_accuracy",
                        "effective_correct" and "distinct_correct" among others.

Check your answer:  python -m pytest exercises/checks/test_ex8_single_answer.py   (one quick run:
the longest check)
"""
from pathlib import Path

import torch

import train_reasoning
from reasoning.arithmetic import SumTask


class SingleAnswerTask(SumTask):
    """Like SumTask, but only "a+b." with a = N // 2, b = N - a is correct."""

    @staticmethod
    def valid_answers(n: int) -> list[str]:
        raise NotImplementedError("exercise 8: write SingleAnswerTask.valid_answers")

    @staticmethod
    def is_correct(n: int, completion: str) -> bool:
        raise NotImplementedError("exercise 8: write SingleAnswerTask.is_correct")

    def sft_data(self, correct_fraction: float):
        raise NotImplementedError("exercise 8: write SingleAnswerTask.sft_data")


def run_quick(workdir: Path, seed: int = 0) -> dict:
    """train_reasoning.main with --quick (and --threads 1) on SingleAnswerTask; returns its
    metrics."""
    raise NotImplementedError("exercise 8: write run_quick")

"""What the demo trains on: SumTask's prompts as a TRL dataset, and its verifier as the reward.

The task is reasoning.arithmetic.SumTask (write N as a+b, many answers correct). TRL passes each
dataset column other than "prompt" on to the reward functions, so the column `n` reaches the
verifier beside each completion.
"""
from datasets import Dataset

from reasoning.arithmetic import SumTask

# The tiny model reads SumTask's own prompt "37=". A pretrained model reads text, so it gets two
# worked examples in the same format first; it answers after "=" and the verifier reads up to ".".
TINY_PROMPT = "{n}="
HUB_PROMPT = "Write each number as a sum of two positive integers.\n12=5+7.\n30=14+16.\n{n}="


def sum_dataset(ns, prompt: str) -> Dataset:
    """One row per prompt; TRL passes the column `n` on to the reward function."""
    return Dataset.from_dict({"prompt": [prompt.format(n=n) for n in ns], "n": list(ns)})


def verifier_reward(task: SumTask, tokenizer):
    """The reward function: 1.0 when SumTask's verifier accepts the answer, else 0.0."""

    def correct(completion_ids, n, **kwargs):
        rewards = []
        for ids, n_of_row in zip(completion_ids, n):
            text = tokenizer.decode(ids)  # special tokens kept: the tiny model's "." is one of them
            answer = text[: text.index(task.end) + 1].strip() if task.end in text else text
            rewards.append(float(task.is_correct(n_of_row, answer)))
        return rewards

    return correct

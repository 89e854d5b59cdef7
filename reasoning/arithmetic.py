"""The arithmetic task of train_reasoning.py: write N as a sum of two positive integers.

Every prompt has many equally correct answers, a verifier checks them, and they can be enumerated,
so the exact probability a model gives each one is computable (evaluation.answer_probabilities).
This file is the task alone: the encoding, the verifier, the list of correct answers, the train and
held-out prompts, and the SFT data. It imports only torch, so a trainer (the GPT chapter, or a TRL
integration) can use it without importing a script.

    task = SumTask()
    task.prompts([37])                    # tensor([[3, 7, 11]])    "37="
    task.is_correct(37, "12+25.")         # True
    task.valid_answers(12)                # ["1+11.", "2+10.", ..., "11+1."]

Run `python -m reasoning.arithmetic` to print the split and a few examples.
"""
import torch


class SumTask:
    """Write N as a sum of two positive integers. Many answers are correct; a verifier checks them.

    Encoding, one character per token, vocabulary "0123456789+=." (13 tokens):

        prompt        "37="       the target N (always two digits, 10 <= N <= 99), then "="
        completion    "12+25."    a + b, then the end marker "."
        model reads   3 7 = 1 2 + 2 5 .
        loss on             1 2 + 2 5 .   (the prompt is given, never scored)

    Completions are padded to MAX_COMPLETION = 6 characters with "." after the end marker, e.g.
    "5+32." -> "5+32..", and the padding is masked out (it is not part of the answer).

    Correct answers of N: "a+b." with a, b >= 1, a + b = N, no leading zeros: the N - 1 strings
    "1+36.", "2+35.", ..., "36+1." for N = 37. "37+0." and "0+37." are *not* accepted: they only
    copy the prompt, a shortcut a collapsing policy would love. Order matters ("1+36." != "36+1.").

    Prompts are split once (a fixed permutation, the same for every seed) into training prompts and
    N_HELDOUT held-out prompts that no stage ever trains on.
    """

    chars = "0123456789+=."
    end = "."
    N_MIN, N_MAX, N_HELDOUT, SPLIT_SEED = 10, 99, 24, 1234
    PROMPT_LEN, MAX_COMPLETION = 3, 6

    def __init__(self):
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.end_token = self.stoi[self.end]
        all_n = list(range(self.N_MIN, self.N_MAX + 1))
        split_gen = torch.Generator().manual_seed(self.SPLIT_SEED)
        perm = torch.randperm(len(all_n), generator=split_gen).tolist()
        self.heldout_n = sorted(all_n[i] for i in perm[: self.N_HELDOUT])
        self.train_n = sorted(all_n[i] for i in perm[self.N_HELDOUT :])

    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text]

    def decode(self, tokens) -> str:
        """Token ids -> text, cut after the first end marker (the rest is padding)."""
        text = "".join(self.chars[t] for t in tokens)
        return text[: text.index(self.end) + 1] if self.end in text else text

    def prompts(self, ns) -> torch.Tensor:
        return torch.tensor([self.encode(f"{n}=") for n in ns])  # [len(ns), PROMPT_LEN]

    def completions(self, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Completion strings -> [len(texts), MAX_COMPLETION] token ids, end-marker padded, and
        the mask."""
        tokens = torch.tensor([self.encode(t.ljust(self.MAX_COMPLETION, self.end)) for t in texts])
        mask = torch.tensor([[j < len(t) for j in range(self.MAX_COMPLETION)] for t in texts])
        return tokens, mask

    @staticmethod
    def valid_answers(n: int) -> list[str]:
        """All correct answers of prompt n, in the order a = 1, 2, ..., n - 1."""
        return [f"{a}+{n - a}." for a in range(1, n)]

    @staticmethod
    def is_well_formed(completion: str) -> bool:
        """The answer's format: "a+b." with decimal a, b >= 1 and no leading zeros, whatever the
        sum. A well-formed answer is either correct or a wrong sum; anything else is malformed."""
        if not completion.endswith(".") or completion.count("+") != 1:
            return False
        a, b = completion[:-1].split("+")
        return a.isdigit() and b.isdigit() and a[0] != "0" and b[0] != "0"  # also rejects "" and 0

    @staticmethod
    def is_correct(n: int, completion: str) -> bool:
        """The verifier: exactly "a+b." with decimal a, b >= 1, no leading zeros, a + b = n."""
        if not SumTask.is_well_formed(completion):
            return False
        a, b = completion[:-1].split("+")
        return int(a) + int(b) == n

    def sft_data(self, correct_fraction: float):
        """The SFT pool: every correct answer of every training prompt, and near misses of each
        ("a+(b-2).", "a+(b-1).", "a+(b+1).", "a+(b+2).", kept when the second term stays >= 1).

        Returns (prompts, completions, mask, weight) over the pool; weight is each example's
        sampling probability: a training prompt uniformly, then a uniformly, then correct with
        probability correct_fraction, else one of that pair's near misses uniformly.
        """
        texts, ns, weight = [], [], []
        for n in self.train_n:
            for a in range(1, n):
                b = n - a
                wrong = [f"{a}+{b + d}." for d in (-2, -1, 1, 2) if b + d >= 1]
                p_pair = 1 / (len(self.train_n) * (n - 1))
                texts += [f"{a}+{b}."] + wrong
                ns += [n] * (1 + len(wrong))
                p_wrong = p_pair * (1 - correct_fraction) / len(wrong)
                weight += [p_pair * correct_fraction] + [p_wrong] * len(wrong)
        completions, mask = self.completions(texts)
        return self.prompts(ns), completions, mask, torch.tensor(weight)


if __name__ == "__main__":
    task = SumTask()
    print(f"{len(task.train_n)} training prompts, {len(task.heldout_n)} held-out: {task.heldout_n}")
    print("correct answers of '12=':", ", ".join(task.valid_answers(12)))
    for text in ["12+25.", "37+0.", "012+25.", "12+24."]:
        print(f"37={text:8s} verifier: {task.is_correct(37, text)}")

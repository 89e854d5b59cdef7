"""A rollout of the GPT chapter: what one RL iteration samples, its advantages when they come from
the SFT policy, and its mini-batches. train_reasoning.rl_iteration runs them in order.

    RandomStreams.seeded(seed, device)   the four random streams of one run: the prompts, the
                                         samples, the mini-batch order, Clip-Cov's choice of tokens
    sample_rollout(sampler, task, ...)   G completions of each of a few training prompts drawn at
                                         random, sampled by pi_old, with log pi_old of every token
                                         (and log pi_sft, for an anchored method)
    sft_advantages(sft_model, task, eta) n -> (A+, A-): the SFT policy's advantages, the A of pi*
                                         (--advantage-source sft and sft-normalised)
    minibatches(rollout, m, G, gen)      the rollout cut into m mini-batches of whole groups

A rollout is a dict of rows, one per completion, in consecutive groups of G per prompt (the layout
grpo_loss.group_advantages expects):

    "ns"            [n_prompts]             the prompts' numbers N (a list)
    "prompt_index"  [rows]                  each row's prompt, as an index into task.train_n
    "prompts"       [rows, PROMPT_LEN]      the prompt's tokens, repeated for each of its G rows
    "completions"   [rows, MAX_COMPLETION]  the sampled tokens, end-marker padded
    "mask"          [rows, MAX_COMPLETION]  True on a completion's own tokens
    "logp_old"      [rows, MAX_COMPLETION]  log pi_old of each token, 0 on padding
    "logp_ref"      [rows, MAX_COMPLETION]  log pi_sft of each token (only with a reference model)

and rl_iteration adds "rewards" and "advantages" [rows] once it has verified the completions.
"""
import math
from typing import NamedTuple

import numpy as np
import torch

from reasoning.arithmetic import SumTask
from reasoning.evaluation import answer_probabilities, large_group_advantages


class RandomStreams(NamedTuple):
    """One generator per source of randomness, so that changing one never shifts another: every
    method of a seed sees the same prompt sequence, whatever it samples or how it shuffles."""
    prompt_gen: torch.Generator  # which training prompts each rollout asks
    sample_gen: torch.Generator  # the completions (on the model's device)
    shuffle_gen: torch.Generator  # the order of the mini-batches (--minibatches > 1)
    cov_gen: torch.Generator  # Clip-Cov's random choice among its high-covariance tokens

    @classmethod
    def seeded(cls, seed: int, device: str = "cpu") -> "RandomStreams":
        return cls(torch.Generator().manual_seed(seed),
                   torch.Generator(device=device).manual_seed(seed + 1),
                   torch.Generator().manual_seed(seed + 2),
                   torch.Generator().manual_seed(seed + 3))


@torch.no_grad()
def sample_rollout(sampler, task: SumTask, n_prompts: int, group_size: int,
                   prompt_gen: torch.Generator, sample_gen: torch.Generator, pi_ref=None,
                   device: str = "cpu") -> dict:
    """G = group_size completions of each of n_prompts training prompts (drawn with replacement),
    sampled by `sampler`, the model that is pi_old of this rollout; with a `pi_ref` model, its
    log-probabilities of the same tokens too (the anchor, fixed for the rollout). See the module
    docstring for what the returned dict holds."""
    picks = torch.randint(len(task.train_n), (n_prompts,), generator=prompt_gen)
    ns = [task.train_n[i] for i in picks.tolist()]
    prompts = task.prompts(ns).to(device)
    completions, _, mask = sampler.sample(prompts, task.MAX_COMPLETION, task.end_token,
                                          num_samples=group_size, generator=sample_gen)
    prompts = prompts.repeat_interleave(group_size, dim=0)  # one row per completion
    # log pi_old from the same forward pass the loss runs, not sample()'s own log-probabilities,
    # which come from step-by-step passes and differ in the last bits: then the first step's ratio
    # is exactly 1 (KL-Cov's |log ratio| penalty would otherwise turn the rounding into a gradient).
    logp_old = sampler.completion_logprobs(prompts, completions, mask)
    rollout = {"ns": ns, "prompt_index": picks.repeat_interleave(group_size), "prompts": prompts,
               "completions": completions, "mask": mask, "logp_old": logp_old}
    if pi_ref is not None:
        rollout["logp_ref"] = pi_ref.completion_logprobs(prompts, completions, mask)
    return rollout


# --advantage-source sft-sampled: completions of each training prompt drawn once from the SFT
# policy, before RL, to estimate its success rate (the exact rate is an oracle a method lacks).
SFT_SUCCESS_SAMPLES = 64


@torch.no_grad()
def sampled_success(sft_model, task: SumTask, generator: torch.Generator,
                    k: int = SFT_SUCCESS_SAMPLES) -> list[float]:
    """The SFT policy's success rate on every training prompt, estimated from k samples of each:
    (correct + 1/2) / (k + 1), which is never 0 or 1, where an advantage would be infinite."""
    prompts = task.prompts(task.train_n).to(sft_model.lm_head.weight.device)
    completions, _, _ = sft_model.sample(prompts, task.MAX_COMPLETION, task.end_token,
                                         num_samples=k, generator=generator)
    texts = [task.decode(row) for row in completions.tolist()]
    return [(sum(task.is_correct(n, t) for t in texts[i * k:(i + 1) * k]) + 0.5) / (k + 1)
            for i, n in enumerate(task.train_n)]


def sft_advantages(sft_model, task: SumTask, eta: float, normalised: bool = False,
                   success: list[float] | None = None) -> dict:
    """n -> (A+, A-) for every training prompt: large_group_advantages of the SFT policy's exact
    P(correct), the A that defines pi* (--advantage-source sft). A correct completion of prompt n
    gets A+, any other A-. success: the success rate of each training prompt to use instead of the
    exact one (--advantage-source sft-sampled: sampled_success).

    normalised (--advantage-source sft-normalised): both minus eta log Z(n), Z(n) =
    E_sft[exp(A/eta)]. The same pi* (a constant per prompt changes no softmax), but Z = 1, so that
    at the optimum of Lemma 3.2's loss x = 1 and -f'(x) = 0 for JS, instead of a large weight
    -f'(1/Z) that cancels only on average (the bandit's noise floor)."""
    if success is None:
        success = [float(p.sum()) for p in answer_probabilities(sft_model, task, task.train_n)]
    advantages = {}
    for n, p in zip(task.train_n, success):
        p = min(max(p, 1e-12), 1 - 1e-12)
        a_plus, a_minus = large_group_advantages(p)
        if normalised:
            log_z = float(np.logaddexp(math.log(p) + a_plus / eta,
                                       math.log1p(-p) + a_minus / eta))
            a_plus, a_minus = a_plus - eta * log_z, a_minus - eta * log_z
        advantages[n] = (a_plus, a_minus)
    return advantages


def minibatches(rollout: dict, n_minibatches: int, group_size: int,
                shuffle_gen: torch.Generator) -> list[dict]:
    """The rollout cut into n_minibatches mini-batches of whole groups (a group's advantages need
    their group), in an order shuffled by `shuffle_gen`; one mini-batch is the rollout as it is (and
    draws nothing from the generator)."""
    if n_minibatches == 1:
        return [rollout]
    order = torch.randperm(len(rollout["ns"]), generator=shuffle_gen)
    rows = (order.unsqueeze(1) * group_size + torch.arange(group_size)).reshape(-1)  # whole groups
    tensors = [k for k, v in rollout.items() if isinstance(v, torch.Tensor)]
    return [{k: rollout[k][chunk] for k in tensors} for chunk in rows.chunk(n_minibatches)]

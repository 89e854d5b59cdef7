"""Stage 1 of both language-model chapters: the supervised warm start.

RL from a verifier's 0/1 reward needs a policy that is sometimes right. A model with random weights
never writes a correct sum, so every group of G completions would score all zeros, every
group-normalised advantage would be 0, and neither GRPO nor LAD would have anything to learn from.
So, before RL, a short round of supervised fine-tuning (SFT) on examples of the task
(arithmetic.SumTask.sft_data: correct answers mixed with near misses, so that the start is right
only some of the time and spread over many answers).

The loss is the usual cross-entropy on the completion tokens, averaged per token, never on the
prompt's. It is written once, here, for any model that can score completions, so the GPT of
train_reasoning.py and the Hugging Face model of lad_trl.py start the same way:

    supervised_warm_start(completion_logprobs, parameters, data, steps=..., batch_size=..., lr=..., seed=...)

`completion_logprobs(prompts, completions, mask)` returns the per-token log-probabilities of the
completion tokens, [batch, tokens], 0 where the mask is False (tiny_lm.GPT.completion_logprobs is one).
"""
from typing import Callable, Iterable

import torch
from tqdm import tqdm


def supervised_warm_start(
    completion_logprobs: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    parameters: Iterable[torch.nn.Parameter],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = False,
    desc: str = "SFT",
) -> float:
    """AdamW steps of per-token cross-entropy on examples drawn from `data`. Returns the last loss.

    data: (prompts [n, prompt_len], completions [n, tokens], mask [n, tokens], weight [n]), as
    SumTask.sft_data returns it; each step draws batch_size examples with probability `weight`, with
    replacement, from a generator seeded with `seed` (the same seed draws the same batches).
    """
    prompts, completions, mask, weight = data
    generator = torch.Generator(device=weight.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(steps), desc=desc, leave=False, disable=not progress):
        i = torch.multinomial(weight, batch_size, replacement=True, generator=generator)
        logp = completion_logprobs(prompts[i], completions[i], mask[i])
        loss = -logp.sum() / mask[i].sum()  # cross-entropy per completion token
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(loss.detach())

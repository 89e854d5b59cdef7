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

    sft_warm_start(completion_logprobs, parameters, data, steps, batch_size, lr, seed)

`completion_logprobs(prompts, completions, mask)` returns the per-token log-probabilities of the
completion tokens, [batch, tokens], 0 where the mask is False (tiny_lm.GPT.completion_logprobs
is one).

For the tiny GPT, `sft_checkpoint(task, settings, seed)` trains one seed's warm start, or finds it
in a cache (`sft_checkpoint_path`) keyed by everything that changes the weights: the settings, the
code (the task's own included), the torch version and the thread count.
"""
import hashlib
import inspect
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Protocol

import torch
from tqdm import tqdm

from reasoning.arithmetic import SumTask
from tiny_lm import GPT, GPTConfig


def sft_warm_start(
    completion_logprobs: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    parameters: Iterable[torch.nn.Parameter],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.0,
    progress: bool = False,
    desc: str = "SFT",
) -> float:
    """AdamW steps of per-token cross-entropy on examples drawn from `data`. Returns the last loss.

    data: (prompts [n, prompt_len], completions [n, tokens], mask [n, tokens], weight [n]), as
    SumTask.sft_data returns it; each step draws batch_size examples with probability `weight`, with
    replacement, from a generator seeded with `seed` (the same seed draws the same batches).
    weight_decay: AdamW's (the GPT chapter uses none; lad_trl.py's demo AdamW's default, 0.01).
    """
    prompts, completions, mask, weight = data
    batch_gen = torch.Generator(device=weight.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(steps), desc=desc, leave=False, disable=not progress):
        i = torch.multinomial(weight, batch_size, replacement=True, generator=batch_gen)
        logp = completion_logprobs(prompts[i], completions[i], mask[i])
        # cross-entropy per completion token: padding is neither a token nor in the count
        loss = -logp.sum() / mask[i].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(loss.detach())


# ---------------------------------------------------------------------------------------------
# The tiny GPT's warm start, cached.
# ---------------------------------------------------------------------------------------------

class SFTSettings(Protocol):
    """What this module reads from a script's settings (train_reasoning.Settings has each)."""
    n_layer: int                 # the model's size (tiny_lm.GPTConfig)
    n_head: int
    n_embd: int
    sft_steps: int               # the warm start's optimisation
    sft_batch_size: int
    sft_lr: float
    sft_correct_fraction: float  # correct answers against near misses in its data
    threads: int                 # part of the cache key: other threads round differently
    device: str
    sft_cache_dir: str           # where the cached checkpoints live
    workers: int                 # one worker shows a progress bar


def model_config(task: SumTask, settings: SFTSettings) -> GPTConfig:
    return GPTConfig(
        vocab_size=len(task.chars), block_size=task.PROMPT_LEN + task.MAX_COMPLETION,
        n_layer=settings.n_layer, n_head=settings.n_head, n_embd=settings.n_embd,
    )


# The files whose code decides the SFT weights: a change to any of them is a new checkpoint. The
# task's own files (its class and the classes it derives from) are added to these.
SFT_CODE = ["reasoning/sft.py", "tiny_lm.py"]  # from the repository root
SFT_SETTINGS = ("sft_steps", "sft_batch_size", "sft_lr", "sft_correct_fraction", "threads")


def task_code(task) -> list[str]:
    """A digest of each file that defines the task's class or a class it derives from (SumTask's
    reasoning/arithmetic.py; an exercise's own file for a task written there): a task whose verifier
    or SFT data changed is another warm start, even under the same class name."""
    files = []
    for cls in type(task).__mro__[:-1]:  # every class but object
        try:
            files.append(Path(inspect.getfile(cls)))
        except (TypeError, OSError):  # its module is not imported by name: its methods' files
            functions = [getattr(v, "__func__", v) for v in vars(cls).values()]
            files += [Path(f.__code__.co_filename) for f in functions if hasattr(f, "__code__")]
    return [hashlib.sha1(f.read_bytes()).hexdigest() for f in dict.fromkeys(files) if f.is_file()]


def sft_checkpoint_path(task: SumTask, settings: SFTSettings, seed: int) -> Path:
    """The cache key is everything that changes the SFT weights: the settings, the code that trains
    them and the task's code, the torch version and the thread count (a matrix product split over
    other threads rounds differently). The same key on the same machine gives the same weights, bit
    for bit."""
    root = Path(__file__).resolve().parent.parent
    key = {
        "seed": seed, "config": asdict(model_config(task, settings)),
        "device": torch.device(settings.device).type,
        "task_class": type(task).__name__,
        "task": [task.N_MIN, task.N_MAX, task.N_HELDOUT, task.SPLIT_SEED],
        "task_code": task_code(task),
        **{k: getattr(settings, k) for k in SFT_SETTINGS},
        "code": [hashlib.sha1((root / name).read_bytes()).hexdigest() for name in SFT_CODE],
        "torch": torch.__version__,
    }
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(settings.sft_cache_dir) / f"sft-{digest}.pt"


def sft_checkpoint(task: SumTask, settings: SFTSettings, seed: int) -> Path:
    """Train the warm start of one seed, or find it in the cache. Returns the checkpoint's path."""
    path = sft_checkpoint_path(task, settings, seed)
    if path.exists():
        print(f"SFT seed {seed}: the cached warm start {path}")
        return path
    torch.manual_seed(seed)
    model = GPT(model_config(task, settings)).to(settings.device)
    data = tuple(t.to(settings.device) for t in task.sft_data(settings.sft_correct_fraction))
    sft_warm_start(model.completion_logprobs, model.parameters(), data, steps=settings.sft_steps,
                   batch_size=settings.sft_batch_size, lr=settings.sft_lr, seed=seed,
                   progress=settings.workers == 1, desc=f"SFT seed {seed}")
    # Write to a temporary name, then rename: a run that starts meanwhile never reads half a file.
    os.replace(model.save(path.with_suffix(f".tmp{os.getpid()}")), path)
    print(f"SFT seed {seed}: saved the warm start to {path}")
    return path

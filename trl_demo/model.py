"""The policy a demo run starts from: the tiny Qwen2-style model after its warm start, or a hub
model.

The tiny model reads SumTask's own characters, so its tokenizer is the task's encoding, and it
needs nothing from the Hugging Face hub. GRPO and LAD learn only from differences within a group,
and a model with random weights almost never writes a correct sum: every group would score all
zeros, every advantage would be 0, and so would the gradient (LAD's too: JS has f'(1) = 0). So the
tiny model first gets the supervised warm start the GPT chapter uses (reasoning.sft.sft_warm_start);
a hub model starts from its pretraining instead.
"""
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from reasoning.arithmetic import SumTask
from reasoning.sft import sft_warm_start


def char_tokenizer(task: SumTask) -> PreTrainedTokenizerFast:
    """SumTask's character encoding as a Hugging Face tokenizer: token i is task.chars[i].

    The task's end marker "." is the end-of-sequence token, so generation stops after "a+b.", and
    it is also the padding, as in SumTask ("5+32." -> "5+32.."), where the mask hides it.
    """
    tokenizer = Tokenizer(models.WordLevel(vocab=dict(task.stoi), unk_token=None))
    # one token per character, and the characters joined back without spaces
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=task.end,
                                   pad_token=task.end)


def hub_tokenizer(name: str):
    """A hub model's own tokenizer (TRL would load it itself, but the reward function needs it
    first). Left padding and truncation: the model continues the prompt's last token."""
    return AutoTokenizer.from_pretrained(name, padding_side="left", truncation_side="left")


def tiny_model(vocab_size: int, end_token: int, seed: int) -> Qwen2ForCausalLM:
    """A 2-layer Qwen2-style model (132k parameters) with random weights, built from a config."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=16,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=end_token,
        pad_token_id=end_token,
    )
    return Qwen2ForCausalLM(config)


def tiny_sft_model(task: SumTask, tokenizer, seed: int, sft_steps: int, lr: float = 3e-3,
                   batch_size: int = 64) -> Qwen2ForCausalLM:
    """pi_sft of the demo: the tiny model of `seed` after `sft_steps` steps of
    reasoning.sft.sft_warm_start on SumTask's SFT data (correct answers and near misses, half each).
    With sft_steps=0, the model with random weights."""
    model = tiny_model(len(tokenizer), tokenizer.eos_token_id, seed)
    if not sft_steps:
        return model

    def completion_logprobs(prompts, completions, mask):
        """log pi of each completion token, [batch, tokens], 0 where the mask is False.
        The character tokenizer's ids are SumTask's, so the task's tensors are the model's input."""
        logits = model(input_ids=torch.cat([prompts, completions], dim=1)).logits
        logits = logits[:, prompts.shape[1] - 1 : -1]  # the positions that predict the completion
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, completions.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)

    model.train()
    # AdamW's default weight decay, 0.01, as the committed demo numbers were run (the GPT chapter's
    # warm start uses none).
    loss = sft_warm_start(completion_logprobs, model.parameters(),
                          task.sft_data(correct_fraction=0.5), steps=sft_steps,
                          batch_size=batch_size, lr=lr, seed=seed, weight_decay=0.01)
    print(f"seed {seed}: SFT warm start, {sft_steps} steps, final cross-entropy {loss:.3f}")
    return model

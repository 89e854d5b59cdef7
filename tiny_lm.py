"""A tiny GPT: the policy pi_theta(y|x) that train_reasoning.py trains with GRPO and with LAD.

This is nanoGPT's model.py cut down to what a reinforcement-learning step on a language model needs:

    logits                 forward(idx)                          [batch, length, vocab]
    log pi_theta(y|x)      completion_logprobs(prompts, completions, mask)     [batch, tokens]
                           (entropy=True: also each position's entropy)
    y ~ pi_theta(.|x)      sample(prompts, num_samples, ...)     a whole group per prompt at once
    weights + config       save(path), GPT.load(path)

A decoder-only transformer reads a prompt x and a completion y as one string of characters and, at
every position, predicts the next character. The probability of a whole completion is the product of
its characters' probabilities, so log pi_theta(y|x) is the sum of the per-token log-probabilities of
y's tokens (never of the prompt's: the policy does not choose the prompt). Losses can use the
per-token values (a ratio per token) or their sum over a completion (one ratio per sequence); both
are built from `completion_logprobs`.

Two choices that matter for RL and not for ordinary language modelling:
  * no dropout. PPO-style losses compare pi_theta with pi_old, the same weights that sampled the
    batch. With dropout the two would disagree even before the first update, and the ratio would not
    start at 1.
  * sampling returns the log-probabilities of the tokens it drew: log pi_old(y|x) of the batch. They
    come from the step-by-step forward passes of sampling, and differ in the last bits from what
    completion_logprobs computes over the whole completion at once; train_reasoning.py runs that
    second pass, so that the first update's ratio pi_theta / pi_old is exactly 1.

Run `python tiny_lm.py` to print the parameter count of the default configuration.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    # The defaults are the arithmetic task's (arithmetic.SumTask): 13 characters, and a 3-character
    # prompt plus a completion of up to 6, so `python tiny_lm.py` counts the experiment's
    # parameters.
    vocab_size: int = 13  # number of distinct characters
    block_size: int = 9  # longest prompt + completion the model can read
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 96


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t may only look at positions <= t."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.qkv = nn.Linear(
            config.n_embd, 3 * config.n_embd
        )  # queries, keys and values in one matmul
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # [B, T, C] -> [B, n_head, T, head_size]: every head attends on its own slice of the
        # channels.
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        # One fused call computes, for every head,
        #     softmax(q k^T / sqrt(head_size) + causal) v,   causal[t, s] = 0 if s <= t else -inf.
        # Dividing by sqrt(head_size) keeps the scores' variance near 1 at initialisation, so the
        # softmax starts soft instead of picking one position. The causal mask stops a position from
        # seeing the characters after it (else predicting the next character would be copying it).
        # Written out with a mask and a softmax the result is the same, about twice as slow on a
        # CPU.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, n_head, T, head_size]
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.proj(y)


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Attention (positions talk to each other), then the MLP (each position thinks on its own).
    Pre-LayerNorm residual form, as in GPT-2: x + f(ln(x)) keeps a clean path for gradients."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned position embeddings
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        # Tied head: the output layer reuses the token embedding matrix, so "how a character is
        # read" and "how strongly the model predicts it" live in one table (as in GPT-2). With a
        # large vocabulary this saves most of the parameters; with our ~15 characters it saves
        # little and is kept because it is the standard choice and one matrix less to explain.
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2's initialisation: small normal weights, zero biases.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix is counted once

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [batch, length] of token ids -> logits [batch, length, vocab] for the *next*
        token."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(
                f"sequence of length {T} is longer than block_size={self.config.block_size}"
            )
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    # -----------------------------------------------------------------------------------------
    # What the RL losses need: log pi(y|x) of given completions, and samples y ~ pi(.|x).
    # -----------------------------------------------------------------------------------------

    def completion_logprobs(
        self, prompts: torch.Tensor, completions: torch.Tensor, mask: torch.Tensor | None = None,
        entropy: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-token log pi_theta(y_t | x, y_<t) of the completion tokens.

        Args:
            prompts: [batch, prompt_len] token ids; every prompt in the batch has the same length.
            completions: [batch, tokens] token ids, written after the prompts.
            mask: optional [batch, tokens], True where a token belongs to the completion (up to and
                including its end marker), False on the padding after it.
            entropy: also return each position's entropy over the whole vocabulary (an
                entropy-shaped advantage needs it), from the same forward pass.
        Returns:
            [batch, tokens], 0 where the mask is False. Summing over tokens gives log pi_theta(y|x)
            of each completion; with the mask, it plugs straight into lad_loss / grpo_loss at the
            token level. With entropy=True, (that, the entropies [batch, tokens], also 0 where the
            mask is False).
        """
        P = prompts.shape[1]
        idx = torch.cat([prompts, completions], dim=1)
        logits = self(idx[:, :-1])  # the last token predicts nothing we need
        # logits[:, t] predicts idx[:, t + 1]; completion token j sits at position P + j, so it is
        # predicted by position P + j - 1. The prompt's own tokens are never scored.
        log_probs = torch.log_softmax(logits[:, P - 1 :], dim=-1)
        logp = log_probs.gather(-1, completions.unsqueeze(-1)).squeeze(-1)
        entropies = -(log_probs.exp() * log_probs).sum(-1) if entropy else None
        if mask is not None:
            logp = logp.masked_fill(~mask.bool(), 0.0)
            entropies = entropies.masked_fill(~mask.bool(), 0.0) if entropy else None
        return (logp, entropies) if entropy else logp

    @torch.no_grad()
    def sample(
        self,
        prompts: torch.Tensor,
        max_new_tokens: int,
        end_token: int,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample `num_samples` completions for every prompt, all in one batch.

        Args:
            prompts: [n_prompts, prompt_len] token ids (equal lengths).
            max_new_tokens: the longest completion; one that has not ended by then is cut off.
            end_token: the end marker. A completion stops after it; the positions after it are
                filled with end_token again (padding) and masked out.
            num_samples: G, completions per prompt. Rows come in consecutive groups of G per prompt,
                the layout grpo_loss.group_advantages expects.
            generator: a torch.Generator for reproducible samples.

        Returns (completions, logp, mask), each [n_prompts * num_samples, max_new_tokens]:
            token ids, their per-token log-probs (0 on padding), True on real tokens. The log-probs
            are log pi_theta of the drawn tokens: log pi_old for the batch.
        """
        idx = prompts.repeat_interleave(
            num_samples, dim=0
        )  # [n * G, prompt_len], groups consecutive
        N = idx.shape[0]
        done = torch.zeros(N, dtype=torch.bool, device=idx.device)
        tokens, logps, masks = [], [], []
        # A loop over positions, never over samples: each step extends every sequence by one token.
        # There is no key/value cache: sequences are a dozen characters, so re-running the whole
        # prefix is cheap and keeps the model code simple.
        for _ in range(max_new_tokens):
            logits = self(idx)[:, -1, :]  # only the last position's prediction
            logprobs = torch.log_softmax(logits, dim=-1)
            next_token = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(1)
            # Rows that have already ended get padding: the end marker, log-prob 0, mask False.
            next_token = torch.where(done, torch.full_like(next_token, end_token), next_token)
            logp = logprobs.gather(1, next_token.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0)
            tokens.append(next_token)
            logps.append(logp)
            masks.append(~done)
            done = done | (next_token == end_token)
            idx = torch.cat([idx, next_token.unsqueeze(1)], dim=1)
            if done.all():
                break
        completions, logp, mask = (
            torch.stack(tokens, 1),
            torch.stack(logps, 1),
            torch.stack(masks, 1),
        )
        # Pad to max_new_tokens so that batches sampled at different times have the same shape.
        pad = max_new_tokens - completions.shape[1]
        if pad > 0:
            completions = F.pad(completions, (0, pad), value=end_token)
            logp = F.pad(logp, (0, pad), value=0.0)
            mask = F.pad(mask, (0, pad), value=False)
        return completions, logp, mask

    # -----------------------------------------------------------------------------------------
    # Checkpoints: the weights and the config that builds the matching model.
    # -----------------------------------------------------------------------------------------

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": asdict(self.config), "state_dict": self.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path, map_location="cpu") -> "GPT":
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        model = cls(GPTConfig(**checkpoint["config"]))
        model.load_state_dict(checkpoint["state_dict"])
        return model


if __name__ == "__main__":
    model = GPT(GPTConfig())
    print(f"{model.num_params():,} parameters with {GPTConfig()}")

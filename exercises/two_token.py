"""A tabular two-token policy: completions of a language model, small enough to enumerate (given
code).

Exercises 11 and 12 ask what a loss applied token by token does to whole completions. A language
model is far too large to enumerate; this is the smallest policy that still writes a first token and
then a second one chosen after it:

    pi(y1, y2) = pi1(y1) * pi2(y2 | y1),        y1, y2 in {0, ..., V - 1},

with one logit per first token and one per (first token, second token): V + V * V logits in a flat
vector, softmax-normalised per step. Every distribution over the V * V completions is such a policy,
so a minimum over these logits is a minimum over all distributions over completions. Tensors over
completions have the shape [V, V]: row y1, column y2.

    token_logps(logits)          [V, V, 2]  log pi1(y1) and log pi2(y2 | y1) of every completion
    sequence_logps(logits)       [V, V]     log pi(y1, y2), their sum
    step_probabilities(logits)   (pi1 [V], pi2 [V, V] with row y1 = pi2(. | y1))
    minimise(loss, start)        the logits at which loss(logits) is smallest (L-BFGS, float64)

Use them freely; nothing here needs changing.
"""
import torch

V = 3  # tokens per step: 3 first tokens, 9 completions
N_LOGITS = V + V * V


def token_logps(logits: torch.Tensor) -> torch.Tensor:
    """[V, V, 2]: entry [y1, y2, 0] is log pi1(y1), entry [y1, y2, 1] is log pi2(y2 | y1)."""
    if logits.shape != (N_LOGITS,):
        raise ValueError(f"logits must have shape ({N_LOGITS},), got {tuple(logits.shape)}")
    first = torch.log_softmax(logits[:V], dim=-1)
    second = torch.log_softmax(logits[V:].reshape(V, V), dim=-1)
    return torch.stack([first[:, None].expand(V, V), second], dim=-1)


def sequence_logps(logits: torch.Tensor) -> torch.Tensor:
    """[V, V]: log pi(y1, y2) = log pi1(y1) + log pi2(y2 | y1)."""
    return token_logps(logits).sum(-1)


def step_probabilities(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pi1 [V] and pi2 [V, V] (row y1 is the distribution of the second token after y1)."""
    tokens = token_logps(logits).exp()
    return tokens[:, 0, 0], tokens[:, :, 1]


def minimise(loss, start: torch.Tensor) -> torch.Tensor:
    """The logits that minimise loss(logits), a scalar, found by L-BFGS from `start`, in float64.

    The problems of exercises 11 and 12 are smooth, with one minimum over distributions. L-BFGS can
    stall on them with a stale curvature history (on Jensen-Shannon's token form it stopped 1e-2
    away in the probabilities), so each round starts a fresh one, until the largest gradient entry
    is below 1e-9: about 1e-9 in the probabilities, in a few dozen to a few hundred evaluations."""
    logits = start.detach().to(torch.float64).clone().requires_grad_(True)
    for _ in range(20):
        optimizer = torch.optim.LBFGS([logits], max_iter=100, tolerance_grad=1e-9,
                                      tolerance_change=0,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            value = loss(logits)
            value.backward()
            return value

        optimizer.step(closure)
        if float(logits.grad.abs().max()) < 1e-9:
            break
    return logits.detach()

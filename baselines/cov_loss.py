"""Clip-Cov and KL-Cov: GRPO that holds back the few tokens whose updates collapse the entropy (Cui
et al., 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models", arXiv
2505.22617). One paper, one concept, two ways to act on it: one file.

A short lesson before the code.

Why the entropy of a policy-gradient run falls
----------------------------------------------
For a softmax policy, take one natural-policy-gradient step on E[A] (every logit moves by eta * A).
To first order the entropy changes by

    H(pi_new) - H(pi) = -eta * Cov_{y ~ pi}(log pi(y), A(y)),

(dH/d theta_y = -pi(y) (log pi(y) + H); tests/test_cov_loss.py checks the formula on five outcomes).
A response that is both likely and rewarded lowers the entropy; an unlikely rewarded one raises it.
The authors find the covariance mostly positive during RL on reasoning tasks, so the entropy falls
step after step, and most of it comes from a small tail of tokens with a very large covariance.

The remedy: find those tokens and hold them back
------------------------------------------------
Over the valid (unmasked) tokens of the batch, each token's share of the covariance is

    Cov_i = (A_i - mean A) * (log pi_i - mean log pi)   (detached; means over the batch's tokens)

  * Clip-Cov: among the tokens with lb < Cov_i < ub (and not already clipped by PPO), pick a random
    share r of the batch's tokens and remove their gradient. Their code: r = 2e-4, (lb, ub) =
    (1, 5).
  * KL-Cov: on the top share k of tokens by Cov_i (the signed value, not |Cov|: the tokens that pull
    the entropy *down*), add c * |log pi - log pi_old| to the unclipped -A * ratio of every token.
    Their 7B recipe: k = 0.002, c = 1.
Everything else is GRPO (grpo_loss.py): the same group-normalised advantages, the same per-token
surrogate.

What they optimise
------------------
No new target: both follow GRPO's policy gradient of E[A] with a few tokens changed. Which ones, and
when it matters:
  * At ratio 1, which is where one optimiser step per sampled batch takes its gradient (bandit.py,
    and train_reasoning.py's default), KL-Cov's penalty is silent: |log pi - log pi_old| has the
    derivative 0 at log pi = log pi_old (torch's abs, and the only subgradient a symmetric penalty
    can take), so KL-Cov's gradient is exactly the unclipped policy gradient, GRPO's. It acts only
    from the second optimiser step on a batch, once the ratio has moved; their recipe takes eight
    (256 prompts per rollout, mini-batches of 32). "Ratio 1" must then be exact: a log pi_old from
    another forward pass (or torch.log of a softmax against log_softmax) differs from log pi in the
    last bits, and the penalty's gradient becomes +-c on the selected tokens, the sign of a rounding
    error: noise, not a trust region. bandit.py takes log pi_old from the same log-softmax.
  * Clip-Cov at ratio 1 is GRPO's policy gradient without the selected tokens.
tests/test_cov_loss.py checks both against grpo_loss's gradient, token by token.

The shares on a small batch. The authors' code rounds the count down and keeps at least one token:
max(1, int(share * n_valid)). In their runs (millions of tokens per batch) that is the share itself;
on the bandit's 64 samples it is one sample per step (1.6%), 78 times Clip-Cov's 2e-4 and 8 times
KL-Cov's 0.002. We keep their rule rather than invent a scaling: it is what their code does on a
batch this small. The band (1, 5) needs no scaling: advantages are group-normalised (std 1) and
log-probabilities are in nats, in the bandit as in a language model.

Checked against the authors' code: PRIME-RL/Entropy-Mechanism-of-RL, verl/trainer/ppo/core_algos.py,
`compute_policy_loss_clip_cov` and `compute_policy_loss_kl_cov`, and their recipes as merged into
verl, recipe/entropy/7b_clip_cov.sh and 7b_kl_cov.sh (read in a fork of verl, Tialo/verl). Where we
differ, and why:
  * Clip-Cov's PPO clip: their 7B recipe sets clip_ratio to 1 (ratios kept in [0, 2]); we default to
    GRPO's 0.2 so that the covariance rule is the only difference from grpo_loss (at ratio 1 neither
    clip acts). Pass clip_eps=1.0 for theirs.
  * Clip-Cov's random choice: theirs draws from torch's global generator; ours takes a
    torch.Generator, so that the same seed selects the same tokens.
  * KL-Cov's share: their first code reads k as a percentage (0.2 meaning 0.2%), verl's port as a
    fraction (0.002); we take the fraction.

Usage (token level; advantages [batch] are broadcast over each completion's tokens):

    loss = clip_cov_loss(logp, logp_old, advantages, mask=mask,
                         generator=torch.Generator().manual_seed(0))
    loss = kl_cov_loss(logp, logp_old, advantages, mask=mask)

Shapes and masks follow lad_loss.py, whose helpers this file reuses.
"""
import math

import torch

from grpo_loss import grpo_loss, prepare_inputs, reduce_loss

CLIP_COV_SHARE = 2e-4
CLIP_COV_BAND = (1.0, 5.0)
KL_COV_SHARE = 2e-3
KL_COV_COEF = 1.0


def token_covariance(
    logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Cov_i = (A_i - mean A) * (log pi_i - mean log pi), the means over the batch's unmasked
    elements; 0 where masked; detached. logp: [batch] or [batch, tokens]; advantages [batch] or
    logp's shape.
    """
    logp, _, advantages, mask = prepare_inputs(
        logp.detach(), logp.detach(), advantages.detach(), mask
    )
    valid = torch.ones_like(logp, dtype=torch.bool) if mask is None else mask
    count = valid.sum().clamp(min=1)
    centred_a = advantages - torch.where(valid, advantages, 0.0).sum() / count
    centred_logp = logp - torch.where(valid, logp, 0.0).sum() / count
    return torch.where(valid, centred_a * centred_logp, 0.0)


def selected_count(n_valid: int, share: float) -> int:
    """The authors' rounding: max(1, int(share * n_valid)) tokens, none in a batch without
    tokens."""
    return 0 if n_valid == 0 else max(1, int(share * n_valid))


def kl_cov_selection(cov: torch.Tensor, valid: torch.Tensor, share: float) -> torch.Tensor:
    """KL-Cov's tokens: the top selected_count(share) valid ones by Cov (signed). Boolean, cov's
    shape."""
    k = min(selected_count(int(valid.sum()), share), int(valid.sum()))
    top = torch.topk(torch.where(valid, cov, -math.inf).reshape(-1), k).indices
    selected = torch.zeros(cov.numel(), dtype=torch.bool, device=cov.device)
    return selected.index_fill_(0, top, True).view_as(cov)


def clip_cov_selection(
    eligible: torch.Tensor, n_valid: int, share: float, generator: torch.Generator
) -> torch.Tensor:
    """Clip-Cov's tokens: selected_count(share) of the batch's n_valid tokens, drawn at random among
    the eligible ones (all of them if there are fewer). Boolean, eligible's shape."""
    candidates = torch.nonzero(eligible.reshape(-1)).squeeze(1)
    k = min(selected_count(n_valid, share), len(candidates))
    chosen = candidates[
        torch.randperm(len(candidates), generator=generator)[:k].to(candidates.device)
    ]
    selected = torch.zeros(eligible.numel(), dtype=torch.bool, device=eligible.device)
    return selected.index_fill_(0, chosen, True).view_as(eligible)


def _check_share(name: str, share: float) -> None:
    if not 0 < share <= 1:  # also catches NaN
        raise ValueError(f"{name} must be a share of the tokens in (0, 1], got {share}")


def clip_cov_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    generator: torch.Generator,
    clip_share: float = CLIP_COV_SHARE,
    cov_band: tuple[float, float] = CLIP_COV_BAND,
    clip_eps: float | None = 0.2,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """GRPO's clipped surrogate, with the loss (and so the gradient) of a random share of the tokens
    whose covariance lies in cov_band set to zero.

    Args:
        logp, logp_old, advantages, clip_eps, mask, reduction: as in grpo_loss.grpo_loss.
        generator: the torch.Generator that draws the random tokens (the same seed, the same
        tokens).
        clip_share: r, the share of the batch's valid tokens to select (authors: 2e-4), in (0, 1].
        cov_band: (lb, ub), the open interval of Cov a token must lie in (authors: (1, 5)).
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator (it draws the selected tokens), got {generator!r}"
        )
    _check_share("clip_share", clip_share)
    lb, ub = cov_band
    if not -math.inf < lb < ub < math.inf:
        raise ValueError(f"cov_band must be two finite numbers lb < ub, got {cov_band}")
    per_token = grpo_loss(
        logp, logp_old, advantages, clip_eps=clip_eps, mask=mask, reduction="none"
    )
    logp_, logp_old_, advantages_, mask_ = prepare_inputs(
        logp, logp_old, advantages, mask, reduction
    )
    valid = torch.ones_like(logp_, dtype=torch.bool) if mask_ is None else mask_
    eligible = valid.clone()
    if clip_eps is not None:  # tokens PPO's clip already holds back are not picked again
        ratio = torch.exp(logp_ - logp_old_).detach()
        a = advantages_.detach()
        eligible &= ~(-a * ratio.clamp(1 - clip_eps, 1 + clip_eps) > -a * ratio)
    cov = token_covariance(logp, advantages, mask)
    eligible &= (cov > lb) & (cov < ub)
    selected = clip_cov_selection(eligible, int(valid.sum()), clip_share, generator)
    return reduce_loss(
        torch.where(selected, torch.zeros_like(per_token), per_token), mask_, reduction
    )


def kl_cov_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    kl_share: float = KL_COV_SHARE,
    kl_coef: float = KL_COV_COEF,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The unclipped policy gradient -A * ratio on every token, plus kl_coef * |log pi - log pi_old|
    on the top kl_share of the valid tokens by covariance.

    Args:
        logp, logp_old, advantages, mask, reduction: as in grpo_loss.grpo_loss.
        kl_share: k, the share of the batch's valid tokens penalised (authors' 7B recipe: 0.002), in
        (0, 1].
        kl_coef: c, the penalty's weight, >= 0 (authors: 1).
    """
    _check_share("kl_share", kl_share)
    if not 0 <= kl_coef < math.inf:
        raise ValueError(f"kl_coef must be a finite number >= 0, got {kl_coef}")
    per_token = grpo_loss(logp, logp_old, advantages, clip_eps=None, mask=mask, reduction="none")
    logp_, logp_old_, _, mask_ = prepare_inputs(logp, logp_old, advantages, mask, reduction)
    valid = torch.ones_like(logp_, dtype=torch.bool) if mask_ is None else mask_
    selected = kl_cov_selection(token_covariance(logp, advantages, mask), valid, kl_share)
    # The penalty's derivative is kl_coef * sign(log pi - log pi_old): 0 at ratio 1.
    penalty = kl_coef * (logp_ - logp_old_.detach()).abs()
    return reduce_loss(
        per_token + torch.where(selected, penalty, torch.zeros_like(penalty)), mask_, reduction
    )

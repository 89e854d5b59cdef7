"""EntAdv: GRPO with an entropy-shaped advantage (Cheng et al., 2025, "Reasoning with Exploration:
An Entropy Perspective", arXiv 2506.14758).

A short lesson before the code.

The idea: credit the tokens where the model hesitates
-----------------------------------------------------
The authors observe that a reasoning model's high-entropy tokens are where it forks: "first",
"because", "wait, let me check", an unusual step. GRPO gives every token of a response the same
advantage A. EntAdv adds a bonus that grows with the token's entropy,

    A_t~ = A + psi_t,       psi_t = min(alpha * H_t.detach(), |A| / kappa),

with H_t the entropy of the policy's full next-token distribution at position t (the caller
computes it from the logits over the whole vocabulary; a sampled token's log-probability is not
enough), alpha > 0 and kappa > 1. Then the clipped surrogate of GRPO runs unchanged on A_t~.

Two details carry the method:
  * psi is detached. It reshapes the advantage; it is not a term to maximise. Without the detach the
    loss would also push the logits towards higher entropy, an entropy bonus, which is what the
    authors set out *not* to do.
  * the clip |A| / kappa. The bonus is never larger than |A| / kappa < |A|, so the shaped advantage
    keeps A's sign: A > 0 gives A~ >= A (rewarded responses are pushed up harder at their uncertain
    tokens), A < 0 gives A <= A~ <= A (1 - 1/kappa) < 0 (wrong responses are pushed down less
    there), and A = 0 gives 0. The entropy bonus can soften a penalty but never turn it into a
    reward.

What it optimises
-----------------
Each token's gradient is GRPO's with A replaced by A~ (at ratio 1: -A~ grad log pi). Since psi
depends on the token, EntAdv moves credit within a response towards its uncertain positions; it is
not a new target distribution. With a single decision (one token, the bandit of bandit.py) every
response has the same H, and A~ = g(A) is a strictly increasing function of A (slopes 1 and
1 +- 1/kappa), so the expected shaped advantage is maximised by the same point mass on the best
response as GRPO's: EntAdv changes the speed of the collapse, not its end point
(tests/test_entadv_loss.py checks this on four outcomes).

The authors give the method as one line of code (their Figure 1). We did not find their released
code; the defaults alpha = 0.4 and kappa = 2 are the values used by public verl reimplementations
(e.g. actors with `use_entropy_advantage`, `entropy_advantage_alpha=0.4`,
`entropy_advantage_kappa=2.0`), which we take to be the paper's setting.

Usage (token level; advantages [batch] are broadcast over each completion's tokens):

    loss = entadv_loss(logp, logp_old, advantages, entropy, mask=mask)

Shapes and masks follow lad_loss.py; the surrogate is grpo_loss.grpo_loss.
"""
import math

import torch

from grpo_loss import grpo_loss, prepare_inputs


def entropy_advantages(advantages: torch.Tensor, entropy: torch.Tensor, alpha: float = 0.4,
                       kappa: float = 2.0) -> torch.Tensor:
    """A~ = A + min(alpha * H.detach(), |A| / kappa), elementwise (A and H of one shape, or
    broadcastable).

    Keeps A's sign for kappa > 1 and H >= 0 (see the module docstring)."""
    if not 0 <= alpha < math.inf:  # also catches NaN
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if not 1 < kappa < math.inf:
        raise ValueError(
            f"kappa must be a finite number > 1 (so that A keeps its sign), got {kappa}"
        )
    advantages = advantages.detach()
    return advantages + torch.minimum(alpha * entropy.detach(), advantages.abs() / kappa)


def entadv_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    alpha: float = 0.4,
    kappa: float = 2.0,
    clip_eps: float | None = 0.2,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """GRPO's clipped surrogate on the entropy-shaped advantage A + min(alpha * H, |A| / kappa).

    Args:
        logp, logp_old, advantages, mask, reduction, clip_eps: as in grpo_loss.grpo_loss ([batch] or
            [batch, tokens]; advantages [batch] broadcast over tokens).
        entropy: H_t, the entropy (nats, >= 0) of the policy's full next-token distribution at each
            sampled position, the shape of logp. Treated as a constant.
        alpha: the entropy coefficient, >= 0 (0 gives GRPO back).
        kappa: the clip of the bonus at |A| / kappa, > 1.
    """
    if entropy.shape != logp.shape:
        raise ValueError(
            f"entropy must have the shape of logp {tuple(logp.shape)}, got {tuple(entropy.shape)}"
        )
    # Broadcast [batch] advantages over the tokens (and check the shapes) before shaping them per
    # token.
    _, _, advantages, valid = prepare_inputs(logp, logp_old, advantages, mask, reduction)
    if valid is not None:  # padding may hold anything; only the counted tokens' entropies are used
        entropy = torch.where(valid, entropy, torch.zeros_like(entropy))
    if not bool(torch.isfinite(entropy).all()) or bool((entropy < 0).any()):
        raise ValueError("entropy must hold finite numbers >= 0 (nats) at every unmasked position")
    shaped = entropy_advantages(advantages, entropy, alpha, kappa)
    return grpo_loss(logp, logp_old, shaped, clip_eps=clip_eps, mask=mask, reduction=reduction)

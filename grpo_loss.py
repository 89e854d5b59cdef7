"""GRPO: group-relative advantages and the clipped surrogate (the baseline LAD is compared with).

GRPO (Shao et al., 2024, DeepSeekMath) is PPO without a value network. For each prompt it samples a
group of G responses from pi_old, scores them, and uses the score relative to the group as the
advantage:

    A_i = (r_i - mean(r_group)) / (std(r_group) + eps)

Then it maximises PPO's clipped surrogate: with ratio = pi_theta(y) / pi_old(y),

    loss = -min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps) * A)

The clip is the trust region: once a response's ratio has moved clip_eps beyond 1 in the direction
its advantage pushes, its gradient is zero until pi_old is refreshed. At ratio = 1 (the first step
on a fresh batch) the gradient is exactly the vanilla policy gradient A * grad log pi.

What GRPO's steps climb is E_{y ~ pi}[A(y)]. With one best response, the maximiser of that objective
is the policy on that response. With several equally good ones, every split of the mass among them
maximises E[A] just as well: the objective does not say in which proportions to keep them. The
collapse onto one of them (the one LAD is built to avoid) comes from the dynamics: on a softmax a
gradient step raises each logit by its probability times A - E[A], so the more probable of two tied
answers gains faster, and sampling noise splits exact ties (tests/test_grpo_loss.py).

A penalty that keeps the policy near a reference model (GRPO's paper adds the per-token "k3"
estimate of KL(pi_theta || pi_ref)) is not part of this loss: the caller adds it,
kl_coef * kl_penalty(logp, logp_ref, "k3"), and kl_penalty.py, the third chapter, explains which KL
its gradient follows (not the one its value estimates).

Shapes, masks and reductions: prepare_inputs and reduce_loss below, which every loss of the
tutorial (LAD and the other baselines too) shares.
"""
import torch


# ---------------------------------------------------------------------------------------------
# Shapes, masks and reductions, shared by every loss of the tutorial: lad_loss.py and the
# baselines import these two helpers instead of keeping a copy.
# ---------------------------------------------------------------------------------------------

REDUCTIONS = ("mean", "none", "sum")


def prepare_inputs(logp, logp_old, advantages, mask=None, reduction="mean"):
    """Check shapes, masks and the reduction; return (logp, logp_old, advantages, mask) ready to
    use.

    Sequence level: logp, logp_old, advantages all [batch].
    Token level:    logp, logp_old [batch, tokens]; advantages [batch] (one per sequence, broadcast
                    over its tokens) or [batch, tokens]; mask [batch, tokens].

    The returned advantages have the shape of logp, and the mask is boolean (or None). Masked
    positions of logp and logp_old are replaced by 0: whatever a padding position holds (even
    log 0 = -inf) then cannot turn into inf or NaN in the loss or, worse, in the gradient.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    if logp_old.shape != logp.shape:
        raise ValueError(
            f"logp_old must have the shape of logp {tuple(logp.shape)}, got {tuple(logp_old.shape)}"
        )
    if logp.dim() == 2 and advantages.dim() == 1:
        # [batch] -> [batch, 1]: the same value for every token
        advantages = advantages.unsqueeze(-1)
    # Whether advantages broadcast to logp's shape, checked by hand: torch.broadcast_shapes runs in
    # Python (about 50 us a call) and its first call costs about 0.3 s of imports, together a sixth
    # of the bandit's 8000 small steps.
    trailing = zip(reversed(advantages.shape), reversed(logp.shape))
    if advantages.dim() > logp.dim() or any(a not in (1, n) for a, n in trailing):
        raise ValueError(
            f"advantages must have shape [batch] or the shape of logp {tuple(logp.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    advantages = advantages.expand_as(logp)
    if mask is not None:
        if mask.shape != logp.shape:
            raise ValueError(
                f"mask must have the shape of logp {tuple(logp.shape)}, got {tuple(mask.shape)}"
            )
        mask = mask.to(torch.bool)
        logp = torch.where(mask, logp, torch.zeros_like(logp))
        logp_old = torch.where(mask, logp_old, torch.zeros_like(logp_old))
    return logp, logp_old, advantages, mask


def reduce_loss(loss: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Zero the masked elements and reduce.

    "mean" averages over the unmasked elements of the whole batch (a token-level mean: long answers
    weigh more, as in DAPO), "sum" adds them, "none" returns `loss` with masked elements set to 0.
    """
    if mask is not None:
        loss = torch.where(mask, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    count = loss.numel() if mask is None else mask.sum().clamp(min=1)
    return loss.sum() / count



def group_advantages(
    rewards: torch.Tensor, group_size: int, eps: float = 1e-6
) -> torch.Tensor:
    """Group-relative advantages.

    Args:
        rewards: [n_prompts * group_size]; consecutive blocks of group_size belong to one prompt.
        group_size: G, the number of responses sampled per prompt (>= 2).
        eps: added to the standard deviation (>= 0, finite). Only this is `eps`; the clip's
            half-width is grpo_loss's clip_eps.

    Returns [n_prompts * group_size]. The standard deviation is the unbiased sample one (divide by
    G - 1), as torch.std and the common GRPO implementations compute it. A group whose rewards are
    all equal carries no signal and gets advantage exactly 0, for every eps >= 0, never NaN.
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
    if rewards.dim() != 1:
        raise ValueError(
            f"rewards must be 1-D [n_prompts * group_size], got shape {tuple(rewards.shape)}"
        )
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards has {rewards.numel()} elements, which is not a multiple of "
            f"group_size={group_size}"
        )
    if not 0 <= eps < float("inf"):  # also catches NaN
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    groups = rewards.reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    # A group of equal rewards is caught by comparing the rewards themselves, not by its std: the
    # rounded mean need not equal them (eight float32 3.3s average to 3.2999997), and that
    # rounding error divided by a std of the same size would be an advantage of 0.19; with eps = 0
    # the plain formula is 0 / 0.
    constant = (groups == groups[:, :1]).all(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)
    centred = centred / torch.where(constant, torch.ones_like(std), std + eps)
    return torch.where(constant, torch.zeros_like(centred), centred).reshape(-1)


def grpo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    clip_eps: float | None = 0.2,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The clipped GRPO surrogate, -min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps) * A).

    Args:
        logp, logp_old, advantages, mask, reduction: as in lad_loss.lad_loss ([batch] or
            [batch, tokens]; advantages [batch] broadcast over tokens).
        clip_eps: half-width of the trust region around ratio = 1 (> 0). None turns clipping off,
            leaving the importance-weighted policy gradient -ratio * A.
    """
    if clip_eps is not None and not clip_eps > 0:
        raise ValueError(f"clip_eps must be > 0 or None, got {clip_eps}")
    logp, logp_old, advantages, mask = prepare_inputs(
        logp, logp_old, advantages.detach(), mask, reduction
    )

    ratio = torch.exp(logp - logp_old.detach())
    loss = -ratio * advantages
    if clip_eps is not None:
        clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
        # max of the two negatives = -min(...): the pessimistic of the clipped and unclipped terms.
        loss = torch.maximum(loss, -clipped * advantages)
    return reduce_loss(loss, mask, reduction)

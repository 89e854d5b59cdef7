"""FlowRL: match the reward-induced distribution by trajectory balance, with a learned log Z
(Zhu et al., 2025, "FlowRL: Matching Reward Distributions for LLM Reasoning", arXiv 2509.15207).

A short lesson before the code.

The same kind of target as LAD, reached another way
---------------------------------------------------
LAD and FlowRL both want a *distribution* over responses, not the single best one: a reference
policy tilted by the reward,

    pi*(y|x) = pi_ref(y|x) * exp(reward_scale * r(x, y)) / Z(x),
    Z(x) = sum_y pi_ref(y|x) exp(reward_scale * r(x, y))

With pi_ref = pi_old and reward_scale = 1/eta that is Lemma 3.1's target (lad_loss.py). LAD never
needs the partition function Z: Lemma 3.2 turns "match the normalised distribution" into a
per-sample loss whose minimiser is pi* anyway. FlowRL *learns* Z instead. It borrows trajectory
balance from GFlowNets and asks every sampled response to satisfy

    log Z(x) + log pi(y|x) = reward_scale * r(x, y) + log pi_ref(y|x),

by minimising the squared residual delta = log Z + log pi - reward_scale r - log pi_ref, where log
Z(x) is a learned number: in the authors' code a small head on the prompt's mean hidden state,
trained with the policy; in the bandit (bandit.py) one scalar, since there is one prompt.

Why the minimiser is pi*, with the true log Z
---------------------------------------------
If delta(y) = 0 for every y, then pi(y) = pi_ref(y) exp(reward_scale r(y)) / exp(log Z), and since
pi sums to one, exp(log Z) = sum_y pi_ref(y) exp(reward_scale r(y)): among policies that give every
y some mass, the residual can only vanish everywhere at pi* with the true partition function.
On-policy it is only ever evaluated where pi samples, so pi* restricted to any subset of the answers
(renormalised, with that subset's log Z) zeroes it too: pi* is its unique zero only among
full-support policies (tests/test_fixed_points.py). The samples come from the current policy (pi_old
= pi, weight w = 1), so for a softmax policy with logits theta the expected gradient is

    d/d theta_k:  2 pi_k (delta_k - E_pi[delta])        d/d log Z:  2 E_pi[delta],

and both vanish only where delta = 0 on the policy's support. tests/test_flowrl_loss.py finds this
optimum numerically on five outcomes (the policy reaches pi_ref exp(reward_scale r) / Z, the learned
log Z the true log Z). What it optimises is a regression, not an f-divergence: the loss is zero at
the optimum and grows with the squared log-ratio error of each sampled response.

What the code computes (the authors' `compute_flowrl_objective`)
----------------------------------------------------------------
Checked against the authors' released code, repository Xuekai-Zhu/FlowRL,
verl_FlowRL/verl/workers/actor/dp_actor.py (`compute_flowrl_objective`, and the `return_log_z`
branch of `_forward_micro_batch`, where log Z is `proj_z` applied to the prompt's mean last hidden
state, not detached, so its gradient also reaches the policy's hidden states). Their later
repository Xuekai-Zhu/verl_FlowRL, recipe/flowrl/flowrl_objectives.py, drops log Z from the residual
altogether (`compute_flowrl` and `compute_flowrl_no_log_z` compute the same thing there); we keep
it, as the paper and the released actor have it. Per completion, with its tokens' log-probabilities:

    delta = log Z + mean_t log pi(y_t) - reward_scale * r_hat - mean_t log pi_ref(y_t)
    loss  = w * delta^2,       w = min(exp(sum_t (log pi(y_t) - log pi_old(y_t))), 10), detached

and the mean over completions. r_hat is the group-normalised reward (they pass GRPO's advantages),
reward_scale = 15 in their math recipe.
  * The importance weight. The paper clips w to PPO's [1 - clip_eps, 1 + clip_eps]; an early
    release computed that clip and then used the unclipped w; the current code truncates it at 10.
    We truncate at `max_weight` = 10, as the current code does. With one optimiser step per sampled
    batch (bandit.py, and train_reasoning.py's default) pi = pi_old when the gradient is taken, so
    w = 1 exactly and the choice does not matter there; it matters only from the second step on a
    batch.
  * The length normalisation: the residual holds the *mean* of the tokens' log-probabilities, not
    their sum. It changes the target. delta = 0 now reads
        log pi(y) = log pi_ref(y) + |y| * (reward_scale * r_hat(y) - log Z),
    so each completion's reward is multiplied by its own length |y| and log Z is a per-token
    normaliser (the unique c with sum_y pi_ref(y) exp(|y| (reward_scale r_hat - c)) = 1). If every
    completion has L tokens, the target is pi_ref exp(L reward_scale r_hat) / Z': the sharpness
    grows with the length. Only with |y| = 1 (the bandit) is it pi_ref exp(reward_scale r_hat) / Z.
  * The normalised reward. r_hat = (r - mean) / std of the group, so the target's temperature is
    std / reward_scale and moves with the spread of the group's rewards; bandit.py says which
    reward_scale makes its fixed point LAD's pi*.
  * A completion with no unmasked token (TRL's mask_truncated_completions masks a truncated one
    entirely). The authors average the reward over the same mask as the log-probabilities (they
    pass it per token), and their masked mean of nothing is 0: such a completion's residual is
    log Z alone, w = 1, and it still counts in the mean over completions. So here too: its reward
    is left out, and its (log Z)^2 pulls its prompt's log Z towards 0 (counting the reward would
    pull it towards reward_scale * r_hat instead, with no token to answer for it). A trainer that
    wants neither drops such completions before the loss.

The call, at the token level (FlowRL's length-normalised form) or at the sequence level (summed
log-probabilities [batch]: the plain trajectory balance, whose optimum is pi_ref exp(reward_scale r)
/ Z over whole completions; the two agree when every completion is one token):

    loss = flowrl_loss(logp, logp_old, logp_ref, log_z, rewards, reward_scale=15.0, mask=mask)

Shapes and masks follow lad_loss.py, whose helpers this file reuses.
"""
import math

import torch

from grpo_loss import prepare_inputs, reduce_loss


def flowrl_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    logp_ref: torch.Tensor,
    log_z: torch.Tensor,
    rewards: torch.Tensor,
    reward_scale: float = 15.0,
    mask: torch.Tensor | None = None,
    max_weight: float = 10.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """FlowRL's trajectory-balance loss, w * (log Z + log pi - reward_scale * r_hat - log pi_ref)^2
    per completion.

    Args:
        logp: log pi_theta of the sampled tokens, [batch, tokens] (FlowRL's form: each completion's
            mean over its unmasked tokens enters the residual), or [batch] (one log-probability per
            completion, e.g. summed: the residual takes it as it is).
        logp_old: the same under pi_old, which sampled the batch; the shape of logp. Only the
            importance weight w uses it. Treated as a constant.
        logp_ref: the same under the reference policy pi_ref; the shape of logp. Treated as a
        constant.
        log_z: the learned log partition function of each completion's prompt, [batch]. It carries
            a gradient: the loss trains it together with the policy.
        rewards: r_hat, the group-normalised reward of each completion, [batch]. Treated as a
        constant.
        reward_scale: the reward's inverse temperature, > 0: the FlowRL paper's beta (their math
            recipe: 15; in this repository beta names only a KL coefficient).
        mask: optional, the shape of logp at the token level; True where a token counts.
        max_weight: w is truncated at this value (>= 1, finite), as the authors' current code does.
        reduction: "mean" over completions, "sum", or "none" ([batch]).
    """
    if not 0 < reward_scale < math.inf:  # also catches NaN
        raise ValueError(f"reward_scale must be a finite number > 0, got {reward_scale}")
    if not 1 <= max_weight < math.inf:
        raise ValueError(f"max_weight must be a finite number >= 1, got {max_weight}")
    if logp.dim() not in (1, 2):
        raise ValueError(f"logp must be [batch] or [batch, tokens], got shape {tuple(logp.shape)}")
    if rewards.shape != logp.shape[:1]:
        raise ValueError(
            f"rewards must have shape [batch] = {tuple(logp.shape[:1])}, got {tuple(rewards.shape)}"
        )
    if log_z.shape != logp.shape[:1]:
        raise ValueError(
            f"log_z must have shape [batch] = {tuple(logp.shape[:1])}, got {tuple(log_z.shape)}"
        )
    if logp_ref.shape != logp.shape:
        raise ValueError(
            f"logp_ref must have the shape of logp {tuple(logp.shape)}, got {tuple(logp_ref.shape)}"
        )
    logp, logp_old, _, mask = prepare_inputs(logp, logp_old, rewards, mask, reduction)
    if mask is not None:  # padding may hold anything, even log 0 = -inf: it must not reach the sums
        logp_ref = torch.where(mask, logp_ref, torch.zeros_like(logp_ref))
    logp_ref, logp_old = logp_ref.detach(), logp_old.detach()

    rewards = rewards.detach()
    if logp.dim() == 2:  # FlowRL's length normalisation: means over each completion's tokens
        tokens = logp.shape[1] if mask is None else mask.sum(1).clamp(min=1)
        mean_logp, mean_logp_ref = logp.sum(1) / tokens, logp_ref.sum(1) / tokens
        log_ratio = (logp - logp_old).sum(1)  # the weight is the whole completion's ratio
        if mask is not None:  # a completion with no token left: its reward's mean is 0 too
            rewards = torch.where(mask.any(1), rewards, torch.zeros_like(rewards))
    else:
        mean_logp, mean_logp_ref, log_ratio = logp, logp_ref, logp - logp_old

    delta = log_z + mean_logp - reward_scale * rewards - mean_logp_ref
    # min(ratio, max_weight), taken in log space so that a large ratio cannot overflow first;
    # detached: w reweights the samples, the gradient flows through delta only.
    w = torch.exp(log_ratio.detach().clamp(max=math.log(max_weight)))
    return reduce_loss(w * delta**2, None, reduction)

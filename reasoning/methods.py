"""The methods the GPT chapter compares: each one's loss on a sampled batch, what it optimises, and
which model samples its rollouts.

train_reasoning.py runs one RL iteration for every method (train_reasoning.rl_iteration); they
differ only in the loss below, in which model samples the rollout (pi_old), and in the anchor
(`rl_models`):

    method     loss on the batch                           pi_old (samples)   anchor
    grpo       clipped surrogate (grpo_loss), token ratio  the policy         none
    lad        lad_loss, Jensen-Shannon, 1/eta = 4         the policy         none
    grpo-kl    grpo + beta * KL estimate to pi_sft         the policy         KL to pi_sft
    lad-kl     lad  + the same penalty                     the policy         KL to pi_sft
    lad-fixed  lad_loss                                    pi_sft, frozen     pi_old = pi_sft
    dpg        lad-fixed's objective with f = -log x,      the policy         prior of pi*:
               estimated from the policy's samples                            pi_sft
               with self-normalised weights (dpg_loss)

("the policy": pi_old is refreshed to the current policy at every rollout.)

and the paper's other baselines (`--methods flowrl entadv clip-cov kl-cov`; each loss file is a
lesson, in baselines/):

    method     loss on the batch                                    pi_old       anchor
    flowrl     trajectory balance to pi_sft exp(s r_hat)            the policy   pi_ref = pi_sft
               (s: --flowrl-reward-scale), a learned log Z per prompt (flowrl_loss)
    entadv     grpo on A + min(alpha H_t, |A|/kappa)                the policy   none
    clip-cov   grpo without a few random high-Cov tokens            the policy   none
    kl-cov     unclipped grpo + |log ratio| on top-Cov tokens       the policy   none
               (cov_loss)

    method_loss(method, logp, batch, settings, ...)   one method's loss on a (mini-)batch, and how
                                                      often its clip or brake acted
    rl_models(method, sft_path, device)               (the policy, the model that samples, the
                                                      anchor or None), all from the SFT checkpoint

What each method converges to, in its sampling regime
------------------------------------------------------
Where the update heads when the batch is replaced by its exact expectation and A is held fixed
(--advantage-source sft or sft-normalised; with --advantage-source group A moves with the policy,
and so does the point). w(A) = -f'(exp(-A/eta)) is LAD's weight at ratio 1, for JS
(softplus(A/eta) - log 2)/2; beta is --kl-coef (default: eta); Z normalises. Each row is checked by
the tests named under it, in tests/test_fixed_points.py: they iterate the update with this file's
method_loss (the bandit's rows: bandit.step_loss) on an enumerable policy and compare where it ends
in TV.

    method         pi_old          ratio, gradient       fixed point
    grpo           the policy      1 (token ratio)       all the mass on the largest A (under a
                                                         0/1 reward: on the correct answers)
        test_grpo_on_policy_puts_all_its_mass_on_the_best_answers
    lad            the policy      1 (either level)      REINFORCE with w(A), increasing in A: as
                                                         grpo, all the mass on the largest A, not
                                                         pi* (tv: on all the answers with A > 0)
        test_lad_on_policy_is_reinforce_with_a_shaped_advantage_and_collapses_like_grpo
    grpo-kl, k2    the policy      1                     pi_sft exp(A/beta) / Z: pi* at beta = eta
        test_grpo_kl_with_k2_converges_to_pi_sft_tilted_by_a_over_beta
    lad-kl, k2     the policy      1                     pi_sft exp(w(A)/beta) / Z, not pi*: JS at
                                                         beta = eta is 3.5e-4 from it in TV with
                                                         the SFT A, 0.11 with sft-normalised A
                                                         (a prompt with p = 0.29)
        test_lad_kl_with_js_converges_to_pi_sft_tilted_by_its_shaped_advantage_not_to_pi_star
    lad-kl, k2,    the policy      1                     w = A/eta - 1, so pi_sft exp(A/(eta beta))
      f = kl                                             / Z: pi* at --kl-coef 1
        test_lad_kl_with_forward_kl_is_aimed_at_pi_star_when_kl_coef_is_one
    grpo-kl or     the policy      1                     one token per answer: beta pi_sft /
      lad-kl, k3                                         (mu - w(A)), w = A for grpo-kl, mu
                                                         normalising it: mass-covering, not pi*
        test_the_k3_anchor_is_mass_covering_beta_pi_sft_over_mu_minus_the_weight
    lad-fixed      pi_sft, frozen  pi / pi_sft, one per  pi* for kl, rkl, jf, hd, js; for tv pi*
                                   completion            only if Z = E_pi_sft[exp(A/eta)] = 1; if
                                                         Z > 1, the first policy with pi <=
                                                         pi_sft exp(A/eta) that the run meets
        test_lad_fixed_at_the_sequence_ratio_converges_to_pi_star
        test_lad_fixed_with_total_variation_and_z_above_one_stops_at_whichever_minimiser_it_meets
    lad-fixed,     pi_sft, frozen  one per token         the token form's own minimiser: pi* only
      token ratio                                        for rkl (tests/test_token_ratio.py)
        test_lad_fixeds_update_vanishes_at_the_minimiser_of_its_ratio_level
    lad-fixed,     pi_sft, frozen  any: the gradient is  weighted maximum likelihood on pi_sft's
      f = -log x                   -exp(A/eta) grad      samples (reward-weighted regression):
                                   log pi                pi*, the minimiser of Z KL(pi* || pi)
        test_reverse_kl_lad_is_reward_weighted_regression_on_pi_olds_samples
    dpg            the policy      pi_sft / q in the     pi*: as G grows the expected update is
                                   weights, self-       -grad KL(pi* || pi); at finite G biased
                                   normalised per group  off pi*, but pi* is a fixed point at
                                                         every G (there every weight is Z)
        tests/test_dpg_loss.py: test_dpgs_expected_update_is_the_forward_kl_gradient_as_g_grows,
        test_pi_star_is_a_fixed_point_of_dpg_at_every_group_size,
        test_dpg_iterated_from_pi_sft_converges_to_pi_star
    flowrl         the policy      1 (w = 1)             with r = A, reward scale 1/eta, one
                                                         token per answer: pi*, and the true
                                                         log Z. pi*
                                                         restricted to any subset of the answers
                                                         is a zero too: pi* is the only one among
                                                         policies that miss no answer. (The
                                                         chapter's runs aim elsewhere: below.)
        test_flowrl_converges_to_pi_star_and_learns_its_log_z
        test_flowrl_residual_also_vanishes_at_pi_star_restricted_to_a_subset
    bandit         pi_0, frozen    pi / pi_0             pi* (the three-mode mixture)
      lad-fixed
        test_the_bandits_lad_with_pi_0_fixed_converges_to_pi_star
    bandit lad     the policy      1                     as lad: all the mass on the best arm;
                                                         pi_0 exp(k A/eta) / Z_k after k refreshes
                                                         only if each is optimised to its end
                                                         (exercise 10)
        test_the_bandits_lad_refreshed_every_step_collapses_onto_the_best_arm

What each one optimises (the targets a reader meets in this chapter)
--------------------------------------------------------------------
    P_A = exp(A/eta) / Z_A    the paper's advantage-induced distribution: the target of the ratio
                              pi/pi_old, not of the policy (lad_loss.py)
    pi* = pi_sft exp(A/eta)/Z Lemma 3.1's policy, from the SFT start; what evaluation.py measures
                              every run against. Among the correct answers it is pi_sft's own shape
    x = 1/Z at the optimum    where Lemma 3.2's loss is minimised every response has the same
                              x = ratio / exp(A/eta) = 1/Z, Z = E_pi_old[exp(A/eta)]: not x = 1
    per-token exp(A/eta)      the token-ratio form gives every token its own ratio and target
                              exp(A/eta); its minimiser is another policy (below)

* lad-fixed with one ratio per completion (`--lad-ratio sequence`, the default) is Lemma 3.2's
  form with pi_old = pi_sft: its exact objective's minimiser is pi*. With `--lad-ratio token` every
  token of a completion is matched to exp(A/eta) on its own, another objective: its minimiser agrees
  with pi* at the last token, but at an earlier token f' is averaged over the continuations pi_old
  samples, and for JS it moves mass away from a prefix after which pi_old often goes wrong, towards
  one after which every answer is right (only reverse KL's token form reaches pi*; it is not the
  "exp(length * A / eta)" one might guess). tests/test_token_ratio.py enumerates this.
* The -kl methods add beta * a KL estimate to pi_sft. With `--kl-estimator k2` (the default) it is
  k2 on the summed log-ratio of each completion, whose gradient is that of KL(pi || pi_sft): with
  GRPO's one-step objective E[A] this is max E[A] - beta KL(pi || pi_sft), optimum
  pi_sft exp(A/beta) / Z, which is pi* when beta = eta (--kl-coef defaults to --eta) and A is the
  SFT policy's. That is grpo-kl. lad-kl's policy term at ratio 1 is E[w(A)] instead, so its
  optimum is pi_sft exp(w(A)/beta) / Z: for JS not pi* at any beta (w is not affine in A, and a
  constant shift of A moves the point); with `--divergence kl` (w = A/eta - 1) pi* at
  `--kl-coef 1`. With `--kl-estimator k3` it is per-token k3, as verl runs it, whose gradient
  follows KL(pi_sft || pi) at each sampled prefix: mass-covering, another optimum (kl_penalty.py;
  TRL 1.16's default multiplies k3 by the ratio pi/pi_old, which turns it to KL(pi || pi_sft)).
  The A of grpo-kl and lad-kl comes from the current policy's groups (`--advantage-source group`):
  as accuracy rises A+ shrinks and A- grows, so the point they head for moves. `--advantage-source
  sft` gives every completion the large-group A of the SFT policy's exact success rate on its
  prompt, the A that defines pi* (evaluation.answer_target).

FlowRL's residual holds mean_t log pi - mean_t log pi_sft (its length normalisation), so delta = 0
reads log pi(y) = log pi_sft(y) + |y| (flowrl_reward_scale r_hat - log Z): pi*'s tilt times the
completion's length, with a per-token log Z. So even with flowrl_reward_scale = 1/eta
(--flowrl-reward-scale's default, LAD's temperature per unit of advantage) its target is not pi*: it
is 4 to 6 times sharper here (answers are 4 to 6 characters), and among the correct answers it
departs from pi_sft's shape, favouring longer answers wherever flowrl_reward_scale r_hat > log Z.

One update per rollout: every method is a policy gradient
---------------------------------------------------------
With one optimiser step per sampled batch (`--minibatches 1 --epochs 1`, the default), the policy
that takes the gradient is the policy that sampled the batch, so every ratio is exactly 1 there.
GRPO's clip then never acts and its gradient is A * grad log pi: REINFORCE with the group-normalised
A. LAD's gradient is f'(x) * ratio * grad log pi at x = exp(-A/eta): REINFORCE with the shaped
advantage -f'(exp(-A/eta)), for JS 1/2 (softplus(A/eta) - log 2). So `grpo` and `lad` then differ
only in how they weight each completion, and the ratio-dependent part of LAD (its brake at the
target) never acts. That weight never falls as A grows, so both head for all the mass on the best
answers (the table above). KL-Cov's |log ratio| has no gradient there: it is unclipped GRPO. With
`--minibatches M` the rollout is cut into M mini-batches of whole groups, one step each: every step
after the first is off-policy, the clip and the brake act, and `clipped` / `above_target` /
`past_target` below count how often.

Every loss is a sum over the batch divided by its number of completion tokens (as TRL's default
"dapo" averaging), the policy term and the penalty alike, so that beta is --kl-coef itself:
grpo-kl weighs E[A] against beta KL(pi || pi_sft), lad-kl (at ratio 1) E[w(A)].
"""
from pathlib import Path
from typing import Protocol

import torch

from baselines.cov_loss import clip_cov_loss, kl_cov_loss
from baselines.dpg_loss import dpg_loss, dpg_weights
from baselines.entadv_loss import entadv_loss
from baselines.flowrl_loss import flowrl_loss
from grpo_loss import grpo_loss
from kl_penalty import kl_penalty
from lad_loss import get_divergence, lad_loss
from tiny_lm import GPT

METHODS = ("grpo", "lad", "grpo-kl", "lad-kl", "lad-fixed")
# The paper's other baselines (--methods): their losses are in baselines/.
BASELINES = ("flowrl", "entadv", "clip-cov", "kl-cov")
# LAD's frozen objective estimated from the current policy's samples: the distributional policy
# gradient of the distribution-matching literature (baselines/dpg_loss.py).
MATCHING = ("dpg",)
# Which methods need the frozen SFT model's log-probabilities of every sampled token (an anchor,
# or for dpg the prior of pi*).
USES_REFERENCE = ("grpo-kl", "lad-kl", "flowrl", "dpg")
GRPO_LIKE = ("grpo", "grpo-kl", "entadv", "clip-cov", "kl-cov")  # token ratios, GRPO's advantage


class LossSettings(Protocol):
    """What method_loss reads from a script's settings, and nothing else (train_reasoning.Settings
    has each; tests/test_methods.py calls every method with exactly these)."""
    eta: float          # LAD's temperature, also in pi*'s exp(A/eta) for dpg
    divergence: str     # LAD's generator f
    lad_ratio: str      # "sequence" or "token"
    clip_eps: float     # GRPO's clip
    kl_coef: float      # beta, the anchor's coefficient
    kl_estimator: str   # "k2" or "k3"
    flowrl_reward_scale: float  # FlowRL's reward scale
    group_size: int     # G, dpg's groups
    dpg_same_a_groups: str  # "keep" or "drop": dpg's groups whose completions share one A


def method_loss(method: str, logp: torch.Tensor, batch: dict, settings: LossSettings,
                entropy: torch.Tensor | None = None, log_z: torch.Tensor | None = None,
                cov_gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The loss of one method on one (mini-)batch, and how often its clip or brake acted.

    logp: log pi_theta of every completion token, [batch, tokens], 0 on padding (the policy's
    current forward pass). batch: "logp_old" (pi_old = the sampler, [batch, tokens]), "advantages"
    [batch], "mask" [batch, tokens], and for USES_REFERENCE "logp_ref" (pi_sft). settings:
    LossSettings. The baselines need more:
    entadv the entropy of each position [batch, tokens], flowrl the learned log Z of each
    completion's prompt [batch], clip-cov a generator for its random choice of tokens.

    Returns (loss, stats). stats, over the completions (sequence ratio) or tokens (token ratio:
    GRPO, its baselines, FlowRL, and LAD with --lad-ratio token) whose advantage is not 0:
      clipped       GRPO: share whose ratio is past the clip in the direction A pushes (zero
                    gradient), i.e. log ratio > log(1 + clip_eps) with A > 0, < log(1 - clip_eps)
                    with A < 0
      above_target  LAD: share with x = ratio / exp(A/eta) > 1
      past_target   LAD: share whose weight -f'(x) has the sign opposite to A's (the brake
                    reversed the push)
      abs_log_ratio mean |log pi - log pi_old|: 0 exactly on the first step after sampling
      weight_ess    dpg: the effective sample size 1 / sum_i w_i^2 of each group's self-normalised
                    weights, over G (1: every completion weighs the same; 1/G: one takes it all),
                    averaged over the groups
    """
    logp_old, A, mask = batch["logp_old"], batch["advantages"], batch["mask"]
    # Padding holds 0 in tiny_lm's log-probs, but whatever it holds must not reach a token sum.
    logp = torch.where(mask, logp, torch.zeros_like(logp))
    n_tokens = mask.sum().clamp(min=1)
    token_level = method in GRPO_LIKE or method == "flowrl" or (
        method not in MATCHING and settings.lad_ratio == "token")
    if token_level:
        u = (logp - logp_old).detach()
        moves = mask & (A != 0).unsqueeze(1)
        A_ = A.unsqueeze(1).expand_as(logp)
    else:
        u = (logp.sum(1) - logp_old.sum(1)).detach()
        moves = A != 0
        A_ = A
    stats = {"abs_log_ratio": float(u[moves].abs().mean()) if moves.any() else 0.0}

    eps = settings.clip_eps
    if method in GRPO_LIKE:
        if method == "entadv":  # GRPO on A + min(alpha H, |A| / kappa), the authors' defaults
            loss = entadv_loss(logp, logp_old, A, entropy, clip_eps=eps, mask=mask, reduction="sum")
        elif method == "clip-cov":  # GRPO without a random few high-covariance tokens
            loss = clip_cov_loss(logp, logp_old, A, cov_gen, clip_eps=eps, mask=mask,
                                 reduction="sum")
        elif method == "kl-cov":  # unclipped GRPO plus |log ratio| on the top-covariance tokens
            loss = kl_cov_loss(logp, logp_old, A, mask=mask, reduction="sum")
        else:
            loss = grpo_loss(logp, logp_old, A, clip_eps=eps, mask=mask, reduction="sum")
        if method != "kl-cov":  # the clip acts on the ratio e^u, so compare u with log(1 +- eps)
            clipped = ((A_ > 0) & (u > torch.log1p(torch.tensor(eps)))) | \
                      ((A_ < 0) & (u < torch.log1p(torch.tensor(-eps))))
            stats["clipped"] = share(clipped, moves)
    elif method == "dpg":  # pi* = pi_sft exp(A/eta) / Z from the policy's own samples
        logp_sampler, logp_prior = logp_old.sum(1), batch["logp_ref"].sum(1)
        drop = settings.dpg_same_a_groups == "drop"
        loss = dpg_loss(logp.sum(1), logp_sampler, logp_prior, A, settings.group_size,
                        eta=settings.eta, reduction="sum", drop_same_a=drop)
        weights = dpg_weights(logp_sampler, logp_prior, A, settings.group_size, settings.eta, drop)
        groups = weights.view(-1, settings.group_size) / settings.group_size
        kept = groups.sum(1) > 0  # a dropped group has no weights to be effective
        stats["weight_ess"] = (float((1 / (groups[kept]**2).sum(1)).mean() / settings.group_size)
                               if kept.any() else 0.0)
    elif method == "flowrl":  # trajectory balance to pi_sft exp(s r_hat), a learned log Z
        loss = flowrl_loss(logp, logp_old, batch["logp_ref"], log_z, A,
                           reward_scale=settings.flowrl_reward_scale,
                           mask=mask, reduction="sum")
    else:
        lad = {"eta": settings.eta, "divergence": settings.divergence, "reduction": "sum"}
        if token_level:
            loss = lad_loss(logp, logp_old, A, mask=mask, **lad)
        else:
            loss = lad_loss(logp.sum(1), logp_old.sum(1), A, **lad)
        log_x = u - A_ / settings.eta
        # LAD's shaped advantage -f'(x), whose sign says which way each sample is pushed
        weight = -get_divergence(settings.divergence).f_prime(log_x.clamp(-80, 80).exp())
        stats["above_target"] = share(log_x > 0, moves)
        stats["past_target"] = share(weight * A_ < 0, moves)

    if method in ("grpo-kl", "lad-kl"):
        logp_ref = batch["logp_ref"]
        if settings.kl_estimator == "k2":  # one KL term per completion: the summed log-ratio
            penalty = kl_penalty(logp.sum(1), logp_ref.sum(1), "k2").sum()
        else:  # per token, as verl applies k3 (TRL's default also multiplies it by the ratio)
            penalty = (kl_penalty(logp, logp_ref, "k3") * mask).sum()
        loss = loss + settings.kl_coef * penalty
    return loss / n_tokens, stats


def share(event: torch.Tensor, among: torch.Tensor) -> float:
    """The share of the `among` elements at which `event` holds (0 when there are none)."""
    return float((event & among).sum() / among.sum()) if among.any() else 0.0


def rl_models(method: str, sft_path: Path, device: str = "cpu") -> tuple[GPT, GPT, GPT | None]:
    """(the policy being trained, the sampler: the model that samples each rollout and is its
    pi_old, the reference or None). Every method starts from the SFT checkpoint; lad-fixed samples
    from a frozen copy of it, and the anchored methods (USES_REFERENCE) score each rollout with one.
    A frozen copy, never the policy itself: a policy that were its own anchor would pay no
    penalty."""
    policy = GPT.load(sft_path, map_location=device)
    frozen = None
    if method == "lad-fixed" or method in USES_REFERENCE:
        frozen = GPT.load(sft_path, map_location=device).requires_grad_(False)
    sampler = frozen if method == "lad-fixed" else policy
    return policy, sampler, frozen if method in USES_REFERENCE else None

"""The paper's other baselines on the bandit: FlowRL, EntAdv, Clip-Cov and KL-Cov.

`python bandit.py --ablation baselines` runs them (or `--methods flowrl entadv ...`). bandit.py's
step_loss hands a baseline what it hands GRPO: the sampled group's log pi and log pi_old, and GRPO's
group-normalised advantages A_hat; this file turns them into each baseline's per-sample loss.

    BASELINES                              the four methods' names
    Baseline(method, settings, clip_eps)   one baseline: its per-sample loss (.loss), what it
                                           trains beside the logits (.parameters: FlowRL's log Z),
                                           what a metrics file reports of it (.metrics: FlowRL's
                                           reward scale and log Z); Clip-Cov's generator for the
                                           samples it holds back
    flowrl_reward_scale(settings)          the reward scale that makes pi* FlowRL's fixed point

How each is set up on a bandit. The baselines run against the same pi*, with GRPO's sampling
(on-policy, group-normalised advantages) and the same iterations, lr, group and seed. A response is
one arm here, so a "token" is an arm and its entropy is the entropy of the whole softmax.
  * FlowRL (baselines/flowrl_loss.py): reference pi_0, log Z one learned scalar trained with the
    logits. With its reward normalised over the group, as published, its target
    pi_0 exp(reward_scale r_hat) / Z has the temperature std / reward_scale, std being the spread of
    A in the group. Near pi* that spread is std_{pi*}(A) = 0.193, so reward_scale = std_{pi*}(A) /
    eta = 0.77 makes pi* its fixed point in the large-group limit (the same std as the entropy-bonus
    ablation's coefficient eta / std). A group of 64 is not that limit: an arm far from the mean
    inflates the std of the very group it is drawn in, so its r_hat is pulled towards 0 and FlowRL's
    fixed point is flatter than pi*. So the ablation runs FlowRL a second time on the raw A that LAD
    sees (`--flowrl-reward raw`), with reward_scale = 1/eta: then its optimum is exactly pi*.
  * EntAdv (baselines/entadv_loss.py): alpha = 0.4, kappa = 2, as published, on GRPO's clipped
    surrogate.
  * Clip-Cov, KL-Cov (baselines/cov_loss.py): the authors' shares, band and coefficient; their
    rounding keeps one sample of the 64 per iteration. Clip-Cov clips as GRPO does, KL-Cov is
    unclipped (as published). With one update per iteration the ratio is 1 when the gradient is
    taken: GRPO's clip never acts, and KL-Cov's penalty |log pi - log pi_old| has zero gradient.
"""
import torch

from bandit_study.task import advantage_std, bandit_advantages, std_at_target, uniform_policy
from baselines.cov_loss import clip_cov_loss, kl_cov_loss
from baselines.entadv_loss import entadv_loss
from baselines.flowrl_loss import flowrl_loss
from measures.distributions import entropy

BASELINES = ("flowrl", "entadv", "clip-cov", "kl-cov")


def flowrl_reward_scale(settings) -> float:
    """FlowRL's reward scale such that pi* is its fixed point: 1/eta on the raw A; on A normalised
    by the group's std, std_{pi*}(A) / eta (the std the group has once the policy is at pi*)."""
    if settings.flowrl_reward == "raw":
        return 1 / settings.eta
    return std_at_target(settings.eta, settings.centre_advantages) / settings.eta


class Baseline:
    """One baseline on the bandit. settings: bandit.py's Settings (eta, flowrl_reward,
    centre_advantages, seed)."""

    def __init__(self, method: str, settings, clip_eps: float):
        if method not in BASELINES:
            raise ValueError(f"a baseline must be one of {BASELINES}, got {method!r}")
        self.method, self.settings, self.clip_eps = method, settings, clip_eps
        self.pi_0 = uniform_policy()
        self.advantages = bandit_advantages(self.pi_0, centre=settings.centre_advantages)
        self.flowrl_reward_scale = flowrl_reward_scale(settings)
        self.log_z = torch.zeros((), requires_grad=True)  # FlowRL's; starts at 0 like the logits
        self.parameters = [self.log_z] if method == "flowrl" else []  # trained with the logits
        self.select_gen = torch.Generator().manual_seed(settings.seed)  # Clip-Cov's held-back arms

    def loss(self, logp, logp_old, advantages, group_advantages, logp_all, arms) -> torch.Tensor:
        """The per-sample loss [group]: logp, logp_old, advantages (A) and group_advantages (A_hat)
        of the sampled arms [group]; logp_all, the policy's log-probabilities of every arm [50]."""
        group = len(arms)
        if self.method == "flowrl":  # trajectory balance to pi_0 exp(reward_scale r) / Z
            r = advantages if self.settings.flowrl_reward == "raw" else group_advantages
            logp_ref = torch.log(self.pi_0)[arms]
            return flowrl_loss(logp, logp_old, logp_ref, self.log_z.expand(group), r,
                               reward_scale=self.flowrl_reward_scale, reduction="none")
        if self.method == "entadv":  # one decision: every sample's "token" entropy is the softmax's
            entropies = entropy(logp_all.exp()).expand(group)
            return entadv_loss(logp, logp_old, group_advantages, entropies, clip_eps=self.clip_eps,
                               reduction="none")
        if self.method == "clip-cov":
            return clip_cov_loss(logp, logp_old, group_advantages, generator=self.select_gen,
                                 clip_eps=self.clip_eps, reduction="none")
        return kl_cov_loss(logp, logp_old, group_advantages, reduction="none")

    def true_log_z(self, pi: torch.Tensor) -> float:
        """FlowRL: the log Z that zeroes its residual for groups drawn from pi, in the large-group
        limit: log sum_arms pi_0 exp(reward_scale r), r = A or (A - mean) / std with mean and std
        under pi."""
        r = self.advantages
        if self.settings.flowrl_reward != "raw":
            r = (r - (pi * r).sum()) / advantage_std(pi, r)
        return float(torch.logsumexp(torch.log(self.pi_0) + self.flowrl_reward_scale * r, 0))

    def metrics(self, pi: torch.Tensor, target: torch.Tensor) -> dict:
        """What a metrics file reports of this baseline at the end of training, at the policy pi:
        FlowRL's reward scale, its learned log Z, the true one for pi, and the true one at pi*
        (target)."""
        if self.method != "flowrl":
            return {}
        return {"flowrl_reward_scale": round(self.flowrl_reward_scale, 4),
                "log_z": round(float(self.log_z.detach()), 4),
                "true_log_z": round(self.true_log_z(pi), 4),
                "log_z_at_target": round(self.true_log_z(target), 4)}

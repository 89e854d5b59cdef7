"""DPG: LAD's objective with pi_old = pi_sft, estimated from the *current* policy's samples (the
distributional policy gradient of Parshakova et al. 2019 and Khalifa et al. 2021, "A Distributional
Approach to Controlled Text Generation", arXiv 2012.11635).

A short lesson before the code.

The same target, another sampler
--------------------------------
With pi_old frozen at pi_sft and f = -log x, Lemma 3.2's loss is, up to a constant,

    E_{y ~ pi_sft}[ exp(A(y)/eta) * (-log pi(y)) ]  =  Z * KL(pi* || pi) + const,
    pi* = pi_sft exp(A/eta) / Z

(lad_loss.py; exercise 13). Its gradient, -Z E_{pi*}[grad log pi], is an expectation under pi*,
and nothing says it must be estimated with pi_sft's samples (lad-fixed does that, and spends almost
all of them on answers pi* barely wants). Any sampler q with the same support will do, with the
importance weight pi_sft(y) / q(y). DPG takes q = the current policy, which moves towards pi* and so
samples more and more where pi* puts its mass. Z is unknown; dividing by the group's own sum of
weights estimates it (self-normalised importance sampling). For the G completions y_1..y_G of one
prompt:

    w_i = softmax_i( log pi_sft(y_i) - log q(y_i) + A_i / eta ),
    grad of the loss = -sum_i w_i grad log pi(y_i)

whose expectation, as G grows, is -E_{pi*}[grad log pi] = grad KL(pi* || pi): the forward KL from
the target, mass-covering, as lad-fixed with f = -log x. Only f = -log x: the weight of another
generator would need pi* itself, Z included, which the group only estimates (f-DPG, Go et al. 2023,
arXiv 2302.08215, needs an estimate of Z for them; we keep to -log x), so `--divergence` does not
reach this loss.

What self-normalising buys, and what it costs
---------------------------------------------
* Each prompt's weights sum to one (times G here: see below), whatever its A. lad-fixed's weight of
  a correct completion is exp(A+/eta), which for a hard prompt (p = 0.05: A+ = 4.4, e^17) dwarfs an
  easy prompt's (p = 0.9: e^1.3), and moves by orders of magnitude when p is estimated instead of
  known (--advantage-source sft-sampled). Here A enters only through the gap A_i - A_j between a
  prompt's own completions, which for a 0/1 reward is 1/std: at least 2 for the large-group A
  (--advantage-source sft), at least 1.87 for a group of 8's sample std, so exp(gap/eta) >= e^7.4 at
  1/eta = 4. The correct completions take almost all of the weight for any success rate, and an
  error in p barely moves the weights (tests/test_dpg_loss.py measures both).
* A constant A within a group (every completion right, or every one wrong, with --advantage-source
  group) cancels: the weights are then pi_sft / q normalised over the group, and the update is
  weighted maximum likelihood on the group's own completions, with total weight G. It raises their
  probability, spread in pi_sft's proportions among them: for an all-right group that is pi*'s
  shape; for an all-wrong group it pushes wrong completions up, the finite-G error of
  self-normalising (its expectation over groups is still the forward KL's gradient as G grows).
  Such groups are kept by default; drop_same_a (--dpg-same-a-groups drop) gives them weight 0.
* The estimate is biased at finite G (a ratio of two sample means): the expected update of a group
  of G is not the exact gradient, though the bias shrinks as 1/G. With the A that defines pi*
  (--advantage-source sft) it vanishes at pi = pi*, where every weight pi_sft exp(A/eta) / pi* = Z
  is the same: pi* is a fixed point at every G. With the group's own A (--advantage-source group)
  the tilt depends on the group, and the fixed point keeps pi*'s shape among the correct answers but
  not its P(correct) (tests/test_dpg_loss.py enumerates the groups of a small policy for both).

The loss is a sum over completions of -(G w_i) log pi(y_i): G w_i is 1 on average, so a completion's
weight has the scale of an advantage; with one Adam step per rollout the scale does not matter.
Sequence level throughout: log pi(y) is a completion's summed token log-probabilities.

    dpg_weights(logp_sampler, logp_prior, advantages, group_size, eta, drop_same_a)   G w_i, [batch]
    dpg_loss(logp, logp_sampler, logp_prior, advantages, group_size, eta, reduction, drop_same_a)
"""
import torch


def dpg_weights(logp_sampler: torch.Tensor, logp_prior: torch.Tensor, advantages: torch.Tensor,
                group_size: int, eta: float = 0.25, drop_same_a: bool = False) -> torch.Tensor:
    """G times the self-normalised importance weights of each completion within its group, [batch].

    logp_sampler: log q(y), the summed log-probability of each completion under the model that
    sampled it, [batch]. logp_prior: log pi_sft(y), the same under the frozen prior of pi*, [batch].
    advantages: A, [batch]. Rows come in consecutive groups of group_size per prompt (the layout of
    grpo_loss.group_advantages). All three are treated as constants. drop_same_a: a group whose
    completions all share one A gets weight 0 instead of pi_sft / q normalised over it."""
    if not eta > 0:  # also catches NaN
        raise ValueError(f"eta must be > 0, got {eta}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    for name, t in [("logp_prior", logp_prior), ("advantages", advantages)]:
        if t.shape != logp_sampler.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, logp_sampler "
                             f"{tuple(logp_sampler.shape)}: one value per completion each")
    if logp_sampler.dim() != 1 or len(logp_sampler) % group_size:
        raise ValueError(f"logp_sampler must be [batch] with batch a multiple of group_size "
                         f"{group_size}, got shape {tuple(logp_sampler.shape)}")
    # log of pi_sft(y) exp(A/eta) / q(y): pi*'s unnormalised mass over the sampler's
    log_w = (logp_prior - logp_sampler + advantages / eta).detach().view(-1, group_size)
    weights = group_size * torch.softmax(log_w, dim=1)
    if drop_same_a:
        groups = advantages.detach().view(-1, group_size)
        same = (groups == groups[:, :1]).all(1, keepdim=True)
        weights = torch.where(same, torch.zeros_like(weights), weights)
    return weights.view(-1)


def dpg_loss(logp: torch.Tensor, logp_sampler: torch.Tensor, logp_prior: torch.Tensor,
             advantages: torch.Tensor, group_size: int, eta: float = 0.25,
             reduction: str = "mean", drop_same_a: bool = False) -> torch.Tensor:
    """-sum_i (G w_i) log pi(y_i): the distributional policy gradient's loss (module docstring).

    logp: log pi_theta of each completion, summed over its tokens, [batch] (carries the gradient).
    The rest as in dpg_weights. reduction: "mean" over completions, "sum", or "none" ([batch])."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logp.shape != logp_sampler.shape:
        raise ValueError(f"logp has shape {tuple(logp.shape)}, logp_sampler "
                         f"{tuple(logp_sampler.shape)}: one value per completion each")
    loss = -dpg_weights(logp_sampler, logp_prior, advantages, group_size, eta, drop_same_a) * logp
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()

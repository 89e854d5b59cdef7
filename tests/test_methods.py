"""Tests of reasoning/methods.py: each method's loss value on a hand-made batch, the identity that
makes every method a policy gradient at ratio 1, the KL anchor each -kl method adds, and the logged
shares of clipped and past-target samples. And of reasoning.rollout.minibatches: whole groups, each
completion once per pass."""
import dataclasses
import math
import types

import pytest
import torch
import torch.nn.functional as F

import train_reasoning as tr
from cli.settings import parse_settings
from grpo_loss import group_advantages
from lad_loss import lad_loss
from reasoning.methods import BASELINES, MATCHING, METHODS, LossSettings, method_loss
from reasoning.rollout import minibatches

G = 4
ETA = 0.25


def args(**overrides):
    base = dict(eta=ETA, divergence="js", lad_ratio="sequence", clip_eps=0.2, kl_coef=0.7,
                kl_estimator="k2")
    return types.SimpleNamespace(**(base | overrides))


def hand_made_batch(seed: int = 0, shift: float = 0.0):
    """Two groups of G completions of unequal lengths (padding masked, one padded slot holding -inf
    as a trap), rewards with a mix of successes; logp differs from logp_old by `shift` per token."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([3, 5, 2, 4, 5, 1, 3, 4])
    mask = torch.arange(5) < lengths.unsqueeze(1)
    logp_old = torch.where(mask, -torch.rand(8, 5, generator=g) * 3, torch.zeros(8, 5))
    logp = torch.where(mask, logp_old + shift * torch.randn(8, 5, generator=g),
                       torch.full((8, 5), -float("inf")))
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    logp_ref = torch.where(mask, logp_old - 0.3 * torch.rand(8, 5, generator=g), torch.zeros(8, 5))
    batch = {"logp_old": logp_old, "mask": mask, "advantages": group_advantages(rewards, G),
             "logp_ref": logp_ref}
    return logp.requires_grad_(True), batch


def masked(logp, mask):
    return torch.where(mask, logp, torch.zeros_like(logp))


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_lad_loss_value_is_lad_loss_at_the_ratio_level_asked_for(lad_ratio):
    """Catches the two levels swapped, a dropped mask (the -inf padding would give inf or NaN), or
    another normalisation: the token form is lad_loss with the mask, the sequence form lad_loss on
    the masked sums, both summed and divided by the batch's number of completion tokens."""
    logp, batch = hand_made_batch(shift=0.3)
    loss, _ = method_loss("lad", logp, batch, args(lad_ratio=lad_ratio))
    mask, n_tokens = batch["mask"], batch["mask"].sum()
    if lad_ratio == "token":
        want = lad_loss(logp, batch["logp_old"], batch["advantages"], eta=ETA, mask=mask)
    else:
        want = lad_loss(masked(logp, mask).sum(1), batch["logp_old"].sum(1), batch["advantages"],
                        eta=ETA, reduction="sum") / n_tokens
    assert torch.isfinite(loss)
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    other = "sequence" if lad_ratio == "token" else "token"
    other_loss, _ = method_loss("lad", logp, batch, args(lad_ratio=other))
    assert float(loss.detach()) != pytest.approx(float(other_loss.detach()), rel=1e-3)


def test_lad_fixed_defaults_to_lemma_3_2s_sequence_ratio():
    assert tr.Settings().lad_ratio == "sequence"
    assert parse_settings(tr.Settings, []).lad_ratio == "sequence"


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
@pytest.mark.parametrize("method", ["grpo", "lad"])
def test_at_ratio_one_each_loss_is_a_policy_gradient_with_a_shaped_advantage(method, lad_ratio):
    """With one update per rollout the ratio is exactly 1 when the gradient is taken. Then GRPO's
    gradient is that of -sum A log pi(y) and LAD's that of -sum w log pi(y) with
    w = -f'(exp(-A/eta)), for JS 1/2 (softplus(A/eta) - log 2), at either ratio level (divided by
    the token count). A wrong shaped weight, the clip acting at ratio 1, or a sign flip changes the
    gradient."""
    logp, batch = hand_made_batch(shift=0.0)
    loss, stats = method_loss(method, logp, batch, args(lad_ratio=lad_ratio))
    (got,) = torch.autograd.grad(loss, logp)
    A = batch["advantages"]
    w = A if method == "grpo" else 0.5 * (F.softplus(A / ETA) - torch.log(torch.tensor(2.0)))
    reinforce = -(w * masked(logp, batch["mask"]).sum(1)).sum() / batch["mask"].sum()
    (want,) = torch.autograd.grad(reinforce, logp)
    assert torch.allclose(got, want, atol=1e-6)
    assert stats["abs_log_ratio"] == 0.0
    assert stats.get("clipped", 0.0) == 0.0 and stats.get("past_target", 0.0) == 0.0


@pytest.mark.parametrize("base", ["grpo", "lad"])
@pytest.mark.parametrize("estimator", ["k2", "k3"])
def test_the_kl_methods_add_beta_times_the_named_estimator_at_its_level(base, estimator):
    """k2 on each completion's summed log-ratio, k3 on each token; beta = kl_coef; divided by the
    token count like the policy term, so the balance is E[A] - beta KL. Catches k2 applied per
    token, the estimators swapped, a penalty without beta, or a reference that gets a gradient."""
    logp, batch = hand_made_batch(shift=0.2)
    # float64: LAD's term is weighted by exp(A/eta), and the penalty is read off as a difference.
    logp = logp.detach().double().requires_grad_(True)
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
    batch["logp_ref"].requires_grad_(True)
    a = args(kl_estimator=estimator)
    anchored, _ = method_loss(f"{base}-kl", logp, batch, a)
    plain, _ = method_loss(base, logp, batch, a)
    mask = batch["mask"]
    if estimator == "k2":
        d = masked(logp, mask).sum(1) - batch["logp_ref"].sum(1)
        penalty = (0.5 * d**2).sum()
    else:
        r = (batch["logp_ref"] - logp)[mask]
        penalty = (r.exp() - r - 1).sum()
    want = 0.7 * float(penalty.detach()) / float(mask.sum())
    assert float((anchored - plain).detach()) == pytest.approx(want, rel=1e-9)
    anchored.backward()
    assert batch["logp_ref"].grad is None


def test_the_logged_shares_count_clipped_and_past_target_samples_on_a_hand_made_batch():
    """Four completions of one token each, two with A > 0 and two with A < 0, and chosen log-ratios.
    GRPO (clip 0.2): clipped where the ratio is past 1 + 0.2 with A > 0 or below 1 - 0.2 with A < 0.
    LAD: x = ratio / exp(A/eta) above 1, and the weight's sign opposite to A's past the target."""
    A = torch.tensor([1.0, 1.0, -1.0, -1.0])
    u = torch.tensor([0.5, -0.5, -0.5, 0.5])  # log-ratios: each past the clip, on either side
    mask = torch.ones(4, 1, dtype=torch.bool)
    batch = {"logp_old": torch.zeros(4, 1), "mask": mask, "advantages": A}
    _, grpo = method_loss("grpo", u.view(4, 1), batch, args())
    # Clipped: the first (A > 0, e^0.5 > 1.2) and the third (A < 0, e^-0.5 < 0.8). The other two are
    # past the clip on the side A does not push, where the unclipped term is the minimum and the
    # gradient flows.
    assert grpo["clipped"] == pytest.approx(2 / 4)
    # LAD at eta = 0.25: log x = u - 4A. Completion 1: 0.5 - 4 < 0; 3: -0.5 + 4 > 0 (above target,
    # weight < 0, same sign as A); to pass the target, A = +1 needs u > 4 and A = -1 needs u < -4.
    u_lad = torch.tensor([4.5, 0.1, -4.5, 0.1])
    _, lad = method_loss("lad", u_lad.view(4, 1), batch, args(lad_ratio="token"))
    # completions 1 (4.5 - 4 > 0) and 4 (0.1 + 4)
    assert lad["above_target"] == pytest.approx(2 / 4)
    # 1 (A > 0, weight < 0) and 3 (A < 0, weight > 0)
    assert lad["past_target"] == pytest.approx(2 / 4)
    assert lad["abs_log_ratio"] == pytest.approx(float(u_lad.abs().mean()))


@pytest.mark.parametrize("method", ["grpo", "grpo-kl", "entadv", "clip-cov"])
def test_the_clipped_share_compares_the_log_ratio_with_log_one_plus_or_minus_clip_eps(method):
    """The clip acts on the ratio e^u: past 1 + 0.2 is u > log 1.2 = 0.182, below 1 - 0.2 is
    u < log 0.8 = -0.223. Log-ratios between those and +-0.2 tell the two apart: a share measured
    against u > clip_eps and u < -clip_eps would miss the first two completions (ratio 1.209 > 1.2,
    A > 0: clipped) and count the third (ratio 0.811 > 0.8, A < 0: not clipped): 1/4, not 2/4."""
    A = torch.tensor([1.0, 1.0, -1.0, -1.0])
    u = torch.tensor([0.19, 0.19, -0.21, 0.0])
    assert math.log(1.2) < 0.19 < 0.2 and -0.2 > -0.21 > math.log(0.8)
    batch = {"logp_old": torch.zeros(4, 1), "mask": torch.ones(4, 1, dtype=torch.bool),
             "advantages": A, "logp_ref": torch.zeros(4, 1)}
    _, stats = method_loss(method, u.view(4, 1), batch, args(), entropy=torch.zeros(4, 1),
                           cov_gen=torch.Generator().manual_seed(0))
    assert stats["clipped"] == pytest.approx(2 / 4)


def test_flowrl_logs_its_log_ratio_per_token_as_its_loss_reads_it():
    """FlowRL's residual is per token (the means over each completion's tokens), so its logged
    |log ratio| is the mean over tokens: here (0.1 + 0.1 + 0.2 + 0.2 + 0.3) / 5 = 0.18. Taken per
    completion it would be (|0.1 - 0.1| + |0.2 + 0.2 + 0.3|) / 2 = 0.35."""
    mask = torch.tensor([[True, True, False], [True, True, True]])
    u = torch.tensor([[0.1, -0.1, 0.0], [0.2, 0.2, 0.3]])
    batch = {"logp_old": torch.zeros(2, 3), "mask": mask, "advantages": torch.tensor([1.0, -1.0]),
             "logp_ref": torch.zeros(2, 3)}
    _, stats = method_loss("flowrl", u, batch, args(flowrl_reward_scale=4.0), log_z=torch.zeros(2))
    assert stats == {"abs_log_ratio": pytest.approx(0.18)}


def test_every_method_is_known_to_the_command_line_and_the_five_are_the_default():
    every = parse_settings(tr.Settings, ["--methods", *METHODS, *BASELINES])
    assert every.methods == list(METHODS + BASELINES)
    assert parse_settings(tr.Settings, []).methods == list(METHODS)


@pytest.mark.parametrize("n_minibatches", [1, 2, 4])
def test_minibatches_keep_groups_whole_and_use_every_completion_once_per_pass(n_minibatches):
    n_prompts = 4
    rows = torch.arange(n_prompts * G)
    batch = {"ns": list(range(n_prompts)), "row": rows, "group": rows // G,
             "advantages": torch.randn(n_prompts * G)}
    parts = minibatches(batch, n_minibatches, G, torch.Generator().manual_seed(0))
    assert len(parts) == n_minibatches
    seen = torch.cat([p["row"] for p in parts])
    assert sorted(seen.tolist()) == rows.tolist(), "every completion once per pass"
    for p in parts:
        groups = p["group"].view(-1, G)
        assert (groups == groups[:, :1]).all(), "a group's completions stay together, in order"
        assert torch.equal(p["advantages"], batch["advantages"][p["row"]]), \
            "each tensor keeps its rows aligned"
    if n_minibatches > 1:
        other = minibatches(batch, n_minibatches, G, torch.Generator().manual_seed(1))
        assert not all(torch.equal(x["row"], y["row"]) for x, y in zip(parts, other)), \
            "the order is shuffled"


def test_each_baseline_is_its_loss_file_summed_and_divided_by_the_token_count():
    """The GPT runs the baselines through the same normalisation as the other methods; a method
    that called another loss, dropped the entropy or the generator, or averaged otherwise would
    differ."""
    from baselines.cov_loss import clip_cov_loss, kl_cov_loss
    from baselines.entadv_loss import entadv_loss
    from baselines.flowrl_loss import flowrl_loss

    logp, batch = hand_made_batch(shift=0.3)
    mask, A, old = batch["mask"], batch["advantages"], batch["logp_old"]
    n = mask.sum()
    entropy = torch.rand(mask.shape, generator=torch.Generator().manual_seed(3)) * mask
    log_z = torch.tensor([0.3, -0.2] * 4, requires_grad=True)
    a = args(flowrl_reward_scale=4.0)
    gen = lambda: torch.Generator().manual_seed(5)
    clean = masked(logp, mask)
    want = {
        "entadv": entadv_loss(clean, old, A, entropy, mask=mask, reduction="sum"),
        "clip-cov": clip_cov_loss(clean, old, A, gen(), mask=mask, reduction="sum"),
        "kl-cov": kl_cov_loss(clean, old, A, mask=mask, reduction="sum"),
        "flowrl": flowrl_loss(clean, old, batch["logp_ref"], log_z, A, reward_scale=4.0, mask=mask,
                              reduction="sum"),
    }
    for method, value in want.items():
        got, _ = method_loss(method, logp, batch, a, entropy=entropy, log_z=log_z, cov_gen=gen())
        want_value = float(value.detach()) / float(n)
        assert float(got.detach()) == pytest.approx(want_value, rel=1e-6), method
    got, _ = method_loss("flowrl", logp, batch, a, log_z=log_z)
    (grad,) = torch.autograd.grad(got, log_z)
    assert grad.abs().sum() > 0, "FlowRL's log Z is trained by the loss"


def test_kl_cov_is_unclipped_grpo_at_ratio_one_when_log_pi_old_is_the_losss_own():
    logp, batch = hand_made_batch(shift=0.0)
    kl_cov, _ = method_loss("kl-cov", logp, batch, args())
    grpo, _ = method_loss("grpo", logp, batch, args())
    assert torch.equal(torch.autograd.grad(kl_cov, logp)[0], torch.autograd.grad(grpo, logp)[0])


@pytest.mark.parametrize("method", METHODS + BASELINES + MATCHING)
def test_each_method_reads_only_the_settings_its_module_declares(method):
    """A loss that reads a setting LossSettings does not list (a reader of methods.py could not see
    that it needs it) fails here with an AttributeError: every method runs on exactly the declared
    fields, and train_reasoning.Settings has each of them."""
    declared = list(LossSettings.__annotations__)
    assert set(declared) <= {f.name for f in dataclasses.fields(tr.Settings)}
    settings = types.SimpleNamespace(**{k: getattr(tr.Settings(), k) for k in declared})
    settings.group_size = G
    logp, batch = hand_made_batch(shift=0.3)
    entropy = torch.rand(batch["mask"].shape, generator=torch.Generator().manual_seed(3))
    loss, _ = method_loss(method, logp, batch, settings, entropy=entropy,
                          log_z=torch.zeros(8), cov_gen=torch.Generator().manual_seed(5))
    assert torch.isfinite(loss)

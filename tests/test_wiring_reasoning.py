"""The GPT chapter's wiring, run end to end on a tiny model: what train_reasoning.py hands the
sample-free methods and the losses (the eta of pi*, the --advantage-source sft-sampled rates, the
anchor's log-probabilities, the mini-batch order), and how it logs an iteration's statistics.
Each test names the kind of bug it catches."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

import train_reasoning as tr
from reasoning import sample_free
from reasoning.arithmetic import SumTask
from reasoning.evaluation import answer_probabilities, targets_of
from reasoning.methods import method_loss
from reasoning.sample_free import sample_free_iteration, sample_free_loss
from reasoning.rollout import (SFT_SUCCESS_SAMPLES, minibatches, sample_rollout, sampled_success,
                               sft_advantages)
from tiny_lm import GPT, GPTConfig

TASK = SumTask()


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=len(TASK.chars), block_size=TASK.PROMPT_LEN + TASK.MAX_COMPLETION,
                       n_layer=1, n_head=2, n_embd=16)
    return GPT(config)


def tiny_settings(**overrides) -> tr.Settings:
    base = dict(n_embd=16, n_head=2, prompts_per_iteration=3, group_size=4, device="cpu",
                workers=1)
    return tr.Settings(**(base | overrides))


class OddFirstDigitTask(SumTask):
    """The task with a verifier an untrained model passes about a third of the time (the answer
    starts with an odd digit), so that success rates, rewards and advantages are not all 0."""

    def __init__(self, *ns):
        super().__init__()
        self.train_n = list(ns)

    def is_correct(self, n: int, completion: str) -> bool:
        return completion[:1] in "13579"


@pytest.fixture
def sft_path(tmp_path):
    return tiny_gpt().save(tmp_path / "sft.pt")


def train_recording(monkeypatch, method, task, sft_path, seed=0, **overrides) -> dict:
    """train_rl with the held-out evaluation stubbed out, recording each method_loss call (the
    policy's log-probabilities, the batch, the statistics it returned) and what the evaluation was
    handed as pi*."""
    record = {"calls": [], "eval_targets": []}

    def recording_loss(method, logp, batch, *args, **kwargs):
        loss, stats = method_loss(method, logp, batch, *args, **kwargs)
        record["calls"].append((logp.detach().clone(), {k: v.clone() if torch.is_tensor(v) else v
                                                        for k, v in batch.items()}, stats))
        return loss, stats

    def no_evaluation(model, task, ns, k, seed, targets, sft_model):
        record["eval_targets"].append(targets)
        return {"exact_accuracy": 0.0, "effective_correct": 1.0, "tv_to_target": 1.0}

    monkeypatch.setattr(tr, "method_loss", recording_loss)
    monkeypatch.setattr(tr, "evaluate", no_evaluation)
    record["run"] = tr.train_rl(method, task, tiny_settings(**overrides), seed, sft_path)
    return record


# ---------------------------------------------------------------------------------------------
# The sample-free methods (reasoning/sample_free.py) and how train_reasoning.py runs them.
# ---------------------------------------------------------------------------------------------

def test_a_sample_free_loss_is_a_kl_summed_over_a_prompts_outcomes_and_averaged_over_prompts():
    """distil is the cross-entropy H(pi*, pi) = KL(pi* || pi) + H(pi*) of each prompt, exact is
    KL(pi || pi*), and the step's loss is their mean over the prompts. Two prompts with 3 and 7
    outcomes: a mean over a prompt's outcomes instead of their sum, a sum over prompts, or one
    mean over all the outcomes pooled would each give another number."""
    gen = torch.Generator().manual_seed(0)
    sizes = (3, 7)
    logps = [torch.log_softmax(torch.randn(n, generator=gen, dtype=torch.float64), 0)
             for n in sizes]
    targets = [torch.softmax(2 * torch.randn(n, generator=gen, dtype=torch.float64), 0)
               for n in sizes]
    pi = [Categorical(logits=lp) for lp in logps]
    pi_star = [Categorical(probs=t) for t in targets]
    distil = [kl_divergence(s, p) + s.entropy() for p, s in zip(pi, pi_star)]
    exact = [kl_divergence(p, s) for p, s in zip(pi, pi_star)]
    for method, per_prompt in [("distil", distil), ("exact", exact)]:
        assert abs(float(per_prompt[0] - per_prompt[1])) > 0.1, "the prompts must differ"
        want = float(sum(per_prompt)) / 2
        assert float(sample_free_loss(method, logps, targets)) == pytest.approx(want, rel=1e-12)


def test_a_sample_free_step_logs_the_exact_p_correct_of_the_prompts_it_trained_on(monkeypatch):
    """The accuracy a sample-free method logs is the mean over the step's prompts of the model's
    exact P(correct) = 1 - P(anything else), before the step (as a rollout's reward is its batch's).
    Logging P(anything else), one answer's probability, a sum over the prompts, or the accuracy of
    every training prompt would each give another number."""
    model = tiny_gpt(1)
    before = tiny_gpt(1)
    asked = []
    outcome_logprobs = sample_free.outcome_logprobs

    def recording(model, task, ns):
        asked.append(list(ns))
        return outcome_logprobs(model, task, ns)

    monkeypatch.setattr(sample_free, "outcome_logprobs", recording)
    targets = [torch.full((n,), 1.0 / n, dtype=torch.float64) for n in TASK.train_n]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    stats = sample_free_iteration("distil", model, optimizer, TASK, 5,
                                torch.Generator().manual_seed(3), targets)
    ns = asked[0]  # the prompts the step trained on
    assert len(set(ns)) > 1, "the test needs several prompts"
    accuracy = [float(p.sum()) for p in answer_probabilities(before, TASK, ns)]
    assert stats["p_correct"] == pytest.approx(np.mean(accuracy), rel=1e-6)
    after = [float(p.sum()) for p in answer_probabilities(model, TASK, ns)]
    assert np.mean(after) != pytest.approx(np.mean(accuracy), rel=1e-2), "the step must move it"


def test_the_sample_free_methods_train_on_pi_star_built_with_eta_and_log_their_exact_accuracy(
        sft_path, monkeypatch):
    """train_rl hands a sample-free method pi* of every training prompt at --eta (pi_sft exp(A/eta)
    / Z), the pi* the held-out evaluation measures against, and logs the step's exact P(correct) as
    its reward. --kl-coef and --flowrl-reward-scale are set apart from eta here, so that a target
    built with either (or with a fixed 0.25) is another distribution."""
    task = OddFirstDigitTask(12, 37, 50)
    handed = []

    def recording(method, policy, optimizer, task, n_prompts, prompt_gen, train_targets):
        handed.append(train_targets)
        stats = sample_free_iteration(method, policy, optimizer, task, n_prompts, prompt_gen,
                                    train_targets)
        handed.append(stats)
        return stats

    monkeypatch.setattr(tr, "sample_free_iteration", recording)
    record = train_recording(monkeypatch, "distil", task, sft_path, iterations=2, eta=0.5,
                             kl_coef=0.25, flowrl_reward_scale=1.0)
    sft_model = GPT.load(sft_path)
    want = targets_of(sft_model, task, task.train_n, 0.5)
    other = targets_of(sft_model, task, task.train_n, 0.25)
    assert (want[0].log() - other[0].log()).abs().max() > 1, "the test needs eta to matter"
    for train_targets in handed[::2]:
        assert all(torch.equal(t, w) for t, w in zip(train_targets, want))
    heldout = targets_of(sft_model, task, task.heldout_n, 0.5)
    for targets in record["eval_targets"]:
        assert all(torch.equal(t, w) for t, w in zip(targets, heldout))
    history = record["run"]["history"]
    assert history["reward"] == [stats["p_correct"] for stats in handed[1::2]]
    assert history["steps"]["loss"] == [stats["loss"] for stats in handed[1::2]]


# ---------------------------------------------------------------------------------------------
# --advantage-source sft-sampled and sampled_success.
# ---------------------------------------------------------------------------------------------

def test_sft_sampled_advantages_reach_the_loss_from_the_sampled_rates_unshifted_on_their_own_stream(
        sft_path, monkeypatch):
    """--advantage-source sft-sampled gives each completion the large-group (A+, A-) of its prompt's
    success rate as estimated from 64 SFT samples, drawn before RL from a stream of their own
    (seed + 4: the run's four streams use seed to seed + 3), not shifted as sft-normalised is.
    A run that fell back to the exact rate, to the group's advantages, that shifted them, or that
    drew the samples from the global RNG or from the rollout's sample stream reports another
    experiment under this one's name. With the global RNG reseeded, the numbers must not move."""
    task = OddFirstDigitTask(12, 37, 50)
    seed = 5
    torch.manual_seed(0)
    first = train_recording(monkeypatch, "grpo", task, sft_path, seed, iterations=1,
                            advantage_source="sft-sampled")
    torch.manual_seed(1)
    again = train_recording(monkeypatch, "grpo", task, sft_path, seed, iterations=1,
                            advantage_source="sft-sampled")
    ((_, batch, _),), ((_, batch_again, _),) = first["calls"], again["calls"]
    assert torch.equal(batch["advantages"], batch_again["advantages"])

    sft_model = GPT.load(sft_path)
    rates = sampled_success(sft_model, task, torch.Generator().manual_seed(seed + 4))
    table = sft_advantages(sft_model, task, 0.25, success=rates)
    rows_n = [task.train_n[i] for i in batch["prompt_index"].tolist()]
    want = torch.tensor([table[n][0 if r else 1]
                         for n, r in zip(rows_n, batch["rewards"].tolist())])
    assert torch.equal(batch["advantages"], want)
    assert 0 < batch["rewards"].mean() < 1, "the test needs both A+ and A-"
    # Each of those other sources would give other numbers here.
    others = [sampled_success(sft_model, task, torch.Generator().manual_seed(seed + 1)),
              [float(p.sum()) for p in answer_probabilities(sft_model, task, task.train_n)]]
    assert all(other != pytest.approx(rates, abs=1e-9) for other in others)
    shifted = sft_advantages(sft_model, task, 0.25, success=rates, normalised=True)
    assert all(shifted[n] != pytest.approx(table[n]) for n in task.train_n)


class ScriptedSFT(torch.nn.Module):
    """Stands in for the SFT GPT in sampled_success: for prompt n it writes `correct[n]` correct
    answers of n among its k samples, spread over the group, the others wrong for n (and correct
    for n + 1, so that a sample scored against a neighbouring prompt counts differently)."""

    def __init__(self, correct: dict):
        super().__init__()
        self.correct = correct
        self.lm_head = torch.nn.Linear(1, 1)

    def sample(self, prompts, max_new_tokens, end_token, num_samples, generator=None):
        texts = []
        for row in prompts.tolist():
            n = int(TASK.decode(row)[:-1])
            good = set(range(num_samples - 1, -1, -2)[: self.correct[n]])  # from the group's end
            texts += [f"1+{n - 1}." if j in good else f"1+{n}." for j in range(num_samples)]
        completions, mask = TASK.completions(texts)
        return completions, torch.zeros(completions.shape), mask


def test_sampled_success_counts_each_prompts_own_samples_and_scores_them_against_it():
    """Prompt n's rate is (its correct samples + 1/2) / (k + 1), counted among the k samples of n
    only, each verified against n. Counting strided rows (another prompt's samples), scoring a
    sample against another prompt, or dividing by k would each give other rates."""
    task = SumTask()
    task.train_n = [12, 13, 37, 50]
    correct = {12: 1, 13: 4, 37: 0, 50: 3}
    k = 8
    rates = sampled_success(ScriptedSFT(correct), task, torch.Generator(), k=k)
    assert rates == pytest.approx([(correct[n] + 0.5) / (k + 1) for n in task.train_n], rel=1e-12)
    assert SFT_SUCCESS_SAMPLES == 64  # the documented default (reasoning/rollout.py)


# ---------------------------------------------------------------------------------------------
# A rollout's anchor, and the mini-batch order.
# ---------------------------------------------------------------------------------------------

def test_a_rollouts_anchor_log_probabilities_come_from_the_reference_not_the_sampler():
    """logp_ref is the frozen reference's log pi_sft of the sampled tokens. Scored by the sampler
    instead (which is the policy, and equals pi_sft only before the first step), the KL penalty
    would measure the policy against itself and vanish."""
    sampler, reference = tiny_gpt(2), tiny_gpt(3)
    rollout = sample_rollout(sampler, TASK, 3, 4, torch.Generator().manual_seed(0),
                             torch.Generator().manual_seed(1), reference)
    tokens = rollout["prompts"], rollout["completions"], rollout["mask"]
    with torch.no_grad():
        assert torch.equal(rollout["logp_ref"], reference.completion_logprobs(*tokens))
        assert not torch.allclose(rollout["logp_ref"], sampler.completion_logprobs(*tokens))


def test_an_anchored_run_scores_every_rollout_with_pi_sft_after_the_policy_has_moved(
        sft_path, monkeypatch):
    """grpo-kl's second rollout: the policy (its sampler) has taken a step, and the anchor must
    still be pi_sft's log-probabilities of the new tokens, not the policy's. --advantage-source sft:
    every completion has A != 0, so the first step moves the policy."""
    record = train_recording(monkeypatch, "grpo-kl", TASK, sft_path, iterations=2,
                             advantage_source="sft")
    (_, _, _), (logp, second, _) = record["calls"]
    tokens = second["prompts"], second["completions"], second["mask"]
    with torch.no_grad():
        assert torch.equal(second["logp_ref"], GPT.load(sft_path).completion_logprobs(*tokens))
    assert torch.equal(second["logp_old"], logp), "the policy samples its own rollout"
    assert not torch.allclose(second["logp_ref"], second["logp_old"]), "the policy has moved"


def test_the_minibatch_order_comes_from_its_own_generator_not_the_global_rng():
    """Two equally seeded shuffle generators give the same order whatever the global RNG's state,
    and shuffling draws nothing from the global RNG: a randperm without `generator=` would make
    every run's order depend on whatever ran before it."""
    G = 2
    rollout = {"ns": list(range(6)), "rows": torch.arange(12)}
    orders = []
    for global_seed, shuffle_seed in [(0, 7), (1, 7), (0, 8)]:
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        batches = minibatches(rollout, 3, G, torch.Generator().manual_seed(shuffle_seed))
        assert torch.equal(torch.get_rng_state(), state), "the global RNG was drawn from"
        orders.append(torch.cat([b["rows"] for b in batches]).tolist())
    assert orders[0] == orders[1]
    assert orders[0] != orders[2], "the test needs the shuffle seed to matter"
    assert sorted(orders[0]) == list(range(12))


def test_shuffling_the_minibatches_moves_neither_the_prompts_nor_the_samples_of_later_rollouts(
        sft_path, monkeypatch):
    """With --minibatches 3 the order is shuffled by its own stream: the rollouts (prompts and
    completions) are those of --minibatches 1, and the order does not depend on the global RNG.
    lr 0, so that the policy, and so the samples, do not move."""
    def rollouts(minibatches, global_seed):
        torch.manual_seed(global_seed)
        record = train_recording(monkeypatch, "grpo", TASK, sft_path, iterations=3, lr=1e-30,
                                 minibatches=minibatches, prompts_per_iteration=6)
        return [batch for _, batch, _ in record["calls"]]

    one = rollouts(1, 0)
    three, three_again = rollouts(3, 0), rollouts(3, 1)
    assert len(one) == 3 and len(three) == 9
    for i, rollout in enumerate(one):
        batches = three[3 * i: 3 * i + 3]
        rows = torch.cat([b["prompt_index"] for b in batches])
        assert sorted(rows.tolist()) == sorted(rollout["prompt_index"].tolist())
        pairs = {(p, tuple(c)) for b in batches
                 for p, c in zip(b["prompt_index"].tolist(), b["completions"].tolist())}
        assert pairs == {(p, tuple(c)) for p, c in zip(rollout["prompt_index"].tolist(),
                                                       rollout["completions"].tolist())}
    assert any(not torch.equal(torch.cat([b["prompt_index"] for b in three[3 * i: 3 * i + 3]]),
                               one[i]["prompt_index"]) for i in range(3)), "nothing was shuffled"
    for a, b in zip(three, three_again):
        assert torch.equal(a["prompt_index"], b["prompt_index"])
        assert torch.equal(a["completions"], b["completions"])


# ---------------------------------------------------------------------------------------------
# What an iteration logs.
# ---------------------------------------------------------------------------------------------

def test_an_iterations_logged_statistic_is_the_mean_over_its_steps(sft_path, monkeypatch):
    """With --epochs 2 an iteration takes two steps: |log ratio| is 0 at the first (the policy is
    pi_old) and not at the second. The history holds their mean, per iteration; the first step's
    or the last step's value alone would say the brake acted never or twice as often."""
    record = train_recording(monkeypatch, "lad", TASK, sft_path, iterations=2, epochs=2,
                             advantage_source="sft")
    steps = [stats for _, _, stats in record["calls"]]
    assert len(steps) == 4
    assert steps[0]["abs_log_ratio"] == 0.0 < steps[1]["abs_log_ratio"]
    history = record["run"]["history"]["steps"]
    for name in ("abs_log_ratio", "above_target", "past_target"):
        want = [np.mean([steps[2 * i][name], steps[2 * i + 1][name]]) for i in range(2)]
        assert history[name] == pytest.approx(want, rel=1e-12), name


@pytest.mark.parametrize("method, lad_ratio", [("lad", "sequence"), ("lad-fixed", "sequence"),
                                               ("lad", "token"), ("grpo", "sequence")])
def test_the_logged_shares_leave_out_completions_whose_advantage_is_zero(method, lad_ratio):
    """A completion with A = 0 is not pushed either way: the shares (above the target, past it,
    clipped) and the mean |log ratio| are over the others. Two rows with A = 0 and a large ratio
    that would count as above the target (and past the clip) if they were included."""
    settings = SimpleNamespace(eta=0.25, divergence="js", lad_ratio=lad_ratio, clip_eps=0.2,
                               kl_coef=0.25, kl_estimator="k2", flowrl_reward_scale=4.0)
    u = torch.tensor([0.5, -5.0, 2.0, 3.0])  # each completion's summed log ratio
    A = torch.tensor([1.0, -1.0, 0.0, 0.0])
    logp_old = torch.full((4, 2), -3.0)
    logp = logp_old + u.unsqueeze(1) / 2
    batch = {"logp_old": logp_old, "advantages": A, "mask": torch.ones(4, 2, dtype=torch.bool)}
    _, stats = method_loss(method, logp, batch, settings)
    moving = {"logp_old": logp_old[:2], "advantages": A[:2], "mask": batch["mask"][:2]}
    _, want = method_loss(method, logp[:2], moving, settings)
    assert stats == pytest.approx(want, rel=1e-6)
    _, counted = method_loss(method, logp, batch | {"advantages": A + 1e-6}, settings)
    assert counted != pytest.approx(want, rel=1e-3), "the rows with A = 0 must change the shares"

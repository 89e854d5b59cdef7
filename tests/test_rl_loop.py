"""Tests of the GPT chapter's RL iteration (train_reasoning.rl_iteration and train_rl,
reasoning/rollout.py) and its measurements (reasoning/evaluation.py): that each method's update
points the right way, that rewards and advantages belong to the completions they score, which model
samples and which anchors, where log pi_old comes from, FlowRL's log Z and beta, and the target pi*
with its exact distance, the frontier and the spread over seeds."""
import copy
import math

import numpy as np
import pytest
import torch

import train_reasoning as tr
from cli.settings import parse_settings
from grpo_loss import group_advantages
from reasoning import evaluation
from reasoning.arithmetic import SumTask
from reasoning.methods import BASELINES, METHODS, USES_REFERENCE, method_loss, rl_models
from reasoning.rollout import RandomStreams, sampled_success, sft_advantages
from tiny_lm import GPT, GPTConfig

TASK = SumTask()


def small_settings(**overrides) -> tr.Settings:
    base = dict(n_embd=32, n_head=2, prompts_per_iteration=3, group_size=4, device="cpu")
    return tr.Settings(**(base | overrides))


def small_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=len(TASK.chars), block_size=TASK.PROMPT_LEN + TASK.MAX_COMPLETION,
                       n_layer=1, n_head=2, n_embd=32)
    return GPT(config)


def task_with_prompts(*ns) -> SumTask:
    """The arithmetic task, with these training prompts only."""
    task = SumTask()
    task.train_n = list(ns)
    return task


class ScriptedSampler:
    """Stands in for the GPT that samples a rollout: for prompt n it writes texts_of(n), one text
    per completion of the group, and scores them with `model` (log pi_old), or 0 without one."""

    def __init__(self, texts_of, model: GPT | None = None):
        self.texts_of, self.model = texts_of, model

    def sample(self, prompts, max_new_tokens, end_token, num_samples, generator=None):
        texts = []
        for row in prompts.tolist():
            texts += self.texts_of(int(TASK.decode(row)[:-1]))[:num_samples]
        completions, mask = TASK.completions(texts)
        return completions, torch.zeros(completions.shape), mask

    def completion_logprobs(self, prompts, completions, mask):
        if self.model is None:
            return torch.zeros(completions.shape)
        return self.model.completion_logprobs(prompts, completions, mask)


def right_then_wrong(n: int) -> list[str]:
    """Correct, wrong (a correct answer of n + 1), correct, wrong, ...: four completions of n."""
    return [f"1+{n - 1}.", f"1+{n}."] * 2


def sequence_logp(model: GPT, rollout: dict) -> torch.Tensor:
    with torch.no_grad():
        tokens = rollout["prompts"], rollout["completions"], rollout["mask"]
        return model.completion_logprobs(*tokens).sum(1)


# ---------------------------------------------------------------------------------------------
# One iteration on a scripted rollout: what it verifies, which advantages it gives, where it steps.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
@pytest.mark.parametrize("method", METHODS + BASELINES)
def test_one_update_raises_the_rewarded_completion_and_lowers_the_unrewarded_one(method, lad_ratio):
    """Catches a flipped sign anywhere in a method's loss (policy term or its wiring into the step).
    One group of two completions of "37=", the first correct; pi_old and pi_sft are the policy's
    weights, as at the start of RL. Plain SGD with a small step, so the change follows the gradient
    to first order."""
    policy = small_model()
    frozen = copy.deepcopy(policy).requires_grad_(False)
    sampler = ScriptedSampler(lambda n: ["12+25.", "9+9."], frozen)
    log_z = torch.zeros(1, requires_grad=True) if method == "flowrl" else None
    params = list(policy.parameters()) + ([log_z] if log_z is not None else [])
    settings = small_settings(prompts_per_iteration=1, group_size=2, lad_ratio=lad_ratio)
    pi_ref = frozen if method in USES_REFERENCE else None
    optimizer = torch.optim.SGD(params, lr=0.05)
    rollout, _ = tr.rl_iteration(method, policy, sampler, pi_ref, optimizer,
                                 task_with_prompts(37), settings, RandomStreams.seeded(0),
                                 log_z=log_z)
    assert rollout["advantages"][0] > 0 > rollout["advantages"][1]
    before, after = sequence_logp(frozen, rollout), sequence_logp(policy, rollout)
    assert after[0] > before[0] + 1e-4, "the rewarded completion should become more likely"
    assert after[1] < before[1] - 1e-4, "the unrewarded completion should become less likely"


def test_each_completion_is_scored_against_its_own_prompt_and_normalised_by_group():
    """Rows come in groups of G per prompt. A completion verified against another row's prompt (by
    i % n_prompts instead of i // G, say) gets another reward; advantages are normalised within
    each group, not just centred."""
    settings = small_settings(prompts_per_iteration=5, group_size=4)
    optimizer = torch.optim.SGD(small_model().parameters(), lr=0.0)
    rollout, _ = tr.rl_iteration("grpo", small_model(), ScriptedSampler(right_then_wrong), None,
                                 optimizer, TASK, settings, RandomStreams.seeded(0))
    G = settings.group_size
    assert len(set(rollout["ns"])) > 1, "the test needs several distinct prompts"
    assert rollout["rewards"].tolist() == [1.0, 0.0] * (len(rollout["ns"]) * G // 2)
    rows = zip(rollout["prompts"].tolist(), rollout["completions"].tolist())
    for i, (prompt, completion) in enumerate(rows):
        n = rollout["ns"][i // G]
        assert TASK.decode(prompt) == f"{n}=", "prompt rows must line up with their completions"
        assert TASK.decode(completion) in (f"1+{n - 1}.", f"1+{n}.")
        assert TASK.train_n[int(rollout["prompt_index"][i])] == n, "log Z's index: the row's prompt"
    assert torch.allclose(rollout["advantages"], group_advantages(rollout["rewards"], G))
    # normalised, not just centred: (1 - 0.5) / std([1, 0, 1, 0]) with the sample std
    assert rollout["advantages"][0] == pytest.approx(0.5 / math.sqrt(1 / 3), rel=1e-5)


def test_fixed_advantages_give_a_plus_to_a_correct_completion_of_its_own_prompt():
    """--advantage-source sft: each completion gets its prompt's (A+, A-), A+ when it is correct. A
    table with a different pair per prompt catches A+ and A- swapped, and a row given another
    prompt's pair."""
    table = {n: (1 + n / 100, -1 - n / 1000) for n in TASK.train_n}
    settings = small_settings(prompts_per_iteration=5, group_size=4)
    optimizer = torch.optim.SGD(small_model().parameters(), lr=0.0)
    rollout, _ = tr.rl_iteration("grpo", small_model(), ScriptedSampler(right_then_wrong), None,
                                 optimizer, TASK, settings, RandomStreams.seeded(0),
                                 fixed_advantages=table)
    assert len(set(rollout["ns"])) > 1, "the test needs several distinct prompts"
    want = [table[n][0 if j % 2 == 0 else 1] for n in rollout["ns"] for j in range(4)]
    assert rollout["advantages"].tolist() == pytest.approx(want, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# train_rl's wiring: the advantages a flag asks for, and the model that samples.
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def sft_path(tmp_path):
    return small_model().save(tmp_path / "sft.pt")


def run_recording(monkeypatch, method: str, sft_path, **overrides) -> list:
    """train_rl of `method` from the checkpoint at sft_path, recording each method_loss call: (the
    policy's log-probabilities at that step, the batch). The held-out evaluation is skipped."""
    calls = []

    def recording(method, logp, batch, *args, **kwargs):
        calls.append((logp.detach().clone(), {k: v.clone() if torch.is_tensor(v) else v
                                              for k, v in batch.items()}))
        return method_loss(method, logp, batch, *args, **kwargs)

    monkeypatch.setattr(tr, "method_loss", recording)
    monkeypatch.setattr(tr, "evaluate", lambda *args: {"exact_accuracy": 0.0,
                                                       "effective_correct": 1.0,
                                                       "tv_to_target": 1.0})
    tr.train_rl(method, TASK, small_settings(workers=1, **overrides), 0, sft_path)
    return calls


@pytest.mark.parametrize("method", ["grpo", "distil"])
def test_adam_beta2_reaches_the_optimiser_of_every_method(method, sft_path, monkeypatch):
    """--adam-beta2 sets the RL optimiser's second-moment decay, for the sampled methods and the
    sample-free ones alike; left out, it is torch's 0.999 that the committed runs used. A flag
    parsed but not passed on would leave every run at 0.999 under a file that says otherwise."""
    made = []

    class Recording(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            made.append(kwargs)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    for beta2 in (None, 0.95):
        made.clear()
        run_recording(monkeypatch, method, sft_path, iterations=1,
                      **({} if beta2 is None else {"adam_beta2": beta2}))
        assert [kwargs["betas"] for kwargs in made] == [(0.9, beta2 or 0.999)]
        assert made[0]["lr"] == small_settings().lr


@pytest.mark.parametrize("kind", ["group", "sft", "sft-normalised"])
def test_the_advantage_source_decides_what_the_loss_receives(kind, sft_path, monkeypatch):
    """--advantage-source sft-normalised must reach the loss as the SFT policy's (A+, A-) shifted so
    that Z = 1: a run that silently fell back to the group's advantages (or to the unshifted pair)
    would still run, and report another experiment under this one's name. An untrained policy is
    never right, so the group's advantages are all 0 and the SFT ones are not."""
    ((_, batch),) = run_recording(monkeypatch, "grpo", sft_path, iterations=1,
                                  advantage_source=kind)
    if kind == "group":
        want = group_advantages(batch["rewards"], 4)
    else:
        table = sft_advantages(GPT.load(sft_path), TASK, 0.25, normalised=kind == "sft-normalised")
        rows_n = [TASK.train_n[i] for i in batch["prompt_index"].tolist()]
        want = torch.tensor([table[n][0 if r else 1]
                             for n, r in zip(rows_n, batch["rewards"].tolist())])
        assert (want != 0).all()
    assert torch.equal(batch["advantages"], want)


@pytest.mark.parametrize("method", ["lad-fixed", "lad"])
def test_lad_fixed_samples_every_rollout_from_the_frozen_sft_model(method, sft_path, monkeypatch):
    """lad-fixed's pi_old is pi_sft at every iteration: after the first step its rollouts still
    carry pi_sft's log-probabilities, which the moved policy no longer gives. A run that sampled
    from the policy would be plain lad, whose second rollout carries the policy's own (ratio
    exactly 1 at the first step of every iteration). --advantage-source sft: every completion has A
    != 0, so the first step moves the policy."""
    calls = run_recording(monkeypatch, method, sft_path, iterations=2, advantage_source="sft")
    (logp_1, first), (logp_2, second) = calls
    assert torch.equal(logp_1, first["logp_old"]), "at the first step the policy is pi_sft"
    tokens = second["prompts"], second["completions"], second["mask"]
    with torch.no_grad():
        sft_logp = GPT.load(sft_path).completion_logprobs(*tokens)
    if method == "lad-fixed":
        assert torch.equal(second["logp_old"], sft_logp)
        assert not torch.equal(logp_2, second["logp_old"]), "the policy has moved from pi_sft"
    else:
        assert torch.equal(logp_2, second["logp_old"])
        assert not torch.equal(second["logp_old"], sft_logp)


def test_rl_models_freeze_the_sampler_of_lad_fixed_and_every_anchor(sft_path):
    """Catches lad-fixed quietly sampling from the policy (then it is plain lad), a reference that
    trains along with the policy (then the anchor moves), or a policy that is its own reference
    (then it pays no penalty)."""
    for method in METHODS + BASELINES:
        policy, sampler, reference = rl_models(method, sft_path)
        if method == "lad-fixed":
            assert sampler is not policy and not any(p.requires_grad for p in sampler.parameters())
        else:
            assert sampler is policy
        assert (reference is not None) == (method in ("grpo-kl", "lad-kl", "flowrl"))
        if reference is not None:
            assert reference is not policy
            assert not any(p.requires_grad for p in reference.parameters())


def test_the_anchor_stays_at_pi_sft_while_the_policy_trains(sft_path):
    """One iteration of lad-kl with a rollout where every completion has A != 0: the policy moves,
    the reference's weights and its log-probabilities of the rollout stay pi_sft's."""
    policy, sampler, reference = rl_models("lad-kl", sft_path)
    sft_params = [p.detach().clone() for p in GPT.load(sft_path).parameters()]
    table = {n: (1.0, -1.0) for n in TASK.train_n}
    rollout, _ = tr.rl_iteration("lad-kl", policy, sampler, reference,
                                 torch.optim.SGD(policy.parameters(), lr=0.5), TASK,
                                 small_settings(), RandomStreams.seeded(0), fixed_advantages=table)
    assert any(not torch.equal(p, q) for p, q in zip(policy.parameters(), sft_params))
    assert all(torch.equal(p, q) for p, q in zip(reference.parameters(), sft_params))
    tokens = rollout["prompts"], rollout["completions"], rollout["mask"]
    with torch.no_grad():
        assert torch.equal(rollout["logp_ref"], GPT.load(sft_path).completion_logprobs(*tokens))
        assert not torch.equal(policy.completion_logprobs(*tokens), rollout["logp_ref"])


# ---------------------------------------------------------------------------------------------
# Where log pi_old comes from.
# ---------------------------------------------------------------------------------------------

class RecordingSampler:
    """A GPT that keeps the log-probabilities its own sample() returned."""

    def __init__(self, model: GPT):
        self.model = model

    def sample(self, *args, **kwargs):
        completions, self.sample_logp, mask = self.model.sample(*args, **kwargs)
        return completions, self.sample_logp, mask

    def completion_logprobs(self, *args, **kwargs):
        return self.model.completion_logprobs(*args, **kwargs)


def test_log_pi_old_is_the_losss_own_forward_pass_so_the_first_ratio_is_exactly_one():
    """sample() returns log-probabilities from its step-by-step forward passes, which differ from
    completion_logprobs over the whole completion in the last bits (2.4e-7 here). Taken from
    sample(), log pi_old would make the first step's ratio 1 +- 1e-7 instead of exactly 1, and
    KL-Cov's |log ratio| penalty would turn the rounding into a gradient. The test looks for a
    batch where the two differ: on one where they agree it could not tell the sources apart."""
    table = {n: (1.0, -1.0) for n in TASK.train_n}  # A != 0 everywhere: every token counts
    for seed in range(10):
        policy = small_model(seed)
        sampler = RecordingSampler(policy)
        rollout, stats = tr.rl_iteration("kl-cov", policy, sampler, None,
                                         torch.optim.SGD(policy.parameters(), lr=0.0), TASK,
                                         small_settings(), RandomStreams.seeded(1),
                                         fixed_advantages=table)
        with torch.no_grad():
            forward = policy.completion_logprobs(rollout["prompts"], rollout["completions"],
                                                 rollout["mask"])
        if not torch.equal(sampler.sample_logp, forward):
            break
    else:
        pytest.fail("no batch where sample()'s log-probabilities differ from the forward pass")
    assert torch.equal(rollout["logp_old"], forward)
    assert stats[0]["abs_log_ratio"] == 0.0


# ---------------------------------------------------------------------------------------------
# FlowRL: its learned log Z, and its beta.
# ---------------------------------------------------------------------------------------------

def test_flowrls_log_z_moves_by_its_gradient_at_the_prompts_of_the_rollout_only():
    """At the first step pi = pi_sft, so each completion's residual is delta = log Z - beta A and
    d loss / d log Z(n) = 2 sum over n's rows of (log Z(n) - beta A) / (completion tokens). With the
    group's advantages that sum is exactly 0 (they sum to 0 in each group), so a "log Z was
    trained" check would pass only by rounding; with a fixed (A+, A-), a different pair for each
    prompt, it is not: one SGD step must move log Z(n) by exactly -lr times it, and leave every
    prompt outside the rollout at 0. Catches a log Z that is detached from the loss, or trained at
    another prompt's index."""
    policy = small_model()
    frozen = copy.deepcopy(policy).requires_grad_(False)
    task = task_with_prompts(37, 12, 50, 64)
    table = {37: (0.5, -0.2), 12: (1.0, -0.1), 50: (0.3, -0.4), 64: (0.8, -0.3)}  # each its own
    settings = small_settings(prompts_per_iteration=2)
    log_z = torch.zeros(len(task.train_n), requires_grad=True)
    lr = 0.1
    optimizer = torch.optim.SGD([{"params": policy.parameters(), "lr": 0.0},
                                 {"params": [log_z], "lr": lr}])
    sampler = ScriptedSampler(right_then_wrong, frozen)
    rollout, _ = tr.rl_iteration("flowrl", policy, sampler, frozen, optimizer, task, settings,
                                 RandomStreams.seeded(1), fixed_advantages=table, log_z=log_z)
    assert len(set(rollout["ns"])) == 2, "the test needs two prompts in the rollout"
    n_tokens = float(rollout["mask"].sum())
    grad = torch.zeros(len(task.train_n), dtype=torch.float64)
    for i, a in zip(rollout["prompt_index"].tolist(), rollout["advantages"].tolist()):
        grad[i] += 2 * (0.0 - settings.flowrl_reward_scale * a) / n_tokens
    assert grad.abs().max() > 0.1, "the test needs a gradient well above rounding"
    assert log_z.detach().double().numpy() == pytest.approx((-lr * grad).numpy(), abs=1e-6)
    asked = set(rollout["prompt_index"].tolist())
    assert len(asked) < len(task.train_n), "the test needs a prompt the rollout did not ask"
    assert all(log_z[i] == 0 for i in range(len(task.train_n)) if i not in asked)


def test_flowrls_default_beta_is_one_over_eta_and_an_explicit_one_wins():
    """FlowRL's inverse temperature defaults to 1/eta, LAD's temperature per unit of advantage
    (reasoning/methods.py says why its target is still not pi*). A default of eta, or one fixed at
    4 whatever --eta says, is another experiment."""
    assert tr.Settings().flowrl_reward_scale == 4.0
    assert tr.Settings(eta=0.5).flowrl_reward_scale == 2.0
    assert parse_settings(tr.Settings, ["--eta", "0.125"]).flowrl_reward_scale == 8.0
    settings = parse_settings(tr.Settings, ["--eta", "0.5", "--flowrl-reward-scale", "3"])
    assert settings.flowrl_reward_scale == 3.0


# ---------------------------------------------------------------------------------------------
# The measurements: pi*, exact distances, the frontier, the spread over seeds.
# ---------------------------------------------------------------------------------------------

def test_target_keeps_the_sft_shape_among_correct_answers_and_its_accuracy_is_lemma_3_1s():
    p_sft = torch.tensor([0.05, 0.15, 0.10], dtype=torch.float64)  # P_sft(correct) = 0.3
    eta = 0.25
    target = evaluation.answer_target(p_sft, eta)
    assert float(target.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(target[:-1] / target[:-1].sum(), p_sft / p_sft.sum())
    # By hand: A+ = sqrt(0.7/0.3), A- = -sqrt(0.3/0.7); pi*(correct) = 0.3 e^{A+/eta} / Z.
    up = 0.3 * math.exp(math.sqrt(0.7 / 0.3) / eta)
    down = 0.7 * math.exp(-math.sqrt(0.3 / 0.7) / eta)
    assert float(target[:-1].sum()) == pytest.approx(up / (up + down), rel=1e-9)


def test_exact_tv_of_the_sft_model_is_its_accuracy_gap_to_the_target():
    """pi* has pi_sft's shape among the correct answers, so TV(pi_sft, pi*) = pi*(correct) -
    pi_sft(correct) exactly, and the shape part is 0: an independent check of exact_metrics."""
    model = small_model(3)
    ns = TASK.heldout_n[:4]
    probs = evaluation.answer_probabilities(model, TASK, ns)
    targets = [evaluation.answer_target(p, 0.25) for p in probs]
    metrics = evaluation.exact_metrics(model, TASK, ns, targets)
    gap = sum(float(t[:-1].sum() - p.sum()) for p, t in zip(probs, targets)) / len(ns)
    assert metrics["tv_to_target"] == pytest.approx(gap, rel=1e-6)
    assert metrics["tv_shape"] == pytest.approx(0.0, abs=1e-9)
    accuracy = sum(float(p.sum()) for p in probs) / len(ns)
    assert metrics["exact_accuracy"] == pytest.approx(accuracy, rel=1e-9)


def test_largest_accuracy_drop_sees_a_collapse_that_recovers():
    """The last evaluation hides a run that fell and climbed back; the drop from the best so far
    does not (a drop measured from the first evaluation, or between the last two, would miss it)."""
    curve = [{"exact_accuracy": a} for a in [0.3, 0.7, 0.65, 0.1, 0.5, 0.72]]
    assert evaluation.largest_accuracy_drop(curve) == pytest.approx(0.6)
    climb = [{"exact_accuracy": a} for a in [0.2, 0.4, 0.9]]
    assert evaluation.largest_accuracy_drop(climb) == 0.0


def test_the_frontier_takes_the_most_diverse_checkpoint_at_each_accuracy_level():
    """At accuracy >= 0.6 two checkpoints qualify, the first with 3 effective answers, a later one
    with 6: the frontier is 6. Taking the first checkpoint that reaches a level would say 3, and
    make a method that keeps its answers while it climbs look like one that lost them."""
    evals = [{"exact_accuracy": a, "effective_correct": e}
             for a, e in [(0.5, 10.0), (0.7, 3.0), (0.8, 6.0), (0.65, 8.0)]]
    frontier = evaluation.diversity_frontier(evals, [0.4, 0.6, 0.75, 0.9])
    assert frontier[:3].tolist() == [10.0, 8.0, 6.0]
    assert np.isnan(frontier[3]), "no checkpoint reached 0.9"


def test_the_spread_over_seeds_is_the_population_std():
    """The GPT chapter reports mean +- the population std (ddof = 0, numpy's default); the TRL
    chapter the sample std. Over values 3 and 5 (a third seed never reached the level: left out,
    not counted as 0) that is 1, where the sample std would be 1.41; the same for every metric and
    every difference between methods."""
    def seed_result(accuracy, at_level):
        final = {m: {"exact_accuracy": accuracy + (0.1 if m == "lad" else 0.0),
                     "effective_at_accuracy": at_level, "effective_correct": 2.0,
                     "tv_to_target": 0.5, "tv_shape": 0.1, "largest_accuracy_drop": 0.0}
                 for m in ("sft", "grpo", "lad")}
        runs = {m: {"seconds_per_iteration": 1.0} for m in ("grpo", "lad")}
        return {"final": final, "runs": runs}

    metrics = evaluation.aggregate_seeds([seed_result(0.2, 3.0), seed_result(0.4, None),
                                          seed_result(0.3, 5.0)], ["grpo", "lad"])
    assert metrics["grpo"]["exact_accuracy"] == pytest.approx(0.3)
    assert metrics["grpo"]["std"]["exact_accuracy"] == pytest.approx(math.sqrt(0.02 / 3))
    assert metrics["grpo"]["effective_at_accuracy"] == pytest.approx(4.0)
    assert metrics["grpo"]["std"]["effective_at_accuracy"] == pytest.approx(1.0)
    assert metrics["grpo"]["seeds_reaching_match_accuracy"] == 2
    diff = metrics["differences"]["lad - grpo"]["exact_accuracy"]
    assert diff["mean"] == pytest.approx(0.1) and diff["std"] == pytest.approx(0.0, abs=1e-12)
    assert evaluation.mean_and_spread([0.2, None, 0.4]) == pytest.approx((0.3, 0.1))


def test_answer_probabilities_sum_each_answer_over_its_own_tokens_only():
    """Answers of different lengths ("1+9." has 4 tokens, "12+25." 6): each answer's probability is
    the product over its own tokens. Summing the padding's log-probabilities too would change the
    short ones."""
    model = small_model(5)
    ns = [10, 37]
    probs = evaluation.answer_probabilities(model, TASK, ns)
    for n, p in zip(ns, probs):
        texts = TASK.valid_answers(n)
        completions, mask = TASK.completions(texts)
        with torch.no_grad():
            logits = model(torch.cat([TASK.prompts([n] * len(texts)), completions], 1)[:, :-1])
        logp = torch.log_softmax(logits[:, TASK.PROMPT_LEN - 1:], -1)
        logp = logp.gather(-1, completions.unsqueeze(-1)).squeeze(-1)
        by_hand = torch.tensor([float(logp[i, : len(t)].sum()) for i, t in enumerate(texts)])
        assert torch.allclose(p, by_hand.double().exp(), rtol=1e-5)
    assert len({len(t) for t in TASK.valid_answers(37)}) > 1, "the test needs answers of 2 lengths"


def test_effective_number_normalises_over_the_correct_answers():
    """N - 1 for a uniform p over N - 1 answers even when they hold only half the mass, 1 for
    one-hot."""
    uniform = torch.full((36,), 0.5 / 36, dtype=torch.float64)
    assert evaluation.effective_number(uniform) == pytest.approx(36)
    one_hot = torch.tensor([0.0, 0.7, 0.0], dtype=torch.float64)
    assert evaluation.effective_number(one_hot) == pytest.approx(1.0)


@pytest.mark.parametrize("normalised", [False, True])
def test_sft_advantages_are_the_large_group_a_of_pi_star_and_normalised_ones_make_z_one(normalised):
    """--advantage-source sft gives every correct completion of a prompt the A+ that defines pi* and
    every other one A-; sft-normalised shifts both by eta log Z, so that E_sft[exp(A/eta)] = 1 and
    pi* is unchanged. A shift with the wrong sign, or A+ and A- swapped, breaks one of these."""
    model = small_model(2)
    fixed = sft_advantages(model, TASK, 0.25, normalised=normalised)
    probs = evaluation.answer_probabilities(model, TASK, TASK.train_n)
    for n, p in list(zip(TASK.train_n, probs))[:5]:
        success = float(p.sum())
        a_plus, a_minus = fixed[n]
        assert a_plus > a_minus
        z = success * math.exp(a_plus / 0.25) + (1 - success) * math.exp(a_minus / 0.25)
        large_group = evaluation.large_group_advantages(success)
        if not normalised:
            assert (a_plus, a_minus) == pytest.approx(large_group)
        else:
            assert z == pytest.approx(1.0, rel=1e-9)
            assert a_plus - a_minus == pytest.approx(float(np.subtract(*large_group)))
        # pi*(correct) from these advantages is the evaluation's target's
        pi_star_correct = float(evaluation.answer_target(p, 0.25)[:-1].sum())
        assert success * math.exp(a_plus / 0.25) / z == pytest.approx(pi_star_correct)


def test_sampled_success_estimates_the_sft_policys_success_rate_from_its_own_samples():
    """--advantage-source sft-sampled is a method, not an oracle: the success rate comes from
    samples of pi_sft, (correct + 1/2) / (k + 1), close to the exact one for many samples and never
    0 or 1. A mode that fell back to the exact rate would return it to the last digit."""
    model = small_model(2)
    exact = [float(p.sum()) for p in evaluation.answer_probabilities(model, TASK, TASK.train_n)]
    few = sampled_success(model, TASK, torch.Generator().manual_seed(0), k=8)
    assert all(round(p * 9 - 0.5, 9) == int(round(p * 9 - 0.5)) for p in few)  # (c + 1/2) / 9
    assert all(0 < p < 1 for p in few) and few != pytest.approx(exact, abs=1e-9)
    many = sampled_success(model, TASK, torch.Generator().manual_seed(0), k=512)
    assert float(np.mean(np.abs(np.array(many) - exact))) < 0.03
    assert sampled_success(model, TASK, torch.Generator().manual_seed(0), k=8) == few
    fixed = sft_advantages(model, TASK, 0.25, success=few)
    n = TASK.train_n[0]
    assert fixed[n] == pytest.approx(evaluation.large_group_advantages(few[0]))

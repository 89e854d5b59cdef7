"""Tests of the GPT chapter's RL loop (train_reasoning.py) and its measurements (evaluation.py): that
each variant's update points the right way, that rewards and advantages belong to the completions they
score, which model samples and which anchors, how a rollout is cut into mini-batches, and the target
pi* with its exact distance."""
import math

import numpy as np
import pytest
import torch

from reasoning import evaluation
import train_reasoning as tr
from reasoning.arithmetic import SumTask
from grpo_loss import group_advantages
from tiny_lm import GPT, GPTConfig

TASK = SumTask()


def small_args(**overrides) -> tr.Args:
    args = tr.Args(n_embd=32, n_head=2, prompts_per_iteration=3, group_size=4, device="cpu")
    for k, v in overrides.items():
        setattr(args, k, v)
    return args


def small_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=len(TASK.chars), block_size=TASK.PROMPT_LEN + TASK.MAX_COMPLETION,
                       n_layer=1, n_head=2, n_embd=32)
    return GPT(config)


def two_answer_batch(model: GPT, n: int = 37, texts=("12+25.", "9+9.")) -> dict:
    """One group of two completions of prompt n: the first rewarded (A > 0), the second not (A < 0).
    pi_old and pi_sft are the model itself, as at the start of RL."""
    completions, mask = TASK.completions(list(texts))
    prompts = TASK.prompts([n] * len(texts))
    rewards = torch.tensor([float(TASK.is_correct(n, t)) for t in texts])
    with torch.no_grad():
        logp_old = model.completion_logprobs(prompts, completions, mask)
    return {"ns": [n], "prompts": prompts, "completions": completions, "mask": mask, "rewards": rewards,
            "advantages": group_advantages(rewards, len(texts)), "logp_old": logp_old,
            "logp_ref": logp_old.clone(), "prompt_index": torch.zeros(len(texts), dtype=torch.long)}


def sequence_logp(model: GPT, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return model.completion_logprobs(batch["prompts"], batch["completions"], batch["mask"]).sum(1)


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
@pytest.mark.parametrize("method", tr.METHODS + tr.BASELINES)
def test_one_update_raises_the_rewarded_completion_and_lowers_the_unrewarded_one(method, lad_ratio):
    """Catches a flipped sign anywhere in a variant's loss (policy term or its wiring into the step).
    Plain SGD with a small step, so the change follows the gradient to first order."""
    model = small_model()
    batch = two_answer_batch(model)
    assert batch["advantages"][0] > 0 > batch["advantages"][1]
    before = sequence_logp(model, batch)
    log_z = torch.zeros(1, requires_grad=True) if method == "flowrl" else None
    tr.rl_step(method, model, torch.optim.SGD(list(model.parameters()) + ([log_z] if log_z is not None else []), lr=0.05),
               batch, small_args(lad_ratio=lad_ratio), torch.Generator().manual_seed(0), log_z, torch.Generator().manual_seed(1))
    after = sequence_logp(model, batch)
    assert after[0] > before[0] + 1e-4, "the rewarded completion should become more likely"
    assert after[1] < before[1] - 1e-4, "the unrewarded completion should become less likely"


class ScriptedSampler:
    """Stands in for a GPT in sample_batch: for each prompt n, alternately a correct answer of n and a
    correct answer of n + 1 (wrong for n). Scoring a completion against any other prompt than its own
    changes the rewards."""

    def sample(self, prompts, max_new_tokens, end_token, num_samples, generator=None):
        texts = []
        for row in prompts.tolist():
            n = int(TASK.decode(row)[:-1])
            texts += [f"1+{n - 1}." if i % 2 == 0 else f"1+{n}." for i in range(num_samples)]
        completions, mask = TASK.completions(texts)
        return completions, torch.zeros(completions.shape), mask

    def completion_logprobs(self, prompts, completions, mask):
        return torch.zeros(completions.shape)


def test_sample_batch_scores_each_completion_against_its_own_prompt_and_normalises_by_group():
    args = small_args(prompts_per_iteration=5, group_size=4)
    batch = tr.sample_batch(ScriptedSampler(), TASK, args, torch.Generator().manual_seed(0),
                            torch.Generator().manual_seed(1))
    G = args.group_size
    assert len(set(batch["ns"])) > 1, "the test needs several distinct prompts"
    assert batch["rewards"].tolist() == [1.0, 0.0] * (len(batch["ns"]) * G // 2)
    for i, (prompt, completion) in enumerate(zip(batch["prompts"].tolist(), batch["completions"].tolist())):
        n = batch["ns"][i // G]
        assert TASK.decode(prompt) == f"{n}=", "prompt rows must line up with their completions"
        assert TASK.decode(completion) in (f"1+{n - 1}.", f"1+{n}.")
    assert torch.allclose(batch["advantages"], group_advantages(batch["rewards"], G))
    assert batch["advantages"][0] == pytest.approx(0.5 / math.sqrt(1 / 3), rel=1e-5)  # normalised, not just centred


def test_lad_fixed_samples_from_the_frozen_sft_model_and_the_others_from_the_policy(tmp_path):
    """Catches lad-fixed quietly sampling from the policy (then it is plain lad), or a reference that
    trains along with the policy (then the anchor moves)."""
    path = small_model().save(tmp_path / "sft.pt")
    args = small_args()
    sft_params = [p.detach().clone() for p in GPT.load(path).parameters()]
    for method in tr.METHODS + tr.BASELINES:
        model, sampler, reference = tr.rl_models(method, path, args)
        if method == "lad-fixed":
            assert sampler is not model and not any(p.requires_grad for p in sampler.parameters())
        else:
            assert sampler is model
        assert (reference is not None) == (method in ("grpo-kl", "lad-kl", "flowrl"))
        # The reference is its own frozen copy: a policy that were its own reference would pay no penalty.
        assert reference is None or (reference is not model and not any(p.requires_grad for p in reference.parameters()))
        batch = tr.sample_batch(sampler, TASK, args, torch.Generator().manual_seed(0),
                                torch.Generator().manual_seed(1), reference)
        # the batch's logp_old is the sampler's log-probability of the tokens it drew, bit for bit what
        # the loss's forward pass computes: the first step's ratio is exactly 1
        assert torch.equal(batch["logp_old"], sampler.completion_logprobs(
            batch["prompts"], batch["completions"], batch["mask"]).detach())
        assert [TASK.train_n[i] for i in batch["prompt_index"][:: args.group_size].tolist()] == batch["ns"]
        # An untrained model is never right, so every advantage would be 0 and nothing would move:
        # give each group two rewarded completions for the update.
        batch["advantages"] = group_advantages(torch.tensor([1.0, 0.0] * (len(batch["rewards"]) // 2)), args.group_size)
        log_z = torch.zeros(len(TASK.train_n), requires_grad=True) if method == "flowrl" else None
        params = list(model.parameters()) + ([log_z] if log_z is not None else [])
        tr.rl_step(method, model, torch.optim.SGD(params, lr=0.5), batch, args, torch.Generator(), log_z, torch.Generator())
        assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), sft_params)), "the policy trains"
        if log_z is not None:  # FlowRL's log Z trains too, and only at the prompts of the batch
            trained = log_z.detach() != 0
            assert trained.any() and set(trained.nonzero().view(-1).tolist()) <= set(batch["prompt_index"].tolist())
        for frozen in [m for m in (sampler, reference) if m is not None and m is not model]:
            assert all(torch.equal(p, q) for p, q in zip(frozen.parameters(), sft_params)), "the anchor stays put"
        if reference is not None:  # after the step the anchor still scores the tokens as pi_sft does
            tokens = batch["prompts"], batch["completions"], batch["mask"]
            assert torch.equal(reference.completion_logprobs(*tokens), GPT.load(path).completion_logprobs(*tokens).detach())
            assert not torch.equal(model.completion_logprobs(*tokens).detach(), batch["logp_ref"])


def test_target_keeps_the_sft_shape_among_correct_answers_and_its_accuracy_is_lemma_3_1s():
    p_sft = torch.tensor([0.05, 0.15, 0.10], dtype=torch.float64)  # P_sft(correct) = 0.3
    eta = 0.25
    target = evaluation.answer_target(p_sft, eta)
    assert float(target.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(target[:-1] / target[:-1].sum(), p_sft / p_sft.sum())
    # By hand: A+ = sqrt(0.7/0.3), A- = -sqrt(0.3/0.7); pi*(correct) = 0.3 e^{A+/eta} / Z.
    up, down = 0.3 * math.exp(math.sqrt(0.7 / 0.3) / eta), 0.7 * math.exp(-math.sqrt(0.3 / 0.7) / eta)
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
    assert metrics["exact_accuracy"] == pytest.approx(sum(float(p.sum()) for p in probs) / len(ns), rel=1e-9)


def test_largest_accuracy_drop_sees_a_collapse_that_recovers():
    """The last evaluation hides a run that fell and climbed back; the drop from the best so far does
    not (a drop measured from the first evaluation, or between the last two, would miss it)."""
    curve = [{"exact_accuracy": a} for a in [0.3, 0.7, 0.65, 0.1, 0.5, 0.72]]
    assert evaluation.largest_accuracy_drop(curve) == pytest.approx(0.6)
    assert evaluation.largest_accuracy_drop([{"exact_accuracy": a} for a in [0.2, 0.4, 0.9]]) == 0.0


def test_answer_probabilities_sum_each_answer_over_its_own_tokens_only():
    """Answers of different lengths ("1+9." has 4 tokens, "12+25." 6): each answer's probability is the
    product over its own tokens. Summing the padding's log-probabilities too would change the short ones."""
    model = small_model(5)
    ns = [10, 37]
    probs = evaluation.answer_probabilities(model, TASK, ns)
    for n, p in zip(ns, probs):
        texts = TASK.valid_answers(n)
        completions, mask = TASK.completions(texts)
        with torch.no_grad():
            logits = model(torch.cat([TASK.prompts([n] * len(texts)), completions], 1)[:, :-1])
        logp = torch.log_softmax(logits[:, TASK.PROMPT_LEN - 1:], -1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)
        by_hand = torch.tensor([float(logp[i, : len(t)].sum()) for i, t in enumerate(texts)]).double().exp()
        assert torch.allclose(p, by_hand, rtol=1e-5)
    assert len({len(t) for t in TASK.valid_answers(37)}) > 1, "the test needs answers of different lengths"


def test_effective_number_normalises_over_the_correct_answers():
    """N - 1 for a uniform p over N - 1 answers even when they hold only half the mass, 1 for one-hot."""
    assert evaluation.effective_number(torch.full((36,), 0.5 / 36, dtype=torch.float64)) == pytest.approx(36)
    assert evaluation.effective_number(torch.tensor([0.0, 0.7, 0.0], dtype=torch.float64)) == pytest.approx(1.0)


class AlwaysRight(torch.nn.Module):
    """A scripted model: for prompt n it always writes "1+(n-1).", correct for its own prompt only, and
    scores every completion with the same log-probability per token. Scoring a sample against another
    prompt makes its accuracy < 1."""

    def __init__(self):
        super().__init__()
        self.lm_head = torch.nn.Linear(1, 1)

    def sample(self, prompts, max_new_tokens, end_token, num_samples, generator=None):
        texts = [f"1+{int(TASK.decode(row)[:-1]) - 1}." for row in prompts.tolist() for _ in range(num_samples)]
        completions, mask = TASK.completions(texts)
        return completions, torch.zeros(completions.shape), mask

    def completion_logprobs(self, prompts, completions, mask):
        return torch.where(mask, torch.full(completions.shape, -0.1), torch.zeros(completions.shape))


def test_sampled_accuracy_scores_each_sample_against_its_own_prompt():
    model = AlwaysRight()
    ns = TASK.heldout_n[:5]
    targets = [evaluation.answer_target(p, 0.25) for p in evaluation.answer_probabilities(model, TASK, ns)]
    metrics = evaluation.evaluate(model, TASK, ns, 16, 0, targets, model)
    assert metrics["accuracy"] == 1.0 and metrics["distinct_correct"] == 1.0
    assert metrics["wellformed_wrong"] == 0.0 and metrics["malformed"] == 0.0


@pytest.mark.parametrize("kind", ["sft", "sft-normalised"])
def test_sft_advantages_are_the_large_group_a_of_pi_star_and_normalised_ones_make_z_one(kind):
    """--advantages sft gives every correct completion of a prompt the A+ that defines pi* and every
    other one A-; sft-normalised shifts both by eta log Z, so that E_sft[exp(A/eta)] = 1 and pi* is
    unchanged. A shift with the wrong sign, or A+ and A- swapped, breaks one of these."""
    model = small_model(2)
    args = small_args(advantages=kind, eta=0.25)
    fixed = tr.sft_advantages(model, TASK, args)
    probs = evaluation.answer_probabilities(model, TASK, TASK.train_n)
    for n, p in list(zip(TASK.train_n, probs))[:5]:
        success = float(p.sum())
        a_plus, a_minus = fixed[n]
        assert a_plus > a_minus
        z = success * math.exp(a_plus / 0.25) + (1 - success) * math.exp(a_minus / 0.25)
        if kind == "sft":
            assert (a_plus, a_minus) == pytest.approx(evaluation.large_group_advantages(success))
        else:
            assert z == pytest.approx(1.0, rel=1e-9)
            assert a_plus - a_minus == pytest.approx(float(np.subtract(*evaluation.large_group_advantages(success))))
        # pi*(correct) from these advantages is the evaluation's target's
        assert success * math.exp(a_plus / 0.25) / z == pytest.approx(float(evaluation.answer_target(p, 0.25)[:-1].sum()))

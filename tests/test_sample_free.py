"""reasoning/sample_free.py: the two references that take no sample, distillation of pi* and the
exact gradient of the trust-region objective."""
import math

import pytest
import torch

from reasoning.arithmetic import SumTask
from reasoning.evaluation import answer_target, large_group_advantages
from reasoning.sample_free import outcome_logprobs, sample_free_iteration, sample_free_loss
from reasoning.rollout import sample_rollout
from tiny_lm import GPT, GPTConfig

TASK = SumTask()


def _model(seed=0):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=len(TASK.chars), block_size=TASK.PROMPT_LEN + TASK.MAX_COMPLETION,
                       n_layer=1, n_head=2, n_embd=16)
    return GPT(config)


def _prompt(p_sft_correct=0.3, n_answers=5, eta=0.25, seed=0):
    """One prompt's outcomes: pi_sft over n_answers correct answers and "anything else", its A and
    its pi* (answer_target), in float64."""
    gen = torch.Generator().manual_seed(seed)
    shape = torch.softmax(torch.randn(n_answers, generator=gen, dtype=torch.float64), 0)
    p_sft = p_sft_correct * shape
    a_plus, a_minus = large_group_advantages(p_sft_correct)
    A = torch.tensor([a_plus] * n_answers + [a_minus], dtype=torch.float64)
    pi_sft = torch.cat([p_sft, torch.tensor([1 - p_sft_correct], dtype=torch.float64)])
    return pi_sft, A, answer_target(p_sft, eta)


def test_outcome_logprobs_cover_every_outcome_once():
    """The correct answers and "anything else" are a partition: their probabilities sum to 1. A
    "rest" computed as log P(correct), or the answers of another prompt, would not."""
    model = _model()
    for n, logp in zip([12, 37], outcome_logprobs(model, TASK, [12, 37])):
        assert logp.shape == (n,) and logp.dtype == torch.float64
        assert float(logp.detach().exp().sum()) == pytest.approx(1.0, abs=1e-6)
        assert logp.requires_grad


def test_the_exact_reference_follows_the_gradient_of_the_trust_region_objective():
    """KL(pi || pi*) = -(E_pi[A] - eta KL(pi || pi_sft)) / eta + const over a prompt's outcomes:
    its gradient is that objective's, times -1/eta. A loss taking KL the other way (distil's) or a
    target built from another A would give another gradient."""
    eta = 0.25
    pi_sft, A, target = _prompt(eta=eta)
    logits = torch.randn(len(A), dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                         requires_grad=True)
    (grad_exact,) = torch.autograd.grad(
        sample_free_loss("exact", [torch.log_softmax(logits, 0)], [target]), logits)
    pi = torch.softmax(logits, 0)
    objective = (pi * A).sum() - eta * (pi * (pi.log() - pi_sft.log())).sum()
    (grad_objective,) = torch.autograd.grad(objective, logits)
    assert torch.allclose(grad_exact, -grad_objective / eta, atol=1e-12)
    (grad_distil,) = torch.autograd.grad(
        sample_free_loss("distil", [torch.log_softmax(logits, 0)], [target]), logits)
    assert not torch.allclose(grad_distil, grad_exact, atol=1e-3)


@pytest.mark.parametrize("method", ["distil", "exact"])
def test_each_reference_is_minimised_at_pi_star(method):
    """Both losses are stationary at pi = pi* and only there: the exact minimiser of a softmax over
    the outcomes, found by gradient descent, is pi*. A flipped sign or a missing exp would end
    elsewhere."""
    pi_sft, A, target = _prompt()
    logits = torch.zeros(len(A), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([logits], max_iter=200, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = sample_free_loss(method, [torch.log_softmax(logits, 0)], [target])
        loss.backward()
        return loss

    optimizer.step(closure)
    assert float(0.5 * (torch.softmax(logits.detach(), 0) - target).abs().sum()) < 1e-6


def test_a_reference_step_draws_the_prompts_a_rollout_draws():
    """'The same batches': with the same seed, a reference step trains on exactly the prompts that
    an RL method's rollout samples. A step that drew its own prompts would compare the references
    with the methods on other data."""
    model = _model()
    targets = [torch.full((n,), 1.0 / n, dtype=torch.float64) for n in TASK.train_n]
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    rollout = sample_rollout(model, TASK, 4, 2, gen_a, torch.Generator().manual_seed(6))
    index = {n: i for i, n in enumerate(TASK.train_n)}
    expected = sample_free_loss("distil", outcome_logprobs(model, TASK, rollout["ns"]),
                              [targets[index[n]] for n in rollout["ns"]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    stats = sample_free_iteration("distil", model, optimizer, TASK, 4, gen_b, targets)
    assert stats["loss"] == pytest.approx(float(expected), rel=1e-12)  # the rollout's prompts
    assert torch.equal(gen_a.get_state(), gen_b.get_state())  # and no draw more
    assert 0 < stats["p_correct"] < 1 and math.isfinite(stats["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="method"):
        sample_free_loss("grpo", [], [])
    assert rollout["ns"]  # the rollout ran

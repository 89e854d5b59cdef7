"""How close can this GPT get to pi* at all? Two sample-free methods, yardsticks for the others.

Every method of the GPT chapter learns from sampled completions. These two do not. Each training
prompt n has N - 1 correct answers, which can be enumerated, and one more outcome, "anything else"
(every wrong or malformed completion together), so an objective over a prompt's outcomes is an exact
sum. Its target is pi* = pi_sft exp(A/eta) / Z over those outcomes (evaluation.answer_target, A = A+
on a correct answer and A- on the rest, the SFT policy's large-group advantages):

    distil   minimise the forward KL(pi* || pi) = -sum_y pi*(y) log pi(y) + const: distil pi* into
             the same GPT, from the same SFT start, with the same optimiser. Where it ends is the
             distillation yardstick: how close one distillation (its steps, its learning rate) got
             to pi* when the target is handed to it. A longer or better tuned one may go lower; it
             is a yardstick, not a bound.
    exact    minimise the reverse KL(pi || pi*) over the coarse outcomes {each correct answer,
             anything else} by its exact gradient: -(E_pi[A] - eta KL(pi || pi_sft)) / eta + const,
             the KL taken over those outcomes. It is not grpo-kl's expected update (k2 at
             kl_coef = eta, --advantage-source sft): that anchor acts on whole completions, so its
             objective also holds pi(else) KL(pi(.|else) || pi_sft(.|else)), how the wrong mass
             spreads over the wrong strings, which exact leaves free. What exact shows is how
             following a reverse KL to pi* moves this network with no sampling noise; its
             batches and learning rate differ from any sampled run's too.
             docs/gpt_studies.md has what it measured.

Both run through train_reasoning.py as methods (`--methods distil exact`): one iteration is one Adam
step on --prompts-per-iteration training prompts, drawn from the same prompt stream as a rollout's,
and the held-out evaluation is every other method's. The per-prompt losses are averaged over the
prompts of the step.

    outcome_logprobs(model, task, ns)   log pi of each outcome of each prompt, differentiable
    sample_free_loss(method, logps, targets)
    sample_free_iteration(...)          one Adam step of either, as train_reasoning.py runs it
"""
import torch

from reasoning.arithmetic import SumTask
from reasoning.evaluation import answer_logprobs

SAMPLE_FREE = ("distil", "exact")


def outcome_logprobs(model, task: SumTask, ns) -> list[torch.Tensor]:
    """For each prompt n, [N]: log pi of each correct answer (in valid_answers order), then of
    "anything else", log(1 - P(correct)). float64, differentiable."""
    logps = []
    for log_correct in answer_logprobs(model, task, ns):
        log_p = torch.logsumexp(log_correct, 0)
        # log(1 - P(correct)) without forming 1 - P: -expm1 keeps its digits when P is near 1. The
        # clamp keeps a float32 sum of probabilities that rounds to 1 or above from giving log 0.
        log_rest = torch.log(-torch.expm1(log_p.clamp(max=-1e-12)))
        logps.append(torch.cat([log_correct, log_rest.view(1)]))
    return logps


def sample_free_loss(method: str, logps: list[torch.Tensor], targets: list[torch.Tensor]):
    """The mean over prompts of KL(pi* || pi) (distil, up to its constant, the cross-entropy) or of
    KL(pi || pi*) (exact). logps: outcome_logprobs; targets: pi* of the same prompts, the same
    order of outcomes (evaluation.answer_target)."""
    if method not in SAMPLE_FREE:
        raise ValueError(f"method must be one of {SAMPLE_FREE}, got {method!r}")
    losses = []
    for log_pi, target in zip(logps, targets):
        if method == "distil":
            losses.append(-(target * log_pi).sum())
        else:  # pi* > 0 everywhere (pi_sft is), so its log is finite
            losses.append((log_pi.exp() * (log_pi - target.log())).sum())
    return torch.stack(losses).mean()


def sample_free_iteration(method: str, policy, optimizer, task: SumTask, n_prompts: int,
                          prompt_gen: torch.Generator, train_targets: list[torch.Tensor]) -> dict:
    """One Adam step of a sample-free method on n_prompts training prompts drawn with replacement
    from `prompt_gen`, as a rollout draws them. train_targets: pi* of every training prompt, in
    task.train_n's order. Returns the step's loss and the exact P(correct) of its prompts."""
    picks = torch.randint(len(task.train_n), (n_prompts,), generator=prompt_gen).tolist()
    logps = outcome_logprobs(policy, task, [task.train_n[i] for i in picks])
    loss = sample_free_loss(method, logps, [train_targets[i] for i in picks])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    p_correct = torch.stack([1 - lp[-1].detach().exp() for lp in logps]).mean()
    return {"loss": float(loss.detach()), "p_correct": float(p_correct)}

"""How the GPT chapter measures a policy on the arithmetic task: exactly where it can, by sampling
where it must.

Every correct answer of a prompt can be enumerated (arithmetic.SumTask.valid_answers), so the model's
probability of each one is an exact sum of token log-probabilities, with no sampling noise:

    total_variation(p, q), entropy(p)       the two distances every chapter reports (the bandit too)
    answer_probabilities(model, task, ns)   pi(y|n) of every correct answer y of every prompt n
    answer_target(p_sft, eta)               pi* = pi_sft exp(A/eta) / Z over the correct answers and
                                            "anything else" (Lemma 3.1's target from the SFT policy)
    tv_to_target(p, target)                 the TV distance between a model and pi* on one prompt
    exact_metrics(model, task, ns, targets) P(correct), the effective number of correct answers, and
                                            the TV distance to pi* (whole, and its shape part)
    evaluate(...)                           the above on held-out prompts, plus sampled metrics:
                                            accuracy, pass@k, distinct answers, how wrong samples
                                            are wrong, and whether the SFT policy would write them
    diversity_frontier(evals)               the most diverse checkpoint at each accuracy level, to
                                            compare methods at matched accuracy
    largest_accuracy_drop(evals)            how far accuracy ever fell below its best so far

Imports the task and the model only; train_reasoning.py calls it.
"""
import math

import numpy as np
import torch

from arithmetic import SumTask
from tiny_lm import GPT


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """TV distance 1/2 sum |p - q| over the last dimension: 0 for equal distributions, 1 for disjoint ones."""
    return 0.5 * (p - q).abs().sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last dimension (0 log 0 = 0); differentiable, for a bonus too."""
    return -(p * torch.log(p.clamp_min(1e-300 if p.dtype == torch.float64 else 1e-30))).sum(-1)


@torch.no_grad()
def answer_probabilities(model: GPT, task: SumTask, ns) -> list[torch.Tensor]:
    """For each prompt n, pi(y|n) of every correct answer y (in valid_answers order), exactly:
    exp of the summed token log-probs. One forward pass over all answers of all prompts."""
    answers = [task.valid_answers(n) for n in ns]
    texts = [y for a in answers for y in a]
    prompts = task.prompts([n for n, a in zip(ns, answers) for _ in a]).to(model.lm_head.weight.device)
    completions, mask = (t.to(prompts.device) for t in task.completions(texts))
    p = model.completion_logprobs(prompts, completions, mask).sum(1).double().exp().cpu()
    return list(torch.split(p, [len(a) for a in answers]))


def answer_target(p_sft: torch.Tensor, eta: float) -> torch.Tensor:
    """pi* = pi_sft * exp(A/eta) / Z on one prompt, over its N - 1 correct answers and one outcome,
    last, for "anything else" (every wrong or malformed completion together).

    p_sft: [N - 1], pi_sft of each correct answer. A is the group-normalised 0/1 reward in the
    large-group limit: for a prompt that pi_sft answers correctly with probability p, the group mean is
    p and the std sqrt(p (1 - p)), so A+ = sqrt((1 - p) / p) for a correct answer and
    A- = -sqrt(p / (1 - p)) for anything else. Computed in log space (A/eta reaches 20 and more).
    """
    p = float(p_sft.sum().clamp(1e-12, 1 - 1e-12))
    a_plus, a_minus = math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))
    log_w = torch.cat([p_sft.double().clamp_min(1e-300).log() + a_plus / eta,
                       torch.tensor([math.log(1 - p) + a_minus / eta], dtype=torch.float64)])
    return (log_w - torch.logsumexp(log_w, 0)).exp()


def tv_to_target(p: torch.Tensor, target: torch.Tensor) -> float:
    """TV distance between a model and pi* on one prompt. p: [N - 1], the model's probability of each
    correct answer; target: answer_target, with "anything else" last. The model's "anything
    else" is what its correct answers leave over."""
    return float(total_variation(torch.cat([p, (1 - p.sum()).clamp_min(0).view(1)]), target))


def exact_metrics(model: GPT, task: SumTask, ns, targets: list[torch.Tensor]) -> dict:
    """No sampling: P(correct), the effective number of correct answers and the TV distance to pi*,
    each averaged over the prompts ns (targets[i] is answer_target of prompt ns[i])."""
    probs = answer_probabilities(model, task, ns)
    # exp(entropy of pi normalised over the correct answers): N - 1 when the model spreads evenly,
    # 1 when it has collapsed onto one answer.
    entropies = [float(entropy(p / p.sum())) for p in probs]
    tv = [tv_to_target(p, t) for p, t in zip(probs, targets)]
    # pi* puts almost all its mass on correct answers, so tv_to_target is mostly 1 - P(correct) until
    # the model is accurate. The shape part alone: TV between p(y | correct) and pi*(y | correct).
    tv_shape = [float(total_variation(p / p.sum(), t[:-1] / t[:-1].sum())) for p, t in zip(probs, targets)]
    return {"exact_accuracy": float(np.mean([float(p.sum()) for p in probs])),
            "effective_correct": float(np.mean(np.exp(entropies))),  # mean over prompts of exp(H)
            "entropy_correct": float(np.mean(entropies)),
            "tv_to_target": float(np.mean(tv)),
            "tv_shape": float(np.mean(tv_shape))}


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct-n: unique character n-grams / all n-grams over a set of completions."""
    grams = [t[i : i + n] for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


# A completion counts as outside the SFT policy's support when pi_sft gives it less than this: in a
# whole run the SFT sampler draws each training prompt a few thousand times, so it would produce such
# a completion less than once.
SFT_SUPPORT = 1e-4


@torch.no_grad()
def evaluate(model: GPT, task: SumTask, ns, k: int, seed: int, targets, sft_model: GPT) -> dict:
    """Held-out metrics, averaged over the prompts ns. Every model is evaluated on the same random
    stream (seeded generator), so differences between models are not sampling luck."""
    device = model.lm_head.weight.device
    generator = torch.Generator(device=device).manual_seed(10_000 + seed)
    prompts = task.prompts(ns).to(device)
    tokens, _, mask = model.sample(prompts, task.MAX_COMPLETION, task.end_token, k, generator=generator)
    texts = [task.decode(row) for row in tokens.tolist()]
    correct = torch.tensor([task.is_correct(ns[i // k], t) for i, t in enumerate(texts)]).view(len(ns), k)
    groups = [texts[i * k : (i + 1) * k] for i in range(len(ns))]
    distinct_correct = [len({t for t, ok in zip(g, c) if ok}) for g, c in zip(groups, correct.tolist())]
    # Where the samples that are not correct go: a wrong sum in the right format, or a malformed string;
    # and whether the SFT policy would ever have written them.
    well_formed = torch.tensor([task.is_well_formed(t) for t in texts]).view(len(ns), k)
    logp_sft = sft_model.completion_logprobs(prompts.repeat_interleave(k, 0), tokens, mask).sum(1)
    return {
        "accuracy": float(correct.float().mean()),
        "pass_at_k": float(correct.any(1).float().mean()),
        "distinct_correct": float(np.mean(distinct_correct)),
        "wellformed_wrong": float((well_formed & ~correct).float().mean()),
        "malformed": float((~well_formed).float().mean()),
        "outside_sft_support": float((logp_sft < math.log(SFT_SUPPORT)).float().mean()),
        "distinct_2": float(np.mean([distinct_n(g, 2) for g in groups])),
        "distinct_3": float(np.mean([distinct_n(g, 3) for g in groups])),
        **exact_metrics(model, task, ns, targets),
    }


ACCURACY_LEVELS = np.round(np.arange(0.0, 1.0001, 0.02), 2)


def diversity_frontier(evals: list, levels=ACCURACY_LEVELS) -> np.ndarray:
    """The accuracy-diversity frontier of one run, from its evaluations during training: for each
    accuracy level, the largest effective number of correct answers among the checkpoints whose exact
    held-out accuracy is at least that level (NaN where no checkpoint got there). Diversity falls as
    accuracy rises during RL, so comparing methods at one iteration mixes the two; the frontier
    compares them at matched accuracy."""
    accuracy = np.array([e["exact_accuracy"] for e in evals])
    effective = np.array([e["effective_correct"] for e in evals])
    return np.array([effective[accuracy >= lv].max() if (accuracy >= lv).any() else np.nan for lv in levels])


def largest_accuracy_drop(evals: list) -> float:
    """How far held-out accuracy (exact) ever fell below the best it had reached earlier in the run:
    max over evaluations of (best so far - now). A run that only climbs scores 0; a collapse that
    later recovers still shows, which the last evaluation alone would hide."""
    accuracy = np.array([e["exact_accuracy"] for e in evals])
    return float((np.maximum.accumulate(accuracy) - accuracy).max())


def targets_of(sft_model: GPT, task: SumTask, ns, eta: float) -> list[torch.Tensor]:
    """pi* of every prompt in ns, from the SFT policy: the same for every variant."""
    return [answer_target(p, eta) for p in answer_probabilities(sft_model, task, ns)]

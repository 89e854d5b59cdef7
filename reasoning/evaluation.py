"""How the GPT chapter measures a policy on the arithmetic task: exactly where it can, by sampling
where it must.

Every correct answer of a prompt can be enumerated (arithmetic.SumTask.valid_answers), so the
model's probability of each one is an exact sum of token log-probabilities, with no sampling noise:

    total_variation(p, q), entropy(p)       distance and spread, as every chapter reports them
                                            (measures/distributions.py, shared with the bandit)
    answer_logprobs(model, task, ns)        log pi(y|n) of every correct answer y of every prompt n
    answer_probabilities(model, task, ns)   pi(y|n), the same without a gradient
    large_group_advantages(p)               A+ and A- of a prompt answered correctly with
                                            probability p
    answer_target(p_sft, eta)               pi* = pi_sft exp(A/eta) / Z over the correct answers and
                                            "anything else" (Lemma 3.1's target from the SFT policy)
    targets_of(sft_model, task, ns, eta)    answer_target of every prompt in ns
    tv_to_target(p, target)                 the TV distance between a model and pi* on one prompt
    effective_number(p)                     exp(entropy) of p normalised: the effective number of
                                            answers
    exact_metrics(model, task, ns, targets) P(correct), the effective number of correct answers, and
                                            the TV distance to pi* (whole, and its shape part)
    evaluate(...)                           the above on held-out prompts, plus sampled metrics:
                                            accuracy, distinct correct answers, how wrong samples
                                            are wrong, and whether the SFT policy would write them
    diversity_frontier(evals)               the most diverse checkpoint at each accuracy level, to
                                            compare methods at matched accuracy
    largest_accuracy_drop(evals)            how far accuracy ever fell below its best so far
    summarise_seed(task, settings, ...)     one seed's runs: each method's last evaluation, its
                                            frontier at --match-accuracy, its logged shares, and
                                            its exact metrics on the training prompts
    aggregate_seeds(results, methods)       mean +- std over seeds of every metric (the population
                                            std, ddof = 0), and the per-seed differences between
                                            the methods the chapter compares
    print_summary(metrics, ...)             that table, as text

Imports the task and the model only; train_reasoning.py calls it.
"""
import math
from typing import Protocol

import numpy as np
import torch

from measures.distributions import entropy, total_variation
from reasoning.arithmetic import SumTask
from tiny_lm import GPT


def answer_logprobs(model: GPT, task: SumTask, ns) -> list[torch.Tensor]:
    """For each prompt n, log pi(y|n) of every correct answer y (in valid_answers order), exactly:
    the summed token log-probs, in float64, differentiable (reasoning/sample_free.py trains on
    them). One forward pass over all answers of all prompts."""
    answers = [task.valid_answers(n) for n in ns]
    texts = [y for a in answers for y in a]
    device = model.lm_head.weight.device
    prompts = task.prompts([n for n, a in zip(ns, answers) for _ in a]).to(device)
    completions, mask = (t.to(prompts.device) for t in task.completions(texts))
    logp = model.completion_logprobs(prompts, completions, mask).sum(1).double().cpu()
    return list(torch.split(logp, [len(a) for a in answers]))


@torch.no_grad()
def answer_probabilities(model: GPT, task: SumTask, ns) -> list[torch.Tensor]:
    """For each prompt n, pi(y|n) of every correct answer y (in valid_answers order), exactly."""
    return [logp.exp() for logp in answer_logprobs(model, task, ns)]


def large_group_advantages(p: float) -> tuple[float, float]:
    """(A+, A-): the group-normalised 0/1 reward in the large-group limit, for a prompt answered
    correctly with probability p. The group mean is p and the std sqrt(p (1 - p)), so a correct
    answer gets A+ = sqrt((1 - p) / p) and anything else A- = -sqrt(p / (1 - p))."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))


def answer_target(p_sft: torch.Tensor, eta: float) -> torch.Tensor:
    """pi* = pi_sft * exp(A/eta) / Z on one prompt, over its N - 1 correct answers and one outcome,
    last, for "anything else" (every wrong or malformed completion together).

    p_sft: [N - 1], pi_sft of each correct answer. A is large_group_advantages of the SFT policy's
    success rate p = sum(p_sft). Computed in log space (A/eta reaches 20 and more).
    """
    p = float(p_sft.sum().clamp(1e-12, 1 - 1e-12))
    a_plus, a_minus = large_group_advantages(p)
    log_w = torch.cat([p_sft.double().clamp_min(1e-300).log() + a_plus / eta,
                       torch.tensor([math.log(1 - p) + a_minus / eta], dtype=torch.float64)])
    return (log_w - torch.logsumexp(log_w, 0)).exp()


def tv_to_target(p: torch.Tensor, target: torch.Tensor) -> float:
    """TV distance between a model and pi* on one prompt. p: [N - 1], the model's probability of
    each correct answer; target: answer_target, with "anything else" last. The model's "anything
    else" is what its correct answers leave over."""
    return float(total_variation(torch.cat([p, (1 - p.sum()).clamp_min(0).view(1)]), target))


def effective_number(p: torch.Tensor) -> float:
    """exp(entropy) of p normalised to sum 1: N for a uniform p over N outcomes, 1 for a one-hot p.
    Over a prompt's correct answers, the effective number of correct answers (whatever P(correct)
    is)."""
    return float(entropy(p / p.sum()).exp())


def exact_metrics(model: GPT, task: SumTask, ns, targets: list[torch.Tensor]) -> dict:
    """No sampling: P(correct), the effective number of correct answers and the TV distance to pi*,
    each averaged over the prompts ns (targets[i] is answer_target of prompt ns[i])."""
    probs = answer_probabilities(model, task, ns)
    tv = [tv_to_target(p, t) for p, t in zip(probs, targets)]
    # pi* puts almost all its mass on correct answers, so tv_to_target is mostly 1 - P(correct)
    # until the model is accurate. The shape part alone: TV between p(y | correct) and
    # pi*(y | correct).
    tv_shape = [float(total_variation(p / p.sum(), t[:-1] / t[:-1].sum()))
                for p, t in zip(probs, targets)]
    # Does a method favour longer answers? The mean length (characters, "." included) of a correct
    # answer under p(y | correct); pi* has the SFT policy's.
    lengths = [torch.tensor([len(y) for y in task.valid_answers(n)], dtype=torch.float64)
               for n in ns]
    correct_length = [float((p / p.sum() * l).sum()) for p, l in zip(probs, lengths)]
    return {"exact_accuracy": float(np.mean([float(p.sum()) for p in probs])),
            "correct_length": float(np.mean(correct_length)),
            # N - 1 when the model spreads evenly over the correct answers, 1 when it has
            # collapsed onto one
            "effective_correct": float(np.mean([effective_number(p) for p in probs])),
            "tv_to_target": float(np.mean(tv)),
            "tv_shape": float(np.mean(tv_shape))}


# A completion counts as outside the SFT policy's support when pi_sft gives it less than this: a
# 200-iteration run samples about 780 completions of each training prompt (200 x 32 prompts x G = 8
# over 66 prompts), so the SFT sampler would write such a completion less than once (0.08 times).
SFT_SUPPORT = 1e-4


@torch.no_grad()
def evaluate(model: GPT, task: SumTask, ns, k: int, seed: int, targets, sft_model: GPT) -> dict:
    """Held-out metrics, averaged over the prompts ns. Every model is evaluated on the same random
    stream (seeded generator), so differences between models are not sampling luck."""
    device = model.lm_head.weight.device
    eval_gen = torch.Generator(device=device).manual_seed(10_000 + seed)
    prompts = task.prompts(ns).to(device)
    tokens, _, mask = model.sample(prompts, task.MAX_COMPLETION, task.end_token, k,
                                   generator=eval_gen)
    texts = [task.decode(row) for row in tokens.tolist()]
    correct = torch.tensor([task.is_correct(ns[i // k], t) for i, t in enumerate(texts)])
    correct = correct.view(len(ns), k)
    groups = [texts[i * k : (i + 1) * k] for i in range(len(ns))]
    distinct_correct = [len({t for t, ok in zip(g, c) if ok})
                        for g, c in zip(groups, correct.tolist())]
    # Where the samples that are not correct go: a wrong sum in the right format, or a malformed
    # string; and whether the SFT policy would ever have written them.
    well_formed = torch.tensor([task.is_well_formed(t) for t in texts]).view(len(ns), k)
    logp_sft = sft_model.completion_logprobs(prompts.repeat_interleave(k, 0), tokens, mask).sum(1)
    return {
        "accuracy": float(correct.float().mean()),
        "distinct_correct": float(np.mean(distinct_correct)),
        "wellformed_wrong": float((well_formed & ~correct).float().mean()),
        "malformed": float((~well_formed).float().mean()),
        "outside_sft_support": float((logp_sft < math.log(SFT_SUPPORT)).float().mean()),
        **exact_metrics(model, task, ns, targets),
    }


ACCURACY_LEVELS = np.round(np.arange(0.0, 1.0001, 0.02), 2)


def diversity_frontier(evals: list, levels=ACCURACY_LEVELS) -> np.ndarray:
    """The accuracy-diversity frontier of one run, from its evaluations during training: for each
    accuracy level, the largest effective number of correct answers among the checkpoints whose
    exact held-out accuracy is at least that level (NaN where no checkpoint got there): the most
    diverse of them, not the first to get there. Diversity falls as accuracy rises during RL, so
    comparing methods at one iteration mixes the two; the frontier compares them at matched
    accuracy."""
    accuracy = np.array([e["exact_accuracy"] for e in evals])
    effective = np.array([e["effective_correct"] for e in evals])
    return np.array([effective[accuracy >= lv].max() if (accuracy >= lv).any() else np.nan
                     for lv in levels])


def largest_accuracy_drop(evals: list) -> float:
    """How far held-out accuracy (exact) ever fell below the best it had reached earlier in the run:
    max over evaluations of (best so far - now). A run that only climbs scores 0; a collapse that
    later recovers still shows, which the last evaluation alone would hide."""
    accuracy = np.array([e["exact_accuracy"] for e in evals])
    return float((np.maximum.accumulate(accuracy) - accuracy).max())


def targets_of(sft_model: GPT, task: SumTask, ns, eta: float) -> list[torch.Tensor]:
    """pi* of every prompt in ns, from the SFT policy: the same for every method."""
    return [answer_target(p, eta) for p in answer_probabilities(sft_model, task, ns)]


# ---------------------------------------------------------------------------------------------
# One seed's runs, then over seeds: the table the chapter prints.
# ---------------------------------------------------------------------------------------------

class SummarySettings(Protocol):
    """What summarise_seed reads from a script's settings (train_reasoning.Settings has each)."""
    device: str
    eta: float             # pi*'s temperature
    eval_samples: int      # samples per held-out prompt for the sampled measures
    match_accuracy: float  # the accuracy at which the frontier is read


def summarise_seed(task: SumTask, settings: SummarySettings, seed: int, sft_path,
                   runs: dict) -> dict:
    """One seed: the SFT start's evaluation and every method's last one, with its frontier at
    --match-accuracy, its largest accuracy drop, the mean of each logged share (how often its clip
    or brake acted) and its exact metrics on the training prompts ("train_..."). runs: method ->
    train_reasoning.train_rl's result."""
    sft_model = GPT.load(sft_path, map_location=settings.device)
    targets = targets_of(sft_model, task, task.heldout_n, settings.eta)
    train_targets = targets_of(sft_model, task, task.train_n, settings.eta)
    sft_eval = evaluate(sft_model, task, task.heldout_n, settings.eval_samples, seed, targets,
                        sft_model)
    evals = {"sft": [sft_eval], **{m: r["history"]["evals"] for m, r in runs.items()}}
    models = {"sft": sft_model, **{m: r["model"] for m, r in runs.items()}}
    final = {}
    for name, history in evals.items():
        at_level = diversity_frontier(history, [settings.match_accuracy])[0]
        final[name] = {**history[-1],
                       "effective_at_accuracy": None if np.isnan(at_level) else float(at_level),
                       "largest_accuracy_drop": largest_accuracy_drop(history)}
        final[name].pop("iteration", None)
        if name != "sft":
            steps = runs[name]["history"]["steps"]
            final[name].update({k: float(np.mean(v)) for k, v in steps.items()})
        # The same exact metrics on the training prompts: does RL treat them differently?
        train = exact_metrics(models[name], task, task.train_n, train_targets)
        final[name].update({f"train_{k}": v for k, v in train.items()})
    return {"sft_model": sft_model, "runs": runs, "final": final, "targets": targets}


# The comparisons the chapter draws, when both sides were run: (method, baseline).
COMPARISONS = [("lad", "grpo"), ("lad-kl", "grpo-kl"), ("lad-fixed", "lad-kl"), ("grpo-kl", "grpo"),
               ("lad-kl", "lad")]
COMPARED = ["exact_accuracy", "effective_correct", "tv_to_target", "tv_shape",
            "effective_at_accuracy", "largest_accuracy_drop"]


def mean_and_spread(values: list) -> tuple[float | None, float | None]:
    """Mean and population std (ddof = 0, numpy's default: this chapter's convention) over seeds,
    skipping None (a seed that never reached a level)."""
    known = [v for v in values if v is not None]
    return (float(np.mean(known)), float(np.std(known))) if known else (None, None)


def aggregate_seeds(results: list, methods: list) -> dict:
    """results: one summary per seed, each {"final": name -> metrics, "runs": method -> run}.
    Per method: the mean over seeds of every metric, their std, the per-seed values; the time per
    iteration and its ratio to GRPO's; per comparison, the per-seed differences."""
    metrics = {}
    for name in results[0]["final"]:
        values = {k: [r["final"][name][k] for r in results] for k in results[0]["final"][name]}
        spread = {k: mean_and_spread(v) for k, v in values.items()}
        metrics[name] = {k: m for k, (m, _) in spread.items()}
        metrics[name]["std"] = {k: s for k, (_, s) in spread.items()}
        metrics[name]["per_seed"] = values
        reached = [v is not None for v in values["effective_at_accuracy"]]
        metrics[name]["seeds_reaching_match_accuracy"] = sum(reached)
    seconds = {m: [r["runs"][m]["seconds_per_iteration"] for r in results] for m in methods}
    metrics["seconds_per_iteration"] = {m: float(np.mean(s)) for m, s in seconds.items()}
    if "grpo" in seconds:  # each seed's ratio is measured within one run, on the same machine state
        metrics["time_over_grpo"] = {m: float(np.mean(np.divide(s, seconds["grpo"])))
                                     for m, s in seconds.items()}
    metrics["differences"] = {}
    for a, b in COMPARISONS:
        if a in metrics and b in metrics:
            metrics["differences"][f"{a} - {b}"] = {}
            for k in COMPARED:
                d = [None if x is None or y is None else x - y
                     for x, y in zip(metrics[a]["per_seed"][k], metrics[b]["per_seed"][k])]
                mean, std = mean_and_spread(d)
                metrics["differences"][f"{a} - {b}"][k] = {"per_seed": d, "mean": mean, "std": std}
    return metrics


def print_summary(metrics: dict, seeds: list, eval_samples: int, match_accuracy: float,
                  n_heldout: int) -> None:
    """The table aggregate_seeds computed, as text."""
    names = [n for n in metrics if "per_seed" in metrics[n]]
    print(f"\n{n_heldout} held-out prompts, k = {eval_samples} samples each, "
          f"mean ± std over seeds {seeds}")
    print(f"{'':28s}" + "".join(f"{name:>17s}" for name in names))
    keys = list(dict.fromkeys(k for n in names for k in metrics[n]["per_seed"]))
    for k in keys:
        label = f"effective at acc >= {match_accuracy:g}" if k == "effective_at_accuracy" else k
        print(f"{label:28s}" + "".join(
            f"{metrics[n][k]:>9.3f} ± {metrics[n]['std'][k]:<5.3f}"
            if metrics[n].get(k) is not None else f"{'-':>17s}" for n in names))
    print(f"{'  (seeds that got there)':28s}" + "".join(
        f"{metrics[n]['seeds_reaching_match_accuracy']:>13d} / {len(seeds)}" for n in names))
    print("seconds per RL iteration (median): "
          + ", ".join(f"{m} {t:.3f}" for m, t in metrics["seconds_per_iteration"].items()))
    if "time_over_grpo" in metrics:
        print("time per iteration / GRPO's:       "
              + ", ".join(f"{m} {t:.2f}" for m, t in metrics["time_over_grpo"].items()))
    for pair, diffs in metrics["differences"].items():
        print(f"{pair:20s}" + "   ".join(
            f"{k} {d['mean']:+.3f} ± {d['std']:.3f} ["
            + " ".join("-" if x is None else f"{x:+.2f}" for x in d["per_seed"]) + "]"
            for k, d in diffs.items() if d["mean"] is not None))

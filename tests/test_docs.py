"""The front page and the chapter pages against the repository: every table is its committed file's,
every committed file is written by the command printed beside its table, every link resolves, and a
short command changes no committed file.

The pages quote numbers; the files hold them. A table row here is rebuilt from its file with the
page's rounding, and must appear on the page as it is, in the section that prints the file's
command.
The commands are the ones docs/reproduction.md lists, one per committed file, and each is parsed
with its script's own parser: the settings it gives must be the ones the file records.
"""

import dataclasses
import hashlib
import importlib
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in (REPOSITORY / "docs").glob("*.md"))
README_WORDS = 2500  # a front page a newcomer reads in ten minutes
SETUP_LINES = 40  # the set-up and test commands come before this line of README.md


def text(page: str) -> str:
    return (REPOSITORY / page).read_text()


def load(name: str) -> dict:
    return json.loads((REPOSITORY / "plots" / name).read_text())


# ---------------------------------------------------------------------------------------------
# Reading a page: sections, table rows, commands.
# ---------------------------------------------------------------------------------------------


def section(page: str, heading: str) -> str:
    """The text under the first heading of `page` that contains `heading`, up to the next heading of
    the same or a higher level."""
    lines = text(page).splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and heading in line:
            level = len(line) - len(line.lstrip("#"))
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if lines[j].startswith("#")
                    and len(lines[j]) - len(lines[j].lstrip("#")) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[i:end])
    raise AssertionError(f"{page} has no heading containing {heading!r}")


def code_lines(markdown: str) -> list[str]:
    """The lines inside ``` blocks, comments after '  #' dropped."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.split("  #")[0].strip())
    return lines


def table_rows(markdown: str) -> list[str]:
    return [line.strip() for line in markdown.splitlines() if line.strip().startswith("|")]


def reproduction_commands() -> dict:
    """file -> the command that writes it, from the table of docs/reproduction.md: each row names
    its files and its command in backticks."""
    commands = {}
    for row in table_rows(
        section("docs/reproduction.md", "Every command that writes a committed file")
    ):
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) < 2 or not cells[1].startswith("`"):
            continue
        files = re.findall(r"`(plots/[^`]+)`", cells[0])
        command = cells[1].strip("`")
        for name in files:
            assert name not in commands, f"docs/reproduction.md names {name} twice"
            commands[name] = command
    return commands


def parse_command(command: str):
    """The settings a documented command asks for, parsed by its script's own parser, as a dict."""
    words = shlex.split(command)
    while "=" in words[0]:  # VARIABLE=value before the command
        words = words[1:]
    if words[:2] == ["python", "-m"]:  # a package's command line: PACKAGE/__main__.py
        module, words = importlib.import_module(f"{words[2]}.__main__"), words[1:]
    else:
        assert words[0] == "python" and words[1].endswith(".py"), command
        module = importlib.import_module(words[1][:-3])
    if hasattr(module, "parse_args"):
        settings = module.parse_args(words[2:])
    else:
        from cli.settings import parse_settings

        settings = parse_settings(module.Settings, words[2:], "")
    return dataclasses.asdict(settings)


# ---------------------------------------------------------------------------------------------
# The tables, rebuilt from the committed files with the pages' rounding. Each function returns the
# rows a page must show (each row as the end of a table line).
# ---------------------------------------------------------------------------------------------


def masses(m: dict) -> str:
    return " / ".join(f"{x:.2f}" for x in m["mode_mass"])


def bandit_row(label: str, m: dict, digits: int = 3) -> str:
    """TV to pi*, max arm, entropy, modes, and the step time over that of `step_time.relative_to`
    (the file keeps three decimals of it)."""
    cells = [
        label,
        f"{m['tv']:.{digits}f}",
        f"{m['max_prob']:.{digits}f}",
        f"{m['entropy']:.3f}",
        f"{m['modes_recovered']} / 3",
        f"{m['step_time_ratio']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def target_row(m: dict, digits: int = 3) -> str:
    cells = [
        "target `pi*`",
        "0",
        f"{m['max_prob']:.{digits}f}",
        f"{m['entropy']:.3f}",
        f"{m['modes_recovered']} / 3",
    ]
    return "| " + " | ".join(cells) + " | |"  # no step time


def bandit_main_rows(name: str, digits: int = 3) -> list[str]:
    metrics = load(name)
    return [
        bandit_row("`lad-fixed`", metrics["lad-fixed"], digits),
        bandit_row("`grpo`", metrics["grpo"], digits),
        target_row(metrics["target"], digits),
    ]


def bandit_pi_old_rows() -> list[str]:
    metrics = load("ablation_pi_old.json")
    runs = [
        ("`lad-fixed`", "fixed at `pi_0`", "lad-fixed"),
        ("`lad`", "refreshed", "lad"),
        ("`grpo`", "fixed at `pi_0` (`--grpo-pi-old fixed`)", "grpo, pi_old fixed"),
        ("`grpo`", "refreshed", "grpo"),
    ]
    rows = []
    for label, pi_old, key in runs:
        m = metrics[key]
        rows.append(
            f"| {label} | {pi_old} | {m['tv']:.3f} | {m['max_prob']:.3f} | {m['entropy']:.3f} | "
            f"{masses(m)} |"
        )
    return rows


def bandit_divergence_rows() -> list[str]:
    metrics = load("ablation_divergences.json")
    rows = []
    for d in ["kl", "rkl", "jf", "tv", "hd", "js"]:
        plain, centred = metrics[d], metrics[f"{d}, centred A"]
        rows.append(
            f"| `{d}` | {plain['tv']:.3f} | {centred['tv']:.3f} | {plain['step_time_ratio']:.3f} |"
        )
    return rows


def bandit_eta_rows() -> list[str]:
    metrics = load("ablation_eta.json")
    rows = []
    for k in [0.5, 1, 2, 4, 8, 16]:
        m = metrics[f"1/eta={k:g}"]
        rows.append(
            f"| {k:g} | {m['target_max_prob']:.3f} | {m['max_prob']:.3f} | {m['tv']:.3f} | "
            f"{m['modes_recovered']} / 3 |"
        )
    return rows


def entropy_bonus_run(metrics: dict, coef: float) -> dict:
    """The GRPO run of the entropy-bonus ablation with this coefficient: plain `grpo` for 0, and
    `grpo, entropy_coef=c` (the settings field's name) for the others."""
    return metrics["grpo" if coef == 0 else f"grpo, entropy_coef={coef:g}"]


def bandit_entropy_bonus_rows() -> list[str]:
    metrics = load("ablation_entropy_bonus.json")
    rows = []
    lad = metrics["lad-fixed"]
    rows.append(f"| `lad-fixed` | {lad['tv']:.3f} | {lad['max_prob']:.3f} | {masses(lad)} |")
    for coef in [0, 0.1, 0.3, 1, 1.3, 3]:
        m = entropy_bonus_run(metrics, coef)
        rows.append(
            f"| `grpo`, `entropy_coef` {coef:g} | {m['tv']:.3f} | {m['max_prob']:.3f} | "
            f"{masses(m)} |"
        )
    return rows


def bandit_baseline_rows() -> list[str]:
    metrics = load("ablation_baselines.json")
    flowrl, raw = metrics["flowrl"], metrics["flowrl, raw A"]
    return [
        bandit_row("`lad-fixed`", metrics["lad-fixed"]),
        bandit_row("`grpo`", metrics["grpo"]),
        bandit_row(
            f"`flowrl`, normalised reward, `flowrl_reward_scale` "
            f"{flowrl['flowrl_reward_scale']:.2f}", flowrl
        ),
        bandit_row(f"`flowrl`, raw `A`, `flowrl_reward_scale` {raw['flowrl_reward_scale']:g}", raw),
        bandit_row("`entadv`", metrics["entadv"]),
        bandit_row("`clip-cov`", metrics["clip-cov"]),
        bandit_row("`kl-cov`", metrics["kl-cov"]),
        target_row(metrics["target"]),
    ]


def mean_std(r: dict, key: str, digits: int) -> str:
    return f"{r[key]:.{digits}f} ± {r['std'][key]:.{digits}f}"


def one_or_more(r: dict, key: str, digits: int, seeds: int) -> str:
    """mean ± std over several seeds; the value alone for one seed."""
    return mean_std(r, key, digits) if seeds > 1 else f"{r[key]:.{digits}f}"


def at_accuracy(r: dict, seeds: int) -> str:
    """The diversity frontier at P(correct) 0.6: mean ± std over the seeds that got there."""
    if r["effective_at_accuracy"] is None:
        return ""
    reached = r["seeds_reaching_match_accuracy"]
    return f"{mean_std(r, 'effective_at_accuracy', 1)} ({reached}/{seeds} seeds)"


def largest_drop(r: dict, seeds: int) -> str:
    fell = sum(d > 0.2 for d in r["per_seed"]["largest_accuracy_drop"])
    return f"{mean_std(r, 'largest_accuracy_drop', 2)} ({fell}/{seeds} seeds > 0.2)"


def gpt_cells(r: dict, seeds: int) -> list[str]:
    """P(correct), effective correct answers, TV to pi*, its shape part."""
    return [
        one_or_more(r, "exact_accuracy", 2, seeds),
        one_or_more(r, "effective_correct", 1, seeds),
        one_or_more(r, "tv_to_target", 2, seeds),
        one_or_more(r, "tv_shape", 2, seeds),
    ]


def gpt_main_rows() -> list[str]:
    metrics = load("reasoning_metrics.json")
    seeds = len(metrics["settings"]["seeds"])
    rows = ["| `sft` | " + " | ".join(gpt_cells(metrics["sft"], seeds)) + " |  |  |  |"]
    for method in metrics["settings"]["methods"]:
        r = metrics[method]
        cells = gpt_cells(r, seeds) + [
            at_accuracy(r, seeds),
            largest_drop(r, seeds),
            f"{metrics['time_over_grpo'][method]:.2f}",
        ]
        rows.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return rows


def gpt_training_prompt_rows() -> list[str]:
    metrics = load("reasoning_metrics.json")
    runs = ["sft"] + metrics["settings"]["methods"]
    return [
        "| P(correct) | "
        + " | ".join(f"{metrics[m]['train_exact_accuracy']:.2f}" for m in runs)
        + " |",
        "| effective correct answers | "
        + " | ".join(f"{metrics[m]['train_effective_correct']:.1f}" for m in runs)
        + " |",
    ]


def gpt_k3_rows() -> list[str]:
    rows = []
    for name, label in [
        ("reasoning_metrics.json", "k2 on each completion"),
        ("reasoning_k3.json", "k3 per token"),
    ]:
        metrics = load(name)
        for method in ["grpo-kl", "lad-kl"]:
            r = metrics[method]
            rows.append(
                f"| {label} | `{method}` | "
                + " | ".join(gpt_cells(r, 5) + [at_accuracy(r, 5)])
                + " |"
            )
    return rows


def gpt_token_ratio_rows() -> list[str]:
    main, token = load("reasoning_metrics.json"), load("reasoning_token_ratio.json")
    rows = [
        ("", "sft", main["sft"]),
        ("sequence", "lad-fixed", main["lad-fixed"]),
        ("token", "lad-fixed", token["lad-fixed"]),
        ("sequence or token", "lad-kl", main["lad-kl"]),
    ]
    return [
        f"| {level} | `{method}` | "
        + " | ".join(gpt_cells(r, 5) + [mean_std(r, "correct_length", 2)])
        + " |"
        for level, method, r in rows
    ]


def gpt_minibatch_rows() -> list[str]:
    rows = []
    for name, lr in [
        ("reasoning_minibatches.json", "5e-5"),
        ("reasoning_minibatches_lr1e-4.json", "1e-4"),
    ]:
        metrics = load(name)
        for method in ["grpo", "lad"]:
            r = metrics[method]
            acted = (
                f"{100 * r['clipped']:.1f}% of tokens"
                if method == "grpo"
                else f"{100 * r['past_target']:.1f}% of completions"
            )
            cells = gpt_cells(r, 5)[:3] + [at_accuracy(r, 5), largest_drop(r, 5), acted]
            rows.append(f"| {lr} | `{method}` | " + " | ".join(cells) + " |")
    return rows


def gpt_group32_rows() -> list[str]:
    metrics = load("reasoning_ablation_group32.json")
    return [
        f"| `{m}` | " + " | ".join(gpt_cells(metrics[m], 5) + [at_accuracy(metrics[m], 5)]) + " |"
        for m in metrics["settings"]["methods"]
    ]


LONG_RUNS = [
    ("reasoning_long_sft.json", "`A` sft, 1500 iterations"),
    ("reasoning_long_group.json", "`A` group"),
    ("reasoning_long_sft-normalised.json", "`A` sft-normalised"),
    ("reasoning_long_lr5e-4.json", "`A` sft, lr 5e-4"),
    ("reasoning_long_group32.json", "`A` sft, 32 samples per prompt"),
    ("reasoning_long_rkl_sft.json", "`A` sft, f = rkl, 1500 iterations"),
    ("reasoning_long_rkl_sft-sampled.json", "`A` sft-sampled, f = rkl, 1500 iterations"),
    ("reasoning_long_rkl_sft_3000.json", "`A` sft, f = rkl, 3000 iterations"),
]
# lad-fixed with each divergence, and lad-kl with f = kl at kl_coef 1: (file, the row's label)
DIVERGENCE_RUNS = [(f"reasoning_divergence_{f}.json", f"`lad-fixed`, f = {f}")
                   for f in ("js", "kl", "rkl", "jf", "tv", "hd")] + [
    ("reasoning_lad_kl_forward.json", "`lad-kl`, f = kl, kl_coef 1")] + [
    (f"reasoning_divergence_{f}_lr{lr}.json", f"`lad-fixed`, f = {f}, lr {lr}")
    for lr in ("5e-4", "1e-3") for f in ("js", "kl", "rkl", "jf", "tv", "hd")] + [
    (f"reasoning_lad_kl_forward_lr{lr}.json", f"`lad-kl`, f = kl, kl_coef 1, lr {lr}")
    for lr in ("5e-4", "1e-3")]


def lowest_tv_at_accuracy(evals: list, accuracy: float = 0.9) -> str:
    """The lowest TV to pi* among a run's evaluations with P(correct) >= 0.9, and its iteration."""
    reached = [
        (e["tv_to_target"], e["iteration"]) for e in evals if e["exact_accuracy"] >= accuracy
    ]
    if not reached:
        return "–"
    tv, iteration = min(reached)
    return f"{tv:.2f} ({iteration})"


def gpt_long_rows() -> list[str]:
    rows = []
    for name, label in LONG_RUNS:
        metrics = load(name)
        seeds = metrics["settings"]["seeds"]
        for method in metrics["settings"]["methods"]:
            best = ", ".join(
                lowest_tv_at_accuracy(curves[method]["evals"]) for curves in metrics["curves"]
            )
            cells = (
                [label, f"`{method}`", ", ".join(map(str, seeds))]
                + gpt_cells(metrics[method], len(seeds))
                + [best]
            )
            rows.append("| " + " | ".join(cells) + " |")
    return rows


SAMPLE_FREE_RUNS = ["reasoning_sample_free.json", "reasoning_sample_free_lr2e-4.json"]
# The GPT chapter's answer to "how close can this GPT get to pi*, and which method comes closest":
# (file, method, the row's label). The advantage column is read from the file's settings, so a run
# with the oracle advantage cannot be shown as one that learns from samples.
HEADLINE_RUNS = [
    ("reasoning_distil_3000_lr3e-4.json", "distil", "distillation yardstick (`pi*` handed over)"),
    ("reasoning_dpg_3000.json", "dpg", "`dpg`, G = 8"),
    ("reasoning_dpg_3000_group16.json", "dpg", "`dpg`, G = 16"),
    ("reasoning_long_rkl_sft_3000_lr1e-3.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 1e-3"),
]
ADVANTAGE_LABELS = {"sft": "`sft`: oracle", "sft-normalised": "`sft-normalised`: oracle",
                    "sft-sampled": "`sft-sampled`: samples", "group": "`group`: samples"}


def gpt_sample_free_rows() -> list[str]:
    """The sample-free methods: each one's end, its training-prompt TV, and its lowest
    held-out TV at P(correct) >= 0.9 per seed."""
    rows = []
    for name in SAMPLE_FREE_RUNS:
        metrics = load(name)
        seeds = metrics["settings"]["seeds"]
        for method in metrics["settings"]["methods"]:
            best = ", ".join(lowest_tv_at_accuracy(c[method]["evals"]) for c in metrics["curves"])
            cells = ([f"`{method}`, lr {metrics['settings']['lr']:g}", ", ".join(map(str, seeds))]
                     + gpt_cells(metrics[method], len(seeds))
                     + [one_or_more(metrics[method], "train_tv_to_target", 2, len(seeds)), best])
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def gpt_headline_rows() -> list[str]:
    """The GPT chapter's headline, in the columns of the dpg page's tables (from_samples_rows)."""
    return from_samples_rows(HEADLINE_RUNS)


# docs/gpt_dpg.md: dpg against the distillation yardstick and the other methods' long runs.
# (file, method, the row's label); the advantage column is read from the file's settings.
FLOOR_RUNS = [
    ("reasoning_sample_free.json", "distil", "1000 steps, lr 1e-3"),
    ("reasoning_distil_3000_lr1e-3.json", "distil", "3000 steps, lr 1e-3"),
    ("reasoning_distil_3000_lr3e-4.json", "distil", "3000 steps, lr 3e-4"),
]
GRID_RUNS = (
    [(f"reasoning_dpg_lr{lr}.json", "dpg", f"`dpg`, lr {lr}") for lr in ("2e-4", "5e-4", "1e-3")]
    + [(f"reasoning_long_rkl_{adv}{'' if lr == '2e-4' else '_lr' + lr}.json", "lad-fixed",
        f"`lad-fixed`, f = rkl, lr {lr}")
       for adv in ("sft", "sft-sampled") for lr in ("2e-4", "5e-4", "1e-3")]
    + [(f"reasoning_long_{'sft' if lr == '2e-4' else 'kl_sft_lr' + lr}.json", method,
        f"`{method}`, lr {lr}")
       for method in ("grpo-kl", "lad-kl") for lr in ("2e-4", "5e-4", "1e-3")])
DPG_SAME_A_RUNS = [
    ("reasoning_dpg_lr2e-4.json", "dpg", "`dpg`, keep (the default)"),
    ("reasoning_dpg_drop.json", "dpg", "`dpg`, drop"),
]
DPG_LONG_RUNS = [
    ("reasoning_dpg_3000.json", "dpg", "`dpg`, lr 2e-4"),
    ("reasoning_long_rkl_sft_3000.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 2e-4"),
    ("reasoning_long_rkl_sft_3000_lr1e-3.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 1e-3"),
    ("reasoning_long_rkl_sft-sampled_3000_lr1e-3.json", "lad-fixed",
     "`lad-fixed`, f = rkl, lr 1e-3"),
    ("reasoning_long_grpo-kl_sft_3000.json", "grpo-kl", "`grpo-kl`, lr 2e-4"),
    ("reasoning_long_lad-kl_sft_3000.json", "lad-kl", "`lad-kl`, lr 2e-4"),
]
DPG_GROUP_RUNS = [
    ("reasoning_dpg_3000.json", "dpg", "`dpg`, G = 8, lr 2e-4"),
    ("reasoning_dpg_3000_group16.json", "dpg", "`dpg`, G = 16, lr 2e-4"),
]
DPG_SAMPLED_RUNS = [
    ("reasoning_dpg_sft-sampled.json", "dpg", "`dpg`, lr 2e-4"),
    ("reasoning_dpg_lr2e-4.json", "dpg", "`dpg`, lr 2e-4"),
    ("reasoning_long_rkl_sft-sampled.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 2e-4"),
    ("reasoning_long_rkl_sft.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 2e-4"),
]


def lowest_tv_at_95(evals: list) -> str:
    """The lowest TV to pi* among a run's evaluations with P(correct) >= 0.95, and its iteration."""
    reached = [(e["tv_to_target"], e["iteration"]) for e in evals if e["exact_accuracy"] >= 0.95]
    if not reached:
        return "–"
    tv, iteration = min(reached)
    return f"{tv:.3f} ({iteration})"


def from_samples_rows(runs: list) -> list[str]:
    """Each run's end (mean ± std over its seeds, three digits: the goal is a distance of 0.03),
    the advantage it learned from, and its lowest TV at P(correct) >= 0.95 per seed."""
    rows = []
    for name, method, label in runs:
        metrics = load(name)
        seeds = metrics["settings"]["seeds"]
        advantage = ("none" if method in ("distil", "exact")
                     else ADVANTAGE_LABELS[metrics["settings"]["advantage_source"]])
        r = metrics[method]
        best = ", ".join(lowest_tv_at_95(c[method]["evals"]) for c in metrics["curves"])
        cells = ([label, advantage, ", ".join(map(str, seeds)),
                  f"{metrics['settings']['iterations']}"]
                 + [one_or_more(r, key, 3, len(seeds))
                    for key in ("exact_accuracy", "tv_to_target", "tv_shape")]
                 + [one_or_more(r, "effective_correct", 1, len(seeds)), best])
        rows.append("| " + " | ".join(cells) + " |")
    return rows


# docs/gpt_dpg.md, the falls: the long runs with and without samples, at each Adam beta2.
# (file, method, the row's label, what samples the run learns from)
FALL_RUNS = [
    ("reasoning_distil_3000_lr3e-4.json", "distil", "`distil`, lr 3e-4", "none"),
    ("reasoning_distil_3000_lr1e-3.json", "distil", "`distil`, lr 1e-3", "none"),
    ("reasoning_long_rkl_sft_3000_lr1e-3.json", "lad-fixed", "`lad-fixed`, f = rkl, lr 1e-3",
     "`pi_sft` (frozen)"),
    ("reasoning_long_rkl_sft_3000_lr1e-3_beta2-0.95.json", "lad-fixed",
     "`lad-fixed`, f = rkl, lr 1e-3", "`pi_sft` (frozen)"),
    ("reasoning_dpg_3000.json", "dpg", "`dpg`, lr 2e-4", "the policy"),
    ("reasoning_dpg_3000_beta2-0.95.json", "dpg", "`dpg`, lr 2e-4", "the policy"),
]


def falls_rows() -> list[str]:
    """Each run's Adam beta2 (0.999 where the file predates the flag), the largest fall in
    P(correct) of each seed, and where the run ends."""
    rows = []
    for name, method, label, samples in FALL_RUNS:
        metrics = load(name)
        seeds = metrics["settings"]["seeds"]
        r = metrics[method]
        falls = ", ".join(f"{x:.2f}" for x in r["per_seed"]["largest_accuracy_drop"])
        cells = [label, samples, f"{metrics['settings'].get('adam_beta2', 0.999):g}",
                 ", ".join(map(str, seeds)), falls,
                 one_or_more(r, "exact_accuracy", 3, len(seeds)),
                 one_or_more(r, "tv_to_target", 3, len(seeds))]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def gpt_divergence_rows() -> list[str]:
    rows = []
    for name, label in DIVERGENCE_RUNS:
        metrics = load(name)
        seeds = metrics["settings"]["seeds"]
        [method] = metrics["settings"]["methods"]
        cells = ([label, ", ".join(map(str, seeds))] + gpt_cells(metrics[method], len(seeds))
                 + [mean_std(metrics[method], "largest_accuracy_drop", 2),
                    mean_std(metrics[method], "outside_sft_support", 2)])
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def gpt_baseline_rows() -> list[str]:
    baselines, main = load("reasoning_baselines.json"), load("reasoning_metrics.json")
    rows = ["| `sft` | " + " | ".join(gpt_cells(baselines["sft"], 5)) + " |  |  |"]
    for method in baselines["settings"]["methods"]:
        r = baselines[method]
        rows.append(
            f"| `{method}` | "
            + " | ".join(gpt_cells(r, 5) + [at_accuracy(r, 5)])
            + f" | {baselines['time_over_grpo'][method]:.2f} |"
        )
    for method in ["lad", "lad-kl"]:
        r = main[method]
        rows.append(
            f"| `{method}` (main table) | "
            + " | ".join(gpt_cells(r, 5) + [at_accuracy(r, 5)])
            + f" | {main['time_over_grpo'][method]:.2f} |"
        )
    return rows


def method_of(run: dict) -> str:
    return run.get("method", run.get("loss"))


def trl_rows(name: str) -> list[str]:
    """A row per seed (held-out reward before, after LAD, after GRPO), then mean ± std over
    seeds."""
    metrics = load(name)
    runs = {(r["seed"], method_of(r)): r for r in metrics["runs"]}
    rows = []
    for seed in metrics["settings"]["seeds"]:
        lad, grpo = runs[seed, "lad"], runs[seed, "grpo"]
        assert lad["heldout_reward_before"] == grpo["heldout_reward_before"]  # the same warm start
        rows.append(
            f"| {seed} | {lad['heldout_reward_before']:.3f} | {lad['heldout_reward_after']:.3f} | "
            f"{grpo['heldout_reward_after']:.3f} |"
        )
    summary = metrics["summary"]

    def ms(method, what):
        return f"{summary[method][what + '_mean']:.3f} ± {summary[method][what + '_std']:.3f}"

    rows.append(
        f"| mean ± std | {ms('lad', 'before')} | {ms('lad', 'after')} | {ms('grpo', 'after')} |"
    )
    return rows


# (page, heading of the section that holds the table, the files whose command the section prints,
# the rows). Every table of numbers on the pages is here.
TABLES = [
    (
        "docs/bandit.md",
        "LAD against GRPO",
        ["bandit_metrics.json"],
        lambda: bandit_main_rows("bandit_metrics.json"),
    ),
    (
        "docs/bandit_studies.md",
        "Sampling noise",
        ["bandit_exact.json"],
        lambda: bandit_main_rows("bandit_exact.json", 4),
    ),
    ("docs/bandit.md", "Fixed or refreshed", ["ablation_pi_old.json"], bandit_pi_old_rows),
    ("docs/bandit.md", "Which f-divergence", ["ablation_divergences.json"], bandit_divergence_rows),
    ("docs/bandit_studies.md", "How sharp a target", ["ablation_eta.json"], bandit_eta_rows),
    (
        "docs/bandit.md",
        "an entropy bonus",
        ["ablation_entropy_bonus.json"],
        bandit_entropy_bonus_rows,
    ),
    ("docs/baselines.md", "On the bandit", ["ablation_baselines.json"], bandit_baseline_rows),
    ("docs/baselines.md", "On the small GPT", ["reasoning_baselines.json"], gpt_baseline_rows),
    ("docs/gpt.md", "Five seeds, 200 iterations", ["reasoning_metrics.json"], gpt_main_rows),
    ("docs/gpt.md", "How close this GPT gets", sorted({n for n, _, _ in HEADLINE_RUNS}),
     gpt_headline_rows),
    ("docs/gpt_dpg.md", "The distillation yardstick, longer", [n for n, _, _ in FLOOR_RUNS],
     lambda: from_samples_rows(FLOOR_RUNS)),
    ("docs/gpt_dpg.md", "One learning-rate grid", sorted({n for n, _, _ in GRID_RUNS}),
     lambda: from_samples_rows(GRID_RUNS)),
    ("docs/gpt_dpg.md", "### 3000 iterations", [n for n, _, _ in DPG_LONG_RUNS],
     lambda: from_samples_rows(DPG_LONG_RUNS)),
    ("docs/gpt_dpg.md", "### The falls", [n for n, _, _, _ in FALL_RUNS], falls_rows),
    ("docs/gpt_dpg.md", "### A larger group", [n for n, _, _ in DPG_GROUP_RUNS],
     lambda: from_samples_rows(DPG_GROUP_RUNS)),
    ("docs/gpt_dpg.md", "Groups whose completions share one A", [n for n, _, _ in DPG_SAME_A_RUNS],
     lambda: from_samples_rows(DPG_SAME_A_RUNS)),
    ("docs/gpt_dpg.md", "The estimated success rate", [n for n, _, _ in DPG_SAMPLED_RUNS],
     lambda: from_samples_rows(DPG_SAMPLED_RUNS)),
    ("docs/gpt_studies.md", "Training prompts", ["reasoning_metrics.json"],
     gpt_training_prompt_rows),
    ("docs/gpt_studies.md", "k2 or k3", ["reasoning_k3.json"], gpt_k3_rows),
    ("docs/gpt_studies.md", "Token or sequence ratio", ["reasoning_token_ratio.json"],
     gpt_token_ratio_rows),
    ("docs/gpt_studies.md", "Mini-batches",
     ["reasoning_minibatches.json", "reasoning_minibatches_lr1e-4.json"], gpt_minibatch_rows),
    ("docs/gpt_studies.md", "More samples per prompt", ["reasoning_ablation_group32.json"],
     gpt_group32_rows),
    ("docs/gpt_studies.md", "Can any method reach", [name for name, _ in LONG_RUNS],
     gpt_long_rows),
    ("docs/gpt_studies.md", "How close this GPT can get", SAMPLE_FREE_RUNS, gpt_sample_free_rows),
    ("docs/gpt_studies.md", "The divergence as a lever", [name for name, _ in DIVERGENCE_RUNS],
     gpt_divergence_rows),
    (
        "docs/trl.md",
        "Five seeds on this machine",
        ["lad_trl_metrics.json"],
        lambda: trl_rows("lad_trl_metrics.json"),
    ),
    (
        "docs/trl.md",
        "Another machine, simulated",
        ["lad_trl_metrics_no_avx.json"],
        lambda: trl_rows("lad_trl_metrics_no_avx.json"),
    ),
]


@pytest.mark.parametrize(
    "page,heading,files,rows", TABLES, ids=[f"{t[0]}:{t[1]}:{i}" for i, t in enumerate(TABLES)]
)
def test_every_table_is_its_committed_file_beside_the_command_that_wrote_it(
    page, heading, files, rows
):
    """A number retyped by hand (0.96x for 0.987), a file rerun without the page being updated, or a
    table moved away from its command turns this red: each row is rebuilt from the file with the
    page's rounding, and the section that holds it prints the file's command from
    docs/reproduction.md."""
    body = section(page, heading)
    lines = table_rows(body)
    for row in rows():
        assert any(
            line.endswith(row) for line in lines
        ), f"{page}, '{heading}': no row ending with {row}"
    commands = reproduction_commands()
    printed = code_lines(body)
    for name in files:
        assert (
            commands[f"plots/{name}"] in printed
        ), f"{page}, '{heading}' does not print the command of {name}"


GPT_CHAPTER_WORDS = 3000  # a chapter is read in one sitting; its studies have their own page


def test_the_gpt_chapter_is_a_chapter_and_its_studies_have_their_own_page():
    """docs/gpt.md stays at most 3,000 words (wc -w) and keeps the template's sections; the studies
    live on docs/gpt_studies.md, which the chapter links."""
    chapter = text("docs/gpt.md")
    assert len(chapter.split()) <= GPT_CHAPTER_WORDS
    for heading in ["Background", "Quick facts", "Key equations", "Pseudocode", "Run it", "Results",
                    "Caveats", "Documentation", "References"]:
        assert re.search(rf"^## {heading}$", chapter, flags=re.M), heading
    assert "](gpt_studies.md" in chapter


@pytest.mark.parametrize("page", ["docs/bandit.md", "docs/gpt.md", "docs/baselines.md",
                                  "docs/trl.md"])
def test_every_chapter_page_is_read_in_one_sitting(page):
    """Each chapter page stays at most 3,000 words (wc -w); a study that outgrows it moves to the
    chapter's studies page (bandit_studies.md, gpt_studies.md, gpt_dpg.md)."""
    assert len(text(page).split()) <= GPT_CHAPTER_WORDS, page


def test_the_gpt_chapter_documentation_example_runs():
    """The example under Documentation is code a reader copies: a renamed argument of method_loss
    or group_advantages, or a settings field it no longer reads, would hand them a traceback."""
    blocks = re.findall(r"```python\n(.*?)```", section("docs/gpt.md", "Documentation"), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/gpt.md", "exec"), {})


@pytest.mark.parametrize("page", ["docs/gpt.md", "docs/gpt_studies.md", "docs/gpt_dpg.md"])
def test_every_table_of_numbers_on_the_gpt_pages_is_rebuilt_from_its_file(page):
    """A table row typed by hand, or moved to a page without being registered in TABLES, is a
    number no test checks: every table row with a decimal number in the chapter's Results and on
    its studies page must be one that TABLES rebuilds from a committed file for that page."""
    body = section(page, "Results") if page == "docs/gpt.md" else text(page)
    rebuilt = [row for p, _, _, rows in TABLES if p == page for row in rows()]
    lines = table_rows(body)
    headers = {i - 1 for i, line in enumerate(lines) if line.startswith("|---")}
    numeric = [line for i, line in enumerate(lines)
               if i not in headers and not line.startswith("|---") and re.search(r"\d\.\d", line)]
    assert numeric
    for line in numeric:
        assert any(line.endswith(row) for row in rebuilt), f"{page}: {line} is checked by no test"


# ---------------------------------------------------------------------------------------------
# The commands: each committed file is named by one, and the command gives the file's settings.
# ---------------------------------------------------------------------------------------------


def test_every_committed_file_in_plots_is_named_by_a_command_on_the_reproduction_page():
    """A committed figure or metrics file that no command writes cannot be checked or regenerated; a
    command for a file that is not committed points at nothing."""
    commands = reproduction_commands()
    committed = sorted(
        f"plots/{p.name}"
        for p in (REPOSITORY / "plots").iterdir()
        if p.suffix in (".json", ".png", ".gif")
    )
    assert sorted(commands) == committed


def metrics_commands() -> list[tuple[str, str]]:
    if not (REPOSITORY / "docs" / "reproduction.md").exists():
        return []  # test_every_committed_file_in_plots_is_named_... says what is missing
    return sorted(
        (name, command)
        for name, command in reproduction_commands().items()
        if name.endswith(".json")
    )


# Settings added after some committed files were written, with the default those files ran with.
ADDED_LATER = {"dpg_same_a_groups": "keep", "adam_beta2": 0.999}


@pytest.mark.parametrize("name,command", metrics_commands(), ids=[n for n, _ in metrics_commands()])
def test_each_committed_metrics_file_records_the_settings_of_its_command(name, command):
    """The command, parsed as its script parses it, gives exactly the settings the file records: a
    command edited on a page but not rerun (another --lr, a dropped --advantage-source, a seed list
    cut short) turns this red. The file names itself and its figure relative to the repository (an
    absolute temporary path names nothing on another clone)."""
    if "trl_demo" in command:
        pytest.importorskip("trl")
    recorded = load(Path(name).name)["settings"]
    assert recorded["metrics_json"] == name
    commands = reproduction_commands()
    for key in ("figure",):
        if key in recorded:  # the bandit's figure: committed, and written by the same command
            assert commands.get(recorded[key]) == command, (name, recorded[key])
    for key, value in parse_command(command).items():
        if value is None and key in ("figure", "metrics_json"):
            continue  # a default the script fills in from other settings: checked above
        if key not in recorded and ADDED_LATER.get(key, object()) == value:
            continue  # a setting added after the file was written: it ran with the default
        assert key in recorded and recorded[key] == value, (name, key, value, recorded.get(key))


def printed_bandit_commands() -> list[tuple[str, str]]:
    """(page, command) for every `python bandit.py ...` the pages print, in a code block (its
    comment dropped) or in backticks."""
    found = []
    for page in PAGES + ["EXERCISES.md"]:
        body = text(page)
        lines = code_lines(body) + re.findall(r"`(python bandit\.py[^`]*)`", body)
        found += [(page, line) for line in lines if line.startswith("python bandit.py")]
    return found


def test_every_bandit_command_on_the_pages_is_one_that_bandit_py_accepts():
    """A flag renamed in bandit.py but not on a page (--steps for --iterations, --grpo-entropy-coef
    for --entropy-coef, --pi-old now that the method names lad-fixed and lad say which pi_old) sends
    a reader to a usage error: each printed command is parsed by bandit.py's own parser."""
    commands = printed_bandit_commands()
    assert len(commands) > 10
    for page, command in commands:
        try:
            parse_command(command)
        except SystemExit as error:
            assert error.code == 0, f"{page}: bandit.py refuses {command!r}"  # 0: --help


def test_the_gpt_chapter_says_lad_kl_gives_the_same_numbers_with_either_ratio():
    """The token-ratio table prints one lad-kl row for both ratio levels: true only because with one
    update per rollout the two forms have the same gradient, to the last digit in every seed."""
    main, token = load("reasoning_metrics.json"), load("reasoning_token_ratio.json")
    for key in [
        "exact_accuracy",
        "effective_correct",
        "tv_to_target",
        "tv_shape",
        "correct_length",
    ]:
        assert main["lad-kl"]["per_seed"][key] == token["lad-kl"]["per_seed"][key], key


def test_the_trl_chapter_std_is_the_sample_std_and_the_gpt_chapter_std_the_population_std():
    """docs/reproduction.md states the two conventions once; a file written with the other one, or a
    page that says otherwise, would make the ± of one chapter mean something else."""
    trl = load("lad_trl_metrics.json")
    after = [r["heldout_reward_after"] for r in trl["runs"] if method_of(r) == "lad"]
    assert trl["summary"]["lad"]["after_std"] == pytest.approx(statistics.stdev(after))
    gpt = load("reasoning_metrics.json")["grpo"]
    assert gpt["std"]["exact_accuracy"] == pytest.approx(np.std(gpt["per_seed"]["exact_accuracy"]))
    page = text("docs/reproduction.md")
    assert "population std" in page and "sample std" in page


def test_the_numbers_the_gpt_page_gives_for_lad_kl_fixed_point_follow_from_the_loss():
    """docs/gpt.md: with one update per rollout lad-kl's LAD term is REINFORCE with the weight
    w(A) = -f'(exp(-A/eta)), so with the k2 anchor its fixed point is pi_sft exp(w(A)/beta) / Z, not
    pi*. On one prompt with SFT success rate p (two outcomes: correct, anything else; every correct
    answer has the same A, so the shape among them is pi_sft's for both), its TV to pi* is below
    0.005 with the SFT policy's A whatever p, and 0.04 to 0.11 with that A shifted so that Z = 1,
    for p from 0.05 to 0.7. With f = kl, w(A) = A/eta - 1, and at beta = 1 the fixed point is pi*.
    """
    import torch

    from lad_loss import get_divergence

    eta = beta = 0.25

    def weight(A, divergence="js"):
        return -float(
            get_divergence(divergence).f_prime(
                torch.tensor(math.exp(-A / eta), dtype=torch.float64)
            )
        )

    def share_correct(p, a_plus, a_minus):  # the correct answers' share of pi_sft * exp(a) / Z
        return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + a_plus - a_minus)))

    sft, shifted = [], []
    for p in [i / 100 for i in range(1, 100)]:
        a_plus, a_minus = math.sqrt((1 - p) / p), -math.sqrt(p / (1 - p))
        target = share_correct(p, a_plus / eta, a_minus / eta)
        sft.append(abs(target - share_correct(p, weight(a_plus) / beta, weight(a_minus) / beta)))
        log_z = math.log(p * math.exp(a_plus / eta) + (1 - p) * math.exp(a_minus / eta))
        b_plus, b_minus = a_plus - eta * log_z, a_minus - eta * log_z
        if 0.05 <= p <= 0.7:
            shifted.append(
                abs(target - share_correct(p, weight(b_plus) / beta, weight(b_minus) / beta))
            )
        kl = share_correct(p, weight(a_plus, "kl") / 1.0, weight(a_minus, "kl") / 1.0)
        assert kl == pytest.approx(target, abs=1e-12)
    assert max(sft) < 0.005
    assert (round(min(shifted), 2), round(max(shifted), 2)) == (0.04, 0.11)


# ---------------------------------------------------------------------------------------------
# The pages themselves.
# ---------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = heading.strip().lstrip("#").strip().lower()
    heading = re.sub(r"[^\w\- ]", "", heading)
    return heading.replace(" ", "-")


def anchors(page: Path) -> set:
    seen, result = {}, set()
    inside = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        if inside or not line.startswith("#"):
            continue
        base = slug(line)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    """A page that links to a file moved into a folder (bandit_task.py, variants.py) or to a section
    renamed on another page sends the reader nowhere."""
    source = REPOSITORY / page
    body = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", body)
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        path, _, anchor = link.partition("#")
        target = (source.parent / path).resolve() if path else source
        assert target.exists(), f"{page}: {link} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{page}: {link} has no such heading"


def test_the_front_page_is_short_and_starts_with_the_commands():
    """At most 2,500 words (wc -w), and the set-up and test commands within its first 40 lines: a
    newcomer reads it in ten minutes and runs something in the first one."""
    readme = text("README.md")
    assert len(readme.split()) <= README_WORDS
    head = "\n".join(readme.splitlines()[:SETUP_LINES])
    assert "pip install -r requirements.txt pytest" in head
    assert "python -m pytest" in head


def documentation_examples() -> list[tuple[str, str]]:
    """(page, code) for every ```python block in a page's Documentation section."""
    found = []
    for page in PAGES:
        if "\n## Documentation\n" in text(page):
            body = text(page).split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
            found += [(page, code) for code in re.findall(r"```python\n(.*?)```", body, flags=re.S)]
    return found


@pytest.mark.parametrize(
    "page,code", documentation_examples(), ids=[p for p, _ in documentation_examples()]
)
def test_every_documentation_example_runs_and_prints_the_tensors_its_comments_give(page, code):
    """A renamed argument or a changed default leaves a page's example broken, and a changed loss
    (a flipped sign, another std) leaves its comments wrong: each example runs, and every tensor a
    comment gives is among what it prints (compared without whitespace)."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, page, "exec"), {})
    output = re.sub(r"\s", "", printed.getvalue())
    comments = " ".join(line.split("#", 1)[1] for line in code.splitlines() if "#" in line)
    promised = re.findall(r"tensor\(([-0-9.,\[\]\s]*?)(?:,\s*\.\.\.)?\)", comments)
    assert promised, f"{page}: an example that promises no output"
    for numbers in promised:
        assert "tensor(" + re.sub(r"\s", "", numbers) in output, f"{page}: prints no {numbers}"


def test_the_pages_say_method_not_variant():
    """One word for what a run trains: 'method' (CONVENTIONS), on every page."""
    for page in PAGES:
        assert not re.search(r"\bvariants?\b", text(page), flags=re.I), page


# ---------------------------------------------------------------------------------------------
# A short command leaves the committed files alone.
# ---------------------------------------------------------------------------------------------


def tracked_state() -> tuple[dict, list]:
    """The content hash of every tracked file, and the untracked files git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True
    )
    hashes = {}
    for name in listed.stdout.decode().split("\0"):
        path = REPOSITORY / name
        if name and path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return hashes, sorted(untracked)


def test_a_quick_bandit_run_changes_no_committed_file():
    """`python bandit.py --quick` is the classroom command: it must write under runs/ (git-ignored),
    not over plots/bandit.png, the committed figure (the mistake a one-seed train_reasoning.py once
    made with the committed five-seed figures)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=REPOSITORY, capture_output=True
    )
    if inside.returncode != 0:
        pytest.skip("not a git work tree")
    before = tracked_state()
    subprocess.run(
        [sys.executable, "bandit.py", "--quick"],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )
    assert tracked_state() == before

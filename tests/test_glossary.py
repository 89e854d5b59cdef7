"""docs/metrics.md explains every key the scripts write, and only those.

A reader of a metrics file or a log line looks a number up by its key, so a key that a script writes
and the glossary lacks (a metric added to evaluation.py, a statistic added to a method's loss, a
new TRL log key) fails here, and so does a glossary entry that nothing writes any more (a metric
renamed in the code but not on the page).

The keys come from the committed plots/*.json, from quick runs of train_reasoning.py (every method,
on a task cut down to a few prompts) and bandit.py (every method, and the eta ablation), from the
fields of bandit.Run (what the bandit's figures read), and from the log of lad_trl.py's demo (TRL
installed). Every dict key at every level counts, except two kinds that are names of data, not of
metrics:
  * the name of a run or of a pair of runs: a method (`grpo`, `lad-fixed`, ...), a bandit
    ablation's label (`1/eta=4`, `kl, centred A`, ...) or a compared pair (`lad - grpo`). They key
    the rows, `seconds_per_iteration`, `time_over_grpo`, `differences`, `curves`, `summary` and
    `step_time.seconds`; the code's own lists give them (METHODS, ablation_runs, COMPARISONS).
  * the keys of `settings`, which are the writing script's flags (the fields of its Settings
    dataclass, read from its source): only a key there that is not a flag needs an entry.
A list's elements are values (the per-seed lists, mode_mass), or dicts whose keys count (curves,
evals, runs). The glossary's entries are its bullets that start with a key in backticks.
"""
import ast
import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest

import bandit
import train_reasoning
from bandit_study.ablations import ABLATIONS, ablation_runs
from bandit_study.task import std_at_target
from cli.settings import parse_settings
from reasoning.arithmetic import SumTask
from reasoning.evaluation import COMPARISONS

REPOSITORY = Path(__file__).resolve().parent.parent
GLOSSARY = REPOSITORY / "docs" / "metrics.md"
# Which script writes each committed metrics file, by the start of its name, and where its Settings
# dataclass is declared (the demo's may live beside the trainer or in trl_demo/).
WRITERS = {"bandit": ["bandit.py"], "ablation_": ["bandit.py"],
           "reasoning_": ["train_reasoning.py"], "lad_trl": ["lad_trl.py", "trl_demo"]}


def documented() -> set:
    """The keys the glossary explains: each bullet that starts with `key`."""
    return set(re.findall(r"^- `([^`]+)`", GLOSSARY.read_text(), flags=re.M))


def run_names() -> set:
    """Every name a run, or a pair of runs, is stored under."""
    settings = parse_settings(bandit.Settings, [])
    std = std_at_target(settings.eta, settings.centre_advantages)
    ablation_keys = {key for name in ABLATIONS for key, _, _ in ablation_runs(name, settings, std)}
    methods = (train_reasoning.METHODS + train_reasoning.BASELINES + train_reasoning.MATCHING
               + train_reasoning.SAMPLE_FREE)
    return (set(bandit.BANDIT_METHODS) | ablation_keys | set(methods)
            | {f"{a} - {b}" for a, b in COMPARISONS})


def flags(sources: list) -> set:
    """The fields of the Settings dataclass declared in `sources` (files, or folders of them), read
    from the source: lad_trl.py cannot be imported without TRL."""
    files = []
    for source in sources:
        path = REPOSITORY / source
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name == "Settings":
                return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    raise AssertionError(f"no Settings dataclass in {sources}")


def metric_keys(tree, script_flags: set, names: set) -> set:
    """Every key of a metrics tree that names a metric (the module docstring says which do not)."""
    keys = set()
    if isinstance(tree, list):
        for item in tree:
            keys |= metric_keys(item, script_flags, names)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key == "settings" and isinstance(value, dict):
                keys |= {"settings"} | (set(value) - script_flags)
                continue
            if key not in names:
                keys.add(key)
            keys |= metric_keys(value, script_flags, names)
    return keys


def settings_sources(path: Path) -> list:
    """Where the Settings of the script that wrote `path` are declared."""
    sources = next((s for prefix, s in WRITERS.items() if path.name.startswith(prefix)), None)
    assert sources, f"{path.name}: which script writes it? (add it to WRITERS)"
    return sources


@pytest.fixture(scope="module")
def committed_keys() -> set:
    """The keys of every committed metrics file (12 MB of JSON: read once)."""
    names, keys = run_names(), set()
    for path in sorted((REPOSITORY / "plots").glob("*.json")):
        keys |= metric_keys(json.loads(path.read_text()), flags(settings_sources(path)), names)
    return keys


def not_in_glossary(keys: set) -> set:
    """The keys with no entry; `eval_X`, TRL's X measured on the held-out prompts, needs X's."""
    glossary = documented()
    return {k for k in keys if k not in glossary
            and not (k.startswith("eval_") and k.removeprefix("eval_") in glossary)}


@pytest.fixture(scope="module")
def reasoning_keys(tmp_path_factory) -> set:
    """The keys train_reasoning.py writes with --metrics-json: every method, one iteration, a tiny
    model, on two held-out and four training prompts (a few seconds)."""
    out = tmp_path_factory.mktemp("reasoning")
    task = SumTask()
    task.train_n, task.heldout_n = [10, 11, 12, 13], [14, 15]
    methods = (train_reasoning.METHODS + train_reasoning.BASELINES + train_reasoning.MATCHING
               + train_reasoning.SAMPLE_FREE)
    argv = ["--quick", "--methods", *methods, "--iterations", "1", "--eval-every", "1",
            "--sft-steps", "2", "--sft-batch-size", "8", "--n-layer", "1", "--n-head", "2",
            "--n-embd", "16", "--prompts-per-iteration", "2", "--group-size", "2",
            "--eval-samples", "16", "--workers", "1", "--threads", "1",
            "--metrics-json", str(out / "m.json"), "--out-dir", str(out),
            "--sft-cache-dir", str(out)]
    with pytest.MonkeyPatch.context() as patch:  # the figures are not what is checked here
        patch.setattr(train_reasoning, "draw_answers", lambda *args: out / "answers.png")
        patch.setattr(train_reasoning, "draw_training", lambda *args: out / "training.png")
        train_reasoning.main(argv, task=task)
    written = json.loads((out / "m.json").read_text())
    return metric_keys(written, flags(["train_reasoning.py"]), run_names())


@pytest.fixture(scope="module")
def bandit_keys(tmp_path_factory) -> set:
    """The keys bandit.py writes for every method and for the eta ablation (its own targets), 20
    iterations each, and the fields of bandit.Run, which its figures read."""
    out = tmp_path_factory.mktemp("bandit")
    common = ["--quick", "--iterations", "20", "--timing-rounds", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bandit, "draw_runs", lambda *args: out / "figure.png")
        bandit.main(common + ["--methods", *bandit.BANDIT_METHODS, "--figure",
                              str(out / "methods.png"), "--metrics-json", str(out / "m.json")])
        bandit.main(common + ["--ablation", "eta", "--figure", str(out / "eta.png")])
    keys = {field.name for field in dataclasses.fields(bandit.Run)}
    for name in ("m.json", "eta.json"):
        keys |= metric_keys(json.loads((out / name).read_text()), flags(["bandit.py"]), run_names())
    return keys


@pytest.fixture(scope="module")
def trl_keys(tmp_path_factory) -> set:
    """The keys the TRL demo (python -m trl_demo) writes, and every key of its trainers' logs
    (TRL's and LAD's), for both methods: no warm start, one iteration."""
    pytest.importorskip("trl")
    demo = importlib.import_module("trl_demo.__main__")

    out = tmp_path_factory.mktemp("trl")
    logs = []

    def logged(trainer, *args):
        run = train_and_evaluate(trainer, *args)
        logs.extend(trainer.state.log_history)
        return run

    train_and_evaluate = demo.train_and_evaluate
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "train_and_evaluate", logged)
        demo.main(["--quick", "--sft-steps", "0", "--iterations", "1", "--eval-samples", "2",
                   "--methods", "lad", "grpo", "--out-dir", str(out / "runs"),
                   "--metrics-json", str(out / "m.json")])
    written = json.loads((out / "m.json").read_text())
    logged = {key for entry in logs for key in entry}
    return metric_keys(written, flags(WRITERS["lad_trl"]), run_names()) | logged


def test_every_key_of_a_committed_metrics_file_is_in_the_glossary(committed_keys):
    assert not_in_glossary(committed_keys) == set()


def test_every_key_train_reasoning_writes_is_in_the_glossary(reasoning_keys):
    # the step statistics of every kind of method, so that the run covered them
    assert {"clipped", "above_target", "past_target", "abs_log_ratio", "loss"} <= reasoning_keys
    assert not_in_glossary(reasoning_keys) == set()


def test_every_key_bandit_writes_is_in_the_glossary(bandit_keys):
    assert {"step_time_ratio", "target_entropy", "true_log_z"} <= bandit_keys
    assert not_in_glossary(bandit_keys) == set()


def test_every_key_the_trl_demo_writes_or_logs_is_in_the_glossary(trl_keys):
    assert {"lad/above_target", "clip_ratio/region_mean", "eval_reward"} <= trl_keys
    assert not_in_glossary(trl_keys) == set()


def test_every_glossary_entry_is_a_key_that_something_writes(committed_keys, reasoning_keys,
                                                             bandit_keys, trl_keys):
    written = committed_keys | reasoning_keys | bandit_keys | trl_keys
    written |= {k.removeprefix("eval_") for k in written}
    assert documented() - written == set()

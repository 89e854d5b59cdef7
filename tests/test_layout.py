"""The repository's shape, read from the code's own imports: the root is the reading order and a
chapter reaches no later one, the losses depend on torch and each other only, nothing imports a
script, the bandit and the GPT chapters need nothing of each other, and no two modules import each
other in a circle."""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The root holds the chapters, in reading order, and nothing else (README.md says why each is
# there).
CHAPTERS = ["grpo_loss.py", "lad_loss.py", "kl_penalty.py", "bandit.py", "tiny_lm.py",
            "train_reasoning.py", "lad_trl.py"]
# run from the command line, imported by no module
SCRIPTS = {"bandit", "train_reasoning", "trl_demo.__main__"}
LOSSES = {"grpo_loss", "lad_loss", "kl_penalty", "baselines.flowrl_loss", "baselines.entadv_loss",
          "baselines.cov_loss", "baselines.dpg_loss"}
# Readers of the code, not parts of it: they may import a script.
READERS = ("tests", "exercises", "solutions")
SOURCE_FOLDERS = ["baselines", "bandit_study", "reasoning", "measures", "cli", "plots", "trl_demo"]


def _modules() -> dict[str, Path]:
    """Every module of the repository, by its dotted name."""
    paths = [p for p in ROOT.glob("*.py")]
    for folder in SOURCE_FOLDERS + list(READERS):
        paths += sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else []
    names = {}
    for path in paths:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The repository modules that `path` imports (at module level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import mod` imports pkg.mod when that is a module, else a name of pkg
            candidates = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in candidates:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _is_reader(name: str) -> bool:
    return name.split(".")[0] in READERS


def _reachable(name: str) -> set[str]:
    """Every module that importing `name` loads, directly or through others."""
    seen, stack = set(), [name]
    while stack:
        for nxt in GRAPH[stack.pop()] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return seen


def test_the_root_holds_the_chapters_and_nothing_else():
    ("""A helper module dropped at the root (a second utils file, a copy of a loss) turns this
    red.""")
    assert sorted(p.name for p in ROOT.glob("*.py")) == sorted(CHAPTERS)
    assert len(CHAPTERS) <= 8


def test_a_chapter_reaches_no_later_chapter():
    """Read in order, every chapter has met what it imports: grpo_loss.py (the first) pulling in
    kl_penalty.py (the third) for a KL term, even through a helper module, turns this red."""
    names = [Path(c).stem for c in CHAPTERS]
    for i, chapter in enumerate(names):
        later = set(names[i + 1:]) & _reachable(chapter)
        assert not later, (chapter, later)


def test_the_losses_import_only_torch_and_each_other():
    """A loss that imports a script, the GPT or the plotting code could not be lifted into a trainer
    on its own; GRPO, the baseline, must not depend on LAD, the method compared with it."""
    for loss in LOSSES:
        assert GRAPH[loss] <= LOSSES, (loss, GRAPH[loss] - LOSSES)
        nodes = list(ast.walk(ast.parse(MODULES[loss].read_text())))
        third_party = {n.names[0].name.split(".")[0] for n in nodes if isinstance(n, ast.Import)}
        third_party |= {n.module.split(".")[0] for n in nodes
                        if isinstance(n, ast.ImportFrom) and n.module}
        outside = third_party - {"torch", "math", "dataclasses", "typing", "__future__"} - \
            {name.split(".")[0] for name in LOSSES}
        assert not outside, (loss, outside)
    assert "lad_loss" not in GRAPH["grpo_loss"]


def test_no_module_imports_a_script():
    """Only tests, exercises and solutions may import bandit.py, train_reasoning.py or the TRL
    demo's command line (trl_demo/__main__.py)."""
    for name, imported in GRAPH.items():
        if not _is_reader(name):
            assert not imported & SCRIPTS, (name, imported & SCRIPTS)


def test_the_bandit_does_not_pull_in_the_gpt():
    """The bandit's own modules import neither the GPT, its task nor its evaluation: a student runs
    the bandit with torch alone."""
    bandit_side = ["bandit"] + [n for n in MODULES if n.startswith("bandit_study")]
    for name in bandit_side:
        assert not {m for m in GRAPH[name] if m.startswith("reasoning") or m == "tiny_lm"}, name


def test_the_gpt_does_not_pull_in_the_bandit():
    """The GPT chapter's modules reach neither bandit.py nor bandit_study/, even through another
    module: what both chapters measure lives in measures/, below both."""
    gpt_side = ["train_reasoning", "tiny_lm"] + [n for n in MODULES if n.startswith("reasoning")]
    for name in gpt_side:
        reached = {m for m in _reachable(name) if m == "bandit" or m.startswith("bandit_study")}
        assert not reached, (name, reached)


def test_the_shared_measures_import_nothing_of_the_repository():
    """measures/ sits below both chapters: a measure that imported a chapter's module would tie
    the other chapter to it again."""
    for name in MODULES:
        if name.startswith("measures"):
            assert GRAPH[name] <= {"measures"}, (name, GRAPH[name])


def test_no_circles():
    """Two modules that import each other, directly or around a loop, cannot be read in order."""
    state = {}

    def visit(name, path):
        state[name] = "open"
        for nxt in sorted(GRAPH[name]):
            if state.get(nxt) == "open":
                pytest.fail("circle: " + " -> ".join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = "done"

    sys.setrecursionlimit(max(1000, 4 * len(GRAPH)))
    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_lines_are_at_most_100_characters():
    """The code is read in a side-by-side diff and on a laptop screen: the exercises, the checks,
    the solutions and the tests too, which students open as often as the chapters."""
    long = [f"{path.relative_to(ROOT)}:{i}" for path in MODULES.values()
            for i, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 100]
    assert not long, f"{len(long)} lines over 100 characters, first: {long[:5]}"

"""cli/settings.py: the one way every chapter script declares and parses its settings."""
import math
from dataclasses import dataclass

import pytest

from cli.settings import check, parse_settings, setting


@dataclass
class Demo:
    iterations: int = setting(4000, "rollouts", low=1, quick=400)
    eta: float = setting(0.25, "temperature", above=0)
    share: float = setting(0.5, "a share", above=0, below=1)
    divergence: str = setting("js", "LAD's f-divergence", choices=["js", "kl"])
    seeds: list[int] = setting([0], "seeds", low=0, distinct=True)
    methods: list[str] = setting(["lad", "grpo"], "methods", choices=["lad", "grpo", "flowrl"],
                                 distinct=True)
    kl_coef: float | None = setting(None, "beta", low=0, default_text="--eta")
    quick: bool = setting(False, "a short run")

    def __post_init__(self):
        check(self)
        if self.kl_coef is None:
            self.kl_coef = self.eta


def test_defaults_flags_lists_and_none():
    """Each field is a --flag with its type; lists take several values; a None default is resolved
    by the dataclass, not by the parser."""
    s = parse_settings(Demo, [])
    assert (s.iterations, s.eta, s.seeds, s.methods, s.kl_coef, s.quick) == \
        (4000, 0.25, [0], ["lad", "grpo"], 0.25, False)
    s = parse_settings(Demo, ["--iterations", "7", "--seeds", "1", "2", "--methods", "flowrl",
                              "--kl-coef", "0", "--divergence", "kl"])
    assert (s.iterations, s.seeds, s.methods, s.kl_coef, s.divergence) == (7, [1, 2], ["flowrl"], 0,
                                                                          "kl")


def test_quick_fills_in_only_what_was_not_given():
    """--quick's values apply to the flags left out; an explicit flag wins (a quick run with
    --iterations 9 runs 9)."""
    assert parse_settings(Demo, ["--quick"]).iterations == 400
    assert parse_settings(Demo, ["--quick", "--iterations", "9"]).iterations == 9


def test_a_default_list_is_not_shared_between_settings_objects():
    """A mutable default shared by every object would let one run's edit leak into the next."""
    a, b = Demo(), Demo()
    a.seeds.append(5)
    assert b.seeds == [0]


@pytest.mark.parametrize("argv,message", [
    (["--iterations", "0"], "--iterations: must be a finite number >= 1, got 0"),
    (["--eta", "nan"], "--eta: must be a finite number > 0, got nan"),
    (["--eta", "inf"], "--eta: must be a finite number > 0, got inf"),
    (["--share", "1"], "--share: must be a finite number > 0 and < 1, got 1"),
    (["--iterations", "2.5"], "--iterations: not an integer: '2.5'"),
    (["--seeds", "1", "1"], "--seeds values must be distinct, got 1 1"),
    (["--divergence", "xx"], "--divergence: invalid choice"),
    (["--methods", "lad", "ppo"], "--methods: invalid choice"),
])
def test_a_bad_value_is_one_line_and_exit_status_2(argv, message, capsys):
    """Before any work: argparse's one-line error naming the flag, no traceback."""
    with pytest.raises(SystemExit) as stop:
        parse_settings(Demo, argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error") or ": error:" in line]
    assert len(errors) == 1


@pytest.mark.parametrize("field,value,flag", [
    ("iterations", 0, "--iterations"), ("eta", -1.0, "--eta"), ("eta", math.nan, "--eta"),
    ("divergence", "xx", "--divergence"), ("seeds", [3, 3], "--seeds"),
    ("methods", [], "--methods"),
])
def test_settings_built_in_code_are_refused_the_same_way(field, value, flag):
    """A test or an exercise that builds Demo(...) directly gets a ValueError naming the flag, not a
    NaN twenty minutes later."""
    with pytest.raises(ValueError, match=flag):
        Demo(**{field: value})


def test_help_names_every_default_and_the_quick_value(capsys):
    with pytest.raises(SystemExit):
        parse_settings(Demo, ["--help"], "a demo")
    out = " ".join(capsys.readouterr().out.split())
    assert "rollouts (default: 4000; with --quick: 400; >= 1)" in out
    assert "beta (default: --eta; >= 0)" in out
    assert "seeds (default: 0; >= 0)" in out


@pytest.mark.parametrize("argv0,usage", [
    ("/repo/trl_demo/__main__.py", "usage: python -m trl_demo"), ("bandit.py", "usage: bandit.py")])
def test_usage_names_the_command_a_reader_types(argv0, usage, capsys, monkeypatch):
    """`python -m trl_demo` runs trl_demo/__main__.py: its usage line names the package, not
    __main__.py, which no reader can type; a script keeps its own name."""
    monkeypatch.setattr("sys.argv", [argv0])
    with pytest.raises(SystemExit):
        parse_settings(Demo, ["--help"], "a demo")
    assert capsys.readouterr().out.startswith(usage + " [-h]")

"""One way to declare a script's settings: a dataclass whose fields carry help, type and bounds.

Every chapter script (bandit.py, train_reasoning.py, lad_trl.py) declares its knobs the way
CleanRL's `Args` does, one line each, and this file builds the command line from them:

    @dataclass
    class Settings:
        steps: int = setting(4000, "optimiser steps per method", low=1, quick=400)
        eta: float = setting(0.25, "trust-region temperature", above=0)
        divergence: str = setting("js", "LAD's f-divergence", choices=["js", "kl"])
        seeds: list[int] = setting([0], "one or more seeds", low=0, distinct=True)

        def __post_init__(self):
            check(self)          # the bounds and choices above: a ValueError naming the flag

    settings = parse_settings(Settings, argv, "what the script does")

    setting(default, help, ...)      a field: its default, one line of help, and what a value must
                                     be (low <=, above <, below >, high >=, choices, distinct);
                                     `quick` is its value under --quick, unless the flag is given
    check(settings)                  every field against its bounds and choices, in declaration
                                     order: a ValueError that names the flag
                                     (`--eta must be > 0, got -1`)
    parse_settings(cls, argv, text)  the command line: --name-with-dashes for each field, types
                                     from the annotations, nargs="+" for lists, a switch for
                                     booleans; the defaults (and the --quick values) in --help. A
                                     bad value, a bad combination (the dataclass's own checks) or a
                                     bad path is one line on stderr and exit status 2, before any
                                     work starts
    number(cast, ...)                the argparse type behind each numeric flag

The checks live in the dataclass, so a settings object built in code (a test, an exercise) is
refused the same way as a command line, with a ValueError instead of an exit.
"""
import argparse
import dataclasses
import math
import sys
import types
import typing
from pathlib import Path

_BOUNDS = (("low", ">=", lambda v, b: v >= b), ("above", ">", lambda v, b: v > b),
           ("below", "<", lambda v, b: v < b), ("high", "<=", lambda v, b: v <= b))


def setting(default, help: str, *, low=None, above=None, below=None, high=None, choices=None,
            distinct: bool = False, quick=None, default_text: str | None = None):
    """A dataclass field for a script's settings (see the module docstring). `default_text` is what
    --help says when the default is None or computed from other settings ("--eta", say)."""
    metadata = {"help": help, "low": low, "above": above, "below": below, "high": high,
                "choices": None if choices is None else list(choices), "distinct": distinct,
                "quick": quick, "default_text": default_text}
    if isinstance(default, list):  # a mutable default: each settings object gets its own copy
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _rule(meta) -> str:
    return " and ".join(
        f"{sign} {meta[key]:g}" for key, sign, _ in _BOUNDS if meta[key] is not None
    )


def _problem(value, meta) -> str | None:
    """Why one value breaks its field's bounds or choices, or None."""
    if meta["choices"] is not None and value not in meta["choices"]:
        return f"must be one of {', '.join(map(str, meta['choices']))}, got {value}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        broken = [
            sign for key, sign, ok in _BOUNDS if meta[key] is not None and not ok(value, meta[key])
        ]
        if not math.isfinite(value) or broken:  # `not ok` also catches NaN
            rule = _rule(meta)
            return f"must be a finite number{' ' + rule if rule else ''}, got {value}"
    return None


def check(settings) -> None:
    """Every field of `settings` against its bounds and choices: a ValueError naming the first bad
    flag."""
    for f in dataclasses.fields(settings):
        meta, value = f.metadata, getattr(settings, f.name)
        if "help" not in meta or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ValueError(f"{flag(f.name)} needs at least one value")
        if meta["distinct"] and len(set(values)) != len(values):
            raise ValueError(
                f"{flag(f.name)} values must be distinct, got {' '.join(map(str, values))}"
            )
        for v in values:
            problem = _problem(v, meta)
            if problem:
                raise ValueError(f"{flag(f.name)} {problem}")


def number(cast, low=None, above=None, below=None, high=None):
    """An argparse type: a finite number of type `cast` within the bounds given. argparse turns the
    error into one line that names the flag, and exit status 2."""
    meta = {"low": low, "above": above, "below": below, "high": high, "choices": None}

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a{'n integer' if cast is int else ' number'}: {text!r}"
            )
        problem = _problem(value, meta)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    return parse


def _base_type(annotation):
    """(the type of one value, whether the field is a list) from an annotation such as
    `int`, `float | None` or `list[int]`."""
    is_list = typing.get_origin(annotation) is list
    if is_list:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation, is_list


def _help(f, meta) -> str:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    shown = meta["default_text"] or (
        " ".join(map(str, default)) if isinstance(default, list) else default
    )
    text = f"{meta['help']} (default: {'none' if shown is None else shown}"
    if meta["quick"] is not None:
        text += f"; with --quick: {meta['quick']}"
    rule = _rule(meta)
    return text + (f"; {rule}" if rule and not meta["choices"] else "") + ")"


def build_parser(cls, description: str) -> argparse.ArgumentParser:
    """The command line of a settings dataclass. Every default is argparse.SUPPRESS, so that the
    namespace holds only the flags that were given: --quick can then fill in the others."""
    script = Path(sys.argv[0])  # `python -m trl_demo` runs trl_demo/__main__.py: name the package
    prog = f"python -m {script.parent.name}" if script.name == "__main__.py" else None
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue
        kind, is_list = _base_type(hints[f.name])
        options = {"help": _help(f, meta), "dest": f.name}
        if kind is bool:
            options["action"] = "store_true"
        else:
            numeric = kind in (int, float)
            options["type"] = (
                number(kind, meta["low"], meta["above"], meta["below"], meta["high"])
                if numeric and not meta["choices"]
                else kind
            )
            if meta["choices"]:
                options["choices"] = meta["choices"]
            if is_list:  # --methods METHOD [METHOD ...], the choices listed in the help
                options["nargs"] = "+"
                options["metavar"] = f.name.removesuffix("s").upper()
        parser.add_argument(flag(f.name), **options)
    return parser


def parse_settings(cls, argv=None, description: str = ""):
    """The settings a command line asks for, every check done (see the module docstring)."""
    parser = build_parser(cls, description)
    given = vars(parser.parse_args(argv))
    if given.get("quick"):
        for f in dataclasses.fields(cls):
            if f.metadata.get("quick") is not None and f.name not in given:
                given[f.name] = f.metadata["quick"]
    try:
        return cls(**given)
    except ValueError as error:  # the dataclass's own checks: one line, exit status 2
        parser.error(str(error))

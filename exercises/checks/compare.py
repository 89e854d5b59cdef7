"""How a check compares an answer with the truth, and says what is wrong when it is not.

    assert_close(got, expected, what, mistakes={...})   within a tolerance float32 can meet
    number(got, what)                                   an answer the statement asks as a float
    assert_dtype(got, dtype, what)                      the input's dtype, where a statement asks
    unchanged_inputs(module)                            refuses an answer that edits its arguments
    tv(p, q)                                            the total variation distance of p and q

The tolerance is the one a correct answer computed in float32 can meet (FLOAT32_RTOL, relative to
the size of the numbers): every plausible wrong answer these checks know of is off by far more, so
float64 answers lose nothing by it. When an answer is wrong and equals a known mistake, the message
names the mistake; otherwise it names the first wrong entry (its index and, where the check says,
its input), what it should be, what came back, and how many entries are wrong.
"""
import functools
import inspect
import numbers

import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 1.2e-7: the relative spacing of float32 numbers
# A few dozen float32 roundings: what a correct float32 computation of a softmax, a log-sum-exp or a
# short sum of products can accumulate, relative to the size of its inputs.
FLOAT32_RTOL = 100 * FLOAT32_EPS
SHOWN_WHOLE = 12  # a failure lists every entry of a vector up to this long (the bandit's 10 arms)


def _double(value) -> torch.Tensor:
    # dtype here, not .to() after: torch.as_tensor(1.4179344...) alone rounds a Python float to
    # float32, and a float64 answer would then be compared with a float32 truth.
    return torch.as_tensor(value, dtype=torch.float64).detach()


def assert_close(got, expected, what: str, rtol: float = FLOAT32_RTOL,
                 atol: float | None = None, mistakes: dict | None = None, entry=None) -> None:
    """Fail unless |got - expected| <= atol + rtol * |expected| everywhere.

    atol defaults to rtol times the largest |expected| (a vector's small entries are then held to
    the precision of its large ones, as float32 computes them). mistakes: {message: wrong value}; if
    the answer equals one of the wrong values (within the same tolerance), its message is what the
    failure says. Otherwise the failure names the first wrong entry of a vector and what it should
    be; entry(i), if given, says which input entry i stands for (e.g. "ratio 1.2").
    """
    got, expected = _double(got), _double(expected)
    assert got.shape == expected.shape, \
        f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    finite = torch.isfinite(got)
    assert finite.all(), \
        f"{what} is not finite (overflow?): {_first(~finite, got, expected, entry)}"
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    allowed = (rtol * scale if atol is None else atol) + rtol * expected.abs()
    difference = (got - expected).abs()
    if (difference <= allowed).all():
        return
    for message, wrong in (mistakes or {}).items():
        wrong = _double(wrong)
        if wrong.shape == got.shape and ((got - wrong).abs() <= allowed).all():
            raise AssertionError(f"{what}: {message}")
    wrong = difference > allowed
    if got.numel() > 1:
        # a short vector is shown whole as well: the pattern of its errors is worth seeing
        whole = (f"; expected {_rounded(expected)}, got {_rounded(got)}"
                 if got.numel() <= SHOWN_WHOLE else "")
        raise AssertionError(
            f"{what}: {int(wrong.sum())} of {got.numel()} entries wrong; the first, "
            f"{_first(wrong, got, expected, entry)} (allowed difference {float(allowed.max()):.1e})"
            f"{whole}")
    raise AssertionError(
        f"{what}: expected {float(expected):.8g}, got {float(got):.8g}; difference "
        f"{float(difference):.2e}, allowed {float(allowed):.1e}")


def _first(wrong: torch.Tensor, got: torch.Tensor, expected: torch.Tensor, entry) -> str:
    """The first entry flagged in `wrong`: its index, its input if entry() names it, what it should
    be and what came back."""
    if got.dim() == 0:
        return f"expected {float(expected):.8g}, got {float(got):.8g}"
    index = tuple(int(i) for i in torch.nonzero(wrong)[0])
    where = index[0] if len(index) == 1 else index
    named = f", {entry(*index)}" if entry is not None else ""
    # + 0.0 shows a negative zero as 0
    return (f"entry {where}{named}: expected {float(expected[index]) + 0.0:.8g}, "
            f"got {float(got[index]) + 0.0:.8g}")


def _rounded(values: torch.Tensor) -> list:
    return [round(v, 6) for v in values.reshape(-1).tolist()]


def number(got, what: str) -> float:
    """got as a float, where a statement asks for a float: a Python or numpy number, or a 0-d tensor
    of any dtype, is what a student would return, and each is taken at its own precision. Anything
    else fails with a message that says what came back."""
    if isinstance(got, numbers.Real) and not isinstance(got, bool):
        return float(got)
    if isinstance(got, torch.Tensor) and got.dim() == 0 and not got.dtype == torch.bool:
        return float(got.detach())
    shape = f" of shape {tuple(got.shape)}" if hasattr(got, "shape") else ""
    raise AssertionError(
        f"{what} should be a number (a float, or a 0-d tensor); got a {type(got).__name__}{shape}"
        + (": return float(t) or t.item() for a one-entry tensor" if shape else ""))


def assert_dtype(got, dtype: torch.dtype, what: str) -> None:
    """The statement asks for the input's dtype: float64 for float64 input, float32 for float32.
    The value checks convert to float64 before comparing, so only this sees a float32 answer to
    float64 input (a torch.where with Python numbers, a new tensor of the default dtype) or a
    float64 answer to float32 input (a computation in float64 not converted back)."""
    assert isinstance(got, torch.Tensor), \
        f"{what} should return a tensor, got {type(got).__name__}"
    assert got.dtype == dtype, (
        f"{what} returned {got.dtype} for {dtype} input: return the input's dtype (compute in "
        f"float64 if you like, then convert back with .to(the input's dtype))")


class unchanged_inputs:
    """An exercise's module as a check calls it: each function the module defines runs on the
    check's tensors and fails if it changed one of them in place (`advantages -= mean`,
    `pi[0] = ...`). Without this, the check's own truth, computed from the same tensor afterwards,
    would be wrong too, and the failure would name some other mistake. Everything else the module
    holds (constants, classes, imported names) passes through unchanged; `.module` is the module."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        value = getattr(self.module, name)
        if inspect.isfunction(value) and value.__module__ == self.module.__name__:
            return _guarded(value)
        return value


def _guarded(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        bound = inspect.signature(function).bind(*args, **kwargs)
        before = {name: value.detach().clone() for name, value in bound.arguments.items()
                  if isinstance(value, torch.Tensor)}
        result = function(*args, **kwargs)
        for name, saved in before.items():
            if not torch.equal(bound.arguments[name].detach(), saved):
                raise AssertionError(
                    f"{function.__name__} changed its argument `{name}` in place (an in-place "
                    f"operation such as -=, /=, .clamp_() or an indexed assignment on the tensor "
                    f"it was given): the caller's tensor must come back as it was; compute on a "
                    f"copy ({name}.clone()) or write `{name} = {name} - ...`")
        return result
    return call


def tv(p, q) -> float:
    """0.5 * sum |p - q|, as a float."""
    return 0.5 * float((_double(p) - _double(q)).abs().sum())

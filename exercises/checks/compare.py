"""How a check compares an answer with the truth, and says what is wrong when it is not.

    assert_close(got, expected, what, mistakes={...})   within a tolerance float32 can meet
    tv(p, q)                                            the total variation distance of p and q

The tolerance is the one a correct answer computed in float32 can meet (FLOAT32_RTOL, relative to
the size of the numbers): every plausible wrong answer these checks know of is off by far more, so
float64 answers lose nothing by it. When an answer is wrong and equals a known mistake, the message
names the mistake; otherwise it names the first wrong entry (its index and, where the check says,
its input), what it should be, what came back, and how many entries are wrong.
"""
import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 1.2e-7: the relative spacing of float32 numbers
# A few dozen float32 roundings: what a correct float32 computation of a softmax, a log-sum-exp or a
# short sum of products can accumulate, relative to the size of its inputs.
FLOAT32_RTOL = 100 * FLOAT32_EPS
SHOWN_WHOLE = 12  # a failure lists every entry of a vector up to this long (the bandit's 10 arms)


def _double(value) -> torch.Tensor:
    return torch.as_tensor(value).detach().to(torch.float64)


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


def tv(p, q) -> float:
    """0.5 * sum |p - q|, as a float."""
    return 0.5 * float((_double(p) - _double(q)).abs().sum())

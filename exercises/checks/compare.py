"""How a check compares an answer with the truth, and says what is wrong when it is not.

    assert_close(got, expected, what, mistakes={...})   within a tolerance that float32 can meet
    tv(p, q)                                            the total variation distance of two distributions

The tolerance is the one a correct answer computed in float32 can meet (FLOAT32_RTOL, relative to the
size of the numbers): every plausible wrong answer these checks know of is off by far more, so float64
answers lose nothing by it. When an answer is wrong and equals a known mistake, the message names the
mistake; otherwise it shows what was expected, what came back, and by how much they differ.
"""
import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 1.2e-7: the relative spacing of float32 numbers
# A few dozen float32 roundings: what a correct float32 computation of a softmax, a log-sum-exp or a
# short sum of products can accumulate, relative to the size of its inputs.
FLOAT32_RTOL = 100 * FLOAT32_EPS


def _double(value) -> torch.Tensor:
    return torch.as_tensor(value).detach().to(torch.float64)


def assert_close(got, expected, what: str, rtol: float = FLOAT32_RTOL, atol: float | None = None,
                 mistakes: dict | None = None) -> None:
    """Fail unless |got - expected| <= atol + rtol * |expected| everywhere.

    atol defaults to rtol times the largest |expected| (a vector's small entries are then held to the
    precision of its large ones, as float32 computes them). mistakes: {message: wrong value}; if the
    answer equals one of the wrong values (within the same tolerance), its message is what the failure
    says.
    """
    got, expected = _double(got), _double(expected)
    assert got.shape == expected.shape, f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    assert torch.isfinite(got).all(), f"{what} is not finite (overflow?): {got.tolist()}"
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    allowed = (rtol * scale if atol is None else atol) + rtol * expected.abs()
    difference = (got - expected).abs()
    if (difference <= allowed).all():
        return
    for message, wrong in (mistakes or {}).items():
        wrong = _double(wrong)
        if wrong.shape == got.shape and ((got - wrong).abs() <= allowed).all():
            raise AssertionError(f"{what}: {message}")
    raise AssertionError(
        f"{what}: expected {_rounded(expected)}, got {_rounded(got)}; largest difference "
        f"{float(difference.max()):.2e}, allowed {float(allowed.max()):.1e}")


def _rounded(values: torch.Tensor):
    return [round(v, 6) for v in values.reshape(-1).tolist()] if values.dim() else round(float(values), 8)


def tv(p, q) -> float:
    """0.5 * sum |p - q|, as a float."""
    return 0.5 * float((_double(p) - _double(q)).abs().sum())

"""The builtin functions of the language (`min`, `ceil`, `divisible`, …): what they compute and how
their usage reads in a diagnostic."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from .values import describe


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The MobileNet/EfficientNet channel rounding (tf models `_make_divisible`, torchvision):
    round to the nearest multiple of `divisor`, never below `min_value`, never down by more than 10 %."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def number(name: str, v: Any) -> float:
    """`v` if it is a number (not a boolean), else a TypeError naming the function `name`."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"`{name}` needs numbers, got {describe(v)}")
    return v


def numbers(name: str, args: tuple[Any, ...]) -> list[float]:
    """The numbers `name` takes either as arguments (`max(a, b)`) or as one list (`max(list)`): each a
    number, never a boolean (`max(true, 0)` would be 1 by accident of representation)."""
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not items:
        raise ValueError(f"`{name}` of no numbers")
    return [number(name, v) for v in items]


def _sum(values: Any) -> float:
    if not isinstance(values, list):
        raise TypeError(f"`sum` needs a list of numbers, got {describe(values)}")
    return sum(number("sum", v) for v in values)


def _cumsum(values: Any) -> list[float]:
    """The running totals of a list: `cumsum([1, 2, 3])` is `[1, 3, 6]`, and `[0] + cumsum(n)` the
    index each of a run of stages starts at (timm's block_idx across stages)."""
    if not isinstance(values, list):
        raise TypeError(f"`cumsum` needs a list of numbers, got {describe(values)}")
    return list(itertools.accumulate(number("cumsum", v) for v in values))


def _digits(nd: Any) -> int:
    if isinstance(nd, bool) or not isinstance(nd, int) or abs(nd) > 64:  # round(5, -10**9) would take hours
        raise ValueError("the number of digits must be an integer between -64 and 64")
    return nd


def _log(x: Any, base: Any = None) -> float:
    """The natural logarithm, or the logarithm to `base` (RegNet's quantized widths use log(w / w0, w_m))."""
    x = number("log", x)
    if x <= 0:
        raise ValueError(f"the logarithm needs a positive number, got {x}")
    if base is None:
        return math.log(x)
    base = number("log", base)
    if base <= 0 or base == 1:
        raise ValueError(f"a logarithm's base must be positive and not 1, got {base}")
    return math.log(x) / math.log(base)


def _exp(x: Any) -> float:
    x = number("exp", x)
    if x > 709:  # e**709.78 is the largest double
        raise ValueError(f"exp({x}) is beyond the largest floating-point number")
    return math.exp(x)


BUILTINS: dict[str, Callable[..., Any]] = {
    "min": lambda *a: min(numbers("min", a)),
    "max": lambda *a: max(numbers("max", a)),
    "round": lambda x, nd=None: round(number("round", x)) if nd is None else round(x, _digits(nd)),
    "ceil": lambda x: math.ceil(number("ceil", x)),
    "floor": lambda x: math.floor(number("floor", x)),
    "int": lambda x: int(number("int", x)),
    "float": lambda x: float(number("float", x)),
    "abs": lambda x: abs(number("abs", x)),
    "sqrt": lambda x: math.sqrt(number("sqrt", x)),
    "log": lambda x, base=None: _log(x, base),
    "exp": _exp,
    "divisible": make_divisible,
    "len": lambda x: len(x),
    "sum": _sum,
    "cumsum": _cumsum,
}
BUILTIN_DOCS = {
    "min": "min(a, b, …) or min(list)", "max": "max(a, b, …) or max(list)",
    "round": "round(x) — Python's rounding (half to even)", "ceil": "ceil(x)", "floor": "floor(x)",
    "int": "int(x) — truncates", "float": "float(x)", "abs": "abs(x)", "sqrt": "sqrt(x)",
    "log": "log(x) — natural logarithm; log(x, base)", "exp": "exp(x)",
    "divisible": "divisible(v, divisor=8, min_value=divisor) — MobileNet/EfficientNet channel rounding",
    "len": "len(list)", "sum": "sum(list)", "cumsum": "cumsum(list) — running totals: cumsum([1, 2, 3]) == [1, 3, 6]",
}

"""Values and expressions of the emitted spec: attribute normalization, literals, and a small
expression type that knows its precedence (so emitted text has only the parentheses it needs)."""

from __future__ import annotations

import functools
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

from archdsl.ops import get_op, has_op, op_names
from archdsl.ops.base import resolve_padding

# Bare words the language reads as strings (`pad=same`, `avgpool(global)`, `mode=bilinear`).
SYMBOLS = frozenset({"same", "valid", "global", "nearest", "bilinear"})
LANGUAGE_WORDS = frozenset({
    "import", "block", "network", "input", "output", "inputs", "outputs", "expect", "repeat", "as", "if", "else",
    "stages", "and", "or", "not", "true", "false", "none", "in", "min", "max", "round", "ceil", "floor", "int",
    "float", "abs", "sqrt", "len", "sum", "divisible", "fast", "softmax_weights", "i",
})


@functools.cache
def reserved_names() -> frozenset[str]:
    """Names a block, parameter or value of an emitted spec must not take."""
    return frozenset(op_names()) | SYMBOLS | LANGUAGE_WORDS | frozenset(keyword.kwlist)


@dataclass(frozen=True)
class OpRef:
    """An op used as a value (`act=relu6`)."""

    name: str


# ---------------------------------------------------------------------------------------------
# attribute normalization: one canonical Python value per meaning, so instances compare equal


def _compact_pair(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


def _compact_pads(p: tuple[int, ...]) -> Any:
    if p[0] == p[1] == p[2] == p[3]:
        return p[0]
    if p[0] == p[1] and p[2] == p[3]:
        return (p[0], p[2])
    return p


def normalize(op: str, attrs: dict[str, Any], in_shape: tuple[int, ...]) -> dict[str, Any]:
    """Every attribute of the op (defaults filled in) with pairs and pads in their shortest form, so
    that equal meanings compare equal: a conv's half padding is None, TF's rule "same"."""
    attrs = dict(attrs)
    if op == "conv":
        hw = (in_shape[1], in_shape[2]) if len(in_shape) == 3 else (1, 1)
        pads = tuple(attrs["pad"])
        half = resolve_padding(None, attrs["kernel"], attrs["stride"], attrs["dilation"], hw)
        same = resolve_padding("same", attrs["kernel"], attrs["stride"], attrs["dilation"], hw)
        attrs["pad"] = None if pads == half else "same" if pads == same else _compact_pads(pads)
    elif op in ("maxpool", "avgpool") and attrs.get("kernel") != "global":
        attrs["pad"] = _compact_pads(tuple(attrs["pad"]))
        if attrs.get("stride") == attrs.get("kernel"):
            attrs["stride"] = None
    if op == "maxpool":
        attrs.pop("count_include_pad", None)
    out: dict[str, Any] = {}
    for key, field in get_op(op).Attrs.model_fields.items():
        if key in attrs:
            value = attrs[key]
        elif field.is_required():
            raise KeyError(f"{op}: {key}")
        elif op == "maxpool" and key == "count_include_pad":
            continue
        else:
            value = field.default
        out[key] = compact(key, value)
    return out


def compact(key: str, value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 4 and key == "pad":
        return _compact_pads(value)
    if isinstance(value, tuple):
        return _compact_pair(value)
    return value


def default_of(op: str, key: str) -> Any:
    """The compacted default of an attribute, or the marker `REQUIRED`."""
    field = get_op(op).Attrs.model_fields[key]
    return REQUIRED if field.is_required() else compact(key, field.default)


REQUIRED: Any = object()


# ---------------------------------------------------------------------------------------------
# expressions

# Precedence, loosest first, as in grammar.lark: ternary < or < and < not < comparison < sum < term
# < unary < power < postfix/atom.
TERNARY, OR, AND, NOT, COMPARE, SUM, TERM, UNARY, ATOM = range(9)


@dataclass(frozen=True)
class Expr:
    text: str
    prec: int = ATOM

    def at(self, prec: int) -> str:
        """The text, parenthesized if it binds looser than `prec`."""
        return self.text if self.prec >= prec else f"({self.text})"

    def __str__(self) -> str:
        return self.text


def _number(v: float | int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return f"{int(v)}.0"
    return repr(v)


def literal(v: Any, kernel_like: bool = False) -> Expr:
    """A Python value as spec text (booleans, none, numbers, symbols, strings, lists, shapes, ops)."""
    if isinstance(v, OpRef):
        return Expr(v.name)
    if v is None:
        return Expr("none")
    if isinstance(v, bool):
        return Expr("true" if v else "false")
    if isinstance(v, int | float):
        text = _number(v)
        return Expr(text, UNARY if text.startswith("-") else ATOM)
    if isinstance(v, str):
        if v in SYMBOLS:
            return Expr(v)
        return Expr('"' + re.sub(r'(["\\])', r"\\\1", v) + '"')
    if isinstance(v, tuple | list):
        if kernel_like and len(v) == 2 and all(isinstance(x, int) and x > 0 for x in v):
            return Expr(f"{v[0]}x{v[1]}")
        return Expr("[" + ", ".join(literal(x).text for x in v) + "]")
    raise TypeError(f"no spec literal for {type(v).__name__}")


def name(n: str) -> Expr:
    return Expr(n)


def times(a: Expr, k: int) -> Expr:
    return Expr(f"{a.at(TERM)} * {k}", TERM)


def floordiv(a: Expr, k: int) -> Expr:
    return Expr(f"{a.at(TERM)} // {k}", TERM)


def plus(a: Expr, b: Expr) -> Expr:
    return Expr(f"{a.at(SUM)} + {b.at(TERM)}", SUM)


def equals(a: Expr, b: Expr, op: str = "==") -> Expr:
    return Expr(f"{a.at(SUM)} {op} {b.at(SUM)}", COMPARE)


def negate(a: Expr) -> Expr:
    return Expr(f"not {a.at(NOT)}", NOT)


def ternary(c: Expr, a: Expr, b: Expr) -> Expr:
    return Expr(f"{c.at(OR)} ? {a.at(OR)} : {b.at(TERNARY)}", TERNARY)


def is_valid_value(v: Any) -> bool:
    """Whether `v` can be written as a spec literal (so it can be a parameter's value)."""
    if v is None or isinstance(v, bool | int | str | OpRef):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, tuple | list):
        return all(isinstance(x, int | float) and not isinstance(x, bool) for x in v) and len(v) <= 8
    return False


def op_of_class(cls: Any) -> OpRef | None:
    """The activation op a torch.nn activation class (or factory) stands for: nn.ReLU → relu."""
    import functools

    if isinstance(cls, functools.partial):
        cls = cls.func
    names = {"ReLU": "relu", "ReLU6": "relu6", "SiLU": "silu", "Hardswish": "hswish", "Hardsigmoid": "hsigmoid",
             "Sigmoid": "sigmoid", "Tanh": "tanh", "GELU": "gelu", "Mish": "mish", "Swish": "silu",
             "HardSwish": "hswish", "HardSigmoid": "hsigmoid"}
    n = names.get(getattr(cls, "__name__", ""))
    return OpRef(n) if n and has_op(n) else None

"""Spec expressions as Python (`_python_expression`: `c // 2`, `_make_divisible(c * w, 8)`), and
evaluated as the generated file will evaluate them (`_evaluate`): a constructor argument is written
as an expression of the block's parameters only where that expression gives every instance's value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import cache
from types import CodeType
from typing import TYPE_CHECKING

from archdsl.ops import py_number

from .text import _mentions, _unparenthesize

if TYPE_CHECKING:
    from archdsl.syntax import Node


def _is_in_channels(expr: Node) -> bool:
    """Whether a spec expression is `in.channels`."""
    from archdsl.syntax import Attribute, Name

    return (isinstance(expr, Attribute) and expr.name == "channels"
            and isinstance(expr.obj, Name) and expr.obj.id == "in")


_IN_CHANNELS = "in_channels"  # a block instance's input channels among its values (TorchCodegen._instance)


# The spec's functions a generated constructor may call, and the Python that computes each alike:
# a builtin, `math`'s, or a helper function the file defines (once, where it is used; see
# _function_helpers), named with a leading `_` so that no name from a spec can shadow it.
_PY_FUNCTIONS = {"int": "int", "min": "min", "max": "max", "abs": "abs", "float": "float", "round": "round",
                 "ceil": "math.ceil", "floor": "math.floor", "divisible": "_make_divisible"}


_FUNCTION_HELPERS = {
    "_make_divisible": '''def _make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The nearest multiple of `divisor`, at least `min_value`, never 10 % below `value` (MobileNet)."""
    least = divisor if min_value is None else min_value
    rounded = max(least, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded''',
}


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def _function_helpers(text: str) -> list[str]:
    """The helper functions `text` calls, each one's source."""
    return [src for name, src in _FUNCTION_HELPERS.items() if _mentions(text, f"{name}(")]


def _python_expression(node: Node, known: set[str], read: list[str]) -> str | None:
    """The Python source of a spec expression over the names `known` (and `in.channels`), each read
    listed in `read`; None if it uses anything else. Names come out as placeholders `\x01name\x01`
    until the constructor's argument names are known; numbers are written by py_number."""
    from archdsl.syntax import BinOp, BoolOp, Call, Index, Not, Ternary, Unary

    def go(n: Node) -> str | None:
        if isinstance(n, BinOp | BoolOp | Not | Unary):
            return _python_operator(n, go)
        if isinstance(n, Call) and n.func in _PY_FUNCTIONS and n.args and all(a.name is None for a in n.args):
            args = [go(a.value) for a in n.args]
            if any(a is None for a in args):
                return None
            return f"{_PY_FUNCTIONS[n.func]}({', '.join(_unparenthesize(str(a)) for a in args)})"
        if isinstance(n, Index):  # an element of a list parameter (`layers[2]`)
            obj, index = go(n.obj), go(n.index)
            return None if obj is None or index is None else f"{obj}[{_unparenthesize(index)}]"
        if isinstance(n, Ternary):
            cond, then, orelse = go(n.cond), go(n.then), go(n.orelse)
            if cond is None or then is None or orelse is None:
                return None
            return f"({then} if {_unparenthesize(cond)} else {orelse})"
        return _python_leaf(n, known, read)

    text = go(node)
    return None if text is None else _unparenthesize(text)


def _python_operator(n: Node, go: Callable[[Node], str | None]) -> str | None:
    """An arithmetic, comparison or boolean operation as Python, in parentheses (see _python_expression)."""
    from archdsl.syntax import BinOp, BoolOp, Not, Unary

    if isinstance(n, BinOp | BoolOp) and n.op in ("+", "-", "*", "/", "//", "%", "and", "or", *_COMPARISONS):
        left, right = go(n.left), go(n.right)
        if left is None or right is None:
            return None
        if isinstance(n, BoolOp) or n.op in _COMPARISONS:  # looser than any arithmetic (`and`: comparisons too)
            left, right = (_unparenthesize(t) if (isinstance(o, BinOp) and (isinstance(n, BoolOp)
                                                                              or o.op not in _COMPARISONS))
                           or (isinstance(o, Not) and isinstance(n, BoolOp)) else t
                           for t, o in ((left, n.left), (right, n.right)))
        return f"({left} {n.op} {right})"
    if isinstance(n, Not | Unary) and (isinstance(n, Not) or n.op == "-"):
        inner = go(n.operand)
        if inner is not None and isinstance(n, Not) and isinstance(n.operand, BinOp):
            inner = _unparenthesize(inner)
        return None if inner is None else f"({'not ' if isinstance(n, Not) else '-'}{inner})"
    return None


def _python_leaf(n: Node, known: set[str], read: list[str]) -> str | None:
    """A number, boolean, known name or `in.channels` as Python (see _python_expression)."""
    from archdsl.syntax import Const, Name, Num

    if isinstance(n, Num) and not isinstance(n.value, bool):
        return repr(n.value) if isinstance(n.value, int) else py_number(n.value)
    if isinstance(n, Const) and isinstance(n.value, bool):
        return repr(n.value)
    if isinstance(n, Name):
        return _placeholder(n.id, known, read)
    if _is_in_channels(n):
        return _placeholder(_IN_CHANNELS, known, read)
    return None


def _placeholder(name: str, known: set[str], read: list[str]) -> str | None:
    """A name of `known` as _python_expression writes it, listed in `read`; None for any other."""
    if name not in known:
        return None
    read.append(name)
    return f"\x01{name}\x01"


def _evaluate(expr: str, values: Mapping[str, object]) -> object:
    """The value of a generated expression (placeholders `\x01name\x01` read from `values`), computed as
    the generated file computes it: what checks that an expression gives every member's constant. The
    text comes from _python_expression alone (identifiers, numbers, operators, known functions); None
    where it does not compute."""
    names = {n: f"v{k}" for k, n in enumerate(values)}
    text = re.sub("\x01(\\w+)\x01", lambda m: names.get(m[1], "missing"), expr)
    try:
        return eval(_compiled(text), _evaluation_scope(), {names[n]: v for n, v in values.items()})
    except Exception:  # an expression that does not compute is no candidate
        return None


@cache
def _compiled(text: str) -> CodeType:
    return compile(text, "<generated expression>", "eval")


@cache
def _evaluation_scope() -> dict[str, object]:
    """What a generated expression may call: the functions of _PY_FUNCTIONS, no other builtin."""
    scope: dict[str, object] = {"__builtins__": {}, "math": math, "int": int, "min": min, "max": max, "abs": abs,
                                "float": float, "round": round}
    exec(_FUNCTION_HELPERS["_make_divisible"], scope)
    return scope


def _same(a: object, b: object) -> bool:
    """Equal and of one type (an int is no float, a bool no int)."""
    return type(a) is type(b) and a == b

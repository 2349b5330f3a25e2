"""Attribute errors in the language's own words.

pydantic validates every op's attributes, but its messages speak Python (`Tuple should have at most
2 items after validation, not 3`, `Input should be a valid tuple`), point at the wrong attribute
for unions (`conv needs the attribute pad` for `pad=[1, 2, 3]`), and show values after coercion
(`(1, 2, 3)` for the list the user wrote). Here a bad value is reported as the user wrote it,
followed by what the attribute accepts, described from its type:

>>> from archdsl.ops import get_op, AttrError
>>> try:
...     get_op("conv").validate({"out": 8, "kernel": [1, 2, 3]})
... except AttrError as exc:
...     print(exc.message)
`conv`: bad value [1, 2, 3] for `kernel`: expected a positive integer or [h, w]
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

if TYPE_CHECKING:
    from pydantic import BaseModel

# Alternatives for the BeforeValidator-normalized types of base.py, keyed by the normalizing
# function's name (a key, not the function, so that this module need not import base.py).
_NORMALIZED: dict[str, list[str]] = {
    "_to_pair": ["a positive integer", "[h, w]"],
    "_to_nonneg_pair": ["a non-negative integer", "[h, w]"],
    "_to_padding": ["a non-negative integer", "[h, w]", "[top, bottom, left, right]", "same", "valid"],
}


def show_value(value: Any) -> str:
    """A value as it is written in a spec: lists in brackets, strings quoted, true/false/none."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _bounded(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _bounds(metadata: Iterable[Any]) -> dict[str, Any]:
    """Bounds of annotated_types' Gt/Ge/Lt/Le markers (pydantic's constraints), by attribute name."""
    out: dict[str, Any] = {}
    for m in metadata:
        key = type(m).__name__.lower()
        if key in ("gt", "ge", "lt", "le"):
            out[key] = getattr(m, key)
    return out


def _number(noun: str, bounds: dict[str, Any], plural: bool) -> str:
    nouns = noun + "s" if plural else noun
    article = "" if plural else "an " if noun[0] in "aeiou" else "a "
    if bounds.get("gt") == 0 and len(bounds) == 1:
        return f"{'' if plural else 'a '}positive {nouns}"
    if bounds.get("ge") == 0 and len(bounds) == 1:
        return f"{'' if plural else 'a '}non-negative {nouns}"
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if low is not None and high is not None and "ge" in bounds and "le" in bounds:
        return f"{article}{nouns} from {show_value(low)} to {show_value(high)}"
    parts = [f"{'≥' if 'ge' in bounds else '>'} {show_value(low)}"] if low is not None else []
    parts += [f"{'≤' if 'le' in bounds else '<'} {show_value(high)}"] if high is not None else []
    return f"{article}{nouns}" + (f" {' and '.join(parts)}" if parts else "")


def expected(tp: Any, metadata: Iterable[Any] = ()) -> str:
    """What a value of type `tp` looks like, in the language's words: `a positive integer or [h, w]`."""
    words = list(dict.fromkeys(_alternatives(tp, list(metadata), plural=False)))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _alternatives(tp: Any, metadata: list[Any], plural: bool) -> list[str]:
    if get_origin(tp) is Annotated:
        inner, *extra = get_args(tp)
        return _alternatives(inner, [*metadata, *extra], plural)
    for m in metadata:
        func: Callable[..., Any] | None = getattr(m, "func", None)
        name = getattr(func, "__name__", "")
        if name in _NORMALIZED:
            return _NORMALIZED[name]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        return [w for a in members for w in _alternatives(a, metadata if len(members) == 1 else [], plural)]
    if origin is Literal:
        return [show_value(v).strip('"') for v in get_args(tp)]
    return [_single(tp, metadata, plural)]


def _single(tp: Any, metadata: list[Any], plural: bool) -> str:
    """A plain type: a list, a fixed-length tuple, a bool, a number or a string."""
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        return f"a list of {expected_plural(item)}"
    if origin is tuple:
        items = get_args(tp)
        return f"a list of {len(items)} {expected_plural(items[0])}"
    if tp is bool:
        return "true or false"
    if tp is int:
        return _number("integer", _bounds(metadata), plural)
    if tp is float:
        return _number("number", _bounds(metadata), plural)
    if tp is str:
        return "a string"
    return "another value"  # pragma: no cover - every attribute type of the ops is listed above


def expected_plural(tp: Any) -> str:
    """`positive integers` for PositiveInt: the items of a list."""
    return " or ".join(dict.fromkeys(_alternatives(tp, [], plural=True)))


def _int_ceiling(tp: Any) -> int | None:
    """The largest integer an integer inside type `tp` takes (its `Le` bound), if it has one."""
    if get_origin(tp) is Annotated:
        inner, *extra = get_args(tp)
        own = [b["le"] for b in [_bounds(extra)] if inner is int and "le" in b]
        return own[0] if own else _int_ceiling(inner)
    bounds = [c for c in (_int_ceiling(a) for a in get_args(tp)) if c is not None]
    return min(bounds) if bounds else None


def ints_in(value: Any) -> list[int]:
    """The integers a value written in a spec holds, in lists too."""
    if isinstance(value, list | tuple):
        return [i for v in value for i in ints_in(v)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def beyond_int64_message(op: str, field: str, given: Any) -> str:
    """For an integer PyTorch cannot hold (see base._refuse_beyond_int64), as the user wrote it."""
    return (f"`{op}`: bad value {_bounded(show_value(given))} for `{field}`: "
            "beyond PyTorch's 64-bit integers (-2**63 to 2**63 - 1)")


def attribute_message(op: str, field: str | None, kind: str, given: dict[str, Any], model: type[BaseModel],
                      detail: str | None = None) -> str:
    """The message for pydantic's first error `kind` on `field`, given the values the user wrote."""
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"`{op}` has no attribute `{field}` (it takes: {known or 'no attributes'})"
    if field is None or field not in model.model_fields:  # pragma: no cover - errors name a field
        return f"`{op}`: bad attributes"
    if field not in given:
        return f"`{op}` needs the attribute `{field}`"
    shown = _bounded(show_value(given[field]))
    if kind == "value_error" and detail:
        return f"`{op}`: bad value {shown} for `{field}`: {detail}"
    info = model.model_fields[field]
    wanted = expected(info.annotation, info.metadata)
    ceiling = _int_ceiling(info.annotation)
    if ceiling is not None and any(v > ceiling for v in ints_in(given[field])):  # a bound the words leave out
        return f"`{op}`: bad value {shown} for `{field}`: expected {wanted}, each at most {ceiling}"
    if kind == "int_parsing_size":  # a whole number as a float beyond 2**63 (1e308), too large to convert
        return f"`{op}`: bad value {shown} for `{field}`: too large (expected {wanted})"
    return f"`{op}`: bad value {shown} for `{field}`: expected {wanted}"

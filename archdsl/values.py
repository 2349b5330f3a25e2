"""The values an `.arch` expression can have, and how they read in messages and titles.

Numbers, booleans, strings, ``none`` and lists are Python's own; a :class:`Tensor` is one output
port of an IR node with its shape; a :class:`Bundle` holds the named outputs of a multi-output
block; :class:`BlockRef` and :class:`OpRef` are blocks and ops used as values (`block=bottleneck`,
`act=relu6`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ir import Port
from .ops import Shape, fmt_shape


@dataclass(frozen=True)
class Tensor:
    port: Port
    shape: Shape


@dataclass(frozen=True)
class Bundle:
    """The named outputs of a multi-output block; `b.p3` or `p3, p4 = b`."""

    names: tuple[str, ...]
    tensors: tuple[Tensor, ...]

    def get(self, name: str) -> Tensor | None:
        return self.tensors[self.names.index(name)] if name in self.names else None


@dataclass(frozen=True)
class BlockRef:
    name: str


@dataclass(frozen=True)
class OpRef:
    name: str


Value = Any  # int | float | bool | str | None | list | tuple[Tensor, ...] | Tensor | Bundle | refs

UNKNOWN_CALLABLE_HINT = "see `archdsl ops` for the ops; blocks must be defined or imported"

TENSOR_ATTRS: dict[str, Callable[[Shape], Value]] = {
    "channels": lambda s: s[0], "c": lambda s: s[0],
    "height": lambda s: s[1], "h": lambda s: s[1],
    "width": lambda s: s[2], "w": lambda s: s[2],
    "shape": lambda s: list(s), "rank": lambda s: len(s), "numel": lambda s: math.prod(s),
}


def is_number(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# How a value reads in a message, by type; the first matching row wins (bool before int).
_DESCRIPTIONS: tuple[tuple[type | tuple[type, ...], Callable[[Any], str]], ...] = (
    (Tensor, lambda v: f"a tensor {fmt_shape(v.shape)}"),
    (Bundle, lambda v: f"a block output bundle ({', '.join(v.names)})"),
    (tuple, lambda v: f"{len(v)} tensors"),
    (BlockRef, lambda v: f"the block `{v.name}`"),
    (OpRef, lambda v: f"the op `{v.name}`"),
    (bool, lambda v: "a boolean"),
    ((int, float), lambda v: f"the number {v}"),
    (str, lambda v: f'the string "{v}"'),
    (list, lambda v: "a list"),
    (type(None), lambda v: "none"),
)


def describe(v: Value) -> str:
    """`a tensor 64×56×56`, `the number 3`, `the block `bottleneck``: a value as a message names it."""
    for kinds, text in _DESCRIPTIONS:
        if isinstance(v, kinds):
            return text(v)
    return type(v).__name__


def render_value(v: Value) -> str:
    """Compact source-like text for scope titles (`inverted_residual(c=24, stride=2)`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(render_value(x) for x in v) + "]"
    if isinstance(v, BlockRef | OpRef):
        return v.name
    if isinstance(v, str):
        return v
    if v is None:
        return "none"
    return str(v)


def jsonable(v: Value) -> Any:
    """A value as JSON can hold it: numbers, strings, booleans, none and lists as they are; blocks
    and ops by name; anything else as text."""
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return getattr(v, "name", str(v))

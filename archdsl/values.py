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


@dataclass(unsafe_hash=True)
class Tensor:  # not frozen, for speed: see archdsl.ir.Port
    port: Port
    shape: Shape


@dataclass(unsafe_hash=True)
class Bundle:  # not frozen, for speed: see Tensor
    """The named outputs of a multi-output block; `b.p3` or `p3, p4 = b`."""

    names: tuple[str, ...]
    tensors: tuple[Tensor, ...]

    def get(self, name: str) -> Tensor | None:
        return self.tensors[self.names.index(name)] if name in self.names else None


@dataclass(unsafe_hash=True)
class BlockRef:  # not frozen, for speed: see Tensor
    name: str


@dataclass(frozen=True)
class OpRef:
    name: str


_OP_REFS: dict[str, OpRef] = {}


def op_ref(name: str) -> OpRef:
    """`OpRef(name)`, one per op name (a value like any other: made once, not at every call)."""
    ref = _OP_REFS.get(name)
    if ref is None:
        ref = _OP_REFS[name] = OpRef(name)
    return ref


@dataclass(frozen=True)
class Partial:
    """A call of an op or block without input tensors: a layer not yet applied, passed as a value
    (`conv_bn_act(c, 3, act=leaky(0.1))`) and applied wherever it is called. Its arguments are kept
    with their spans; the call that applies it may add more."""

    target: BlockRef | OpRef
    scalars: tuple[tuple[Any, Any], ...]  # (value, span)
    kwargs: tuple[tuple[str, Any, Any], ...]  # (name, value, span)
    label: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.target.name

    def text(self) -> str:
        """`leaky(0.1)`, `conv_bn_act(c=64, k=3)`: the call as written, for messages and titles."""
        items = [render_value(v) for v, _ in self.scalars] + [f"{k}={render_value(v)}" for k, v, _ in self.kwargs]
        return f"{self.name}({', '.join(items)})"


@dataclass(frozen=True)
class SharedRef:
    """A shared instance (`cls = shared head(80)`): one set of weights, applied wherever it is called.
    `path` names it (and its first application); the elaborator keeps its state under that path."""

    path: tuple[str, ...]
    name: str  # the op or block it instantiates

    def text(self) -> str:
        return ".".join(self.path)


class _Poison:
    """The value of a name whose statement failed: a later use stops that statement quietly (its
    error is already reported), so independent errors are all found without echoes."""

    def __repr__(self) -> str:
        return "<poison>"


POISON: Any = _Poison()

Value = Any  # int | float | bool | str | None | list | tuple[Tensor, ...] | Tensor | Bundle | refs

UNKNOWN_CALLABLE_HINT = "see `archdsl ops` for the ops; blocks must be defined or imported"

class Dim(int):
    """A size read from a tensor's shape (`lat.h`, `lat.shape[2]`): an integer that remembers which
    tensor and axis it came from, so that `upsample(x, size=[lat.h, lat.w])` can take the size from
    `lat` at run time. Any arithmetic on it gives a plain integer."""

    tensor: Tensor
    axis: int

    def __new__(cls, value: int, tensor: Tensor, axis: int) -> Dim:
        dim = super().__new__(cls, value)
        dim.tensor, dim.axis = tensor, axis
        return dim


def spatial_size_of(value: Value) -> Tensor | None:
    """The tensor whose height and width `value` is (`[lat.h, lat.w]`), or None."""
    if not (isinstance(value, list | tuple) and len(value) == 2):
        return None
    h, w = value
    if isinstance(h, Dim) and isinstance(w, Dim) and h.tensor == w.tensor and (h.axis, w.axis) == (1, 2) \
            and len(h.tensor.shape) == 3:
        return h.tensor
    return None


def tensor_attribute(tensor: Tensor, name: str) -> Value:
    """`x.channels`, `x.h`, `x.shape`, …: sizes as :class:`Dim`, so that they remember their tensor."""
    axis = _AXES.get(name)
    if axis is not None:
        return Dim(tensor.shape[axis], tensor, axis)
    if name == "shape":
        return [Dim(d, tensor, k) for k, d in enumerate(tensor.shape)]
    return TENSOR_ATTRS[name](tensor.shape)


_AXES = {"channels": 0, "c": 0, "height": 1, "h": 1, "width": 2, "w": 2}

TENSOR_ATTRS: dict[str, Callable[[Shape], Value]] = {
    "channels": lambda s: s[0], "c": lambda s: s[0],
    "height": lambda s: s[1], "h": lambda s: s[1],
    "width": lambda s: s[2], "w": lambda s: s[2],
    "shape": lambda s: list(s), "rank": lambda s: len(s), "numel": lambda s: math.prod(s),
}


def layer_hint(v: Value) -> str | None:
    """What to write when a layer value (`conv(64, 3)` without input) stands where a tensor must."""
    if isinstance(v, Partial):
        return (f"`{v.text()}` names a layer without applying it; apply it to a tensor: "
                f"`x -> {v.text()}` or `{v.name}(x, ...)`")
    if isinstance(v, SharedRef):
        return f"apply the shared instance to a tensor: `x -> {v.path[-1]}` where `{v.path[-1]}` holds it"
    return None


def is_number(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def boolean_against_number(a: Value, b: Value) -> tuple[Value, Value] | None:
    """The first pair (a boolean, a number) that comparing `a` with `b` would compare, looking into
    lists item by item (a single value against each item, as `expect` compares a number with both
    axes of a field); None if there is none. Python counts `false == 0` and `true == 1.0` equal, so
    such a comparison would hold or fail by accident of representation: it is a type error."""
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        xs = a if isinstance(a, list | tuple) else [a] * len(b)
        ys = b if isinstance(b, list | tuple) else [b] * len(xs)
        return next((pair for x, y in zip(xs, ys, strict=False) if (pair := boolean_against_number(x, y))), None)
    if (isinstance(a, bool) and is_number(b)) or (is_number(a) and isinstance(b, bool)):
        return a, b
    return None


BOOLEAN_NUMBER_HINT = ("a boolean is `true` or `false`, never a number: compare a condition with `true` or `false`, "
                       "a count with a number")


# How a value reads in a message, by type; the first matching row wins (bool before int).
_DESCRIPTIONS: tuple[tuple[type | tuple[type, ...], Callable[[Any], str]], ...] = (
    (Tensor, lambda v: f"a tensor {fmt_shape(v.shape)}"),
    (Bundle, lambda v: f"a block output bundle ({', '.join(v.names)})"),
    (tuple, lambda v: f"{len(v)} tensors"),
    (BlockRef, lambda v: f"the block `{v.name}`"),
    (OpRef, lambda v: f"the op `{v.name}`"),
    (Partial, lambda v: f"`{v.text()}`, a layer not applied to any tensor"),
    (SharedRef, lambda v: f"the shared instance `{v.text()}` of `{v.name}`"),
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
    if type(v) is int:  # the common arguments, decided at once
        return str(v)
    if type(v) is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(render_value(x) for x in v) + "]"
    if isinstance(v, BlockRef | OpRef):
        return v.name
    if isinstance(v, Partial | SharedRef):
        return v.text()
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
    if isinstance(v, Partial | SharedRef):
        return v.text()
    return getattr(v, "name", str(v))

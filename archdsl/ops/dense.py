"""Fully connected layer."""

from __future__ import annotations

import math
from typing import Any

from .attr_schema import PositiveInt
from .base import GLOBAL_GEOMETRY, Attrs, Geometry, Op, Shape, ShapeError, checked_dim, fmt_shape, register


class LinearAttrs(Attrs):
    out: PositiveInt
    bias: bool = True
    # The dimension mapped (batch excluded). Unset: the last one of a vector or a matrix; a C×H×W
    # tensor must say, since "the last dimension" of a feature map is its width.
    dim: int | None = None


@register
class Linear(Op):
    name = "linear"
    aliases = ("fc",)
    doc = ("Fully connected layer: linear(out, bias=true, dim=last). It maps the last dimension of a "
           "vector or a matrix; on C×H×W, dim=0 maps the channels at every position (ConvNeXt's MLP, "
           "torch's Linear on channels-last); flatten first to classify.")
    Attrs = LinearAttrs
    positional = ("out",)
    # Its gradient reads its input and weight only; on another dim than the last its result is a
    # permuted view of a new tensor that nothing else holds.
    output_overwritable = True
    init_kind = "linear"
    init_tensors = ("weight", "bias")
    init_matrices = ("weight",)

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        return ("weight", "bias") if a.bias else ("weight",)

    @classmethod
    def _dim(cls, a: Any, shape: Shape) -> int:
        rank = len(shape)
        if a.dim is None:
            if rank >= 3 and all(d == 1 for d in shape[1:]):  # after a global pool
                raise ShapeError(
                    f"`linear` on the {fmt_shape(shape)} tensor: which dimension does it map?",
                    f"insert `flatten` before `linear` to map the {shape[0]:,} features; "
                    f"`linear({a.out}, dim=0)` keeps the {fmt_shape(shape[1:])} map")
            if rank >= 3:
                raise ShapeError(
                    f"`linear` on the {fmt_shape(shape)} tensor: which dimension does it map?",
                    f"`linear({a.out}, dim=0)` maps the channels at every position; to classify, "
                    "insert `flatten` (or a global pool and `flatten`) before `linear`")
            return rank - 1
        return checked_dim(cls.name, a.dim, shape, "dim=0 maps the channels, dim=-1 the last dimension")

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        if not ins[0]:
            raise ShapeError("`linear` needs at least a 1-D input")
        d = cls._dim(a, ins[0])
        return [tuple(a.out if i == d else n for i, n in enumerate(ins[0]))]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        out: int = a.out
        return ins[0][cls._dim(a, ins[0])] * out + (out if a.bias else 0)

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        out: int = a.out
        return math.prod(ins[0]) * out

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        d = cls._dim(a, ins[0])
        if len(ins[0]) == 1 or (len(ins[0]) == 3 and d != 0):  # it mixes every position along an axis
            return GLOBAL_GEOMETRY
        return super().geometry(a, ins)

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"linear {a.out}" + (f" (dim {a.dim})" if a.dim is not None else "")

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        bias = "" if a.bias else ", bias=False"
        return f"nn.Linear({ins[0][cls._dim(a, ins[0])]}, {a.out}{bias})"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        rank, d, x = len(ins[0]), cls._dim(a, ins[0]), args[0]
        if d == rank - 1:
            return f"{module}({x})"
        if rank == 3 and d == 0:  # channels last, map, channels first (timm's ConvNeXt block)
            return f"{module}({x}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)"
        return f"{module}({x}.movedim({d + 1}, -1)).movedim(-1, {d + 1})"

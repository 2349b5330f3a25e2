"""Fully connected layer."""

from __future__ import annotations

import math
from typing import Any

from pydantic import PositiveInt

from .base import GLOBAL_GEOMETRY, Attrs, Geometry, Op, Shape, ShapeError, register


class LinearAttrs(Attrs):
    out: PositiveInt
    bias: bool = True


@register
class Linear(Op):
    name = "linear"
    aliases = ("fc",)
    doc = "Fully connected layer over the last dimension: linear(out, bias=true)."
    Attrs = LinearAttrs
    positional = ("out",)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        if not ins[0]:
            raise ShapeError("`linear` needs at least a 1-D input")
        if len(ins[0]) == 3 and ins[0][1:] != (1, 1):
            raise ShapeError(
                f"`linear` applies to the last dimension; the input is {'×'.join(map(str, ins[0]))}",
                "insert `flatten` (or a global pool) before `linear`",
            )
        return [(*ins[0][:-1], a.out)]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return int(ins[0][-1] * a.out + (a.out if a.bias else 0))

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return int(math.prod(ins[0][:-1]) * ins[0][-1] * a.out)

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        return GLOBAL_GEOMETRY if len(ins[0]) == 1 else super().geometry(a, ins)

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"linear {a.out}"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        bias = "" if a.bias else ", bias=False"
        return f"nn.Linear({ins[0][-1]}, {a.out}{bias})"

"""Reductions over groups of values that are neither convolutions nor the max/avg pools: maxout
(the maximum over groups of channels; FaceNet NN1's fully connected layers) and L2 pooling (the L2
norm over a window; FaceNet NN2's inception modules, torch's LPPool2d with p = 2)."""

from __future__ import annotations

import math
from typing import Any, Literal

from .attr_schema import PositiveInt
from .base import (
    GLOBAL_GEOMETRY,
    Attrs,
    Geometry,
    Op,
    Padding,
    Pair,
    Shape,
    ShapeError,
    fmt_pair,
    need_rank,
    register,
    resolve_padding,
    spatial_out,
)


class MaxoutAttrs(Attrs):
    p: PositiveInt


@register
class Maxout(Op):
    name = "maxout"
    category = "activation"
    doc = ("Maxout (Goodfellow et al. 2013): the maximum over groups of p consecutive channels, "
           "C → C/p at every position; maxout(2) is FaceNet NN1's `maxout p=2`.")
    Attrs = MaxoutAttrs
    positional = ("p",)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        if not ins[0]:
            raise ShapeError("`maxout` needs a tensor with channels")
        c = ins[0][0]
        if c % a.p:
            raise ShapeError(f"`maxout`: {c:,} channels do not divide into groups of {a.p}",
                             f"the layer before maxout({a.p}) must give a multiple of {a.p} channels "
                             "(p pieces per output unit)")
        return [(c // a.p, *ins[0][1:])]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return math.prod(ins[0])  # every piece is compared once

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"maxout p={a.p}"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        # Output unit g is the max of channels g·p … g·p + p − 1 (pylearn2's Maxout, pool_stride = p).
        return f"{args[0]}.unflatten(1, (-1, {a.p})).amax(2)"


class L2PoolAttrs(Attrs):
    kernel: Pair | Literal["global"]
    stride: Pair | None = None  # defaults to the kernel, as in PyTorch
    pad: Padding = (0, 0, 0, 0)
    ceil_mode: bool = False


@register
class L2Pool(Op):
    name = "l2pool"
    category = "pool"
    doc = ("L2 pooling, the square root of the sum of squares over each window (torch's LPPool2d with "
           "p=2; FaceNet NN2): l2pool(kernel, stride=kernel, pad=0, ceil_mode=false); padding adds zeros.")
    Attrs = L2PoolAttrs
    positional = ("kernel", "stride")

    @classmethod
    def _pads(cls, a: Any, ins: list[Shape]) -> tuple[int, int, int, int]:
        return resolve_padding(a.pad, a.kernel, a.stride or a.kernel, (1, 1), (ins[0][1], ins[0][2]))

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        if a.kernel == "global":
            return [(ins[0][0], 1, 1)]
        t, b, left, r = cls._pads(a, ins)
        # Zero padding comes first (F.pad), then LPPool2d pools the padded map without padding.
        padded = (ins[0][1] + t + b, ins[0][2] + left + r)
        h, w = spatial_out(cls.name, padded, a.kernel, a.stride or a.kernel, (0, 0, 0, 0), ceil=a.ceil_mode)
        return [(ins[0][0], h, w)]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        k = ins[0][1] * ins[0][2] if a.kernel == "global" else a.kernel[0] * a.kernel[1]
        return math.prod(outs[0]) * k

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        if a.kernel == "global":
            return GLOBAL_GEOMETRY
        pads = cls._pads(a, ins)
        return Geometry(kernel=a.kernel, stride=a.stride or a.kernel, pad=(pads[0], pads[2]))

    @classmethod
    def describe(cls, a: Any) -> str:
        if a.kernel == "global":
            return "l2pool global"
        stride = a.stride or a.kernel
        s = "" if stride == (1, 1) else f"/{stride[0]}" if stride[0] == stride[1] else f"/{fmt_pair(stride)}"
        return f"l2pool {fmt_pair(a.kernel)}{s}"

    torch_sized = ("nn.LPPool2d",)

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        if a.kernel == "global":
            return f"nn.LPPool2d(2, kernel_size={(ins[0][1], ins[0][2])})"
        ceil = ", ceil_mode=True" if a.ceil_mode else ""
        return f"nn.LPPool2d(2, kernel_size={a.kernel}, stride={a.stride or a.kernel}{ceil})"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        if a.kernel == "global" or cls._pads(a, ins) == (0, 0, 0, 0):
            return f"{module}({args[0]})"
        t, b, left, r = cls._pads(a, ins)
        return f"{module}(F.pad({args[0]}, ({left}, {r}, {t}, {b})))"

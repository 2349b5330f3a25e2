"""Ops that move or select data without learning: flatten, split, shuffle, upsample, dropout,
drop-path, identity (reshaping, cropping and space-to-depth are in layout.py)."""

from __future__ import annotations

import math
from typing import Any, Literal

from .attr_schema import PositiveInt, Probability
from .base import (
    GLOBAL_GEOMETRY,
    IDENTITY_GEOMETRY,
    Attrs,
    Geometry,
    Op,
    Pair,
    Shape,
    ShapeError,
    fmt_pair,
    fmt_shape,
    need_rank,
    py_number,
    register,
)


class _Free(Op):
    """Ops with no element-wise work worth counting."""

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0


@register
class Identity(_Free):
    name = "identity"
    doc = "Passes its input through unchanged."

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        return args[0]


@register
class Flatten(_Free):
    name = "flatten"
    category = "reshape"
    doc = "Flattens C×H×W into one dimension (the batch dimension is kept)."

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        return [(math.prod(ins[0]),)]

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        return IDENTITY_GEOMETRY if len(ins[0]) < 3 or ins[0][1:] == (1, 1) else GLOBAL_GEOMETRY

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        return f"torch.flatten({args[0]}, 1)"


class DropoutAttrs(Attrs):
    p: Probability = 0.5


@register
class Dropout(_Free):
    name = "dropout"
    category = "regularizer"
    doc = "Dropout (identity at inference): dropout(p=0.5)."
    Attrs = DropoutAttrs
    positional = ("p",)
    shape_free = frozenset({"p"})

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.Dropout(p={py_number(a.p)})"


class DropPathAttrs(Attrs):
    p: Probability = 0.0


@register
class DropPath(_Free):
    name = "drop_path"
    aliases = ("stochastic_depth",)
    category = "regularizer"
    doc = "Stochastic depth: drops the whole residual branch per sample with probability p (training only)."
    Attrs = DropPathAttrs
    positional = ("p",)
    shape_free = frozenset({"p"})
    output_overwritable_as_input = True  # its input itself, or `x * mask`, whose gradient reads the mask only
    torch_helper = '''
class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016) per sample, as torchvision's StochasticDepth(mode="row"):
    the same random draws and arithmetic, so the same seed drops the same samples, bit for bit."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        mask.bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, mode=row"
'''

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"DropPath({py_number(a.p)})"


class SplitAttrs(Attrs):
    sections: PositiveInt | list[PositiveInt]
    dim: int = 0


@register
class Split(_Free):
    name = "split"
    category = "split"
    doc = ("Splits a tensor along a dimension (default channels) into n equal parts or given sizes: "
           "`a, b = split(x, 2)`; `split(x, [64, 192])`.")
    Attrs = SplitAttrs
    positional = ("sections",)

    @classmethod
    def num_outputs(cls, a: Any) -> int:
        return a.sections if isinstance(a.sections, int) else len(a.sections)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        shape = ins[0]
        if not 0 <= a.dim < len(shape):
            raise ShapeError(f"`split`: dim {a.dim} is out of range for {fmt_shape(shape)}")
        size = shape[a.dim]
        if isinstance(a.sections, int):
            if size % a.sections:
                raise ShapeError(f"`split`: {size} is not divisible into {a.sections} equal parts",
                                 "give the part sizes as a list, e.g. split(x, [64, 192])")
            parts = [size // a.sections] * a.sections
        else:
            parts = list(a.sections)
            if sum(parts) != size:
                raise ShapeError(f"`split`: parts {parts} sum to {sum(parts)}, not {size}")
        return [tuple(p if i == a.dim else d for i, d in enumerate(shape)) for p in parts]

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        if a.dim == 0 or len(ins[0]) != 3:
            return IDENTITY_GEOMETRY
        # A spatial split: part k starts after the parts before it, along h (dim 1) or w (dim 2).
        shifts, start = [], 0
        for part in cls.infer(a, ins):
            shifts.append((start, 0) if a.dim == 1 else (0, start))
            start += part[a.dim]
        return Geometry(shifts=tuple(shifts))

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        if isinstance(a.sections, int):
            return f"torch.chunk({args[0]}, {a.sections}, dim={a.dim + 1})"
        return f"torch.split({args[0]}, {list(a.sections)}, dim={a.dim + 1})"


class ShuffleAttrs(Attrs):
    groups: PositiveInt


@register
class Shuffle(_Free):
    name = "shuffle"
    aliases = ("channel_shuffle",)
    category = "reshape"
    doc = "Channel shuffle (ShuffleNet): shuffle(groups)."
    Attrs = ShuffleAttrs
    positional = ("groups",)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        if ins[0][0] % a.groups:
            raise ShapeError(f"`shuffle`: {ins[0][0]} channels do not divide into {a.groups} groups")
        return [ins[0]]

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.ChannelShuffle({a.groups})"


class UpsampleAttrs(Attrs):
    scale: PositiveInt | None = None
    size: Pair | None = None
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False


@register
class Upsample(_Free):
    name = "upsample"
    category = "reshape"
    doc = ("Upsampling by an integer factor, to a size, or to the size of a second tensor (taken from it "
           "at run time): upsample(2), upsample(size=38x38), upsample(x, lateral, mode=bilinear, "
           "align_corners=false); size=[lateral.h, lateral.w] is the same as passing lateral.")
    Attrs = UpsampleAttrs
    positional = ("scale",)
    max_inputs = 2
    size_from_tensor = "size"

    @classmethod
    def _size(cls, a: Any, ins: list[Shape]) -> tuple[int, int]:
        need_rank(cls.name, ins[0], 3)
        given = [what for what, there in (("scale", a.scale is not None), ("size", a.size is not None),
                                          ("a second tensor", len(ins) == 2)) if there]
        if len(given) != 1:
            raise ShapeError("`upsample` needs exactly one of `scale`, `size` and a second tensor"
                             + (f" (got {' and '.join(given)})" if given else ""),
                             "upsample(x, 2), upsample(x, size=[h, w]), or upsample(x, lateral) for lateral's size")
        if len(ins) == 2:
            need_rank(cls.name, ins[1], 3)
            return ins[1][1], ins[1][2]
        if a.size is not None:
            return a.size  # type: ignore[no-any-return]
        return ins[0][1] * a.scale, ins[0][2] * a.scale

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        return [(ins[0][0], *cls._size(a, ins))]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return math.prod(outs[0])

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        # The hull of the input pixels output i reads, as a window over the input (PyTorch's index
        # maps): nearest reads floor(i/s), within [i/s − (s−1)/s, i/s] for an integer s (within
        # [i/s − 1, i/s] otherwise); bilinear reads floor(x) and floor(x)+1 around
        # x = (i + ½)/s − ½ (x = i·(in−1)/(out−1) with align_corners), within [x − 1, x + 1].
        # Exact for nearest with an integer scale, an upper bound otherwise. A second tensor lends
        # only its size.
        kernel, stride, pad = [], [], []
        size = cls._size(a, ins)
        for axis in range(2):
            n_in, n_out = ins[0][axis + 1], size[axis]
            s = n_out / n_in
            if a.mode == "nearest":
                frac = (s - 1) / s if float(s).is_integer() else 1.0
                k, j, p = 1 + frac, 1 / s, frac
            elif a.align_corners:
                k, j, p = 3, (n_in - 1) / max(n_out - 1, 1), 1
            else:
                k, j, p = 3, 1 / s, 1 - (1 / s - 1) / 2
            kernel.append(k)
            stride.append(j)
            pad.append(p)
        return Geometry(kernel=(kernel[0], kernel[1]), stride=(stride[0], stride[1]), pad=(pad[0], pad[1]),
                        data_inputs=1)

    @classmethod
    def describe(cls, a: Any) -> str:
        if a.scale:
            return f"upsample ×{a.scale}"
        return f"upsample → {fmt_pair(a.size)}" if a.size is not None else "upsample → its 2nd input's size"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str | None:
        if len(ins) == 2:
            return None  # the size is read from the other tensor at run time: F.interpolate
        what = f"scale_factor={a.scale}" if a.scale else f"size={a.size}"
        return f'nn.Upsample({what}, mode="{a.mode}"{cls._align(a)})'

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        if len(args) == 2:
            return f'F.interpolate({args[0]}, size={args[1]}.shape[-2:], mode="{a.mode}"{cls._align(a)})'
        return super().torch_forward(a, ins, args, module)

    @staticmethod
    def _align(a: Any) -> str:
        return ", align_corners=True" if a.align_corners and a.mode == "bilinear" else ""


class ScaleAttrs(Attrs):
    factor: float


@register
class Scale(_Free):
    name = "scale"
    doc = "Multiplies by a constant: `0.17 * y` (Inception-ResNet's residual scaling), scale(factor)."
    Attrs = ScaleAttrs
    positional = ("factor",)

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return math.prod(outs[0])

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"scale ×{a.factor:g}"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        return f"{args[0]} * {py_number(float(a.factor))}"

"""Merges of several tensors: concat, add, mul (broadcasting, for SE gates) and weighted fusion."""

from __future__ import annotations

import math
from typing import Any, Literal

from .attr_schema import PositiveFloat
from .base import Attrs, Op, Shape, ShapeError, checked_dim, fmt_shape, py_number, register


def _broadcast(op: str, ins: list[Shape]) -> Shape:
    """NumPy broadcasting over per-sample shapes; the error names both operands' shapes."""
    out = list(ins[0])
    for k, shape in enumerate(ins[1:], start=1):
        if len(shape) != len(out):
            raise ShapeError(
                f"`{op}`: operand 1 is {fmt_shape(tuple(out))} but operand {k + 1} is {fmt_shape(shape)} "
                "(different ranks)", "merge tensors of the same rank")
        for i, (x, y) in enumerate(zip(out, shape, strict=True)):
            if x != y and 1 not in (x, y):
                raise ShapeError(
                    f"`{op}`: shapes {fmt_shape(tuple(out))} and {fmt_shape(shape)} do not match "
                    f"(dimension {i}: {x} vs {y})",
                    _mismatch_hint(tuple(out), shape),
                )
            out[i] = max(x, y)
    return tuple(out)


def _mismatch_hint(a: Shape, b: Shape) -> str:
    """What makes two operands agree, following the dimensions that differ (C×H×W): channels take a
    1×1 projection, height and width a stride or pooling, both a strided 1×1 projection."""
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y and 1 not in (x, y)]
    if len(a) == 1:
        return f"the feature counts differ: project one operand with `linear({max(a[0], b[0])})`"
    if len(a) != 3:
        return "make both operands the same shape (or 1 where one broadcasts)"
    narrow, wide = sorted((a, b), key=lambda s: s[0])
    small, large = sorted((a, b), key=lambda s: s[1] * s[2])
    if differ == [0]:
        return (f"the channels differ ({narrow[0]} vs {wide[0]}): project one operand with a 1×1 convolution, "
                f"e.g. `conv({wide[0]}, 1)` on the {narrow[0]}-channel one")
    ratios = {large[1] / small[1], large[2] / small[2]}
    factor = int(ratios.pop()) if len(ratios) == 1 and next(iter(ratios)).is_integer() else None
    if factor is None:
        what = "the spatial sizes" if 0 not in differ else "the channels and the spatial sizes"
        return (f"{what} differ ({fmt_shape(small[1:])} vs {fmt_shape(large[1:])}, by no single whole factor): "
                "check the padding and strides of both paths")
    if 0 not in differ:
        return (f"the spatial sizes differ ({fmt_shape(small[1:])} vs {fmt_shape(large[1:])}): downsample the "
                f"{fmt_shape(large)} operand by {factor} with a stride (`stride={factor}`) or pooling "
                f"(`avgpool({factor})`)")
    return (f"the channels and the spatial size differ: project the {fmt_shape(large)} operand with a strided "
            f"1×1 convolution, e.g. `conv({small[0]}, 1, stride={factor})`")


class _Elementwise(Op):
    category = "merge"
    min_inputs = 2
    max_inputs = None
    symbol: str = ""

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        return [_broadcast(cls.name, ins)]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return (len(ins) - 1) * math.prod(outs[0])

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        return f" {cls.symbol} ".join(args)


@register
class Add(_Elementwise):
    name = "add"
    doc = "Element-wise sum (`a + b`), broadcasting."
    symbol = "+"
    output_overwritable = True  # a new tensor; its gradient reads nothing

    @classmethod
    def torch_forward_in_place(cls, a: Any, ins: list[Shape], args: list[str], k: int) -> str | None:
        # Two operands only: `b += a` is `a + b` bit for bit (IEEE addition commutes), while
        # `a += b + c` would add (b + c) first, rounded differently.
        return f"{args[k]} += {args[1 - k]}" if len(args) == 2 else None


@register
class Mul(_Elementwise):
    name = "mul"
    doc = "Element-wise product (`a * b`), broadcasting: an SE gate C×1×1 scales C×H×W."
    symbol = "*"


class ConcatAttrs(Attrs):
    dim: int = 0


@register
class Concat(Op):
    name = "concat"
    aliases = ("cat",)
    category = "merge"
    doc = "Concatenation along a dimension (default 0, channels): concat(a, b, ..., dim=0)."
    Attrs = ConcatAttrs
    min_inputs = 1
    max_inputs = None
    output_overwritable = True  # torch.cat makes a new tensor, of one input too; its gradient reads nothing

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        dim = checked_dim(cls.name, a.dim, ins[0])
        rank = len(ins[0])
        for k, shape in enumerate(ins[1:], start=1):
            rest0 = ins[0][:dim] + ins[0][dim + 1:]
            rest = shape[:dim] + shape[dim + 1:]
            if len(shape) != rank or rest != rest0:
                raise ShapeError(
                    f"`concat`: operand 1 is {fmt_shape(ins[0])} but operand {k + 1} is {fmt_shape(shape)}; "
                    f"all dimensions but {dim} must agree",
                    "check strides and padding on each branch so their spatial sizes agree",
                )
        out = list(ins[0])
        out[dim] = sum(s[dim] for s in ins)
        return [tuple(out)]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        dim = a.dim + 1 if a.dim >= 0 else a.dim
        return f"torch.cat([{', '.join(args)}], dim={dim})"


class FuseAttrs(Attrs):
    mode: Literal["fast", "softmax", "sum"] = "fast"
    eps: PositiveFloat = 1e-4


@register
class Fuse(Op):
    name = "fuse"
    category = "merge"
    doc = ("Weighted feature fusion (EfficientDet BiFPN): fuse(a, b, ..., mode=fast) computes "
           "Σ relu(w_i)·x_i / (ε + Σ relu(w_j)) with one learnable weight per input; "
           "mode=softmax uses softmax weights, mode=sum is an unweighted sum.")
    Attrs = FuseAttrs
    min_inputs = 2
    max_inputs = None
    # effdet's FpnCombine (rwightman/efficientdet-pytorch, efficientdet.py) operation for operation —
    # each input scaled and divided by (Σ relu(w) + eps) before the sum — so outputs agree with it to
    # the last bit, and its parameter name `edge_weights`, so its state_dict loads by name.
    torch_helper = '''
class WeightedFusion(nn.Module):
    """EfficientDet's fast normalized fusion: sum_i relu(w_i) x_i / (eps + sum_j relu(w_j))."""

    def __init__(self, n: int, mode: str = "fast", eps: float = 1e-4) -> None:
        super().__init__()
        self.mode, self.eps = mode, eps
        self.edge_weights = None if mode == "sum" else nn.Parameter(torch.ones(n))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.edge_weights is None:
            return torch.stack(xs, -1).sum(-1)
        if self.mode == "softmax":
            return (torch.stack(xs, -1) * torch.softmax(self.edge_weights, 0)).sum(-1)
        w = F.relu(self.edge_weights)
        total = torch.sum(w)
        return torch.stack([x * w[i] / (total + self.eps) for i, x in enumerate(xs)], -1).sum(-1)
'''

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        for k, shape in enumerate(ins[1:], start=1):
            if shape != ins[0]:
                raise ShapeError(
                    f"`fuse`: input 1 is {fmt_shape(ins[0])} but input {k + 1} is {fmt_shape(shape)}",
                    "resample (upsample/maxpool) and project every level to the same shape first",
                )
        return [ins[0]]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return 0 if a.mode == "sum" else len(ins)

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 2 * len(ins) * math.prod(outs[0])

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f'WeightedFusion({len(ins)}, mode="{a.mode}", eps={py_number(a.eps)})'

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        return f"{module}([{', '.join(args)}])"

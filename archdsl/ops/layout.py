"""Ops that rearrange or cut out data without computing: reshape/view, permute, crop, and the three
space-to-depth orders (TensorFlow's, PyTorch's pixel_unshuffle, darknet's reorg).

Shapes exclude the batch dimension here as everywhere: `reshape(1024, 4, 4)` is torch's
`x.reshape(N, 1024, 4, 4)`, `permute(1, 2, 0)` is torch's `x.permute(0, 2, 3, 1)`.

The three space-to-depth ops give the same shape, C×H×W → (C·b²)×(H/b)×(W/b), but put the values in
different channels, so weights trained for one do not fit the others:

- `space_to_depth`: TensorFlow's `tf.nn.space_to_depth` and ONNX's SpaceToDepth — output channel
  (dy·b + dx)·C + c holds input (c, i·b + dy, j·b + dx);
- `pixel_unshuffle`: PyTorch's `nn.PixelUnshuffle` — output channel c·b² + dy·b + dx;
- `reorg`: darknet's reorg layer (YOLOv2's passthrough), which reads its input buffer as if it were
  (C/b²)×(H·b)×(W·b) (reorg_cpu in darknet's blas.c, called with the layer's input sizes): an
  output row mixes input rows far apart.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from .attr_messages import show_value
from .attr_schema import PositiveInt
from .base import (
    GLOBAL_GEOMETRY,
    AttrError,
    Attrs,
    Geometry,
    NonNegPair,
    Op,
    Pair,
    Shape,
    ShapeError,
    fmt_shape,
    need_rank,
    register,
)
from .base import Attrs as AttrsModel


class _Mover(Op):
    """Ops that only move data: no parameters, no MACs, no element-wise work."""

    category = "reshape"

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0


def _count(n: int) -> str:
    return f"{n:,} element" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------------------------
# reshape / view, permute


class ReshapeAttrs(Attrs):
    shape: list[int]


@register
class Reshape(_Mover):
    name = "reshape"
    aliases = ("view",)
    doc = ("Reshapes to the given dimensions, batch excluded; one may be -1 (inferred): "
           "reshape(1024, 4, 4), reshape(-1, 91), reshape(1024x4x4).")
    Attrs = ReshapeAttrs
    positional = ("shape",)
    variadic = True

    @classmethod
    def validate(cls, values: dict[str, Any]) -> AttrsModel:
        a = super().validate(values)
        dims = a.shape  # type: ignore[attr-defined]
        shown = show_value(values.get("shape"))
        if not dims:
            raise AttrError("shape", "`reshape` needs at least one dimension")
        if any(d == 0 or d < -1 for d in dims):
            raise AttrError("shape", f"`reshape`: bad value {shown} for `shape`: every dimension is positive, "
                                     "or -1 for the one to infer")
        if dims.count(-1) > 1:
            raise AttrError("shape", f"`reshape`: bad value {shown} for `shape`: only one dimension can be -1")
        return a

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        total = math.prod(ins[0])
        known = math.prod(d for d in a.shape if d != -1)
        wanted = "×".join(str(d) for d in a.shape)
        hint = "shapes exclude the batch dimension; -1 infers one dimension from the others"
        given = f"the input {fmt_shape(ins[0])} has {_count(total)}"
        if -1 in a.shape:
            if total % known:
                raise ShapeError(f"`reshape`: {wanted} does not fit: {given}, not a multiple of {known:,}", hint)
            return [tuple(total // known if d == -1 else d for d in a.shape)]
        if known != total:
            raise ShapeError(f"`reshape`: {wanted} needs {_count(known)}, but {given}", hint)
        return [tuple(a.shape)]

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"reshape {'×'.join(str(d) for d in a.shape)}"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        # The dimensions as written: a -1 stays -1, so the module follows the input's size at run time.
        x = args[0]
        return f"{x}.reshape({x}.shape[0], {', '.join(str(d) for d in a.shape)})"


class PermuteAttrs(Attrs):
    dims: list[int]


@register
class Permute(_Mover):
    name = "permute"
    doc = ("Reorders the dimensions, batch excluded: permute(1, 2, 0) turns C×H×W into H×W×C "
           "(torch's x.permute(0, 2, 3, 1)).")
    Attrs = PermuteAttrs
    positional = ("dims",)
    variadic = True

    @classmethod
    def _order(cls, a: Any, shape: Shape) -> tuple[int, ...]:
        rank = len(shape)
        dims = list(a.dims)
        if len(dims) == rank + 1 and sorted(dims) == list(range(rank + 1)) and dims[0] == 0:
            torch_form = ", ".join(map(str, dims))
            ours = ", ".join(str(d - 1) for d in dims[1:])
            raise ShapeError(
                f"`permute`: {len(dims)} dimensions given for the {rank}-dimensional {fmt_shape(shape)}",
                f"shapes exclude the batch dimension: torch's permute({torch_form}) is permute({ours}) here")
        order = tuple(d + rank if -rank <= d < 0 else d for d in dims)
        if sorted(order) != list(range(rank)):
            example = ", ".join(map(str, (*range(1, rank), 0))) if rank > 1 else "0"
            raise ShapeError(
                f"`permute`: ({', '.join(map(str, dims))}) is not an order of the {rank} dimensions of "
                f"{fmt_shape(shape)}",
                f"name each of 0…{rank - 1} once (batch excluded), e.g. permute({example})")
        return order

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        order = cls._order(a, ins[0])
        return [tuple(ins[0][d] for d in order)]

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"permute ({', '.join(str(d) for d in a.dims)})"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        order = cls._order(a, ins[0])
        return f"{args[0]}.permute(0, {', '.join(str(d + 1) for d in order)})"


# ---------------------------------------------------------------------------------------------
# crop


class CropAttrs(Attrs):
    offset: NonNegPair | Literal["center"] = (0, 0)
    size: Pair | None = None


@register
class Crop(_Mover):
    name = "crop"
    doc = ("Caffe's crop (axis=2): cuts an H×W window out of C×H×W, starting at `offset` [top, left] "
           "(or `center`: (input − window) // 2, U-Net's copy and crop); its size is that of a second "
           "tensor, crop(x, like, offset=19), or size=[h, w].")
    Attrs = CropAttrs
    positional = ("offset",)
    max_inputs = 2
    size_from_tensor = "size"

    @classmethod
    def _window(cls, a: Any, ins: list[Shape]) -> tuple[int, int]:
        need_rank(cls.name, ins[0], 3)
        if len(ins) == 2:
            if a.size is not None:
                raise ShapeError("`crop` takes its size from the second tensor or from `size`, not both",
                                 "drop `size=`, or the second tensor")
            if len(ins[1]) != 3:
                raise ShapeError(f"`crop`: the tensor giving the size must be C×H×W, got {fmt_shape(ins[1])}")
            return ins[1][1], ins[1][2]
        if a.size is None:
            raise ShapeError("`crop` needs the size of the window",
                             "pass a tensor of the wanted size, crop(x, like, offset=…), or size=[h, w]")
        return a.size  # type: ignore[no-any-return]

    @classmethod
    def _offset(cls, a: Any, ins: list[Shape]) -> tuple[int, int]:
        if a.offset != "center":
            return a.offset  # type: ignore[no-any-return]
        h, w = cls._window(a, ins)
        return max(ins[0][1] - h, 0) // 2, max(ins[0][2] - w, 0) // 2

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        h, w = cls._window(a, ins)
        (oh, ow), (_, ih, iw) = cls._offset(a, ins), ins[0]
        if oh + h > ih or ow + w > iw:
            where = "centred" if a.offset == "center" else f"at offset [{oh}, {ow}]"
            raise ShapeError(
                f"`crop`: a {h}×{w} window {where} does not fit the {ih}×{iw} input",
                "offset + window must not exceed the input (Caffe's crop checks the same)")
        return [(ins[0][0], h, w)]

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        # Output i is input i + offset: a 1×1 window with negative padding; a reference tensor lends
        # only its size, so its field does not reach the output.
        oh, ow = cls._offset(a, ins)
        return Geometry(pad=(-oh, -ow), data_inputs=1)

    @classmethod
    def describe(cls, a: Any) -> str:
        if a.offset == "center":
            return "crop centre"
        return f"crop @{a.offset[0]},{a.offset[1]}" if a.offset[0] != a.offset[1] else f"crop @{a.offset[0]}"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        x = args[0]
        if len(args) == 2:  # the size (and a centred offset) from the other tensor at run time
            spans = []
            for o, k in zip((0, 1) if a.offset == "center" else a.offset, (2, 3), strict=True):
                size = f"{args[1]}.shape[{k}]"
                start = f"({x}.shape[{k}] - {size}) // 2" if a.offset == "center" else str(o)
                spans.append(f"{start}:{start} + {size}" if start != "0" else f":{size}")
        else:
            offset = cls._offset(a, ins)
            spans = [f"{o}:{o + n}" if o else f":{n}" for o, n in zip(offset, a.size, strict=True)]
        return f"{x}[:, :, {spans[0]}, {spans[1]}]"


# ---------------------------------------------------------------------------------------------
# space to depth, three orders


class BlockAttrs(Attrs):
    block: PositiveInt = 2


class _SpaceToDepth(_Mover):
    """C×H×W → (C·b²)×(H/b)×(W/b); subclasses fix the channel order."""

    Attrs: ClassVar[type[AttrsModel]] = BlockAttrs
    positional = ("block",)

    @classmethod
    def _block(cls, a: Any) -> int:
        return a.block  # type: ignore[no-any-return]

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        b = cls._block(a)
        c, h, w = ins[0]
        if h % b or w % b:
            raise ShapeError(f"`{cls.name}`: {h}×{w} is not divisible by the block {b}",
                             "pad or crop the input to a multiple of the block first")
        return [(c * b * b, h // b, w // b)]

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        b = cls._block(a)
        return Geometry(kernel=(b, b), stride=(b, b))

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"{cls.name} /{cls._block(a)}"


@register
class SpaceToDepth(_SpaceToDepth):
    name = "space_to_depth"
    doc = ("Space-to-depth in TensorFlow's and ONNX's order: C×H×W → (C·b²)×(H/b)×(W/b), output channel "
           "(dy·b + dx)·C + c; space_to_depth(block=2).")
    torch_helper = '''
class SpaceToDepth(nn.Module):
    """tf.nn.space_to_depth / ONNX SpaceToDepth: output channel (dy * b + dx) * C + c."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        b = self.block
        x = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, b * b * c, h // b, w // b)
'''

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"SpaceToDepth({a.block})"


@register
class PixelUnshuffle(_SpaceToDepth):
    name = "pixel_unshuffle"
    doc = ("Space-to-depth in PyTorch's order (nn.PixelUnshuffle): output channel c·b² + dy·b + dx; "
           "pixel_unshuffle(block=2).")

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.PixelUnshuffle({a.block})"


class ReorgAttrs(Attrs):
    stride: PositiveInt = 2


@register
class Reorg(_SpaceToDepth):
    name = "reorg"
    doc = ("darknet's reorg layer (YOLOv2's passthrough), in darknet's own element order: "
           "C×H×W → (C·s²)×(H/s)×(W/s); reorg(stride=2).")
    Attrs = ReorgAttrs
    positional = ("stride",)
    torch_helper = '''
class Reorg(nn.Module):
    """darknet's reorg layer (forward_reorg_layer: reorg_cpu(input, w, h, c, batch, stride, 0, output)).

    darknet reads the C x H x W input as if it were (C / s^2) x (H * s) x (W * s) and writes it out
    as C x H x W in space-to-depth order; the result is then read as (C * s^2) x (H / s) x (W / s).
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.stride
        x = x.reshape(n, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, c * s * s, h // s, w // s)
'''

    @classmethod
    def _block(cls, a: Any) -> int:
        return a.stride  # type: ignore[no-any-return]

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        outs = super().infer(a, ins)
        s = a.stride
        if ins[0][0] % (s * s):
            raise ShapeError(f"`reorg`: {ins[0][0]} channels are not divisible by stride² = {s * s}",
                             "darknet's reorg reads its input as (C/s²)×(H·s)×(W·s): C must be a multiple of s²")
        return outs

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        # Along w an output reads its own s columns, but along h darknet's reinterpretation wraps:
        # for YOLOv2's 64×26×26, some channel of output row 0 reads input row 25. The field is the
        # whole input height, which a per-node field can only state as global.
        return GLOBAL_GEOMETRY

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"Reorg({a.stride})"

"""Convolutions: conv (and its depthwise/pointwise shorthands), transposed conv, locally connected.

MACs follow torch.utils.flop_counter (÷2): k_h·k_w·(C_in/groups)·C_out·H_out·W_out; a transposed
conv is counted over its input grid; biases are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .attr_schema import NonNegativeInt, PositiveInt
from .base import (
    SAME_PADDING_HELPER,
    Attrs,
    Geometry,
    NonNegPair,
    Op,
    Padding,
    Pair,
    Shape,
    ShapeError,
    fmt_pair,
    fmt_shape,
    need_rank,
    register,
    resolve_padding,
    same_pads_at_all,
    spatial_out,
)


def _stride(stride: tuple[int, int]) -> str:
    return "" if stride == (1, 1) else f"/{stride[0]}" if stride[0] == stride[1] else f"/{fmt_pair(stride)}"


# Made at every shape, parameter and MAC count of a convolution, so not `frozen` (a frozen
# dataclass's __init__ sets each field through object.__setattr__, several times the cost); nothing
# changes one once made (as archdsl.ir.Port).
@dataclass(slots=True)
class ConvGeom:
    c_in: int
    c_out: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    groups: int
    bias: bool

    @property
    def symmetric(self) -> bool:
        return self.pads[0] == self.pads[1] and self.pads[2] == self.pads[3]


class ConvAttrs(Attrs):
    out: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Padding = None
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: bool = True


class _ConvLike(Op):
    """Shared rules of every ordinary 2-D convolution; subclasses only map attributes to geometry."""

    positional: ClassVar[tuple[str, ...]] = ("out", "kernel")
    output_overwritable = True  # its gradient reads its input and weight only
    init_kind = "conv"
    init_tensors = ("weight", "bias")
    init_matrices = ("weight",)

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        return ("weight", "bias") if a.bias else ("weight",)

    @classmethod
    def geom(cls, a: Any, ins: list[Shape]) -> ConvGeom:
        raise NotImplementedError

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        g = cls.geom(a, ins)
        if g.c_in % g.groups or g.c_out % g.groups:
            raise ShapeError(
                f"`{cls.name}`: groups={g.groups} must divide both input channels ({g.c_in}) "
                f"and output channels ({g.c_out})",
                "pick a group count that divides both channel counts",
            )
        h, w = spatial_out(cls.name, (ins[0][1], ins[0][2]), g.kernel, g.stride, g.pads, g.dilation)
        return [(g.c_out, h, w)]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        g = cls.geom(a, ins)
        return g.c_out * (g.c_in // g.groups) * g.kernel[0] * g.kernel[1] + (g.c_out if g.bias else 0)

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        g = cls.geom(a, ins)
        return g.c_out * (g.c_in // g.groups) * g.kernel[0] * g.kernel[1] * outs[0][1] * outs[0][2]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        g = cls.geom(a, ins)
        return Geometry(
            kernel=(g.dilation[0] * (g.kernel[0] - 1) + 1, g.dilation[1] * (g.kernel[1] - 1) + 1),
            stride=g.stride, pad=(g.pads[0], g.pads[2]),
        )

    @classmethod
    def describe(cls, a: Any) -> str:
        s = _stride(a.stride)
        extra = f", g={a.groups}" if a.groups != 1 else ""
        return f"{cls.name} {fmt_pair(a.kernel)}{s}, {a.out}{extra}"

    torch_defaults = (("stride", "(1, 1)"), ("padding", "(0, 0)"), ("dilation", "(1, 1)"), ("groups", "1"),
                      ("bias", "True"))
    torch_helper = SAME_PADDING_HELPER
    torch_sized = ("nn.Conv2d", "conv2d_same")

    @classmethod
    def _padded_same(cls, a: Any, g: ConvGeom) -> bool:
        """Built through the helper `conv2d_same`: `pad=same` with a window wider than a pixel (its
        padding fixed or not: see SAME_PADDING_HELPER)."""
        return getattr(a, "pad", None) == "same" and same_pads_at_all(g.kernel, g.dilation)

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        g = cls.geom(a, ins)
        same = cls._padded_same(a, g)
        pad = (g.pads[0], g.pads[2]) if g.symmetric and not same else (0, 0)
        parts = [f"{g.c_in}, {g.c_out}", f"kernel_size={g.kernel}"]
        if g.stride != (1, 1):
            parts.append(f"stride={g.stride}")
        if pad != (0, 0):
            parts.append(f"padding={pad}")
        if g.dilation != (1, 1):
            parts.append(f"dilation={g.dilation}")
        if g.groups != 1:
            parts.append(f"groups={g.groups}")
        if not g.bias:
            parts.append("bias=False")
        return f"{'conv2d_same' if same else 'nn.Conv2d'}({', '.join(parts)})"

    @classmethod
    def torch_class(cls, a: Any, ins: list[Shape]) -> str | None:
        # conv2d_same builds an nn.Conv2d, or its subclass Conv2dSame.
        return "nn.Conv2d" if cls._padded_same(a, cls.geom(a, ins)) else super().torch_class(a, ins)

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        g = cls.geom(a, ins)
        if g.symmetric or cls._padded_same(a, g):
            return f"{module}({args[0]})"
        t, b, left, r = g.pads
        return f"{module}(F.pad({args[0]}, ({left}, {r}, {t}, {b})))"


@register
class Conv(_ConvLike):
    name = "conv"
    doc = ("2-D convolution: conv(out, kernel, stride=1, pad=half, dilation=1, groups=1, bias=true). "
           "`kernel` is 3 or 1x7; `pad` is an int, [h, w], [top, bottom, left, right], same or valid; "
           "the default pads d·(k−1)//2 on each side.")

    Attrs = ConvAttrs

    @classmethod
    def geom(cls, a: Any, ins: list[Shape]) -> ConvGeom:
        hw = (ins[0][1], ins[0][2]) if len(ins[0]) == 3 else (1, 1)
        pads = resolve_padding(a.pad, a.kernel, a.stride, a.dilation, hw)
        return ConvGeom(ins[0][0], a.out, a.kernel, a.stride, a.dilation, pads, a.groups, a.bias)


class DwConvAttrs(Attrs):
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Padding = None
    dilation: Pair = (1, 1)
    multiplier: PositiveInt = 1
    bias: bool = False


@register
class DwConv(_ConvLike):
    name = "dwconv"
    doc = ("Depthwise convolution (groups = input channels): dwconv(kernel, stride=1, pad=half, "
           "dilation=1, multiplier=1, bias=false).")
    Attrs = DwConvAttrs
    positional = ("kernel",)

    @classmethod
    def geom(cls, a: Any, ins: list[Shape]) -> ConvGeom:
        c = ins[0][0]
        hw = (ins[0][1], ins[0][2]) if len(ins[0]) == 3 else (1, 1)
        pads = resolve_padding(a.pad, a.kernel, a.stride, a.dilation, hw)
        return ConvGeom(c, c * a.multiplier, a.kernel, a.stride, a.dilation, pads, c, a.bias)

    @classmethod
    def describe(cls, a: Any) -> str:
        s = _stride(a.stride)
        return f"dwconv {fmt_pair(a.kernel)}{s}"


class PwConvAttrs(Attrs):
    out: PositiveInt
    groups: PositiveInt = 1
    bias: bool = False


@register
class PwConv(_ConvLike):
    name = "pwconv"
    doc = "Pointwise (1×1) convolution: pwconv(out, groups=1, bias=false)."
    Attrs = PwConvAttrs
    positional = ("out",)

    @classmethod
    def geom(cls, a: Any, ins: list[Shape]) -> ConvGeom:
        return ConvGeom(ins[0][0], a.out, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), a.groups, a.bias)

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"pwconv 1×1, {a.out}" + (f", g={a.groups}" if a.groups != 1 else "")


class DeconvAttrs(Attrs):
    out: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: NonNegPair = (0, 0)
    output_pad: NonNegPair = (0, 0)
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: bool = True


@register
class Deconv(Op):
    name = "deconv"
    aliases = ("conv_transpose",)
    doc = ("Transposed convolution: deconv(out, kernel, stride=1, pad=0, output_pad=0, dilation=1, "
           "groups=1, bias=true); out = (in−1)·s − 2p + d(k−1) + output_pad + 1.")
    Attrs = DeconvAttrs
    positional = ("out", "kernel")
    output_overwritable = True  # its gradient reads its input and weight only
    init_kind = "deconv"
    init_tensors = ("weight", "bias")
    init_matrices = ("weight",)

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        return ("weight", "bias") if a.bias else ("weight",)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        c = ins[0][0]
        if c % a.groups or a.out % a.groups:
            raise ShapeError(f"`deconv`: groups={a.groups} must divide {c} and {a.out}")
        for i in range(2):  # ConvTranspose2d checks it only when it runs
            if a.output_pad[i] >= max(a.stride[i], a.dilation[i]):
                raise ShapeError(f"`deconv`: output_pad={list(a.output_pad)} must be smaller than the stride "
                                 f"{list(a.stride)} or the dilation {list(a.dilation)} in each dimension",
                                 "output_pad picks one of the sizes a stride > 1 leaves open; with stride 1 it is 0")
        hw = []
        for i in range(2):
            size = (ins[0][1 + i] - 1) * a.stride[i] - 2 * a.pad[i] + a.dilation[i] * (a.kernel[i] - 1) \
                + a.output_pad[i] + 1
            if size <= 0:
                raise ShapeError(f"`deconv` output would be empty for input {fmt_shape(ins[0])}")
            hw.append(size)
        return [(a.out, hw[0], hw[1])]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return int(ins[0][0] * (a.out // a.groups) * a.kernel[0] * a.kernel[1] + (a.out if a.bias else 0))

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return int(ins[0][0] * (a.out // a.groups) * a.kernel[0] * a.kernel[1] * ins[0][1] * ins[0][2])

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        # A transposed conv is a conv over the input dilated by s: jump j/s, extent (k_eff−1)/s + 1
        # input pixels, first centre shifted by ((k_eff−1)/2 − p)/s (Araujo et al. 2019).
        k_eff = [a.dilation[i] * (a.kernel[i] - 1) + 1 for i in range(2)]
        return Geometry(
            kernel=((k_eff[0] - 1) / a.stride[0] + 1, (k_eff[1] - 1) / a.stride[1] + 1),
            stride=(1 / a.stride[0], 1 / a.stride[1]),
            pad=((k_eff[0] - 1 - a.pad[0]) / a.stride[0], (k_eff[1] - 1 - a.pad[1]) / a.stride[1]),
        )

    @classmethod
    def describe(cls, a: Any) -> str:
        s = _stride(a.stride)
        return f"deconv {fmt_pair(a.kernel)}{s}, {a.out}"

    torch_defaults = (("stride", "(1, 1)"), ("padding", "(0, 0)"), ("output_padding", "(0, 0)"), ("dilation", "(1, 1)"),
                      ("groups", "1"), ("bias", "True"))

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        parts = [f"{ins[0][0]}, {a.out}", f"kernel_size={a.kernel}"]
        if a.stride != (1, 1):
            parts.append(f"stride={a.stride}")
        if a.pad != (0, 0):
            parts.append(f"padding={a.pad}")
        if a.output_pad != (0, 0):
            parts.append(f"output_padding={a.output_pad}")
        if a.dilation != (1, 1):
            parts.append(f"dilation={a.dilation}")
        if a.groups != 1:
            parts.append(f"groups={a.groups}")
        if not a.bias:
            parts.append("bias=False")
        return f"nn.ConvTranspose2d({', '.join(parts)})"

    torch_sized = ("nn.ConvTranspose2d",)


class LocalAttrs(Attrs):
    out: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: NonNegativeInt = 0
    bias: bool = True


@register
class Local(Op):
    name = "local"
    aliases = ("locally_connected",)
    doc = ("Locally connected layer (DeepFace): like conv, but every output position has its own "
           "filters. local(out, kernel, stride=1, pad=0, bias=true); bias is per output element.")
    Attrs = LocalAttrs
    positional = ("out", "kernel")
    torch_helper = '''
class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared: each output position has its own (DeepFace)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_size: tuple[int, int],
        out_size: tuple[int, int],
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        padding: int,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.out_size = kernel_size, stride, padding, out_size
        fan_in = in_channels * kernel_size[0] * kernel_size[1]
        bound = fan_in**-0.5
        self.weight = nn.Parameter(torch.empty(out_size[0] * out_size[1], fan_in, out_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, *out_size).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # N × fan_in × positions
        out = torch.bmm(cols.permute(2, 0, 1), self.weight)  # positions × N × out_channels
        out = out.permute(1, 2, 0).reshape(x.shape[0], -1, *self.out_size)
        return out if self.bias is None else out + self.bias
'''

    @classmethod
    def _out_hw(cls, a: Any, ins: list[Shape]) -> tuple[int, int]:
        p = a.pad
        return spatial_out(cls.name, (ins[0][1], ins[0][2]), a.kernel, a.stride, (p, p, p, p))

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        h, w = cls._out_hw(a, ins)
        return [(a.out, h, w)]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        h, w = cls._out_hw(a, ins)
        weights = h * w * a.out * ins[0][0] * a.kernel[0] * a.kernel[1]
        return int(weights + (a.out * h * w if a.bias else 0))

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        h, w = cls._out_hw(a, ins)
        return int(h * w * a.out * ins[0][0] * a.kernel[0] * a.kernel[1])

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        return Geometry(kernel=a.kernel, stride=a.stride, pad=(a.pad, a.pad))

    @classmethod
    def describe(cls, a: Any) -> str:
        s = _stride(a.stride)
        return f"local {fmt_pair(a.kernel)}{s}, {a.out}"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        h, w = cls._out_hw(a, ins)
        return (f"LocallyConnected2d({ins[0][0]}, {a.out}, in_size={(ins[0][1], ins[0][2])}, "
                f"out_size={(h, w)}, kernel_size={a.kernel}, stride={a.stride}, padding={a.pad}, "
                f"bias={a.bias})")


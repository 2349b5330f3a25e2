"""Pooling: max/avg with windows (kernel, stride, pad, ceil_mode), global and adaptive pooling."""

from __future__ import annotations

from typing import Any, Literal

from .base import (
    GLOBAL_GEOMETRY,
    SAME_PADDING_HELPER,
    Attrs,
    Geometry,
    Op,
    Padding,
    Pair,
    Shape,
    ShapeError,
    fmt_pair,
    need_rank,
    pads_with_input,
    register,
    resolve_padding,
    spatial_out,
)


class PoolAttrs(Attrs):
    kernel: Pair | Literal["global"]
    stride: Pair | None = None  # defaults to the kernel, as in PyTorch
    pad: Padding = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True  # avgpool only


class _Pool(Op):
    category = "pool"
    Attrs = PoolAttrs
    positional = ("kernel", "stride")
    module: str = ""
    adaptive: str = ""

    @classmethod
    def _window(cls, a: Any, ins: list[Shape]) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        stride = a.stride or a.kernel
        pads = resolve_padding(a.pad, a.kernel, stride, (1, 1), (ins[0][1], ins[0][2]))
        return stride, pads

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        if a.kernel == "global":
            return [(ins[0][0], 1, 1)]
        stride, pads = cls._window(a, ins)
        if max(pads) * 2 > max(a.kernel):
            raise ShapeError(f"`{cls.name}`: padding {max(pads)} is more than half the kernel {fmt_pair(a.kernel)}",
                             "PyTorch requires pad ≤ kernel/2 for pooling")
        h, w = spatial_out(cls.name, (ins[0][1], ins[0][2]), a.kernel, stride, pads, ceil=a.ceil_mode)
        return [(ins[0][0], h, w)]

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        k = (ins[0][1] * ins[0][2]) if a.kernel == "global" else a.kernel[0] * a.kernel[1]
        return outs[0][0] * outs[0][1] * outs[0][2] * k

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        if a.kernel == "global":
            return GLOBAL_GEOMETRY
        stride, pads = cls._window(a, ins)
        return Geometry(kernel=a.kernel, stride=stride, pad=(pads[0], pads[2]))

    @classmethod
    def describe(cls, a: Any) -> str:
        if a.kernel == "global":
            return f"{cls.name} global"
        stride = a.stride or a.kernel
        s = "" if stride == (1, 1) else f"/{stride[0]}" if stride[0] == stride[1] else f"/{fmt_pair(stride)}"
        return f"{cls.name} {fmt_pair(a.kernel)}{s}"

    torch_helper = SAME_PADDING_HELPER

    @classmethod
    def _pads_with_input(cls, a: Any, stride: tuple[int, int]) -> bool:
        # An average counts the zeros padded in (F.pad) only where its own padding would count them.
        return (not a.ceil_mode and (cls.name == "maxpool" or a.count_include_pad)
                and pads_with_input(a.pad, a.kernel, stride, (1, 1)))

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        if a.kernel == "global":
            return f"nn.{cls.adaptive}(1)"
        stride, pads = cls._window(a, ins)
        same = cls._pads_with_input(a, stride)
        parts = [f"kernel_size={a.kernel}", f"stride={stride}"]
        if pads[0] == pads[1] and pads[2] == pads[3] and pads != (0, 0, 0, 0) and not same:
            parts.append(f"padding={(pads[0], pads[2])}")
        if a.ceil_mode:
            parts.append("ceil_mode=True")
        if cls.name == "avgpool" and not a.count_include_pad:
            parts.append("count_include_pad=False")
        return f"{cls.module}Same({', '.join(parts)})" if same else f"nn.{cls.module}({', '.join(parts)})"

    @classmethod
    def torch_class(cls, a: Any, ins: list[Shape]) -> str | None:
        # MaxPool2dSame and AvgPool2dSame are torch's pools that pad first.
        return f"nn.{cls.module}" if cls._pads_with_input(a, cls._window(a, ins)[0]) else super().torch_class(a, ins)

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        if a.kernel == "global":
            return f"{module}({args[0]})"
        stride, pads = cls._window(a, ins)
        fill = ", value=float('-inf')" if cls.name == "maxpool" else ""
        if cls._pads_with_input(a, stride) or (pads[0] == pads[1] and pads[2] == pads[3]):
            return f"{module}({args[0]})"
        t, b, left, r = pads
        return f"{module}(F.pad({args[0]}, ({left}, {r}, {t}, {b}){fill}))"


@register
class MaxPool(_Pool):
    name = "maxpool"
    doc = ("Max pooling: maxpool(kernel, stride=kernel, pad=0, ceil_mode=false); "
           "maxpool(global) is global max pooling.")
    module = "MaxPool2d"
    torch_sized = ("nn.MaxPool2d", "MaxPool2dSame")
    adaptive = "AdaptiveMaxPool2d"


@register
class AvgPool(_Pool):
    name = "avgpool"
    doc = ("Average pooling: avgpool(kernel, stride=kernel, pad=0, ceil_mode=false, "
           "count_include_pad=true); avgpool(global) is global average pooling.")
    module = "AvgPool2d"
    torch_sized = ("nn.AvgPool2d", "AvgPool2dSame")
    adaptive = "AdaptiveAvgPool2d"


class AdaptiveAttrs(Attrs):
    size: Pair


class _Adaptive(Op):
    category = "pool"
    Attrs = AdaptiveAttrs
    positional = ("size",)
    module: str = ""

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        return [(ins[0][0], *a.size)]

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        if a.size == (1, 1):
            return GLOBAL_GEOMETRY
        h, w = ins[0][1], ins[0][2]
        if h % a.size[0] == 0 and w % a.size[1] == 0:  # exact tiling: an ordinary window
            k = (h // a.size[0], w // a.size[1])
            return Geometry(kernel=k, stride=k)
        # Uneven windows: output i reads [floor(i·h/n), ceil((i+1)·h/n) − 1], inside the open
        # interval (i·h/n − 1, (i+1)·h/n): a window of h/n + 2 with jump h/n and padding 1 (a bound).
        jh, jw = h / a.size[0], w / a.size[1]
        return Geometry(kernel=(jh + 2, jw + 2), stride=(jh, jw), pad=(1, 1))

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"{cls.name} → {fmt_pair(a.size)}"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.{cls.module}({a.size})"


@register
class AdaptiveAvgPool(_Adaptive):
    name = "adaptive_avgpool"
    doc = "Adaptive average pooling to a fixed output size: adaptive_avgpool(6x6)."
    module = "AdaptiveAvgPool2d"


@register
class AdaptiveMaxPool(_Adaptive):
    name = "adaptive_maxpool"
    doc = "Adaptive max pooling to a fixed output size: adaptive_maxpool(6x6)."
    module = "AdaptiveMaxPool2d"



"""Element-wise activations. Each is shape-preserving, parameter-free and MAC-free."""

from __future__ import annotations

from typing import Any

from .attr_schema import NonNegativeFloat32
from .base import Attrs, Op, Shape, checked_dim, py_number, register


class _Activation(Op):
    category = "activation"
    module: str = ""  # the torch.nn class
    in_place: bool = False  # the class takes `inplace=True` (nn.ReLU does, nn.Sigmoid does not)

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.{cls.module}()"

    @classmethod
    def torch_init_in_place(cls, a: Any, ins: list[Shape]) -> str | None:
        if not cls.in_place:
            return None
        init = cls.torch_init(a, ins)
        return f"{init[:-1]}{'' if init.endswith('()') else ', '}inplace=True)"


def _simple(name: str, module: str, doc: str, aliases: tuple[str, ...] = (), in_place: bool = False,
            overwritable: bool = False) -> type[Op]:
    cls = type(name.capitalize(), (_Activation,), {"name": name, "module": module, "doc": doc,
                                                   "aliases": aliases, "in_place": in_place,
                                                   "output_overwritable": overwritable})
    return register(cls)


# In place where torchvision's models use them so: ReLU (ResNet, VGG), ReLU6 (MobileNetV2), SiLU
# (EfficientNet), Hardswish (MobileNetV3); and the others torch offers it for.
# `overwritable`: the gradient reads the activation's input only, never its output (autograd keeps
# what it needs of the input, in place or not), so the one op that reads the output may overwrite it:
# torchvision's FusedMBConv sums `result += input` onto a SiLU. ReLU's, Sigmoid's and Tanh's
# gradients read their output.
Relu = _simple("relu", "ReLU", "max(x, 0).", in_place=True)
Relu6 = _simple("relu6", "ReLU6", "min(max(x, 0), 6) (MobileNet).", in_place=True)
Sigmoid = _simple("sigmoid", "Sigmoid", "1 / (1 + e^−x).")
Tanh = _simple("tanh", "Tanh", "Hyperbolic tangent.")
Silu = _simple("silu", "SiLU", "x·sigmoid(x), a.k.a. swish (EfficientNet).", aliases=("swish",),
               in_place=True, overwritable=True)
Hswish = _simple("hswish", "Hardswish", "x·relu6(x+3)/6 (MobileNetV3).", aliases=("hardswish",),
                 in_place=True, overwritable=True)
Hsigmoid = _simple("hsigmoid", "Hardsigmoid", "relu6(x+3)/6 (MobileNetV3).", aliases=("hardsigmoid",),
                   in_place=True, overwritable=True)
Mish = _simple("mish", "Mish", "x·tanh(softplus(x)) (YOLOv4).", in_place=True, overwritable=True)
Gelu = _simple("gelu", "GELU", "Gaussian error linear unit.", overwritable=True)


class LeakyAttrs(Attrs):
    slope: NonNegativeFloat32 = 0.01


@register
class Leaky(_Activation):
    name = "leaky"
    aliases = ("leaky_relu",)
    doc = "Leaky ReLU: leaky(slope=0.01); darknet uses leaky(0.1)."
    Attrs = LeakyAttrs
    positional = ("slope",)
    shape_free = frozenset({"slope"})
    in_place = True

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.LeakyReLU({py_number(a.slope)})"


class SoftmaxAttrs(Attrs):
    dim: int = 0


@register
class Softmax(_Activation):
    name = "softmax"
    doc = "Softmax over a dimension (batch excluded; 0 is channels): softmax(dim=0)."
    Attrs = SoftmaxAttrs
    positional = ("dim",)

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        checked_dim(cls.name, a.dim, ins[0], "dim=0 is the channels, dim=-1 the last dimension")
        return [ins[0]]

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        dim = a.dim + 1 if a.dim >= 0 else a.dim
        return f"nn.Softmax(dim={dim})"

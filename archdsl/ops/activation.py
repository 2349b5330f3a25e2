"""Element-wise activations. Each is shape-preserving, parameter-free and MAC-free."""

from __future__ import annotations

from typing import Any

from pydantic import NonNegativeFloat

from .base import Attrs, Op, Shape, py_number, register


class _Activation(Op):
    category = "activation"
    module: str = ""  # the torch.nn class

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return f"nn.{cls.module}()"


def _simple(name: str, module: str, doc: str, aliases: tuple[str, ...] = ()) -> type[Op]:
    cls = type(name.capitalize(), (_Activation,), {"name": name, "module": module, "doc": doc,
                                                   "aliases": aliases})
    return register(cls)


Relu = _simple("relu", "ReLU", "max(x, 0).")
Relu6 = _simple("relu6", "ReLU6", "min(max(x, 0), 6) (MobileNet).")
Sigmoid = _simple("sigmoid", "Sigmoid", "1 / (1 + e^−x).")
Tanh = _simple("tanh", "Tanh", "Hyperbolic tangent.")
Silu = _simple("silu", "SiLU", "x·sigmoid(x), a.k.a. swish (EfficientNet).", aliases=("swish",))
Hswish = _simple("hswish", "Hardswish", "x·relu6(x+3)/6 (MobileNetV3).", aliases=("hardswish",))
Hsigmoid = _simple("hsigmoid", "Hardsigmoid", "relu6(x+3)/6 (MobileNetV3).", aliases=("hardsigmoid",))
Mish = _simple("mish", "Mish", "x·tanh(softplus(x)) (YOLOv4).")
Gelu = _simple("gelu", "GELU", "Gaussian error linear unit.")


class LeakyAttrs(Attrs):
    slope: NonNegativeFloat = 0.01


@register
class Leaky(_Activation):
    name = "leaky"
    aliases = ("leaky_relu",)
    doc = "Leaky ReLU: leaky(slope=0.01); darknet uses leaky(0.1)."
    Attrs = LeakyAttrs
    positional = ("slope",)

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
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        dim = a.dim + 1 if a.dim >= 0 else a.dim
        return f"nn.Softmax(dim={dim})"

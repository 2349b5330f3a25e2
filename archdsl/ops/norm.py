"""Normalization: batch norm (learnable affine + running statistics) and local response norm."""

from __future__ import annotations

from typing import Any

from .attr_schema import PositiveFloat, PositiveInt32
from .base import Attrs, Op, Shape, need_rank, py_number, register


class BatchNormAttrs(Attrs):
    eps: PositiveFloat = 1e-5
    momentum: float = 0.1
    affine: bool = True


@register
class BatchNorm(Op):
    name = "bn"
    shape_free = frozenset({"eps", "momentum"})
    aliases = ("batchnorm",)
    category = "norm"
    doc = "Batch normalization over channels: bn(eps=1e-5, momentum=0.1, affine=true)."
    Attrs = BatchNormAttrs
    output_overwritable = True  # its gradient reads its input and the batch statistics only
    init_kind = "bn"
    init_tensors = ("weight", "bias")

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        return ("weight", "bias") if a.affine else ()

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return 2 * ins[0][0] if a.affine else 0

    @classmethod
    def buffers(cls, a: Any, ins: list[Shape]) -> int:
        return 2 * ins[0][0]  # running mean and variance (num_batches_tracked is not counted)

    torch_defaults = (("eps", "1e-05"), ("momentum", "0.1"), ("affine", "True"))

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        kind = "BatchNorm2d" if len(ins[0]) == 3 else "BatchNorm1d"
        extra = "" if a.eps == 1e-5 else f", eps={py_number(a.eps)}"
        extra += "" if a.momentum == 0.1 else f", momentum={py_number(a.momentum)}"
        extra += "" if a.affine else ", affine=False"
        return f"nn.{kind}({ins[0][0]}{extra})"


class FrozenBatchNormAttrs(Attrs):
    eps: PositiveFloat = 1e-5


@register
class FrozenBatchNorm(Op):
    name = "frozen_bn"
    shape_free = frozenset({"eps"})
    category = "norm"
    doc = ("Batch normalization with a fixed affine transform and statistics (torchvision's "
           "FrozenBatchNorm2d, the detection backbones' default): frozen_bn(eps=1e-5). Its scale, shift, "
           "mean and variance are buffers, so it has no parameters.")
    Attrs = FrozenBatchNormAttrs
    # torchvision.ops.misc.FrozenBatchNorm2d's forward, operation for operation (its state_dict keys
    # too), so outputs agree with it bit for bit rather than to BatchNorm2d's rounding.
    torch_helper = '''
class FrozenBatchNorm2d(nn.Module):
    """Batch norm whose scale, shift and statistics are fixed buffers (torchvision's FrozenBatchNorm2d)."""

    def __init__(self, n: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        return x * scale + (b - rm * scale)
'''

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        need_rank(cls.name, ins[0], 3)
        return [ins[0]]

    @classmethod
    def buffers(cls, a: Any, ins: list[Shape]) -> int:
        return 4 * ins[0][0]  # weight, bias, running mean and variance

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        extra = "" if a.eps == 1e-5 else f", eps={a.eps!r}"
        return f"FrozenBatchNorm2d({ins[0][0]}{extra})"


class LrnAttrs(Attrs):
    size: PositiveInt32 = 5  # a window over the channels, padded as one (torch: 32-bit)
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@register
class LocalResponseNorm(Op):
    name = "lrn"
    category = "norm"
    doc = "Local response normalization across channels (AlexNet): lrn(size=5, alpha=1e-4, beta=0.75, k=1)."
    Attrs = LrnAttrs
    positional = ("size",)

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        return (f"nn.LocalResponseNorm({a.size}, alpha={py_number(a.alpha)}, beta={py_number(a.beta)}, "
                f"k={py_number(a.k)})")

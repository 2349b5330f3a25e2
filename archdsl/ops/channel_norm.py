"""Per-position normalization and scaling over the channels: L2 normalization (SSD's conv4_3 with
its learnable scale, FaceNet's embedding), layer norm (ConvNeXt) and layer scale (ConvNeXt's γ).

Each works on the channel dimension (dim 0, batch excluded) of a vector or a C×H×W map, like `bn`;
none mixes positions, so none changes the receptive field.
"""

from __future__ import annotations

from typing import Any, Literal

from .attr_schema import Float32, PositiveFloat, PositiveFloat32
from .base import Attrs, Op, Shape, ShapeError, checked_dim, fmt_shape, py_number, register


def _per_channel(param: str, rank: int) -> str:
    """A (C,) parameter broadcast over the channels of an N×C×… tensor of `rank` dims (batch excluded)."""
    return param if rank == 1 else f"{param}.view(1, -1{', 1' * (rank - 1)})"


class L2NormAttrs(Attrs):
    scale: PositiveFloat32 | None = None
    eps: PositiveFloat32 = 1e-12


@register
class L2Norm(Op):
    name = "l2norm"
    category = "norm"
    doc = ("L2 normalization over the channels, x / max(‖x‖₂, eps) (torch's F.normalize), at every "
           "position; l2norm(20) adds a learnable per-channel scale initialised to 20 (SSD's conv4_3, "
           "torchvision's scale_weight); l2norm alone is FaceNet's embedding.")
    Attrs = L2NormAttrs
    positional = ("scale",)
    torch_helper = '''
class L2Norm(nn.Module):
    """F.normalize over the channels times a learnable per-channel scale (torchvision's SSD scale_weight)."""

    def __init__(self, channels: int, scale: float, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps
        self.scale_weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.scale_weight.view(1, -1, *([1] * (x.dim() - 2)))
        return weight * F.normalize(x, dim=1, eps=self.eps)
'''

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return ins[0][0] if a.scale is not None else 0

    @classmethod
    def describe(cls, a: Any) -> str:
        return "l2norm" if a.scale is None else f"l2norm ×{a.scale:g}"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str | None:
        if a.scale is None:
            return None
        eps = "" if a.eps == 1e-12 else f", eps={py_number(a.eps)}"
        return f"L2Norm({ins[0][0]}, {py_number(float(a.scale))}{eps})"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        if module is not None:
            return f"{module}({args[0]})"
        eps = "" if a.eps == 1e-12 else f", eps={py_number(a.eps)}"
        return f"F.normalize({args[0]}, dim=1{eps})"

    @classmethod
    def torch_parameter(cls, a: Any, ins: list[Shape]) -> str | None:
        return None if a.scale is None else f"nn.Parameter(torch.full(({ins[0][0]},), {py_number(float(a.scale))}))"

    @classmethod
    def torch_forward_parameter(cls, a: Any, ins: list[Shape], args: list[str], param: str) -> str:
        # torchvision's SSDFeatureExtractorVGG: self.scale_weight.view(1, -1, 1, 1) * F.normalize(x)
        return f"{_per_channel(param, len(ins[0]))} * {cls.torch_forward(a, ins, args, None)}"


class LayerNormAttrs(Attrs):
    dim: int = 0
    eps: PositiveFloat = 1e-5
    affine: bool = True


@register
class LayerNorm(Op):
    name = "layernorm"
    category = "norm"
    doc = ("Layer normalization over one dimension, by default the channels at every position (timm's "
           "LayerNorm2d in ConvNeXt): layernorm(dim=0, eps=1e-5, affine=true); dim=-1 normalizes the "
           "last dimension (nn.LayerNorm after a permute).")
    Attrs = LayerNormAttrs
    init_kind = "layernorm"
    init_tensors = ("weight", "bias")

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        return ("weight", "bias") if a.affine else ()

    @classmethod
    def _dim(cls, a: Any, shape: Shape) -> int:
        return checked_dim(cls.name, int(a.dim), shape, "dim=0 normalizes the channels, dim=-1 the last dimension")

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        if not ins[0]:
            raise ShapeError("`layernorm` needs a tensor with at least one dimension")
        cls._dim(a, ins[0])
        return [ins[0]]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return 2 * ins[0][cls._dim(a, ins[0])] if a.affine else 0

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        extra = "" if a.eps == 1e-5 else f", eps={py_number(a.eps)}"
        extra += "" if a.affine else ", elementwise_affine=False"
        return f"nn.LayerNorm({ins[0][cls._dim(a, ins[0])]}{extra})"

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        rank, d, x = len(ins[0]), cls._dim(a, ins[0]), args[0]
        if d == rank - 1:
            return f"{module}({x})"
        if rank == 3 and d == 0:  # timm's LayerNorm2d: channels last, normalize, channels first
            return f"{module}({x}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)"
        return f"{module}({x}.movedim({d + 1}, -1)).movedim(-1, {d + 1})"


class LayerScaleAttrs(Attrs):
    init: Float32 = 1e-6
    # The rank of the held γ: 1 is a C-vector (timm's gamma), 3 is C×1×1 (torchvision's ConvNeXt
    # `layer_scale`), so that either model's state_dict loads by name.
    rank: Literal[1, 3] = 1


@register
class LayerScale(Op):
    name = "layer_scale"
    doc = ("A learnable scale per channel, initialised to `init` (ConvNeXt's γ; timm's LayerScale2d, "
           "parameter `gamma`): layer_scale(1e-6); layer_scale(1e-6, rank=3) holds γ as C×1×1, as "
           "torchvision's ConvNeXt does.")
    Attrs = LayerScaleAttrs
    positional = ("init",)
    torch_helper = '''
class LayerScale(nn.Module):
    """x times a learnable per-channel gamma (timm's LayerScale2d; ConvNeXt's layer scale)."""

    def __init__(self, channels: int, init: float, rank: int = 1) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,) + (1,) * (rank - 1), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, *([1] * (x.dim() - 2)))
'''

    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        if not ins[0]:
            raise ShapeError("`layer_scale` needs a tensor with channels")
        if a.rank != 1 and len(ins[0]) != a.rank:
            raise ShapeError(f"`layer_scale(rank={a.rank})` holds a γ of {a.rank} dimensions, which scales a "
                             f"tensor of {a.rank} dimensions, not {fmt_shape(ins[0])}",
                             "rank=1 (the default) scales the channels of a tensor of any rank")
        return [ins[0]]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return ins[0][0]

    @classmethod
    def describe(cls, a: Any) -> str:
        return f"layer_scale {a.init:g}"

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        rank = "" if a.rank == 1 else f", rank={a.rank}"
        return f"LayerScale({ins[0][0]}, {py_number(float(a.init))}{rank})"

    @classmethod
    def torch_parameter(cls, a: Any, ins: list[Shape]) -> str | None:
        shape = f"({ins[0][0]},)" if a.rank == 1 else f"({ins[0][0]}{', 1' * (a.rank - 1)})"
        return f"nn.Parameter(torch.full({shape}, {py_number(float(a.init))}))"

    @classmethod
    def torch_forward_parameter(cls, a: Any, ins: list[Shape], args: list[str], param: str) -> str:
        if a.rank != 1:  # torchvision: self.layer_scale * self.block(input), γ already C×1×1
            return f"{args[0]} * {param}"
        return f"{args[0]} * {_per_channel(param, len(ins[0]))}"  # timm: x.mul(self.gamma.reshape(1, -1, 1, 1))

"""l2norm, layernorm, layer_scale and linear over the channels, against the implementations they
mirror: torchvision's SSD (conv4_3's L2Norm, `scale_weight`), timm's ConvNeXt (LayerNorm2d, the
block's nn.Linear MLP on channels-last and its `gamma`), and F.normalize for FaceNet's embedding.

Each case compiles a tiny spec, builds the reference, and checks parameters, FlopCounterMode MACs,
shapes and outputs after load_weights (tests/op_reference.py); where the spec's labels follow the
reference's names, load_weights must match every tensor by name.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from .op_reference import compare, spec_network  # noqa: E402

# ---------------------------------------------------------------------------------------------
# l2norm

# VGG16's features up to conv4_3, labelled as torchvision's `features` indices, then SSD's L2Norm
# under torchvision's name. 76×76 keeps it fast and makes pool3's ceil_mode matter (19 → 10).
SSD_CONV4_3 = """
network ssd_conv4_3 {
    input image: 3x76x76
    image -> conv(64, 3) as features.0 -> relu as features.1 -> conv(64, 3) as features.2 -> relu as features.3
          -> maxpool(2) as features.4
          -> conv(128, 3) as features.5 -> relu as features.6 -> conv(128, 3) as features.7 -> relu as features.8
          -> maxpool(2) as features.9
          -> conv(256, 3) as features.10 -> relu as features.11 -> conv(256, 3) as features.12
          -> relu as features.13 -> conv(256, 3) as features.14 -> relu as features.15
          -> maxpool(2, ceil_mode=true) as features.16
          -> conv(512, 3) as features.17 -> relu as features.18 -> conv(512, 3) as features.19
          -> relu as features.20 -> conv(512, 3) as features.21 -> relu as features.22
          -> l2norm(20) as scale_weight -> output conv4_3
}
"""


def _torchvision_ssd_extractor() -> nn.Module:
    from torchvision.models import vgg
    from torchvision.models.detection.ssd import SSDFeatureExtractorVGG

    extractor = SSDFeatureExtractorVGG(vgg.make_layers(vgg.cfgs["D"]), highres=False)
    extractor.extra = nn.ModuleList()  # its forward then returns {"0": the rescaled conv4_3} only
    return extractor


def test_l2norm_is_torchvision_ssd_scale_weight() -> None:
    reference = _torchvision_ssd_extractor()
    fresh = {k: v.clone() for k, v in reference.state_dict().items()}
    result = compare(SSD_CONV4_3, reference)
    assert result.matched_by == "name"  # `features.N.*` and `scale_weight`, torchvision's own keys
    assert result.network.output_shapes == {"conv4_3": (512, 10, 10)}
    # The initial scale is torchvision's: 512 weights, all 20 (nn.Parameter(torch.ones(512) * 20)).
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.testing.assert_close(build_module(result.network).scale_weight, fresh["scale_weight"], rtol=0, atol=0)
    layer = next(x for x in result.network.analyze().layers if x.name == "scale_weight")
    assert layer.params == 512 and layer.macs == 0


class _Embedding(nn.Module):
    """FaceNet's output: an embedding constrained to ‖f(x)‖₂ = 1 (Schroff et al. 2015, §3)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(x), p=2, dim=1)


def test_l2norm_without_scale_is_facenets_embedding() -> None:
    spec = "network emb {\n    input x: [64]\n    x -> linear(128) as fc -> l2norm -> output embedding\n}"
    result = compare(spec, _Embedding())
    assert result.matched_by == "name"
    out = result.generated(torch.randn(3, 64))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


class _ScaledNorm(nn.Module):
    """torchvision's rescaling line as a module of its own: scale_weight.view(1, -1, 1, 1) * F.normalize(x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale_weight = nn.Parameter(torch.ones(channels) * 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_weight.view(1, -1, 1, 1) * F.normalize(x)


class _GroupedNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.ModuleDict({"norm": _ScaledNorm(8)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head["norm"](x)


def test_l2norm_inside_a_group_is_a_module_with_the_same_parameter_name() -> None:
    spec = "network g {\n    input x: 8x5x5\n    x -> l2norm(20) as head.norm -> output y\n}"
    result = compare(spec, _GroupedNorm())
    assert result.matched_by == "name"  # head.norm.scale_weight


# ---------------------------------------------------------------------------------------------
# layernorm, linear over channels, layer_scale: timm's ConvNeXt

# timm's ConvNeXtBlock (conv_mlp=False): conv_dw 7×7 depthwise with bias, LayerNorm (eps 1e-6) and
# the Mlp's fc1/fc2 applied channels-last, gamma, residual add. Labels are timm's attribute names.
CONVNEXT_BLOCK = """
network block {
    input x: 32x14x14
    y = x -> dwconv(7, bias=true) as conv_dw -> layernorm(eps=1e-6) as norm
          -> linear(128, dim=0) as mlp.fc1 -> gelu as mlp.act -> linear(32, dim=0) as mlp.fc2
          -> layer_scale(1e-6) as gamma
    x + y -> output out
}
"""


def test_convnext_block_is_timms() -> None:
    from timm.models.convnext import ConvNeXtBlock

    reference = ConvNeXtBlock(in_chs=32, ls_init_value=1e-6)
    fresh = reference.gamma.detach().clone()
    result = compare(CONVNEXT_BLOCK, reference)
    assert result.matched_by == "name"  # conv_dw.*, norm.*, mlp.fc1.*, mlp.fc2.*, gamma
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.testing.assert_close(build_module(result.network).gamma, fresh, rtol=0, atol=0)  # 1e-6 each
    layers = {x.name: x for x in result.network.analyze().layers}
    # fc1 = 32·128 + 128 weights and biases; MACs H·W·C_in·C_out = 14·14·32·128 (torch's addmm count)
    assert layers["mlp.fc1"].params == 32 * 128 + 128 and layers["mlp.fc1"].macs == 14 * 14 * 32 * 128
    assert layers["norm"].params == 2 * 32 and layers["gamma"].params == 32


class _Stem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from timm.layers import LayerNorm2d

        self.stem = nn.Sequential(nn.Conv2d(3, 24, kernel_size=4, stride=4), LayerNorm2d(24, eps=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)


def test_layernorm_over_channels_is_timms_layernorm2d() -> None:
    spec = ("network stem {\n    input image: 3x32x32\n"
            "    image -> conv(24, 4, stride=4, pad=0) as stem.0 -> layernorm(eps=1e-6) as stem.1 -> output y\n}")
    assert compare(spec, _Stem()).matched_by == "name"


class _TokenNorm(nn.Module):
    """torchvision's CNBlock layout: Permute([0, 2, 3, 1]), then LayerNorm and Linear on the last dim."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(16, eps=1e-6)
        self.fc = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.permute(0, 2, 3, 1)))


def test_layernorm_and_linear_on_the_last_dimension_after_permute() -> None:
    spec = ("network t {\n    input x: 16x6x5\n"
            "    x -> permute(1, 2, 0) -> layernorm(dim=-1, eps=1e-6) as norm -> linear(8, dim=-1) as fc"
            " -> output y\n}")
    result = compare(spec, _TokenNorm())
    assert result.network.output_shapes == {"y": (6, 5, 8)}


class _GroupedScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from timm.layers import LayerScale2d

        self.ls = nn.ModuleDict({"scale": LayerScale2d(12, 0.5)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ls["scale"](x)


def test_layer_scale_inside_a_group_is_timms_layerscale2d() -> None:
    spec = "network t {\n    input x: 12x4x4\n    x -> layer_scale(0.5) as ls.scale -> output y\n}"
    assert compare(spec, _GroupedScale()).matched_by == "name"  # ls.scale.gamma


def test_linear_dim_0_is_a_1x1_layer_in_count() -> None:
    # linear(c, dim=0) on C×H×W has the weights of a 1×1 conv without the two unit dimensions: the
    # same count and MACs (k_h·k_w·C_in·C_out·H·W with k = 1).
    a = spec_network("network a {\n    input x: 16x7x9\n    x -> linear(24, dim=0) -> output y\n}").analyze()
    b = spec_network("network b {\n    input x: 16x7x9\n    x -> conv(24, 1) -> output y\n}").analyze()
    assert (a.params, a.macs) == (b.params, b.macs) == (16 * 24 + 24, 16 * 24 * 7 * 9)


class _TorchvisionLayerScale(nn.Module):
    """torchvision's CNBlock: `self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)`."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(12, 1, 1) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


def test_layer_scale_rank_3_is_torchvisions_c11_parameter() -> None:
    spec = "network t {\n    input x: 12x4x4\n    x -> layer_scale(0.5, rank=3) as layer_scale -> output y\n}"
    assert compare(spec, _TorchvisionLayerScale()).matched_by == "name"  # layer_scale, 12×1×1


def test_layer_scale_rank_3_needs_a_map() -> None:
    from archdsl.diagnostics import ArchError

    with pytest.raises(ArchError) as info:
        spec_network("network t {\n    input x: 12x4\n    x -> layer_scale(rank=3) -> output y\n}")
    assert "rank=3" in info.value.diagnostics[0].message

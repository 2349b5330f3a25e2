"""Size-free generated modules: a size taken from another tensor (`upsample(p5, size=[c4.h, c4.w])`,
`upsample(p4, c3)`) is read from that tensor at run time, so an FPN compiled once runs at every
input size — checked at 320, 416 and 608 against the analysis at each size and against
torchvision's FeaturePyramidNetwork with the same weights. Where the size cannot be free (a linear
layer after flatten), the module's docstring says which size it takes.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest

import archdsl.api as api

torch = pytest.importorskip("torch")
from archdsl.compiler.backends.torch_codegen import build_module, generate_source  # noqa: E402
from archdsl.compiler.backends.weights import load_weights  # noqa: E402

FPN = """
# A small strided backbone, then torchvision.ops.FeaturePyramidNetwork([32, 64, 128], 32) by name:
# lateral 1×1s (inner_blocks), each coarser level upsampled to the lateral's size, 3×3 outputs.
network fpn(res=320) {
    input image: [3, res, res]
    c3 = image -> conv(16, 3, stride=2) as stem1 -> relu -> conv(32, 3, stride=2) as stem2 -> relu
               -> conv(32, 3, stride=2) as stage3 -> relu
    c4 = c3 -> conv(64, 3, stride=2) as stage4 -> relu
    c5 = c4 -> conv(128, 3, stride=2) as stage5 -> relu
    i5 = c5 -> conv(32, 1) as fpn.inner_blocks.2.0
    i4 = c4 -> conv(32, 1) as fpn.inner_blocks.1.0
    i4 = i4 + upsample(i5, size=[i4.h, i4.w])
    i3 = c3 -> conv(32, 1) as fpn.inner_blocks.0.0
    i3 = i3 + upsample(i4, i3)
    output p3 = i3 -> conv(32, 3) as fpn.layer_blocks.0.0
    output p4 = i4 -> conv(32, 3) as fpn.layer_blocks.1.0
    output p5 = i5 -> conv(32, 3) as fpn.layer_blocks.2.0
    output f3 = c3
    output f4 = c4
    output f5 = c5
}
"""
SIZES = (320, 416, 608)


@pytest.fixture(scope="module")
def spec() -> api.Spec:
    return api.load_string(FPN, "fpn.arch")


def test_the_size_comes_from_the_tensor_at_run_time(spec: api.Spec) -> None:
    src = generate_source(spec.network())
    assert src.count("F.interpolate(") == 2 and src.count(".shape[-2:]") == 2 and "nn.Upsample(" not in src
    assert "Input image: 3 x H x W for any H and W" in src


def test_fpn_compiled_once_runs_at_three_sizes(spec: api.Spec) -> None:
    from torchvision.ops import FeaturePyramidNetwork

    module = build_module(spec.network()).eval()  # compiled at 320
    reference = FeaturePyramidNetwork([32, 64, 128], 32).eval()
    state = {k.removeprefix("fpn."): v for k, v in module.state_dict().items() if k.startswith("fpn.")}
    assert load_weights(reference, state) == "name"
    for res in SIZES:
        expected = spec.network(input=(3, res, res)).analyze().outputs
        x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(res))
        with torch.no_grad():
            out = module(x)
            theirs = reference(OrderedDict((k, out[f"f{k}"]) for k in (3, 4, 5)))
        assert {k: list(v.shape[1:]) for k, v in out.items()} == expected
        for level, (_, p) in zip((3, 4, 5), theirs.items(), strict=True):
            torch.testing.assert_close(out[f"p{level}"], p, rtol=1e-5, atol=1e-5)


def test_sizes_at_which_the_spec_elaborates_are_the_sizes_the_module_takes() -> None:
    """An odd size works too: the upsampled map takes the lateral's size, whatever it is."""
    spec = api.load_string(FPN, "fpn.arch")
    module = build_module(spec.network()).eval()
    expected = spec.network(input=(3, 330, 330)).analyze().outputs
    with torch.no_grad():
        out = module(torch.randn(1, 3, 330, 330))
    assert {k: list(v.shape[1:]) for k, v in out.items()} == expected


def test_a_linear_layer_after_flatten_fixes_the_size() -> None:
    net = api.load_string("""
network t {
    input image: 3x32x32
    image -> conv(8, 3, stride=2) -> relu -> flatten -> linear(10) as fc
}""", "t.arch").network()
    assert net.input_sizes() == ("Input image: 3 x 32 x 32, or a size that makes the same layers: "
                                 "`fc` (linear) is made for this size.")
    assert "`fc` (linear) is made for this size." in generate_source(net)


def test_a_fixed_size_that_others_must_meet_is_stated() -> None:
    net = api.load_string("""
network t {
    input image: 3x32x32
    a = image -> conv(8, 3, stride=2)
    output o = a + (image -> conv(8, 3) -> upsample(size=16x16))
}""", "t.arch").network()
    sizes = net.input_sizes()
    assert sizes is not None and sizes.startswith(
        "Input image: 3 x 32 x 32, or a size that makes the same layers: at 128 x 128 the spec does not")


def test_strided_paths_that_meet_need_multiples() -> None:
    net = api.load_string("""
network t {
    input image: 3x32x32
    output o = (image -> conv(8, 3, stride=2)) + (image -> conv(8, 3) -> maxpool(2))
}""", "t.arch").network()
    assert (net.input_sizes() or "").startswith("Input image: 3 x H x W for H and W multiples of 2")


def test_yolov3_takes_multiples_of_32() -> None:
    """Darknet's own rule for YOLO's network size: "both the width and the height must be divisible
    by 32; this is a Darknet limitation" (DarkHelp's Image Tiling page, ccoderun.ca/darkhelp)."""
    spec, name = api.find("yolov3")
    sizes = spec.network(name).input_sizes() or ""
    assert sizes.startswith("Input image: 3 x H x W for H and W multiples of 32:"), sizes


def test_a_size_one_step_away_that_rounds_alike_is_not_taken_for_any_size() -> None:
    """At 33 × 33 the pooled map is 16 × 16 as at 32 × 32, so a try one step away sees the same
    layers; the module still holds the 16 · 16 of this size (SSD300's and RetinaNet's heads did)."""
    net = api.load_string("""
network t {
    input image: 3x32x32
    x = image -> maxpool(2)
    output o = x -> reshape(3, x.height * x.width)
}""", "t.arch").network()
    assert net.input_sizes() == ("Input image: 3 x 32 x 32, or a size that makes the same layers: "
                                 "`reshape` (reshape) is made for this size.")


@pytest.mark.parametrize(("name", "res", "sizes"), [
    ("ssd300_vgg16", 320, "any H and W"),
    ("retinanet_resnet50_fpn", 256, "any H and W"),
    # BiFPN's levels P3–P7 (Tan et al. 2020, Fig. 3) at any size: each stride-2 layer pads by
    # TensorFlow's "same" rule for the size it is given (ceil(n / 2)), as effdet's timm layers do, and
    # each upsampling takes the finer level's size. 576 = 4.5 · 128: P6 is 9 × 9, P7 5 × 5.
    ("efficientdet_d0", 576, "any H and W"),
])
def test_detectors_compiled_at_one_size_run_at_another(name: str, res: int, sizes: str) -> None:
    """Compiled at its declared size, the module runs at another, with the analysis's shapes there."""
    spec, _ = api.find(name)
    net = spec.network(name)
    assert (net.input_sizes() or "").startswith(f"Input image: 3 x H x W for {sizes}:")
    expected = spec.network(name, input=(3, res, res)).analyze().outputs
    with torch.no_grad():
        out = build_module(net).eval()(torch.randn(1, 3, res, res))
    assert {k: list(v.shape[1:]) for k, v in out.items()} == expected


def test_efficientdet_d7x_takes_any_size() -> None:
    # Its P8 (stride 2⁸) too is TensorFlow's "same" downsampling, worked out for each size.
    spec, _ = api.find("efficientdet_d7x")
    sizes = spec.network("efficientdet_d7x").input_sizes() or ""
    assert sizes.startswith("Input image: 3 x H x W for any H and W:"), sizes


def test_a_module_fixed_to_its_size_takes_a_size_that_rounds_alike() -> None:
    """Network Slimming's CIFAR VGG (Liu et al. 2017; the authors' models/vgg.py: a 2×2 average pool,
    then a linear layer of 512): made for 32 × 32, it runs at 63 × 63 too, where four 2×2 max pools
    and the average pool round every map down to the 32 × 32 one's 1 × 1, and at 64 × 64 its linear
    layer gets 512 · 2 · 2 features, as the docstring says: the sizes that make the same layers."""
    spec, name = api.find("vgg19_cifar")
    net = spec.network(name)
    assert (net.input_sizes() or "").startswith("Input image: 3 x 32 x 32, or a size that makes the same layers:")
    module = build_module(net).eval()
    with torch.no_grad():
        assert module(torch.randn(1, 3, 63, 63)).shape == (1, 10)
        with pytest.raises(RuntimeError):
            module(torch.randn(1, 3, 64, 64))

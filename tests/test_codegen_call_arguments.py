"""A generated class passes a child block what the spec's call writes (`unit(c // 2)`), not a
parameter whose value merely agrees in every instance the zoo builds (`in_channels`, where each
stage's input happens to be half its width). The class must stay right when called with other
arguments, as a hand-written `DarkStage(in_channels, c, n)` would."""

from __future__ import annotations

import ast
import functools
import inspect
from types import ModuleType

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import generate_family, generate_source

from .conftest import network
from .test_codegen_repeat_classes import STAGE_BLOCKS

torch = pytest.importorskip("torch")

# Every stage's input is half its width (16 → 32 → 64), so `in_channels` equals `c // 2` throughout.
STAGES = STAGE_BLOCKS + """
network net {
    input image: 3x64x64
    image -> conv(16, 3) as stem -> stage(32, 1) as s1 -> stage(64, 2) as s2
}
network other {
    input image: 24x64x64
    image -> stage(32, 2) as s1
}
"""


@functools.cache
def _source(file: str, name: str) -> str:
    """The generated module of a zoo network (several tests read YOLOv4's and EfficientDet-D1's)."""
    return generate_source(network(file, name))


def _module(source: str) -> ModuleType:
    module = ModuleType("generated")
    exec(compile(source, "generated.py", "exec"), module.__dict__)
    return module


def test_child_call_argument_is_the_spec_expression() -> None:
    spec = api.load_string(STAGES, "stages.arch")
    source = generate_source(spec.network("net"))
    assert "Unit(c, c // 2)" in source, source
    # Called with an input that is not half the width, the class builds what the spec builds there.
    stage = _module(source).Stage(24, 32, 2)
    assert sum(p.numel() for p in stage.parameters()) == spec.network("other").analyze().params


def test_inception_pool_projection_is_its_own_parameter() -> None:
    # FaceNet NN2 (Schroff et al. 2015, Table 2): "pool proj" is a column of its own; in 3a and 5b
    # it equals the 5×5 column (32, 128), which must not make it the same argument.
    source = _source("face.arch", "facenet_nn2")
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    init = next(f for f in classes["Inception"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert "proj" in [a.arg for a in init.args.args], ast.unparse(init)


def test_fire_takes_both_expand_widths_as_torchvision_does() -> None:
    # SqueezeNet's fire modules have e1x1 = e3x3 everywhere (Iandola et al. 2016, Table 1), yet the
    # module is torchvision's Fire(inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes).
    tv = pytest.importorskip("torchvision.models.squeezenet")
    source = _source("squeezenet.arch", "squeezenet1_0")
    assert "Fire(96, 16, 64, 64)" in source, source
    ours, theirs = _module(source).Fire(96, 16, 64, 48), tv.Fire(96, 16, 64, 48)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_a_layer_takes_the_channels_the_layer_before_it_makes() -> None:
    # NIN's mlpconv (Lin et al. 2014): conv(c, k) -> conv(c1, 1) -> conv(c2, 1); the zoo's c1 equals
    # c in every instance, so only the call's arguments tell the second 1×1's input apart.
    source = _source("nin.arch", "nin_imagenet")
    mlpconv = _module(source).Mlpconv(3, 96, 11, 64, 32, 4, 0)
    assert mlpconv.cccp1.weight.shape == (64, 96, 1, 1) and mlpconv.cccp2.weight.shape == (32, 64, 1, 1)


def test_a_unit_takes_its_input_channels_where_half_its_width_is_as_large() -> None:
    # ShuffleNet V2 0.5×'s stages are 24 → 48 → 96 → 192 wide (Ma et al. 2018, Table 5), so each
    # downsampling unit's input is half its width; the class is still torchvision's
    # InvertedResidual(inp, oup, stride), here at 1.0×'s first stage, 24 → 116, and after it.
    tv = pytest.importorskip("torchvision.models.shufflenetv2")
    unit = _module(_source("shufflenet_v2.arch", "shufflenet_v2_x0_5")).ShuffleUnit
    for args in ((24, 116, 2), (116, 116, 1)):
        ours, theirs = unit(*args), tv.InvertedResidual(*args)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in theirs.state_dict().items()}, args


def test_a_parameter_some_call_passes_a_size_read_from_a_tensor_keeps_its_name() -> None:
    # Darknet-53's residual unit calls `dconv(in.channels, 3)`; the value is still the `c` of
    # `block dconv(c, k, stride=1, …)`, not an unnamed `size`.
    source = _source("darknet.arch", "darknet53")
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    init = next(f for f in classes["Dconv"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert [a.arg for a in init.args.args[1:]] == ["in_channels", "c", "k", "stride"]
    assert "self.conv2 = Dconv(mid, in_channels, 3)" in source


def test_a_child_takes_the_channels_its_sibling_block_makes() -> None:
    # YOLOv4's necks all take 2c channels, so only the layers tell `in_channels` from `2 * c` for the
    # input of conv3 and conv5, which read conv2's and conv4's `dconv(2 * c, 3)`. Built with
    # YOLOv3's second neck (yolov3.cfg layers 84-91: `[route] layers = -1, 61` gives 256 + 512 = 768
    # channels, then filters 256, 512, 256, 512, 256), the convolutions are darknet's.
    source = _source("yolo.arch", "yolov4")
    neck = _module(source).DetectionConvs(768, 256, False)
    widths = [(256, 768, 1), (512, 256, 3), (256, 512, 1), (512, 256, 3), (256, 512, 1)]
    for k, (out, into, size) in enumerate(widths, 1):
        assert getattr(neck, f"conv{k}").conv.weight.shape == (out, into, size, size), ast.unparse(ast.parse(source))


def test_a_family_stage_takes_its_input_channels_where_the_stage_before_is_half_as_wide() -> None:
    # In every CSPDarknet-53 the stage before a stage of width c is c / 2 wide (Wang et al. 2020,
    # 64, 128, …, 1024), and a stage's local `part` is c / 2 as well; its 3x3 stride-2 `conv_down`
    # reads the stage's input all the same (`dconv(c, 3, stride=2)` on `in`).
    names = ["darknet19", "darknet53", "cspdarknet53"]
    module = _module(generate_family([network("darknet.arch", name) for name in names]).text)
    arguments = {"in_channels": 96, "c": 256, "n": 2, "first": False, "slope": 0.1}
    stages = [cls for name, cls in vars(module).items()
              if name.startswith("CspStage") and {"in_channels", "c"} <= set(inspect.signature(cls).parameters)]
    assert stages, "no CSP stage class takes its widths"
    for cls in stages:
        stage = cls(**{p: arguments[p] for p in inspect.signature(cls).parameters})
        assert stage.conv_down.conv.weight.shape == (256, 96, 3, 3)
    # The first stage's parts are full width (timm's expand_ratio 2): its transition fuses twice c.
    (stage,) = stages  # the five stages, of 1, 2, 8, 8 and 4 units, are one class
    first = stage(**{**arguments, "c": 64, "in_channels": 32, "first": True})
    assert first.conv_transition.conv.weight.shape == (64, 128, 1, 1)
    with torch.no_grad():
        assert first.eval()(torch.randn(1, 32, 16, 16)).shape == (1, 64, 8, 8)


def test_a_number_every_instance_shares_is_the_parameter_the_call_writes() -> None:
    # Every ResNet-18 block with a downsampling path has stride 2, yet the path's 1x1 convolution
    # takes the block's stride, as torchvision's _make_layer builds it: conv1x1(inplanes, planes,
    # stride). A block widening at stride 1 (64 -> 128) then runs, as torchvision's does.
    tv = pytest.importorskip("torchvision.models.resnet")
    source = _source("resnet.arch", "resnet18")
    assert "stride=(2, 2)" not in source[source.index("class Basic("):source.index("class Resnet18(")]
    ours = _module(source).Basic(64, 128, 1).eval()
    downsample = torch.nn.Sequential(tv.conv1x1(64, 128, 1), torch.nn.BatchNorm2d(128))
    theirs = tv.BasicBlock(64, 128, 1, downsample=downsample).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 64, 14, 14)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_a_width_every_instance_shares_is_the_parameter_the_call_writes() -> None:
    # EfficientDet-D1's depthwise-separable blocks all end at 16 channels; the pointwise convolution
    # still makes the block's `c` (`conv(c, 1) as conv_pw`, timm's DepthwiseSeparableConv: out_chs).
    block = _module(_source("efficientdet.arch", "efficientdet_d1")).TfDsConv(32, 24, 1).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 32, 16, 16)).shape == (1, 24, 16, 16)
    # YOLOv4's one SPP neck (c = 512): the 1x1 after the pooling takes its four copies of c and makes c
    # (yolo.arch: `spatial_pyramid_pool as pool -> dconv(c, 1) as pool_conv`); a neck of c = 256 runs.
    source = _source("yolo.arch", "yolov4")
    assert "self.pool_conv = Dconv_2(4 * c, c, 1)" in source  # SPP: three pools and its input side by side
    neck = _module(source).DetectionConvs(512, 256, True).eval()
    with torch.no_grad():
        assert neck(torch.randn(1, 512, 13, 13)).shape == (1, 256, 13, 13)


def test_a_padding_that_changes_with_the_stride_is_not_the_stride() -> None:
    # TF "same" padding of a 3x3 depthwise convolution at stride 1 is 1, as large as the stride,
    # and changes with it; it is no stride (efficientdet.arch: `stride=stride, pad=same`).
    source = _source("efficientdet.arch", "efficientdet_d1")
    assert "padding=(stride, stride)" not in source and "padding=stride" not in source


CONV_BN = """
block cbr(c, bn=true) {
    in -> conv(c, 3, pad=1, bias=not bn) as conv -> if bn { bn as bn } -> relu
}
network net {
    input image: 3x16x16
    image -> cbr(8) as a -> cbr(8, bn=false) as b -> cbr(16) as c
}
"""


def test_a_flag_the_call_writes_negated_is_that_negation() -> None:
    # A convolution with batch norm after it has no bias (darknet's [convolutional]: `bias=not
    # batch_normalize`): the class takes the flag once, not a second flag that is always its negation.
    source = generate_source(api.load_string(CONV_BN, "t.arch").network())
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Cbr")
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert [a.arg for a in init.args.args[1:]] == ["in_channels", "c", "bn"], source
    assert "bias=not bn" in ast.get_source_segment(source, cls), source
    module = _module(source)
    without = module.Cbr(8, 4, False)
    assert without.conv.bias is not None and without.bn is None
    assert module.Cbr(8, 4, True).conv.bias is None


def test_a_negation_two_flags_give_alike_stays_a_parameter() -> None:
    # `bias=not bn` where `relu` is as true as `bn` in every instance: which one the spec negates
    # cannot be told from the numbers, so the class takes the bias as it is.
    spec = CONV_BN.replace("block cbr(c, bn=true)", "block cbr(c, bn=true, relu=true)").replace(
        "cbr(8, bn=false)", "cbr(8, bn=false, relu=false)")
    source = generate_source(api.load_string(spec, "t.arch").network())
    assert "bias=not" not in source, source


DIFFERENCE = """
block unit(c) { in -> conv(c - in.channels, 1) as conv }
block same_width(c) { in -> conv(c - 4, 1) as conv }
network net {
    input image: 4x8x8
    image -> unit(12) as a -> unit(20) as b -> unit(36) as c -> same_width(40) as d -> same_width(12) as e
}
"""


def test_a_width_the_instances_give_as_a_difference_is_that_difference() -> None:
    # megvii's ShuffleV1Block: `outputs = oup - inp` (the unit concatenates its pooled input).
    source = generate_source(api.load_string(DIFFERENCE, "t.arch").network())
    assert "self.conv = nn.Conv2d(in_channels, c - in_channels, kernel_size=1)" in source, source
    # Two instances whose numbers are no difference of two of theirs: an argument of its own.
    same_width = source[source.index("class SameWidth("):]
    assert " - " not in same_width[:same_width.index("def forward")], same_width

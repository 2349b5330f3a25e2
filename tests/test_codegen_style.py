"""Generated code as a PyTorch engineer would write it: one class per block, parameterized by the
block's parameters, no longer than the canonical model file it replaces.

The bar is torchvision's own model code, measured live in the installed package: the lines of its
model file before the first `…_Weights(WeightsEnum)` class, and the classes among them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_source

from .conftest import network

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def _model_code(module: str) -> tuple[int, int]:
    """(lines, classes) of a torchvision model file before its weights enums."""
    lines = (Path(torchvision.__file__).parent / "models" / f"{module}.py").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if re.match(r"class \w+_Weights\(WeightsEnum\)", line))
    return cut, sum(line.startswith("class ") for line in lines[:cut])


def _classes(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


@pytest.mark.parametrize(("file", "name", "module"), [
    ("resnet.arch", "resnet50", "resnet"),
    ("resnet.arch", "resnet18", "resnet"),
    ("inception_v3.arch", "inception_v3", "inception"),
    ("efficientnet.arch", "efficientnet_b0", "efficientnet"),
    ("efficientnet.arch", "efficientnet_b7", "efficientnet"),
    ("mobilenet_v2.arch", "mobilenet_v2", "mobilenetv2"),
    ("mobilenet_v3.arch", "mobilenet_v3_large", "mobilenetv3"),
    ("mobilenet_v3.arch", "mobilenet_v3_small", "mobilenetv3"),
])
def test_no_longer_than_torchvision(file: str, name: str, module: str) -> None:
    source = generate_source(network(file, name))
    lines, classes = _model_code(module)
    assert len(source.splitlines()) <= lines
    assert len(_classes(source)) <= classes + 1


def test_resnet50_bottleneck_is_one_parameterized_class() -> None:
    """torchvision builds every bottleneck with one `Bottleneck(inplanes, planes, stride, …)`; whether
    a block downsamples its shortcut, the class computes as the spec's `if` does."""
    source = generate_source(network("resnet.arch", "resnet50"))
    classes = _classes(source)
    assert sorted(classes) == ["Bottleneck", "Resnet50"]
    init = next(f for f in classes["Bottleneck"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert [a.arg for a in init.args.args] == ["self", "in_channels", "c", "stride"]
    # Table 1's stages: the first bottleneck of each downsamples (64 → 256 channels, then stride 2).
    assert "Bottleneck(64, 64)" in source and "Bottleneck(1024, 512, stride=2)" in source
    assert "        if stride != 1 or in_channels != c * 4:\n            self.downsample = nn.Sequential(" in source
    assert source.count("Bottleneck(") == 3 + 4 + 6 + 3 + 1  # one per block, and the class statement
    # Each stage is called once, as torchvision's `self.layer1(x)`.
    assert "self.layer1[0]" not in source and re.search(r"= self\.layer1\(\w+\)", source)


def _block_classes(source: str, block: str) -> list[ast.ClassDef]:
    """The classes generated for one block definition (their docstrings name it)."""
    return [c for c in _classes(source).values() if (ast.get_docstring(c) or "").startswith(f"Block {block},")]


def _init_args(cls: ast.ClassDef) -> list[str]:
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    return [a.arg for a in init.args.args]


@pytest.mark.parametrize(("file", "name", "block"), [
    *(("efficientnet.arch", f"efficientnet_b{k}", "mbconv") for k in (0, 7)),
    ("mobilenet_v2.arch", "mobilenet_v2", "inverted_residual"),
])
def test_inverted_residual_is_one_class(file: str, name: str, block: str) -> None:
    """torchvision's `MBConv` / `InvertedResidual`: one class, whether or not the block expands
    (stage 1's do not) and whether or not it adds its input (the first block of a stage does not),
    which the class computes from its arguments as the spec's `if`s do (as torchvision's
    `use_res_connect = stride == 1 and inp == oup`)."""
    source = generate_source(network(file, name))
    [cls] = _block_classes(source, block)
    assert _init_args(cls)[1:4] == ["in_channels", "c", "k" if block == "mbconv" else "stride"]
    text = ast.get_source_segment(source, cls) or ""
    # the expansion appended only where the spec's `if` builds it, as torchvision's `layers.append`
    expands = "if hidden != in_channels:" if block == "mbconv" else "if expand != 1:"
    assert "if self.residual:" in text and f"        {expands}\n            layers.append(ConvBnAct(" in text
    assert "        self.residual = stride == 1 and in_channels == c\n" in text
    # stage 1's first block neither expands nor adds; stage 2's second does both (torchvision's
    # names: EfficientNet's features.1.0, features.2.1; MobileNetV2's features.1, features.3).
    with torch.device("meta"):
        model = build_module(network(file, name))
    if block == "mbconv":
        first, second, third = model.features[1][0], model.features[2][0], model.features[2][1]
        layers = [len(m.block) for m in (first, second, third)]  # [expansion,] depthwise, SE, projection
        assert layers == [3, 4, 4]
    else:
        first, second, third = model.features[1], model.features[2], model.features[3]
        layers = [len(m.conv) for m in (first, second, third)]  # [expansion,] depthwise, conv, bn
        assert layers == [3, 4, 4]
    assert [m.residual for m in (first, second, third)] == [False, False, True]
    # conv_bn_act's depthwise and dense convs are one class too: `groups` is an argument.
    [conv_bn_act] = _block_classes(source, "conv_bn_act")
    assert "groups" in _init_args(conv_bn_act)
    # Its layers are named 0, 1, 2 and run in a chain: an nn.Sequential, as torchvision's
    # Conv2dNormActivation; EfficientNet's projection has no activation, appended under a flag.
    assert [ast.unparse(b) for b in conv_bn_act.bases] == ["nn.Sequential"]
    conv_text = ast.get_source_segment(source, conv_bn_act) or ""
    assert "def forward" not in conv_text and conv_text.rstrip().endswith("super().__init__(*layers)")
    assert ("        if activation:\n            layers.append(nn.SiLU(inplace=True))\n" in conv_text) == (
        block == "mbconv")


def test_float_constants_are_arguments() -> None:
    """Instances that differ in a float (batch norm eps, dropout p) share a class that takes it."""
    import archdsl

    source = generate_source(archdsl.load_string("""
block unit(c, eps=1e-5, p=0.1) {
    in -> conv(c, 3) -> bn(eps=eps) -> relu -> dropout(p)
}
network floats {
    input image: 3x8x8
    image -> unit(8) as a -> unit(8, eps=1e-3, p=0.5) as b -> output y
}""").network())
    [unit] = _block_classes(source, "unit")
    assert _init_args(unit) == ["self", "in_channels", "eps", "p"]
    assert "nn.BatchNorm2d(8, eps=eps)" in source and "nn.Dropout(p=p)" in source
    assert "self.a = Unit(3)" in source and "self.b = Unit(8, eps=0.001, p=0.5)" in source


def test_mobilenet_v3_bneck_is_one_class() -> None:
    """torchvision's `InvertedResidual` of MobileNetV3: one class whatever its expansion, squeeze-and-
    excite, shortcut and activation; the activation is a module class argument, as its
    `activation_layer`, None for the projection (a linear bottleneck), built in place after the batch
    norm as torchvision's `Conv2dNormActivation` builds it (`activation_layer(inplace=True)`)."""
    source = generate_source(network("mobilenet_v3.arch", "mobilenet_v3_large"))
    [bneck] = _block_classes(source, "bneck")
    [conv_bn] = _block_classes(source, "conv_bn")
    assert _init_args(conv_bn)[-3:] == ["activation", "stride", "groups"]  # the spec's defaults last
    assert "activation(inplace=True)" in (ast.get_source_segment(source, conv_bn) or "")
    assert "activation" in _init_args(bneck)
    assert "nn.Hardswish" in source and ", None)" in source


def test_a_class_computes_what_its_block_computes() -> None:
    """A block's local (`divisible`), a child's argument as its call writes it and an optional part's
    condition are computed in the constructor from the block's parameters, not passed in: the
    class takes the spec's parameters alone, and each instance builds what the spec builds."""
    import archdsl

    net = archdsl.load_string("""
block gate(squeeze) {
    s = in -> conv(squeeze, 1) as fc1 -> relu -> conv(in.channels, 1) as fc2 -> sigmoid
    in * s
}
block unit(c, expand) {
    hidden = divisible(in.channels * expand, 8)
    y = in -> if hidden != in.channels { conv(hidden, 1) as expand_conv } -> gate(max(1, in.channels // 4)) as se
           -> conv(c, 3) as conv
    if in.channels == c and not expand > 4 { y + in } else { y }
}
network toy {
    input image: 3x8x8
    image -> conv(16, 1) as stem -> unit(16, 1) as a -> unit(24, 6) as b -> unit(24, 4) as c -> unit(24, 6) as d
          -> output y
}""").network()
    source = generate_source(net)
    [unit] = _block_classes(source, "unit")
    assert _init_args(unit) == ["self", "in_channels", "c", "expand"]
    text = ast.get_source_segment(source, unit) or ""
    assert "        hidden = _make_divisible(in_channels * expand, 8)\n" in text
    assert "        if hidden != in_channels:\n" in text
    assert "        self.residual = in_channels == c and not expand > 4\n" in text
    assert "Gate(hidden, max(1, in_channels // 4))" in text  # gate's input is the expansion's output
    assert source.count("def _make_divisible(") == 1
    with torch.device("meta"):
        model = build_module(net)
    # a: 16 → 16 ×1 (no expansion, residual); b: 16 → 24 ×6; c: 24 → 24 ×4 (residual); d: ×6 (no residual)
    assert [m.expand_conv is None for m in (model.a, model.b, model.c, model.d)] == [True, False, False, False]
    assert [bool(m.residual) for m in (model.a, model.b, model.c, model.d)] == [True, False, True, False]
    assert (model.b.expand_conv.out_channels, model.b.se.fc1.out_channels) == (96, 4)  # divisible(16·6), 16 // 4


def test_a_parameter_named_layers_leaves_the_appended_list_alone() -> None:
    """A class builds its appended entries in a list `layers` (torchvision's `layers.append`); a block
    parameter of that name is an argument under another name, not the list overwritten."""
    import archdsl

    net = archdsl.load_string("""
block unit(c, layers=1e-5) {
    in -> conv(c, 3) as seq[] -> bn(eps=layers) as seq[]
}
network lists {
    input image: 3x8x8
    image -> unit(8) as a -> unit(8, layers=1e-3) as b -> output y
}""").network()
    source = generate_source(net)
    [unit] = _block_classes(source, "unit")
    assert "layers: list[nn.Module] = []" in (ast.get_source_segment(source, unit) or "")
    assert "layers" not in _init_args(unit)
    model = build_module(net)
    assert [m.eps for m in (model.a.seq[1], model.b.seq[1])] == [1e-5, 1e-3]


CELLS = """
block cell(c) inputs(a, b) outputs(u, v) {
    u = a -> conv(c, 3, pad=1) as conv_a
    v = (b -> conv(c, 3, pad=1) as conv_b) + u
}
network cells(layers=3) {
    input image: 4x8x8
    p = image -> conv(4, 1) as stem
    q = image -> conv(4, 1) as side
    repeat layers as i {
        p, q = p -> cell(q, c=4) as cells.{i}
    }
    output y = p + q
}
"""


def test_layers_of_several_outputs_run_in_a_loop() -> None:
    """effdet's BiFpn: `for cell in self.cells: …` where each layer takes the outputs of the one
    before, not one call per layer; the module computes what the unrolled layers compute."""
    import archdsl.api as api

    net = api.load_string(CELLS, "cells.arch").network()
    src = generate_source(net)
    assert "        for cells in self.cells:\n" in src and "self.cells[1]" not in src
    module = build_module(net).eval()
    image = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    p, q = module.stem(image), module.side(image)
    for layer in module.cells:  # by hand, each layer's two outputs into the next one's two inputs
        p = layer.conv_a(p)
        q = layer.conv_b(q) + p
    with torch.no_grad():
        torch.testing.assert_close(module(image), p + q)


OUTPUTS = """
block body() outputs(c3, c4) {
    c3 = in -> conv(4, 3, stride=2, pad=1) as stem -> relu
    c4 = c3 -> conv(8, 3, stride=2, pad=1) as down
}
block head() inputs(a, b) outputs(c3, c4) {
    c3 = a -> conv(2, 1) as one
    c4 = b -> conv(2, 1) as two
}
network tapped {
    input image: 3x16x16
    feats = image -> body as backbone
    preds = feats.c3 -> head(feats.c4) as head
    output y = preds.c3
    output z = preds.c4
}
"""


def test_outputs_are_named_as_the_block_declares_them() -> None:
    """A call of a block with declared outputs names what it returns as the spec does (`c3, c4 =
    self.backbone(image)`, torchvision's and effdet's feature names), under the call's name where the
    caller holds that name already (`head_c3`), never after the layer that happened to compute it;
    the block's own forward names them so too, and gives no other value their names."""
    import archdsl.api as api

    src = generate_source(api.load_string(OUTPUTS, "tapped.arch").network())
    assert "        c3 = self.relu(x)\n        c4 = self.down(c3)\n        return c3, c4\n" in src
    assert "        c3, c4 = self.backbone(image)\n" in src
    assert "        head_c3, head_c4 = self.head(c3, c4)\n" in src
    assert "relu" not in src.split("def forward(self, image")[1]


TAPPED_STAGES = """
block trunk() outputs(c3, c4) {
    c3 = in -> conv(4, 3, stride=2, pad=1) as 0 -> conv(4, 3, pad=1) as 1
    c4 = c3 -> conv(8, 3, stride=2, pad=1) as 2
}
network tapped {
    input image: 3x16x16
    feats = image -> trunk as stages
    output y = feats.c3
    output z = feats.c4
}
"""


def test_numbered_layers_tapped_midway_are_an_indexed_sequential() -> None:
    """A block whose layers are named 0, 1, 2 … but whose forward returns more than the last one's
    output (YOLOv4's backbone stages, as timm numbers them) is an nn.Sequential with a forward of its
    own that reads `self[0]`, not `getattr(self, "0")`; it computes what its layers compute."""
    import archdsl.api as api

    net = api.load_string(TAPPED_STAGES, "tapped.arch").network()
    src = generate_source(net)
    assert "class Trunk(nn.Sequential):" in src and "self[2](" in src and "getattr(self" not in src
    module = build_module(net).eval()
    image = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        c3 = module.stages[1](module.stages[0](image))
        out = module(image)
        torch.testing.assert_close(out["y"], c3)
        torch.testing.assert_close(out["z"], module.stages[2](c3))


NECK = """
block convs(c) { in -> conv(c, 3) as conv -> relu }
network neck {
    input image: 3x32x32
    c4 = image -> conv(8, 3, stride=2) as stem
    c5 = c4 -> conv(16, 3, stride=2) as down
    p5 = c5 -> convs(16) as neck5
    p4 = concat(p5 -> upsample(2), c4) -> convs(8) as neck4
    output fine = p4 -> conv(4, 1) as head4
    output coarse = p5 -> conv(4, 1) as head5
}
"""


def test_network_values_are_named_as_the_spec_names_them() -> None:
    """The network's forward names a value after the spec's variable that holds it (`p5 =
    self.neck5(c5)`, YOLOv3's and FPN's names), and its outputs after the outputs, rather than
    pass one name down a chain of different values (`c5 = self.neck5(c5)`)."""
    import archdsl.api as api

    src = generate_source(api.load_string(NECK, "neck.arch").network())
    forward = src.split("def forward(self, image")[1]
    for line in ("c4 = self.stem(image)", "c5 = self.down(c4)", "p5 = self.neck5(c5)", "p4 = self.neck4(",
                 "fine = self.head4(p4)", "coarse = self.head5(p5)", 'return {"fine": fine, "coarse": coarse}'):
        assert line in forward, (line, forward)


def test_a_size_given_twice_as_one_expression_is_written_once() -> None:
    # torchvision's own layers: `nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, ...)`; a pair
    # of two numbers or expressions that differ stays a pair.
    spec = """
block unit(c, k, stride=1) { in -> conv(c, k, stride=stride) as conv -> maxpool(k, stride=stride) as pool }
network net {
    input image: 3x64x64
    image -> unit(8, 3) as a -> unit(16, 5, stride=2) as b -> conv(8, [1, 3]) as c
}
"""
    source = generate_source(api.load_string(spec, "t.arch").network())
    assert "nn.Conv2d(in_channels, c, kernel_size=k, stride=stride, padding=padding)" in source, source
    assert "nn.MaxPool2d(kernel_size=k, stride=stride)" in source, source
    assert "nn.Conv2d(16, 8, kernel_size=(1, 3), padding=(0, 1))" in source, source
    # The padding is as large as the stride in both units (1 and 2), but follows the kernel: a unit
    # with a 3x3 kernel at stride 2 pads by 1, as the spec's conv(c, 3, stride=2) does.
    assert "padding = (k - 1) // 2" in source, source
    namespace: dict[str, object] = {}
    exec(compile(source, "generated.py", "exec"), namespace)
    unit = namespace["Unit"](3, 8, 3, 2)  # type: ignore[operator]
    assert unit.conv.padding == (1, 1)


def test_torch_layers_are_written_as_torchvision_writes_them() -> None:
    """torchvision/models/resnet.py: `nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3,
    bias=False)`, `nn.MaxPool2d(kernel_size=3, stride=2, padding=1)`, and conv1x1's `nn.Conv2d(in_planes,
    out_planes, kernel_size=1, stride=stride, bias=False)`: a size of two equal numbers as one, a stride
    of 1 and a padding of 0 (Conv2d's defaults) left out."""
    source = generate_source(api.find("resnet50")[0].network("resnet50"))
    assert "self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)" in source
    assert "self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)" in source
    assert "nn.Conv2d(in_channels, c * 4, kernel_size=1, stride=stride, bias=False)" in source
    assert "nn.Conv2d(in_channels, c, kernel_size=1, bias=False)" in source
    assert not re.search(r"(kernel_size|stride|padding)=\((\d+), \2\)", source), source

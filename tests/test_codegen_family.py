"""`archdsl compile FILE` without --net: one module for the networks of a file, as torchvision's
model files are written — the block classes once, a class per family of networks, one function per
network (`resnet.resnet50()`).

Each function's module is compared with the canonical one where torchvision has the network (the
same state_dict names and shapes for ResNet; the same tensor shapes otherwise),
and with the module `--net` compiles for the others; a few are run after loading the canonical
model's random weights. The bar for length is torchvision's own model code, measured live.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from archdsl.compiler.backends.torch_codegen import build_module, generate_family

from .conftest import SPECS, network, zoo

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")

# The bare calls warn that inception_v3's default initialisation will change.
pytestmark = pytest.mark.filterwarnings("ignore:The default weight initialization:FutureWarning")

FILES = ["resnet.arch", "efficientnet.arch", "mobilenet_v1.arch", "mobilenet_v2.arch", "inception_v3.arch"]
# The files whose networks name every layer as torchvision does (its state_dict loads by name).
BY_NAME = ("resnet.arch", "efficientnet.arch", "mobilenet_v2.arch")


def _module(file: str, tmp_path: Path) -> tuple[ModuleType, str]:
    """The family module of a zoo file, written and imported as a user would."""
    names = [name for f, name in zoo() if f == file]
    source = generate_family([network(file, name) for name in names]).text
    return imported(source, tmp_path / file.replace(".arch", ".py"), "family"), source


def imported(source: str, path: Path, prefix: str) -> ModuleType:
    """`source` written to `path` and imported from there, as a user would, as module PREFIX_STEM."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"{prefix}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _shapes(model: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("file", FILES)
def test_every_network_has_a_function_building_it(file: str, tmp_path: Path) -> None:
    module, source = _module(file, tmp_path)
    for f, name in zoo():
        if f != file:
            continue
        with torch.device("meta"):
            ours = getattr(module, name)()
            alone = build_module(network(file, name))  # what `--net NAME` compiles
        assert ours.state_dict().keys() == alone.state_dict().keys(), name
        assert _shapes(ours) == _shapes(alone), name
        if name in tvm.list_models():
            with torch.device("meta"):
                canonical = tvm.get_model(name, weights=None)
            if file in BY_NAME:  # the spec mirrors torchvision's names and order
                assert ours.state_dict().keys() == canonical.state_dict().keys(), name
                assert _shapes(ours) == _shapes(canonical), name
            assert sorted(_shapes(ours)) == sorted(_shapes(canonical)), name  # inception: AuxLogits elsewhere
    assert re.search(r"^def \w+\(\*\*kwargs: Any\) -> \w+:$", source, re.M)


def _random(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights and batch norm statistics (what eval-mode parity must carry over)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, (p[0].numel() if p.dim() > 1 else p.numel()) ** -0.5, generator=g)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


@pytest.mark.parametrize(("file", "name", "size"), [
    ("resnet.arch", "resnet50", 224),
    ("resnet.arch", "resnext50_32x4d", 224),
    ("efficientnet.arch", "efficientnet_b0", 224),
    ("mobilenet_v2.arch", "mobilenet_v2", 224),
])
def test_loads_the_canonical_weights_and_matches(file: str, name: str, size: int, tmp_path: Path) -> None:
    """torchvision's state_dict loads by name with strict=True (EfficientNet's and MobileNetV2's specs
    append their layers to `features`, `block` and `conv` as torchvision does); outputs agree to 1e-5."""
    module, _ = _module(file, tmp_path)
    canonical = _random(tvm.get_model(name, weights=None))
    ours = getattr(module, name)().eval()
    ours.load_state_dict(canonical.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), canonical(x), atol=1e-5, rtol=0)


def _model_code(module: str) -> tuple[int, int]:
    """(lines, classes) of a torchvision model file before its weights enums."""
    import torchvision

    lines = (Path(torchvision.__file__).parent / "models" / f"{module}.py").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if re.match(r"class \w+_Weights\(WeightsEnum\)", line))
    return cut, sum(line.startswith("class ") for line in lines[:cut])


# Networks of one file share a class where the file's parameters give every size in which they
# differ (EfficientNet's class computes its stage table's widths and depths from them, as its spec
# does).


@pytest.mark.parametrize(("file", "module"), [
    ("resnet.arch", "resnet"),
    ("efficientnet.arch", "efficientnet"),
    ("mobilenet_v2.arch", "mobilenetv2"),
    ("inception_v3.arch", "inception"),
])
def test_family_module_no_longer_than_torchvision(file: str, module: str, tmp_path: Path) -> None:
    _, source = _module(file, tmp_path)
    lines, classes = _model_code(module)
    assert len(source.splitlines()) <= lines
    assert sum(line.startswith("class ") for line in source.splitlines()) <= classes + 1


def test_inception_v3_is_one_class_per_module_type_and_one_family_class(tmp_path: Path) -> None:
    """As torchvision's inception.py: BasicConv2d, InceptionA-E and InceptionAux, and one Inception3
    for both networks, whose `aux_logits` is our network parameter `aux`, a constructor flag: the
    auxiliary head is built and run only where it is set (inception_v3_noaux: `aux=False`)."""
    module, source = _module("inception_v3.arch", tmp_path)
    assert re.findall(r"^class (\w+)\(", source, re.M) == [
        "BasicConv", *(f"Inception{t}" for t in ("A", "B", "C", "D", "E", "Aux")), "InceptionV3"]
    assert "def inception_v3(**kwargs: Any) -> InceptionV3:\n    return InceptionV3(**kwargs)" in source
    assert "    return InceptionV3(aux=False, **kwargs)" in source  # inception_v3_noaux
    assert "classes: int = 1000, aux: bool = True, dropout: float = 0.5" in source
    with torch.device("meta"):  # the flag and the classes reach the auxiliary head, as num_classes does
        for aux in (True, False):
            ours, canonical = module.inception_v3(classes=10, aux=aux), tvm.inception_v3(num_classes=10, aux_logits=aux)
            assert ours.state_dict().keys() == canonical.state_dict().keys()
            assert sorted(_shapes(ours)) == sorted(_shapes(canonical))


def test_inception_v3_loads_torchvision_by_name_and_matches(tmp_path: Path) -> None:
    """Both networks load torchvision's random state_dict by name with strict=True (inception_v3_noaux:
    all but AuxLogits, as torchvision's aux_logits=False has it). Eval-mode outputs agree to 1e-5:
    the logits, and with the auxiliary head (which our network runs in eval mode too, torchvision in
    training mode only) its logits, against torchvision's AuxLogits applied to Mixed_6e's output."""
    module, _ = _module("inception_v3.arch", tmp_path)
    with torch.device("meta"):  # every weight is overwritten: no initialization to pay for
        canonical = tvm.inception_v3(weights=None, aux_logits=True, init_weights=False)
    canonical = _random(canonical.to_empty(device="cpu"))
    grid: list[torch.Tensor] = []
    canonical.Mixed_6e.register_forward_hook(lambda _m, _i, out: grid.append(out))
    x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = canonical(x)
        want_aux = canonical.AuxLogits(grid[0])
    for name, aux in (("inception_v3", True), ("inception_v3_noaux", False)):
        with torch.device("meta"):
            ours = getattr(module, name)()
        ours = ours.to_empty(device="cpu").eval()
        ours.load_state_dict({k: v for k, v in canonical.state_dict().items()
                              if aux or not k.startswith("AuxLogits.")}, strict=True)
        with torch.no_grad():
            got = ours(x)
        if aux:
            assert torch.allclose(got["logits"], want, atol=1e-5, rtol=0)
            assert torch.allclose(got["aux_logits"], want_aux, atol=1e-5, rtol=0)
        else:
            assert torch.allclose(got, want, atol=1e-5, rtol=0)


SIDE_OUTPUTS = """
# Side outputs (a test)
block head(classes) {
    in -> avgpool(global) -> flatten -> linear(classes) as fc
}
network net(classes=10, aux=false) {
    input image: 3x16x16
    x = image -> conv(8, 3, pad=1) as conv1 -> relu
    if aux {
        output side = x -> head(classes) as side_head
    }
    y = x -> conv(16, 3, stride=2) as conv2 -> relu
    y -> head(classes) as main_head -> output logits
    if aux {
        output side2 = y -> conv(4, 1) as side_conv
    }
}
network net_aux = net(aux=true)
"""


def test_outputs_under_a_flag_wherever_the_forward_computes_them() -> None:
    """The rule is general: outputs a network has only under a boolean parameter, computed between
    other lines or at the end, make the parameter a flag of the family class. Each function's module
    computes what `--net` compiles, with the weights loaded by name."""
    import archdsl

    file = archdsl.load_string(SIDE_OUTPUTS)
    source = generate_family([file.network(n) for n in ("net", "net_aux")]).text
    assert re.findall(r"^class (\w+)\(", source, re.M) == ["Head", "Net"]
    assert "        if self.aux:\n            side = self.side_head(" in source
    assert "        if not self.aux:\n            return logits\n        image = self.side_conv(" in source
    namespace: dict[str, object] = {}
    exec(compile(source, "<family>", "exec"), namespace)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for name in ("net", "net_aux"):
        alone = build_module(file.network(name)).eval()
        ours = namespace[name]().eval()  # type: ignore[operator]
        ours.load_state_dict(alone.state_dict(), strict=True)
        want, got = alone(x), ours(x)
        if name == "net":
            assert torch.equal(got, want)
        else:
            assert list(got) == ["side", "logits", "side2"] and all(torch.equal(got[k], want[k]) for k in want)


def test_resnet_family_stages_are_loops_over_layers(tmp_path: Path) -> None:
    """ResNet-50/101/152 and ResNeXt are one class, as torchvision's `ResNet(Bottleneck, layers,
    groups, width_per_group)`: each stage a loop bounded by `layers[k]`, the bottleneck computing its
    width from its parameters as the spec does, and the functions pass Table 1's depths."""
    module, source = _module("resnet.arch", tmp_path)
    assert source.count("class Bottleneck(") == 1
    assert "        width = int(c * (base_width / 64)) * groups\n" in source
    assert ("return ResNet50(layers=[3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)"
            in source)  # resnext101_32x8d
    assert "for _ in range(1, layers[2])" in source
    # torchvision's initialization, as the spec's init statements declare it, in each family class
    assert source.count('nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")') == 2
    with torch.device("meta"):
        assert {type(getattr(module, n)()).__name__ for n in ("resnet101", "resnet50_v1", "resnext101_64x4d")} == {
            "ResNet50"}


def test_a_lone_module_is_no_loop(tmp_path: Path) -> None:
    """A run of one module becomes a loop only after a module of its own class (a stage whose
    length differs between networks); a classifier's `Linear, Hardswish, Dropout, Linear` is written
    as torchvision writes it, not as four one-step loops."""
    _, source = _module("mobilenet_v3.arch", tmp_path)
    assert "            nn.Hardswish(inplace=True),\n            nn.Dropout(p=dropout),\n" in source
    assert "nn.Dropout(p=dropout) for _ in range" not in source


def test_cli_writes_one_module_for_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archdsl.cli import main

    spec = Path(__file__).parent.parent / "specs" / "resnet.arch"
    out = tmp_path / "resnet.py"
    assert main(["compile", str(spec), "-o", str(out)]) == 0
    assert "def resnet50(**kwargs: Any)" in out.read_text() and "a function per network" in capsys.readouterr().out
    assert main(["compile", str(spec), "--set", "classes=10", "-o", str(out)]) == 1
    assert "name the network with --net" in capsys.readouterr().err


def test_a_file_of_one_network_compiles_to_its_module_too(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`archdsl compile specs/mobilenet_v2.arch` writes what torchvision's mobilenetv2.py holds: the
    class spelled as the title spells it and `def mobilenet_v2(**kwargs)`; a parameter the spec
    defaults is a keyword (`alexnet(classes=10)`, torchvision's `alexnet(num_classes=10)`). With
    --set the one network is compiled as set."""
    from archdsl.cli import main

    specs = Path(__file__).parent.parent / "specs"
    out = tmp_path / "mobilenet_v2.py"
    assert main(["compile", str(specs / "mobilenet_v2.arch"), "-o", str(out)]) == 0
    assert "class MobileNetV2 (a function per network)" in capsys.readouterr().out
    assert "\ndef mobilenet_v2(**kwargs: Any) -> MobileNetV2:\n" in out.read_text()
    alexnet = tmp_path / "alexnet.py"
    assert main(["compile", str(specs / "alexnet.arch"), "-o", str(alexnet)]) == 0
    spec = importlib.util.spec_from_file_location("alexnet_module", alexnet)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.device("meta"):
        assert module.alexnet(classes=10).classifier[-1].out_features == 10
    assert main(["compile", str(specs / "alexnet.arch"), "--set", "classes=10", "-o", str(alexnet)]) == 0
    assert "class Alexnet (network alexnet)" in capsys.readouterr().out


@pytest.mark.parametrize(("family", "title", "expected"), [
    ("resnet", "# ResNet (He et al. 2016, ...)", "ResNet"),  # torchvision's class: ResNet
    ("mobilenet_v2", "# MobileNetV2 (Sandler et al. 2018, ...)", "MobileNetV2"),  # torchvision: MobileNetV2
    ("efficientnet", "# EfficientNet B0-B7 (Tan & Le 2019, ...)", "EfficientNet"),  # torchvision: EfficientNet
    ("vgg", "# VGG (Simonyan & Zisserman 2015, ...)", "VGG"),  # torchvision: VGG
    ("inception_v3", "# Inception-v3 (Szegedy et al. 2016, ...)", "InceptionV3"),  # no word matches: camel
    ("resnet", "# resnet's fork()", "Resnet"),  # the spelling taken from the title is the family's own
    ("resnet", "# ResNet_v1.5", "ResNet"),  # a word is letters and digits: no `_` or `.` from the title
    ("v2", "# 2v v2", "V2"),  # ... and starts with a letter
])
def test_family_class_spelled_as_the_title_spells_it(family: str, title: str, expected: str) -> None:
    from archdsl.compiler.backends.python_source import family_class_name

    assert family_class_name(family, title) == expected


def test_parameters_every_network_sets_alike_are_keyword_arguments(tmp_path: Path) -> None:
    """`classes` and `zero_init_residual`, which every ResNet of the file leaves at the spec's default,
    are keyword arguments of the family classes, as torchvision's `resnet50(num_classes=10)` and
    `zero_init_residual=True` (torchvision resnet.py, ResNet.__init__: the last BN of each residual
    branch, bn3 in a bottleneck and bn2 in a basic block, starts at zero)."""
    module, source = _module("resnet.arch", tmp_path)
    assert "classes: int = 1000, zero_init_residual: bool = False" in source
    # the spec's defaults (groups=1, width_per_group=64, stride_1x1=false) are the class's, too
    assert "        groups: int = 1,\n        width_per_group: int = 64,\n" in source
    assert "return ResNet50(layers=[3, 4, 6, 3], stride_1x1=True, **kwargs)" in source  # resnet50_v1
    with torch.device("meta"):
        for name in ("resnet18", "resnet50", "resnext101_32x8d"):
            ours, canonical = getattr(module, name)(classes=10), tvm.get_model(name, weights=None, num_classes=10)
            assert _shapes(ours) == _shapes(canonical), name
            assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in canonical.parameters())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert module.resnet50(classes=10).eval()(x).shape == (2, 10)
    for name, last in (("resnet50", "bn3"), ("resnet18", "bn2")):
        torch.manual_seed(0)
        ours, canonical = getattr(module, name)(zero_init_residual=True), tvm.get_model(name, zero_init_residual=True)
        for (k, a), (j, b) in zip(ours.state_dict().items(), canonical.state_dict().items(), strict=True):
            assert k == j
            if k.endswith(f"{last}.weight"):
                assert not a.any() and not b.any(), k
        default = getattr(module, name)()
        assert all(v.all() for k, v in default.state_dict().items() if k.endswith(f"{last}.weight"))


def test_efficientnet_family_computes_its_stage_table(tmp_path: Path) -> None:
    """B0–B7 are one `EfficientNet(width, depth, dropout, …)` that computes its stage table's widths
    and depths as the spec (and torchvision's adjust_channels/adjust_depth) does: one MBConv class,
    each function passing its coefficients. B3 loads torchvision's random weights and BN statistics by
    name (strict=True) and agrees to 1e-5; B0 and B7 have torchvision's names and parameter counts."""
    module, source = _module("efficientnet.arch", tmp_path)
    assert source.count("class Mbconv(") == 1 and source.count("class EfficientNet(") == 1
    assert "for i in range(math.ceil(n * depth)):" in source and "_make_divisible(c * width, 8)" in source
    assert source.count("def _make_divisible(") == 1
    # torchvision efficientnet.py: efficientnet_b5 is (width 1.6, depth 2.2, dropout 0.4), BN eps 1e-3, momentum 0.01
    assert ("return EfficientNet(width=1.6, depth=2.2, dropout=0.4, bn_eps=0.001, bn_momentum=0.01, **kwargs)"
            in source)
    with torch.device("meta"):
        for name in ("efficientnet_b0", "efficientnet_b7"):
            ours, canonical = getattr(module, name)(), tvm.get_model(name, weights=None)
            assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in canonical.parameters())
            assert _shapes(ours) == _shapes(canonical), name
            assert ours.state_dict().keys() == canonical.state_dict().keys(), name
    canonical = _random(tvm.get_model("efficientnet_b3", weights=None))
    ours = module.efficientnet_b3().eval()
    ours.load_state_dict(canonical.state_dict(), strict=True)
    x = torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), canonical(x), atol=1e-5, rtol=0)


def test_width_multiplier_family_is_one_class(tmp_path: Path) -> None:
    """MobileNetV1's nine networks (width 0.25–1.25, inputs 128–224) are one class: the spec computes
    every width from `width` (`divisible(c * width, 8)`), and so does the class, its stem a layer
    whose channels start the running count."""
    module, source = _module("mobilenet_v1.arch", tmp_path)
    assert re.findall(r"^class (\w+)\(nn\.Module\)", source, re.M) == ["DepthwiseSeparable", "MobilenetV1"]
    assert "        channels = _make_divisible(32 * width, 8)\n" in source
    assert "return MobilenetV1(width=0.5, **kwargs)" in source and "return MobilenetV1(**kwargs)" in source
    with torch.device("meta"):
        assert module.mobilenet_v1_050(classes=10).classifier.out_features == 10


@pytest.mark.parametrize("file", ["mobilenet_v1.arch", "efficientnet.arch"])
def test_family_does_not_depend_on_how_often_the_file_was_loaded(file: str) -> None:
    """A family's networks elaborated from separate loads of their file (separate syntax trees, as
    after the parse cache dropped the file) make the same module as networks from one load."""
    import archdsl.api as api
    from archdsl.parser import _DECODED

    once = api.load(SPECS / file)
    names = list(once.networks)
    expected = generate_family([once.network(n) for n in names]).text
    networks = []
    for n in names:
        _DECODED.clear()  # each load unpickles its own syntax tree
        networks.append(api.load(SPECS / file).network(n))
    assert generate_family(networks).text == expected

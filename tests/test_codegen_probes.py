"""Constructor keywords of a file's module, found by probing: a network elaborated again with its
common numbers changed shows which constants they give (TorchCodegen._probe). Where changing them
all at once fails, each is probed alone and the ones that work are lifted; the others stay fixed,
with a comment in the module saying why. A stage-table network of one file (mobilenet_v2) is
written from its spec, so `width` is an argument too, as torchvision's `width_mult`.

Every figure compared here is measured live on the installed torchvision, or on the network the
spec elaborates with the keyword's value (what `archdsl compile --net NAME --set p=v` builds).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_family

from .conftest import network, zoo
from .test_codegen_every_file import FILES
from .test_codegen_every_file import _module as _file_module
from .test_codegen_family import _module, _random, _shapes

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mobilenet_v2_keywords_match_torchvision(tmp_path: Path) -> None:
    """The spec's parameters width, classes and dropout are keywords (`resolution` only fixes the
    input size, which the module does not depend on). `width=w` is torchvision's `width_mult=w`:
    the same parameter count and state_dict shapes (in order: the spec keeps torchvision's
    registration order); at width 0.5 the module loads torchvision's random weights and BN
    statistics by name (strict=True: the spec keeps torchvision's names) and agrees to 1e-5.
    classes and dropout build torchvision's `num_classes` and `dropout`."""
    module, source = _module("mobilenet_v2.arch", tmp_path)
    assert list(inspect.signature(module.MobileNetV2).parameters) == ["width", "classes", "dropout"]
    assert "stays" not in source  # nothing left fixed
    for width in (0.5, 0.75, 1.4):
        with torch.device("meta"):
            ours, canonical = module.mobilenet_v2(width=width), tvm.mobilenet_v2(width_mult=width)
        assert _count(ours) == _count(canonical), width
        assert _shapes(ours) == _shapes(canonical), width
    canonical = _random(tvm.mobilenet_v2(width_mult=0.5))
    ours = module.mobilenet_v2(width=0.5).eval()
    ours.load_state_dict(canonical.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), canonical(x), atol=1e-5, rtol=0)
    with torch.device("meta"):
        ours = module.mobilenet_v2(classes=10, dropout=0.5)
        canonical = tvm.mobilenet_v2(num_classes=10, dropout=0.5)
    assert _count(ours) == _count(canonical) and _shapes(ours) == _shapes(canonical)
    drops = [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [m.p for m in canonical.modules() if isinstance(m, torch.nn.Dropout)] == [0.5]


@pytest.mark.slow  # the default run has the toy below for the fallback
def test_mobilenet_v3_lifts_classes_and_dropout_alone(tmp_path: Path) -> None:
    """mobilenet_v3's all-at-once probe fails on `width`; probed alone, `classes` and `dropout` are
    keywords (torchvision's `num_classes` and `dropout`), and the module says width stays fixed."""
    module, source = _module("mobilenet_v3.arch", tmp_path)
    assert "# width stays 1.0, not an argument: " in source
    for name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        with torch.device("meta"):
            ours = getattr(module, name)(classes=10, dropout=0.5)
            canonical = tvm.get_model(name, weights=None, num_classes=10, dropout=0.5)
        assert _count(ours) == _count(canonical) and sorted(_shapes(ours)) == sorted(_shapes(canonical)), name
        drops = [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)]
        assert drops == [m.p for m in canonical.modules() if isinstance(m, torch.nn.Dropout)] == [0.5], name


TOY = """\
block unit(c) {
    in -> conv(c, 3, pad=1) -> relu
}

network toy(depth=2, classes=10) {
    input image: [3, 32, 32]
    image
      -> repeat depth: unit(16)
      -> avgpool(global) -> flatten -> linear(classes) as classifier
      -> output logits
}
"""


def test_a_number_that_changes_the_layers_stays_fixed_alone() -> None:
    """`depth` changes how many blocks there are, so changing both numbers at once fails; `classes`
    probed alone is a keyword, `depth` stays fixed and the module says so, byte-identical from run
    to run."""
    spec = api.load_string(TOY, "toy.arch")
    source = generate_family([spec.network("toy")]).text
    assert generate_family([api.load_string(TOY, "toy.arch").network("toy")]).text == source
    assert "# depth stays 2, not an argument: it changes how many blocks there are.\nclass Toy(" in source
    assert "    def __init__(self, classes: int = 10) -> None:\n" in source
    module = ModuleType("toy")
    exec(compile(source, "<toy>", "exec"), module.__dict__)
    variant = spec.network("toy").variant({"classes": 5})
    assert variant is not None
    ours, alone = module.toy(classes=5), build_module(variant)
    assert _shapes(ours) == _shapes(alone) and ours.classifier.out_features == 5


def _other_values(value: int | float) -> list[int | float]:
    """Values a keyword is tried at: an integer halved and raised, a rate or multiplier halved and
    moved up (within what a spec's checks accept for the zoo's parameters)."""
    if type(value) is int:
        return [value // 2 if value >= 4 else value + 1, value + 3]
    return [value / 2, round(value * 0.75 + 0.01, 3)]


@pytest.mark.parametrize("file", FILES)
def test_every_keyword_builds_what_the_spec_builds(file: str) -> None:
    """Each number a file's network class takes with a default (a common parameter lifted by a
    probe), set to other values, builds what the spec elaborates with those values (`--net NAME
    --set p=v`): the same state_dict names and shapes and the same layers."""
    module = _file_module(file)

    def layers(m: torch.nn.Module) -> list[tuple[str, str]]:
        return [(type(x).__name__, x.extra_repr()) for x in m.modules() if not list(x.children())]

    for name in [n for f, n in zoo() if f == file]:
        net = network(file, name)
        function = getattr(module, name)
        returns = inspect.signature(function).return_annotation  # its class (a string: the module's annotations)
        params = inspect.signature(getattr(module, returns) if isinstance(returns, str) else returns).parameters
        for p, value in net.parameters.items():
            # a keyword the function leaves to the class's default (others it passes itself)
            if p not in params or type(value) not in (int, float) or params[p].default != value:
                continue
            for other in _other_values(value):
                variant = net.variant({p: other})
                if variant is None:  # the spec refuses the value
                    continue
                with torch.device("meta"):
                    ours, alone = function(**{p: other}), build_module(variant)
                assert list(ours.state_dict()) == list(alone.state_dict()), (name, p, other)
                assert _shapes(ours) == _shapes(alone), (name, p, other)
                assert layers(ours) == layers(alone), (name, p, other)

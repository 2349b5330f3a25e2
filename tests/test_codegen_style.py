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

from archdsl.compiler.backends.torch_codegen import generate_source

from .conftest import network

torchvision = pytest.importorskip("torchvision")


def _model_code(module: str) -> tuple[int, int]:
    """(lines, classes) of a torchvision model file before its weights enums."""
    lines = (Path(torchvision.__file__).parent / "models" / f"{module}.py").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if re.match(r"class \w+_Weights\(WeightsEnum\)", line))
    return cut, sum(line.startswith("class ") for line in lines[:cut])


def _classes(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


# Networks whose generated file already meets the bar (efficientnet and mobilenet_v2 still split
# their block into a class per residual/expansion variant).
@pytest.mark.parametrize(("file", "name", "module"), [
    ("resnet.arch", "resnet50", "resnet"),
    ("resnet.arch", "resnet18", "resnet"),
    ("inception_v3.arch", "inception_v3", "inception"),
])
def test_no_longer_than_torchvision(file: str, name: str, module: str) -> None:
    source = generate_source(network(file, name))
    lines, classes = _model_code(module)
    assert len(source.splitlines()) <= lines
    assert len(_classes(source)) <= classes + 1


def test_resnet50_bottleneck_is_one_parameterized_class() -> None:
    """torchvision builds every bottleneck with one `Bottleneck(inplanes, planes, stride, downsample)`."""
    source = generate_source(network("resnet.arch", "resnet50"))
    classes = _classes(source)
    assert sorted(classes) == ["Bottleneck", "Resnet50"]
    init = next(f for f in classes["Bottleneck"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert [a.arg for a in init.args.args] == ["self", "in_channels", "c", "stride", "downsample"]
    # Table 1's stages: the first bottleneck of each downsamples (64 → 256 channels, then stride 2).
    assert "Bottleneck(64, 64, 1, True)" in source and "Bottleneck(1024, 512, 2, True)" in source
    assert source.count("Bottleneck(") == 3 + 4 + 6 + 3 + 1  # one per block, and the class statement
    # Each stage is called once, as torchvision's `self.layer1(x)`.
    assert "self.layer1[0]" not in source and re.search(r"= self\.layer1\(\w+\)", source)

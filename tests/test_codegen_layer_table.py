"""A stage table whose rows append bare layers to one list (`conv(c, 3, pad=1) as features[]`, under
a `repeat` and an `if`) is, in a file's family module, a loop over the table's rows as torchvision's
VGG `make_layers(cfg, batch_norm)` writes it: one class for every network of the family, each
network's state_dict and outputs those of the module compiled for that network alone."""

from __future__ import annotations

import re
from collections.abc import Container
from pathlib import Path
from types import ModuleType

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_family

from .conftest import SPECS
from .test_codegen_family import _random, imported

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")

_TOY = """
network toy(depths, norm=false, classes=10) {
    input image: 3x32x32
    image
      -> stages(c, n) {
             8, depths[0]
            16, depths[1]
         } {
             repeat n { conv(c, 3, pad=1) as body[] -> if norm { bn as body[] } -> relu as body[] }
               -> maxpool(2) as body[]
         }
      -> adaptive_avgpool(1x1) -> flatten -> linear(classes) as head
      -> output logits
}
network toy_a = toy(depths=[1, 2])
network toy_b = toy(depths=[3, 1], norm=true)
network toy_c = toy(depths=[2, 2], norm=true, classes=5)
"""


def _family(spec: api.Spec, tmp_path: Path, stem: str) -> tuple[ModuleType, str]:
    """The family module of every network of `spec`, written and imported as a user would."""
    source = generate_family([spec.network(name) for name in spec.networks]).text
    return imported(source, tmp_path / f"{stem}.py", "layer_table"), source


def _same_as_alone(module: ModuleType, spec: api.Spec, size: int, run: Container[str] | None = None) -> None:
    """Each network's function builds the module compiled for that network alone: same state_dict
    names and shapes, same outputs with the one's random weights loaded into the other (for the
    networks `run`, all by default; the others are built on the meta device, their weights unset)."""
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    for name in spec.networks:
        if run is not None and name not in run:
            with torch.device("meta"):
                alone, ours = build_module(spec.network(name)), getattr(module, name)()
            assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
                [(k, v.shape) for k, v in alone.state_dict().items()], name
            continue
        alone = _random(build_module(spec.network(name)))
        ours = getattr(module, name)().eval()
        assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
            [(k, v.shape) for k, v in alone.state_dict().items()], name
        ours.load_state_dict(alone.state_dict(), strict=True)
        with torch.no_grad():
            assert torch.equal(ours(x), alone(x)), name


def test_rows_appending_layers_are_a_loop_with_their_conditions(tmp_path: Path) -> None:
    spec = api.load_string(_TOY, file="toy.arch")
    module, source = _family(spec, tmp_path, "toy")
    assert re.findall(r"^class (\w+)\(", source, re.M) == ["Toy"]
    assert "for c, n in stages:" in source and "for _ in range(n):" in source
    assert re.search(r"^ +if norm:\n +layers\.append\(nn\.BatchNorm2d\(", source, re.M)
    assert "self.body = nn.Sequential(*layers)" in source
    _same_as_alone(module, spec, 32)


def test_vgg_family_is_one_class_built_as_make_layers(tmp_path: Path) -> None:
    """torchvision vgg.py: `VGG(make_layers(cfgs[cfg], batch_norm), …)`, make_layers a loop over the
    configuration appending Conv2d, BatchNorm2d under `if batch_norm`, ReLU, and MaxPool2d per group.
    Each network's state_dict is that of its module compiled alone (built on the meta device)."""
    spec = api.load(SPECS / "vgg.arch")
    module, source = _family(spec, tmp_path, "vgg")
    assert re.findall(r"^class (\w+)\(", source, re.M) == ["VGG"]
    assert "for _ in range(n):" in source and "if batch_norm:" in source
    assert "self.features = nn.Sequential(*layers)" in source
    _same_as_alone(module, spec, 64, run=set())


@pytest.mark.slow
def test_vgg_family_computes_what_torchvision_does(tmp_path: Path) -> None:
    """Each VGG holds 130M parameters or more: two are run, against the module compiled alone and
    against torchvision's with its state_dict loaded by name (as torchvision's weights are)."""
    spec = api.load(SPECS / "vgg.arch")
    module, _ = _family(spec, tmp_path, "vgg")
    _same_as_alone(module, spec, 64, run={"vgg11", "vgg16_bn"})
    for name in ("vgg11", "vgg16_bn"):
        canonical = _random(tvm.get_model(name, weights=None))
        ours = getattr(module, name)().eval()
        ours.load_state_dict(canonical.state_dict(), strict=True)  # by name, as torchvision's weights
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert torch.allclose(ours(x), canonical(x), atol=1e-5, rtol=0), name

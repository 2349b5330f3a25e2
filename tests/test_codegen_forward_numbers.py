"""A number in a block's forward that is, in every instance, the value of one of the block's
parameters is that parameter, kept as an attribute: the instances share a class, as torchvision's
one `SSDScoringHead` serves both heads with its `num_columns`. A number no parameter gives, or
two could, stays a number, and the instances keep classes of their own."""

from __future__ import annotations

import ast

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_source

from .conftest import network

torch = pytest.importorskip("torch")


def _classes(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


@pytest.mark.parametrize(("file", "name", "block"), [("ssd.arch", "ssd300_vgg16", "PerBox"),
                                                     ("fpn.arch", "retinanet_resnet50_fpn", "PerAnchor")])
def test_a_head_reshuffle_is_one_class_of_its_column_count(file: str, name: str, block: str) -> None:
    source = generate_source(network(file, name))
    classes = [c for c in _classes(source) if c.startswith(block)]
    assert classes == [block], classes
    assert "self.columns = columns" in source and "reshape(x.shape[0], -1, self.columns)" in source
    # torchvision's heads: 4 box coordinates, and 91 COCO classes (ssd300_vgg16 and retinanet's num_classes).
    assert f"{block}(4)" in source and f"{block}(91)" in source


def _spec(body: str, calls: str) -> api.Network:
    return api.load_string(f"""
block unit(a, b) {{ {body} }}
network net {{
    input image: 24x8x8
    {calls}
}}
""", "t.arch").network()


def test_the_forward_reads_the_parameter_and_computes_as_before() -> None:
    net = _spec("in -> permute(1, 2, 0) -> reshape(-1, a)",
                "image -> unit(4, 1) as u1 -> output x\n    image -> unit(6, 1) as u2 -> output y")
    source = generate_source(net)
    assert sorted(_classes(source)) == ["Net", "Unit"], source
    image = torch.randn(2, 24, 8, 8)
    out = build_module(net)(image)
    rows = image.permute(0, 2, 3, 1)
    assert torch.equal(out["x"], rows.reshape(2, -1, 4)) and torch.equal(out["y"], rows.reshape(2, -1, 6))


@pytest.mark.parametrize(("body", "first", "second"), [
    ("reshape(-1, b)", "unit(4, 4)", "unit(6, 6)"),      # a and b both give it
    ("reshape(-1, 2 * b)", "unit(4, 2)", "unit(4, 3)"),  # no parameter gives it
])
def test_a_number_no_single_parameter_gives_stays_a_number(body: str, first: str, second: str) -> None:
    source = generate_source(_spec(f"in -> permute(1, 2, 0) -> {body}",
                                   f"image -> {first} as u1 -> output x\n    image -> {second} as u2 -> output y"))
    assert "self.a" not in source and "self.b" not in source
    assert len([c for c in _classes(source) if c.startswith("Unit")]) == 2, source

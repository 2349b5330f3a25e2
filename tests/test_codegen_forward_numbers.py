"""A number in a block's forward that is, in every instance, the value of one of the block's
parameters is that parameter, kept as an attribute: the instances share a class, as torchvision's
one `SSDScoringHead` serves both heads with its `num_columns`. An instance that lacks a part of
the others (Inception-ResNet's last block, without its ReLU) joins them, its numbers placed by the
lines they are on. A number no parameter gives, or two could, stays a number, and the instances
keep classes of their own."""

from __future__ import annotations

import ast

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_source
from archdsl.compiler.backends.torch_codegen.forward_numbers import _BucketKey, _lines_within

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


SCALED_RESIDUAL = """
block scaled(scale=0.2, relu_after=true) {
    r = in -> conv(in.channels, 1) as conv
    scale * r + in -> if relu_after { relu as relu }
}
network net {
    input image: 8x6x6
    image -> scaled as a -> scaled as b -> scaled(scale=1.0, relu_after=false) as c -> output y
}
"""


def test_numbers_of_an_instance_lacking_a_part_join_the_fuller_class() -> None:
    # Inception-ResNet's last block: another scale and no ReLU after the sum, one class with both as
    # arguments (timm inception_resnet_v2.py: `Block8(scale=1.0, no_relu=True)` after the repeated Block8s).
    net = api.load_string(SCALED_RESIDUAL, "t.arch").network()
    source = generate_source(net)
    assert sorted(_classes(source)) == ["Net", "Scaled"], source
    assert "self.c = Scaled(scale=1.0, relu_after=False)" in source and "conv * self.scale" in source, source
    module = build_module(net).eval()
    image = torch.randn(2, 8, 6, 6)
    expected = image
    with torch.no_grad():
        for name, scale, relu in (("a", 0.2, True), ("b", 0.2, True), ("c", 1.0, False)):
            expected = scale * getattr(module, name).conv(expected) + expected
            expected = torch.relu(expected) if relu else expected
        assert torch.allclose(module(image), expected, atol=1e-6)


def test_forward_lines_are_placed_only_where_one_way_fits() -> None:
    # The lines of a forward lacking a part, among the fuller forward's (return lines aside: what
    # each returns differs with its last part); None where a line could sit in two places.
    def key(init: tuple[str, ...], lines: tuple[str, ...]) -> _BucketKey:
        return ("b", ("x",), frozenset(), init, lines)

    full = key(("conv", "relu"), ("c = conv(x)", "s = c * \x02", "r = relu(s)", "return r"))
    assert _lines_within(key(("conv",), ("c = conv(x)", "s = c * \x02", "return s")), full) == [0, 1, -1]
    assert _lines_within(key(("relu", "conv"), ("c = conv(x)", "return c")), full) is None  # statements out of order
    twice = key((), ("a = x * \x02", "a = x * \x02", "return a"))
    assert _lines_within(key((), ("a = x * \x02", "return a")), twice) is None


def test_inception_resnet_v2_block8_is_one_class() -> None:
    source = generate_source(network("inception_v4.arch", "inception_resnet_v2"))
    assert [c for c in _classes(source) if c.startswith("Block8")] == ["Block8"]
    assert "self.block8 = Block8(scale=1.0, relu_after=False)" in source

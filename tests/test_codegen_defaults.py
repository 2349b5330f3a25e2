"""A block parameter with a literal default in the spec (`block basic_conv(c, k, stride=1, pad=0)`)
has that default in the generated constructor, after the parameters without one, and a construction
passes it by keyword where it differs (`BasicConv(c3r, c3, 3, pad=1)`), leaving it out where it does
not: as torchvision writes `Bottleneck(inplanes, planes, stride=2)` and `BasicConv2d(in_channels, 64,
kernel_size=1)`. A default that reads anything (`out=c`) is no Python default. A layer's size that
the instances give as pairs (Inception's 1×7 kernels) is one argument, a number or a pair, as torch's
2-d layers take it."""

from __future__ import annotations

import ast

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import generate_source


def _source(spec: str) -> str:
    return generate_source(api.load_string(spec, "t.arch").network())


def _signature(source: str, cls: str) -> list[str]:
    """A class's `__init__` parameters as written, with their defaults (`stride: int = 1`)."""
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    args = init.args.args[1:]
    defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
    return [ast.unparse(a) + ("" if d is None else f" = {ast.unparse(d)}") for a, d in zip(args, defaults, strict=True)]


UNITS = """
block unit(c, stride=1, pad=0, eps=1e-5, relu_after=true) {
    in -> conv(c, 3, stride=stride, pad=pad) as conv -> bn(eps=eps) as bn -> if relu_after { relu as relu }
}
network net {
    input image: 3x16x16
    image -> unit(8) as a -> unit(8, pad=1, eps=1e-3) as b -> unit(16, 2, 1) as c
          -> unit(16, relu_after=false) as d
}
"""


def test_literal_defaults_are_the_constructor_s() -> None:
    source = _source(UNITS)
    assert _signature(source, "Unit") == [
        "in_channels: int", "c: int", "stride: int = 1", "pad: int = 0", "eps: float = 1e-05",
        "relu_after: bool = True"], source
    # Left out at the default, by keyword elsewhere, however the spec's call wrote it.
    assert "self.a = Unit(3, 8)\n" in source
    assert "self.b = Unit(8, 8, pad=1, eps=0.001)\n" in source
    assert "self.c = Unit(8, 16, stride=2, pad=1)\n" in source
    assert "self.d = Unit(16, 16, relu_after=False)\n" in source


def test_literal_defaults_are_numbers_and_booleans_as_written() -> None:
    from archdsl.syntax import BlockDef, literal_defaults

    module = api.load_string("block b(a, s=1, f=-0.5, z=-0.0, t=true, n=none, e=a, x=2 * 3) { in }\n"
                             "network n { input i: 1x2x2 \n i -> b(1) }", "t.arch").namespace.module
    block = next(item for item in module.items if isinstance(item, BlockDef))
    found = literal_defaults(block.params)
    assert found == (("s", 1), ("f", -0.5), ("z", -0.0), ("t", True))
    assert [type(v) for _, v in found] == [int, float, float, bool] and str(found[2][1]) == "-0.0"


def test_a_default_that_reads_a_parameter_is_none() -> None:
    source = _source("""
block unit(c, out=c, stride=1) { in -> conv(c, 1) as reduce -> conv(out, 3, stride=stride, pad=1) as expand }
network net { input image: 3x8x8
    image -> unit(4) as a -> unit(4, 8) as b -> unit(2, 6, stride=2) as c }
""")
    assert _signature(source, "Unit") == ["in_channels: int", "c: int", "out: int", "stride: int = 1"], source
    assert "self.a = Unit(3, 4, 4)\n" in source and "self.b = Unit(4, 4, 8)\n" in source
    assert "self.c = Unit(8, 2, 6, stride=2)\n" in source


def test_a_default_before_a_parameter_without_one_moves_after_it() -> None:
    source = _source("""
block unit(stride=1, c) { in -> conv(c, 3, stride=stride, pad=1) as conv }
network net { input image: 3x8x8 \n image -> unit(c=4) as a -> unit(2, 8) as b }
""")
    assert _signature(source, "Unit") == ["in_channels: int", "c: int", "stride: int = 1"]
    assert "self.a = Unit(3, 4)\n" in source and "self.b = Unit(4, 8, stride=2)\n" in source


@pytest.mark.parametrize("spec", [UNITS], ids=["units"])
def test_the_module_with_defaults_builds_what_the_spec_describes(spec: str) -> None:
    torch = pytest.importorskip("torch")
    net = api.load_string(spec, "t.arch").network()
    module = api.build(net)
    assert sum(p.numel() for p in module.parameters()) == net.analyze().params
    with torch.no_grad():
        out = module(torch.randn(2, 3, 16, 16))
    assert tuple(out.shape[1:]) == (16, 5, 5)  # 16 → 14 (3×3), 14 (pad 1), 7 (stride 2), 5


def test_the_zoo_s_classes_read_as_torchvision_s() -> None:
    """GoogLeNet's BasicConv: torchvision's `BasicConv2d(in_channels, 64, kernel_size=1)` and
    `BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)` (torchvision/models/googlenet.py)."""
    from .conftest import network

    source = generate_source(network("googlenet.arch", "googlenet"))
    assert _signature(source, "BasicConv") == ["in_channels: int", "c: int", "k: int", "stride: int = 1",
                                               "pad: int = 0"]
    assert "self.conv1 = BasicConv(3, 64, 7, stride=2, pad=3)\n" in source
    assert "self.branch1 = BasicConv(in_channels, c1, 1)\n" in source


def test_a_size_given_as_pairs_is_one_argument() -> None:
    """torchvision's inception.py: `BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))` and
    `BasicConv2d(in_channels, 64, kernel_size=1)`; one argument each, not one per dimension."""
    from .conftest import network

    source = generate_source(network("inception_v3.arch", "inception_v3"))
    assert _signature(source, "BasicConv") == ["in_channels: int", "c: int", "kernel_size: int | tuple[int, int]",
                                               "padding: int | tuple[int, int]", "stride: int = 1"]
    assert "nn.Conv2d(in_channels, c, kernel_size=kernel_size, stride=stride, padding=padding, bias=False)" in source
    assert "self.branch7x7_2 = BasicConv(c7, c7, (1, 7), (0, 3))\n" in source
    assert "self.branch1x1 = BasicConv(in_channels, 64, 1, 0)\n" in source
    assert "self.branch3x3 = BasicConv(288, 384, 3, 0, stride=2)\n" in source


PAIRS = """
block unit(c, k, pad) { in -> conv(c, k, pad=pad, bias=false) as conv -> relu }
network net {
    input image: 4x9x9
    image -> unit(4, 1x3, [0, 1]) as a -> unit(4, 3x1, [1, 0]) as b -> unit(6, 3, 1) as c
}
"""


def test_pairs_as_one_argument_build_what_the_spec_describes() -> None:
    torch = pytest.importorskip("torch")
    source = _source(PAIRS)
    assert _signature(source, "Unit") == ["c: int", "kernel_size: int | tuple[int, int]",
                                          "padding: int | tuple[int, int]"], source
    assert "self.a = Unit(4, (1, 3), (0, 1))\n" in source and "self.c = Unit(6, 3, 1)\n" in source, source
    net = api.load_string(PAIRS, "t.arch").network()
    module = api.build(net)
    assert sum(p.numel() for p in module.parameters()) == net.analyze().params
    kernels = [tuple(m.kernel_size) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(1, 3), (3, 1), (3, 3)]
    with torch.no_grad():
        assert tuple(module(torch.randn(1, 4, 9, 9)).shape) == (1, 6, 9, 9)

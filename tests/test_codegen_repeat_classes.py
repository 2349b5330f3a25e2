"""A `repeat` of blocks inside a block is the loop the spec writes: its count is a parameter of the
block's class, so that stages of other lengths share one class, as timm's `DarkStage(…, depth)`
and torchvision's `_make_layer(block, planes, blocks)` do. Darknet-53's five stages (Redmon and
Farhadi 2018, Table 1: 1, 2, 8, 8 and 4 residual units) are one class."""

from __future__ import annotations

import ast

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_family, generate_source

from .conftest import SPECS, zoo

torch = pytest.importorskip("torch")

# A stage: a strided conv, then n residual units at half its width (Darknet-53's, much reduced).
STAGE_BLOCKS = """
block unit(mid) {
    in + (in -> conv(mid, 1) as conv1 -> relu -> conv(in.channels, 3) as conv2)
}
block stage(c, n) {
    in -> conv(c, 3, stride=2) as down -> repeat n: unit(c // 2)
}
"""
STAGES = STAGE_BLOCKS + """
network net(widths=[16, 32, 64], depths=[1, 2, 3]) {
    input image: 3x64x64
    image -> stage(widths[0], depths[0]) as s1 -> stage(widths[1], depths[1]) as s2
          -> stage(widths[2], depths[2]) as s3 -> avgpool(global) -> flatten -> linear(10) as fc
}
"""


def _classes(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


def _params(cls: ast.ClassDef) -> list[str]:
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    return [a.arg for a in init.args.args[1:]]


def test_stages_of_one_two_and_three_units_are_one_class() -> None:
    net = api.load_string(STAGES, "stages.arch").network("net")
    source = generate_source(net)
    classes = _classes(source)
    assert sorted(classes) == ["Net", "Stage", "Unit"], sorted(classes)
    assert _params(classes["Stage"])[-1] == "n"
    assert "for _ in range(n))" in source
    module = build_module(net)
    # What the analysis counts, the module holds, under the spec's names.
    assert sum(p.numel() for p in module.parameters()) == net.analyze().params
    assert {k.rsplit(".", 2)[0] for k in module.state_dict() if ".repeat." in k} == {
        "s1.repeat.0", "s2.repeat.0", "s2.repeat.1", "s3.repeat.0", "s3.repeat.1", "s3.repeat.2"}
    with torch.no_grad():
        assert module(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_a_repeat_whose_first_block_differs_loops_over_the_rest() -> None:
    spec = """
block unit(c, stride=1) { in -> conv(c, 3, stride=stride) as conv -> relu }
block stage(c, n) { in -> repeat n as i: unit(c, stride=(i == 0 ? 2 : 1)) }
network net {
    input image: 3x32x32
    image -> stage(8, 3) as s1 -> stage(16, 4) as s2
}
"""
    source = generate_source(api.load_string(spec, "t.arch").network())
    assert sorted(_classes(source)) == ["Net", "Stage", "Unit"]
    assert "nn.Sequential(Unit(in_channels, c, stride=2), *(Unit(c, c) for _ in range(1, n)))" in source, source


def test_a_repeat_of_blocks_that_all_differ_stays_a_list() -> None:
    spec = """
block unit(c) { in -> conv(c, 3) as conv -> relu }
network net {
    input image: 3x32x32
    image -> repeat 3 as i: unit(8 * (i + 1))
}
"""
    source = generate_source(api.load_string(spec, "t.arch").network())
    assert "for _ in range" not in source
    assert "Unit(3, 8), Unit(8, 16), Unit(16, 24)" in source, source


def test_a_loop_run_once_with_no_parameter_is_its_one_module() -> None:
    spec = """
block unit(c) { in -> conv(c, 3) as conv -> relu }
block stage(c, n) { in -> repeat n: unit(c) }
network net {
    input image: 3x32x32
    image -> stage(8, 1) as s1
}
"""
    source = generate_source(api.load_string(spec, "t.arch").network())
    assert "range(" not in source
    assert "nn.Sequential(Unit())" in source, source


def test_darknet53_stages_are_one_class() -> None:
    spec, name = api.find("darknet53")
    classes = _classes(generate_source(spec.network(name)))
    assert [c for c in classes if c.startswith("DarkStage")] == ["DarkStage"]
    assert _params(classes["DarkStage"])[-1] == "n"


def test_a_family_module_loops_over_the_repeats_of_each_network() -> None:
    # A file's module pools the block instances of its networks, each elaborated on its own: a
    # repeat is found in the IR of the network it belongs to (here not the first network's, which
    # has none), so the stages share their class in the family module as in the network's own.
    text = "network plain {\n    input image: 3x8x8\n    image -> conv(4, 3) as conv\n}\n" + STAGES
    spec = api.load_string(text, "stages.arch")
    source = generate_family([spec.network("plain"), spec.network("net")]).text
    classes = _classes(source)
    assert [c for c in classes if c.startswith("Stage")] == ["Stage"], sorted(classes)
    assert "for _ in range(n))" in source, source


def test_darknet_family_stages_are_one_class_each() -> None:
    # Darknet-53's stages (1, 2, 8, 8, 4 residual units, Redmon and Farhadi 2018, Table 1) and
    # CSPDarknet-53's (the same depths, the first stage at full width: timm's cspdarknet53), in the
    # module of darknet.arch, whose first network, Darknet-19, has no stages.
    file = "darknet.arch"
    spec = api.load(SPECS / file)
    classes = _classes(generate_family([spec.network(name) for f, name in zoo() if f == file]).text)
    assert [c for c in classes if c.startswith(("DarkStage", "CspStage"))] == ["DarkStage", "CspStage", "CspStages"]
    assert _params(classes["CspStage"]) == ["in_channels", "c", "n", "first", "slope"]

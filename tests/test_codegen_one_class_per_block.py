"""One generated class per block definition where the spec's instances differ only in what some of
them build: a child block that the caller places inside some instances (EfficientDet's
`fpn.resample.3.downsample`, effdet's `ResampleFeatureMap` with `if reduction_ratio > 1:
self.add_module('downsample', …)`) is an optional part of the block's one class, however deep it
sits below the others; and instances that take the two branches of an `if` the block's body tests
are one class with that `if` (ShuffleNet's unit, as torchvision's `InvertedResidual` writes `if
self.stride > 1:` in its constructor and forward). Where no condition of the spec tells two forms
of a block apart, they stay two classes (torchvision's RetinaNet heads are two classes too). Both
also in a family's module, where the two sides have optional parts of their own (ShuffleNet V1's
channel shuffle, which g = 1 lacks). A statement or a forward line is both branches' only where it
is the same layer of the spec (the same call), not merely the same text: auto-names such as `conv_2`
may name a branch's layer on one side and a later layer on the other."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_source


def _classes(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]


CHILD_IN_SOME = """
block down() { in -> maxpool(2, stride=2) }
block widen(w) { in -> conv(w, 1) as conv -> relu }
network net {
    input image: 3x16x16
    a = image -> widen(8) as first -> down as first.downsample
    a -> widen(16) as second -> output y
}
"""


def test_a_child_block_some_instances_hold_is_an_optional_part() -> None:
    network = api.load_string(CHILD_IN_SOME, "t.arch").network()
    source = generate_source(network)
    assert _classes(source) == ["Down", "Widen", "Net"], source
    assert "self.first = Widen(3, 8, True)\n" in source
    assert "self.second = Widen(8, 16, False)\n" in source
    module = build_module(network).eval()
    state = module.state_dict()
    assert sorted(state) == ["first.conv.bias", "first.conv.weight", "second.conv.bias", "second.conv.weight"]
    x = torch.randn(2, 3, 16, 16)
    # What the spec reads as: conv, relu, 2×2 max-pool (first), then conv, relu (second).
    expected = F.max_pool2d(F.relu(F.conv2d(x, state["first.conv.weight"], state["first.conv.bias"])), 2, 2)
    expected = F.relu(F.conv2d(expected, state["second.conv.weight"], state["second.conv.bias"]))
    with torch.no_grad():
        assert torch.equal(module(x), expected)


def test_efficientdet_s_to_width_is_one_class() -> None:
    network = api.find("efficientdet_d0")[0].network("efficientdet_d0")
    source = generate_source(network)
    assert [c for c in _classes(source) if c.startswith("ToWidth")] == ["ToWidth"], source
    assert "ToWidth(320, True)" in source and "ToWidth(112, False)" in source


def test_efficientdet_s_mbconv_strided_or_not_is_one_class() -> None:
    """Its depthwise convolution pads by TensorFlow's rule: fixed at stride 1, worked out per input at
    stride 2. Built through `conv2d_same`, which chooses, as effdet's through timm's `create_conv2d`,
    the strided blocks and the others are one class, as timm's `InvertedResidual`."""
    network = api.find("efficientdet_d0")[0].network("efficientdet_d0")
    source = generate_source(network)
    assert [c for c in _classes(source) if c.startswith("TfMbconv")] == ["TfMbconv"], source
    assert "conv2d_same(hidden, hidden, kernel_size=k, stride=stride, groups=hidden, bias=False)" in source
    assert "TfMbconv(16, 24, 3, stride=2, drop=0.0125)" in source and "TfMbconv(24, 24, 3, drop=0.025)" in source


BRANCHES = """
block unit(c, stride=1) {
    y = in -> conv(c, 3, stride=stride) as conv
    if stride == 1 {
        in + y -> relu
    } else {
        concat(in -> avgpool(3, stride=2, pad=1), y) -> relu
    }
}
block head(out, last) { in -> conv(out, 1) as {last} }
network net {
    input image: 4x16x16
    x = image -> unit(4) as a -> unit(8, stride=2) as b -> unit(12) as c
    x -> head(3, "cls") as h1 -> output y
    x -> head(5, "box") as h2 -> output z
}
"""


def test_the_branches_of_an_if_are_one_class_with_that_if() -> None:
    network = api.load_string(BRANCHES, "t.arch").network()
    source = generate_source(network)
    assert _classes(source) == ["Unit", "Head", "Head_2", "Net"], source
    unit = source[source.index("class Unit"):source.index("class Head")]
    assert "self.stride = stride\n" in unit and unit.count("if stride != 1:\n") == 1, unit
    # Each branch's relu is a layer of its own (two calls of the spec), built in its branch.
    assert unit.count("if self.stride != 1:\n") == 1 and unit.count("else:\n") == 2, unit
    assert re.search(r"self\.a = Unit\(4, 4\)\n.*self\.b = Unit\(4, 8, stride=2\)\n.*self\.c = Unit\(12, 12\)\n",
                     source, re.S), source
    module = build_module(network).eval()
    state = module.state_dict()
    x = torch.randn(2, 4, 16, 16)

    def conv(name: str, v: torch.Tensor, stride: int = 1) -> torch.Tensor:
        return F.conv2d(v, state[f"{name}.conv.weight"], state[f"{name}.conv.bias"], stride=stride, padding=1)

    # What the spec reads as: a residual unit, a downsampling unit (pooled input beside the conv), a residual unit.
    a = F.relu(x + conv("a", x))
    b = F.relu(torch.cat([F.avg_pool2d(a, 3, 2, 1), conv("b", a, 2)], dim=1))
    c = F.relu(b + conv("c", b))
    with torch.no_grad():
        out = module(x)
    assert torch.allclose(out["y"], F.conv2d(c, state["h1.cls.weight"], state["h1.cls.bias"]), atol=1e-6)
    assert torch.allclose(out["z"], F.conv2d(c, state["h2.box.weight"], state["h2.box.bias"]), atol=1e-6)


def test_shufflenet_v2_unit_is_torchvision_s_one_class() -> None:
    """torchvision's shufflenetv2.py: `InvertedResidual(inp, oup, stride)`, `if self.stride > 1:` a
    `branch1`, and `branch2`'s first convolution on `inp if (self.stride > 1) else branch_features`."""
    source = generate_source(api.find("shufflenet_v2_x1_0")[0].network("shufflenet_v2_x1_0"))
    assert [c for c in _classes(source) if c.startswith("ShuffleUnit")] == ["ShuffleUnit"], source
    assert "def __init__(self, in_channels: int, c: int, stride: int) -> None:" in source
    assert "nn.Conv2d(in_channels if stride != 1 else half, half, kernel_size=1, bias=False)" in source
    assert "ShuffleUnit(24, 116, 2)" in source and "ShuffleUnit(116, 116, 1)" in source


def test_shufflenet_v1_family_has_one_unit_with_its_shuffle_optional() -> None:
    """The family module of every ShuffleNet V1: units with and without the channel shuffle (g = 1
    has none: `if groups > 1 { shuffle(groups) }`), each with stride 1 or 2, are one class, as
    megvii's `ShuffleV1Block` (`if self.stride == 1: … elif self.stride == 2: …`)."""
    from archdsl.compiler.backends.torch_codegen import generate_family

    file = api.find("shufflenet_v1_g3")[0]
    source = generate_family([file.network(n) for n in file.networks]).text
    assert [c for c in _classes(source) if c.startswith("ShufflenetUnit")] == ["ShufflenetUnit"], source
    unit = source[source.index("class ShufflenetUnit("):]
    assert "        if groups > 1:\n" in unit and "        if self.shuffle is not None:\n" in unit, unit
    assert "        if stride != 1:\n" in unit and "        if self.stride != 1:\n" in unit, unit
    # megvii's ShuffleV1Block: `outputs = oup - inp` where it concatenates the pooled input, else oup.
    assert "nn.Conv2d(mid, c - in_channels if stride != 1 else c, kernel_size=1, groups=groups, bias=False)" in unit
    # With no unnamed argument left, the family's networks are one class computed from the spec's table.
    assert [c for c in _classes(source) if c.startswith("Shufflenet")] == ["ShufflenetUnit", "ShufflenetV1"], source


NESTED_BOTH_WAYS = """
block leaf(c) { in -> conv(c, 1) as conv }
block wrap_a(unit) { in -> unit as inner -> relu }
block wrap_b(unit) { in -> unit as inner -> sigmoid }
network net {
    input image: 3x8x8
    x = image -> wrap_a(unit=wrap_b(unit=leaf(4))) as first
    x -> wrap_b(unit=wrap_a(unit=leaf(4))) as second -> output y
}
"""


def test_blocks_nested_in_each_other_both_ways_still_make_classes_children_first() -> None:
    # wrap_a holds wrap_b in `first` and wrap_b holds wrap_a in `second`: no one level fits all the
    # instances of either block, so each instance's level is its nesting alone.
    network = api.load_string(NESTED_BOTH_WAYS, "t.arch").network()
    module = build_module(network).eval()
    state = module.state_dict()
    x = torch.randn(1, 3, 8, 8)
    first = F.relu(torch.sigmoid(F.conv2d(x, state["first.inner.inner.conv.weight"],
                                          state["first.inner.inner.conv.bias"])))
    second = torch.sigmoid(F.relu(F.conv2d(first, state["second.inner.inner.conv.weight"],
                                           state["second.inner.inner.conv.bias"])))
    with torch.no_grad():
        assert torch.allclose(module(x), second, atol=1e-6)


@pytest.mark.parametrize("name", ["shufflenet_v1_g3", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0"])
def test_one_class_computes_what_the_two_did(name: str) -> None:
    """The merged class against the two classes it replaces (each checked against torchvision or
    megvii's layers elsewhere): the same state_dict keys and shapes, and the same outputs with one
    set of random weights and batch-norm statistics."""
    network = api.find(name)[0].network(name)
    merged_source = generate_source(network)
    with _classes_apart():
        assert len(_classes(generate_source(network))) == len(_classes(merged_source)) + 1
    _assert_merged_computes_as_apart(network, (3, 224, 224))


@contextlib.contextmanager
def _classes_apart() -> Iterator[None]:
    """Code generation without merging two classes of a block into one (what it did before)."""
    from archdsl.compiler.backends.torch_codegen import TorchCodegen

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TorchCodegen, "_alternative_classes", lambda self, *args: {})
        yield


def _assert_merged_computes_as_apart(network: api.Network, shape: tuple[int, ...]) -> None:
    """The module with merged classes and the one without: the same state_dict, and exactly the same
    outputs with one set of random weights and batch-norm statistics."""
    merged = build_module(network).eval()
    with _classes_apart():
        separate = build_module(network).eval()
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in merged.state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    merged.load_state_dict(state)
    separate.load_state_dict(state)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(merged(x), separate(x)), generate_source(network)


# Random blocks whose body branches on a parameter: the generated module computes the same with the
# branches' classes merged as with them apart, whatever the two branches and the code around them.
_LAYERS = ("conv(c, 3)", "conv(c, 1)", "conv(2 * c, 3)", "conv(8, 1, bias=false)", "relu", "bn", "sigmoid",
           "maxpool(3, stride=1, pad=1)", "avgpool(3, stride=1, pad=1)")


def _chain(draw: st.DrawFn) -> str:
    return " -> ".join(draw(st.lists(st.sampled_from(_LAYERS), min_size=1, max_size=3)))


@st.composite
def _branching_spec(draw: st.DrawFn) -> str:
    before, after = _chain(draw), _chain(draw)
    then, otherwise = _chain(draw), _chain(draw)
    test = draw(st.sampled_from(["s == 1", "s != 1", "s > 1", "c >= 8"]))
    calls = draw(st.lists(st.tuples(st.sampled_from([4, 6, 8, 12]), st.sampled_from([1, 2])), min_size=2, max_size=4))
    chain = " -> ".join(f"unit({c}, {s}) as u{i}" for i, (c, s) in enumerate(calls))
    return f"""
block unit(c, s) {{
    y = in -> {before}
    if {test} {{
        z = y -> {then}
    }} else {{
        z = y -> {otherwise}
    }}
    z -> {after}
}}
network net {{
    input image: 3x8x8
    image -> {chain} -> output y
}}
"""


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_branching_spec())
def test_random_branches_compute_the_same_merged_or_apart(spec: str) -> None:
    _assert_merged_computes_as_apart(api.load_string(spec, "t.arch").network(), (3, 8, 8))


SAME_NAME_OTHER_LAYER = """
block unit(c, s) {
    y = in -> conv(c, 3)
    if s == 1 {
        z = y -> relu
    } else {
        z = y -> conv(c, 1)
    }
    z -> conv(2 * c, 3)
}
network net {
    input image: 3x8x8
    image -> unit(6, 1) as a -> unit(12, 2) as b -> output y
}
"""


def test_a_name_both_branches_use_for_other_layers_is_no_shared_line() -> None:
    # `conv_1` is the else branch's 1x1 in `b` and the 3x3 after the if in `a`.
    source = generate_source(api.load_string(SAME_NAME_OTHER_LAYER, "t.arch").network())
    unit = source[source.index("class Unit("):source.index("class Net(")]
    assert not re.search(r"^ {8}x = self\.conv_1\(x\)$", unit, re.M), unit  # not at the forward's own level
    assert len(re.findall(r"^ {12}x = self\.conv_1\(x\)$", unit, re.M)) == 2, unit  # in each branch
    assert len(re.findall(r"^ {12}self\.conv_1 = nn\.Conv2d\(", unit, re.M)) == 2, unit

"""Receptive-field pass: hand-derived fields (derivation beside each), the transfer rules, and the
empirical check (tests/empirical_rf.py) on the zoo and on hypothesis-generated chains and graphs.

Derivations use r_out = r_in + (k−1)·j_in, j_out = j_in·s (Araujo, Norris & Sim, Distill 2019).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archdsl.api as api
from archdsl.compiler.passes.receptive import Field, ReceptiveFieldPass, _union_general, _Window, union
from archdsl.diagnostics import ArchError
from archdsl.ops import Geometry

from .conftest import SPECS, network, zoo


def field(net: api.Network, node: str):
    net.analyze()
    for out in net.ir.outputs():
        if out.output_name == node:
            node = out.name
    return net.analysis[ReceptiveFieldPass][node].primary


def tiny(body: str, input: str = "1x64x64") -> api.Network:
    return api.load_string(f"network t {{\n    input image: {input}\n{body}\n}}", file="t.arch").network()


# ---------------------------------------------------------------------------------------------
# hand-derived


def test_vgg16_conv5_3_is_196_and_pool5_212() -> None:
    # Araujo et al. 2019, Table 1 (vgg_16: conv5_3 196, pool5 212). By hand: 2×3×3 → 5; pool → 6 (j 2);
    # 2×3×3 → 6+2·2·2 = 14; pool → 16 (j 4); 3×3×3 → 16+3·2·4 = 40; pool → 44 (j 8); → 44+48 = 92;
    # pool → 100 (j 16); → 100+3·2·16 = 196 (conv5_3); pool5 (2×2/2) → 196+16 = 212.
    # torchvision's vgg16 features: conv5_3 is features.28, its relu features.29, pool5 features.30.
    net = network("vgg.arch", "vgg16")
    assert field(net, "features.28").size == (196, 196)
    assert field(net, "features.29").size == (196, 196)
    assert field(net, "features.30").size == (212, 212)
    assert field(net, "features.30").stride == (32, 32)


def test_alexnet_features_is_195() -> None:
    # Araujo et al. 2019, Table 1 (alexnet_v2 pool5: 195); torchvision's features by hand:
    # conv 11/4 p2 → 11 (j 4); maxpool 3/2 → 11+2·4 = 19 (j 8); conv 5 → 19+4·8 = 51;
    # maxpool 3/2 → 51+2·8 = 67 (j 16); three 3×3 → 67+3·2·16 = 163; maxpool 3/2 → 163+2·16 = 195.
    net = network("alexnet.arch", "alexnet")
    f = field(net, "features.12")
    assert f.size == (195, 195) and f.stride == (32, 32)


def test_resnet50_layer4_is_427() -> None:
    # torchvision ResNet-50 (v1.5, the 3×3 strides) by hand: conv1 7/2 → 7 (j 2); maxpool 3/2 → 11 (j 4);
    # layer1: 3 blocks, one 3×3 each at j 4 → 11+3·8 = 35; layer2: its strided 3×3 at j 4 → 43 (j 8),
    # 3 more → 43+3·16 = 91; layer3: 91+16 = 107 (j 16), 5 more → 107+5·32 = 267;
    # layer4: 267+32 = 299 (j 32), 2 more → 299+2·64 = 427. (1×1 convs and the shortcut add nothing.)
    net = network("resnet.arch", "resnet50")
    f = field(net, "layer4.2.relu_2")
    assert f.size == (427, 427) and f.stride == (32, 32) and not f.misaligned
    assert field(net, "logits").global_


def test_two_3x3_equal_one_5x5() -> None:
    a = field(tiny("    image -> conv(1, 3) -> conv(1, 3) -> output y"), "y")
    b = field(tiny("    image -> conv(1, 5) -> output y"), "y")
    assert a == b and a.size == (5, 5)  # 1 + 2 + 2 = 5


def test_1x3_then_3x1_equal_3x3() -> None:
    a = field(tiny("    image -> conv(1, 1x3) -> conv(1, 3x1) -> output y"), "y")
    b = field(tiny("    image -> conv(1, 3) -> output y"), "y")
    assert a == b and a.size == (3, 3)


def test_3x3_dilation_2_is_5() -> None:
    f = field(tiny("    image -> conv(1, 3, dilation=2) -> output y"), "y")
    assert f.size == (5, 5)  # k_eff = d·(k−1)+1 = 5


def test_asymmetric_kernel() -> None:
    f = field(tiny("    image -> conv(1, 1x7) -> conv(1, 7x1, stride=2) -> conv(1, 3) -> output y"), "y")
    assert f.size == (7 + 2 * 2, 7 + 2 * 2) and f.stride == (2, 2)


def test_pool_padding_and_ceil_mode_start() -> None:
    # maxpool 3/2 pad 1: start = 0 + (1 − 1)·1 = 0; without pad: start = 1; ceil_mode adds outputs only.
    assert field(tiny("    image -> maxpool(3, stride=2, pad=1) -> output y"), "y").start == (0, 0)
    f = field(tiny("    image -> maxpool(3, stride=2, ceil_mode=true) -> output y", "1x10x10"), "y")
    assert f.start == (1, 1) and f.size == (3, 3) and f.stride == (2, 2)


def test_transposed_conv_and_upsampling_divide_the_jump() -> None:
    f = field(tiny("    image -> conv(1, 3, stride=2) -> deconv(1, 2, stride=2) -> output y"), "y")
    # deconv 2/2 as a window over its input: k' = (2−1)/2 + 1 = 1.5, s' = ½, p' = (2−1−0)/2 = ½
    # → r = 3 + 0.5·2 = 4, j = 2·½ = 1, start = 0 + (0.25 − 0.5)·2 = −0.5.
    assert (f.size, f.stride, f.start) == ((4, 4), (1, 1), (-0.5, -0.5))
    f = field(tiny("    image -> conv(1, 3, stride=4) -> upsample(2) -> output y"), "y")
    # nearest ×2 reads floor(i/2): k' = 1.5, s' = ½, p' = ½ → r = 3 + 0.5·4 = 5, j = 2, start = −1
    assert (f.size, f.stride, f.start) == ((5, 5), (2, 2), (-1, -1))


def test_merge_is_the_union_and_flags_misaligned_centres() -> None:
    aligned = tiny("    a = image -> conv(2, 3)\n    b = image -> conv(2, 5)\n    a + b -> output y")
    f = field(aligned, "y")
    assert f.size == (5, 5) and not f.misaligned
    skewed = tiny("    a = image -> conv(2, 2, pad=[1, 0, 1, 0])\n    b = image -> conv(2, 1)\n"
                  "    concat(a, b) -> output y")
    f = field(skewed, "y")  # centres −0.5 and 0: union [−1, 0] → size 2, start −0.5
    assert f.misaligned and f.size == (2, 2) and f.start == (-0.5, -0.5)


def test_global_after_global_pool_or_linear() -> None:
    net = tiny("    image -> conv(4, 3) -> avgpool(global) as gap -> flatten -> linear(10) -> output y")
    assert field(net, "gap").global_ and field(net, "y").global_
    report = net.analyze()
    assert report.receptive_field == {"y": "global"}
    layer = next(x for x in report.layers if x.name == "conv")
    assert layer.receptive_field.size == [3, 3] and layer.receptive_field.input == "image"


def test_several_inputs_get_a_field_each() -> None:
    net = tiny("    input other: 1x32x32\n    a = image -> conv(1, 3, stride=2)\n"
               "    b = other -> conv(1, 5)\n    a + b -> output y")
    net.analyze()
    fields = net.analysis[ReceptiveFieldPass]["y"].by_input
    assert fields["image"].size == (3, 3) and fields["other"].size == (5, 5)
    assert field(net, "y").size == (3, 3)  # reported w.r.t. the first input


def test_analyze_json_has_fields_and_memory() -> None:
    report = network("resnet.arch", "resnet50").analyze()
    data = report.model_dump()
    assert data["receptive_field"] == {"logits": "global"}
    layer4 = next(x for x in data["layers"] if x["name"] == "layer4.2.relu_2")
    assert layer4["receptive_field"]["size"] == [427, 427] and layer4["receptive_field"]["stride"] == [32, 32]
    assert data["peak_activations"]["bytes"] == 4 * data["peak_activations"]["elements"] > 0


# ---------------------------------------------------------------------------------------------
# empirical: the support of ∂out[centre]/∂input equals the pass's extent (contains it after upsampling)

torch = pytest.importorskip("torch")
from .empirical_rf import empirical_extents, static_extent  # noqa: E402


def _inexact(net: api.Network) -> bool:
    """Upsampling, transposed convs and uneven adaptive pools make the pass an upper bound."""
    for node in net.ir.nodes("op"):
        g = node.op_class.geometry(node.attrs, net.ir.in_shapes(node))
        if g.global_:
            continue
        if any(float(x) != int(x) or x < 1 for x in (*g.stride, *g.kernel, *g.pad)):
            return True
    return False


def agree(net: api.Network, nodes: list[str]) -> None:
    inexact = _inexact(net)
    for node, (h, w, index, source) in empirical_extents(net, nodes).items():
        (sh, sw), inside = static_extent(net, node, index, source)
        if inexact or not inside:
            assert sh[0] <= h[0] and h[1] <= sh[1] and sw[0] <= w[0] and w[1] <= sw[1], (node, (h, w), (sh, sw))
        else:
            assert (h, w) == (sh, sw), (node, index)


def _probe_nodes(net: api.Network, k: int = 6) -> list[str]:
    """Every output, plus up to k op nodes with a submodule and a spatial output, spread over the net."""
    net.analyze()
    # A shared instance's later applications (`head@3`) have no submodule of their own: skipped.
    spatial = [n.name for n in net.ir.nodes("op")
               if len(n.out_shapes[0]) == 3 and n.shares is None
               and n.op_class.torch_init(n.attrs, net.ir.in_shapes(n)) is not None
               and not net.analysis[ReceptiveFieldPass][n.name].primary.global_]
    step = max(1, len(spatial) // k)
    return [*spatial[step - 1 :: step][:k], *net.output_shapes]


@pytest.mark.slow
@pytest.mark.parametrize(("file", "name"), zoo())
def test_empirical_field_matches_the_pass_on_the_zoo(file: str, name: str) -> None:
    spec = api.load(SPECS / file)
    net = spec.network(name)
    first = next(iter(net.input_shapes.values()))
    if len(first) != 3:  # a vector input (a GAN's latent code): every output reads all of it
        net.analyze()
        fields = net.analysis[ReceptiveFieldPass]
        assert all(fields[out.name].primary.global_ for out in net.ir.outputs())  # type: ignore[union-attr]
        return
    channels = first[0]
    for side in (64, 96, 128, 160, 224, 299):  # a reduced input keeps this to seconds
        try:
            small = spec.network(name, input=(channels, side, side))
            break
        except ArchError:
            continue
    else:
        small = net
    agree(small, _probe_nodes(small))


_layer = st.one_of(
    st.builds(lambda k, s, d: f"conv(2, {k}, stride={s}, dilation={d})", st.integers(1, 5), st.integers(1, 3),
              st.integers(1, 2)),
    st.builds(lambda k, s, p: f"conv(2, {k}, stride={s}, pad={p})", st.integers(1, 4), st.integers(1, 2),
              st.integers(0, 2)),
    st.sampled_from(["conv(2, 1x3)", "conv(2, 3x1, stride=2)", "conv(2, 1x5, pad=[0, 0, 1, 3])"]),
    st.builds(lambda pool, k, s, ceil: f"{pool}({k}, stride={s}, pad={k // 2}, ceil_mode={str(ceil).lower()})",
              st.sampled_from(["maxpool", "avgpool"]), st.integers(2, 3), st.integers(1, 2), st.booleans()),
    st.builds(lambda k, s: f"deconv(2, {k}, stride={s})", st.integers(2, 4), st.integers(1, 2)),
    st.just("upsample(2)"),
    st.just("relu"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(_layer, min_size=1, max_size=5), st.integers(24, 64))
def test_empirical_on_random_chains(layers: list[str], side: int) -> None:
    try:
        net = tiny("    image -> " + " -> ".join(layers) + " -> output y", f"1x{side}x{side}")
    except ArchError:
        assume(False)
    agree(net, ["y"])


_odd = st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 2))  # (kernel, dilation): "half" padding


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_odd, min_size=1, max_size=3), st.lists(_odd, min_size=0, max_size=3), st.integers(1, 2),
       st.sampled_from(["+", "concat"]), st.integers(20, 36))
def test_empirical_on_branched_graphs(a: list[tuple[int, int]], b: list[tuple[int, int]], stride: int,
                                      merge: str, side: int) -> None:
    # Odd kernels with half padding keep both branches' shapes equal whatever their depth; each
    # branch strides once (its first layer), so the two paths meet on the same grid.
    def branch(layers: list[tuple[int, int]]) -> str:
        first = f", stride={stride}"
        steps = [f"conv(2, {k}, dilation={d}{first if i == 0 else ''})"
                 for i, (k, d) in enumerate(layers)] or [f"maxpool(1, stride={stride})"]
        return "image -> " + " -> ".join(steps)

    joined = "a + b" if merge == "+" else "concat(a, b)"
    net = tiny(f"    a = {branch(a)}\n    b = {branch(b)}\n    {joined} -> conv(2, 3) as head -> output y",
               f"1x{side}x{side}")
    agree(net, ["y"])


@pytest.mark.slow
def test_empirical_field_is_exact_inside_the_image() -> None:
    # At full resolution these fields lie inside the 224×224 image, so the support must equal them.
    for file, name, nodes in (("vgg.arch", "vgg16", ["features.28", "features.30"]),
                              ("resnet.arch", "resnet50", ["layer2.0.relu_2", "layer3.0.conv1"])):
        net = network(file, name)
        for node, (h, w, index, source) in empirical_extents(net, nodes).items():
            (sh, sw), inside = static_extent(net, node, index, source)
            assert inside and (h, w) == (sh, sw), (name, node)


# The pass moves fields in integers where that gives the same numbers as the transfer rule (odd
# kernels, integer strides, values far below 2⁵³), and unites integral fields in integers: both
# must be the general rule's results exactly, near the limit of the shortcut and beyond it too.
_big = st.one_of(st.integers(-50, 50), st.integers(-(1 << 62), 1 << 62), st.sampled_from([(1 << 40) - 1, 1 << 40]))


_fields = st.builds(lambda r, j, c: Field(r, j, c), st.tuples(st.integers(1, 1 << 45), st.integers(1, 1 << 45)),
                    st.tuples(st.integers(1, 1 << 45), st.integers(1, 1 << 45)), st.tuples(_big, _big))


def _numbers(f: Field) -> list[tuple[type, float]]:
    """A field's numbers with their types: 3 and 3.0 are equal, but the report writes them apart."""
    return [(type(x), x) for x in (*f.size, *f.stride, *f.start)]


@settings(max_examples=300)
@given(_fields, st.tuples(st.integers(1, 9), st.integers(1, 9)), st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.tuples(st.integers(-3, 5), st.integers(-3, 5)))
def test_moving_a_field_in_integers_is_the_transfer_rule(f: Field, kernel: tuple[int, int], stride: tuple[int, int],
                                                         pad: tuple[int, int]) -> None:
    moved, expected = _Window(Geometry(kernel=kernel, stride=stride, pad=pad)).move(f), f.apply(kernel, stride, pad)
    assert moved == expected and _numbers(moved) == _numbers(expected)


@settings(max_examples=300)
@given(st.lists(_fields, min_size=2, max_size=4))
def test_uniting_fields_in_integers_is_the_general_rule(fields: list[Field]) -> None:
    assume(len(set(fields)) > 1)  # a field united with itself is returned as it is
    united, expected = union(fields), _union_general(fields)
    assert united == expected and _numbers(united) == _numbers(expected)

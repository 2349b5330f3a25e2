"""Calls as values and names with indices: a call without input tensors is a layer value
(`act=leaky(0.1)`), a label may hold the loop index (`as denselayer{i + 1}`) and may follow a call
in expression position, a list of tensors concatenates, a size read from a tensor stays tied to it;
elaboration reports every independent error, each with the block calls it happened in."""

from __future__ import annotations

from typing import Any

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError


def net(src: str, name: str | None = None, **params: object) -> api.Network:
    return api.load_string(src, "t.arch").network(name, params or None)


def errors(src: str) -> list[Any]:
    with pytest.raises(ArchError) as info:
        net(src)
    return info.value.diagnostics


CBA = "block cba(c, k, act=relu) { in -> conv(c, k, bias=false) -> bn -> act }\n"


# --- layer values ----------------------------------------------------------------------------

def test_an_op_with_arguments_passed_as_a_value() -> None:
    n = net(CBA + "network t { input x: 3x8x8 \n x -> cba(4, 3, act=leaky(0.1)) }")
    (leaky,) = [node for node in n.ir.nodes("op") if node.op == "leaky"]
    assert leaky.attrs.slope == 0.1  # type: ignore[union-attr]
    assert leaky.name == "cba.leaky"


def test_a_layer_value_in_a_variable_is_applied_at_each_use() -> None:
    n = net("network t { input x: 3x8x8 \n act = leaky(0.2) \n x -> conv(4, 3) -> act -> conv(4, 3) -> act }")
    assert [node.name for node in n.ir.nodes("op") if node.op == "leaky"] == ["leaky", "leaky_1"]


def test_a_layer_value_takes_more_arguments_where_applied() -> None:
    n = net("network t { input x: 3x8x8 \n down = conv(8, 3) \n x -> down(stride=2) as c }")
    node = n.ir.node("c")
    assert node.attrs.stride == (2, 2) and node.out_shapes == ((8, 4, 4),)  # type: ignore[union-attr]


def test_a_block_with_arguments_as_a_value() -> None:
    src = CBA + """
    block stage(unit, n) { in -> repeat n: unit }
    network t { input x: 3x8x8 \n x -> stage(unit=cba(8, 3, act=relu6), n=2) }"""
    assert [n.op for n in net(src).ir.nodes("op")] == ["conv", "bn", "relu6"] * 2


def test_a_layer_value_as_a_parameter_or_variant_argument() -> None:
    src = CBA + """
    network t(act=relu) { input x: 3x8x8 \n x -> cba(4, 3, act=act) }
    network t_leaky = t(act=leaky(0.1))"""
    assert [n.op for n in net(src, "t_leaky").ir.nodes("op")][-1] == "leaky"
    n = net(src, "t", act="hswish")  # --set act=hswish
    assert [x.op for x in n.ir.nodes("op")][-1] == "hswish"
    assert net(src, "t", act="leaky(0.3)").analyze().parameters["act"] == "leaky(0.3)"


def test_an_argument_given_twice_through_a_layer_value() -> None:
    (d,) = errors("network t { input x: 3x8x8 \n act = leaky(slope=0.1) \n x -> act(slope=0.2) }")
    assert d.code == "E0516" and "`leaky(slope=0.1)` sets it already" in (d.hint or "")


# --- labels ----------------------------------------------------------------------------------

def test_a_label_with_the_loop_index() -> None:
    n = net("network t { input x: 3x8x8 \n y = x \n"
            " repeat 3 as i { y = y -> conv(3, 3) as head.conv{i}.{2 * i + 1} } \n y }")
    assert [node.name for node in n.ir.nodes("op")] == ["head.conv0.1", "head.conv1.3", "head.conv2.5"]


def test_a_repeat_label_with_an_offset_names_each_iteration() -> None:
    n = net("network t { input x: 3x8x8 \n x -> repeat 2 as i { conv(3, 3) as conv -> relu } as layer{i + 1} }")
    assert [node.name for node in n.ir.nodes("op")] == ["layer1.conv", "layer1.relu", "layer2.conv", "layer2.relu"]


def test_a_label_on_a_call_in_expression_position() -> None:
    src = """
    block up(c) inputs(small, big) { big + (small -> conv(c, 1) -> upsample(2)) }
    network t {
        input x: 8x8x8
        s4 = x -> conv(8, 3, stride=2) as down
        y = up(s4, x, c=8) as up4
        a, b = split(y, 2) as halves
        output z = concat(a, b) as joined
    }"""
    names = [node.name for node in net(src).ir.nodes("op")]
    assert names == ["down", "up4.conv", "up4.upsample", "up4.add", "halves", "joined"]


def test_densenet_layers_named_as_torchvision() -> None:
    """`features.denseblock1.denselayer{i + 1}` and concat over the list of every earlier output:
    torchvision's DenseNet-121 first block, loaded by name, computes the same."""
    torch = pytest.importorskip("torch")
    tvm = pytest.importorskip("torchvision.models")
    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    src = """
    block dense_layer(growth, bn_size=4) {
        in -> bn as norm1 -> relu as relu1 -> conv(bn_size * growth, 1, bias=false) as conv1
           -> bn as norm2 -> relu as relu2 -> conv(growth, 3, bias=false) as conv2
    }
    network block1(growth=32, layers=6) {
        input x: 64x16x16
        feats = [x]
        repeat layers as i {
            feats = feats + [concat(feats) -> dense_layer(growth) as features.denseblock1.denselayer{i + 1}]
        }
        output y = concat(feats)
    }"""
    n = net(src)
    reference = tvm.densenet121(weights=None).features.denseblock1.eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, t in reference.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if "running_var" in k else
                        torch.randn(t.shape, generator=gen) * 0.1)
    module = build_module(n).eval()
    assert load_weights(module, {f"features.denseblock1.{k}": v for k, v in reference.state_dict().items()}) == "name"
    x = torch.randn(2, 64, 16, 16, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), rtol=1e-5, atol=1e-5)
    assert n.analyze().params == sum(p.numel() for p in reference.parameters())


TABLE = """
block unit(c) {{ in -> conv(c, 3) as conv }}
network t {{
    input x: 4x8x8
    x -> stages(stage, c, n) as {label} {{
            2, 4, 2
            {third}, 8, 1
         }} repeat n as i: unit(c + 0 * i)
}}"""


def test_a_stage_table_label_reading_a_column_names_each_row() -> None:
    """ShuffleNet V2's Table 5 counts its stages from 2, as torchvision's `stage2` … `stage4`: a table
    label reading a column names each row by its own label, as `as denselayer{i + 1}` each iteration."""
    n = net(TABLE.format(label="stage{stage}", third=4))
    assert [node.name for node in n.ir.nodes("op")] == ["stage2.0.conv", "stage2.1.conv", "stage4.0.conv"]
    n = net(TABLE.format(label="layer", third=4))  # a plain name still counts the rows from 1
    assert [node.name for node in n.ir.nodes("op")] == ["layer1.0.conv", "layer1.1.conv", "layer2.0.conv"]


def test_two_rows_labelled_alike_point_at_the_second() -> None:
    (d,) = errors(TABLE.format(label="stage{stage}", third=2))
    assert d.code == "E0404" and d.message == "the name `stage2` is already used in `t`" and d.span.line == 7
    (d,) = errors(TABLE.format(label="a.stage", third=4))
    assert d.code == "E0414" and "reading a column names each row by its own" in d.hint


def test_numeric_and_keyword_labels_compile_as_torch_registers_them() -> None:
    torch = pytest.importorskip("torch")
    from archdsl.compiler.backends.torch_codegen import build_module

    n = net("network t { input x: 3x8x8 \n x -> conv(4, 3) as 0 -> relu as 1 -> conv(4, 1) as class }")
    assert n.spec.check() == []
    module = build_module(n)
    assert list(module.state_dict()) == ["0.weight", "0.bias", "class.weight", "class.bias"]
    assert module(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


# --- lists of tensors, sizes from tensors, builtins --------------------------------------------

def test_concat_of_a_list_of_tensors() -> None:
    n = net("network t { input x: 3x8x8 \n feats = [x, x -> conv(5, 1), x -> conv(7, 1)] \n concat(feats) }")
    assert n.output_shapes == {"output": (15, 8, 8)}
    (d,) = errors("network t { input x: 3x8x8 \n concat([x, 3]) }")
    assert d.code == "E0302" and "a list of tensors holds the number 3" in d.message


def test_size_read_from_a_tensor_becomes_that_tensor() -> None:
    n = net("network t { input x: 4x9x9 \n s = x -> conv(4, 3, stride=2) \n"
            " output y = upsample(s, size=[x.h, x.w]) \n output z = upsample(s, size=[x.h, 9]) }")
    ups = [node for node in n.ir.nodes("op") if node.op == "upsample"]
    assert [len(u.inputs) for u in ups] == [2, 1]  # `x.h` with a literal 9 is just a number
    assert n.output_shapes == {"y": (4, 9, 9), "z": (4, 9, 9)}


@pytest.mark.parametrize(("expr", "value"), [("log(100, 10)", 2.0), ("round(exp(log(20)))", 20),
                                             ("ceil(log(48 / 24) / log(2.5))", 1)])
def test_log_and_exp(expr: str, value: float) -> None:
    assert net(f"network t {{ k = {expr} \n input x: 3x8x8 \n x }}").variables["k"] == pytest.approx(value)


@pytest.mark.parametrize("expr", ["log(0)", "log(-2)", "log(4, 1)", "exp(1000)", "log(x)"])
def test_log_and_exp_edges_are_diagnostics(expr: str) -> None:
    (d,) = errors(f"network t {{ input x: 3x8x8 \n k = {expr} \n x }}")
    assert d.code == "E0515" and "Traceback" not in d.message


# --- several errors, call chains ----------------------------------------------------------------

def test_independent_errors_are_all_reported_once() -> None:
    src = """
    block unit(c) { in -> conv(c, 3, groups=7) }
    network t {
        input x: 3x8x8
        a = x -> unit(8) -> unit(8)
        b = x -> maxpool(20)
        c = a + b
        d = x -> dropout(2)
        repeat 3 { e = x -> unit(8) }
        output y = c
    }"""
    found = [(d.code, d.span.line) for d in errors(src)]
    assert found == [("E0305", 2), ("E0305", 6), ("E0303", 8)]


def test_call_notes_follow_the_chain() -> None:
    src = """
    block inner(c) { in -> conv(c, 3, groups=5) }
    block outer(c) { in -> inner(c) }
    network t { input x: 3x8x8 \n x -> outer(10) }"""
    (d,) = errors(src)
    assert d.notes == ("in block `inner`, called at t.arch:3:28", "in block `outer`, called at t.arch:5:7")

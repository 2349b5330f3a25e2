"""The language's semantics, each on a small inline spec: chains, naming, blocks, repeats, stage
tables, conditionals, variants, overrides, imports, several inputs and outputs, builtins."""

from __future__ import annotations

from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError
from archdsl.functions import make_divisible


def net(src: str, name: str | None = None, **params: object) -> api.Network:
    return api.load_string(src, "t.arch").network(name, params or None)


def names(n: api.Network) -> list[str]:
    return [x.name for x in n.ir.nodes("op")]


def test_chain_and_auto_names() -> None:
    n = net("network t { input x: 3x8x8 \n x -> conv(4, 3) -> relu -> conv(4, 3) -> relu }")
    assert names(n) == ["conv", "relu", "conv_1", "relu_1"]
    assert n.output_shapes == {"output": (4, 8, 8)}


def test_labels_and_dotted_labels() -> None:
    n = net("network t { input x: 3x8x8 \n x -> conv(4, 3) as features.0 -> bn as features.1 -> output y }")
    assert names(n) == ["features.0", "features.1"]
    assert n.output_shapes == {"y": (4, 8, 8)}


def test_block_scope_and_shape_queries() -> None:
    src = """
    block res(c) {
        y = in -> conv(c, 3) as a -> relu
        if in.channels == c { in + y } else { y }
    }
    network t { input x: 4x8x8 \n x -> res(4) -> res(8) as second }
    """
    n = net(src)
    assert names(n) == ["res.a", "res.relu", "res.add", "second.a", "second.relu"]
    assert n.ir.scopes[("res",)].title == "res(c=4)"


def test_repeat_and_stage_table_naming_mirrors_torchvision() -> None:
    src = """
    block unit(c, stride) { in -> conv(c, 3, stride=stride) as conv1 }
    network t {
        input x: 3x32x32
        x -> stages(c, n, s) as layer {
                8, 2, 1
               16, 3, 2
             } repeat n as i: unit(c, stride=(i == 0 ? s : 1))
    }
    """
    n = net(src)
    assert names(n) == ["layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.1.conv1", "layer2.2.conv1"]
    assert n.output_shapes["output"] == (16, 16, 16)


def test_labelled_repeat_block() -> None:
    n = net("network t { input x: 2x4x4 \n x -> repeat 3 as i { conv(2 + i, 1) -> relu } as body }")
    assert names(n)[:2] == ["body.0.conv", "body.0.relu"]
    assert n.output_shapes["output"] == (4, 4, 4)


def test_conditional_step_and_ternary() -> None:
    src = "network t(e=1) { input x: 2x4x4 \n x -> if e != 1 { conv(2 * e, 1) } -> conv(e == 1 ? 3 : 5, 1) }"
    assert names(net(src)) == ["conv"]
    assert names(net(src, e=2)) == ["conv", "conv_1"]
    assert net(src, e=2).output_shapes["output"] == (5, 4, 4)


def test_split_concat_destructure() -> None:
    src = "network t { input x: 8x4x4 \n a, b = split(x, 2) \n concat(a, b -> conv(4, 1)) -> shuffle(2) }"
    assert net(src).output_shapes["output"] == (8, 4, 4)


def test_multi_input_multi_output_block() -> None:
    src = """
    block fpn(w) inputs(c3, c4) outputs(p3, p4) {
        p4 = c4 -> conv(w, 1)
        p3 = fuse(c3 -> conv(w, 1), upsample(p4, 2))
    }
    network t {
        input a: 8x16x16
        input b: 16x8x8
        r = fpn(a, b, w=4)
        output p3 = r.p3
        output p4 = r.p4
    }
    """
    n = net(src)
    assert n.output_shapes == {"p3": (4, 16, 16), "p4": (4, 8, 8)}
    assert set(n.input_shapes) == {"a", "b"}


def test_variant_and_overrides() -> None:
    src = """
    network fam(width=8, depth=1) { input x: 3x8x8 \n x -> repeat depth: conv(width, 3) }
    network small = fam(width=4)
    """
    spec = api.load_string(src, "t.arch")
    assert spec.networks == ["fam", "small"]
    assert spec.network("small").output_shapes["output"] == (4, 8, 8)
    n = spec.network("small", {"depth": "2", "width": "16"})
    assert n.output_shapes["output"] == (16, 8, 8)
    assert len(n.ir.nodes("op")) == 2
    with pytest.raises(ArchError, match="no parameter `widht`"):
        spec.network("small", {"widht": "2"})


def test_input_override() -> None:
    n = api.load_string("network t { input x: 3x8x8 \n x -> conv(2, 3, stride=2) }").network(input="3x32x32")
    assert n.output_shapes["output"] == (2, 16, 16)


def test_blocks_and_ops_as_values() -> None:
    src = """
    block a(c) { in -> conv(c, 1) }
    block b(c) { in -> conv(c, 3) -> relu }
    network t(kind=a, act=relu6) { input x: 3x8x8 \n x -> kind(4) -> act }
    """
    assert [x.op for x in net(src).ir.nodes("op")] == ["conv", "relu6"]
    assert [x.op for x in net(src, kind="b", act="silu").ir.nodes("op")] == ["conv", "relu", "silu"]


def test_statement_repeat_carries_assignments() -> None:
    src = "network t { input x: 3x8x8 \n y = x \n repeat 3 { y = y -> conv(3, 3) } \n y }"
    assert len(net(src).ir.nodes("op")) == 3


def test_numbers_and_expressions() -> None:
    src = "network t(v=25_557_032, g=4.1G, m=300M) { input x: 3x8x8 \n x }"
    assert net(src).parameters == {"v": 25_557_032, "g": 4_100_000_000, "m": 300_000_000}
    src = "network t(a=2 ** 10 // 3 % 7, b=min(3, 1, 2), c=ceil(2.1), d=not (1 < 2) or true) { input x: 3x8x8 \n x }"
    assert net(src).parameters == {"a": (2**10 // 3) % 7, "b": 1, "c": 3, "d": True}


@pytest.mark.parametrize("value", [3.2, 7.9, 12, 32 * 0.75, 96 * 1.4, 16 * 0.35, 1280 * 1.1, 5.0])
def test_divisible_matches_torchvision(value: float) -> None:
    tv = pytest.importorskip("torchvision.models._utils")
    assert make_divisible(value, 8) == tv._make_divisible(value, 8)


def test_imports_relative_and_zoo(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block two(c) { in -> conv(c, 1) -> conv(c, 1) }\n")
    (tmp_path / "main.arch").write_text(
        'import "lib.arch"\nimport common\n'
        "network t { input x: 3x8x8 \n x -> two(4) -> conv_bn_act(8, 3, act=relu6) }\n"
    )
    n = api.load(tmp_path / "main.arch").network()
    assert n.output_shapes["output"] == (8, 8, 8)


def test_import_cycle_is_an_error(tmp_path: Path) -> None:
    for a, b in (("a", "b"), ("b", "c"), ("c", "a")):
        (tmp_path / f"{a}.arch").write_text(f'import "{b}.arch"\n')
    with pytest.raises(ArchError, match=r"import cycle: a\.arch → b\.arch → c\.arch → a\.arch"):
        api.load(tmp_path / "a.arch")


def test_several_problems_reported_together() -> None:
    spec = api.load_string("network t { input x: 3x8x8 \n x -> conv(4, 3) -> rleu -> maxpol(2) }", "t.arch")
    problems = spec.check()
    assert [p.message for p in problems] == ["unknown op or block `rleu`", "unknown op or block `maxpol`"]
    assert [p.hint for p in problems] == ["did you mean `relu`?", "did you mean `maxpool`?"]


def test_shape_mismatch_names_both_operands() -> None:
    with pytest.raises(ArchError) as exc:
        net("network t { input x: 3x8x8 \n (x -> conv(4, 3)) + (x -> conv(4, 3, stride=2)) }")
    (d,) = exc.value.diagnostics
    assert "4×8×8" in d.message and "4×4×4" in d.message
    assert (d.span.line, d.span.col) == (2, 2)



def test_parse_cache_is_transparent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl import parser

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "network t { input x: 3x8x8 \n x -> conv(4, 3) }"
    first = parser.parse(text, "c.arch")
    assert list((tmp_path / "archdsl").glob("*.pickle"))
    assert parser.parse(text, "c.arch") == first == parser.parse(text, "c.arch", use_cache=False)
    changed = parser.parse(text.replace("conv(4", "conv(5"), "c.arch")
    assert changed != first


def test_stage_columns_may_hold_blocks() -> None:
    src = """
    block a(c) { in -> conv(c, 3) }
    block b(c) { in -> conv(c, 1) }
    network t {
        input image: 3x8x8
        image -> stages(op, c) {
                     a, 8
                     b, 16
                 } repeat 1 as i: op(c + i)
    }
    """
    spec = api.load_string(src, "t.arch")
    assert spec.check() == []
    assert [x.attrs.kernel for x in spec.network().ir.nodes("op")] == [(3, 3), (1, 1)]


def test_numeric_labels() -> None:
    n = net("network t { input x: 3x8x8 \n x -> conv(4, 3) as 0 -> bn as 1 }")
    assert names(n) == ["0", "1"]


def test_stage_columns_and_repeat_index_are_bound_only_inside() -> None:
    """After a table (or a repeat), its column (index) means what it meant before it — here the
    network's parameter — never the last row's value (or the last index); a row's cells see it too,
    never the row above's value."""
    src = """
    network t(c=4, i=5) {
        input x: 3x8x8
        x -> stages(c) {
                 8
             c * 4
             } conv(c, 1)
          -> repeat 2 as i: conv(c + i, 1)
          -> conv(c + i, 1) -> output y
    }
    """
    assert [node.attrs.out for node in net(src).ir.nodes("op")] == [8, 16, 4, 5, 9]


@pytest.mark.parametrize(("after", "name", "bound_at"), [
    ("conv(c, 1)", "c", "t.arch:4:14"),
    ("if flag { maxpool(2) }", "flag", "t.arch:4:14"),
    ("conv(i + 1, 1)", "i", "t.arch:6:16"),
])
def test_stage_columns_and_repeat_index_unknown_after(after: str, name: str, bound_at: str) -> None:
    src = f"""
    network t {{
        input x: 3x8x8
        x -> stages(c, flag) {{
                 8, true
             }} repeat 2 as i: conv(c + i, 1)
          -> {after}
    }}
    """
    with pytest.raises(ArchError) as exc:
        net(src)
    (d,) = exc.value.diagnostics
    assert (d.code, d.message) == ("E0401", f"unknown name `{name}`")
    assert d.hint is not None and f" at {bound_at}," in d.hint


@pytest.mark.parametrize(("call", "message"), [
    ("max(true, 8)", "bad call of `max`: `max` needs numbers, got a boolean"),
    ("min([false, 8])", "bad call of `min`: `min` needs numbers, got a boolean"),
    ("sum([true, 7])", "bad call of `sum`: `sum` needs numbers, got a boolean"),
    ("sum(7)", "bad call of `sum`: `sum` needs a list of numbers, got the number 7"),
    ("max([])", "bad call of `max`: `max` of no numbers"),
    ("cumsum([1, false])", "bad call of `cumsum`: `cumsum` needs numbers, got a boolean"),
    ("cumsum(3)", "bad call of `cumsum`: `cumsum` needs a list of numbers, got the number 3"),
])
def test_builtins_take_numbers_not_booleans(call: str, message: str) -> None:
    """`max(true, 0)` is 1 in Python: a boolean is never a number to the builtins."""
    with pytest.raises(ArchError) as exc:
        net(f"network t(n={call}) {{ input x: 3x8x8 \n x }}")
    (d,) = exc.value.diagnostics
    assert (d.code, d.message) == ("E0515", message)


def test_builtins_over_numbers_and_lists() -> None:
    src = ("network t(a=max(3, 1.5), b=min([4, 2, 8]), c=sum([1, 2.5]), d=sum([]), e=max(7), f=cumsum([2, 3, 4]), "
           "g=cumsum([]), h=[0] + cumsum([1, 2.5])) { input x: 3x8x8 \n x }")
    assert net(src).parameters == {"a": 3, "b": 2, "c": 3.5, "d": 0, "e": 7, "f": [2, 5, 9], "g": [], "h": [0, 1, 3.5]}


@pytest.mark.parametrize(("src", "message"), [
    ("block b(c, c) { in -> conv(c, 1) }\nnetwork t { input x: 3x8x8 \n x -> b(4, 8) }",
     "block `b` has two parameters or inputs named `c`"),
    ("block b(a) inputs(a, y) { a + y }\nnetwork t { input x: 3x8x8 \n b(x, x, a=1) }",
     "block `b` has two parameters or inputs named `a`"),
    ("block b() outputs(p, p) { p = in }\nnetwork t { input x: 3x8x8 \n x -> b }",
     "block `b` has two outputs named `p`"),
    ("network t(w=1, w=2) { input x: 3x8x8 \n x -> conv(w, 1) }", "network `t` has two parameters named `w`"),
    ("network t { input x: 3x8x8 \n a, a = x -> split([1, 2]) \n a }", "this statement unpacks into `a` twice"),
    ("network t { input x: 3x8x8 \n x -> stages(c, c) {\n 4, 8\n } conv(c, 1) }",
     "this stage table has two columns named `c`"),
])
def test_a_name_is_declared_once(src: str, message: str) -> None:
    """A second parameter, input, output, column or unpacked name `c` would silently shadow the first."""
    with pytest.raises(ArchError) as exc:
        api.load_string(src, "t.arch")
    (d,) = exc.value.diagnostics
    assert (d.code, d.message) == ("E0106", message)
    assert d.hint is not None and d.hint.startswith("the first is at t.arch:")


@pytest.mark.parametrize("comparison", ["flag == 0", "flag != 1", "1 == true", "[8, true] == [8, 1]", "[1, 1] == true"])
def test_a_boolean_compared_with_a_number_is_an_error(comparison: str) -> None:
    """Python counts `false == 0` and `true == 1` equal; in a spec that would read one way and mean another."""
    with pytest.raises(ArchError) as exc:
        net(f"network t(flag=false) {{ input x: 3x8x8 \n k = {comparison} \n x }}")
    (d,) = exc.value.diagnostics
    assert d.code == "E0505" and "boolean" in d.message and "number" in d.message
    assert (d.span.line, d.span.col) == (2, 6)


def test_comparisons_within_a_kind_still_hold() -> None:
    src = ("network t(flag=false, a=(flag == false), b=(2 == 2.0), c=([8, true] == [8, true]), d=(3 != \"M\")) "
           "{ input x: 3x8x8 \n x }")
    assert net(src).parameters == {"flag": False, "a": True, "b": True, "c": True, "d": True}


def test_dashed_labels_are_one_name() -> None:
    """nn.Module names may hold dashes (torchvision's RegNet adds `block1-0`): `as block1-0` is that
    one name, never the label `block1` minus 0; `->` right after a label stays an arrow."""
    n = net("network t { input x: 3x8x8 \n x -> conv(4, 3) as trunk.block1-0 -> bn as b-1->relu }")
    assert names(n) == ["trunk.block1-0", "b-1", "relu"]
    n = net("network t { input x: 3x8x8 \n x -> repeat 2 as i { conv(4, 3) as block{i + 1}-{i} } }")
    assert names(n) == ["repeat.0.block1-0", "repeat.1.block2-1"]

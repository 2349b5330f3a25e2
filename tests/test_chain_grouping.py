"""How far each chain construct reaches: every form the language accepts is pinned against the same
network written with explicit brackets, and every form that could be read two ways is an error.

A chain `a -> f -> g` binds more loosely than every operator; `as LABEL` belongs to the step just
before it; `if … { } else { }`, `repeat n { }` and a stage table's braced row steps end at their
brace; `repeat n: step` and a stage table's `} step` take exactly one step, and a `->` after that
step continues the enclosing chain only from a new line, left of the step (else E0103).
"""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError
from archdsl.ir import IR

BLOCKS = """
block unit(c, stride=1) { in -> conv(c, 3, stride=stride) as conv1 -> relu }
"""


def build(body: str, params: str = "(e=true)") -> IR:
    src = f"{BLOCKS}\nnetwork t{params} {{\n    input x: 4x16x16\n    y = x -> conv(4, 1)\n{body}\n}}\n"
    return api.load_string(src, "t.arch").network("t").ir


def signature(ir: IR) -> list[tuple[object, ...]]:
    """Everything that makes two IRs the same network: nodes with their names, ops, attributes,
    inputs and shapes, and the scopes with their titles."""
    nodes = [(n.name, n.kind, n.op, n.attrs, n.inputs, n.out_shapes, n.scope, n.output_name) for n in ir]
    scopes = sorted((path, info.kind, info.title) for path, info in ir.scopes.items())
    return [*nodes, *scopes]


TABLE = """stages(c, s) as layer {
            8, 1
            16, 2
        }"""

# (what it pins, as written, with explicit brackets)
SAME: dict[str, tuple[str, str]] = {
    "a sum feeds the chain": ("    x + y -> relu", "    (x + y) -> relu"),
    "a scaled residual feeds the chain": ("    0.5 * y + x -> relu", "    ((0.5 * y) + x) -> relu"),
    "a chain in an argument ends at the comma": (
        "    concat(x -> conv(4, 1), y)", "    concat((x -> conv(4, 1)), y)"),
    "a label belongs to the call before it": (
        "    x -> conv(4, 3) as c1 -> relu", "    x -> (conv(4, 3) as c1) -> relu"),
    "a label after the repeated step labels that step, in each repetition": (
        "    x -> repeat 2: conv(4, 3) as c", "    x -> repeat 2 { conv(4, 3) as c }"),
    "a label after a braced repeat labels the repeat": (
        "    x -> repeat 2 { conv(4, 3) } as r -> relu", "    x -> (repeat 2 { conv(4, 3) } as r) -> relu"),
    "a label after a table's row step labels the step, in each row": (
        f"    x -> {TABLE} unit(c, stride=s) as u", f"    x -> {TABLE} {{ unit(c, stride=s) as u }}"),
    "a step after a braced repeat runs once": (
        "    x -> repeat 2 { conv(4, 3) } -> relu", "    (x -> repeat 2 { conv(4, 3) }) -> relu"),
    "`repeat n: step` takes one step; a `->` on the next line, left of it, runs once": (
        "    x -> repeat 2: conv(4, 3)\n      -> relu", "    (x -> repeat 2 { conv(4, 3) }) -> relu"),
    "`repeat n: repeat m: step` nests": (
        "    x -> repeat 2: repeat 3: relu", "    x -> repeat 2 { repeat 3 { relu } }"),
    "a table's row step is one step; a `->` on the next line, left of it, runs once after the table": (
        f"    x -> {TABLE} unit(c, stride=s)\n      -> relu", f"    (x -> {TABLE} {{ unit(c, stride=s) }}) -> relu"),
    "a table's braced row steps all run per row": (
        f"    x -> {TABLE} {{ unit(c, stride=s) -> relu }}", f"    x -> {TABLE} (unit(c, stride=s) -> relu)"),
    "a table's row step may be a repeat; the next line continues after the table": (
        f"    x -> {TABLE} repeat 2 as i: unit(c, stride=(i == 0 ? s : 1))\n      -> relu",
        f"    (x -> {TABLE} {{ repeat 2 as i {{ unit(c, stride=(i == 0 ? s : 1)) }} }}) -> relu"),
    "a step after an `if` step runs after either branch": (
        "    x -> if e { conv(8, 1) } else { relu } -> conv(4, 1)",
        "    (x -> if e { conv(8, 1) } else { relu }) -> conv(4, 1)"),
    "an `if` step without `else` passes the value through": (
        "    x -> if not e { conv(8, 1) } -> relu", "    x -> relu"),
    "an `if` expression heads a chain as a whole": (
        "    if e { x } else { y } -> relu", "    (if e { x } else { y }) -> relu"),
    "a bracketed conditional heads a chain as a whole": (
        "    (e ? x : y) -> relu", "    (if e { x } else { y }) -> relu"),
    "`output NAME` passes the value on": (
        "    x -> relu -> output features -> conv(4, 1)",
        "    f = x -> relu\n    output features = f\n    f -> conv(4, 1)"),
    "`expect` lines after the last expression leave it the output": (
        "    x -> relu\n    expect params == 20", "    output output = x -> relu\n    expect params == 20"),
}


@pytest.mark.parametrize("what", sorted(SAME))
def test_meaning_equals_bracketed(what: str) -> None:
    written, bracketed = SAME[what]
    assert signature(build(written)) == signature(build(bracketed))


def test_pins_can_fail() -> None:
    """The comparison sees a step moved in or out of a repeat, a table row or a label."""
    assert signature(build("    x -> repeat 2 { conv(4, 3) } -> relu")) \
        != signature(build("    x -> repeat 2 { conv(4, 3) -> relu }"))
    assert signature(build(f"    x -> {TABLE} {{ unit(c, stride=s) -> relu }}")) \
        != signature(build(f"    (x -> {TABLE} {{ unit(c, stride=s) }}) -> relu"))
    assert signature(build("    x -> conv(4, 3) as c1 -> relu")) != signature(build("    x -> conv(4, 3) -> relu"))


def test_per_row_steps_run_per_row() -> None:
    """`} { a -> b }` runs both steps for every row (the issue's `conv -> relu -> res` chain)."""
    ir = build(f"    x -> {TABLE} {{ conv(c, 3, stride=s) -> relu }}")
    assert [n.name for n in ir.nodes("op")][1:] == ["layer1.conv", "layer1.relu", "layer2.conv", "layer2.relu"]


# (what is refused, the source, the code)
AMBIGUOUS: dict[str, tuple[str, str]] = {
    "a table's row step followed by `->` on its line": (
        f"    x -> {TABLE} conv(c, 3, stride=s) -> relu", "E0103"),
    "a table's row step followed by `->` indented under it": (
        f"    x -> {TABLE} conv(c, 3, stride=s)\n          -> relu", "E0103"),
    "`repeat n: step` followed by `->` on its line": ("    x -> repeat 2: conv(4, 3) -> relu", "E0103"),
    "`repeat n: step` in brackets followed by `->` on its line": (
        "    x -> (repeat 2: conv(4, 3) -> relu)", "E0103"),
    "`repeat n: step` in an `if` branch followed by `->`": (
        "    x -> if e { repeat 2: conv(4, 3) -> relu }", "E0103"),
    "a table's repeat row step followed by `->` on its line": (
        f"    x -> {TABLE} repeat 2: unit(c) -> relu", "E0103"),
    "a conditional heading a chain": ("    e ? x : y -> relu", "E0104"),
    "a conditional heading a chain inside brackets": ("    (e ? x : y -> relu)", "E0104"),
    "an unused loop variable (a label meant?)": ("    x -> repeat 2 as blocks { conv(4, 3) }", "E0105"),
    "an unused loop variable of a repeat statement": ("    z = x\n    repeat 2 as k { z = z -> relu }\n    z", "E0105"),
}


@pytest.mark.parametrize("what", sorted(AMBIGUOUS))
def test_ambiguous_form_is_an_error(what: str) -> None:
    body, code = AMBIGUOUS[what]
    with pytest.raises(ArchError) as info:
        build(body)
    assert [d.code for d in info.value.diagnostics] == [code]


def test_loop_variable_read_in_a_label_is_used() -> None:
    ir = build("    x -> repeat 2 as i { conv(4, 3) as layer{i + 1} }")
    assert [n.name for n in ir.nodes("op")][1:] == ["repeat.0.layer1", "repeat.1.layer2"]

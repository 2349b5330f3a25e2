"""`repeat n as i, j of blocks` after a stage table's rows: `j` numbers the blocks of the whole table
from 0, `blocks` counts them (the rows' counts summed) — torchvision's EfficientNet's
`stage_block_id` and `total_stage_blocks`, which its stochastic-depth schedule reads."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError


def outs(src: str) -> list[int]:
    """The output channels of every conv, in order."""
    return [node.attrs.out for node in api.load_string(src, "t.arch").network().ir.nodes("op")
            if node.op == "conv"]


def problem(src: str) -> tuple[str, str, int, int, str]:
    with pytest.raises(ArchError) as exc:
        api.load_string(src, "t.arch").network()
    d = exc.value.diagnostics[0]
    return d.code, d.message, d.span.line, d.span.col, d.hint or ""


TABLE = """
network t(depth=1.5) {{
    input x: 3x8x8
    x -> stages(c, n) as layer {{
            10, 1
            20, 0
            30, 2
         }} {step}
}}
"""


def test_the_index_runs_across_rows_and_the_total_sums_their_counts() -> None:
    # counts ceil(1 * 1.5), ceil(0), ceil(2 * 1.5): 2, 0, 3 blocks, 5 in all
    src = TABLE.format(step="repeat ceil(n * depth) as i, j of blocks: conv(1000 * blocks + 100 * j + c + i, 1)")
    assert outs(src) == [5010, 5111, 5230, 5331, 5432]


def test_the_braced_row_repeat_counts_too_and_labels_may_use_the_index() -> None:
    src = TABLE.format(step="repeat n as i, j of total { conv(c + j, 1) as conv{j} -> relu }")
    n = api.load_string(src, "t.arch").network()
    convs = [x.name for x in n.ir.nodes("op") if x.op == "conv"]
    assert convs == ["layer1.0.conv0", "layer3.0.conv1", "layer3.1.conv2"]
    assert outs(src) == [10, 31, 32]


def test_the_rows_cells_and_counts_are_evaluated_once_each() -> None:
    """The total needs every row's count before the first block; a cell that builds a layer would
    show a second evaluation."""
    src = """
    network t {
        input x: 3x8x8
        x -> stages(n) {
                (x -> conv(7, 1)).channels // 7
                2
             } repeat n as i, j of blocks: conv(10 * j + blocks, 1)
    }
    """
    assert outs(src) == [7, 3, 13, 23]


@pytest.mark.parametrize(("after", "name"), [("conv(j + 1, 1)", "j"), ("conv(blocks, 1)", "blocks")])
def test_the_names_mean_nothing_after_the_table(after: str, name: str) -> None:
    src = TABLE.format(step=f"repeat n as i, j of blocks: conv(c + j + blocks + i, 1)\n      -> {after}")
    code, message, line, _, hint = problem(src)
    assert (code, message, line) == ("E0401", f"unknown name `{name}`", 9)
    assert "row repeat at t.arch:8:" in hint and "counts only in its body" in hint


def test_the_count_cannot_read_the_total() -> None:
    """A row's count is what the total sums: it cannot be read while the counts are computed."""
    code, message, *_ = problem(TABLE.format(step="repeat blocks as i, j of blocks: conv(c + j, 1)"))
    assert (code, message) == ("E0401", "unknown name `blocks`")


@pytest.mark.parametrize("step", [
    "{ repeat n as i, j of blocks: conv(c + j, 1) }",  # a repeat inside the row's steps
    "conv(c, 1) -> repeat n as i, j of blocks: conv(c + j, 1)",  # E0103 aside, not the row step
])
def test_only_a_tables_row_repeat_counts_across_rows(step: str) -> None:
    with pytest.raises(ArchError) as exc:
        api.load_string(TABLE.format(step=step), "t.arch")
    assert "E0108" in {d.code for d in exc.value.diagnostics}


def test_a_plain_repeat_has_no_table_to_count() -> None:
    src = "network t {\n    input x: 3x8x8\n    x -> repeat 3 as i, j of blocks: conv(j + 1, 1)\n}\n"
    with pytest.raises(ArchError) as exc:
        api.load_string(src, "t.arch")
    (d,) = exc.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E0108", 3, 23)
    assert d.message == ("`, j of blocks` counts the blocks of a stage table's rows, but this repeat is no "
                         "table's row step")


def test_an_unused_table_index_is_an_error() -> None:
    """A body that reads `i` and the total but not `j` most likely took `i` for the table's index."""
    with pytest.raises(ArchError) as exc:
        api.load_string(TABLE.format(step="repeat n as i, j of blocks: conv(c + i + blocks, 1)"), "t.arch")
    (d,) = exc.value.diagnostics
    assert (d.code, d.message, d.span.line, d.span.col) == ("E0105", "the table's block index `j` is never used", 8, 27)


BOTH = "`{}` is both a column of this stage table and a name of its row repeat"


@pytest.mark.parametrize(("step", "message"), [
    ("repeat n as i, i of blocks: conv(c + i, 1)", "this repeat names `i` twice"),
    ("repeat n as i, j of j: conv(c + j, 1)", "this repeat names `j` twice"),
    ("repeat n as i, j of n: conv(c + j, 1)", BOTH.format("n")),
    ("repeat n as i, c of blocks: conv(c + 1, 1)", BOTH.format("c")),
])
def test_each_name_is_declared_once(step: str, message: str) -> None:
    with pytest.raises(ArchError) as exc:
        api.load_string(TABLE.format(step=step), "t.arch")
    (d,) = exc.value.diagnostics
    assert (d.code, d.message) == ("E0106", message)


def test_of_is_still_a_name_elsewhere() -> None:
    assert outs("network t(of=4) {\n    input x: 3x8x8\n    x -> conv(of, 1)\n}\n") == [4]

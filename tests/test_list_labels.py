"""`as L[]`: the labelled layer, block instance, stage-table row or repeat iteration is the next entry
of the numbered list `L` — torchvision's `layers.append(…)` then `nn.Sequential(*layers)`.

The rules, each pinned here:
- the list is `L` in the scope the enclosing block or network sets, or a labelled stage-table row or
  repeat iteration; unlabelled tables and repeats add no scope of their own to it, so appends from
  every row and iteration number one flat list;
- indices count 0, 1, 2 … per list, in the order the entries are made (an `if` that skips a step
  shifts the ones after it);
- on a stage table (`stages(…) as L[]`) each row is one entry, on a repeat each iteration;
- a list's entries are named one way: `L[]` and an explicit `L.3` under the same `L` are an error
  (E0415), as is `[]` anywhere but at a label's end, on an `init` target or on a shared instance
  (E0107).
"""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError

BLOCKS = """
block unit(c, expand) {
    in -> if expand != 1 { conv(c, 1) as block[] } -> conv(c, 3) as block[] -> relu as block[]
}
"""


def layers(body: str, blocks: str = BLOCKS) -> list[str]:
    src = f"{blocks}\nnetwork t {{\n    input x: 4x16x16\n{body}\n}}\n"
    return [n.name for n in api.load_string(src, "t.arch").network("t").ir.nodes("op")]


def scopes(body: str) -> list[str]:
    src = f"{BLOCKS}\nnetwork t {{\n    input x: 4x16x16\n{body}\n}}\n"
    return [".".join(p) for p in api.load_string(src, "t.arch").network("t").ir.scopes]


def fails(body: str, blocks: str = BLOCKS) -> tuple[str, str]:
    with pytest.raises(ArchError) as info:
        layers(body, blocks)
    d = info.value.diagnostics[0]
    return d.code, d.message


def test_entries_count_from_zero_in_the_order_they_are_made() -> None:
    assert layers("    x -> conv(4, 3) as f[] -> relu as f[] -> conv(4, 1) as head -> relu as f[] -> output y") == [
        "f.0", "f.1", "head", "f.2"]


def test_a_skipped_step_shifts_the_indices_after_it() -> None:
    """As torchvision's `if expand_ratio != 1: layers.append(…)`: the depthwise conv is `block.1` after
    an expansion, `block.0` without one."""
    got = layers("    x -> unit(4, 6) as a -> unit(4, 1) as b -> output y")
    assert got == ["a.block.0", "a.block.1", "a.block.2", "b.block.0", "b.block.1"]


def test_unlabelled_tables_and_repeats_number_one_flat_list() -> None:
    """MobileNetV2's `features`: the stem, every block of every row, the head — one list."""
    body = """    x -> conv(4, 3) as features[]
      -> stages(t, n) {
            1, 1
            6, 2
         } repeat n as i: unit(4, t + 0 * i) as features[]
      -> conv(8, 1) as features[] -> output y"""
    assert layers(body) == ["features.0", "features.1.block.0", "features.1.block.1",
                            "features.2.block.0", "features.2.block.1", "features.2.block.2",
                            "features.3.block.0", "features.3.block.1", "features.3.block.2", "features.4"]
    # rows and iterations all of whose layers went into the list are no scopes of their own
    assert scopes(body) == ["features.1", "features.2", "features.3"]


def test_a_table_labelled_as_a_list_appends_one_entry_per_row() -> None:
    """EfficientNet's `features`: the stem, then one entry per row holding its blocks 0 … n-1."""
    body = """    x -> conv(4, 3) as features[]
      -> stages(t, n) as features[] {
            1, 1
            6, 2
         } repeat n as i: unit(4, t + 0 * i)
      -> output y"""
    assert layers(body) == ["features.0", "features.1.0.block.0", "features.1.0.block.1",
                            "features.2.0.block.0", "features.2.0.block.1", "features.2.0.block.2",
                            "features.2.1.block.0", "features.2.1.block.1", "features.2.1.block.2"]


def test_a_repeat_labelled_as_a_list_appends_one_entry_per_iteration() -> None:
    assert layers("    x -> conv(4, 3) as f[] -> repeat 2 { conv(4, 3) -> relu } as f[] -> output y") == [
        "f.0", "f.1.conv", "f.1.relu", "f.2.conv", "f.2.relu"]
    body = """    y = x -> conv(4, 1) as f[]
    repeat 2 {
        y = y -> conv(4, 3) -> relu
    } as f[]
    output z = y"""
    assert layers(body) == ["f.0", "f.1.conv", "f.1.relu", "f.2.conv", "f.2.relu"]


def test_statement_repeats_and_ifs_add_no_scope_either() -> None:
    body = """    y = x -> conv(4, 1) as f[]
    repeat 2 {
        y = y -> conv(4, 3) as f[]
    }
    output z = y -> if true { relu as f[] }"""
    assert layers(body) == ["f.0", "f.1", "f.2", "f.3"]


def test_a_labelled_row_or_iteration_holds_lists_of_its_own() -> None:
    assert layers("    x -> repeat 2 { conv(4, 3) as c[] -> relu as c[] } as r -> output y") == [
        "r.0.c.0", "r.0.c.1", "r.1.c.0", "r.1.c.1"]
    body = """    x -> stages(c) as layer {
            4
            8
         } { conv(c, 3) as c[] -> relu as c[] }
      -> output y"""
    assert layers(body) == ["layer1.c.0", "layer1.c.1", "layer2.c.0", "layer2.c.1"]


def test_steps_that_do_not_append_keep_their_row_scopes() -> None:
    body = """    x -> stages(c) {
            4
            8
         } { conv(c, 3) as f[] -> relu }
      -> output y"""
    assert layers(body) == ["f.0", "stage1.relu", "f.1", "stage2.relu"]


def test_lists_are_per_scope_and_per_path() -> None:
    assert layers("    x -> conv(4, 3) as a.f[] -> conv(4, 3) as b.f[] -> conv(4, 3) as a.f[] -> output y") == [
        "a.f.0", "b.f.0", "a.f.1"]


def test_a_list_is_named_one_way() -> None:
    code, message = fails("    x -> conv(4, 3) as f.0 -> conv(4, 3) as f[] -> output y")
    assert code == "E0415" and message == "`f[]` appends to `f`, which holds `f.0` named explicitly"
    code, message = fails("    x -> conv(4, 3) as f[] -> conv(4, 3) as f.1 -> output y")
    assert code == "E0415" and message.startswith("`f` is a list that `f[]` appends to: `f.1` cannot be named")
    code, _ = fails("    x -> conv(4, 3) as f[] -> conv(4, 3) as f.0 -> output y")  # taken: still E0415
    assert code == "E0415"


@pytest.mark.parametrize(("body", "message"), [
    ("    x -> conv(4, 3) as f[].conv -> output y", "`[]` ends a label"),
    ("    init conv as f[]: normal(std=0.1)\n    x -> conv(4, 3) as f[] -> output y",
     "an `init` target names layers by their path"),
    ("    x -> shared conv(4, 3) as f[] -> output y", "a shared instance is one layer"),
])
def test_brackets_only_end_the_label_of_what_is_made_once_per_place(body: str, message: str) -> None:
    code, got = fails(body)
    assert code == "E0107" and got.startswith(message)


def test_spaces_before_the_brackets_are_the_same_label() -> None:
    """`as f []` is not the label `f` and then an empty list: it appends, as `as f[]` does."""
    assert layers("    x -> conv(4, 3) as f [] -> relu as f[ ] -> output y") == ["f.0", "f.1"]


def test_brackets_in_expressions_still_index_and_make_lists() -> None:
    """`[]` fused to a name is a list label only after `as`: `xs[0]` and `[]` keep their meaning."""
    body = """    xs = [] + [x]
    y = xs[0] -> conv(4, 3) as f[]
    output z = y"""
    assert layers(body) == ["f.0"]

"""Golden diagnostics: malformed specs and exactly what `archdsl check` prints for each.

Every case is a small spec in tests/golden/ (or bytes built here, for what a text file in git
cannot hold safely: CRLF, a BOM, invalid UTF-8, NUL, a 10⁶-character line) and a file
``tests/golden/NAME.stderr`` with the full rendered diagnostics. The test runs the CLI's `main()`
in-process from the case's directory, so paths in the output are the short names a user types.
Besides the whole text, :data:`CASES` pins each case's first diagnostic (code, line, column,
message) by hand, so regenerating the goldens cannot silently move a caret.

Regenerate after a deliberate change with ``ARCHDSL_UPDATE_GOLDEN=1 python -m pytest
tests/test_golden_diagnostics.py`` and review the diff: the position and wording must be right
and helpful.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from archdsl.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = bool(os.environ.get("ARCHDSL_UPDATE_GOLDEN"))
HANG_GUARD_S = 10.0  # every case takes well under a second; 10x that is a hang


@dataclass(frozen=True)
class Case:
    code: str  # first diagnostic's code ("" when the spec is clean)
    line: int
    col: int
    message: str  # the first diagnostic's message starts with this
    argv: tuple[str, ...] = ()  # default: ("check", SPEC)
    path: str = ""  # default: NAME.arch
    rc: int = 1
    stdout: bool = False  # compare stdout with NAME.stdout too (tables, `verify` reports)


def _long_line_error() -> bytes:
    head = "network net {\n    input image: 3x32x32\n"
    return (head + '    s = "' + "a" * 15_000 + '"    image -> rleu\n}\n').encode()


# Cases whose bytes are built here and written to a temporary directory.
GENERATED: dict[str, bytes] = {
    "crlf_line_endings": b"network net {\r\n    input image: 3x32x32\r\n    image -> conv(16, 3) -> rleu\r\n}\r\n",
    "byte_order_mark": b"\xef\xbb\xbfnetwork net {\n    input image: 3x32x32\n    image -> rleu\n}\n",
    "invalid_utf8": b"network net {  # caf\xe9\n    input image: 3x32x32\n    image -> relu\n}\n",
    "nul_byte": b"network net {\n    input image: 3x32x32\n    image -> re\x00lu\n}\n",
    "line_of_a_million_chars": (
        "network net {\n    input image: 3x32x32\n    image -> relu  # " + "x" * 1_000_000 + "\n}\n").encode(),
    "long_line_error_far_right": _long_line_error(),
    "file_too_large": ("# filler\n" * 120_000).encode(),
    "deep_brackets": (
        "network net(c=" + "[" * 500 + "16" + "]" * 500 + ") {\n    input image: 3x32x32\n"
        "    image -> conv(16, 3)\n}\n").encode(),
    "long_operator_chain": (
        "network net {\n    input image: 3x32x32\n    image -> conv(" + " + ".join(["1"] * 300)
        + ", 3)\n}\n").encode(),
}

CASES: dict[str, Case] = {
    # --- syntax
    "syntax_missing_paren": Case("E0100", 3, 18, "syntax error: unclosed `(`"),
    "syntax_unclosed_brace": Case("E0100", 1, 13, "syntax error: unclosed `{`"),
    "syntax_unclosed_block_before_next": Case("E0100", 1, 15, "syntax error: unclosed `{`"),
    "syntax_unclosed_stage_table": Case("E0100", 1, 13, "syntax error: unclosed `{`"),
    "syntax_bad_character": Case("E0100", 3, 34, "syntax error: unexpected character `$`"),
    "syntax_chain_then_operator": Case("E0100", 3, 29, "syntax error: unexpected `+`"),
    "syntax_keyword_as_name": Case("E0100", 3, 5, "syntax error: `repeat` is a keyword"),
    "syntax_unterminated_string": Case("E0100", 3, 26, "syntax error: unterminated string"),
    "syntax_table_row_cells": Case("E0102", 5, 9, "this row has 3 cells but the table has 2 columns"),
    "syntax_table_row_split": Case("E0101", 4, 9, "a stage-table row spans several lines"),
    # --- chains that read two ways
    "chain_after_stage_table": Case("E0103", 9, 28, "`-> relu` after the row step of a stage table is ambiguous"),
    "chain_under_stage_row_step": Case("E0103", 8, 7, "`-> relu` after the row step of a stage table"),
    "chain_after_repeat_step": Case("E0103", 3, 51, "`-> relu` after `repeat 3: conv(…)` is ambiguous"),
    "chain_after_conditional": Case("E0104", 4, 5, "a conditional `c ? a : b` before `->` is ambiguous"),
    "repeat_unused_loop_variable": Case("E0105", 4, 26, "the loop variable `layer` is never used"),
    # a second `c` would silently shadow the first
    "duplicate_stage_column": Case("E0106", 3, 27, "this stage table has two columns named `c`"),
    "duplicate_block_parameter": Case("E0106", 1, 23, "block `unit` has two parameters or inputs named `c`"),
    "table_index_shadows_column": Case("E0106", 7, 36, "`n` is both a column of this stage table and a name of"),
    # `repeat n as i, j of blocks`: only a stage table's row repeat, and `j` must be read
    "table_index_outside_table": Case("E0108", 4, 27, "`, j of blocks` counts the blocks of a stage table's rows"),
    "table_index_unused": Case("E0105", 7, 31, "the table's block index `j` is never used"),
    # --- names
    "unknown_op": Case("E0402", 3, 39, "unknown op or block `rleu`"),
    "unknown_block": Case("E0402", 7, 27, "unknown op or block `bottleneck`"),
    "unknown_name": Case("E0401", 3, 19, "unknown name `widht`"),
    "in_outside_block": Case("E0401", 3, 5, "unknown name `in`"),
    "bad_tensor_attribute": Case("E0507", 2, 16, "tensors have no attribute `chanels`"),
    "several_problems": Case("E0402", 3, 29, "unknown op or block `rleu`"),
    # a table's columns and a repeat's index mean nothing after it, never the last row's value
    "stage_column_after_table": Case("E0401", 7, 19, "unknown name `c`"),
    "repeat_index_after_loop": Case("E0401", 4, 28, "unknown name `i`"),
    "stage_row_reads_column": Case("E0401", 5, 15, "unknown name `c`"),  # not the row above's value
    # `shape(X)`, `rf(X)`: read as an `expect` target by check as by verify, and only there
    "expect_figure_calls": Case("", 0, 0, "", rc=0),
    "figure_call_in_body": Case("E0402", 6, 12, "unknown op or block `shape`"),
    # --- attributes and arity
    "bad_attribute_name": Case("E0303", 3, 58, "`maxpool` has no attribute `strides`"),
    "bad_attribute_type": Case("E0303", 3, 26, '`conv`: bad value "yes" for `bias`'),
    "bad_attribute_range": Case("E0303", 3, 37, "`dropout`: bad value 1.5 for `p`"),
    "bad_attribute_negative": Case("E0303", 3, 19, "`conv`: bad value -16 for `out`"),
    "too_many_attributes": Case("E0301", 3, 19, "`relu` takes no attributes"),
    "too_many_positional": Case("E0301", 3, 28, "`maxpool` takes 2 positional attribute(s)"),
    "wrong_input_count": Case("E0304", 4, 13, "`conv` takes 1 input tensor(s), got 2"),
    "tensor_as_number": Case("E0304", 3, 19, "`conv` takes 1 input tensor(s), got 2"),
    "block_wrong_param_count": Case("E0521", 7, 23, "block `unit` takes 1 parameter(s), got 2"),
    "block_missing_param": Case("E0523", 7, 14, "block `unit` needs the parameter `stride`"),
    # --- shapes
    "shape_mismatch_add": Case("E0305", 5, 5, "`add`: shapes 64×112×112 and 64×224×224 do not match"),
    "shape_mismatch_add_channels": Case("E0305", 5, 5, "`add`: shapes 64×56×56 and 128×56×56 do not match"),
    "shape_mismatch_concat": Case("E0305", 5, 5, "`concat`: operand 1 is 16×32×32 but operand 2 is 16×16×16"),
    "groups_not_dividing": Case("E0305", 3, 29, "`conv`: groups=4 must divide both input channels (30)"),
    "window_larger_than_input": Case("E0305", 3, 39, "`maxpool` window 7×7 does not fit the 4×4 input"),
    "linear_before_flatten": Case("E0305", 3, 29, "`linear` on the 16×32×32 tensor: which dimension"),
    # --- ops for detection, segmentation and face networks (issue 13)
    "linear_after_global_pool": Case("E0305", 4, 48, "`linear` on the 16×1×1 tensor: which dimension"),
    "attribute_list_too_long": Case("E0303", 3, 23, "`conv`: bad value [1, 3, 3] for `kernel`: expected"),
    "reshape_wrong_size": Case("E0305", 3, 33, "`reshape`: 1024×4×4 needs 16,384 elements"),
    "reshape_with_batch": Case("E0305", 3, 61, "`deconv` expects a C×H×W tensor, got 1×1024×4×4"),
    "reshape_two_unknowns": Case("E0303", 3, 39, "`reshape`: bad value [-1, -1, 4] for `shape`"),
    "permute_with_batch": Case("E0305", 3, 11, "`permute`: 4 dimensions given for the 3-dimensional"),
    "crop_outside": Case("E0305", 4, 14, "`crop`: a 64×64 window at offset [19, 19] does not fit"),
    "crop_without_size": Case("E0305", 3, 29, "`crop` needs the size of the window"),
    "maxout_indivisible": Case("E0305", 3, 44, "`maxout`: 4,095 channels do not divide into groups of 2"),
    "maxout_misspelled": Case("E0402", 3, 44, "unknown op or block `maxot`"),
    "max_of_tensors": Case("E0515", 5, 5, "`max` works on numbers, not on a tensor 16×32×32"),
    "reorg_channels": Case("E0305", 3, 17, "`reorg`: 6 channels are not divisible by stride² = 4"),
    "layernorm_bad_dim": Case("E0305", 3, 46, "`layernorm`: dim 3 is out of range for 96×16×16"),
    "layer_scale_misspelled": Case("E0402", 4, 10, "unknown op or block `layerscale`"),
    "chained_call_not_a_builtin": Case("E0402", 4, 29, "unknown op or block `maxx`"),
    # --- imports
    "import_cycle": Case("E0202", 1, 1, "import cycle: a.arch → b.arch → c.arch → a.arch",
                         path="import_cycle/a.arch"),
    "missing_import": Case("E0201", 1, 1, "cannot find the import `blocks_that_do_not_exist`"),
    "missing_import_path": Case("E0201", 1, 1, "cannot find the import `../nowhere/blocks.arch`"),
    # --- limits
    "recursion_self": Case("E0519", 2, 25, "blocks nested deeper than 64 (does `forever` instantiate itself?)"),
    "recursion_mutual": Case("E0519", 6, 19, "blocks nested deeper than 64 (does `ping` instantiate itself?)"),
    "repeat_huge": Case("E0511", 3, 21, "repeat count 1000000000 exceeds the limit of 10000"),
    "repeat_negative": Case("E0510", 3, 21, "a repeat count cannot be negative (-2)"),
    "repeat_float": Case("E0510", 3, 21, "a repeat count must be an integer, got the number 4.5"),
    "repeat_nested_runaway": Case("E0526", 3, 25, "elaboration takes more than 250,000 steps"),
    "power_tower": Case("E0503", 1, 15, "`2 ** 18446744073709551616` is too large (over 256 bits)"),
    "huge_input": Case("E0307", 2, 5, "input `image` would hold 120,000,000,000 elements per sample"),
    "huge_kernel": Case("E0307", 3, 28, "`conv` would hold 80,000,000,001,000 parameters"),
    "huge_activation": Case("E0307", 3, 14, "the output of `conv` would hold 16,777,216,000,000 elements"),
    "division_by_zero": Case("E0504", 3, 19, "division by zero"),
    "round_huge_digits": Case("E0515", 3, 19, "bad call of `round`: the number of digits must be"),
    # --- numbers at the edges of the float range
    "number_literal_overflow": Case("E0503", 3, 34, "number literal too large"),
    "number_literal_underflow": Case("E0503", 3, 34, "number literal too small: it would be 0"),
    "expect_huge_literal": Case("E0503", 4, 22, "number literal too large"),
    "attribute_too_large": Case("E0303", 3, 37, "`upsample`: bad value 1e+308 for `scale`: too large"),
    # Analysis would be exact (out = 1), but PyTorch holds no such stride (`conv2d(): argument
    # 'stride' failed to unpack`): refused where the spec says it, not when the module is built.
    "attribute_beyond_int64": Case("E0303", 3, 19,
                                   "`conv`: bad value 1180591620717411303424 for `out`: beyond PyTorch's 64-bit"),
    "attribute_window_beyond_int32": Case("E0303", 4, 25, "`maxpool`: bad value [1, 2147483648] for `stride`: "
                                          "expected a positive integer or [h, w], each at most 2147483647"),
    "nan_spelled_out": Case("E0401", 3, 36, "unknown name `nan`: a spec has no infinite or undefined numbers"),
    "inf_spelled_out": Case("E0401", 3, 34, "unknown name `inf`: a spec has no infinite or undefined numbers"),
    "arithmetic_overflow": Case("E0503", 3, 13, "arithmetic overflow: the result is beyond the largest float"),
    "tolerance_overflow": Case("E0503", 4, 31, "the tolerance overflows: 50% of 1e+308 is beyond the largest float"),
    "tolerance_not_a_number": Case("E0528", 4, 29, 'a tolerance must be a number, not the string "1%"'),
    "list_doubling": Case("E0501", 3, 25, "list too long (131,072 items; the limit is 100,000)"),
    "too_many_nodes": Case("E0518", 3, 39, "the network exceeds 5000 nodes"),
    # --- definitions and values
    "duplicate_label": Case("E0404", 3, 46, "the name `conv1` is already used in `net`"),
    "list_label_mixed": Case("E0415", 2, 55, "`unit.block` is a list that `block[]` appends to"),
    "list_label_not_last": Case("E0107", 3, 37, "`[]` ends a label"),
    "duplicate_definition": Case("E0204", 5, 1, "`unit` is defined twice in this file"),
    "duplicate_output": Case("E0413", 4, 22, "output `features` is declared twice"),
    "block_without_output": Case("E0524", 2, 5, "block `head` produces no tensor (its last statement is an assign"),
    "block_ends_in_assignment": Case("E0524", 2, 5, "block `unit` produces no tensor (its last statement is an assign"),
    "block_if_without_else": Case("E0524", 2, 5, "block `b` produces no tensor (its last statement is an `if` without"),
    "block_output_never_assigned": Case("E0525", 1, 26, "block `pair` declares output `b` but never assigns it"),
    "network_without_input": Case("E0407", 1, 1, "network `net` declares no input"),
    "network_without_output": Case("E0408", 3, 5, "network `net` has no output (its last statement is an assign"),
    "network_ends_in_assignment": Case("E0408", 3, 5, "network `net` has no output (its last statement is an assi"),
    "network_output_before_expect": Case("", 0, 0, "", argv=("verify", "network_output_before_expect.arch"), rc=0,
                                         stdout=True),
    "variant_of_unknown_network": Case("E0402", 6, 20, "unknown network `resent`"),
    "variant_unknown_parameter": Case("E0405", 6, 27, "network `resnet` has no parameter `layer`"),
    "destructure_count": Case("E0410", 3, 5, "2 values to unpack into 3 names"),
    "tensor_in_condition": Case("E0506", 3, 17, "a tensor 3×32×32 cannot be used as a condition"),
    # `false == 0` holds in Python; in a spec it would hold (or fail) by accident: a type error
    "compare_boolean_with_number": Case("E0505", 4, 5, "`==` between a boolean and the number 1"),
    "expect_boolean_against_number": Case("E0505", 5, 5, "`==` between a boolean and the number 0: wide is false",
                                          argv=("verify", "expect_boolean_against_number.arch"), stdout=True),
    "tensor_minus_number": Case("E0502", 3, 5, "`-` between a tensor 3×32×32 and the number 1"),
    "tensor_as_repeat_count": Case("E0510", 3, 21, "a repeat count must be an integer, got a tensor 3×32×32"),
    "number_chained": Case("E0509", 3, 14, "`->` feeds the number 16 into a call; it needs a tensor"),
    "index_out_of_range": Case("E0508", 3, 28, "index 2 is out of range for 2 items"),
    "empty_file": Case("", 0, 0, "", rc=0),
    # --- command line
    "set_unknown_key": Case("E0405", 1, 1, "network `net` has no parameter `depht`",
                            argv=("analyze", "set_unknown_key.arch", "--set", "depht=3")),
    "set_bad_value": Case("E0605", 1, 1, "bad --set value `((`: not an expression",
                          argv=("analyze", "set_bad_value.arch", "--set", "width=((")),
    "set_number_too_large": Case("E0503", 1, 1, "number literal too large",
                                 argv=("analyze", "set_number_too_large.arch", "--set", "width=1e400")),
    "net_not_found": Case("E0601", 1, 1, "no network `resnet19` in net_not_found.arch",
                          argv=("analyze", "net_not_found.arch", "--net", "resnet19")),
    "compile_blocks_only": Case(
        "E0602", 1, 1, "compile_blocks_only.arch has no network to compile: it defines only blocks (conv_relu, pair)",
        argv=("compile", "compile_blocks_only.arch", "-o", "-")),
    "compile_families_without_defaults": Case(
        "E0602", 1, 1, "compile_families_without_defaults.arch has no network that builds without arguments",
        argv=("compile", "compile_families_without_defaults.arch", "-o", "-")),
    # --- text encoding and layout
    "tabs": Case("E0402", 3, 26, "unknown op or block `rleu`"),
    "unicode_before_error": Case("E0301", 4, 34, "`relu` takes no attributes"),
    "crlf_line_endings": Case("E0402", 3, 29, "unknown op or block `rleu`"),
    "byte_order_mark": Case("E0402", 3, 14, "unknown op or block `rleu`"),
    "invalid_utf8": Case("E0004", 1, 21, "invalid UTF-8 byte 0xe9"),
    "nul_byte": Case("E0002", 3, 16, "NUL byte in source"),
    "line_of_a_million_chars": Case("E0006", 3, 20_001, "line 3 is 1,000,021 characters long"),
    "long_line_error_far_right": Case("E0402", 3, 15_024, "unknown op or block `rleu`"),
    "file_too_large": Case("E0001", 1, 1, "file is too large (1,080,000 characters; the limit is 1,000,000)"),
    "deep_brackets": Case("E0003", 1, 111, "expression nested too deeply (more than 100 levels)"),
    "long_operator_chain": Case("E0003", 3, 19, "expression nested too deeply (more than 100 levels)"),
    # --- errors in blocks, several errors, what check and compile agree on
    "imported_block_error": Case("E0303", 3, 40, "`bn`: bad value -1 for `eps`",
                                 path="imported_block_error/main.arch"),
    "independent_errors": Case("E0305", 4, 21, "`conv`: groups=5 must divide both input channels (3)"),
    "reserved_label": Case("E0701", 3, 46, "'forward' cannot name a PyTorch submodule"),
    "unknown_name_builtins": Case("E0401", 3, 25, "unknown name `quantized_width`"),
    "concat_attribute_hint": Case("E0301", 4, 22, "`concat` takes 0 positional attribute(s)"),
    # --- labels
    "label_with_loop_name": Case("E0404", 5, 18, "the name `i` is already used in `cls_head`"),
    "label_index_not_a_name": Case("E0531", 5, 39, "a label's `{…}` must give a whole number or a name"),
    "label_on_builtin": Case("E0531", 3, 9, "`ceil` computes a number; a label names a layer"),
    # --- layer values and shared instances
    "layer_value_unused": Case("E0538", 6, 5, "this statement builds nothing: `conv(16, 3)`"),
    "shared_channels": Case("E0537", 8, 22, "the shared instance `head` gets 8 channels here, but its weights take 16"),
    "shared_in_other_block": Case("E0536", 1, 24, "the shared instance `c` is applied inside block `apply`"),
    # --- init statements
    "init_unknown_scheme": Case("E0541", 5, 16, "unknown initialization scheme `kaiming_norml`"),
    "init_bad_argument": Case("E0542", 4, 36, "`mode` of `kaiming_normal` is one of: fan_in, fan_out"),
    "init_unknown_kind": Case("E0540", 5, 10, "`init` cannot set `dwconv`"),
    "init_label_not_found": Case("E0543", 6, 10, "no layer is labelled `clasifier.1` here"),
    "init_missing_bias": Case("E0544", 4, 43, "`conv1` has no `bias`"),
    # torch.nn.init refuses these where the module is built (normal_: "normal expects std >= 0.0";
    # uniform_: "expects to return a [from, to) range"): the spec's line says so first.
    "init_negative_std": Case("E0542", 6, 43, "`std` of `normal` is -1.0; it must be at least 0"),
    "init_bounds_reversed": Case("E0542", 4, 33, "`uniform`'s a = 0.5 is above its b = 0.1"),
    "init_beyond_torch": Case("E0542", 6, 21, "the constant is 1180591620717411303424, beyond PyTorch's 64-bit"),
    # --- what verify and analyze print
    "split_part_expectations": Case("E0801", 9, 5, "expectation failed for `net`: b.shape is [12, 8, 8]",
                                    argv=("verify", "split_part_expectations.arch"), stdout=True),
    "big_deviation": Case("E0801", 5, 5, "expectation failed for `net`: macs is",
                          argv=("verify", "big_deviation.arch"), stdout=True),
    "verify_syntax_error": Case("E0100", 3, 18, "syntax error: unclosed `(`",
                                argv=("verify", "verify_syntax_error.arch"), stdout=True),
    "multi_output_layers": Case("", 0, 0, "", argv=("analyze", "multi_output_layers.arch", "--layers"), rc=0,
                                stdout=True),
    "multi_output_blocks": Case("", 0, 0, "", argv=("analyze", "multi_output_layers.arch", "--depth", "1"), rc=0,
                                path="multi_output_layers.arch", stdout=True),
}


def _spec_files() -> set[str]:
    return {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.arch")}


def test_every_spec_has_a_case() -> None:
    used = {c.path or f"{name}.arch" for name, c in CASES.items() if name not in GENERATED}
    helpers = {p for p in _spec_files() if "/" in p} - used  # the other files of a multi-file case
    assert _spec_files() - used - helpers == set()
    assert used - _spec_files() == set()
    assert len(CASES) >= 35


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                ) -> None:
    case = CASES[name]
    monkeypatch.setenv("ARCHDSL_NO_CACHE", "1")  # always the real parser
    if name in GENERATED:
        (tmp_path / f"{name}.arch").write_bytes(GENERATED[name])
        monkeypatch.chdir(tmp_path)
    else:
        monkeypatch.chdir(GOLDEN)
    path = case.path or f"{name}.arch"
    argv = list(case.argv or ("check", path))

    start = time.perf_counter()
    rc = main(argv)
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()

    assert elapsed < HANG_GUARD_S, f"{name} took {elapsed:.1f} s"
    assert rc == case.rc, err
    golden = GOLDEN / f"{name}.stderr"
    if UPDATE:
        golden.write_text(err, encoding="utf-8")
    assert err == golden.read_text(encoding="utf-8")
    if case.stdout:
        shown = GOLDEN / f"{name}.stdout"
        if UPDATE:
            shown.write_text(out, encoding="utf-8")
        assert out == shown.read_text(encoding="utf-8")
    if not case.code:
        assert err == "" and (case.stdout or out.startswith("ok:"))
        return
    header = re.search(r"^error\[(E\d{4})\]: (.*)\n  --> (.*):(\d+):(\d+)$", err, re.MULTILINE)
    assert header is not None, err
    code, message, _file, line, col = header.groups()
    assert (code, int(line), int(col)) == (case.code, case.line, case.col), err
    assert message.startswith(case.message), err
    assert "Traceback" not in err

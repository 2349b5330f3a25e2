"""`archdsl verify`: expectations checked, failures located at their line, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.cli import main
from archdsl.verify import verify_spec

from .conftest import SPECS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_changed_digit_fails_and_points_at_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (SPECS / "vgg.arch").read_text()
    assert "expect params == 138_357_544" in text
    bad = tmp_path / "vgg.arch"
    bad.write_text(text.replace("expect params == 138_357_544", "expect params == 138_357_545"))
    line = next(i for i, x in enumerate(bad.read_text().splitlines(), 1) if "138_357_545" in x)
    code, out, err = run(capsys, "verify", str(bad))
    assert code == 1
    assert f"{bad}:{line}:5" in err  # file:line:col of the expect
    assert "138,357,544" in err and "expect params == 138_357_545" in err and "^^^" in err
    assert "FAIL" in out and "1 FAILED" in out
    row = next(x for x in out.splitlines() if "FAIL" in x)
    assert row.split()[0] == "vgg16"


def test_verify_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "t.arch"
    spec.write_text('''network t {
    input image: 3x32x32
    image -> conv(8, 3) as c1 -> conv(8, 3) as c2 -> maxpool(2) as p
          -> avgpool(global) -> flatten -> linear(10) as fc -> output logits
    expect params == 898                 "hand count: 224 + 584 + 90"
    expect c2.rf == 5                    "two 3×3 = one 5×5"
    expect rf(p) == [6, 6]
    expect p.rf_stride == 2
    expect logits.shape == [10]
    expect logits.rf == global
    expect macs ~= 811K +- 0.1%          "221,184 + 589,824 + 80"
    expect peak_activations <= 20_000
    expect c1.params == 224
}
''')
    code, out, _ = run(capsys, "verify", str(spec), "--json")
    data = json.loads(out)
    assert code == 0, data
    assert data["failed"] == 0 and data["passed"] == 9
    first = data["checks"][0]
    assert first == {"network": "t", "file": str(spec), "line": 5, "col": 5, "quantity": "params", "op": "==",
                     "expected": "898", "computed": "898", "deviation": "0", "source": "hand count: 224 + 584 + 90",
                     "ok": True, "message": None}


def test_failure_json_carries_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "t.arch"
    spec.write_text("network t {\n    input image: 3x8x8\n    image -> conv(4, 3) as c -> output y\n"
                    "    expect c.rf == 7 \"wrong on purpose\"\n}\n")
    code, out, err = run(capsys, "verify", str(spec), "--json")
    assert code == 1
    check = json.loads(out)["checks"][0]
    assert check["ok"] is False and check["computed"] == "3" and check["line"] == 4
    assert json.loads(err)["diagnostics"][0]["code"] == "E0801"


def test_counts_a_spec_defines_and_variant_qualifiers() -> None:
    spec = api.load_string('''
network fam(widths=[8, 16]) {
    input image: 3x16x16
    boxes = widths[0] * 4 + widths[1] * 6
    image -> conv(widths[0], 3) -> conv(widths[1], 3) -> output y
    expect boxes == widths[0] * 4 + widths[1] * 6
    expect len(widths) == 2
    expect big.boxes == 208      "only for the variant big"
    expect big.params ~= 3.9K +- 1%  "448 + 3480"
}
network big = fam(widths=[16, 24])
''', file="fam.arch")
    checks = {n: [(c.quantity, c.computed, c.ok) for c in verify_spec(spec, [n])] for n in ("fam", "big")}
    assert checks["fam"] == [("boxes", "128", True), ("len(widths)", "2", True)]
    assert [x[2] for x in checks["big"]] == [True, True, True, True]
    assert ("big.boxes", "208", True) in checks["big"]


def test_unknown_target_is_a_located_failure() -> None:
    spec = api.load_string("network t {\n    input image: 3x8x8\n    image -> conv(4, 3) as conv1 -> output y\n"
                           "    expect conv2.rf == 3\n}\n", file="u.arch")
    (check,) = verify_spec(spec)
    assert not check.ok and check.diagnostic is not None
    assert check.diagnostic.code == "E0802" and "conv1" in (check.diagnostic.hint or "")


@pytest.mark.parametrize(("target", "expected"), [
    ("wide", "0"), ("wide", "1"), ("narrow", "1"), ("narrow", "0"), ("image.channels", "true"),
    ("y.shape", "[8, 8, false]"), ("y.shape", "true"),
])
def test_a_boolean_never_equals_a_number(target: str, expected: str) -> None:
    """`false == 0` and `true == 1` hold in Python: an `expect` must neither pass nor fail by that
    accident — whichever way round, it is a type error at the line."""
    spec = api.load_string("network t {\n    input image: 3x8x8\n    wide = image.channels == 4\n"
                           "    narrow = image.channels == 3\n    image -> conv(8, 3) -> output y\n"
                           f"    expect {target} == {expected}\n}}\n", file="b.arch")
    (check,) = verify_spec(spec)
    assert not check.ok and check.diagnostic is not None
    assert (check.diagnostic.code, check.diagnostic.span.line) == ("E0505", 6)
    assert "between" in check.diagnostic.message and "boolean" in check.diagnostic.message


def test_booleans_and_numbers_compare_within_their_kind() -> None:
    spec = api.load_string("network t {\n    input image: 3x8x8\n    wide = image.channels == 4\n"
                           "    image -> conv(8, 3) -> output y\n    expect wide == false\n"
                           "    expect image.channels == 3.0\n    expect y.shape == [8, 8, 8]\n}\n", file="b.arch")
    assert [(c.computed, c.ok) for c in verify_spec(spec)] == [("false", True), ("3", True), ("[8, 8, 8]", True)]


def test_a_variable_named_like_a_figure_is_not_guessed() -> None:
    """`macs = 7` then `expect macs == 7`: the line would silently check the analysis's MACs."""
    spec = api.load_string("network t {\n    input image: 3x8x8\n    macs = 7\n"
                           "    image -> conv(8, 3) -> output y\n    expect macs == 7\n}\n", file="m.arch")
    (check,) = verify_spec(spec)
    assert not check.ok and check.diagnostic is not None
    assert (check.diagnostic.code, check.diagnostic.span.line, check.diagnostic.span.col) == ("E0802", 5, 12)
    assert check.diagnostic.message == "`macs` is both a figure of the analysis and a variable of `t`"


def test_check_and_verify_agree_on_figure_calls() -> None:
    """`shape(X)`, `rf(X)`, `rf_stride(X)`, `rf_start(X)` as an `expect` target: `check` accepts what
    `verify` reads (and a typo in the figure's name is an unknown op for both)."""
    text = ("network t {{\n    input image: 3x8x8\n    image -> conv(4, 3, stride=2) as c1 -> output y\n"
            '    expect {figure}("c1") == {value}\n}}\n')
    # Hand-derived for one 3×3 conv, stride 2, padding 1, on 8×8: 4×4 out, field 3, jump 2, the
    # first field centred on input pixel 0.
    for figure, value in (("shape", "[4, 4, 4]"), ("rf", "3"), ("rf_stride", "2"), ("rf_start", "0")):
        spec = api.load_string(text.format(figure=figure, value=value), file="f.arch")
        assert spec.check() == []
        assert [c.ok for c in verify_spec(spec)] == [True]
    spec = api.load_string(text.format(figure="rf_strid", value="2"), file="f.arch")
    (problem,) = spec.check()
    assert problem.message == "unknown op or block `rf_strid`"
    (check,) = verify_spec(spec)
    assert not check.ok and check.diagnostic is not None and "rf_strid" in check.diagnostic.message


def test_bundled_zoo_verifies_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "verify", "--net", "resnet50")
    assert code == 0, err
    assert "resnet50.layer4.rf" in out and "427" in out

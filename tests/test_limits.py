"""Every resource limit of archdsl/limits.py: a hostile or mistaken spec gets a diagnostic at the
span that caused it, at once (a hang guard times each case), and the limit can be raised knowingly.

Also: text oddities (NUL, invalid UTF-8, BOM, CRLF, tabs, long lines, an empty file), and the CLI's
internal-error path (exit 2, no traceback unless ARCHDSL_DEBUG=1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.cli import main
from archdsl.diagnostics import ArchError, Diagnostic
from archdsl.limits import LIMITS, Limits
from archdsl.syntax import parse_number

# A hang guard, not a speed target: the slowest case takes 0.27 s on this 2-core machine; 10× that
# leaves room for a loaded CI runner.
FAST_S = 3.0


@contextmanager
def fast() -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < FAST_S, f"took {elapsed:.2f} s"


def net(body: str, params: str = "", limits: Limits = LIMITS, before: str = "") -> str:
    return f"{before}network net{f'({params})' if params else ''} {{\n    input image: 3x32x32\n{body}\n}}\n"


def diagnose(src: str, limits: Limits = LIMITS, file: str = "t.arch") -> Diagnostic:
    """The first diagnostic of elaborating every network of `src` (which must fail), timed."""
    with fast(), pytest.raises(ArchError) as info:
        spec = api.load_string(src, file, limits=limits)
        for name in spec.networks:
            spec.network(name)
    return info.value.diagnostics[0]


def at(d: Diagnostic) -> tuple[str, int, int]:
    return d.code, d.span.line, d.span.col


def ok(src: str, limits: Limits = LIMITS) -> api.Network:
    with fast():
        spec = api.load_string(src, "t.arch", limits=limits)
        return spec.network(spec.networks[0])


# --- repeat counts, steps, nodes -------------------------------------------------------------

def test_repeat_count() -> None:
    d = diagnose(net("    image -> repeat 10**9: relu"))
    assert at(d) == ("E0511", 3, 21) and "1000000000 exceeds the limit of 10000" in d.message


def test_repeat_limit_can_be_raised() -> None:
    src = net("    repeat 15000 as i { k = i }\n    image -> relu")
    assert at(diagnose(src)) == ("E0511", 3, 12)
    ok(src, LIMITS.with_(max_repeat=20_000))


def test_nested_repeats_are_bounded_by_steps() -> None:
    d = diagnose(net("    repeat 10000 as i { repeat 10000 as j { k = i * j } }\n    image -> relu"))
    assert at(d) == ("E0526", 3, 25) and "250,000 steps" in d.message


def test_an_error_met_at_every_turn_of_a_loop_is_reported_once_at_once() -> None:
    # A statement that fails 6,000 times, 100 turns of a loop in each of 60 block calls (a fuzzer's
    # case took minutes: each error met was deduplicated against all those before it, 9 s here, and
    # each failed statement walked again for the names it binds).
    bad = "block bad() {\n    repeat 100 { x = in -> conv(q, 3) }\n    in -> relu\n}\n"
    with fast(), pytest.raises(ArchError) as info:
        api.load_string(net("    image -> repeat 60: bad", before=bad), "t.arch").network("net")
    assert [at(d) for d in info.value.diagnostics] == [("E0401", 2, 33)]


def test_node_count() -> None:
    src = net("    image -> repeat 100: repeat 1000: relu")
    d = diagnose(src)
    assert at(d) == ("E0518", 3, 39) and "5000 nodes" in d.message
    d = diagnose(src, LIMITS.with_(max_nodes=500))
    assert "500 nodes" in d.message


# --- sizes and magnitudes --------------------------------------------------------------------

def test_huge_input() -> None:
    d = diagnose("network net {\n    input image: 3x200000x200000\n    image -> relu\n}\n")
    assert at(d) == ("E0307", 2, 5) and "120,000,000,000 elements" in d.message


def test_huge_input_override() -> None:
    spec = api.load_string(net("    image -> relu"), "t.arch")
    with fast(), pytest.raises(ArchError) as info:
        spec.network("net", input="3x200000x200000")
    assert info.value.diagnostics[0].code == "E0603"


def test_huge_activation() -> None:
    d = diagnose(net("    image -> conv(10**9, 3)"))
    assert at(d) == ("E0307", 3, 14)


def test_power_tower() -> None:
    d = diagnose(net("    image -> conv(16, 3)", params="c=2 ** 2 ** 64"))
    assert at(d) == ("E0503", 1, 15) and "too large" in d.message


@pytest.mark.parametrize("expr", ["10**100 * 10**100", "2**255 + 2**255", "-(2**256)", "ceil(1e300)",
                                  "int(1e300)"])
def test_integer_magnitude(expr: str) -> None:
    assert diagnose(net(f"    k = {expr}\n    image -> relu")).code == "E0503"


def test_huge_number_literal() -> None:
    d = diagnose(net("    k = " + "9" * 5000 + "\n    image -> relu"))
    assert at(d) == ("E0503", 3, 9) and "literal too large" in d.message


# Python would read the first group as inf (or refuse it) and the second as 0.0.
@pytest.mark.parametrize(("text", "words"), [
    ("1e400", "too large"), ("1e308G", "too large"), ("1.8e308", "too large"), ("1.7976931348623159e308", "too large"),
    ("9" * 400, "too large"), ("1e99999999999999999999", "too large"), ("1e300T", "too large"),
    ("1e-400", "too small"), ("1e-330", "too small"), ("1e-99999999999999999999G", "too small"),
])
def test_number_literal_out_of_the_float_range(text: str, words: str) -> None:
    d = diagnose(net(f"    k = {text}\n    image -> relu"))
    assert at(d) == ("E0503", 3, 9) and words in d.message and d.hint


@pytest.mark.parametrize(("text", "value"), [
    ("1.7976931348623157e308", 1.7976931348623157e308), ("5e-324", 5e-324), ("2.2250738585072014e-308", 2.2e-308),
    ("0e99999999999999999999", 0.0), ("1e299G", 10**308), ("4.1G", 4_100_000_000), ("2.5K", 2500), ("1_000", 1000),
])
def test_number_literal_at_the_edges_of_the_range(text: str, value: float) -> None:
    got = parse_number(text)
    assert type(got) is type(value) and (got == value or got == 2.2250738585072014e-308)


@pytest.mark.parametrize("expr", ["1e308 * 10", "1e308 + 1e308", "-1.7976931348623157e308 - 1e300", "1e300 ** 2",
                                  "1 / 5e-324", "sum([1e308, 1e308])"])
def test_arithmetic_beyond_the_float_range(expr: str) -> None:
    d = diagnose(net(f"    k = {expr}\n    image -> relu"))
    assert at(d) == ("E0503", 3, 9) and "largest float" in d.message and d.hint


def test_integers_stay_within_the_float_range_whatever_the_bit_limit() -> None:
    d = diagnose(net("    k = 2**1023 * 3\n    image -> relu"), limits=LIMITS.with_(max_int_bits=100_000))
    assert at(d) == ("E0503", 3, 9) and "largest float" in d.message


@pytest.mark.parametrize("expr", ["round(16, -10**9)", "divisible(16, 0)", "min()", "max([])", "sqrt(-1)",
                                  "0 ** -1", "0.0 ** -1", "1.5 ** 10**7", "len(3)", "sum([1, true, \"a\"])"])
def test_arithmetic_edge_cases_are_diagnostics(expr: str) -> None:
    d = diagnose(net(f"    k = {expr}\n    image -> relu"))
    assert d.code in {"E0503", "E0504", "E0505", "E0515"} and (d.span.line, d.span.col) == (3, 9)


def test_list_length() -> None:
    d = diagnose(net("    repeat 20 { sizes = sizes + sizes }\n    image -> relu", params="sizes=[1]"))
    assert at(d) == ("E0501", 3, 25) and "131,072 items" in d.message


# --- nesting and recursion -------------------------------------------------------------------

def test_long_operator_chain() -> None:
    d = diagnose(net("    k = " + " + ".join(["1"] * 2000) + "\n    image -> relu"))
    assert at(d) == ("E0003", 3, 9) and "more than 100 levels" in d.message


def test_deep_brackets() -> None:
    d = diagnose(net("    k = " + "[" * 1000 + "1" + "]" * 1000 + "\n    image -> relu"))
    assert d.code == "E0003" and d.span.line == 3


def test_deep_parentheses_are_harmless() -> None:
    ok(net("    k = " + "(" * 2000 + "1" + ")" * 2000 + "\n    image -> relu"))


def test_nesting_limit_can_be_raised() -> None:
    src = net("    k = " + " + ".join(["1"] * 120) + "\n    image -> relu")
    assert diagnose(src).code == "E0003"
    assert ok(src, LIMITS.with_(max_nesting=200)).variables["k"] == 120


def test_long_chain_of_steps_is_fine() -> None:
    ok(net("    image -> " + " -> ".join(["relu"] * 2000)))


def test_self_instantiating_block() -> None:
    src = net("    image -> forever(16)", before="block forever(c) {\n    in -> conv(c, 3) -> forever(c)\n}\n\n")
    d = diagnose(src)
    assert at(d) == ("E0519", 2, 25) and "does `forever` instantiate itself?" in d.message


def test_mutual_recursion() -> None:
    blocks = "block ping(c) {\n    in -> pong(c)\n}\nblock pong(c) {\n    in -> relu -> ping(c)\n}\n"
    d = diagnose(net("    image -> ping(16)", before=blocks))
    assert d.code == "E0519" and d.span.line in (2, 5)


def test_call_depth_limit_can_be_lowered() -> None:
    blocks = "".join(f"block b{i}() {{\n    in -> b{i + 1}\n}}\n" for i in range(10)) + "block b10() {\n    in\n}\n"
    src = net("    image -> b0", before=blocks)
    ok(src)
    assert diagnose(src, LIMITS.with_(max_call_depth=5)).code == "E0519"


# --- imports and files -----------------------------------------------------------------------

def test_import_cycle_of_three_files(tmp_path: Path) -> None:
    for a, b in (("a", "b"), ("b", "c"), ("c", "a")):
        (tmp_path / f"{a}.arch").write_text(f'import "{b}.arch"\n')
    with fast(), pytest.raises(ArchError) as info:
        api.load(tmp_path / "a.arch")
    d = info.value.diagnostics[0]
    assert at(d) == ("E0202", 1, 1) and "a.arch → b.arch → c.arch → a.arch" in d.message
    assert d.span.file.endswith("c.arch")


def test_import_depth(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"f{i}.arch").write_text(f'import "f{i + 1}.arch"\n')
    (tmp_path / "f40.arch").write_text("")
    with fast(), pytest.raises(ArchError) as info:
        api.load(tmp_path / "f0.arch")
    d = info.value.diagnostics[0]
    assert d.code == "E0203" and (d.span.line, d.span.col) == (1, 1)
    api.load(tmp_path / "f0.arch", LIMITS.with_(max_import_depth=64))


def test_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.arch"
    path.write_text("# filler\n" * 120_000)
    with fast(), pytest.raises(ArchError) as info:
        api.load(path)
    assert at(info.value.diagnostics[0]) == ("E0001", 1, 1)
    path.write_bytes(b"#" * 5_000_000)  # refused before it is read
    with fast(), pytest.raises(ArchError) as info:
        api.load(path)
    assert "bytes" in info.value.diagnostics[0].message


def test_line_of_a_million_characters() -> None:
    src = net("    image -> relu  # " + "x" * 1_000_000)
    d = diagnose(src, LIMITS.with_(max_file_chars=2_000_000))
    assert at(d) == ("E0006", 3, 20_001) and "1,000,021 characters" in d.message


def test_long_line_under_the_limit() -> None:
    d = diagnose(net('    s = "' + "a" * 15_000 + '"    image -> rleu'))
    assert at(d) == ("E0402", 3, 15_024)


# --- text encodings and layout ---------------------------------------------------------------

def _load_bytes(tmp_path: Path, data: bytes) -> Diagnostic:
    path = tmp_path / "t.arch"
    path.write_bytes(data)
    with fast(), pytest.raises(ArchError) as info:
        spec = api.load(path)
        spec.network(spec.networks[0])
    return info.value.diagnostics[0]


def test_nul_byte(tmp_path: Path) -> None:
    assert at(_load_bytes(tmp_path, b"network n {\n  x = 1\x00\n}\n")) == ("E0002", 2, 8)


def test_invalid_utf8(tmp_path: Path) -> None:
    assert at(_load_bytes(tmp_path, "network n {\n  # é\xff".encode("latin-1") + b"\xff\n}")) == ("E0004", 2, 5)


def test_bom_crlf_and_tabs_count_characters(tmp_path: Path) -> None:
    data = "\ufeffnetwork n {\r\n\tinput image: 3x32x32\r\n\timage ->\trleu  # größe\r\n}\r\n".encode()
    d = _load_bytes(tmp_path, data)
    assert at(d) == ("E0402", 3, 11)


def test_empty_file_is_a_spec_without_networks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.arch").write_text("")
    assert api.load(tmp_path / "empty.arch").networks == []
    assert main(["check", str(tmp_path / "empty.arch")]) == 0
    assert capsys.readouterr().out.startswith("ok: 1 file(s)")


# --- the command line ------------------------------------------------------------------------

def test_cli_limit_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.arch"
    path.write_text(net("    repeat 15000 as i { k = i }\n    image -> relu"))
    assert main(["check", str(path)]) == 1
    assert "E0511" in capsys.readouterr().err
    assert main(["check", str(path), "--max-repeat", "20000"]) == 0


def test_internal_error_is_a_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.arch"
    path.write_text(net("    image -> relu"))

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(api.Spec, "check", boom)
    monkeypatch.delenv("ARCHDSL_DEBUG", raising=False)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error[E9999]: internal error: ZeroDivisionError: planted" in err
    assert "please report it" in err and "Traceback" not in err
    monkeypatch.setenv("ARCHDSL_DEBUG", "1")
    assert main(["check", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err

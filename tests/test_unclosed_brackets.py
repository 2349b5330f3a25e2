"""Unclosed brackets are reported at their opening, with a note where the parser gave up; brackets in
strings and comments do not count, a stray closing bracket is reported where it stands, and an
unclosed bracket after the place the parser gave up does not hide that place's own error."""

from __future__ import annotations

import pytest

from archdsl.diagnostics import ArchError, Diagnostic
from archdsl.parser import parse

HEAD = "network n {\n    input x: 3x8x8\n"

# (source, message, line, column of the first diagnostic, the note's place or None)
CASES: dict[str, tuple[str, str, int, int, str | None]] = {
    "brackets in strings and comments are skipped": (
        HEAD + '    s = "({["\n    x -> relu  # ({[\n', "syntax error: unclosed `{`", 1, 11, "t.arch:4:21"),
    "a closing bracket of another kind": (
        HEAD + "    x -> conv(3, 1 -> relu\n}\n", "syntax error: unclosed `(`", 3, 14, "t.arch:4:1"),
    "the innermost of two left open at the end": (
        HEAD + "    x -> conv(3, 1\n", "syntax error: unclosed `(`", 3, 14, "t.arch:3:19"),
    "a list closed by a parenthesis": (
        "network n(c=[1, (2]) {\n    input x: 3x8x8\n    x\n}\n", "syntax error: unclosed `(`", 1, 17, None),
    "a stray closing bracket stands for itself": (
        HEAD + "    x -> conv(3, 1))\n}\n", "syntax error: unexpected `)`", 3, 20, None),
    "an unclosed bracket after the error leaves the error its own": (
        HEAD + "    x -> conv(3 3)\n    y = (x\n}\n", "syntax error: unexpected `3`", 3, 17, None),
}


def first(text: str) -> Diagnostic:
    with pytest.raises(ArchError) as info:
        parse(text, "t.arch", use_cache=False)
    return info.value.diagnostics[0]


@pytest.mark.parametrize("what", sorted(CASES))
def test_unclosed(what: str) -> None:
    text, message, line, col, gave_up = CASES[what]
    diag = first(text)
    assert (diag.code, diag.message, diag.span.line, diag.span.col) == ("E0100", message, line, col)
    if gave_up is not None:
        assert diag.notes[0].startswith(f"the parser gave up at {gave_up}: ")

"""Source positions and diagnostics: the one error channel of every archdsl layer.

Every problem the user can cause — a syntax error, an unknown op, a shape mismatch, a runaway
repeat — becomes a :class:`Diagnostic` carrying a :class:`Span`. Layers raise :class:`ArchError`
(holding one or more diagnostics); the CLI and API render them rustc-style::

    error[E0301]: conv expects 3 input channels...
      --> specs/net.arch:4:9
       |
     4 |     x = conv(64, 3)
       |         ^^^^^^^^^^^
       = help: ...
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True, order=True)
class Span:
    """A region of one source file; lines and columns are 1-based, columns count characters.

    >>> Span("a.arch", 3, 5, 3, 9).where()
    'a.arch:3:5'
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @staticmethod
    def unknown(file: str = "<unknown>") -> Span:
        return Span(file, 1, 1, 1, 1)


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located: a stable code, a message, the span, and a hint saying what to do."""

    code: str
    message: str
    span: Span
    hint: str | None = None
    severity: Severity = "error"
    notes: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.col, self.message)

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "hint": self.hint,
        }


class ArchError(Exception):
    """Raised with one or more diagnostics; the only exception user input can cause."""

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic]) -> None:
        diags = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        self.diagnostics: list[Diagnostic] = sorted(diags, key=Diagnostic.sort_key)
        super().__init__("; ".join(f"{d.span.where()}: {d.message}" for d in self.diagnostics))


def error(code: str, message: str, span: Span, hint: str | None = None) -> ArchError:
    return ArchError(Diagnostic(code, message, span, hint))


@dataclass
class SourceMap:
    """Texts of every file read, so a diagnostic can quote its line whatever layer raised it."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, file: str, text: str) -> None:
        self.texts[file] = text

    def line(self, file: str, line: int) -> str | None:
        text = self.texts.get(file)
        if text is None:
            return None
        lines = text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


SOURCES = SourceMap()
MAX_QUOTED_LINE = 200


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# Control characters (a NUL, a stray form feed) are shown as their Unicode pictures, one column wide.
_VISIBLE = {c: 0x2400 + c for c in range(32) if c != 9} | {127: 0x2421}


def _expand_tabs(text: str) -> str:
    return text.expandtabs(4).translate(_VISIBLE)


def render(diag: Diagnostic, sources: SourceMap = SOURCES) -> str:
    """rustc-style multi-line rendering with the source line and a caret under the span."""
    out = [f"{diag.severity}[{diag.code}]: {diag.message}", f"  --> {diag.span.where()}"]
    src = sources.line(diag.span.file, diag.span.line)
    if src is not None:
        gutter = str(diag.span.line)
        pad = " " * len(gutter)
        col0 = max(diag.span.col - 1, 0)
        end = diag.span.end_col - 1 if diag.span.end_line == diag.span.line else len(src)
        end = max(end, col0 + 1)
        # Very long lines are cut around the span so the caret stays visible.
        shift = 0
        if len(src) > MAX_QUOTED_LINE:
            shift = max(0, col0 - MAX_QUOTED_LINE // 2)
            src = src[shift : shift + MAX_QUOTED_LINE]
            col0, end = col0 - shift, min(end - shift, len(src))
        prefix = _expand_tabs(src[:col0])
        marked = _expand_tabs(src[col0:end]) or " "
        caret_len = max(1, min(_display_width(marked), MAX_QUOTED_LINE))
        out += [
            f" {pad} |",
            f" {gutter} | {_expand_tabs(src).rstrip()}",
            f" {pad} | {' ' * _display_width(prefix)}{'^' * caret_len}",
        ]
    for note in diag.notes:
        out.append(f"   = note: {note}")
    if diag.hint:
        out.append(f"   = help: {diag.hint}")
    return "\n".join(out)


def render_svg(diagnostics: Sequence[Diagnostic], columns: int = 100) -> str:
    """Diagnostics rendered as :func:`render` prints them, as an SVG of monospace text: what a
    notebook shows where a picture was expected and cannot be drawn (a network's diagram without
    graphviz's `dot`). Lines longer than `columns` wrap, indented under their start."""
    from textwrap import wrap
    from xml.sax.saxutils import escape

    lines: list[str] = []
    for i, diag in enumerate(diagnostics):
        lines += [""] if i else []
        for line in render(diag).splitlines():
            indent = " " * (len(line) - len(line.lstrip()) + 2)
            lines += wrap(line, columns, subsequent_indent=indent, drop_whitespace=False) or [""]
    char_w, line_h, pad = 7.8, 17, 12  # 13 px monospace
    width = round(2 * pad + char_w * max((len(x) for x in lines), default=0))
    height = 2 * pad + line_h * len(lines)
    spans = "".join(f'<tspan x="{pad}" y="{pad + line_h * (i + 1) - 4}">{escape(x)}</tspan>'
                    for i, x in enumerate(lines))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            f'<rect width="100%" height="100%" fill="#fff5f5" stroke="#c00"/>'
            f'<text font-family="monospace" font-size="13" fill="#300" xml:space="preserve">{spans}</text></svg>')


def render_short(diag: Diagnostic) -> str:
    """One-line form for editors and CI: ``file:line:col: error[CODE] message``."""
    return f"{diag.span.where()}: {diag.severity}[{diag.code}] {diag.message}"


def did_you_mean(name: str, candidates: list[str] | set[str] | tuple[str, ...]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None

"""The AST of the `.arch` language, and :func:`parse`, text → :class:`Module`.

AST nodes are frozen dataclasses, each carrying its :class:`Span`. Parsing itself (Lark, the
grammar, the transformer) lives in :mod:`archdsl.parser`; :func:`parse` consults a small on-disk
cache of parsed files first, because importing Lark and loading its tables costs more than
analyzing a whole network (see benchmarks/analyze_speed.py).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from .diagnostics import ArchError, Diagnostic, Span, error
from .limits import LIMITS, Limits

# ---------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Node:
    span: Span


# expressions
@dataclass(frozen=True)
class Num(Node):
    value: int | float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Const(Node):
    value: bool | None


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class ShapeLit(Node):
    dims: tuple[int, ...]


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class Ternary(Node):
    cond: Node
    then: Node
    orelse: Node


@dataclass(frozen=True)
class Attribute(Node):
    obj: Node
    name: str


@dataclass(frozen=True)
class Index(Node):
    obj: Node
    index: Node


@dataclass(frozen=True)
class Arg(Node):
    name: str | None
    value: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    func_span: Span
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Body(Node):
    stmts: tuple[Node, ...]


@dataclass(frozen=True)
class IfExpr(Node):
    cond: Node
    then: Body
    orelse: Body | IfExpr | None


@dataclass(frozen=True)
class Chain(Node):
    head: Node
    steps: tuple[Node, ...]


# chain steps
@dataclass(frozen=True)
class CallStep(Node):
    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: tuple[str, ...] | None


@dataclass(frozen=True)
class IfStep(Node):
    cond: Node
    then: tuple[Node, ...]
    orelse: tuple[Node, ...] | None


@dataclass(frozen=True)
class RepeatStep(Node):
    count: Node
    var: str | None
    body: tuple[Node, ...]
    label: tuple[str, ...] | None


@dataclass(frozen=True)
class TableRow(Node):
    cells: tuple[Node, ...]


@dataclass(frozen=True)
class StagesStep(Node):
    columns: tuple[str, ...]
    label: tuple[str, ...] | None
    rows: tuple[TableRow, ...]
    body: Node


@dataclass(frozen=True)
class OutputStep(Node):
    name: str


# statements
@dataclass(frozen=True)
class Assign(Node):
    target: str
    value: Node


@dataclass(frozen=True)
class Destructure(Node):
    targets: tuple[str, ...]
    value: Node


@dataclass(frozen=True)
class InputDecl(Node):
    name: str
    shape: Node


@dataclass(frozen=True)
class OutputDecl(Node):
    name: str
    value: Node


@dataclass(frozen=True)
class Expect(Node):
    target: Node
    op: str
    value: Node
    tolerance: Node | None
    tolerance_percent: float | None
    source: str | None


@dataclass(frozen=True)
class RepeatStmt(Node):
    count: Node
    var: str | None
    body: Body
    label: tuple[str, ...] | None


@dataclass(frozen=True)
class ExprStmt(Node):
    expr: Node


# top level
@dataclass(frozen=True)
class Param(Node):
    name: str
    default: Node | None


@dataclass(frozen=True)
class Import(Node):
    target: str
    is_path: bool


@dataclass(frozen=True)
class BlockDef(Node):
    name: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] | None
    body: Body


@dataclass(frozen=True)
class NetworkDef(Node):
    name: str
    params: tuple[Param, ...]
    body: Body


@dataclass(frozen=True)
class VariantDef(Node):
    name: str
    base: str
    base_span: Span
    args: tuple[Arg, ...]
    body: Body | None


@dataclass(frozen=True)
class Module(Node):
    file: str
    items: tuple[Node, ...]



# ---------------------------------------------------------------------------------------------
# Numbers

SI_SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}  # B: "billion", as papers write it


def parse_number(text: str) -> int | float:
    """`25_557_032` → 25557032, `4.1G` → 4100000000, `0.2` → 0.2, `1e-3` → 0.001."""
    text = text.replace("_", "")
    mult = 1
    if text[-1] in SI_SUFFIX:
        mult, text = SI_SUFFIX[text[-1]], text[:-1]
    if mult == 1 and not any(c in text for c in ".eE"):
        return int(text)
    if mult == 1:
        return float(text)
    exact = Decimal(text) * mult  # exact, so that 4.1G is 4_100_000_000, not 4099999999.9999995
    return int(exact) if exact == exact.to_integral_value() else float(exact)


# ---------------------------------------------------------------------------------------------
# Parsing, with a cache of parsed files

_CACHE_VERSION = 1


def _cache_dir() -> Path | None:
    if os.environ.get("ARCHDSL_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archdsl"


def _cache_key(text: str, file: str, max_nesting: int) -> str:
    # The key covers everything a parse depends on: the text, the file name (spans carry it), the
    # grammar and the AST classes (this module's source).
    digest = hashlib.sha256()
    for part in (str(_CACHE_VERSION), str(max_nesting), file, text):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(resources.files("archdsl").joinpath("grammar.lark").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def parse(text: str, file: str = "<string>", use_cache: bool = True, limits: Limits = LIMITS) -> Module:
    """Parse one source text into a :class:`Module`; raises :class:`ArchError` on any syntax error."""
    check_text(text, file, limits)
    cache = _cache_dir() if use_cache else None
    path = cache / f"{_cache_key(text, file, limits.max_nesting)}.pickle" if cache else None
    if path is not None:
        try:
            module = pickle.loads(path.read_bytes())
            if isinstance(module, Module):
                return module
        except Exception:
            pass  # a damaged or stale cache entry only costs a re-parse
    from .parser import lark_parse  # Lark is imported only when a text is not in the cache

    module = lark_parse(text, file, limits.max_nesting)
    _check_table_rows(module)
    if path is not None:
        try:
            from .fileio import write_atomic

            write_atomic(path, pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, RecursionError):
            pass  # a read-only home directory only costs speed
    return module


def check_text(text: str, file: str, limits: Limits = LIMITS) -> None:
    """What can be refused before parsing, in linear time: size, over-long lines, NUL bytes."""
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise error("E0002", "NUL byte in source", Span(file, line, col, line, col + 1),
                    "the file looks binary; .arch files are UTF-8 text")
    if len(text) > limits.max_line_chars:
        for number, line_text in enumerate(text.split("\n"), start=1):
            if len(line_text) > limits.max_line_chars:
                col = limits.max_line_chars + 1
                raise error("E0006", f"line {number} is {len(line_text):,} characters long "
                            f"(the limit is {limits.max_line_chars:,})", Span(file, number, col, number, col + 1),
                            "break it into several lines, or raise the limit (--max-line-chars)")
    if len(text) > limits.max_file_chars:
        raise error(
            "E0001", f"file is too large ({len(text):,} characters; the limit is {limits.max_file_chars:,})",
            Span(file, 1, 1, 1, 2), "split the file, or raise the limit (--max-file-chars)",
        )


def _check_table_rows(module: Module) -> None:
    """Rows of a stage table are separated only by line breaks; insist that each row is one line."""
    problems: list[Diagnostic] = []

    def visit(node: Any) -> None:
        if isinstance(node, StagesStep):
            for row in node.rows:
                if row.span.line != row.span.end_line:
                    problems.append(Diagnostic(
                        "E0101", "a stage-table row spans several lines", row.span,
                        "write one row per line; a row starting with `-`, `(` or `[` joins the previous one",
                    ))
                elif len(row.cells) != len(node.columns):
                    problems.append(Diagnostic(
                        "E0102", f"this row has {len(row.cells)} cells but the table has "
                        f"{len(node.columns)} columns ({', '.join(node.columns)})", row.span,
                        "give every row one value per column",
                    ))
        if isinstance(node, Node):
            for value in vars(node).values():
                visit(value)
        elif isinstance(node, tuple):
            for item in node:
                visit(item)

    visit(module)
    if problems:
        raise ArchError(problems)

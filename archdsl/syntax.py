"""The AST of the `.arch` language: frozen dataclasses, each carrying its :class:`Span`.

Text becomes a :class:`Module` through :func:`archdsl.parser.parse`; this module only declares the
tree (and reads number literals), so everything downstream depends on it without depending on Lark.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .diagnostics import Span

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
class Label(Node):
    """`as layer1.0.conv1`: the dotted parts of a name. A part may hold expressions in braces,
    `denselayer{i + 1}`; each part is its text pieces and expression nodes, in order."""

    parts: tuple[tuple[str | Node, ...], ...]

    def static(self) -> tuple[str, ...] | None:
        """The parts, when no part holds an expression."""
        if all(len(p) == 1 and isinstance(p[0], str) for p in self.parts):
            return tuple(str(p[0]) for p in self.parts)
        return None


@dataclass(frozen=True)
class Call(Node):
    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: Label | None = None  # `x = up(b, s4) as up4`


@dataclass(frozen=True)
class Shared(Node):
    """`shared head(80) as cls`: one instance of an op or block, its weights used wherever it is applied."""

    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: Label | None


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
    label: Label | None


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
    label: Label | None


@dataclass(frozen=True)
class TableRow(Node):
    cells: tuple[Node, ...]


@dataclass(frozen=True)
class StagesStep(Node):
    columns: tuple[str, ...]
    label: Label | None
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
    label: Label | None


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

"""The AST of the `.arch` language: immutable nodes, each carrying its :class:`Span`.

Text becomes a :class:`Module` through :func:`archdsl.parser.parse`; this module only declares the
tree (and reads number literals), so everything downstream depends on it without depending on Lark.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import FrozenInstanceError
from typing import Any, ClassVar, Self, dataclass_transform

from .diagnostics import Span

# ---------------------------------------------------------------------------------------------
# AST


@dataclass_transform(eq_default=True, frozen_default=True)
class _Frozen:
    """Immutable values with declared fields, as frozen dataclasses are.

    A subclass declares its fields as annotations, after its base's, with a default where it has
    one; every node class shares this one implementation of construction, equality, hashing and
    repr, which behave as a frozen dataclass's do. (Generating and compiling those methods for
    each of the forty node classes, as ``@dataclass`` does, was a tenth of the start-up of
    ``archdsl analyze``, whose runs mostly unpickle the tree from the parse cache and never build
    a node.)
    """

    _fields: ClassVar[tuple[str, ...]] = ()  # in order: the constructor's arguments
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [name for name in inspect.get_annotations(cls) if name not in cls._fields]
        cls._fields = (*cls._fields, *own)
        cls._defaults = {**cls._defaults, **{name: cls.__dict__[name] for name in own if name in cls.__dict__}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields, name = self._fields, type(self).__name__
        if len(args) > len(fields):
            raise TypeError(f"{name}() takes {len(fields)} arguments but {len(args)} were given")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in fields or key in values:
                raise TypeError(f"{name}() got an unexpected or repeated argument {key!r}")
            values[key] = value
        state = self.__dict__
        for field in fields:
            if field in values:
                state[field] = values[field]
            elif field in self._defaults:
                state[field] = self._defaults[field]
            else:
                raise TypeError(f"{name}() missing argument {field!r}")

    def with_(self, **changes: Any) -> Self:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return type(self)(**{**self.__dict__, **changes})

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


class Node(_Frozen):
    """Every syntax node: where it was written."""

    span: Span


# expressions
class Num(Node):
    """A number literal: `64`, `0.5`, `25_557_032`, `4.1G`."""

    value: int | float


class Str(Node):
    """A string literal: `"same"`."""

    value: str


class Const(Node):
    """`true`, `false` or `none`."""

    value: bool | None


class Name(Node):
    """A name: a variable, parameter, tensor, block or op."""

    id: str


class ListLit(Node):
    """A list: `[1, 2, 3]`."""

    items: tuple[Node, ...]


class ShapeLit(Node):
    """A shape: `3x224x224`."""

    dims: tuple[int, ...]


class BinOp(Node):
    """An arithmetic or comparison operation: `a + b`, `c // 2`, `n < 3`."""

    op: str
    left: Node
    right: Node


class Unary(Node):
    """A negation: `-x`."""

    op: str
    operand: Node


class BoolOp(Node):
    """`a and b`, `a or b`."""

    op: str  # "and" | "or"
    left: Node
    right: Node


class Not(Node):
    """`not a`."""

    operand: Node


class Ternary(Node):
    """`cond ? a : b`."""

    cond: Node
    then: Node
    orelse: Node


class Attribute(Node):
    """`obj.name`: an attribute, such as a tensor's size (`x.h`)."""

    obj: Node
    name: str


class Index(Node):
    """An item of a list: `widths[i]`."""

    obj: Node
    index: Node


class Arg(Node):
    """One argument of a call, named (`stride=2`) or not."""

    name: str | None
    value: Node


class Label(Node):
    """`as layer1.0.conv1`: the dotted parts of a name. A part may hold expressions in braces,
    `denselayer{i + 1}`; each part is its text pieces and expression nodes, in order. `as block[]`
    names the list `block`, whose next index the labelled thing takes."""

    parts: tuple[tuple[str | Node, ...], ...]
    # `as features[]`: the parts name a list, and the labelled thing is its next entry (`features.3`).
    append: bool = False

    def static(self) -> tuple[str, ...] | None:
        """The parts, when no part holds an expression."""
        if all(len(p) == 1 and isinstance(p[0], str) for p in self.parts):
            return tuple(str(p[0]) for p in self.parts)
        return None


class Call(Node):
    """A call: `conv(64, 3, stride=2)`, `up(b, s4) as up4`."""

    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: Label | None = None  # `x = up(b, s4) as up4`


class Shared(Node):
    """`shared head(80) as cls`: one instance of an op or block, its weights used wherever it is applied."""

    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: Label | None


class Body(Node):
    """The statements of a block, network or branch, in order."""

    stmts: tuple[Node, ...]


class IfExpr(Node):
    """`if cond { … } else { … }`: the body the condition picks."""

    cond: Node
    then: Body
    orelse: Body | IfExpr | None


class Chain(Node):
    """A chain of steps from a head: `x -> conv(64, 3) -> relu`."""

    head: Node
    steps: tuple[Node, ...]


# chain steps
class CallStep(Node):
    """A call as a step of a chain: `-> conv(64, 3) as conv1`."""

    func: str
    func_span: Span
    args: tuple[Arg, ...]
    label: Label | None


class IfStep(Node):
    """A conditional step of a chain: `-> if cond { … } else { … }`."""

    cond: Node
    then: tuple[Node, ...]
    orelse: tuple[Node, ...] | None


class TableIndex(Node):
    """`, j of blocks` after the index of a stage table's row repeat (`repeat n as i, j of blocks`):
    `index` numbers the blocks across all the table's rows from 0, `total` is how many there are
    (torchvision's EfficientNet: `stage_block_id`, `total_stage_blocks`). The span is the clause's."""

    index: str
    index_span: Span
    total: str
    total_span: Span


class RepeatStep(Node):
    """Steps repeated: `-> repeat n as i: step`, `-> repeat n { … } as layer`; as a stage table's row
    step also `repeat n as i, j of blocks: step` (`table_index`)."""

    count: Node
    var: str | None
    body: tuple[Node, ...]
    label: Label | None
    table_index: TableIndex | None = None


class TableRow(Node):
    """One row of a stage table."""

    cells: tuple[Node, ...]


class StagesStep(Node):
    """`-> stages(c, n, s) { rows } step`: the step run once per row, the columns bound to its values."""

    columns: tuple[str, ...]
    label: Label | None
    rows: tuple[TableRow, ...]
    body: Node


class OutputStep(Node):
    """The last step of a chain, naming a network output: `-> output logits`."""

    name: str


# statements
class Assign(Node):
    """`x = value`."""

    target: str
    value: Node


class Destructure(Node):
    """`a, b = value`: the outputs of a multi-output call."""

    targets: tuple[str, ...]
    value: Node


class InputDecl(Node):
    """`input image: 3x224x224`."""

    name: str
    shape: Node


class OutputDecl(Node):
    """`output name = value`."""

    name: str
    value: Node


class Expect(Node):
    """`expect params == 25_557_032 +- 0.1% "source"`: a figure checked against the analysis."""

    target: Node
    op: str
    value: Node
    tolerance: Node | None
    tolerance_percent: Num | None  # `+- 2%`: the 2, where it is written
    source: str | None


class RepeatStmt(Node):
    """`repeat n as i { … }` as a statement."""

    count: Node
    var: str | None
    body: Body
    label: Label | None


class ExprStmt(Node):
    """An expression standing as a statement (a chain, usually)."""

    expr: Node


class InitTarget(Node):
    """`conv` or `conv as classifier.1`: the layers of one kind, optionally those at a label."""

    kind: str
    kind_span: Span
    label: Label | None


class InitStmt(Node):
    """`init conv, linear: trunc_normal(std=0.1), bias=0`: how the targets' parameter tensors start.
    An unnamed argument is the weight's scheme; a named one, the scheme of that tensor."""

    targets: tuple[InitTarget, ...]
    args: tuple[Arg, ...]


# top level
class Param(Node):
    """A parameter of a block or network, with its default if it has one."""

    name: str
    default: Node | None


def literal_defaults(params: tuple[Param, ...]) -> tuple[tuple[str, bool | int | float], ...]:
    """The parameters whose default is a literal number or boolean (`stride=1`, `bias=false`,
    `slope=-0.1`), each with its value; a default that reads anything (`out=c`) is none of them."""
    found: list[tuple[str, bool | int | float]] = []
    for p in params:
        node, sign = p.default, 1
        if type(node) is Unary and node.op == "-":
            node, sign = node.operand, -1
        if type(node) is Num:
            found.append((p.name, sign * node.value))
        elif type(node) is Const and isinstance(node.value, bool) and sign == 1:
            found.append((p.name, node.value))
    return tuple(found)


class Import(Node):
    """`import "file.arch"` or `import name`."""

    target: str
    is_path: bool


class BlockDef(Node):
    """A block definition: its parameters, inputs, outputs and body."""

    name: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] | None
    body: Body
    output_spans: tuple[Span, ...] = ()  # where each output is declared, in `outputs(…)`


class NetworkDef(Node):
    """`network name(params) { … }`."""

    name: str
    params: tuple[Param, ...]
    body: Body


class VariantDef(Node):
    """`network name = base(args) { … }`: a network defined by another's with other arguments."""

    name: str
    base: str
    base_span: Span
    args: tuple[Arg, ...]
    body: Body | None


class Module(Node):
    """One parsed `.arch` file: its top-level items, in order."""

    file: str
    items: tuple[Node, ...]


# ---------------------------------------------------------------------------------------------
# Numbers

SI_EXPONENT = {"K": 3, "M": 6, "G": 9, "B": 9, "T": 12}  # B: "billion", as papers write it
# Every number a spec holds lies within ±FLOAT_MAX, so that it converts to a float wherever one is
# needed (a tolerance, an attribute, a generated Python literal) without overflowing.
FLOAT_MAX = sys.float_info.max
RANGE_HINT = "a number in a spec lies within ±1.7976931348623157e308, the largest float"
TINY_HINT = "the smallest positive number is 5e-324; write 0 if zero is meant"


class NumberLiteralError(ValueError):
    """A number literal that has no value in the language: out of range, or rounding to zero."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_number(text: str) -> int | float:
    """`25_557_032` → 25557032, `4.1G` → 4100000000, `0.2` → 0.2, `1e-3` → 0.001.

    A literal beyond ±FLOAT_MAX (`1e400`, `1e308G`, 400 digits), or one that is not zero but would
    round to zero (`1e-400`), raises :class:`NumberLiteralError`: Python would silently read the
    first as ``inf`` and the last as ``0.0``.

    >>> parse_number("1e400")
    Traceback (most recent call last):
    ...
    archdsl.syntax.NumberLiteralError: number literal too large
    """
    from decimal import Context, Decimal  # only a text being parsed needs it, not a cached tree

    text = text.replace("_", "")
    scale = 0
    if text[-1] in SI_EXPONENT:
        scale, text = SI_EXPONENT[text[-1]], text[:-1]
    mantissa, _, exponent = text.lower().partition("e")
    sign, digits = ("-" if exponent.startswith("-") else ""), exponent.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 6:  # |exponent| ≥ 10**6, beyond what Decimal arithmetic takes
        if Decimal(mantissa):
            raise NumberLiteralError("number literal too small: it would be 0", TINY_HINT) if sign \
                else NumberLiteralError("number literal too large", RANGE_HINT)
        digits = "0"
    written = Decimal(f"{mantissa}e{sign}{digits}")  # exact
    exact = Context(prec=len(text) + 16)  # for arithmetic that must not round
    # Orders of magnitude first: Decimal arithmetic refuses exponents beyond about ±10**18.
    magnitude = written.adjusted() + scale if written else 0
    if magnitude > 308 or (magnitude == 308 and written.scaleb(scale, exact).copy_abs() > Decimal(FLOAT_MAX)):
        raise NumberLiteralError("number literal too large", RANGE_HINT)
    if magnitude < -330:  # far below 5e-324, the smallest positive float
        raise NumberLiteralError("number literal too small: it would be 0", TINY_HINT)
    value: int | float
    if scale == 0 and not any(c in text for c in ".eE"):
        value = int(written)  # not int(text): Python refuses strings of more than 4300 digits
    elif scale == 0:
        value = float(text)
    else:  # exact, so that 4.1G is 4_100_000_000, not 4099999999.9999995
        number = written.scaleb(scale, exact)
        value = int(number) if number == number.to_integral_value(context=exact) else float(number)
    if value == 0 and written:
        raise NumberLiteralError("number literal too small: it would be 0", TINY_HINT)
    return value

"""The Lark boundary: the grammar (``grammar.lark``, package data), the tree → AST transformer, and
the one place where Lark's exceptions become :class:`ArchError` diagnostics. Only
:func:`archdsl.parser.parse` imports this module, and only when a text is not in its cache.

The transformer's method names equal the grammar's rule and alias names one to one, and any
rule nobody handles fails loudly. Before the transformer, the tree is checked for depth and for
chains that could be read two ways (their layout, which the tree's positions still show).
"""

from __future__ import annotations

import ast as py_ast
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .diagnostics import ArchError, Diagnostic, Span, error
from .syntax import (
    RANGE_HINT,
    Arg,
    Assign,
    Attribute,
    BinOp,
    BlockDef,
    Body,
    BoolOp,
    Call,
    CallStep,
    Chain,
    Const,
    Destructure,
    Expect,
    ExprStmt,
    IfExpr,
    IfStep,
    Import,
    Index,
    InitStmt,
    InitTarget,
    InputDecl,
    Label,
    ListLit,
    Module,
    Name,
    NetworkDef,
    Node,
    Not,
    Num,
    NumberLiteralError,
    OutputDecl,
    OutputStep,
    Param,
    RepeatStep,
    RepeatStmt,
    ShapeLit,
    Shared,
    StagesStep,
    Str,
    TableIndex,
    TableRow,
    Ternary,
    Unary,
    VariantDef,
    parse_number,
)
from .vocabulary import KEYWORDS


class ToAst(Transformer[Token, Any]):
    """Lark tree → AST. One method per rule or alias; `__default__` refuses anything unhandled."""

    def __init__(self, file: str, max_nesting: int = 100, at: tuple[int, int] = (1, 1)) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.max_nesting = max_nesting
        self.at = at  # where the text parsed starts in the file (an expression inside a label)

    def _pos(self, line: int, col: int) -> tuple[int, int]:
        return (line, col) if line > 1 else (self.at[0], self.at[1] + col - 1)

    # one span helper for every method
    def _sp(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span.unknown(self.file)
        return Span(self.file, *self._pos(meta.line, meta.column), *self._pos(meta.end_line, meta.end_column))

    def _tok(self, tok: Token) -> Span:
        line, col = tok.line or 1, tok.column or 1
        return Span(self.file, *self._pos(line, col), *self._pos(tok.end_line or line, tok.end_column or col + 1))

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        raise NotImplementedError(f"grammar rule {data!r} has no AST builder")

    # --- top level
    @v_args(meta=True)
    def start(self, meta: Any, items: list[Node]) -> Module:
        return Module(self._sp(meta), self.file, tuple(items))

    @v_args(meta=True)
    def import_stmt(self, meta: Any, ch: list[Any]) -> Import:
        (target,) = ch
        if isinstance(target, Token):
            return Import(self._sp(meta), _unquote(str(target)), True)
        return Import(self._sp(meta), target, False)

    def dotted_name(self, ch: list[Token]) -> str:
        return ".".join(str(t) for t in ch)

    def _distinct(self, names: list[tuple[str, Span]], message: str, hint: str) -> None:
        """Each name once: a second `c` among a block's parameters (or a table's columns, or the
        names a statement unpacks into) would silently shadow the first. `message` has `{name}`."""
        first: dict[str, Span] = {}
        for name, span in names:
            if name in first:
                raise error("E0106", message.replace("{name}", name), span,
                            f"the first is at {first[name].where()}; {hint}")
            first[name] = span

    @v_args(meta=True)
    def block_def(self, meta: Any, ch: list[Any]) -> BlockDef:
        name, params, inputs, outputs, body = ch
        self._distinct([(p.name, p.span) for p in params or ()] + [(str(t), self._tok(t)) for t in inputs or ()],
                       f"block `{name}` has two parameters or inputs named `{{name}}`",
                       "give each parameter and input its own name")
        self._distinct([(str(t), self._tok(t)) for t in outputs or ()],
                       f"block `{name}` has two outputs named `{{name}}`", "give each output its own name")
        return BlockDef(
            self._sp(meta), str(name), params or (), tuple(str(t) for t in inputs) if inputs else ("in",),
            tuple(str(t) for t in outputs) if outputs else None, body, tuple(self._tok(t) for t in outputs or ()),
        )

    def inputs_decl(self, ch: list[Token | None]) -> list[Token]:
        return [t for t in ch if t is not None]

    outputs_decl = inputs_decl

    @v_args(meta=True)
    def network_def(self, meta: Any, ch: list[Any]) -> NetworkDef:
        name, params, body = ch
        self._distinct([(p.name, p.span) for p in params or ()],
                       f"network `{name}` has two parameters named `{{name}}`", "give each parameter its own name")
        return NetworkDef(self._sp(meta), str(name), params or (), body)

    @v_args(meta=True)
    def variant_def(self, meta: Any, ch: list[Any]) -> VariantDef:
        name, base, args, body = ch
        return VariantDef(self._sp(meta), str(name), str(base), self._tok(base), args or (), body)

    def params(self, ch: list[Param | None]) -> tuple[Param, ...]:
        return tuple(p for p in ch if p is not None)

    @v_args(meta=True)
    def param(self, meta: Any, ch: list[Any]) -> Param:
        name, default = ch
        return Param(self._sp(meta), str(name), default)

    @v_args(meta=True)
    def body(self, meta: Any, stmts: list[Node]) -> Body:
        return Body(self._sp(meta), tuple(stmts))

    # --- statements
    @v_args(meta=True)
    def assign(self, meta: Any, ch: list[Any]) -> Assign:
        return Assign(self._sp(meta), str(ch[0]), ch[1])

    @v_args(meta=True)
    def destructure(self, meta: Any, ch: list[Any]) -> Destructure:
        self._distinct([(str(t), self._tok(t)) for t in ch[:-1]], "this statement unpacks into `{name}` twice",
                       "give each part its own name (`_a, b = …` for a part not needed)")
        return Destructure(self._sp(meta), tuple(str(t) for t in ch[:-1]), ch[-1])

    @v_args(meta=True)
    def input_decl(self, meta: Any, ch: list[Any]) -> InputDecl:
        return InputDecl(self._sp(meta), str(ch[0]), ch[1])

    @v_args(meta=True)
    def output_decl(self, meta: Any, ch: list[Any]) -> OutputDecl:
        return OutputDecl(self._sp(meta), str(ch[0]), ch[1])

    @v_args(meta=True)
    def expect_stmt(self, meta: Any, ch: list[Any]) -> Expect:
        target, op, value, _tol_tok, tol, source = ch
        percent: Num | None = None
        tol_expr = None
        if isinstance(tol, Token):  # PERCENTAGE
            span = self._tok(tol)
            percent = Num(span, float(self._literal(span, lambda: parse_number(str(tol)[:-1]))))
        else:
            tol_expr = tol
        src = _unquote(str(source)) if source is not None else None
        return Expect(self._sp(meta), target, str(op), value, tol_expr, percent, src)

    @v_args(meta=True)
    def repeat_stmt(self, meta: Any, ch: list[Any]) -> RepeatStmt:
        count, var, body, label = ch
        return RepeatStmt(self._sp(meta), count, str(var) if var else None, body, label)

    @v_args(meta=True)
    def expr_stmt(self, meta: Any, ch: list[Any]) -> ExprStmt:
        return ExprStmt(self._sp(meta), ch[0])

    @v_args(meta=True)
    def init_stmt(self, meta: Any, ch: list[Any]) -> InitStmt:
        return InitStmt(self._sp(meta), tuple(ch[:-1]), ch[-1] or ())

    @v_args(meta=True)
    def init_target(self, meta: Any, ch: list[Any]) -> InitTarget:
        kind, label = ch
        return InitTarget(self._sp(meta), str(kind), self._tok(kind), label)

    @v_args(meta=True)
    def labelled_call(self, meta: Any, ch: list[Any]) -> Call:
        call, label = ch
        assert isinstance(call, Call) and isinstance(label, Label)
        return call.with_(span=self._sp(meta), label=label)

    @v_args(meta=True)
    def shared(self, meta: Any, ch: list[Any]) -> Shared:
        name, args, label = ch
        return Shared(self._sp(meta), str(name), self._tok(name), args or (), label)

    # --- expressions
    @v_args(meta=True)
    def chain(self, meta: Any, ch: list[Any]) -> Chain:
        return Chain(self._sp(meta), ch[0], _without_arrows(ch[1:]))

    @v_args(meta=True)
    def ternary(self, meta: Any, ch: list[Any]) -> Ternary:
        return Ternary(self._sp(meta), *ch)

    @v_args(meta=True)
    def or_op(self, meta: Any, ch: list[Any]) -> BoolOp:
        return BoolOp(self._sp(meta), "or", ch[0], ch[1])

    @v_args(meta=True)
    def and_op(self, meta: Any, ch: list[Any]) -> BoolOp:
        return BoolOp(self._sp(meta), "and", ch[0], ch[1])

    @v_args(meta=True)
    def not_op(self, meta: Any, ch: list[Any]) -> Not:
        return Not(self._sp(meta), ch[0])

    @v_args(meta=True)
    def compare(self, meta: Any, ch: list[Any]) -> BinOp:
        return BinOp(self._sp(meta), str(ch[1]), ch[0], ch[2])

    @v_args(meta=True)
    def binop(self, meta: Any, ch: list[Any]) -> BinOp:
        return BinOp(self._sp(meta), str(ch[1]), ch[0], ch[2])

    @v_args(meta=True)
    def unary(self, meta: Any, ch: list[Any]) -> Unary:
        return Unary(self._sp(meta), str(ch[0]), ch[1])

    @v_args(meta=True)
    def attribute(self, meta: Any, ch: list[Any]) -> Attribute:
        return Attribute(self._sp(meta), ch[0], str(ch[1]))

    @v_args(meta=True)
    def index(self, meta: Any, ch: list[Any]) -> Index:
        return Index(self._sp(meta), ch[0], ch[1])

    @v_args(meta=True)
    def call(self, meta: Any, ch: list[Any]) -> Call:
        name, args = ch
        return Call(self._sp(meta), str(name), self._tok(name), args or ())

    def args(self, ch: list[Any]) -> tuple[Arg, ...]:
        out = []
        for a in ch:
            if a is None:
                continue
            out.append(a if isinstance(a, Arg) else Arg(a.span, None, a))
        return tuple(out)

    @v_args(meta=True)
    def kwarg(self, meta: Any, ch: list[Any]) -> Arg:
        return Arg(self._sp(meta), str(ch[0]), ch[1])

    @v_args(meta=True)
    def number(self, meta: Any, ch: list[Token]) -> Num:
        return Num(self._sp(meta), self._literal(self._sp(meta), lambda: parse_number(str(ch[0]))))

    @v_args(meta=True)
    def shape_literal(self, meta: Any, ch: list[Token]) -> ShapeLit:
        span = self._sp(meta)
        return ShapeLit(span, self._literal(span, lambda: tuple(int(d) for d in str(ch[0]).split("x"))))

    def _literal(self, span: Span, convert: Any) -> Any:
        try:
            return convert()
        except NumberLiteralError as exc:
            raise error("E0503", exc.message, span, exc.hint) from None
        except (ValueError, ArithmeticError):  # Python refuses to convert integers of more than 4300 digits
            raise error("E0503", "number literal too large", span, RANGE_HINT) from None

    @v_args(meta=True)
    def string(self, meta: Any, ch: list[Token]) -> Str:
        return Str(self._sp(meta), _unquote(str(ch[0])))

    @v_args(meta=True)
    def true(self, meta: Any, ch: list[Any]) -> Const:
        return Const(self._sp(meta), True)

    @v_args(meta=True)
    def false(self, meta: Any, ch: list[Any]) -> Const:
        return Const(self._sp(meta), False)

    @v_args(meta=True)
    def none(self, meta: Any, ch: list[Any]) -> Const:
        return Const(self._sp(meta), None)

    @v_args(meta=True)
    def name(self, meta: Any, ch: list[Token]) -> Name:
        return Name(self._sp(meta), str(ch[0]))

    @v_args(meta=True)
    def list_literal(self, meta: Any, ch: list[Any]) -> ListLit:
        return ListLit(self._sp(meta), tuple(c for c in ch if c is not None))

    @v_args(meta=True)
    def if_expr(self, meta: Any, ch: list[Any]) -> IfExpr:
        cond, then, orelse = ch
        return IfExpr(self._sp(meta), cond, then, orelse)

    # --- steps
    @v_args(meta=True)
    def call_step(self, meta: Any, ch: list[Any]) -> CallStep:
        name, args, label = ch
        return CallStep(self._sp(meta), str(name), self._tok(name), args or (), label)

    def label(self, ch: list[Label]) -> Label:
        return ch[0]

    @v_args(meta=True)
    def label_path(self, meta: Any, ch: list[Token]) -> Label:
        parts: list[tuple[str | Node, ...]] = []
        for k, tok in enumerate(ch):
            if tok.type == "LABEL_APPEND":
                name = re.split(r"[ \t\[]", str(tok), maxsplit=1)[0]
                if k != len(ch) - 1:
                    at = Span(self.file, tok.line or 1, (tok.end_column or 3) - 2, tok.line or 1, tok.end_column or 1)
                    raise error("E0107", f"`[]` ends a label: `{name}[]` cannot be followed by more parts", at,
                                f"`as {name}[]` appends to the list `{name}`; name the entry's own layers in "
                                f"its block, or write the full path (`as {name}.0.…`)")
                parts.append((name,))
            elif tok.type == "LABEL_TEMPLATE":
                parts.append(self._template(tok))
            else:
                parts.extend((p,) for p in str(tok).split("."))  # `a.0.1` lexes its tail as the number `0.1`
        return Label(self._sp(meta), tuple(parts), ch[-1].type == "LABEL_APPEND")

    def _template(self, tok: Token) -> tuple[str | Node, ...]:
        """`denselayer{i + 1}` → ("denselayer", <i + 1>): text pieces and the expressions in braces."""
        text, pieces = str(tok), []
        line, col = tok.line or 1, tok.column or 1
        for k, piece in enumerate(re.split(r"(\{[^{}]*\})", text)):
            if k % 2 == 0:
                if piece:
                    pieces.append(piece)
                continue
            start = col + sum(len(p) for p in re.split(r"(\{[^{}]*\})", text)[:k]) + 1
            inner = piece[1:-1]
            if not inner.strip():
                raise error("E0103", "empty `{}` in a label", Span(self.file, line, start - 1, line, start + 1),
                            "put an expression in the braces, e.g. `as layer{i + 1}`")
            pieces.append(parse_expression(inner, self.file, (line, start), self.max_nesting))
        return tuple(pieces)

    def step_chain(self, ch: list[Any]) -> tuple[Node, ...]:
        return _without_arrows(ch)

    def step_group(self, ch: list[tuple[Node, ...]]) -> tuple[Node, ...]:
        return ch[0]

    row_steps = step_group

    @v_args(meta=True)
    def step_if(self, meta: Any, ch: list[Any]) -> IfStep:
        cond, then, orelse = ch
        return IfStep(self._sp(meta), cond, then, orelse)

    @v_args(meta=True)
    def repeat_step(self, meta: Any, ch: list[Any]) -> RepeatStep:
        count, var, across, step = ch
        return RepeatStep(self._sp(meta), count, self._repeat_var(var, across), (step,), None, across)

    @v_args(meta=True)
    def repeat_block_step(self, meta: Any, ch: list[Any]) -> RepeatStep:
        count, var, across, steps, label = ch
        return RepeatStep(self._sp(meta), count, self._repeat_var(var, across), steps, label, across)

    def _repeat_var(self, var: Token | None, across: TableIndex | None) -> str | None:
        """The repeat's index; with `, j of blocks` after it, the three names must differ."""
        if across is not None and var is not None:
            self._distinct([(str(var), self._tok(var)), (across.index, across.index_span),
                            (across.total, across.total_span)],
                           "this repeat names `{name}` twice",
                           "`repeat n as i, j of blocks` takes three different names")
        return str(var) if var else None

    @v_args(meta=True)
    def table_index(self, meta: Any, ch: list[Token]) -> TableIndex:
        index, total = ch
        return TableIndex(self._sp(meta), str(index), self._tok(index), str(total), self._tok(total))

    @v_args(meta=True)
    def stages_step(self, meta: Any, ch: list[Any]) -> StagesStep:
        self._distinct([(str(t), self._tok(t)) for t in ch if isinstance(t, Token)],
                       "this stage table has two columns named `{name}`",
                       "give each column its own name")
        cols = tuple(str(t) for t in ch if isinstance(t, Token))
        rest = [c for c in ch if not isinstance(c, Token)]
        label = rest[0] if rest and (rest[0] is None or isinstance(rest[0], Label)) else None
        if rest and (rest[0] is None or isinstance(rest[0], Label)):
            rest = rest[1:]
        rows = tuple(r for r in rest[:-1])
        body = rest[-1]
        if isinstance(body, RepeatStep) and body.table_index is not None:  # `… repeat n as i, j of blocks:`
            across = body.table_index
            self._distinct([(str(t), self._tok(t)) for t in ch if isinstance(t, Token)]
                           + [(across.index, across.index_span), (across.total, across.total_span)],
                           "`{name}` is both a column of this stage table and a name of its row repeat",
                           "the repeat's block index and total need names of their own")
        return StagesStep(self._sp(meta), cols, label, rows, body)

    @v_args(meta=True)
    def table_row(self, meta: Any, ch: list[Any]) -> TableRow:
        return TableRow(self._sp(meta), tuple(ch))

    @v_args(meta=True)
    def output_step(self, meta: Any, ch: list[Token]) -> OutputStep:
        return OutputStep(self._sp(meta), str(ch[0]))


def _without_arrows(children: list[Any]) -> tuple[Node, ...]:
    """The steps of a chain: its `->` tokens are kept in the tree only for the layout check."""
    return tuple(c for c in children if not (isinstance(c, Token) and c.type == "ARROW"))


def _unquote(s: str) -> str:
    try:
        value = py_ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return s[1:-1]
    return value if isinstance(value, str) else s[1:-1]


# ---------------------------------------------------------------------------------------------
# The one boundary where Lark's exceptions become diagnostics

_EXPECTED_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "SHAPE": "a shape like 3x224x224",
    "LPAR": "`(`", "RPAR": "`)`", "LBRACE": "`{`", "RBRACE": "`}`", "LSQB": "`[`", "RSQB": "`]`",
    "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`", "MINUS": "`-`", "PLUS": "`+`", "DOT": "`.`",
    "ARROW": "`->`", "COMP_OP": "a comparison", "MUL_OP": "an operator",
}


@cache
def _parser() -> Lark:
    return Lark.open_from_package(
        "archdsl", "grammar.lark", parser="lalr", propagate_positions=True, maybe_placeholders=True,
        cache=True,
    )


@cache
def _expression_parser() -> Lark:
    """The grammar read from `expr` (a label's `{i + 1}`). A parser of its own: with `expr` as a second
    start of the main parser, end of file could follow any expression, and syntax errors inside a
    body would list fewer of the tokens expected."""
    return Lark.open_from_package(
        "archdsl", "grammar.lark", parser="lalr", propagate_positions=True, maybe_placeholders=True,
        cache=True, start="expr",
    )


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    text = str(tok)
    return f"`{text[:40]}`"


def _expected(names: set[str]) -> str:
    words = sorted({_EXPECTED_WORDS.get(n, f"`{n.lower()}`") for n in names if not n.startswith("$")})
    if not words:
        return ""
    if len(words) > 6:
        words = [*words[:6], "…"]
    return "expected " + ", ".join(words)


def lark_parse(text: str, file: str, max_nesting: int = 100) -> Module:
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except RecursionError:  # pragma: no cover - the LALR parser keeps its own stack
        raise _nested_too_deeply(file) from None
    module = _transform(tree, ToAst(file, max_nesting), lambda checked: _check_two_readings(checked, text, file))
    if not isinstance(module, Module):  # pragma: no cover - `start` always builds a Module
        raise TypeError(f"the grammar's start rule built {type(module).__name__}, not a Module")
    return module


def parse_expression(text: str, file: str, at: tuple[int, int], max_nesting: int = 100) -> Node:
    """One expression on one line of `file`, starting at (line, column) `at` (a label's `{i + 1}`)."""
    try:
        tree = _expression_parser().parse(text)
    except UnexpectedInput as exc:
        padded = " " * (at[1] - 1) + text  # the error's column, as in the file's line
        problem = _syntax_error(exc, padded, file).diagnostics[0]
        raise ArchError(replace(problem, span=replace(problem.span, line=at[0], end_line=at[0]), notes=())) from None
    node = _transform(tree, ToAst(file, max_nesting, at))
    if not isinstance(node, Node):  # pragma: no cover - `expr` always builds a node
        raise TypeError(f"the grammar's expr rule built {type(node).__name__}")
    return node


def _transform(tree: Tree[Token], builder: ToAst, check: Callable[[Tree[Token]], None] | None = None) -> Any:
    """The AST of a tree whose depth is within the builder's limit (and that passes `check`, run
    once the depth is known to be bounded)."""
    _check_depth(tree, builder)
    if check is not None:
        check(tree)
    try:
        return builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ArchError):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise _nested_too_deeply(builder.file) from None


def _nested_too_deeply(file: str) -> ArchError:
    return error("E0003", "expression nested too deeply", Span(file, 1, 1, 1, 2),
                 "split the expression into named intermediate values")


def _check_depth(tree: Tree[Token], builder: ToAst) -> None:
    """Refuse a syntax tree deeper than the builder's limit (iteratively), so that converting and
    evaluating it never meets Python's recursion limit; the span is the leftmost node past the limit."""
    file, limit = builder.file, builder.max_nesting
    stack: list[tuple[Any, int]] = [(tree, 1)]
    too_deep: list[Span] = []
    found = False
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if depth > limit:
            found, meta = True, node.meta
            if not getattr(meta, "empty", True):
                too_deep.append(builder._sp(meta))
            continue
        stack.extend((child, depth + 1) for child in node.children)
    if found:
        span = min(too_deep) if too_deep else Span(file, 1, 1, 1, 2)
        raise error("E0003", f"expression nested too deeply (more than {limit} levels)", span,
                    "split it into named intermediate values, or raise the limit (--max-nesting)")


# ---------------------------------------------------------------------------------------------
# Chains that could be read two ways
#
# `stages(...) { rows } step` and `repeat n: step` apply ONE step (per row, per repetition); a `->`
# after that step continues the enclosing chain once the table or the repeats are done. Written on
# the same line (`} conv(c, 3) -> relu`) that reads as if `relu` ran per row too, so such a `->` must
# begin a line, to the left of the step it follows; braces (`} { conv(c, 3) -> relu }`,
# `repeat n { ... }`) say "per row" explicitly. Likewise `c ? a : b -> f` could mean `(c ? a : b) -> f`
# or `c ? a : (b -> f)`, so a conditional heads a chain only in brackets.

_ONE_STEP_BODIES = {"stages_step", "repeat_step"}
_REPEATS = {"repeat_step", "repeat_block_step", "repeat_stmt"}


def _check_two_readings(tree: Tree[Token], text: str, file: str) -> None:
    """Refuse what reads two ways: a `->` after a one-step body on its line or under it, a
    conditional heading a chain, a repeat's `as NAME` that names a variable nobody reads."""
    problems: list[Diagnostic] = []
    row_repeats = {id(node.children[-1]) for node in tree.iter_subtrees() if node.data == "stages_step"}
    for node in tree.iter_subtrees():
        if node.data in _REPEATS and isinstance(node.children[1], Token):
            across = node.children[2] if node.data != "repeat_stmt" else None
            if isinstance(across, Tree):
                problems.extend(_table_index_problems(node, across, id(node) in row_repeats, file))
            else:
                problems.extend(_unused_loop_variable(node, node.children[1], file))
        elif node.data in ("chain", "step_chain"):
            problems.extend(_chain_problems(node, text, file))
    if problems:
        raise ArchError(problems)


def _chain_problems(chain: Tree[Token], text: str, file: str) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    children = chain.children
    if chain.data == "chain":  # head, ARROW, step, …
        head, first = children[0], children[2]
        if isinstance(head, Tree) and head.data == "ternary" and isinstance(first, Tree) \
                and head.meta.start_pos == chain.meta.start_pos:  # in brackets, the chain would start before it
            problems.append(_ternary_heads_chain(head, first, text, file))
    for k in range(1, len(children) - 1):
        arrow, before, after = children[k], children[k - 1], children[k + 1]
        if isinstance(arrow, Token) and arrow.type == "ARROW" and isinstance(before, Tree) \
                and isinstance(after, Tree):
            problem = _arrow_after_one_step_body(before, arrow, after, text, file)
            if problem is not None:
                problems.append(problem)
    return problems


def _one_step_bodies(step: Tree[Token]) -> list[tuple[Tree[Token], Tree[Token]]]:
    """(construct, its body) for `step` and the one-step bodies nested at its end, outermost first:
    `stages(...) {…} repeat n: conv(c)` gives the table with `repeat…`, then the repeat with `conv`."""
    found = []
    while step.data in _ONE_STEP_BODIES:
        body = step.children[-1]
        if not isinstance(body, Tree) or body.data == "row_steps":
            break
        found.append((step, body))
        step = body
    return found


def _arrow_after_one_step_body(before: Tree[Token], arrow: Token, after: Tree[Token], text: str,
                               file: str) -> Diagnostic | None:
    begins_line = before.meta.end_line < (arrow.line or 0)
    ambiguous = [(construct, body) for construct, body in _one_step_bodies(before)
                 if not (begins_line and (arrow.column or 0) < body.meta.column)]
    if not ambiguous:
        return None
    construct, body = ambiguous[-1]  # the innermost: the construct a reader attaches the `->` to
    step, next_step = _step_words(body, text), _step_words(after, text)
    where = f"{file}:{body.meta.line}:{body.meta.column}"
    line = arrow.line or 1
    span = Span(file, line, arrow.column or 1, line, (arrow.column or 1) + 2)
    once = f"or, for `{next_step}` once after {{}}, begin its line with `->`, left of `{step}`"
    if construct.data == "stages_step":
        return Diagnostic(
            "E0103", f"`-> {next_step}` after the row step of a stage table is ambiguous", span,
            f"brace the steps for each row: `}} {{ {step} -> {next_step} }}`; " + once.format("the table"),
            notes=(f"a stage table applies one step to each row, here `{step}` ({where}); "
                   "a `->` after it continues once the whole table is done",))
    count = _source(construct.children[0], text)
    return Diagnostic(
        "E0103", f"`-> {next_step}` after `repeat {count}: {step}` is ambiguous", span,
        f"brace the steps to repeat: `repeat {count} {{ {step} -> {next_step} }}`; " + once.format("the repeats"),
        notes=(f"`repeat n: step` repeats one step, here `{step}` ({where}); "
               "a `->` after it continues once the repetitions are done",))


def _unused_loop_variable(repeat: Tree[Token], var: Token, file: str) -> list[Diagnostic]:
    """`repeat n as NAME` names a loop variable, while `as NAME` everywhere else is a label (and a
    stage table's `stages(...) as NAME {` is one): a variable the body never reads was most likely
    meant as the repeat's label."""
    body, label = _repeat_body(repeat), repeat.children[-1]
    if not isinstance(body, Tree) or _reads(body, str(var)):
        return []
    if repeat.data != "repeat_step" and isinstance(label, Tree) and _reads(label, str(var)):
        return []  # `repeat n as i { … } as layer{i + 1}`: the index names each iteration
    line, col = var.line or 1, var.column or 1
    labelled = repeat.data != "repeat_step" and repeat.children[-1] is not None
    hint = f"drop `as {var}`" if labelled else (
        f"`repeat n as {var}` names the repetition's index; a repeat's label follows its body: "
        f"`repeat n {{ … }} as {var}` (drop `as {var}` if no name is needed)")
    return [Diagnostic("E0105", f"the loop variable `{var}` is never used",
                       Span(file, line, col, line, col + len(str(var))), hint)]


def _repeat_body(repeat: Tree[Token]) -> Tree[Token] | Token | None:
    """The steps or statements a repeat repeats (its children: count, index, [`, j of n`,] body[, label])."""
    return repeat.children[-1] if repeat.data == "repeat_step" else repeat.children[-2]


def _table_index_problems(repeat: Tree[Token], across: Tree[Token], row_step: bool, file: str) -> list[Diagnostic]:
    """`repeat n as i, j of blocks` counts the blocks of a stage table: only a table's row step has
    rows around it to count across, and `j`, the one name the clause exists for, must be read (a
    body reading `i` alone most likely took `i` for the count across the table)."""
    index, total = (str(t) for t in across.children)
    meta = across.meta
    if not row_step:
        return [Diagnostic(
            "E0108", f"`, {index} of {total}` counts the blocks of a stage table's rows, but this repeat is no "
            "table's row step", Span(file, meta.line, meta.column, meta.end_line, meta.end_column),
            f"write it on the repeat that follows a table's rows: `stages(…) {{ rows }} repeat n as i, {index} of "
            f"{total}: step`; a repeat alone counts with its own index (`repeat n as i`: `i` of `n`)")]
    body = _repeat_body(repeat)
    if not isinstance(body, Tree) or _reads(body, index):
        return []
    tok = across.children[0]
    assert isinstance(tok, Token)
    line, col = tok.line or 1, tok.column or 1
    return [Diagnostic(
        "E0105", f"the table's block index `{index}` is never used", Span(file, line, col, line, col + len(index)),
        f"`{repeat.children[1]}` numbers the blocks of each row from 0, `{index}` those of the whole table from 0 "
        f"(and `{total}` counts them all); drop `, {index} of {total}` if the row's index is meant")]


def _reads(body: Tree[Token], var: str) -> bool:
    """Whether `body` reads the variable: as a name, inside a label's `{…}`, or as a label part (a
    slip that the elaborator explains better: `as head.i` is the name `i`, not the index)."""
    word = re.compile(rf"(?<![A-Za-z_0-9]){re.escape(var)}(?![A-Za-z_0-9])")
    for node in body.iter_subtrees():
        if node.data == "name" and str(node.children[0]) == var:
            return True
        if node.data == "label_path" and any(
                str(part) == var or (part.type == "LABEL_TEMPLATE" and any(
                    word.search(inside) for inside in re.findall(r"\{([^{}]*)\}", str(part))))
                for part in node.children if isinstance(part, Token)):
            return True
    return False


def _ternary_heads_chain(head: Tree[Token], after: Tree[Token], text: str, file: str) -> Diagnostic:
    meta = head.meta
    cond, then, orelse = (_source(part, text, 16) for part in head.children)
    step = _step_words(after, text)
    return Diagnostic(
        "E0104", "a conditional `c ? a : b` before `->` is ambiguous",
        Span(file, meta.line, meta.column, meta.end_line, meta.end_column),
        f"bracket what you mean: `({cond} ? {then} : {orelse}) -> {step}` applies `{step}` to either value, "
        f"`{cond} ? {then} : ({orelse} -> {step})` only to `{orelse}`")


def _step_words(step: Tree[Token], text: str) -> str:
    """A step as a reader names it: `conv(…)`, `relu`, `repeat n: …`, `if …`, `(…)`."""
    if step.data in ("call_step", "shared"):
        name = str(step.children[0])
        called = f"{name}(…)" if step.children[1] is not None else name
        return called if step.data == "call_step" else f"shared {called}"
    if step.data in ("repeat_step", "repeat_block_step"):
        return f"repeat {_source(step.children[0], text)} …"
    words = {"step_if": "if …", "stages_step": "stages(…) …", "step_group": "(…)", "output_step": "output …"}
    return words.get(str(step.data), "…")


def _source(node: Tree[Token] | Token, text: str, limit: int = 24) -> str:
    """The text a node was parsed from, on one line and shortened to `limit` characters."""
    if isinstance(node, Token):
        start, end = node.start_pos or 0, node.end_pos or 0
    else:
        start, end = node.meta.start_pos, node.meta.end_pos
    words = " ".join(text[start:end].split())
    return words if len(words) <= limit else words[:limit - 1] + "…"


_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {closer: opener for opener, closer in _OPENERS.items()}


@dataclass
class _Brackets:
    """What matching the text's brackets proves: the first bracket left open, as (bracket, offset,
    indentation of its line), and the pairs whose closing bracket begins a line indented unlike the
    opening bracket's line, as (opening offset, closing offset, the closing line's indentation):
    where a missing bracket most likely belongs."""

    unclosed: tuple[str, int, str] | None
    misindented: list[tuple[int, int, str]]


def _match_brackets(text: str) -> _Brackets:
    """Brackets matched as the parser would (strings and comments skipped), in one pass. The
    unclosed one is the innermost still open where a closing bracket of another kind closes an
    enclosing one, else the innermost still open at the end; a closing bracket that closes nothing
    proves nothing (the parser reports it where it stands)."""
    stack: list[tuple[str, int, str]] = []
    open_count = dict.fromkeys(_OPENERS, 0)  # per kind, how many the stack holds
    misindented: list[tuple[int, int, str]] = []
    line_start, indent, first_on_line = 0, "", True
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line_start, indent, first_on_line = i + 1, "", True
            i += 1
            continue
        if ch in " \t":
            i += 1
            continue
        begins_line, first_on_line = first_on_line, False
        if begins_line:
            indent = text[line_start:i]
        if ch in '#"':
            i = _past_comment_or_string(text, i)
        elif ch in _OPENERS:
            stack.append((ch, i, indent))
            open_count[ch] += 1
            i += 1
        elif ch in _CLOSERS and stack and stack[-1][0] == _CLOSERS[ch]:
            _, opened, opened_indent = stack.pop()
            open_count[_CLOSERS[ch]] -= 1
            if begins_line and indent != opened_indent:
                misindented.append((opened, i, indent))
            i += 1
        elif ch in _CLOSERS and open_count[_CLOSERS[ch]]:
            return _Brackets(stack[-1], misindented)
        else:
            i += 1
    return _Brackets(stack[-1] if stack else None, misindented)


def _past_comment_or_string(text: str, i: int) -> int:
    """The offset just past the comment or string starting at `i` (a string ends at its line's end
    if nothing closes it; a comment stops before the line break)."""
    if text[i] == "#":
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    j = i + 1
    while j < len(text) and text[j] not in '"\n':
        j += 2 if text[j] == "\\" else 1
    return j + 1 if j < len(text) and text[j] == '"' else j


def _position(text: str, pos: int) -> tuple[int, int]:
    """(line, column), 1-based, of an offset."""
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


@dataclass
class _Problem:
    """What a syntax error says and where: its message, the caret's line, column and width, a hint,
    and the offset in the text where parsing stopped."""

    msg: str
    width: int
    hint: str | None
    line: int
    col: int
    pos: int | None


_END_OF_FILE = "unexpected end of file"


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> ArchError:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedToken):
        problem = _unexpected_token(exc, text, line, col)
    elif isinstance(exc, UnexpectedCharacters):
        problem = _unexpected_character(exc, text, line, col)
    elif isinstance(exc, UnexpectedEOF):
        problem = _end_of_file(text, None)
    else:  # pragma: no cover - lark has no other UnexpectedInput kinds
        problem = _Problem("syntax error", 1, None, line, col, getattr(exc, "pos_in_stream", None))
    if not isinstance(exc, UnexpectedCharacters):  # a stray character is its own problem
        brackets = _match_brackets(text)
        if brackets.unclosed is not None and problem.pos is not None and brackets.unclosed[1] < problem.pos:
            return _unclosed_bracket(brackets, text, file, problem)
    span = Span(file, problem.line, problem.col, problem.line, problem.col + problem.width)
    return ArchError(Diagnostic("E0100", f"syntax error: {problem.msg}", span, problem.hint or None))


def _unclosed_bracket(brackets: _Brackets, text: str, file: str, problem: _Problem) -> ArchError:
    """A bracket never closed, reported at its opening (as rustc does), with a note at the place
    where the parser gave up (a symptom, often far from the cause) and, where a closing bracket inside
    it is indented like its line but unlike the line of the bracket it closes, a note that the
    bracket left open may be that one."""
    assert brackets.unclosed is not None
    opener, pos, indent = brackets.unclosed
    line, col = _position(text, pos)
    notes = [f"the parser gave up at {file}:{problem.line}:{problem.col}: {problem.msg}"]
    # a closing bracket inside, indented like the unclosed one's line, probably was meant for it
    inside = [(o, c) for o, c, closing_indent in brackets.misindented if o > pos and closing_indent == indent]
    if inside:
        (o_line, o_col), (c_line, c_col) = _position(text, inside[0][0]), _position(text, inside[0][1])
        notes.append(f"perhaps the `{text[inside[0][0]]}` at {file}:{o_line}:{o_col} is the one left open: the "
                     f"`{text[inside[0][1]]}` that closes it, at {file}:{c_line}:{c_col}, is indented unlike its line")
    return ArchError(Diagnostic(
        "E0100", f"syntax error: unclosed `{opener}`", Span(file, line, col, line, col + 1),
        f"close it with `{_OPENERS[opener]}` where what it opens ends", notes=tuple(notes)))


def _end_of_file(text: str, hint: str | None) -> _Problem:
    lines = text.splitlines() or [""]
    return _Problem(_END_OF_FILE, 1, hint, len(lines), len(lines[-1]) + 1, len(text))


def _unexpected_token(exc: UnexpectedToken, text: str, line: int, col: int) -> _Problem:
    tok = exc.token
    if tok.type == "$END":
        problem = _end_of_file(text, None)
    else:
        problem = _Problem(f"unexpected {_describe_token(tok)}", max(1, len(str(tok).split("\n")[0])), None,
                           line, col, tok.start_pos)
    problem.hint = _expected(set(exc.accepts or exc.expected))
    if tok.type in ("PLUS", "MINUS", "MUL_OP", "POW_OP", "COMP_OP") and "ARROW" in (exc.accepts or set()):
        problem.hint = "a chain `x -> f` ends at an operator; wrap it in parentheses: `(x -> f) + y`"
    if tok.type != "$END" and tok.start_pos is not None:
        word = _word_before(text, tok.start_pos)
        if word is not None and word in KEYWORDS and str(tok) in ("=", ",", ":"):
            problem.msg = f"`{word}` is a keyword and cannot be used as a name"
            problem.hint = f"choose another name, e.g. `{word}_`"
            problem.col = col - len(word) - (tok.start_pos - _word_end(text, tok.start_pos))
            problem.width = len(word)
    return problem


def _unexpected_character(exc: UnexpectedCharacters, text: str, line: int, col: int) -> _Problem:
    pos = exc.pos_in_stream or 0  # always set for a character error
    ch = text[pos] if pos < len(text) else "?"
    problem = _Problem(f"unexpected character `{ch}`", 1, _expected(set(exc.allowed or ())) or None, line, col, pos)
    if ch == '"':
        end = text.find("\n", pos)
        problem.msg = "unterminated string"
        problem.width = max(1, (len(text) if end < 0 else end) - pos)
        problem.hint = 'close it with `"` on the same line (strings cannot span lines)'
    return problem


def _word_end(text: str, pos: int) -> int:
    """Offset just past the identifier that precedes `pos` (skipping blanks)."""
    i = pos
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    return i


def _word_before(text: str, pos: int) -> str | None:
    end = _word_end(text, pos)
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return text[start:end] or None

"""Lark parsing: the grammar (``grammar.lark``, package data), the tree → AST transformer, and
the one boundary where Lark's exceptions become :class:`ArchError` diagnostics.

The transformer's method names equal the grammar's rule and alias names one to one, and any
rule nobody handles fails loudly.
"""

from __future__ import annotations

import ast as py_ast
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .diagnostics import ArchError, Diagnostic, Span, error
from .syntax import (
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
    InputDecl,
    ListLit,
    Module,
    Name,
    NetworkDef,
    Node,
    Not,
    Num,
    OutputDecl,
    OutputStep,
    Param,
    RepeatStep,
    RepeatStmt,
    ShapeLit,
    StagesStep,
    Str,
    TableRow,
    Ternary,
    Unary,
    VariantDef,
    parse_number,
)


class ToAst(Transformer):
    """Lark tree → AST. One method per rule or alias; `__default__` refuses anything unhandled."""

    def __init__(self, file: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file

    # one span helper for every method
    def _sp(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span.unknown(self.file)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)

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

    @v_args(meta=True)
    def block_def(self, meta: Any, ch: list[Any]) -> BlockDef:
        name, params, inputs, outputs, body = ch
        return BlockDef(
            self._sp(meta), str(name), params or (), tuple(inputs) if inputs else ("in",),
            tuple(outputs) if outputs else None, body,
        )

    def inputs_decl(self, ch: list[Token | None]) -> list[str]:
        return [str(t) for t in ch if t is not None]

    outputs_decl = inputs_decl

    @v_args(meta=True)
    def network_def(self, meta: Any, ch: list[Any]) -> NetworkDef:
        name, params, body = ch
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
        percent = None
        tol_expr = None
        if isinstance(tol, Token):  # PERCENTAGE
            percent = float(str(tol)[:-1])
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

    # --- expressions
    @v_args(meta=True)
    def chain(self, meta: Any, ch: list[Any]) -> Chain:
        return Chain(self._sp(meta), ch[0], tuple(ch[1:]))

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
        return Num(self._sp(meta), parse_number(str(ch[0])))

    @v_args(meta=True)
    def shape_literal(self, meta: Any, ch: list[Token]) -> ShapeLit:
        return ShapeLit(self._sp(meta), tuple(int(d) for d in str(ch[0]).split("x")))

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

    def label(self, ch: list[Any]) -> tuple[str, ...]:
        return ch[0]

    def label_path(self, ch: list[Token]) -> tuple[str, ...]:
        parts: list[str] = []
        for tok in ch:
            parts.extend(str(tok).split("."))  # `a.0.1` lexes its tail as the number `0.1`
        return tuple(parts)

    def step_chain(self, ch: list[Any]) -> tuple[Node, ...]:
        return tuple(ch)

    @v_args(meta=True)
    def step_if(self, meta: Any, ch: list[Any]) -> IfStep:
        cond, then, orelse = ch
        return IfStep(self._sp(meta), cond, then, orelse)

    @v_args(meta=True)
    def repeat_step(self, meta: Any, ch: list[Any]) -> RepeatStep:
        count, var, step = ch
        return RepeatStep(self._sp(meta), count, str(var) if var else None, (step,), None)

    @v_args(meta=True)
    def repeat_block_step(self, meta: Any, ch: list[Any]) -> RepeatStep:
        count, var, steps, label = ch
        return RepeatStep(self._sp(meta), count, str(var) if var else None, steps, label)

    @v_args(meta=True)
    def stages_step(self, meta: Any, ch: list[Any]) -> StagesStep:
        cols = tuple(str(t) for t in ch if isinstance(t, Token))
        rest = [c for c in ch if not isinstance(c, Token)]
        label = rest[0] if rest and (rest[0] is None or isinstance(rest[0], tuple)) else None
        if rest and (rest[0] is None or isinstance(rest[0], tuple)):
            rest = rest[1:]
        rows = tuple(r for r in rest[:-1])
        return StagesStep(self._sp(meta), cols, label, rows, rest[-1])

    @v_args(meta=True)
    def table_row(self, meta: Any, ch: list[Any]) -> TableRow:
        return TableRow(self._sp(meta), tuple(ch))

    @v_args(meta=True)
    def output_step(self, meta: Any, ch: list[Token]) -> OutputStep:
        return OutputStep(self._sp(meta), str(ch[0]))


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
    "_ARROW": "`->`", "COMP_OP": "a comparison", "MUL_OP": "an operator",
}


@cache
def _parser() -> Lark:
    return Lark.open_from_package(
        "archdsl", "grammar.lark", parser="lalr", propagate_positions=True, maybe_placeholders=True,
        cache=True,
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


def lark_parse(text: str, file: str) -> Module:
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except RecursionError:
        raise error("E0003", "expression nested too deeply", Span(file, 1, 1, 1, 2),
                    "split the expression into named intermediate values") from None
    try:
        return ToAst(file).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ArchError):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise error("E0003", "expression nested too deeply", Span(file, 1, 1, 1, 2),
                    "split the expression into named intermediate values") from None


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> ArchError:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
            msg, width = "unexpected end of file", 1
        else:
            msg, width = f"unexpected {_describe_token(tok)}", max(1, len(str(tok)))
        hint = _expected(set(exc.accepts or exc.expected))
        if tok.type in ("PLUS", "MINUS", "MUL_OP", "POW_OP", "COMP_OP") and "_ARROW" in (exc.accepts or set()):
            hint = "a chain `x -> f` ends at an operator; wrap it in parentheses: `(x -> f) + y`"
        if tok.type == "$END":
            hint = (hint + "; " if hint else "") + "is a `}` or `)` missing?"
    elif isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        msg, width = f"unexpected character `{ch}`", 1
        hint = _expected(set(exc.allowed or ())) or None
    elif isinstance(exc, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        msg, width, hint = "unexpected end of file", 1, "is a `}` or `)` missing?"
    else:  # pragma: no cover - lark has no other UnexpectedInput kinds
        msg, width, hint = "syntax error", 1, None
    return ArchError(Diagnostic("E0100", f"syntax error: {msg}", Span(file, line, col, line, col + width),
                                hint or None))

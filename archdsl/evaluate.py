"""Expressions evaluated without building anything: the IR-free half of the interpreter.

:class:`Evaluator` computes every expression that makes no layer — numbers, lists, names,
arithmetic, comparisons, conditions, builtins, attributes of tensors and bundles, indexing — and the
statements that only bind names. It needs no IR, so a parameter default, a variant's arguments, a
``--set`` value or an ``expect`` target are evaluated with it directly. Constructs that build layers
(op and block calls, ``->`` chains, tensor arithmetic, ``input``/``output``/``repeat``) are hooks
that :class:`archdsl.elaborate.Elaborator` implements; here they are a diagnostic.

>>> from archdsl.loader import Loader
>>> defs = Loader().load_text("network n(w=16) { input x: 3x8x8 \\n x }", "<doc>")
>>> from archdsl.parser import parse
>>> expr = parse("network e { v = divisible(w * 1.4) \\n }", "<doc>").items[0].body.stmts[0].value
>>> Evaluator().eval(expr, Env({"w": 16}, defs, ()))
24
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .binding import as_partial, split_args
from .diagnostics import ArchError, Span, did_you_mean, error
from .functions import BUILTIN_DOCS, BUILTINS, number
from .limits import LIMITS, Limits
from .loader import Definitions
from .ops import fmt_shape, has_op, op_names
from .syntax import (
    FLOAT_MAX,
    RANGE_HINT,
    Arg,
    Assign,
    Attribute,
    BinOp,
    Body,
    BoolOp,
    Call,
    Chain,
    Const,
    Destructure,
    Expect,
    ExprStmt,
    IfExpr,
    Index,
    InitStmt,
    Label,
    ListLit,
    Name,
    Node,
    Not,
    Num,
    ShapeLit,
    Shared,
    Str,
    Ternary,
    Unary,
)
from .values import (
    BOOLEAN_NUMBER_HINT,
    POISON,
    TENSOR_ATTRS,
    UNKNOWN_CALLABLE_HINT,
    BlockRef,
    Bundle,
    Dim,
    OpRef,
    Partial,
    SharedRef,
    Tensor,
    Value,
    boolean_against_number,
    describe,
    op_ref,
    tensor_attribute,
)
from .vocabulary import SYMBOLS


@dataclass
class Env:
    """Where an expression is evaluated: its variables, the definitions visible from its file, and
    the block path that new layers go into. `expired` holds the names that were bound only inside a
    construct now finished (a stage table's columns, a repeat's index), each with the hint saying
    where it was bound, so that a later use is an unknown name that says why, never the last row's
    value."""

    vars: dict[str, Value]
    ns: Definitions
    scope: tuple[str, ...]
    expired: dict[str, str] = field(default_factory=dict)
    # Where `as L[]` puts the lists it appends to, when not in `scope`: the scope around the unlabelled
    # stage-table rows and repeat iterations under way, which add no scope of their own to a list.
    lists: tuple[str, ...] | None = None

    def within(self, scope: tuple[str, ...], lists: tuple[str, ...] | None = None) -> Env:
        """The same variables (and expired names), new layers going into `scope` (`lists`: see above)."""
        return Env(self.vars, self.ns, scope, self.expired, lists)

    @property
    def list_scope(self) -> tuple[str, ...]:
        """The scope that `as L[]` appends to `L` in."""
        return self.scope if self.lists is None else self.lists

    def outside(self, names: tuple[str, ...]) -> dict[str, Value]:
        """The values that names about to be bound for the length of a construct have outside it."""
        return {name: self.vars[name] for name in names if name in self.vars}

    def unbind(self, names: tuple[str, ...], outside: dict[str, Value], why: str) -> None:
        """Each name means again what it meant outside the construct, or nothing: then `why` (with
        `{name}` for the name) is the hint of an unknown-name error where it is used."""
        for name in names:
            if name in outside:
                self.vars[name] = outside[name]
            else:
                self.vars.pop(name, None)
                self.expired[name] = why.replace("{name}", name)  # not str.format: a file name may hold braces


NO_LAYERS_HINT = "layers are built only in the body of a network or a block"
# What a call can name besides a builtin: an op, a block, a layer value or a shared instance.
Layer = OpRef | BlockRef | Partial | SharedRef
LAYER_VALUES = (OpRef, BlockRef, Partial, SharedRef)
_LABEL_PART = re.compile(r"[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*")  # dashes as in nn.Module names: `block1-0`
# Names people write for the numbers a spec cannot hold (Python's float("inf") prints as `inf`).
NOT_NUMBERS = frozenset({"inf", "infinity", "nan"})
_ABSENT = object()  # what `dict.get` gives for a name not bound (None is a value a variable may hold)


class Poisoned(Exception):
    """A statement used a name whose own statement failed: it stops without a diagnostic of its own."""


class Evaluator:
    """Evaluates expressions; counts every step against ``limits.max_steps``."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.steps = 0  # expressions evaluated and repeat iterations run
        self._max_steps = limits.max_steps
        self._small = 1 << max(0, min(64, limits.max_int_bits))  # integers below it in magnitude are within bounds
        self._methods = _methods(type(self))
        self._static_labels: dict[int, object] = {}  # label_of: each label's parts, where they hold no expression

    def tick(self, span: Span) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise error("E0526", f"elaboration takes more than {self.limits.max_steps:,} steps", span,
                        "nested repeats multiply; reduce the counts, or raise the limit (--max-steps)")

    def no_layers(self, what: str, span: Span) -> ArchError:
        """The diagnostic for a construct that would build layers where none can be built."""
        return error("E0527", f"{what} builds layers; it cannot be evaluated here", span, NO_LAYERS_HINT)

    # ---- statements that only bind names ------------------------------------------------------
    def exec_body(self, body: Body, env: Env) -> Value:
        """Runs the statements; the body's value is its last statement's, `expect` lines aside (they
        check the network, they are no expression)."""
        last: Value = None
        for stmt in body.stmts:
            value = self.exec_stmt(stmt, env)
            if not isinstance(stmt, Expect | InitStmt):
                last = value
        return last

    def exec_stmt(self, stmt: Node, env: Env) -> Value:
        if isinstance(stmt, Assign):
            env.vars[stmt.target] = self.eval(stmt.value, env)
            return None
        if isinstance(stmt, Destructure):
            value = self.eval(stmt.value, env)
            items = self.unpack(value, len(stmt.targets), stmt.span)
            for target, item in zip(stmt.targets, items, strict=True):
                env.vars[target] = item
            return None
        if isinstance(stmt, ExprStmt):
            return self.eval(stmt.expr, env)
        raise error("E0900", f"statement `{type(stmt).__name__}` is not allowed here", stmt.span)

    def unpack(self, value: Value, n: int, span: Span) -> list[Value]:
        if isinstance(value, Bundle):
            items: list[Value] = list(value.tensors)
        elif isinstance(value, tuple | list):
            items = list(value)
        else:
            raise error("E0409", f"cannot unpack {describe(value)} into {n} names", span,
                        "unpack the outputs of split(...) or of a multi-output block")
        if len(items) != n:
            raise error("E0410", f"{len(items)} values to unpack into {n} names", span,
                        "match the number of names to the number of outputs")
        return items

    # ---- expressions -------------------------------------------------------------------------
    def eval(self, node: Node, env: Env) -> Value:
        self.steps += 1  # tick(), inlined: every expression passes here
        if self.steps > self._max_steps:
            self.steps -= 1
            self.tick(node.span)
        kind = type(node)
        if kind is Name:  # half of all evaluations: a bound variable is answered here, the rest by lookup()
            value = env.vars.get(node.id, _ABSENT)  # type: ignore[attr-defined]
            if value is not _ABSENT and value is not POISON:
                return value
            return self.lookup(node.id, node.span, env)  # type: ignore[attr-defined]
        if kind is Num:  # a quarter: `conv(64, 3)`
            value = node.value  # type: ignore[attr-defined]
            if type(value) is int and -self._small < value < self._small:  # check_number's first case
                return value
            return self.check_number(value, node.span)
        if kind is Const:  # `false`, `none`
            return node.value  # type: ignore[attr-defined]
        method = self._methods.get(kind)
        if method is None:
            raise error("E0900", f"`{type(node).__name__}` cannot be used as a value here", node.span)
        return method(self, node, env)

    def _e_num(self, node: Num, env: Env) -> Value:
        return self.check_number(node.value, node.span)  # the parser bounds it by FLOAT_MAX, not by the limits

    def _e_str(self, node: Str, env: Env) -> Value:
        return node.value

    def _e_const(self, node: Const, env: Env) -> Value:
        return node.value

    def _e_shape(self, node: ShapeLit, env: Env) -> Value:
        return list(node.dims)

    def _e_list(self, node: ListLit, env: Env) -> Value:
        if len(node.items) > self.limits.max_list_len:
            raise error("E0501", "list too long", node.span)
        return [self.eval(x, env) for x in node.items]

    def _e_name(self, node: Name, env: Env) -> Value:
        return self.lookup(node.id, node.span, env)

    def lookup(self, name: str, span: Span, env: Env) -> Value:
        if name in env.vars:
            value = env.vars[name]
            if value is POISON:
                raise Poisoned(name)
            return value
        if name in env.ns.blocks:
            return BlockRef(name)
        if has_op(name):
            return op_ref(name)
        if name in SYMBOLS:
            return name
        if name in env.expired:
            raise error("E0401", f"unknown name `{name}`", span, env.expired[name])
        candidates = [*env.vars, *env.ns.blocks, *op_names(), *SYMBOLS]
        hint = did_you_mean(name, candidates)
        if name == "in":
            hint = "`in` is the input of a block; in a network, use the name of an `input`"
        if name.lower() in NOT_NUMBERS:
            example = " (e.g. 1e9 for a very large one)" if name.lower() != "nan" else ""
            raise error("E0401", f"unknown name `{name}`: a spec has no infinite or undefined numbers", span,
                        f"every number in a spec is finite: write the value itself{example}, "
                        "or leave the attribute out for its default")
        raise error("E0401", f"unknown name `{name}`", span,
                    hint or f"define it before use, or pass it as a parameter; the builtins are {', '.join(BUILTINS)}")

    def _e_binop(self, node: BinOp, env: Env) -> Value:
        left = self.eval(node.left, env)
        right = self.eval(node.right, env)
        if type(left) in _PLAIN_NUMBERS and type(right) in _PLAIN_NUMBERS:  # two numbers, neither a boolean
            fast = _NUMERIC.get(node.op)
            if fast is not None:  # what `arith` gives them, decided at once
                try:
                    result = fast(left, right)
                except OverflowError:  # float(int) beyond FLOAT_MAX
                    raise error("E0503", "arithmetic overflow: the result is beyond the largest float", node.span,
                                RANGE_HINT) from None
                kind = type(result)
                if kind is bool or (kind is int and -self._small < result < self._small):
                    return result
                return self.check_number(result, node.span)
        elif isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.tensor_binop(node, left, right, env)
        return self.arith(node.op, left, right, node.span)

    def tensor_binop(self, node: BinOp, left: Value, right: Value, env: Env) -> Value:
        """`a + b`, `a * b`, `0.17 * y` with a tensor operand: an `add`, `mul` or `scale` layer."""
        raise self.no_layers(f"`{node.op}` of a tensor", node.span)

    def arith(self, op: str, a: Value, b: Value, span: Span) -> Value:
        """`a op b` of two values that are not tensors."""
        try:
            if op in ("==", "!="):
                return self.equal(a, b, span, op) == (op == "==")
            if op in ("<", "<=", ">", ">="):
                number(op, a), number(op, b)
                return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
            if op == "+" and isinstance(a, list) and isinstance(b, list):
                if len(a) + len(b) > self.limits.max_list_len:
                    raise error("E0501", f"list too long ({len(a) + len(b):,} items; the limit is "
                                f"{self.limits.max_list_len:,})", span)
                return a + b
            x, y = number(op, a), number(op, b)
            if op == "**":
                result = self._power(x, y, span)
            elif op in ("/", "//", "%") and y == 0:
                raise error("E0504", "division by zero", span)
            else:
                result = _ARITHMETIC[op](x, y)
        except TypeError as exc:
            raise error("E0505", str(exc), span) from None
        except ZeroDivisionError:
            raise error("E0504", "division by zero", span) from None
        except (OverflowError, ValueError):  # float(int) or float ** float beyond FLOAT_MAX
            raise error("E0503", "arithmetic overflow: the result is beyond the largest float", span,
                        RANGE_HINT) from None
        return self.check_number(result, span)

    def equal(self, a: Value, b: Value, span: Span, op: str = "==") -> bool:
        """`a == b` — an error where a boolean meets a number, which Python counts equal to 0 or 1
        (`op` is the comparison as written, for the message)."""
        mixed = boolean_against_number(a, b)
        if mixed is not None:
            raise error("E0505", f"`{op}` between {describe(mixed[0])} and {describe(mixed[1])}", span,
                        BOOLEAN_NUMBER_HINT)
        return bool(a == b)

    def _power(self, x: float, y: float, span: Span) -> Value:
        if isinstance(x, int) and isinstance(y, int) and abs(x) > 1 and y > 0:
            bits = y * math.log2(abs(x))  # refused before it is computed: 3 ** 10**9 would take minutes
            if bits > self.limits.max_int_bits:
                raise error("E0503", f"`{x} ** {y}` is too large (over {self.limits.max_int_bits} bits)", span,
                            "integers in a spec are bounded; raise --max-int-bits if this is intended")
            if bits > 1025:
                raise error("E0503", f"`{x} ** {y}` is beyond the largest float", span, RANGE_HINT)
        if isinstance(x, float) or isinstance(y, float):
            if abs(y) > 1e6:
                raise error("E0503", "exponent too large", span)
            return float(x) ** float(y)
        return x**y if y >= 0 else float(x) ** y

    def check_number(self, v: Value, span: Span) -> Value:
        """`v` if it is not a number, or a number within the limits: an integer of at most
        `max_int_bits` bits, and in any case within ±FLOAT_MAX (so that it converts to a float
        wherever one is needed); a float that is finite; never a complex."""
        kind = type(v)
        if (kind is int and v.bit_length() <= 64 <= self.limits.max_int_bits) or kind is str or v is None \
                or kind is bool or (kind is float and math.isfinite(v)):
            return v  # the common cases, decided at once
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > min(self.limits.max_int_bits, 1023):
            if v.bit_length() > self.limits.max_int_bits:
                raise error("E0503", f"integer too large ({v.bit_length()} bits; the limit is "
                            f"{self.limits.max_int_bits})", span,
                            "integers in a spec are bounded; raise --max-int-bits if this is intended")
            if abs(v) > FLOAT_MAX:
                raise error("E0503", "integer beyond the largest float", span, RANGE_HINT)
        if isinstance(v, float) and not math.isfinite(v):
            raise error("E0503", "arithmetic overflow: the result is beyond the largest float", span, RANGE_HINT)
        if isinstance(v, complex):
            raise error("E0503", "the result is not a real number", span,
                        "a negative number raised to a fractional power is complex")
        return v

    def _e_unary(self, node: Unary, env: Env) -> Value:
        v = self.eval(node.operand, env)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise error("E0505", f"`-` needs a number, got {describe(v)}", node.span)
        return -v

    def _e_boolop(self, node: BoolOp, env: Env) -> Value:
        left = self.truth(self.eval(node.left, env), node.left.span)
        if node.op == "and":
            return left and self.truth(self.eval(node.right, env), node.right.span)
        return left or self.truth(self.eval(node.right, env), node.right.span)

    def _e_not(self, node: Not, env: Env) -> Value:
        return not self.truth(self.eval(node.operand, env), node.operand.span)

    def truth(self, v: Value, span: Span) -> bool:
        if v is True or v is False:
            return v
        if isinstance(v, bool | int | float | str | list) or v is None:
            return bool(v)
        raise error("E0506", f"{describe(v)} cannot be used as a condition", span,
                    "compare it with something, e.g. `in.channels == c`")

    def condition(self, node: Node, env: Env) -> bool:
        """The truth of an `if`'s condition (the elaborator also notes it for the block being built)."""
        return self.truth(self.eval(node, env), node.span)

    def _e_ternary(self, node: Ternary, env: Env) -> Value:
        cond = self.eval(node.cond, env)
        if cond is not True and cond is not False:
            cond = self.truth(cond, node.cond.span)
        branch = node.then if cond else node.orelse
        return self.eval(branch, env)

    def _e_if(self, node: IfExpr, env: Env) -> Value:
        if self.condition(node.cond, env):
            return self.exec_body(node.then, env)
        if node.orelse is None:
            return None
        if isinstance(node.orelse, IfExpr):
            return self._e_if(node.orelse, env)
        return self.exec_body(node.orelse, env)

    def _e_attr(self, node: Attribute, env: Env) -> Value:
        obj = self.eval(node.obj, env)
        if isinstance(obj, Tensor):
            getter = TENSOR_ATTRS.get(node.name)
            if getter is None:
                raise error("E0507", f"tensors have no attribute `{node.name}`", node.span,
                            did_you_mean(node.name, list(TENSOR_ATTRS)) or f"try {', '.join(TENSOR_ATTRS)}")
            if node.name in ("height", "h", "width", "w") and len(obj.shape) != 3:
                raise error("E0507", f"`{node.name}` of a {fmt_shape(obj.shape)} tensor", node.span)
            return tensor_attribute(obj, node.name)
        if isinstance(obj, Bundle):
            t = obj.get(node.name)
            if t is None:
                raise error("E0507", f"the block has no output `{node.name}`", node.span,
                            did_you_mean(node.name, obj.names) or f"its outputs: {', '.join(obj.names)}")
            return t
        raise error("E0507", f"{describe(obj)} has no attribute `{node.name}`", node.span)

    def _e_index(self, node: Index, env: Env) -> Value:
        obj = self.eval(node.obj, env)
        idx = self.eval(node.index, env)
        if isinstance(obj, Bundle):
            obj = obj.tensors
        if not isinstance(obj, list | tuple):
            raise error("E0508", f"cannot index {describe(obj)}", node.span)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise error("E0508", f"an index must be an integer, got {describe(idx)}", node.index.span)
        if not -len(obj) <= idx < len(obj):
            raise error("E0508", f"index {idx} is out of range for {len(obj)} items", node.index.span)
        return obj[idx]

    def _e_chain(self, node: Chain, env: Env) -> Value:
        raise self.no_layers("a `->` chain", node.span)

    # ---- calls -------------------------------------------------------------------------------
    def _e_call(self, node: Call, env: Env) -> Value:
        if node.label is None:  # `min(a, b)`, `f(x)`: placed where it is
            return self.call(node.func, node.func_span, node.args, None, node.span, env, None)
        label, at = self.placed(node.label, env)
        return self.call(node.func, node.func_span, node.args, None, node.span, at, label)

    def placed(self, label: Label | None, env: Env) -> tuple[tuple[str, ...] | None, Env]:
        """A call's label's parts, and the environment the call builds its layers in (the Elaborator
        places `as L[]` in the list's scope; here no call builds layers)."""
        return self.label_of(label, env), env

    def _e_shared(self, node: Shared, env: Env) -> Value:
        raise self.no_layers("a shared instance", node.span)

    def label_of(self, label: Label | None, env: Env) -> tuple[str, ...] | None:
        """A label's parts, with the expressions in braces evaluated: `denselayer{i + 1}` → `denselayer3`."""
        if label is None:
            return None
        static = self._static_labels.get(id(label), _ABSENT)  # the definitions outlive the evaluator: ids are stable
        if static is _ABSENT:
            static = self._static_labels[id(label)] = label.static()
        if static is not None:
            return static  # type: ignore[return-value]
        parts = []
        for part in label.parts:
            text = ""
            for piece in part:
                if isinstance(piece, str):
                    text += piece
                    continue
                value = self.eval(piece, env)
                negative = isinstance(value, int) and value < 0
                if isinstance(value, bool) or not isinstance(value, int | str) or negative:
                    raise error("E0531", f"a label's `{{…}}` must give a whole number or a name, got "
                                f"{describe(value)}", piece.span,
                                "count from 0 with the loop index: `as layer{i}`, from 1: `as layer{i + 1}`")
                text += str(value)
            if not _LABEL_PART.fullmatch(text):
                raise error("E0531", f"`{text}` cannot be part of a label: it is not a name or a number", label.span,
                            "labels are names and numbers separated by dots (dashes may join words: `block1-0`)")
            parts.append(text)
        return tuple(parts)

    def call(self, func: str, func_span: Span, args: tuple[Arg, ...], chained: Value, span: Span, env: Env,
             label: tuple[str, ...] | None, scope_override: tuple[str, ...] | None = None) -> Value:
        """A call as written (`f(args)`, or `x -> f(args)` with `chained` = x): a builtin is computed
        here, an op or a block goes to :meth:`call_layer`."""
        target: Value
        held = env.vars.get(func, _ABSENT)
        if held is POISON:
            raise Poisoned(func)
        # A variable shadows ops and blocks only when it holds one (`act=relu6`, `block=basic`), so a
        # parameter named `dropout` (a probability) does not hide the op `dropout`.
        if held is not _ABSENT and (isinstance(held, LAYER_VALUES)
                                    or not (func in env.ns.blocks or has_op(func) or func in BUILTINS)):
            target = held
        elif func in env.ns.blocks:
            target = BlockRef(func)
        elif func in BUILTINS and chained is None:
            if label is not None:
                raise error("E0531", f"`{func}` computes a number; a label names a layer", span,
                            f"drop `as {'.'.join(label)}`")
            return self._builtin(func, args, span, env)
        elif has_op(func):
            target = op_ref(func)
        elif func in env.expired:
            raise error("E0402", f"unknown op or block `{func}`", func_span, env.expired[func])
        else:
            callables = [k for k, v in env.vars.items() if isinstance(v, LAYER_VALUES)]
            numeric = BUILTINS if chained is None else {}  # `x -> maxot(2)` is not meant to be `max`
            candidates = [*env.ns.blocks, *op_names(), *numeric, *callables]
            attribute = f"a tensor `x` gives its {func} as `x.{func}`" if func in TENSOR_ATTRS else None
            raise error("E0402", f"unknown op or block `{func}`", func_span,
                        attribute or did_you_mean(func, candidates) or UNKNOWN_CALLABLE_HINT)
        if isinstance(target, LAYER_VALUES):
            return self.call_layer(target, args, chained, span, func_span, env, label, scope_override)
        raise error("E0514", f"`{func}` is {describe(target)}, not an op or a block", func_span)

    def call_layer(self, target: Layer, args: tuple[Arg, ...], chained: Value, span: Span,
                   func_span: Span, env: Env, label: tuple[str, ...] | None,
                   scope_override: tuple[str, ...] | None) -> Value:
        """An op or block instantiated with `args`; without input tensors, a layer value (:class:`Partial`)."""
        operands = split_args(args, chained, self.eval, env)
        partial = as_partial(target, operands, label, chained)
        if partial is None:
            raise self.no_layers(f"`{target.name}`", span)
        return partial

    def _builtin(self, func: str, args: tuple[Arg, ...], span: Span, env: Env) -> Value:
        pos = [self.eval(a.value, env) for a in args if a.name is None]
        kw = {a.name: self.eval(a.value, env) for a in args if a.name is not None}
        if func != "len":
            for v in (*pos, *kw.values()) if kw else pos:
                tensor = None if type(v) in _PLAIN_NUMBERS else _tensor_in(v)  # a number holds none
                if tensor is not None:
                    raise error("E0515", f"`{func}` works on numbers, not on {describe(tensor)}", span,
                                TENSOR_BUILTIN_HINTS.get(func, "shape queries such as `x.channels` give numbers"))
        try:
            result = BUILTINS[func](*pos, **kw)
        except OverflowError:  # ceil(1e308) as an integer, float() of a huge one
            raise error("E0503", f"`{func}` overflows: the result is beyond the largest float", span,
                        RANGE_HINT) from None
        except (TypeError, ValueError, ArithmeticError, IndexError) as exc:
            raise error("E0515", f"bad call of `{func}`: {exc or type(exc).__name__}", span,
                        f"usage: {BUILTIN_DOCS[func]}") from None
        return self.check_number(result, span)


# The operators on two numbers, neither a boolean. `_NUMERIC`: those that `_e_binop` answers at once
# for two plain numbers, as `arith` would (no division by zero to rule out, no power to bound; a
# comparison of two numbers is never the boolean-against-number error).
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
    "%": operator.mod}
_PLAIN_NUMBERS = frozenset({int, float, Dim})  # a Dim (`in.channels`) computes as the int it is
_NUMERIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

TENSOR_BUILTIN_HINTS = {
    "max": "for tensors: `maxout(p)` takes the maximum over groups of channels, `maxpool` over windows",
    "min": "builtins compute with numbers; shape queries such as `x.channels` give numbers",
    "sum": "add tensors with `+`, or `fuse(a, b, mode=sum)`",
}


def _tensor_in(v: Value) -> Value:
    """The first tensor (or bundle of tensors) in a value, looking inside lists; None if there is none."""
    if isinstance(v, list):
        return next((t for x in v if (t := _tensor_in(x)) is not None), None)
    return v if isinstance(v, Tensor | Bundle | tuple) else None


# Node type → the method evaluating it (by name, so that a subclass's override is the one called).
_EVAL: dict[type[Node], str] = {
    Num: "_e_num", Str: "_e_str", Const: "_e_const", ShapeLit: "_e_shape", ListLit: "_e_list", Name: "_e_name",
    BinOp: "_e_binop", Unary: "_e_unary", BoolOp: "_e_boolop", Not: "_e_not", Ternary: "_e_ternary",
    IfExpr: "_e_if", Attribute: "_e_attr", Index: "_e_index", Call: "_e_call", Chain: "_e_chain",
    Shared: "_e_shared",
}


def _methods(cls: type[Evaluator]) -> dict[type[Node], Callable[[Any, Any, Env], Value]]:
    """`_EVAL` with each name looked up on `cls` (once per class)."""
    table = _METHODS.get(cls)
    if table is None:
        table = _METHODS[cls] = {kind: getattr(cls, name) for kind, name in _EVAL.items()}
    return table


_METHODS: dict[type[Evaluator], dict[type[Node], Callable[[Any, Any, Env], Value]]] = {}


def evaluate(expr: Node, variables: dict[str, Value], ns: Definitions, limits: Limits = LIMITS) -> Value:
    """One expression in a fresh evaluator (its own step budget), with `variables` in scope."""
    return Evaluator(limits).eval(expr, Env(dict(variables), ns, ()))


__all__ = ["LAYER_VALUES", "Env", "Evaluator", "Layer", "Poisoned", "evaluate"]

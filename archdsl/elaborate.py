"""Elaboration: a network's AST → a flat :class:`IR`, with blocks, repeats, stage tables,
conditionals and expressions all evaluated away.

Shapes are inferred as nodes are created, because the language may ask for them
(`in.channels`, `if stride == 1 and in.channels == c`). Each op call is validated against the
registry here: attribute schema, input count, shape rule. Every failure is a diagnostic at the
span of the offending call or argument.

Naming (the paths that become module names): an op or block call gets its label (`as conv1`) or
an automatic name (`conv`, `conv_1`, … per scope, as torch.fx does); a labelled repeat `L` names
its iterations `L.0`, `L.1`, …; a stage table labelled `L` names its rows `L1`, `L2`, … . A block
call or repeat that is the only content of a fresh scope (a row, an iteration) and has no label
uses that scope directly, so `stages(...) as layer {…} repeat n: bottleneck(...)` yields
`layer1.0.conv1` exactly like torchvision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import ArchError, Diagnostic, Span, did_you_mean, error
from .ir import IR, IRNode, Port, ScopeInfo
from .limits import LIMITS, Limits
from .loader import Namespace
from .ops import AttrError, Op, Shape, ShapeError, fmt_shape, get_op, has_op, op_names
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
    Index,
    InputDecl,
    ListLit,
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
    Ternary,
    Unary,
    VariantDef,
)

# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Tensor:
    port: Port
    shape: Shape


@dataclass(frozen=True)
class Bundle:
    """The named outputs of a multi-output block; `b.p3` or `p3, p4 = b`."""

    names: tuple[str, ...]
    tensors: tuple[Tensor, ...]

    def get(self, name: str) -> Tensor | None:
        return self.tensors[self.names.index(name)] if name in self.names else None


@dataclass(frozen=True)
class BlockRef:
    name: str


@dataclass(frozen=True)
class OpRef:
    name: str


Value = Any  # int | float | bool | str | None | list | tuple[Tensor, ...] | Tensor | Bundle | refs

UNKNOWN_CALLABLE_HINT = "see `archdsl ops` for the ops; blocks must be defined or imported"

# Bare names that read as words in a spec: `pad=same`, `avgpool(global)`, `mode=bilinear`.
SYMBOLS = ("same", "valid", "global", "nearest", "bilinear", "fast", "softmax_weights", "sum")

TENSOR_ATTRS = {
    "channels": lambda s: s[0], "c": lambda s: s[0],
    "height": lambda s: s[1], "h": lambda s: s[1],
    "width": lambda s: s[2], "w": lambda s: s[2],
    "shape": lambda s: list(s), "rank": lambda s: len(s), "numel": lambda s: math.prod(s),
}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The MobileNet/EfficientNet channel rounding (tf models `_make_divisible`, torchvision):
    round to the nearest multiple of `divisor`, never below `min_value`, never down by more than 10 %."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"`{name}` needs numbers, got {describe(v)}")
    return v


def _digits(nd: Any) -> int:
    if isinstance(nd, bool) or not isinstance(nd, int) or abs(nd) > 64:  # round(5, -10**9) would take hours
        raise ValueError("the number of digits must be an integer between -64 and 64")
    return nd


BUILTINS: dict[str, Callable[..., Any]] = {
    "min": lambda *a: min(a[0] if len(a) == 1 else a),
    "max": lambda *a: max(a[0] if len(a) == 1 else a),
    "round": lambda x, nd=None: round(_num("round", x)) if nd is None else round(x, _digits(nd)),
    "ceil": lambda x: math.ceil(_num("ceil", x)),
    "floor": lambda x: math.floor(_num("floor", x)),
    "int": lambda x: int(_num("int", x)),
    "float": lambda x: float(_num("float", x)),
    "abs": lambda x: abs(_num("abs", x)),
    "sqrt": lambda x: math.sqrt(_num("sqrt", x)),
    "divisible": make_divisible,
    "len": lambda x: len(x),
    "sum": lambda x: sum(x),
}
BUILTIN_DOCS = {
    "min": "min(a, b, …) or min(list)", "max": "max(a, b, …) or max(list)",
    "round": "round(x) — Python's rounding (half to even)", "ceil": "ceil(x)", "floor": "floor(x)",
    "int": "int(x) — truncates", "float": "float(x)", "abs": "abs(x)", "sqrt": "sqrt(x)",
    "divisible": "divisible(v, divisor=8, min_value=divisor) — MobileNet/EfficientNet channel rounding",
    "len": "len(list)", "sum": "sum(list)",
}


def describe(v: Value) -> str:
    if isinstance(v, Tensor):
        return f"a tensor {fmt_shape(v.shape)}"
    if isinstance(v, Bundle):
        return f"a block output bundle ({', '.join(v.names)})"
    if isinstance(v, tuple):
        return f"{len(v)} tensors"
    if isinstance(v, BlockRef):
        return f"the block `{v.name}`"
    if isinstance(v, OpRef):
        return f"the op `{v.name}`"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, str):
        return f'the string "{v}"'
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "none"
    return type(v).__name__


def render_value(v: Value) -> str:
    """Compact source-like text for scope titles (`inverted_residual(c=24, stride=2)`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(render_value(x) for x in v) + "]"
    if isinstance(v, BlockRef | OpRef):
        return v.name
    if isinstance(v, str):
        return v
    if v is None:
        return "none"
    return str(v)


# ---------------------------------------------------------------------------------------------
# Elaboration state


@dataclass
class ExpectEntry:
    stmt: Expect
    network: str
    value: Value
    tolerance: float | None  # absolute
    qualifier: str | None  # variant name when written `expect resnet50.params …`


@dataclass
class Elaborated:
    ir: IR
    params: dict[str, Value]
    expects: list[ExpectEntry]
    family: str  # the network definition that produced this (== name unless a variant)
    variables: dict[str, Value] = field(default_factory=dict)  # the body's final environment (for `expect`)


@dataclass
class Env:
    vars: dict[str, Value]
    ns: Namespace
    scope: tuple[str, ...]


@dataclass
class State:
    ir: IR
    limits: Limits
    used_names: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    call_depth: int = 0
    outputs: dict[str, Span] = field(default_factory=dict)
    expects: list[ExpectEntry] = field(default_factory=list)
    input_shapes: dict[str, Shape] = field(default_factory=dict)
    input_override: Shape | None = None
    network: str = ""
    next_suffix: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)
    steps: int = 0  # expressions evaluated and repeat iterations run (limits.max_steps)

    def step(self, span: Span) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise error("E0526", f"elaboration takes more than {self.limits.max_steps:,} steps", span,
                        "nested repeats multiply; reduce the counts, or raise the limit (--max-steps)")

    def claim(self, scope: tuple[str, ...], name: str, span: Span) -> str:
        used = self.used_names.setdefault(scope, set())
        if name in used:
            raise error("E0404", f"the name `{name}` is already used in `{'.'.join(scope) or self.network}`", span,
                        "labels must be unique within a block; drop the label or choose another")
        used.add(name)
        return name

    def fresh(self, scope: tuple[str, ...], base: str) -> str:
        used = self.used_names.setdefault(scope, set())
        # Names are only ever added, so the first free suffix never moves back: start where the
        # last search ended (linear, not quadratic, in the number of same-named calls).
        k = self.next_suffix.get((scope, base), 0)
        name = base if k == 0 else f"{base}_{k}"
        while name in used:
            k += 1
            name = f"{base}_{k}"
        self.next_suffix[(scope, base)] = k
        used.add(name)
        return name


class Elaborator:
    """Evaluates one network definition into an IR. Not reusable: make one per elaboration."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits

    # ---- entry point -------------------------------------------------------------------------
    def network(self, name: str, ns: Namespace, overrides: dict[str, Value] | None = None,
                input_shape: Shape | None = None, override_span: Span | None = None) -> Elaborated:
        entry = ns.network_def(name)
        if entry is None:
            raise KeyError(name)
        definition, def_ns = entry
        args: dict[str, tuple[Value, Span]] = {}
        family_name = name
        variant_body: Body | None = None
        while isinstance(definition, VariantDef):
            base = def_ns.network_def(definition.base)
            if base is None:
                raise error("E0402", f"unknown network `{definition.base}`", definition.base_span,
                            did_you_mean(definition.base, list(def_ns.networks)))
            env = Env({}, def_ns, ())
            st = State(IR(name), self.limits, network=name)
            for arg in definition.args:
                if arg.name is None:
                    raise error("E0403", "variant arguments must be named", arg.span,
                                f"write `{definition.base}(name=value)`")
                args.setdefault(arg.name, (self.eval(arg.value, env, st), arg.span))
            variant_body = variant_body or definition.body
            definition, def_ns = base
        assert isinstance(definition, NetworkDef)
        family_name = definition.name
        for key, value in (overrides or {}).items():
            args[key] = (value, override_span or definition.span)

        st = State(IR(name), self.limits, network=name, input_override=input_shape)
        env = Env({}, def_ns, ())
        known = {p.name for p in definition.params}
        for key, (_, span) in args.items():
            if key not in known:
                raise error("E0405", f"network `{definition.name}` has no parameter `{key}`", span,
                            did_you_mean(key, known) or f"its parameters: {', '.join(sorted(known)) or 'none'}")
        for p in definition.params:
            if p.name in args:
                env.vars[p.name] = args[p.name][0]
            elif p.default is not None:
                env.vars[p.name] = self.eval(p.default, env, st)
            else:
                raise error("E0406", f"network parameter `{p.name}` has no default and no value", p.span,
                            f"give it a default, or pass it (--set {p.name}=…)")
        params = dict(env.vars)
        last = self.exec_body(definition.body, env, st)
        if variant_body is not None:
            self.exec_body(variant_body, env, st)
        if not st.ir.inputs():
            raise error("E0407", f"network `{definition.name}` declares no input", definition.span,
                        "add `input image: 3x224x224`")
        if not st.ir.outputs():
            self._implicit_outputs(last, definition, st)
        st.expects = [e for e in st.expects if e.qualifier in (None, name)]
        return Elaborated(st.ir, params, st.expects, family_name, dict(env.vars))

    def _implicit_outputs(self, last: Value, definition: NetworkDef, st: State) -> None:
        if isinstance(last, Tensor):
            self._output("output", last, definition.span, st)
        elif isinstance(last, Bundle):
            for n, t in zip(last.names, last.tensors, strict=True):
                self._output(n, t, definition.span, st)
        else:
            raise error("E0408", f"network `{definition.name}` has no output", definition.span,
                        "end the body with a tensor expression or `-> output logits`")

    # ---- statements --------------------------------------------------------------------------
    def exec_body(self, body: Body, env: Env, st: State) -> Value:
        last: Value = None
        for stmt in body.stmts:
            last = self.exec_stmt(stmt, env, st)
        return last

    def exec_stmt(self, stmt: Node, env: Env, st: State) -> Value:
        if isinstance(stmt, Assign):
            env.vars[stmt.target] = self.eval(stmt.value, env, st)
            return None
        if isinstance(stmt, Destructure):
            value = self.eval(stmt.value, env, st)
            items = self._unpack(value, len(stmt.targets), stmt.span)
            for target, item in zip(stmt.targets, items, strict=True):
                env.vars[target] = item
            return None
        if isinstance(stmt, ExprStmt):
            return self.eval(stmt.expr, env, st)
        if isinstance(stmt, InputDecl):
            return self._input(stmt, env, st)
        if isinstance(stmt, OutputDecl):
            value = self.eval(stmt.value, env, st)
            env.vars[stmt.name] = value
            self._output(stmt.name, self._tensor(value, stmt.value.span, "an output"), stmt.span, st)
            return None
        if isinstance(stmt, Expect):
            self._expect(stmt, env, st)
            return None
        if isinstance(stmt, RepeatStmt):
            count = self._count(stmt.count, env, st)
            base = env.scope
            if stmt.label is not None:
                base = self._scope_for_label(env, st, stmt.label, stmt.span, "repeat", f"repeat {count}")
            for i in range(count):
                st.step(stmt.span)
                if stmt.var:
                    env.vars[stmt.var] = i
                inner = Env(env.vars, env.ns, (*base, str(i)) if stmt.label is not None else env.scope)
                self.exec_body(stmt.body, inner, st)
            return None
        raise error("E0900", f"statement `{type(stmt).__name__}` is not allowed here", stmt.span)

    def _unpack(self, value: Value, n: int, span: Span) -> list[Value]:
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

    def _input(self, stmt: InputDecl, env: Env, st: State) -> Value:
        if env.scope or st.call_depth:
            raise error("E0411", "`input` belongs in a network body", stmt.span, "blocks take inputs as `in`")
        if st.input_override is not None and not st.ir.inputs():
            shape = st.input_override
        else:
            value = self.eval(stmt.shape, env, st)
            if not (isinstance(value, list) and value and all(isinstance(d, int) and not isinstance(d, bool)
                                                              for d in value)):
                raise error("E0412", f"an input shape must be a list of integers like 3x224x224, got {describe(value)}",
                            stmt.shape.span)
            shape = tuple(value)
        self._check_shape(shape, stmt.span, f"input `{stmt.name}`")
        name = st.claim((), stmt.name, stmt.span)
        node = st.ir.add_node(IRNode(name, "input", None, None, (), (shape,), (), stmt.span))
        tensor = Tensor(Port(node.name, 0), shape)
        env.vars[stmt.name] = tensor
        return tensor

    def _output(self, name: str, tensor: Tensor, span: Span, st: State) -> None:
        if name in st.outputs:
            raise error("E0413", f"output `{name}` is declared twice", span,
                        f"the first is at {st.outputs[name].where()}")
        st.outputs[name] = span
        leaf = name if name not in st.used_names.get((), set()) else f"{name}_output"
        st.claim((), leaf, span)
        st.ir.add_node(IRNode(leaf, "output", None, None, (tensor.port,), (tensor.shape,), (), span))
        st.ir.meta[leaf]["output_name"] = name

    def _expect(self, stmt: Expect, env: Env, st: State) -> None:
        qualifier = None
        root = stmt.target  # `resnet50.params`, `resnet50.layer4.rf`: the leftmost name of the chain
        while isinstance(root, Attribute | Index) and isinstance(root.obj, Attribute | Index):
            root = root.obj
        if isinstance(root, Attribute | Index) and isinstance(root.obj, Name) and root.obj.id in env.ns.networks:
            qualifier = root.obj.id
        value = self.eval(stmt.value, env, st)
        tol = self.eval(stmt.tolerance, env, st) if stmt.tolerance is not None else None
        if stmt.tolerance_percent is not None and isinstance(value, int | float):
            tol = abs(value) * stmt.tolerance_percent / 100
        st.expects.append(ExpectEntry(stmt, st.network, value, tol, qualifier))

    # ---- expressions -------------------------------------------------------------------------
    def eval(self, node: Node, env: Env, st: State) -> Value:
        method = _EVAL.get(type(node))
        st.step(node.span)
        if method is None:
            raise error("E0900", f"`{type(node).__name__}` cannot be used as a value here", node.span)
        return method(self, node, env, st)

    def _e_num(self, node: Num, env: Env, st: State) -> Value:
        return node.value

    def _e_str(self, node: Str, env: Env, st: State) -> Value:
        return node.value

    def _e_const(self, node: Const, env: Env, st: State) -> Value:
        return node.value

    def _e_shape(self, node: ShapeLit, env: Env, st: State) -> Value:
        return list(node.dims)

    def _e_list(self, node: ListLit, env: Env, st: State) -> Value:
        if len(node.items) > self.limits.max_list_len:
            raise error("E0501", "list too long", node.span)
        return [self.eval(x, env, st) for x in node.items]

    def _e_name(self, node: Name, env: Env, st: State) -> Value:
        return self.lookup(node.id, node.span, env)

    def lookup(self, name: str, span: Span, env: Env) -> Value:
        if name in env.vars:
            return env.vars[name]
        if name in env.ns.blocks:
            return BlockRef(name)
        if has_op(name):
            return OpRef(name)
        if name in SYMBOLS:
            return name
        candidates = [*env.vars, *env.ns.blocks, *op_names(), *SYMBOLS]
        hint = did_you_mean(name, candidates)
        if name == "in":
            hint = "`in` is the input of a block; in a network, use the name of an `input`"
        raise error("E0401", f"unknown name `{name}`", span, hint or "define it before use, or pass it as a parameter")

    def _e_binop(self, node: BinOp, env: Env, st: State) -> Value:
        left = self.eval(node.left, env, st)
        right = self.eval(node.right, env, st)
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            if node.op in ("+", "*") and isinstance(left, Tensor) and isinstance(right, Tensor):
                op = "add" if node.op == "+" else "mul"
                return self.apply_op(op, [left, right], {}, {}, node.span, node.span, env, st, None)
            if node.op == "*" and _is_number(left) != _is_number(right):  # residual scaling: 0.17 * y
                tensor, factor = (right, left) if _is_number(left) else (left, right)
                if isinstance(tensor, Tensor):
                    return self.apply_op("scale", [tensor], [(factor, node.span)], {}, node.span, node.span,
                                         env, st, None)
            raise error("E0502", f"`{node.op}` between {describe(left)} and {describe(right)}", node.span,
                        "tensors combine with `+` (add) and `*` (mul); use ops for anything else")
        return self.arith(node.op, left, right, node.span)

    def arith(self, op: str, a: Value, b: Value, span: Span) -> Value:
        try:
            if op in ("==", "!="):
                result = (a == b) if op == "==" else (a != b)
                return result
            if op in ("<", "<=", ">", ">="):
                _num(op, a), _num(op, b)
                return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
            if op == "+" and isinstance(a, list) and isinstance(b, list):
                if len(a) + len(b) > self.limits.max_list_len:
                    raise error("E0501", f"list too long ({len(a) + len(b):,} items; the limit is "
                                f"{self.limits.max_list_len:,})", span)
                return a + b
            x, y = _num(op, a), _num(op, b)
            if op == "**":
                if isinstance(x, int) and isinstance(y, int) and abs(x) > 1 and y > 0 \
                        and y * math.log2(abs(x)) > self.limits.max_int_bits:
                    raise error("E0503", f"`{x} ** {y}` is too large (over {self.limits.max_int_bits} bits)", span,
                                "integers in a spec are bounded; raise --max-int-bits if this is intended")
                if isinstance(x, float) or isinstance(y, float):
                    if abs(y) > 1e6:
                        raise error("E0503", "exponent too large", span)
                    result = float(x) ** float(y)
                else:
                    result = x**y if y >= 0 else float(x) ** y
            elif op in ("/", "//", "%") and y == 0:
                raise error("E0504", "division by zero", span)
            else:
                result = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "/": lambda: x / y,
                          "//": lambda: x // y, "%": lambda: x % y}[op]()
        except TypeError as exc:
            raise error("E0505", str(exc), span) from None
        except ZeroDivisionError:
            raise error("E0504", "division by zero", span) from None
        except (OverflowError, ValueError) as exc:
            raise error("E0503", f"arithmetic overflow ({exc})", span) from None
        return self.check_number(result, span)

    def check_number(self, v: Value, span: Span) -> Value:
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > self.limits.max_int_bits:
            raise error("E0503", f"integer too large ({v.bit_length()} bits; the limit is {self.limits.max_int_bits})",
                        span, "integers in a spec are bounded; raise --max-int-bits if this is intended")
        if isinstance(v, complex) or (isinstance(v, float) and not math.isfinite(v)):
            raise error("E0503", "the result is not a finite real number", span)
        return v

    def _e_unary(self, node: Unary, env: Env, st: State) -> Value:
        v = self.eval(node.operand, env, st)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise error("E0505", f"`-` needs a number, got {describe(v)}", node.span)
        return -v

    def _e_boolop(self, node: BoolOp, env: Env, st: State) -> Value:
        left = self._truth(self.eval(node.left, env, st), node.left.span)
        if node.op == "and":
            return left and self._truth(self.eval(node.right, env, st), node.right.span)
        return left or self._truth(self.eval(node.right, env, st), node.right.span)

    def _e_not(self, node: Not, env: Env, st: State) -> Value:
        return not self._truth(self.eval(node.operand, env, st), node.operand.span)

    def _truth(self, v: Value, span: Span) -> bool:
        if isinstance(v, bool | int | float | str | list) or v is None:
            return bool(v)
        raise error("E0506", f"{describe(v)} cannot be used as a condition", span,
                    "compare it with something, e.g. `in.channels == c`")

    def _e_ternary(self, node: Ternary, env: Env, st: State) -> Value:
        branch = node.then if self._truth(self.eval(node.cond, env, st), node.cond.span) else node.orelse
        return self.eval(branch, env, st)

    def _e_if(self, node: IfExpr, env: Env, st: State) -> Value:
        if self._truth(self.eval(node.cond, env, st), node.cond.span):
            return self.exec_body(node.then, env, st)
        if node.orelse is None:
            return None
        if isinstance(node.orelse, IfExpr):
            return self._e_if(node.orelse, env, st)
        return self.exec_body(node.orelse, env, st)

    def _e_attr(self, node: Attribute, env: Env, st: State) -> Value:
        obj = self.eval(node.obj, env, st)
        if isinstance(obj, Tensor):
            getter = TENSOR_ATTRS.get(node.name)
            if getter is None:
                raise error("E0507", f"tensors have no attribute `{node.name}`", node.span,
                            did_you_mean(node.name, list(TENSOR_ATTRS)) or f"try {', '.join(TENSOR_ATTRS)}")
            if node.name in ("height", "h", "width", "w") and len(obj.shape) != 3:
                raise error("E0507", f"`{node.name}` of a {fmt_shape(obj.shape)} tensor", node.span)
            return getter(obj.shape)
        if isinstance(obj, Bundle):
            t = obj.get(node.name)
            if t is None:
                raise error("E0507", f"the block has no output `{node.name}`", node.span,
                            did_you_mean(node.name, obj.names) or f"its outputs: {', '.join(obj.names)}")
            return t
        raise error("E0507", f"{describe(obj)} has no attribute `{node.name}`", node.span)

    def _e_index(self, node: Index, env: Env, st: State) -> Value:
        obj = self.eval(node.obj, env, st)
        idx = self.eval(node.index, env, st)
        if isinstance(obj, Bundle):
            obj = obj.tensors
        if not isinstance(obj, list | tuple):
            raise error("E0508", f"cannot index {describe(obj)}", node.span)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise error("E0508", f"an index must be an integer, got {describe(idx)}", node.index.span)
        if not -len(obj) <= idx < len(obj):
            raise error("E0508", f"index {idx} is out of range for {len(obj)} items", node.index.span)
        return obj[idx]

    def _e_call(self, node: Call, env: Env, st: State) -> Value:
        return self.call(node.func, node.func_span, node.args, None, node.span, env, st, None)

    def _e_chain(self, node: Chain, env: Env, st: State) -> Value:
        value = self.eval(node.head, env, st)
        for step in node.steps:
            value = self.step(step, value, env, st, collapse=False)
        return value

    # ---- steps -------------------------------------------------------------------------------
    def step(self, step: Node, x: Value, env: Env, st: State, collapse: bool) -> Value:
        if isinstance(step, CallStep):
            x = self._chain_input(x, step.span)
            scope_override = env.scope if (collapse and step.label is None) else None
            return self.call(step.func, step.func_span, step.args, x, step.span, env, st, step.label,
                             scope_override=scope_override)
        if isinstance(step, IfStep):
            if self._truth(self.eval(step.cond, env, st), step.cond.span):
                return self._steps(step.then, x, env, st)
            return self._steps(step.orelse, x, env, st) if step.orelse else x
        if isinstance(step, RepeatStep):
            count = self._count(step.count, env, st)
            if step.label is not None:
                base = self._scope_for_label(env, st, step.label, step.span, "repeat", f"repeat {count}")
            elif collapse:
                base = env.scope
            else:
                base = (*env.scope, st.fresh(env.scope, "repeat"))
                st.ir.scopes.setdefault(base, ScopeInfo(base, "repeat", f"repeat {count}", None, step.span))
            for i in range(count):
                st.step(step.span)
                if step.var:
                    env.vars[step.var] = i
                inner = Env(env.vars, env.ns, (*base, st.claim(base, str(i), step.span)))
                x = self._steps(step.body, x, inner, st, collapse=len(step.body) == 1)
            return x
        if isinstance(step, StagesStep):
            return self._stages(step, x, env, st)
        if isinstance(step, OutputStep):
            self._output(step.name, self._tensor(x, step.span, "an output"), step.span, st)
            env.vars[step.name] = x
            return x
        if isinstance(step, tuple):
            return self._steps(step, x, env, st)
        raise error("E0900", f"`{type(step).__name__}` cannot follow `->`", step.span)

    def _steps(self, steps: tuple[Node, ...], x: Value, env: Env, st: State, collapse: bool = False) -> Value:
        for s in steps:
            x = self.step(s, x, env, st, collapse=collapse)
        return x

    def _stages(self, step: StagesStep, x: Value, env: Env, st: State) -> Value:
        label = step.label
        if label is not None and len(label) != 1:
            raise error("E0414", "a stage table's label is a single name", step.span)
        base_name = label[0] if label else "stage"
        for r, row in enumerate(step.rows, start=1):
            values = [self.eval(cell, env, st) for cell in row.cells]
            for col, v in zip(step.columns, values, strict=True):
                env.vars[col] = v
            row_name = st.claim(env.scope, f"{base_name}{r}", row.span) if label else st.fresh(env.scope, f"stage{r}")
            path = (*env.scope, row_name)
            title = ", ".join(f"{c}={render_value(v)}" for c, v in zip(step.columns, values, strict=True))
            st.ir.scopes.setdefault(path, ScopeInfo(path, "stage", title, None, row.span))
            x = self.step(step.body, x, Env(env.vars, env.ns, path), st, collapse=True)
        return x

    def _scope_for_label(self, env: Env, st: State, label: tuple[str, ...], span: Span, kind: str,
                         title: str) -> tuple[str, ...]:
        path = env.scope
        for part in label:
            path = (*path, st.claim(path, part, span) if part == label[-1] else part)
        st.ir.scopes.setdefault(path, ScopeInfo(path, kind, title, None, span))  # type: ignore[arg-type]
        return path

    def _chain_input(self, x: Value, span: Span) -> Value:
        if isinstance(x, Tensor | tuple | Bundle):
            return x
        raise error("E0509", f"`->` feeds {describe(x)} into a call; it needs a tensor", span,
                    "start a chain with a tensor, e.g. `in -> conv(64, 3)`")

    def _count(self, expr: Node, env: Env, st: State) -> int:
        n = self.eval(expr, env, st)
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if isinstance(n, bool) or not isinstance(n, int):
            raise error("E0510", f"a repeat count must be an integer, got {describe(n)}", expr.span,
                        "use ceil(...) or round(...) to make an integer")
        if n < 0:
            raise error("E0510", f"a repeat count cannot be negative ({n})", expr.span)
        if n > self.limits.max_repeat:
            raise error("E0511", f"repeat count {n} exceeds the limit of {self.limits.max_repeat}", expr.span,
                        "raise it with --max-repeat if the network really is that deep")
        return n

    def _tensor(self, v: Value, span: Span, what: str) -> Tensor:
        if isinstance(v, Tensor):
            return v
        raise error("E0512", f"{what} must be a tensor, got {describe(v)}", span)

    # ---- calls -------------------------------------------------------------------------------
    def call(self, func: str, func_span: Span, args: tuple[Arg, ...], chained: Value, span: Span, env: Env,
             st: State, label: tuple[str, ...] | None, scope_override: tuple[str, ...] | None = None) -> Value:
        target: Value
        # A variable shadows ops and blocks only when it holds one (`act=relu6`, `block=basic`), so a
        # parameter named `dropout` (a probability) does not hide the op `dropout`.
        if func in env.vars and (isinstance(env.vars[func], BlockRef | OpRef)
                                 or not (func in env.ns.blocks or has_op(func) or func in BUILTINS)):
            target = env.vars[func]
        elif func in env.ns.blocks:
            target = BlockRef(func)
        elif func in BUILTINS and chained is None:
            return self._builtin(func, args, span, env, st)
        elif has_op(func):
            target = OpRef(func)
        else:
            callables = [k for k, v in env.vars.items() if isinstance(v, BlockRef | OpRef)]
            candidates = [*env.ns.blocks, *op_names(), *BUILTINS, *callables]
            raise error("E0402", f"unknown op or block `{func}`", func_span,
                        did_you_mean(func, candidates) or UNKNOWN_CALLABLE_HINT)
        if isinstance(target, OpRef | BlockRef):
            tensors, scalars, kw_tensors, kwargs = self._split_args(args, chained, env, st)
        if isinstance(target, OpRef):
            if kw_tensors:
                name = next(iter(kw_tensors))
                raise error("E0513", f"`{target.name}` takes tensors positionally, not as `{name}=`", span)
            return self.apply_op(target.name, tensors, scalars, kwargs, span, func_span, env, st, label)
        if isinstance(target, BlockRef):
            return self.apply_block(target.name, tensors, scalars, kw_tensors, kwargs, span, env, st, label,
                                    scope_override)
        raise error("E0514", f"`{func}` is {describe(target)}, not an op or a block", func_span)

    def _builtin(self, func: str, args: tuple[Arg, ...], span: Span, env: Env, st: State) -> Value:
        pos = [self.eval(a.value, env, st) for a in args if a.name is None]
        kw = {a.name: self.eval(a.value, env, st) for a in args if a.name is not None}
        try:
            result = BUILTINS[func](*pos, **kw)
        except (TypeError, ValueError, ArithmeticError, IndexError) as exc:
            raise error("E0515", f"bad call of `{func}`: {exc or type(exc).__name__}", span,
                        f"usage: {BUILTIN_DOCS[func]}") from None
        return self.check_number(result, span)

    def _split_args(self, args: tuple[Arg, ...], chained: Value, env: Env, st: State
                    ) -> tuple[list[tuple[Tensor, Span]], list[tuple[Value, Span]], dict[str, tuple[Value, Span]],
                               dict[str, tuple[Value, Span]]]:
        tensors: list[tuple[Tensor, Span]] = []
        scalars: list[tuple[Value, Span]] = []
        kw_tensors: dict[str, tuple[Value, Span]] = {}
        kwargs: dict[str, tuple[Value, Span]] = {}
        if chained is not None:
            for t in self._flatten_tensors(chained):
                tensors.append((t, Span.unknown()))
        for arg in args:
            value = self.eval(arg.value, env, st)
            if arg.name is not None:
                if arg.name in kwargs or arg.name in kw_tensors:
                    raise error("E0516", f"`{arg.name}` is given twice", arg.span)
                target = kw_tensors if isinstance(value, Tensor) else kwargs
                target[arg.name] = (value, arg.span)
                continue
            if isinstance(value, Tensor | tuple | Bundle):
                if scalars:
                    raise error("E0517", "tensor arguments come before the other arguments", arg.span,
                                "write the inputs first: `concat(a, b, dim=0)`")
                tensors.extend((t, arg.span) for t in self._flatten_tensors(value))
            else:
                scalars.append((value, arg.span))
        return tensors, scalars, kw_tensors, kwargs

    def _flatten_tensors(self, v: Value) -> list[Tensor]:
        if isinstance(v, Tensor):
            return [v]
        if isinstance(v, Bundle):
            return list(v.tensors)
        return list(v)

    def apply_op(self, name: str, tensors: list[Any], scalars: list[Any], kwargs: dict[str, Any], span: Span,
                 func_span: Span, env: Env, st: State, label: tuple[str, ...] | None) -> Value:
        op = get_op(name)
        ins = [t[0] if isinstance(t, tuple) else t for t in tensors]
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        if scalars and not op.Attrs.model_fields:
            raise error("E0301", f"`{name}` takes no attributes", scalars[0][1], f"write `{name}` on its own")
        if len(scalars) > len(op.positional):
            extra_span = scalars[len(op.positional)][1]
            takes = ", ".join(op.positional) or "no positional attributes"
            raise error("E0301", f"`{name}` takes {len(op.positional)} positional attribute(s) ({takes}), "
                        f"got {len(scalars)}", extra_span, "name the other attributes, e.g. stride=2")
        for field_name, (value, sp) in zip(op.positional, scalars, strict=False):
            values[field_name], spans[field_name] = value, sp
        for key, (value, sp) in kwargs.items():
            if key in values:
                raise error("E0516", f"`{key}` is given twice", sp)
            values[key], spans[key] = value, sp
        for key, value in values.items():
            if isinstance(value, BlockRef | OpRef | Tensor | Bundle | tuple):
                raise error("E0302", f"`{name}`: attribute `{key}` cannot be {describe(value)}", spans[key])
        n = len(ins)
        if n < op.min_inputs or (op.max_inputs is not None and n > op.max_inputs):
            want = (f"{op.min_inputs}" if op.max_inputs == op.min_inputs else
                    f"at least {op.min_inputs}" if op.max_inputs is None else f"{op.min_inputs}–{op.max_inputs}")
            where, hint = span, "feed it with `x -> op(...)` or pass the tensors first: `op(a, b)`"
            extra = tensors[op.max_inputs] if op.max_inputs is not None and n > op.max_inputs else None
            if isinstance(extra, tuple) and extra[1].file == span.file:  # an argument, not the chained input
                where = extra[1]
                if isinstance(tensors[0], tuple) and tensors[0][1].file != span.file:
                    hint = (f"in a chain `x -> {name}(...)` the input comes from the left; this argument is "
                            "a tensor, so it is taken as another input, not as an attribute")
            raise error("E0304", f"`{name}` takes {want} input tensor(s), got {n}", where, hint)
        try:
            attrs = op.validate(values)
        except AttrError as exc:
            raise error("E0303", exc.message, spans.get(exc.field or "", span),
                        _attr_hint(op)) from None
        shapes = [t.shape for t in ins]
        try:
            outs = op.infer(attrs, shapes)
        except ShapeError as exc:
            notes = tuple(
                f"operand {k}: {fmt_shape(t.shape)} from `{t.port.node}` ({st.ir.node(t.port.node).span.where()})"
                for k, t in enumerate(ins, start=1)) if len(ins) > 1 else ()
            raise ArchError(Diagnostic("E0305", exc.message, span, exc.hint, notes=notes)) from None
        for shape in outs:
            self._check_shape(shape, span, f"the output of `{name}`")
        node_name = self._node_name(env, st, op, label, span)
        if len(st.ir) >= self.limits.max_nodes:
            raise error("E0518", f"the network exceeds {self.limits.max_nodes} nodes", span,
                        "raise the limit with --max-nodes for a genuinely huge network")
        node = st.ir.add_node(IRNode(node_name, "op", op.name, attrs, tuple(t.port for t in ins), tuple(outs),
                                     env.scope, span))
        results = tuple(Tensor(Port(node.name, i), s) for i, s in enumerate(outs))
        return results[0] if len(results) == 1 and op.num_outputs(attrs) == 1 else results

    def _node_name(self, env: Env, st: State, op: type[Op], label: tuple[str, ...] | None, span: Span) -> str:
        if label is None:
            leaf = st.fresh(env.scope, op.name)
            return ".".join((*env.scope, leaf))
        path = env.scope
        for part in label[:-1]:
            path = (*path, part)
        leaf = st.claim(path, label[-1], span)
        return ".".join((*path, leaf))

    def _check_shape(self, shape: Shape, span: Span, what: str) -> None:
        if any(d <= 0 for d in shape):
            raise error("E0306", f"{what} has an empty shape {fmt_shape(shape)}", span)
        if math.prod(shape) > self.limits.max_tensor_elements:
            raise error("E0307", f"{what} would hold {math.prod(shape):,} elements per sample "
                        f"(limit {self.limits.max_tensor_elements:,})", span,
                        "use a smaller input, or raise --max-tensor-elements")

    def apply_block(self, name: str, tensors: list[tuple[Tensor, Span]], scalars: list[tuple[Value, Span]],
                    kw_tensors: dict[str, tuple[Value, Span]], kwargs: dict[str, tuple[Value, Span]], span: Span,
                    env: Env, st: State, label: tuple[str, ...] | None,
                    scope_override: tuple[str, ...] | None) -> Value:
        block, block_ns = env.ns.blocks[name]
        if st.call_depth >= self.limits.max_call_depth:
            raise error("E0519", f"blocks nested deeper than {self.limits.max_call_depth} (does `{name}` "
                        "instantiate itself?)", span, "a block must not instantiate itself, directly or through others")
        bound: dict[str, Value] = {}
        # inputs: positional tensors first, then by name
        if len(tensors) > len(block.inputs):
            raise error("E0520", f"block `{name}` takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), "
                        f"got {len(tensors)}", span)
        for input_name, (t, _) in zip(block.inputs, tensors, strict=False):
            bound[input_name] = t
        for key, (t, sp) in kw_tensors.items():
            if key in block.inputs:
                if key in bound:
                    raise error("E0516", f"input `{key}` is given twice", sp)
                bound[key] = t
            else:
                kwargs[key] = (t, sp)
        missing = [i for i in block.inputs if i not in bound]
        if missing:
            raise error("E0520", f"block `{name}` needs input(s) {', '.join(missing)}", span,
                        f"pass them as `{name}({', '.join(block.inputs)}, ...)` or chain: `x -> {name}(...)`")
        params = {p.name: p for p in block.params}
        if len(scalars) > len(block.params):
            raise error("E0521", f"block `{name}` takes {len(block.params)} parameter(s), got {len(scalars)}",
                        scalars[len(block.params)][1], f"its parameters: {', '.join(params) or 'none'}")
        args: dict[str, Value] = {}
        for p, (v, _) in zip(block.params, scalars, strict=False):
            args[p.name] = v
        for key, (v, sp) in kwargs.items():
            if key not in params:
                raise error("E0522", f"block `{name}` has no parameter `{key}`", sp,
                            did_you_mean(key, [*params, *block.inputs]) or
                            f"its parameters: {', '.join(params) or 'none'}")
            if key in args:
                raise error("E0516", f"`{key}` is given twice", sp)
            args[key] = v
        inner = Env(dict(bound), block_ns, ())
        title_args: list[str] = []
        for p in block.params:
            if p.name in args:
                inner.vars[p.name] = args[p.name]
            elif p.default is not None:
                inner.vars[p.name] = self.eval(p.default, inner, st)
            else:
                raise error("E0523", f"block `{name}` needs the parameter `{p.name}`", span,
                            f"pass it: `{name}({', '.join(q.name for q in block.params)})`")
            if p.name in args:  # the call as written: defaults left out
                title_args.append(f"{p.name}={render_value(inner.vars[p.name])}")
        if scope_override is not None:
            path = scope_override
        elif label is not None:
            path = env.scope
            for part in label:
                path = (*path, st.claim(path, part, span) if part == label[-1] else part)
        else:
            path = (*env.scope, st.fresh(env.scope, name))
        inner.scope = path
        info = ScopeInfo(path, "block", f"{name}({', '.join(title_args)})", name, span)
        if path in st.ir.scopes and st.ir.scopes[path].kind != "block":
            info = ScopeInfo(path, "block", info.title, name, span)
        st.ir.scopes[path] = info
        st.call_depth += 1
        try:
            last = self.exec_body(block.body, inner, st)
        except RecursionError:
            raise error("E0519", f"blocks nested too deeply in `{name}`", span) from None
        finally:
            st.call_depth -= 1
        return self._block_result(block, inner, last, span)

    def _block_result(self, block: BlockDef, env: Env, last: Value, span: Span) -> Value:
        if block.outputs is None:
            if isinstance(last, Tensor | Bundle | tuple):
                return last
            raise error("E0524", f"block `{block.name}` produces no tensor (its last statement is {describe(last)})",
                        block.span, "end the block body with a tensor expression, e.g. `in + y`")
        tensors = []
        for out in block.outputs:
            v = env.vars.get(out)
            if not isinstance(v, Tensor):
                raise error("E0525", f"block `{block.name}` declares output `{out}` but "
                            + ("never assigns it" if v is None else f"it is {describe(v)}"), block.span,
                            f"assign `{out} = ...` in the block body")
            tensors.append(v)
        if len(tensors) == 1:
            return tensors[0]
        return Bundle(block.outputs, tuple(tensors))


def _attr_hint(op: type[Op]) -> str:
    fields = []
    for name, f in op.Attrs.model_fields.items():
        fields.append(name if f.is_required() else f"{name}={render_value(f.default)}")
    return f"usage: {op.name}({', '.join(fields)})"


_EVAL: dict[type, Callable[..., Value]] = {
    Num: Elaborator._e_num, Str: Elaborator._e_str, Const: Elaborator._e_const, ShapeLit: Elaborator._e_shape,
    ListLit: Elaborator._e_list, Name: Elaborator._e_name, BinOp: Elaborator._e_binop, Unary: Elaborator._e_unary,
    BoolOp: Elaborator._e_boolop, Not: Elaborator._e_not, Ternary: Elaborator._e_ternary, IfExpr: Elaborator._e_if,
    Attribute: Elaborator._e_attr, Index: Elaborator._e_index, Call: Elaborator._e_call, Chain: Elaborator._e_chain,
}


def check_names(ns: Namespace) -> list[Diagnostic]:
    """Static pass over a file: every called name must be a local, a parameter, a block, an op or a
    builtin. Finds all unknown names at once (elaboration stops at the first problem)."""
    problems: list[Diagnostic] = []
    known_global = set(ns.blocks) | set(op_names()) | set(BUILTINS)
    for item in ns.module.items:
        if not isinstance(item, BlockDef | NetworkDef):
            continue
        local: set[str] = {p.name for p in item.params}
        _collect_assigned(item.body, local)
        for call in _collect_calls(item.body):
            if call.func not in local and call.func not in known_global:
                problems.append(Diagnostic("E0402", f"unknown op or block `{call.func}`", call.func_span,
                                           did_you_mean(call.func, [*known_global, *local])
                                           or UNKNOWN_CALLABLE_HINT))
            elif call.func not in local:
                problems.extend(_check_keywords(call, ns))
    return problems


def _walk(node: Any) -> Any:
    if isinstance(node, Node):
        yield node
        for value in vars(node).values():
            yield from _walk(value)
    elif isinstance(node, tuple):
        for item in node:
            yield from _walk(item)


def _collect_assigned(body: Body, names: set[str]) -> None:
    for node in _walk(body):
        if isinstance(node, Assign | OutputDecl):
            names.add(node.target if isinstance(node, Assign) else node.name)
        elif isinstance(node, Destructure):
            names.update(node.targets)
        elif isinstance(node, Param):
            names.add(node.name)
        elif isinstance(node, StagesStep):  # table columns may hold blocks: `stages(op, c) {…} op(c)`
            names.update(node.columns)
        elif isinstance(node, RepeatStep | RepeatStmt) and node.var:
            names.add(node.var)


def _collect_calls(body: Body) -> list[Call | CallStep]:
    return [n for n in _walk(body) if isinstance(n, Call | CallStep)]


def _check_keywords(call: Call | CallStep, ns: Namespace) -> list[Diagnostic]:
    """Keyword arguments must name an attribute of the op, or a parameter or input of the block."""
    if call.func in ns.blocks:
        block = ns.blocks[call.func][0]
        known, what = [p.name for p in block.params] + list(block.inputs), f"block `{call.func}`"
    elif has_op(call.func) and call.func not in BUILTINS:
        known, what = list(get_op(call.func).Attrs.model_fields), f"`{call.func}`"
    else:
        return []
    return [Diagnostic("E0303", f"{what} has no attribute `{a.name}`", a.span,
                       did_you_mean(a.name, known) or f"it takes: {', '.join(known) or 'no attributes'}")
            for a in call.args if a.name is not None and a.name not in known]


__all__ = ["ArchError", "Bundle", "Elaborated", "Elaborator", "Tensor", "check_names", "make_divisible"]

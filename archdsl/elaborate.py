"""Elaboration: a network's AST → a flat :class:`IR`, with blocks, repeats, stage tables,
conditionals and expressions all evaluated away.

:class:`Elaborator` extends the IR-free :class:`~archdsl.evaluate.Evaluator` with everything that
builds layers: op and block calls, ``->`` chains, tensor arithmetic, ``input``/``output``,
``repeat`` and stage tables. Shapes are inferred as nodes are created, because the language may
ask for them (`in.channels`, `if stride == 1 and in.channels == c`). Each op call is validated
against the registry here: attribute schema, input count, shape rule. Every failure is a
diagnostic at the span of the offending call or argument.

Naming (the paths that become module names): an op or block call gets its label (`as conv1`) or
an automatic name (`conv`, `conv_1`, … per scope, as torch.fx does); a labelled repeat `L` names
its iterations `L.0`, `L.1`, …; a stage table labelled `L` names its rows `L1`, `L2`, … . A block
call or repeat that is the only content of a fresh scope (a row, an iteration) and has no label
uses that scope directly, so `stages(...) as layer {…} repeat n: bottleneck(...)` yields
`layer1.0.conv1` exactly like torchvision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .binding import CallArgs, bind_block, bind_op, split_args
from .diagnostics import ArchError, Diagnostic, Span, did_you_mean, error
from .evaluate import Env, Evaluator
from .ir import IR, IRNode, Port, ScopeInfo, ScopeKind
from .limits import LIMITS, Limits
from .loader import Definitions
from .ops import AttrError, Op, Shape, ShapeError, fmt_shape, get_op
from .syntax import (
    Arg,
    Attribute,
    BinOp,
    BlockDef,
    Body,
    CallStep,
    Chain,
    Expect,
    IfStep,
    Index,
    InputDecl,
    Name,
    NetworkDef,
    Node,
    OutputDecl,
    OutputStep,
    RepeatStep,
    RepeatStmt,
    StagesStep,
    VariantDef,
)
from .values import BlockRef, Bundle, OpRef, Tensor, Value, describe, is_number, render_value

# ---------------------------------------------------------------------------------------------
# Results and state


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
class State:
    """What one elaboration builds besides its environment: the IR, the names used per scope, the
    outputs and `expect` lines met so far."""

    ir: IR
    limits: Limits
    used_names: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    call_depth: int = 0
    outputs: dict[str, Span] = field(default_factory=dict)
    expects: list[ExpectEntry] = field(default_factory=list)
    input_override: Shape | None = None
    network: str = ""
    next_suffix: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)

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


class Elaborator(Evaluator):
    """Evaluates one network definition into an IR. Not reusable: make one per elaboration."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        super().__init__(limits)
        self.st = State(IR(""), limits)

    # ---- entry point -------------------------------------------------------------------------
    def network(self, name: str, ns: Definitions, overrides: dict[str, Value] | None = None,
                input_shape: Shape | None = None, override_span: Span | None = None) -> Elaborated:
        entry = ns.network_def(name)
        if entry is None:
            raise KeyError(name)
        definition, def_ns = entry
        args: dict[str, tuple[Value, Span]] = {}
        variant_body: Body | None = None
        while isinstance(definition, VariantDef):
            base = def_ns.network_def(definition.base)
            if base is None:
                raise error("E0402", f"unknown network `{definition.base}`", definition.base_span,
                            did_you_mean(definition.base, list(def_ns.networks)))
            env = Env({}, def_ns, ())
            arguments = Evaluator(self.limits)  # a variant's arguments build nothing
            for arg in definition.args:
                if arg.name is None:
                    raise error("E0403", "variant arguments must be named", arg.span,
                                f"write `{definition.base}(name=value)`")
                args.setdefault(arg.name, (arguments.eval(arg.value, env), arg.span))
            variant_body = variant_body or definition.body
            definition, def_ns = base
        assert isinstance(definition, NetworkDef)
        family_name = definition.name
        for key, value in (overrides or {}).items():
            args[key] = (value, override_span or definition.span)

        st = self.st = State(IR(name), self.limits, network=name, input_override=input_shape)
        env = Env({}, def_ns, ())
        self._bind_network_params(definition, args, env)
        params = dict(env.vars)
        last = self.exec_body(definition.body, env)
        if variant_body is not None:
            self.exec_body(variant_body, env)
        if not st.ir.inputs():
            raise error("E0407", f"network `{definition.name}` declares no input", definition.span,
                        "add `input image: 3x224x224`")
        if not st.ir.outputs():
            self._implicit_outputs(last, definition)
        st.expects = [e for e in st.expects if e.qualifier in (None, name)]
        return Elaborated(st.ir, params, st.expects, family_name, dict(env.vars))

    def _bind_network_params(self, definition: NetworkDef, args: dict[str, tuple[Value, Span]], env: Env) -> None:
        known = {p.name for p in definition.params}
        for key, (_, span) in args.items():
            if key not in known:
                raise error("E0405", f"network `{definition.name}` has no parameter `{key}`", span,
                            did_you_mean(key, known) or f"its parameters: {', '.join(sorted(known)) or 'none'}")
        for p in definition.params:
            if p.name in args:
                env.vars[p.name] = args[p.name][0]
            elif p.default is not None:
                env.vars[p.name] = self.eval(p.default, env)
            else:
                raise error("E0406", f"network parameter `{p.name}` has no default and no value", p.span,
                            f"give it a default, or pass it (--set {p.name}=…)")

    def _implicit_outputs(self, last: Value, definition: NetworkDef) -> None:
        if isinstance(last, Tensor):
            self._output("output", last, definition.span)
        elif isinstance(last, Bundle):
            for n, t in zip(last.names, last.tensors, strict=True):
                self._output(n, t, definition.span)
        else:
            raise error("E0408", f"network `{definition.name}` has no output", definition.span,
                        "end the body with a tensor expression or `-> output logits`")

    # ---- statements --------------------------------------------------------------------------
    def exec_stmt(self, stmt: Node, env: Env) -> Value:
        if isinstance(stmt, InputDecl):
            return self._input(stmt, env)
        if isinstance(stmt, OutputDecl):
            value = self.eval(stmt.value, env)
            env.vars[stmt.name] = value
            self._output(stmt.name, self._tensor(value, stmt.value.span, "an output"), stmt.span)
            return None
        if isinstance(stmt, Expect):
            self._expect(stmt, env)
            return None
        if isinstance(stmt, RepeatStmt):
            self._repeat_stmt(stmt, env)
            return None
        return super().exec_stmt(stmt, env)

    def _repeat_stmt(self, stmt: RepeatStmt, env: Env) -> None:
        count = self._count(stmt.count, env)
        base = env.scope
        if stmt.label is not None:
            base = self._scope_for_label(env, stmt.label, stmt.span, "repeat", f"repeat {count}")
        for i in range(count):
            self.tick(stmt.span)
            if stmt.var:
                env.vars[stmt.var] = i
            inner = Env(env.vars, env.ns, (*base, str(i)) if stmt.label is not None else env.scope)
            self.exec_body(stmt.body, inner)

    def _input(self, stmt: InputDecl, env: Env) -> Value:
        st = self.st
        if env.scope or st.call_depth:
            raise error("E0411", "`input` belongs in a network body", stmt.span, "blocks take inputs as `in`")
        if st.input_override is not None and not st.ir.inputs():
            shape = st.input_override
        else:
            value = self.eval(stmt.shape, env)
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

    def _output(self, name: str, tensor: Tensor, span: Span) -> None:
        st = self.st
        if name in st.outputs:
            raise error("E0413", f"output `{name}` is declared twice", span,
                        f"the first is at {st.outputs[name].where()}")
        st.outputs[name] = span
        leaf = name if name not in st.used_names.get((), set()) else f"{name}_output"
        st.claim((), leaf, span)
        st.ir.add_node(IRNode(leaf, "output", None, None, (tensor.port,), (tensor.shape,), (), span, output_name=name))

    def _expect(self, stmt: Expect, env: Env) -> None:
        qualifier = None
        root = stmt.target  # `resnet50.params`, `resnet50.layer4.rf`: the leftmost name of the chain
        while isinstance(root, Attribute | Index) and isinstance(root.obj, Attribute | Index):
            root = root.obj
        if isinstance(root, Attribute | Index) and isinstance(root.obj, Name) and root.obj.id in env.ns.networks:
            qualifier = root.obj.id
        value = self.eval(stmt.value, env)
        tol = self.eval(stmt.tolerance, env) if stmt.tolerance is not None else None
        if stmt.tolerance_percent is not None and isinstance(value, int | float):
            tol = abs(value) * stmt.tolerance_percent / 100
        self.st.expects.append(ExpectEntry(stmt, self.st.network, value, tol, qualifier))

    # ---- expressions that build layers ---------------------------------------------------------
    def tensor_binop(self, node: BinOp, left: Value, right: Value, env: Env) -> Value:
        if node.op in ("+", "*") and isinstance(left, Tensor) and isinstance(right, Tensor):
            op = "add" if node.op == "+" else "mul"
            operands = CallArgs(tensors=[(left, Span.unknown()), (right, Span.unknown())])
            return self.apply_op(op, operands, node.span, env, None)
        if node.op == "*" and is_number(left) != is_number(right):  # residual scaling: 0.17 * y
            tensor, factor = (right, left) if is_number(left) else (left, right)
            if isinstance(tensor, Tensor):
                operands = CallArgs(tensors=[(tensor, Span.unknown())], scalars=[(factor, node.span)])
                return self.apply_op("scale", operands, node.span, env, None)
        raise error("E0502", f"`{node.op}` between {describe(left)} and {describe(right)}", node.span,
                    "tensors combine with `+` (add) and `*` (mul); use ops for anything else")

    def _e_chain(self, node: Chain, env: Env) -> Value:
        value = self.eval(node.head, env)
        for step in node.steps:
            value = self.chain_step(step, value, env, collapse=False)
        return value

    # ---- steps -------------------------------------------------------------------------------
    def chain_step(self, step: Node | tuple[Node, ...], x: Value, env: Env, collapse: bool) -> Value:
        if isinstance(step, tuple):
            return self._steps(step, x, env)
        if isinstance(step, IfStep):
            if self.truth(self.eval(step.cond, env), step.cond.span):
                return self._steps(step.then, x, env)
            return self._steps(step.orelse, x, env) if step.orelse else x
        if isinstance(step, RepeatStep):
            return self._repeat_step(step, x, env, collapse)
        if isinstance(step, StagesStep):
            return self._stages(step, x, env)
        if isinstance(step, OutputStep):
            self._output(step.name, self._tensor(x, step.span, "an output"), step.span)
            env.vars[step.name] = x
            return x
        if isinstance(step, CallStep):
            x = self._chain_input(x, step.span)
            scope_override = env.scope if (collapse and step.label is None) else None
            return self.call(step.func, step.func_span, step.args, x, step.span, env, step.label,
                             scope_override=scope_override)
        raise error("E0900", f"`{type(step).__name__}` cannot follow `->`", step.span)

    def _repeat_step(self, step: RepeatStep, x: Value, env: Env, collapse: bool) -> Value:
        st = self.st
        count = self._count(step.count, env)
        if step.label is not None:
            base = self._scope_for_label(env, step.label, step.span, "repeat", f"repeat {count}")
        elif collapse:
            base = env.scope
        else:
            base = (*env.scope, st.fresh(env.scope, "repeat"))
            st.ir.scopes.setdefault(base, ScopeInfo(base, "repeat", f"repeat {count}", None, step.span))
        for i in range(count):
            self.tick(step.span)
            if step.var:
                env.vars[step.var] = i
            inner = Env(env.vars, env.ns, (*base, st.claim(base, str(i), step.span)))
            x = self._steps(step.body, x, inner, collapse=len(step.body) == 1)
        return x

    def _steps(self, steps: tuple[Node, ...], x: Value, env: Env, collapse: bool = False) -> Value:
        for s in steps:
            x = self.chain_step(s, x, env, collapse=collapse)
        return x

    def _stages(self, step: StagesStep, x: Value, env: Env) -> Value:
        st = self.st
        label = step.label
        if label is not None and len(label) != 1:
            raise error("E0414", "a stage table's label is a single name", step.span)
        base_name = label[0] if label else "stage"
        for r, row in enumerate(step.rows, start=1):
            values = [self.eval(cell, env) for cell in row.cells]
            for col, v in zip(step.columns, values, strict=True):
                env.vars[col] = v
            row_name = st.claim(env.scope, f"{base_name}{r}", row.span) if label else st.fresh(env.scope, f"stage{r}")
            path = (*env.scope, row_name)
            title = ", ".join(f"{c}={render_value(v)}" for c, v in zip(step.columns, values, strict=True))
            st.ir.scopes.setdefault(path, ScopeInfo(path, "stage", title, None, row.span))
            x = self.chain_step(step.body, x, Env(env.vars, env.ns, path), collapse=True)
        return x

    def _scope_for_label(self, env: Env, label: tuple[str, ...], span: Span, kind: ScopeKind,
                         title: str) -> tuple[str, ...]:
        path = env.scope
        for part in label:
            path = (*path, self.st.claim(path, part, span) if part == label[-1] else part)
        self.st.ir.scopes.setdefault(path, ScopeInfo(path, kind, title, None, span))
        return path

    def _chain_input(self, x: Value, span: Span) -> Value:
        if isinstance(x, Tensor | tuple | Bundle):
            return x
        raise error("E0509", f"`->` feeds {describe(x)} into a call; it needs a tensor", span,
                    "start a chain with a tensor, e.g. `in -> conv(64, 3)`")

    def _count(self, expr: Node, env: Env) -> int:
        n = self.eval(expr, env)
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
    def call_layer(self, target: OpRef | BlockRef, args: tuple[Arg, ...], chained: Value, span: Span,
                   func_span: Span, env: Env, label: tuple[str, ...] | None,
                   scope_override: tuple[str, ...] | None) -> Value:
        operands = split_args(args, chained, lambda expr: self.eval(expr, env))
        if isinstance(target, OpRef):
            if operands.kw_tensors:
                name = next(iter(operands.kw_tensors))
                raise error("E0513", f"`{target.name}` takes tensors positionally, not as `{name}=`", span)
            return self.apply_op(target.name, operands, span, env, label)
        return self.apply_block(target.name, operands, span, env, label, scope_override)

    def apply_op(self, name: str, operands: CallArgs, span: Span, env: Env, label: tuple[str, ...] | None) -> Value:
        st = self.st
        op = get_op(name)
        ins, values, spans = bind_op(op, name, operands, span)
        try:
            attrs = op.validate(values)
        except AttrError as exc:
            raise error("E0303", exc.message, spans.get(exc.field or "", span), attr_usage(op)) from None
        try:
            outs = op.infer(attrs, [t.shape for t in ins])
        except ShapeError as exc:
            notes = tuple(
                f"operand {k}: {fmt_shape(t.shape)} from `{t.port.node}` ({st.ir.node(t.port.node).span.where()})"
                for k, t in enumerate(ins, start=1)) if len(ins) > 1 else ()
            raise ArchError(Diagnostic("E0305", exc.message, span, exc.hint, notes=notes)) from None
        for shape in outs:
            self._check_shape(shape, span, f"the output of `{name}`")
        node_name = self._node_name(env, op, label, span)
        if len(st.ir) >= self.limits.max_nodes:
            raise error("E0518", f"the network exceeds {self.limits.max_nodes} nodes", span,
                        "raise the limit with --max-nodes for a genuinely huge network")
        node = st.ir.add_node(IRNode(node_name, "op", op.name, attrs, tuple(t.port for t in ins), tuple(outs),
                                     env.scope, span))
        results = tuple(Tensor(Port(node.name, i), s) for i, s in enumerate(outs))
        return results[0] if len(results) == 1 and op.num_outputs(attrs) == 1 else results

    def _node_name(self, env: Env, op: type[Op], label: tuple[str, ...] | None, span: Span) -> str:
        if label is None:
            leaf = self.st.fresh(env.scope, op.name)
            return ".".join((*env.scope, leaf))
        path = env.scope
        for part in label[:-1]:
            path = (*path, part)
        leaf = self.st.claim(path, label[-1], span)
        return ".".join((*path, leaf))

    def _check_shape(self, shape: Shape, span: Span, what: str) -> None:
        if any(d <= 0 for d in shape):
            raise error("E0306", f"{what} has an empty shape {fmt_shape(shape)}", span)
        if math.prod(shape) > self.limits.max_tensor_elements:
            raise error("E0307", f"{what} would hold {math.prod(shape):,} elements per sample "
                        f"(limit {self.limits.max_tensor_elements:,})", span,
                        "use a smaller input, or raise --max-tensor-elements")

    def apply_block(self, name: str, operands: CallArgs, span: Span, env: Env, label: tuple[str, ...] | None,
                    scope_override: tuple[str, ...] | None) -> Value:
        st = self.st
        block, block_ns = env.ns.blocks[name]
        if st.call_depth >= self.limits.max_call_depth:
            raise error("E0519", f"blocks nested deeper than {self.limits.max_call_depth} (does `{name}` "
                        "instantiate itself?)", span, "a block must not instantiate itself, directly or through others")
        bound, args = bind_block(block, operands, span)
        inner = Env(dict(bound), block_ns, ())
        title = self._block_params(block, args, inner, span)
        inner.scope = self._block_path(name, env, label, scope_override, span)
        st.ir.scopes[inner.scope] = ScopeInfo(inner.scope, "block", title, name, span)
        st.call_depth += 1
        try:
            last = self.exec_body(block.body, inner)
        except RecursionError:
            raise error("E0519", f"blocks nested too deeply in `{name}`", span) from None
        finally:
            st.call_depth -= 1
        return self._block_result(block, inner, last)

    def _block_params(self, block: BlockDef, args: dict[str, Value], inner: Env, span: Span) -> str:
        """Bind the parameters (defaults evaluated in the block's scope); returns the call as written
        (`inverted_residual(c=24, stride=2)`, defaults left out) for the scope's title."""
        title_args: list[str] = []
        for p in block.params:
            if p.name in args:
                inner.vars[p.name] = args[p.name]
            elif p.default is not None:
                inner.vars[p.name] = self.eval(p.default, inner)
            else:
                raise error("E0523", f"block `{block.name}` needs the parameter `{p.name}`", span,
                            f"pass it: `{block.name}({', '.join(q.name for q in block.params)})`")
            if p.name in args:
                title_args.append(f"{p.name}={render_value(inner.vars[p.name])}")
        return f"{block.name}({', '.join(title_args)})"

    def _block_path(self, name: str, env: Env, label: tuple[str, ...] | None,
                    scope_override: tuple[str, ...] | None, span: Span) -> tuple[str, ...]:
        if scope_override is not None:
            return scope_override
        if label is not None:
            path = env.scope
            for part in label:
                path = (*path, self.st.claim(path, part, span) if part == label[-1] else part)
            return path
        return (*env.scope, self.st.fresh(env.scope, name))

    def _block_result(self, block: BlockDef, env: Env, last: Value) -> Value:
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


def attr_usage(op: type[Op]) -> str:
    """`usage: conv(out, kernel, stride=1, …)`: the op's attributes, defaults shown."""
    fields = []
    for name, f in op.Attrs.model_fields.items():
        fields.append(name if f.is_required() else f"{name}={render_value(f.default)}")
    return f"usage: {op.name}({', '.join(fields)})"


__all__ = ["Elaborated", "Elaborator", "ExpectEntry", "State"]

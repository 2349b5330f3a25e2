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
`layer1.0.conv1` exactly like torchvision. `as L[]` appends to the numbered list `L` of the
enclosing block, network, or labelled row or iteration (unlabelled tables and repeats are
transparent to it): `L.0`, `L.1`, … in the order made, as torchvision's `layers.append(…)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from .binding import (
    CHAINED,
    CallArgs,
    Located,
    as_partial,
    bind_block,
    bind_op,
    flatten_tensors,
    plain_arguments,
    plain_call,
    size_inputs,
    split_args,
    with_partial,
)
from .diagnostics import ArchError, Diagnostic, Span, did_you_mean, error
from .evaluate import Env, Evaluator, Layer, Poisoned
from .functions import BUILTINS
from .init_match import resolve
from .ir import IR, IRNode, Port, ScopeInfo, ScopeKind
from .limits import LIMITS, Limits
from .loader import Definitions
from .ops import AttrError, Attrs, Op, Shape, ShapeError, fmt_shape, get_op, has_op, op_names
from .syntax import (
    RANGE_HINT,
    Arg,
    Assign,
    Attribute,
    BinOp,
    BlockDef,
    Body,
    CallStep,
    Chain,
    Destructure,
    Expect,
    ExprStmt,
    IfExpr,
    IfStep,
    Index,
    InitStmt,
    InputDecl,
    Label,
    Name,
    NetworkDef,
    Node,
    OutputDecl,
    OutputStep,
    RepeatStep,
    RepeatStmt,
    Shared,
    StagesStep,
    VariantDef,
    literal_defaults,
)
from .templates import Holes, Recorded, Template, call_key, holes, instantiate, without_holes
from .values import (
    POISON,
    UNKNOWN_CALLABLE_HINT,
    BlockRef,
    Bundle,
    Dim,
    OpRef,
    Partial,
    SharedRef,
    Tensor,
    Value,
    describe,
    is_number,
    layer_hint,
    render_value,
)
from .weight_init import InitRule, check_target, read_tensors

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
    defaulted: frozenset[str] = frozenset()  # the parameters that took their definition's default


Path = tuple[str, ...]


@dataclass
class Instance:
    """A shared instance (`shared head(80) as cls`): what it is made of and what its first
    application built, which every later application must match."""

    path: Path
    target: OpRef | BlockRef
    scalars: list[Located]
    kwargs: dict[str, Located]
    owner: Path  # the block instance (or the network, ()) whose module holds it
    span: Span  # where it is made
    applications: int = 0
    first_span: Span | None = None
    first_inputs: tuple[Shape, ...] = ()
    first_nodes: int = 0

    def application_path(self, k: int) -> Path:
        """Where application k (1-based) puts its layers: the instance's own path, then `path@2`, …"""
        return self.path if k == 1 else (*self.path[:-1], f"{self.path[-1]}@{k}")


class Abandoned(ArchError):
    """Elaboration gives up (a limit was hit, or too many errors): every error found so far, final."""


_NOT_VALUES = (Expect, InitStmt)  # statements without a value: a body's value is its last other statement's

# Errors after which elaboration cannot go on to look for others (a limit was hit).
FATAL = frozenset({"E0518", "E0519", "E0526"})
MAX_ERRORS = 50  # independent errors reported per network
MAX_CALL_NOTES = 6  # `in block …, called at …` notes shown per diagnostic


@dataclass
class State:
    """What one elaboration builds besides its environment: the IR, the names used per scope, the
    outputs and `expect` lines met so far, the errors found so far, the block calls under way and
    the shared instances made."""

    ir: IR
    limits: Limits
    used_names: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    call_depth: int = 0
    outputs: dict[str, Span] = field(default_factory=dict)
    expects: list[ExpectEntry] = field(default_factory=list)
    input_override: Shape | None = None
    network: str = ""
    next_suffix: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)
    errors: list[Diagnostic] = field(default_factory=list)  # each once (see _record)
    error_keys: set[tuple[Span, str]] = field(default_factory=set)  # what `errors` holds: (span, message)
    errors_met: int = 0  # errors met, repeats counted: whether a block call met one (Template.recorded)
    blocks: list[Path] = field(default_factory=list)  # the block instances being elaborated, outermost first
    loop_vars: list[str] = field(default_factory=list)  # the indices of the repeats under way
    instances: dict[Path, Instance] = field(default_factory=dict)
    shared_sites: dict[tuple[Path, Span], Path] = field(default_factory=dict)  # unlabelled `shared` calls
    calls: list[tuple[str, Span]] = field(default_factory=list)  # the block calls under way: (block, call span)
    sharing: list[tuple[str, str, Instance]] = field(default_factory=list)  # (this application, first, instance)
    inferred: dict[tuple[object, ...], tuple[list[Shape], Attrs]] = field(default_factory=dict)  # Elaborator._infer
    inits: list[InitRule] = field(default_factory=list)  # the `init` statements run, one rule per target
    touched: set[Path] = field(default_factory=set)  # every prefix of a scope that holds a name
    lists: dict[Path, int] = field(default_factory=dict)  # each list `as L[]` appended to: its next index
    owned_lists: dict[Path, list[Path]] = field(default_factory=dict)  # per block instance: its lists
    # The unlabelled stage-table rows under way that are no scopes: (their list scope, table, row).
    list_rows: list[tuple[Path, Node, int]] = field(default_factory=list)
    # Block calls recorded, by key: what the first call built, its template once a second call
    # needs it, None where the call cannot be replayed (see archdsl.templates).
    templates: dict[object, Recorded | Template | None] = field(default_factory=dict)
    deepest: int = 0  # the deepest call_depth a block call started at, within the call under way
    # The `name = …` statements of each block definition met (by its id), in order, its parameters' names and
    # their literal defaults (ScopeInfo.defaults).
    assignments: dict[int, tuple[tuple[tuple[str, Node], ...], tuple[str, ...],
                                 tuple[tuple[str, bool | int | float], ...]]] = field(default_factory=dict)
    finals: dict[int, int] = field(default_factory=dict)  # per body (by its id): its last statement with a value
    # per statement (by its id): the outputs it declares and the names it binds (see _poison)
    binds: dict[int, tuple[tuple[tuple[str, Span], ...], tuple[str, ...]]] = field(default_factory=dict)
    written: dict[int, tuple[tuple[str | None, Node], ...]] = field(default_factory=dict)  # Elaborator._written
    # A block call's key without its holes' values → the key of the first call recorded with it.
    similar: dict[object, object] = field(default_factory=dict)

    def names(self, scope: Path) -> set[str]:
        """The names used in `scope` (made, and its prefixes marked as touched, on first use)."""
        used = self.used_names.get(scope)
        if used is None:
            used = self.used_names[scope] = set()
            touched = self.touched
            for k in range(len(scope), -1, -1):  # a prefix marked has its own prefixes marked: stop there
                prefix = scope[:k]
                if prefix in touched:
                    break
                touched.add(prefix)
        return used
    # The conditions each block instance's body tested, with their outcome (ScopeInfo.conditions).
    conditions: dict[Path, list[tuple[Node, bool]]] = field(default_factory=dict)

    def claim(self, scope: tuple[str, ...], name: str, span: Span) -> str:
        handed = self.lists.get(scope)  # a list's entries are the indices `append` handed out, each named once
        if handed is not None and not (name.isdigit() and int(name) < handed and name not in self.names(scope)):
            shown = ".".join(scope)
            raise error("E0415", f"`{shown}` is a list that `{scope[-1]}[]` appends to: `{shown}.{name}` cannot be "
                        "named explicitly as well", span,
                        f"name the entries of a list one way: all `as {scope[-1]}[]`, or all explicitly "
                        f"(`as {scope[-1]}.0`, `as {scope[-1]}.1`, …)")
        used = self.names(scope)
        if name in used:
            raise error("E0404", f"the name `{name}` is already used in `{'.'.join(scope) or self.network}`", span,
                        "labels must be unique within a block; drop the label or choose another")
        used.add(name)
        return name

    def owner(self) -> Path:
        """The block instance that layers built now belong to (() for the network)."""
        return self.blocks[-1] if self.blocks else ()

    def append(self, path: Path, span: Span) -> str:
        """The next index of the list at `path` (0 for a new one): the name its entry then claims."""
        k = self.lists.get(path)
        if k is None:
            taken = sorted(self.used_names.get(path, ()))
            if taken:
                shown = ".".join(path)
                raise error("E0415", f"`{path[-1]}[]` appends to `{shown}`, which holds `{shown}.{taken[0]}` named "
                            "explicitly", span, f"name the entries of a list one way: all `as {path[-1]}[]`, or all "
                            f"explicitly (`as {path[-1]}.0`, `as {path[-1]}.1`, …)")
            k = 0
        self.lists[path] = k + 1
        if k == 0:
            self.owned_lists.setdefault(self.owner(), []).append(path)
        return str(k)

    def fresh(self, scope: tuple[str, ...], base: str) -> str:
        used = self.names(scope)
        # Names are only ever added, so the first free suffix never moves back: start where the
        # last search ended (linear, not quadratic, in the number of same-named calls).
        # Kept only where the search moved past a name (no entry is 0): a scope with one layer of
        # each kind, a repeat's iteration, holds none.
        k = self.next_suffix.get((scope, base), 0)
        name = base if k == 0 else f"{base}_{k}"
        if name in used:
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
        args: dict[str, tuple[Value, Span]] = {}
        definition, def_ns, variant_body = self._family(*entry, args)
        family_name = definition.name
        for key, value in (overrides or {}).items():
            args[key] = (value, override_span or definition.span)

        st = self.st = State(IR(name), self.limits, network=name, input_override=input_shape)
        env = Env({}, def_ns, ())
        defaulted = self._bind_network_params(definition, args, env)
        params = dict(env.vars)
        last = self.exec_body(definition.body, env)
        if variant_body is not None:
            self.exec_body(variant_body, env)
        if not st.errors:
            st.ir.inits, problems = resolve(st.ir, st.inits)
            st.errors.extend(problems)
        if st.errors:
            raise ArchError(_unique(st.errors))
        if not st.ir.inputs():
            raise error("E0407", f"network `{definition.name}` declares no input", definition.span,
                        "add `input image: 3x224x224`")
        if not st.ir.outputs():
            self._implicit_outputs(last, definition, env)
        st.ir.values = _named_tensors(env.vars, env)
        st.expects = [e for e in st.expects if e.qualifier in (None, name)]
        return Elaborated(st.ir, params, st.expects, family_name, dict(env.vars), defaulted)

    def _family(self, definition: NetworkDef | VariantDef, def_ns: Definitions,
                args: dict[str, tuple[Value, Span]]) -> tuple[NetworkDef, Definitions, Body | None]:
        """Follow variants down to their network definition, collecting their arguments in `args`
        (the variant's own first); returns the definition, its file's definitions and the body of
        the outermost variant that has one."""
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
        return definition, def_ns, variant_body

    def _bind_network_params(self, definition: NetworkDef, args: dict[str, tuple[Value, Span]],
                             env: Env) -> frozenset[str]:
        """Bind the network's parameters; returns those that took their default."""
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
        return frozenset(p.name for p in definition.params if p.name not in args)

    def _implicit_outputs(self, last: Value, definition: NetworkDef, env: Env) -> None:
        if isinstance(last, Tensor):
            self._output("output", last, definition.span)
        elif isinstance(last, Bundle):
            for n, t in zip(last.names, last.tensors, strict=True):
                self._output(n, t, definition.span)
        else:
            raise _no_output(definition, env, last)

    # ---- recovery: every independent error, each once -----------------------------------------
    def exec_body(self, body: Body, env: Env) -> Value:
        """Each statement in turn; a failing statement's error is recorded and the names it would
        have bound are poisoned, so that later statements that do not depend on it are still checked.
        The body's value is its last statement's, `expect` and `init` lines aside (they are no expression)."""
        last: Value = None
        final = self.st.finals.get(id(body))  # the definitions outlive the elaboration: ids are stable
        if final is None:
            final = self.st.finals[id(body)] = max(
                (k for k, stmt in enumerate(body.stmts) if not isinstance(stmt, _NOT_VALUES)), default=-1)
        for k, stmt in enumerate(body.stmts):
            try:
                value = self.exec_stmt(stmt, env)
                if isinstance(stmt, ExprStmt) and isinstance(value, Partial) and k < final:
                    raise error("E0538", f"this statement builds nothing: {describe(value)}", stmt.span,
                                layer_hint(value))
            except Abandoned:
                raise
            except ArchError as exc:
                self._record(exc)
                value = self._poison(stmt, env)
            except Poisoned:
                value = self._poison(stmt, env)
            if not isinstance(stmt, _NOT_VALUES):
                last = value
        return last

    def _record(self, exc: ArchError) -> None:
        """Keep each error once, with its first call's notes: a block called 10⁵ times with one
        error meets it 10⁵ times, and gathering those to deduplicate at each meeting was quadratic."""
        st = self.st
        notes: list[str] | None = None
        for d in exc.diagnostics:
            st.errors_met += 1
            if (d.span, d.message) not in st.error_keys:
                st.error_keys.add((d.span, d.message))
                notes = self._call_notes() if notes is None else notes
                st.errors.append(with_call_notes(d, notes))
        if any(d.code in FATAL for d in exc.diagnostics) or len(st.errors) >= MAX_ERRORS:
            raise Abandoned(list(st.errors))

    def _call_notes(self) -> list[str]:
        """`in block `b`, called at f.arch:3:5` for every block call under way, innermost first."""
        return [f"in block `{name}`, called at {span.where()}" for name, span in reversed(self.st.calls)]

    def _poison(self, stmt: Node, env: Env) -> Value:
        """Poison every name a failed statement binds (inside its nested bodies too: they may not
        have run), and count the outputs it declares as declared. What a statement binds is read
        once: a statement in a loop may fail at every turn."""
        binds = self.st.binds.get(id(stmt))  # the definitions outlive the elaboration: ids are stable
        if binds is None:
            nodes = _walk(stmt)
            binds = self.st.binds[id(stmt)] = (
                tuple([(n.name, n.span) for n in nodes if isinstance(n, OutputDecl | OutputStep)]),
                tuple([name for n in nodes for name in _bound_names(n)]))
        for name, span in binds[0]:
            self.st.outputs.setdefault(name, span)
        for name in binds[1]:
            env.vars[name] = POISON
        return POISON

    # ---- statements --------------------------------------------------------------------------
    def exec_stmt(self, stmt: Node, env: Env) -> Value:
        kind = type(stmt)
        if kind is ExprStmt:  # the common statements first
            return self.eval(stmt.expr, env)  # type: ignore[attr-defined]
        if kind is Assign:
            env.vars[stmt.target] = self.eval(stmt.value, env)  # type: ignore[attr-defined]
            return None
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
        if isinstance(stmt, InitStmt):
            self._init(stmt, env)
            return None
        return super().exec_stmt(stmt, env)

    def _init(self, stmt: InitStmt, env: Env) -> None:
        """Record an `init` statement, one rule per target; they are matched with the layers once the
        network is built (a statement may come before the layers it sets)."""
        tensors = read_tensors(stmt, lambda node: self.eval(node, env), BUILTINS)
        kinds = [check_target(target.kind, target.kind_span, tensors) for target in stmt.targets]
        st, instance = self.st, self.st.owner()
        block = st.ir.scopes[instance].block if instance else None
        for kind, target in zip(kinds, stmt.targets, strict=True):
            if target.label is not None and target.label.append:
                raise error("E0107", "an `init` target names layers by their path, not by `[]`", target.label.span,
                            "write the entry's path, e.g. `init conv as features.0`, or drop `as` for every layer "
                            "of the kind")
            label = self.label_of(target.label, env)
            st.inits.append(InitRule(kind, env.scope, label, instance, block, len(st.blocks), tensors,
                                     target.span, stmt.span))

    def _repeat_stmt(self, stmt: RepeatStmt, env: Env) -> None:
        count = self._count(stmt.count, env)
        static = stmt.label.static() if stmt.label is not None and not stmt.label.append else None
        base = env.scope
        if static is not None:
            base = self._scope_for_label(env, static, stmt.span, "repeat", f"repeat {count}")
        lists = env.list_scope if stmt.label is None else None
        self.st.loop_vars.append(stmt.var or "")
        index = (stmt.var,) if stmt.var else ()
        outside = env.outside(index)
        try:
            for i in range(count):
                self.tick(stmt.span)
                if stmt.var:
                    env.vars[stmt.var] = i
                scope = (*base, str(i)) if static is not None else env.scope
                if stmt.label is not None and static is None:  # `as denselayer{i + 1}`, `as L[]`: each iteration
                    scope = self._iteration_scope(env, stmt.label, stmt.span, count)
                self.exec_body(stmt.body, env.within(scope, lists))
        finally:
            self.st.loop_vars.pop()
            env.unbind(index, outside, _after("the index of the repeat", stmt.span, "counts only in its body"))

    def _iteration_scope(self, env: Env, label: Label, span: Span, count: int) -> Path:
        """The scope of one iteration of a repeat whose label holds expressions (`as layer{i + 1}`) or
        appends it to a list (`as layers[]`)."""
        parts, at = self.placed(label, env)
        assert parts is not None
        return self._scope_for_label(at, parts, span, "repeat", f"iteration of repeat {count}")

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
        self.st.expects.append(ExpectEntry(stmt, self.st.network, value, self._tolerance(stmt, value, env),
                                           qualifier))

    def _tolerance(self, stmt: Expect, value: Value, env: Env) -> Value:
        """The absolute tolerance of an `expect`: a number, not negative, finite."""
        if stmt.tolerance_percent is not None:
            percent = stmt.tolerance_percent
            if not is_number(value):
                raise error("E0528", f"a `%` tolerance needs a number to take the percentage of, not {describe(value)}",
                            percent.span, "give an absolute tolerance instead, e.g. `+- 1`")
            tol = abs(value) * percent.value / 100  # both within ±FLOAT_MAX: no exception, at worst inf
            where = percent.span
            if not math.isfinite(tol):
                raise error("E0503", f"the tolerance overflows: {percent.value:g}% of {value:g} is beyond the "
                            "largest float", where, RANGE_HINT)
        elif stmt.tolerance is not None:
            tol = self.eval(stmt.tolerance, env)
            where = stmt.tolerance.span
        else:
            return None
        if not is_number(tol):
            raise error("E0528", f"a tolerance must be a number, not {describe(tol)}", where,
                        "write `+- 1000` (absolute) or `+- 2%` (of the expected value)")
        if tol < 0:
            raise error("E0528", f"a tolerance cannot be negative ({tol})", where, "write how far off the value may be")
        return tol

    # ---- expressions that build layers ---------------------------------------------------------
    def tensor_binop(self, node: BinOp, left: Value, right: Value, env: Env) -> Value:
        if node.op in ("+", "*") and isinstance(left, Tensor) and isinstance(right, Tensor):
            op = "add" if node.op == "+" else "mul"
            key = (op, (left.shape, right.shape), self.limits.max_tensor_elements, None)  # see _BOUND
            bound = _BOUND.get(key)
            if bound is not None:
                return self._op_node(bound[0], bound[1], [left, right], bound[2], node.span, env, None, None, ())
            operands = CallArgs(tensors=[(left, CHAINED), (right, CHAINED)])
            return self.apply_op(op, operands, node.span, env, None, key=key)
        if node.op == "*" and is_number(left) != is_number(right):  # residual scaling: 0.17 * y
            tensor, factor = (right, left) if is_number(left) else (left, right)
            if isinstance(tensor, Tensor):
                operands = CallArgs(tensors=[(tensor, CHAINED)], scalars=[(factor, node.span)])
                return self.apply_op("scale", operands, node.span, env, None)
        raise error("E0502", f"`{node.op}` between {describe(left)} and {describe(right)}", node.span,
                    "tensors combine with `+` (add) and `*` (mul); use ops for anything else")

    def _e_chain(self, node: Chain, env: Env) -> Value:
        value = self.eval(node.head, env)
        for step in node.steps:
            value = self.chain_step(step, value, env, collapse=False)
        return value

    def _e_shared(self, node: Shared, env: Env) -> Value:
        return self._instance(node, env)

    # ---- steps -------------------------------------------------------------------------------
    def chain_step(self, step: Node | tuple[Node, ...], x: Value, env: Env, collapse: bool) -> Value:
        if type(step) is CallStep:  # the common step first, in place (no frame of its own)
            if type(x) is not Tensor:
                x = self._chain_input(x, step.span)
            if step.label is None:
                return self.call(step.func, step.func_span, step.args, x, step.span, env, None,
                                 scope_override=env.scope if collapse else None)
            label, at = self.placed(step.label, env)
            return self.call(step.func, step.func_span, step.args, x, step.span, at, label)
        return self._other_step(step, x, env, collapse)

    def _other_step(self, step: Node | tuple[Node, ...], x: Value, env: Env, collapse: bool) -> Value:
        """`chain_step` of any step but a call."""
        if isinstance(step, tuple):  # `(a -> b)`, or a table's `{ a -> b }`: one step alone is that step
            return self._steps(step, x, env, collapse=collapse and len(step) == 1)
        if isinstance(step, IfStep):
            if self.condition(step.cond, env):
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
        if isinstance(step, Shared):
            x = self._chain_input(x, step.span)
            inputs = CallArgs(tensors=[(t, CHAINED) for t in flatten_tensors(x)])
            return self.apply_shared(self._instance(step, env), inputs, step.span, env)
        raise error("E0900", f"`{type(step).__name__}` cannot follow `->`", step.span)

    def _repeat_step(self, step: RepeatStep, x: Value, env: Env, collapse: bool,
                     across: tuple[int, int, int] | None = None) -> Value:
        """`across`: for a stage table's row repeat `repeat n as i, j of blocks`, the row's count (already
        evaluated), the number of the table's blocks before the row's first, and the table's total."""
        st = self.st
        counted = (step.table_index.index, step.table_index.total) if step.table_index is not None else ()
        if counted and across is None:  # lark_boundary allows `, j of blocks` on a table's row step only
            assert step.table_index is not None
            raise error("E0108", "`, j of blocks` counts the blocks of a stage table's rows, but this repeat is no "
                        "table's row step", step.table_index.span, "write it on the repeat after a table's rows")
        count, before, total = across if across is not None else (self._count(step.count, env), 0, 0)
        static = step.label.static() if step.label is not None and not step.label.append else None
        through = step.label is None and appends_only(step.body)  # no scope for the iterations
        if static is not None:
            base = self._scope_for_label(env, static, step.span, "repeat", f"repeat {count}")
        elif collapse or step.label is not None or through:
            base = env.scope
        else:
            base = (*env.scope, st.fresh(env.scope, "repeat"))
            st.ir.scopes.setdefault(base, ScopeInfo(base, "repeat", f"repeat {count}", None, step.span))
        st.loop_vars.append(step.var or "")
        index = (step.var,) if step.var else ()
        outside = env.outside(index + counted)
        if counted:
            env.vars[counted[1]] = total
        try:
            for i in range(count):
                self.tick(step.span)
                if step.var:
                    env.vars[step.var] = i
                if counted:
                    env.vars[counted[0]] = before + i
                if step.label is not None and static is None:  # `as denselayer{i + 1}`, `as L[]`: each iteration
                    scope = self._iteration_scope(env, step.label, step.span, count)
                elif through:
                    scope = base
                else:
                    scope = (*base, st.claim(base, str(i), step.span))
                lists = env.list_scope if step.label is None else None
                x = self._steps(step.body, x, env.within(scope, lists), collapse=len(step.body) == 1)
        finally:
            st.loop_vars.pop()
            env.unbind(index, outside, _after("the index of the repeat", step.span, "counts only in its body"))
            env.unbind(counted, outside, _after("the block number or total of the stage table's row repeat",
                                                step.span, "counts only in its body"))
        return x

    def placed(self, label: Label | None, env: Env) -> tuple[tuple[str, ...] | None, Env]:
        """`as L[]`: the list `L` in the scope the enclosing block, network, or labelled row or
        iteration sets (unlabelled rows and iterations set none), and its next index."""
        parts = self.label_of(label, env)
        if label is None or not label.append or parts is None:
            return parts, env
        at = env.within(env.list_scope)
        entry = (*parts, self.st.append((*at.scope, *parts), label.span))
        if self.st.list_rows and self.st.list_rows[-1][0] == at.scope:  # a row of a table that is no scope
            self.st.ir.list_rows[(*at.scope, *entry)] = self.st.list_rows[-1][1:]
        return entry, at

    def _steps(self, steps: tuple[Node, ...], x: Value, env: Env, collapse: bool = False) -> Value:
        for s in steps:
            x = self.chain_step(s, x, env, collapse=collapse)
        return x

    def _stages(self, step: StagesStep, x: Value, env: Env) -> Value:
        st = self.st
        label = step.label.static() if step.label is not None else None
        # `as stage{s}`: a label reading the columns names each row by its own label (ShuffleNet V2's
        # Table 5 counts its stages from 2), as `repeat … as denselayer{i + 1}` names each iteration.
        per_row = step.label is not None and not step.label.append and label is None
        if step.label is not None and not step.label.append and not per_row and len(label or ()) != 1:
            raise error("E0414", "a stage table's label is a single name", step.span,
                        "its rows are named after it: `as layer` names them layer1, layer2, …; a label "
                        "reading a column names each row by its own (`as stage{s}`)")
        base_name = label[0] if label else "stage"
        through = step.label is None and appends_only(step.body)
        # A column names each row's value for the row's step only: after the table it is unbound again
        # (or the value it had before), never silently the last row's value.
        outside = env.outside(step.columns)
        in_rows = (f"`{{name}}` is a column of the stage table at {step.span.where()}: a row's cells cannot read the "
                   "columns (not even the row above's); write the value itself")
        repeat = step.body if isinstance(step.body, RepeatStep) and step.body.table_index is not None else None
        try:
            table = self._rows_counted(step, repeat, env, outside, in_rows) if repeat is not None else []
            blocks = sum(count for _, count in table)
            for r, row in enumerate(step.rows, start=1):
                env.unbind(step.columns, outside, in_rows)  # a row's cells see what the table's surroundings see
                values = table[r - 1][0] if repeat is not None else [self.eval(cell, env) for cell in row.cells]
                for col, v in zip(step.columns, values, strict=True):
                    env.vars[col] = v
                title = ", ".join(f"{c}={render_value(v)}" for c, v in zip(step.columns, values, strict=True))
                lists = None
                if step.label is not None and step.label.append:  # `as features[]`: each row the list's next entry
                    parts, at = self.placed(step.label, env)
                    assert parts is not None
                    path = self._claim_label(at.scope, parts, row.span)
                elif per_row:
                    parts = self.label_of(step.label, env)
                    assert parts is not None
                    path = self._claim_label(env.scope, parts, row.span)
                elif label:
                    path = (*env.scope, st.claim(env.scope, f"{base_name}{r}", row.span))
                elif through:  # every step appends to a list outside: the rows are no scopes
                    path, lists = env.scope, env.list_scope
                else:
                    path, lists = (*env.scope, st.fresh(env.scope, f"stage{r}")), env.list_scope
                if path != env.scope:
                    st.ir.scopes.setdefault(path, ScopeInfo(path, "stage", title, None, row.span, table=step, row=r))
                st.list_rows.append((env.list_scope, step, r))
                try:
                    if repeat is not None:
                        across = (table[r - 1][1], sum(count for _, count in table[:r - 1]), blocks)
                        x = self._repeat_step(repeat, x, env.within(path, lists), True, across)
                    else:
                        x = self.chain_step(step.body, x, env.within(path, lists), collapse=True)
                finally:
                    st.list_rows.pop()
        finally:
            env.unbind(step.columns, outside, _after("a column of the stage table", step.span,
                                                     "has a value only in the step applied to each row"))
        return x

    def _rows_counted(self, step: StagesStep, repeat: RepeatStep, env: Env, outside: dict[str, Value],
                      in_rows: str) -> list[tuple[list[Value], int]]:
        """Each row's cells and its repeat's count, for `repeat n as i, j of blocks`: `blocks` needs
        every row's count before the first block, so they are evaluated first (once each)."""
        table: list[tuple[list[Value], int]] = []
        for row in step.rows:
            env.unbind(step.columns, outside, in_rows)
            values = [self.eval(cell, env) for cell in row.cells]
            env.vars.update(zip(step.columns, values, strict=True))
            table.append((values, self._count(repeat.count, env)))
        return table

    def _scope_for_label(self, env: Env, label: tuple[str, ...], span: Span, kind: ScopeKind,
                         title: str) -> tuple[str, ...]:
        path = self._claim_label(env.scope, label, span)
        self.st.ir.scopes.setdefault(path, ScopeInfo(path, kind, title, None, span))
        return path

    def _claim_label(self, scope: Path, label: tuple[str, ...], span: Span) -> Path:
        """`scope` + the label's parts, the last one claimed (it must be new there)."""
        try:
            where = (*scope, *label[:-1]) if len(label) > 1 else scope
            return (*where, self.st.claim(where, label[-1], span))
        except ArchError as exc:
            loop_var = next((p for p in label if p in self.st.loop_vars), None)
            if loop_var is None:
                raise
            raise error("E0404", exc.diagnostics[0].message, span,
                        f"`{loop_var}` in a label is the name `{loop_var}`, not the loop index: write "
                        f"`{{{loop_var}}}` to use its value, e.g. `as layer{{{loop_var}}}` (or "
                        f"`{{{loop_var} + 1}}` to count from 1)") from None

    def _chain_input(self, x: Value, span: Span) -> Value:
        if isinstance(x, Tensor | tuple | Bundle):
            return x
        raise error("E0509", f"`->` feeds {describe(x)} into a call; it needs a tensor", span,
                    layer_hint(x) or "start a chain with a tensor, e.g. `in -> conv(64, 3)`")

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
        raise error("E0512", f"{what} must be a tensor, got {describe(v)}", span, layer_hint(v))

    # ---- calls -------------------------------------------------------------------------------
    def call_layer(self, target: Layer, args: tuple[Arg, ...], chained: Value, span: Span,
                   func_span: Span, env: Env, label: tuple[str, ...] | None,
                   scope_override: tuple[str, ...] | None) -> Value:
        done: list[Value] = []
        if type(target) is OpRef and type(chained) is Tensor:  # `x -> conv(64, 3)`: most layers
            done, plain = plain_arguments(args, self.eval, env) if args else (done, ())  # `x -> relu`: no arguments
            if plain is not None:  # bound, validated and checked at once where the same call was met before
                key = (target.name, chained.shape, self.limits.max_tensor_elements, plain)
                bound = _BOUND.get(key)
                if bound is not None:
                    return self._op_node(bound[0], bound[1], [chained], bound[2], span, env, label, None,
                                         self._written(args))
                return self.apply_op(target.name, plain_call(done, args, chained), span, env, label,
                                     arguments=self._written(args), key=key)
        operands = split_args(args, chained, self.eval, env, done)
        if isinstance(target, SharedRef):
            if label is not None:
                raise error("E0535", "a shared instance is named where it is made", span,
                            f"drop `as {'.'.join(label)}`; give the label to `shared`")
            return self.apply_shared(target, operands, span, env)
        partial = as_partial(target, operands, label, chained)
        if partial is not None:  # `leaky(0.1)`: a layer value, applied where it is called
            return partial
        # The call's arguments as written, where each names a parameter as it does in the spec: none
        # supplied by a partial layer value, no tensor among them but the chained input.
        chained_count = 0 if chained is None else 1 if type(chained) is Tensor else len(flatten_tensors(chained))
        written = () if isinstance(target, Partial) or operands.kw_tensors or len(operands.tensors) > chained_count \
            else self._written(args)
        if isinstance(target, Partial):
            operands, label, target = with_partial(target, operands), label or target.label, target.target
        if isinstance(target, OpRef):
            if operands.kw_tensors:
                name = next(iter(operands.kw_tensors))
                raise error("E0513", f"`{target.name}` takes tensors positionally, not as `{name}=`", span)
            return self.apply_op(target.name, operands, span, env, label, arguments=written)
        return self.apply_block(target.name, operands, span, env, label, scope_override, arguments=written)

    def _written(self, args: tuple[Arg, ...]) -> tuple[tuple[str | None, Node], ...]:
        """A call's arguments as written (name or None, and expression), made once per call site."""
        written = self.st.written.get(id(args))  # the definitions outlive the elaboration: ids are stable
        if written is None:
            written = self.st.written[id(args)] = tuple([(a.name, a.value) for a in args])
        return written

    def apply_op(self, name: str, operands: CallArgs, span: Span, env: Env, label: tuple[str, ...] | None,
                 node_path: Path | None = None, arguments: tuple[tuple[str | None, Node], ...] = (),
                 key: tuple[object, ...] | None = None) -> Value:
        """An instance of the op `name`; `node_path` fixes its name (a shared instance's application).
        `key`: the call's key in `_BOUND` (see `call_layer`), where it has one."""
        op = get_op(name)
        ins, attrs, outs = self._bound(op, name, operands, span)
        if key is not None and op.size_from_tensor is None:
            if len(_BOUND) >= _BOUND_MAX:
                _BOUND.clear()
            _BOUND[key] = (op, attrs, outs)
        return self._op_node(op, attrs, ins, outs, span, env, label, node_path, arguments)

    def _bound(self, op: type[Op], name: str, operands: CallArgs, span: Span
               ) -> tuple[list[Tensor], Attrs, list[Shape]]:
        """A call of the op `name` bound, its attributes validated and its output shapes inferred and
        checked: (input tensors, attributes, output shapes)."""
        ins, values, spans = bind_op(op, name, size_inputs(op, operands) if op.size_from_tensor else operands, span)
        try:
            attrs = op.validate(values)
        except AttrError as exc:
            raise error("E0303", exc.message, spans.get(exc.field or "", span), attr_usage(op)) from None
        return ins, attrs, self._infer(op, name, attrs, ins, [t.shape for t in ins], span)

    def _op_node(self, op: type[Op], attrs: Attrs, ins: list[Tensor], outs: list[Shape], span: Span, env: Env,
                 label: tuple[str, ...] | None, node_path: Path | None,
                 arguments: tuple[tuple[str | None, Node], ...]) -> Value:
        """The node of an op call bound and checked: named, counted against the limit, added."""
        st = self.st
        if node_path is not None:
            node_name = ".".join(node_path)
        elif label is None:
            scope = env.scope
            node_name = ".".join((*scope, st.fresh(scope, op.name))) if scope else st.fresh(scope, op.name)
        else:
            node_name = ".".join(self._claim_label(env.scope, label, span))
        ir = st.ir
        if len(ir) >= self.limits.max_nodes:
            raise error("E0518", f"the network exceeds {self.limits.max_nodes} nodes", span,
                        "raise the limit with --max-nodes for a genuinely huge network")
        if len(ins) == 1:
            only = ins[0]
            shapes: tuple[Shape, ...] = (only.shape,)
            ports: tuple[Port, ...] = (only.port,)
        else:
            shapes, ports = tuple([t.shape for t in ins]), tuple([t.port for t in ins])
        shares = self._original(node_name, op, attrs, list(shapes), span) if st.sharing else None
        ir.add_node(IRNode(node_name, "op", op.name, attrs, ports, tuple(outs), env.scope, span, None, shares), shapes)
        if arguments and span not in ir.arguments:
            ir.arguments[span] = arguments
        if len(outs) == 1 and op.num_outputs(attrs) == 1:
            return Tensor(Port(node_name, 0), outs[0])
        return tuple([Tensor(Port(node_name, i), s) for i, s in enumerate(outs)])

    def _infer(self, op: type[Op], name: str, attrs: Attrs, ins: list[Tensor], shapes: list[Shape],
               span: Span) -> list[Shape]:
        """The output shapes of a call, checked; computed once per distinct (op, attributes, input
        shapes) — validated attributes are shared by identical calls, and kept referenced by
        the cache, so their identity is the key."""
        key = (op, id(attrs), tuple(shapes))
        known = self.st.inferred.get(key)
        if known is not None:
            return known[0]
        try:
            outs = op.infer(attrs, list(shapes))
        except ShapeError as exc:
            notes = tuple(
                f"operand {k}: {fmt_shape(t.shape)} from `{t.port.node}` ({self.st.ir.node(t.port.node).span.where()})"
                for k, t in enumerate(ins, start=1)) if len(ins) > 1 else ()
            raise ArchError(Diagnostic("E0305", exc.message, span, exc.hint, notes=notes)) from None
        for shape in outs:
            self._check_shape(shape, span, f"the output of `{name}`")
        self._check_weights(op.params(attrs, list(shapes)), span, f"`{name}`")
        self.st.inferred[key] = (outs, attrs)
        return outs

    # ---- shared instances ----------------------------------------------------------------------
    def _instance(self, node: Shared, env: Env) -> SharedRef:
        """The shared instance a `shared` call names: made on first evaluation, found again after
        (by its label, or by the call's place when it has none)."""
        st = self.st
        target = self._shareable(node, env)
        operands = split_args(node.args, None, self.eval, env)
        if operands.tensors or operands.kw_tensors:
            raise error("E0533", "a shared instance is made without input tensors", node.span,
                        f"apply it to its inputs afterwards: `x -> shared {node.func}(...)` or "
                        f"`{node.func}_ = shared {node.func}(...)` then `x -> {node.func}_`")
        if isinstance(target, Partial):
            operands, target = with_partial(target, operands), target.target
        if node.label is not None and node.label.append:
            raise error("E0107", "a shared instance is one layer, found again by its label: it cannot be a list's "
                        "next entry (`[]`)", node.label.span, "give it a name or a path, e.g. `as head` or "
                        "`as heads.0`")
        label = self.label_of(node.label, env)
        owner = st.owner()
        path = (*env.scope, *label) if label is not None else st.shared_sites.get((owner, node.span))
        inst = st.instances.get(path) if path is not None else None
        if inst is None:
            if label is not None:
                path = self._claim_label(env.scope, label, node.span)
            else:
                path = (*env.scope, st.fresh(env.scope, target.name))
                st.shared_sites[(owner, node.span)] = path
            inst = st.instances[path] = Instance(path, target, operands.scalars, operands.kwargs, owner, node.span)
        else:
            self._same_instance(inst, target, operands, node.span)
        return SharedRef(inst.path, target.name)

    def _shareable(self, node: Shared, env: Env) -> OpRef | BlockRef | Partial:
        held = env.vars.get(node.func)
        if held is POISON:
            raise Poisoned(node.func)
        if isinstance(held, OpRef | BlockRef | Partial):
            return held
        if isinstance(held, SharedRef):
            raise error("E0533", f"`{node.func}` is a shared instance already", node.func_span,
                        f"apply it: `x -> {node.func}`")
        if node.func in env.ns.blocks:
            return BlockRef(node.func)
        if has_op(node.func):
            return OpRef(node.func)
        if node.func in BUILTINS:
            raise error("E0533", f"`{node.func}` computes a number; only ops and blocks can be shared",
                        node.func_span)
        raise error("E0402", f"unknown op or block `{node.func}`", node.func_span,
                    did_you_mean(node.func, [*env.ns.blocks, *op_names()]) or UNKNOWN_CALLABLE_HINT)

    def _same_instance(self, inst: Instance, target: OpRef | BlockRef, operands: CallArgs, span: Span) -> None:
        """A `shared` call that finds an instance made before must ask for the same thing."""
        def given(call: CallArgs | Instance) -> tuple[list[Value], dict[str, Value]]:
            return [v for v, _ in call.scalars], {k: v for k, (v, _) in call.kwargs.items()}

        if target != inst.target or given(operands) != given(inst):
            raise error("E0534", f"`{'.'.join(inst.path)}` is already a shared instance of "
                        f"{_call_text(inst.target, inst)}, made at {inst.span.where()}", span,
                        f"this call asks for {_call_text(target, operands)}; one name holds one set of "
                        "weights: give this one another label")

    def apply_shared(self, ref: SharedRef, operands: CallArgs, span: Span, env: Env) -> Value:
        """Apply a shared instance to input tensors: the first application builds its layers at the
        instance's path, every later one at `path@k`, each layer using the first one's weights."""
        st = self.st
        inst = st.instances[ref.path]
        where = ".".join(inst.path)
        if operands.scalars or operands.kwargs:
            first = (operands.scalars[0][1] if operands.scalars else next(iter(operands.kwargs.values()))[1])
            raise error("E0535", f"the shared instance `{where}` takes only input tensors", first,
                        f"its attributes were fixed where it was made ({inst.span.where()})")
        if st.owner() != inst.owner:
            inside = f"block `{'.'.join(st.owner())}`" if st.owner() else f"network `{st.network}`"
            maker = f"`{'.'.join(inst.owner)}`" if inst.owner else f"network `{st.network}`"
            raise error("E0536", f"the shared instance `{where}` is applied inside {inside}, but it is made in "
                        f"{maker}", span, "apply a shared instance in the body that makes it (its module lives there)")
        shapes = tuple(t.shape for t, _ in operands.tensors) + tuple(t.shape for t, _ in operands.kw_tensors.values())
        k = inst.applications + 1
        if k > 1:
            self._same_inputs(inst, shapes, span)
        path = inst.application_path(k)
        if k > 1:
            st.sharing.append((".".join(path), where, inst))
        before = len(st.ir)
        try:
            if isinstance(inst.target, OpRef):
                call = CallArgs(tensors=operands.tensors, scalars=list(inst.scalars), kwargs=dict(inst.kwargs))
                result = self.apply_op(inst.target.name, call, span, env, None, node_path=path)
            else:
                call = CallArgs(tensors=operands.tensors, scalars=list(inst.scalars),
                                kw_tensors=operands.kw_tensors, kwargs=dict(inst.kwargs))
                result = self.apply_block(inst.target.name, call, span, env, None, path,
                                          shares=inst.path if k > 1 else None)
        finally:
            if k > 1:
                st.sharing.pop()
        built = len(st.ir) - before
        if k == 1:
            inst.first_span, inst.first_inputs, inst.first_nodes = span, shapes, built
        elif built != inst.first_nodes:
            raise error("E0537", f"the shared instance `{where}` builds {built} layer(s) here but {inst.first_nodes} "
                        f"at its first application ({_where(inst.first_span)})", span,
                        "a shared instance must build the same layers wherever it is applied")
        inst.applications = k
        return result

    def _same_inputs(self, inst: Instance, shapes: tuple[Shape, ...], span: Span) -> None:
        where, first = ".".join(inst.path), _where(inst.first_span)
        if len(shapes) != len(inst.first_inputs):
            raise error("E0537", f"the shared instance `{where}` is applied to {len(shapes)} tensor(s) here but to "
                        f"{len(inst.first_inputs)} at its first application ({first})", span)
        for k, (now, then) in enumerate(zip(shapes, inst.first_inputs, strict=True), start=1):
            if len(now) != len(then) or now[0] != then[0]:
                what = (f"{now[0]} channels here, but its weights take {then[0]}" if len(now) == len(then)
                        else f"a {fmt_shape(now)} tensor here, but to {fmt_shape(then)} at first")
                which = f"input {k}" if len(shapes) > 1 else "its input"
                raise error("E0537", f"the shared instance `{where}` gets {what} ({which}; first applied at {first})",
                            span, "one set of weights needs the same number of channels everywhere; project the "
                            "input first (a 1×1 conv), or make a separate instance")

    def _original(self, name: str, op: type[Op], attrs: Any, ins: list[Shape], span: Span) -> str | None:
        """For a layer of a shared instance's later application: the first application's layer whose
        weights it uses (checked to be the same layer); None for any other layer."""
        st = self.st
        if not st.sharing:
            return None
        frame = next((f for f in reversed(st.sharing) if name == f[0] or name.startswith(f[0] + ".")), None)
        if frame is None:
            return None
        this, first, inst = frame
        original = first + name[len(this):]
        if original not in st.ir:
            raise error("E0537", f"the shared instance `{first}` builds `{name[len(this) + 1:] or name}` here, "
                        f"which its first application ({_where(inst.first_span)}) did not build", span,
                        "a shared instance must build the same layers wherever it is applied")
        node = st.ir.node(original)
        mine = (op.name, attrs, op.params(attrs, ins), op.buffers(attrs, ins))
        theirs = (node.op, node.attrs, node.op_class.params(node.attrs, st.ir.in_shapes(node)),
                  node.op_class.buffers(node.attrs, st.ir.in_shapes(node)))
        if mine != theirs:
            raise error("E0537", f"the shared instance `{first}` builds `{original}` differently here: "
                        f"{op.describe(attrs)} on {fmt_shape(ins[0]) if ins else 'no input'}, against "
                        f"{node.op_class.describe(node.attrs)} on {fmt_shape(st.ir.in_shapes(node)[0])} at its first "
                        f"application ({_where(inst.first_span)})", span,
                        "one set of weights fits one layer; make every application build the same layers")
        return node.shares or original

    def condition(self, node: Node, env: Env) -> bool:
        truth = super().condition(node, env)
        self.st.conditions.setdefault(self.st.owner(), []).append((node, truth))
        return truth

    def _check_weights(self, count: int, span: Span, what: str) -> None:
        """A layer's parameters, bounded like a tensor: conv(8, 10**12) keeps its output's shape (half
        padding) but no module could hold its kernel."""
        if count > self.limits.max_tensor_elements:
            raise error("E0307", f"{what} would hold {count:,} parameters (limit {self.limits.max_tensor_elements:,})",
                        span, "check the layer's sizes (a kernel larger than its input?), "
                        "or raise --max-tensor-elements")

    def _check_shape(self, shape: Shape, span: Span, what: str) -> None:
        if any(d <= 0 for d in shape):
            raise error("E0306", f"{what} has an empty shape {fmt_shape(shape)}", span)
        if math.prod(shape) > self.limits.max_tensor_elements:
            raise error("E0307", f"{what} would hold {math.prod(shape):,} elements per sample "
                        f"(limit {self.limits.max_tensor_elements:,})", span,
                        "use a smaller input, or raise --max-tensor-elements")

    def apply_block(self, name: str, operands: CallArgs, span: Span, env: Env, label: tuple[str, ...] | None,
                    scope_override: tuple[str, ...] | None, shares: Path | None = None,
                    arguments: tuple[tuple[str | None, Node], ...] = ()) -> Value:
        st = self.st
        block, block_ns = env.ns.blocks[name]
        if st.call_depth >= self.limits.max_call_depth:
            raise error("E0519", f"blocks nested deeper than {self.limits.max_call_depth} (does `{name}` "
                        "instantiate itself?)", span, "a block must not instantiate itself, directly or through others")
        bound, args = bind_block(block, operands, span)
        keyed = call_key(block, block_ns, bound, args) if shares is None and not st.sharing else None
        path: Path | None = None
        similar = None  # the call's key with its holes' values left out, where the call has holes
        if keyed is not None:
            replayed, path, similar = self._replay(keyed, name, block, block_ns, args, span, env, label,
                                                   scope_override, arguments)
            if replayed is not None:
                return replayed
        inner = Env(dict(bound), block_ns, ())
        st.calls.append((name, span))
        outer_deepest, st.deepest = st.deepest, st.call_depth
        st.call_depth += 1
        try:
            before = _Snapshot(self) if keyed is not None and keyed[0] not in st.templates else None
            title = self._block_params(block, args, inner, span)
            inner.scope = path if path is not None else self._block_path(name, env, label, scope_override, span)
            fresh = before is not None and inner.scope not in st.touched
            st.ir.scopes[inner.scope] = ScopeInfo(inner.scope, "block", title, name, span, shares)
            st.blocks.append(inner.scope)
            try:
                last = self.exec_body(block.body, inner)
            finally:
                st.blocks.pop()
            st.ir.scopes[inner.scope] = self._block_scope(block, name, inner, title, span, shares, arguments)
            result = self._block_result(block, inner, last)
            if before is not None and fresh and keyed is not None:
                st.templates[keyed[0]] = before.recorded(self, inner.scope, keyed[1], result)
                if similar is not None:
                    st.similar.setdefault(similar, keyed[0])
            return result
        except RecursionError:
            raise error("E0519", f"blocks nested too deeply in `{name}`", span) from None
        except Abandoned:
            raise
        except ArchError as exc:  # located in the block: say which call it happened in
            note = [f"in block `{name}`, called at {span.where()}"]
            raise ArchError([d if d.span == span else with_call_notes(d, note) for d in exc.diagnostics]) from None
        finally:
            st.deepest = max(st.deepest, outer_deepest)
            st.call_depth -= 1
            st.calls.pop()

    def _block_scope(self, block: BlockDef, name: str, inner: Env, title: str, span: Span, shares: Path | None,
                     arguments: tuple[tuple[str | None, Node], ...]) -> ScopeInfo:
        """A block instance's scope once its body ran: with the numbers its body ended with, the
        `name = …` statements that defined them, and the call's arguments as written."""
        st = self.st
        # A size read from a tensor (`in.channels`) is kept as the plain integer it is.
        numbers = tuple([(k, int(v) if type(v) is Dim else v)
                         for k, v in inner.vars.items() if isinstance(v, _NUMBERS)])
        named = dict(numbers)
        static = st.assignments.get(id(block))  # the definitions outlive the elaboration: ids are stable
        if static is None:
            static = st.assignments[id(block)] = (
                tuple((stmt.target, stmt.value) for stmt in block.body.stmts if isinstance(stmt, Assign)),
                tuple(p.name for p in block.params), literal_defaults(block.params))
        assignments, params, defaults = static
        defined = tuple([(target, value) for target, value in assignments if target in named])
        scope = inner.scope
        conditions = st.conditions.pop(scope, None)
        owned = st.owned_lists.pop(scope, None)
        return ScopeInfo(scope, "block", title, name, span, shares, numbers, defined, params=params, defaults=defaults,
                         arguments=arguments, conditions=() if conditions is None else tuple(conditions),
                         lists=() if owned is None else tuple(p[-1] for p in owned if p[:-1] == scope),
                         outputs=() if block.outputs is None else _named_tensors(block.outputs, inner))

    def _replay(self, keyed: tuple[tuple[object, ...], list[Port]], name: str, block: BlockDef,
                block_ns: Definitions, args: dict[str, Value], span: Span, env: Env,
                label: tuple[str, ...] | None, scope_override: tuple[str, ...] | None,
                arguments: tuple[tuple[str | None, Node], ...]
                ) -> tuple[Value | None, Path | None, object | None]:
        """The call's value made from a template where the limits allow it (see archdsl.templates),
        else None: the template of its key, else that of a call that differed only in the block's
        holes, filled with this call's values. Also the call's path, where finding that out made it,
        and its key without its holes' values (None where it was not needed or there are no holes)."""
        st = self.st
        similar = gaps = None
        at: object = keyed[0]
        if at not in st.templates:
            gaps = holes(block, block_ns.blocks)
            similar = None if gaps is None else without_holes(keyed[0], gaps.params)
            at = st.similar.get(similar)
            if at is None:
                return None, None, similar
        template = st.templates[at]
        if isinstance(template, Recorded):  # met a second time: worth building the template now
            template = st.templates[at] = template.build()
        if template is None or self.steps + template.steps > self.limits.max_steps:
            return None, None, similar
        path = self._block_path(name, env, label, scope_override, span)
        if (path in st.touched or len(st.ir) + len(template.nodes) > self.limits.max_nodes
                or st.call_depth + template.depth >= self.limits.max_call_depth):
            return None, path, similar
        filled: _Filled = ({}, None, None)
        if similar is not None and gaps is not None:  # another call's template: this call's holes filled in
            found = self._filled(template, block, block_ns, args, gaps)
            if found is None:
                return None, path, similar
            filled = found
        return self._instantiate(template, path, name, span, keyed[1], arguments, *filled), path, similar

    def _instantiate(self, template: Template, path: Path, name: str, span: Span, ports: list[Port],
                     arguments: tuple[tuple[str | None, Node], ...], attrs: dict[int, Attrs],
                     title: str | None, numbers: tuple[tuple[str, int | float], ...] | None) -> Value:
        """A block call met before with the same key: its template, under `path` (see archdsl.templates);
        `arguments`: this call's, as written; `attrs`, `title`, `numbers`: what its holes change."""
        st = self.st
        value, names, suffixes = instantiate(template, st.ir, path, name, span, ports, arguments, attrs, title,
                                             numbers)
        for scope, used in names:
            st.names(scope).update(used)
        for scope, base, k in suffixes:
            st.next_suffix[(scope, base)] = k
        self.steps += template.steps
        st.deepest = max(st.deepest, st.call_depth + template.depth)
        return value

    def _filled(self, template: Template, block: BlockDef, block_ns: Definitions, args: dict[str, Value],
                gaps: Holes) -> _Filled | None:
        """What this call's values of the block's holes change in `template`: the attributes of the
        layers that read them, by the layer's index, bound, validated and checked as `apply_op` does,
        the scope's title and its numbers; None where a layer's attributes are rejected or its output
        shapes differ from the template's (the call is then elaborated, and says why where it fails)."""
        given = {k: v for k, v in args.items() if k in gaps.params and type(v) in _NUMBERS}
        numbers = tuple([(k, given.get(k, v)) for k, v in template.numbers])
        known: dict[str, Value] = dict(numbers)
        known.update(given)
        env = Env(known, block_ns, ())
        attrs: dict[int, Attrs] = {}
        steps = self.steps  # the template's steps are the call's: the arguments evaluated again are not counted
        try:
            for k, node in enumerate(template.nodes):
                site = gaps.sites.get(node.span)
                if site is None:
                    continue
                op = get_op(site.func)
                if len(node.inputs) != 1 or op.size_from_tensor is not None:  # bound otherwise than here
                    return None
                values, _ = plain_arguments(site.args, self.eval, env)
                chained = Tensor(Port("", 0), node.in_shapes[0])
                _, attrs[k], outs = self._bound(op, site.func, plain_call(values, site.args, chained), node.span)
                if outs != list(node.out_shapes):
                    return None
        except (ArchError, Poisoned):
            return None
        finally:
            self.steps = steps
        return attrs, _call_title(block, args), numbers

    def _block_params(self, block: BlockDef, args: dict[str, Value], inner: Env, span: Span) -> str:
        """Bind the parameters (defaults evaluated in the block's scope); returns the call as written
        (`inverted_residual(c=24, stride=2)`, defaults left out) for the scope's title."""
        for p in block.params:
            name = p.name
            if name in args:
                inner.vars[name] = args[name]
            elif p.default is not None:
                inner.vars[name] = self.eval(p.default, inner)
            else:
                raise error("E0523", f"block `{block.name}` needs the parameter `{name}`", span,
                            f"pass it: `{block.name}({', '.join(q.name for q in block.params)})`")
        return _call_title(block, args)

    def _block_path(self, name: str, env: Env, label: tuple[str, ...] | None,
                    scope_override: tuple[str, ...] | None, span: Span) -> tuple[str, ...]:
        if scope_override is not None:
            return scope_override
        if label is not None:
            return self._claim_label(env.scope, label, span)
        return (*env.scope, self.st.fresh(env.scope, name))

    def _block_result(self, block: BlockDef, env: Env, last: Value) -> Value:
        if block.outputs is None:
            if isinstance(last, Tensor | Bundle | tuple):
                return last
            if last is POISON:
                raise Poisoned(block.name)
            raise _no_tensor(block, env, last)
        tensors = []
        for k, out in enumerate(block.outputs):
            v = env.vars.get(out)
            if v is POISON:
                raise Poisoned(out)
            if not isinstance(v, Tensor):
                declared = block.output_spans[k] if k < len(block.output_spans) else block.span
                raise error("E0525", f"block `{block.name}` declares output `{out}` but "
                            + ("never assigns it" if v is None else f"it is {describe(v)}"), declared,
                            f"assign `{out} = ...` in the block body")
            tensors.append(v)
        if len(tensors) == 1:
            return tensors[0]
        return Bundle(block.outputs, tuple(tensors))


# What a call's holes change in a template (Elaborator._filled): the attributes of its k-th layer by k,
# the scope's title and numbers (None: the template's).
_Filled = tuple[dict[int, Attrs], str | None, tuple[tuple[str, int | float], ...] | None]


def _call_title(block: BlockDef, args: dict[str, Value]) -> str:
    """A block call as written, defaults left out: `inverted_residual(c=24, stride=2)`."""
    given = [f"{p.name}={render_value(args[p.name])}" for p in block.params if p.name in args]
    return f"{block.name}({', '.join(given)})"


def _named_tensors(names: Iterable[str], env: Env) -> tuple[tuple[str, str, int], ...]:
    """ScopeInfo.outputs, and IR.values (the network's, `env.scope` empty): of `names`,
    each variable whose value is a tensor a layer inside the instance computes, with that layer's
    name relative to the instance and the output's index; a tensor once, under its first name."""
    prefix = ".".join(env.scope) + "." if env.scope else ""
    named = []
    seen: set[Port] = set()
    for name in names:
        value = env.vars.get(name)
        if type(value) is Tensor and value.port.node.startswith(prefix) and value.port not in seen:
            seen.add(value.port)
            named.append((name, value.port.node[len(prefix):], value.port.index))
    return tuple(named)


class _Snapshot:
    """The elaboration's state when a block call starts, to tell afterwards whether the call is a
    function of its key alone (it built only under its own fresh path, and nothing else) and, if so,
    to record it as a template."""

    def __init__(self, elab: Elaborator) -> None:
        self.steps = elab.steps
        self.sizes = self._sizes(elab.st)

    @staticmethod
    def _sizes(st: State) -> tuple[int, ...]:
        return (len(st.ir), len(st.ir.scopes), len(st.used_names), len(st.next_suffix), st.errors_met,
                len(st.instances), len(st.shared_sites), len(st.outputs), len(st.expects), len(st.inits),
                len(st.sharing))

    def recorded(self, elab: Elaborator, path: Path, ports: list[Port], result: Value) -> Recorded | None:
        st = elab.st
        depth = st.deepest - (st.call_depth - 1)  # the call itself started one level up
        now = self._sizes(st)
        if now[4:] != self.sizes[4:]:  # an error, a shared instance, an output, an `expect`, an `init`
            return None
        nodes, scopes = st.ir.last_nodes(now[0] - self.sizes[0]), _last(st.ir.scopes, now[1] - self.sizes[1])
        names = [(scope, frozenset(st.used_names[scope])) for scope in _last(st.used_names, now[2] - self.sizes[2])]
        suffixes = [(scope, base, st.next_suffix[scope, base])
                    for scope, base in _last(st.next_suffix, now[3] - self.sizes[3])]
        return Recorded(nodes, st.ir.in_shapes_keys(nodes), [st.ir.scopes[p] for p in scopes if p != path],
                        names, suffixes, path, ports, result, st.ir.scopes[path], elab.steps - self.steps, depth)


_NUMBERS = (int, float)

# Op calls `x -> op(args)` with plain arguments (see binding.plain_arguments), bound, validated and
# their output shapes checked, by (op name as called, input shape, the tensor-size limit, the
# arguments' names and typed values; for `a + b` and `a * b` of two tensors: the op, both shapes,
# the limit, None): a later identical call, in this elaboration or another, makes its node at once.
# What a key gives is a function of the key alone, as for the validated attributes (ops.base);
# cleared when full.
_BOUND: dict[tuple[object, ...], tuple[type[Op], Attrs, list[Shape]]] = {}
_BOUND_MAX = 1 << 14


def _last(mapping: dict[Any, Any], count: int) -> list[Any]:
    """The last `count` keys of a dict, in insertion order (without walking the others)."""
    keys = list(islice(reversed(mapping), count)) if count > 0 else []
    keys.reverse()
    return keys


def with_call_notes(diag: Diagnostic, notes: list[str]) -> Diagnostic:
    """`diag` with the block calls it happened in added (at most MAX_CALL_NOTES, then a count)."""
    if not notes:
        return diag
    kept = [n for n in diag.notes if not n.startswith("… and ")]
    calls = sum(n.startswith("in block ") for n in kept)
    hidden = next((int(n.split()[2]) for n in diag.notes if n.startswith("… and ")), 0)
    for note in notes:
        last = kept[-1] if kept else ""
        repeated = _REPEATED.fullmatch(last)
        if not hidden and (repeated.group(1) if repeated else last) == note:  # a block calling itself: counted
            kept[-1] = f"{note} ({int(repeated.group(2)) + 1 if repeated else 2} times)"
        elif calls < MAX_CALL_NOTES:
            kept.append(note)
            calls += 1
        else:
            hidden += 1
    if hidden:
        kept.append(f"… and {hidden} more enclosing block call(s)")
    return replace(diag, notes=tuple(kept))


_REPEATED = re.compile(r"(in block .*) \((\d+) times\)")


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each error once (a block called many times repeats its errors), the first call's notes kept."""
    seen: dict[tuple[Span, str], Diagnostic] = {}
    for d in diagnostics:
        seen.setdefault((d.span, d.message), d)
    return list(seen.values())


def _walk(node: Any) -> list[Node]:
    """Every AST node inside `node`, itself included."""
    found: list[Node] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Node):
            found.append(item)
            stack.extend(vars(item).values())
        elif isinstance(item, tuple):
            stack.extend(item)
    return found


def _bound_names(node: Node) -> tuple[str, ...]:
    """The names a statement or step binds in its environment."""
    if isinstance(node, Assign):
        return (node.target,)
    if isinstance(node, Destructure):
        return node.targets
    if isinstance(node, OutputDecl | OutputStep | InputDecl):
        return (node.name,)
    return ()  # a repeat's index and a table's columns are bound only inside it: nothing to poison after


def _after(what: str, span: Span, reach: str) -> str:
    """The hint for a name used after the construct at `span` that bound it (`{name}` left to fill)."""
    return f"`{{name}}` is {what} at {span.where()}, which {reach}; after it, `{{name}}` needs a value of its own"


def _where(span: Span | None) -> str:
    return span.where() if span is not None else "?"


def _call_text(target: OpRef | BlockRef, call: CallArgs | Instance) -> str:
    items = [render_value(v) for v, _ in call.scalars] + [f"{k}={render_value(v)}" for k, (v, _) in call.kwargs.items()]
    return f"`{target.name}({', '.join(items)})`"


def _no_tensor(block: BlockDef, env: Env, last: Value) -> ArchError:
    """E0524 at the statement that should have produced the block's tensor: its last one, `expect`
    lines aside (or the header, for an empty body)."""
    return _no_value("E0524", f"block `{block.name}` produces no tensor", block, env, last,
                     "end the block body with a tensor expression, e.g. `in + y`", "return it")


def _no_output(network: NetworkDef, env: Env, last: Value) -> ArchError:
    """E0408 at the statement that should have given the network's output: its last one, `expect`
    lines aside (the header only for a body without statements)."""
    return _no_value("E0408", f"network `{network.name}` has no output", network, env, last,
                     "end the body with a tensor expression or `-> output logits`",
                     "make it the output, or write `-> output logits` where it is made")


def _no_value(code: str, message: str, definition: BlockDef | NetworkDef, env: Env, last: Value, hint: str,
              to_use_it: str) -> ArchError:
    """`message` at the last statement of `definition`'s body (`expect` and `init` lines aside), saying
    what that statement is: the body's value should have been a tensor."""
    stmts = [s for s in definition.body.stmts if not isinstance(s, Expect | InitStmt)]
    if not stmts:
        return error(code, f"{message} (its body is empty)", definition.span, hint)
    stmt = stmts[-1]
    if isinstance(stmt, Assign | Destructure):
        what = "an assignment"
        targets = (stmt.target,) if isinstance(stmt, Assign) else stmt.targets
        if isinstance(env.vars.get(targets[-1]), Tensor | Bundle):
            hint = f"an assignment has no value; end the body with `{targets[-1]}` to {to_use_it}"
    elif isinstance(stmt, RepeatStmt):
        what = "a `repeat` statement"
    elif last is None and isinstance(stmt, ExprStmt) and isinstance(stmt.expr, IfExpr):
        what = "an `if` without `else`, whose condition is false here"
        hint = "add `else { … }` with the tensor to give when the condition is false"
    else:
        what = describe(last)
        hint = layer_hint(last) or hint
    return error(code, f"{message} (its last statement is {what})", stmt.span, hint)


def attr_usage(op: type[Op]) -> str:
    """`usage: conv(out, kernel, stride=1, …)`: the op's attributes, defaults shown."""
    fields = []
    for name, f in op.Attrs.model_fields.items():
        fields.append(name if f.is_required() else f"{name}={render_value(f.default)}")
    return f"usage: {op.name}({', '.join(fields)})"


__all__ = ["Elaborated", "Elaborator", "ExpectEntry", "State"]


def appends_only(step: Node | tuple[Node, ...]) -> bool:
    """Whether every layer a step builds goes into a list (`as L[]`) rather than into the scope a
    repeat or a stage-table row around it would make: then the row or iteration makes none."""
    if isinstance(step, tuple):
        return bool(step) and all(appends_only(s) for s in step)
    if isinstance(step, CallStep):
        return step.label is not None and step.label.append
    if isinstance(step, IfStep):
        return appends_only(step.then) and (step.orelse is None or appends_only(step.orelse))
    if isinstance(step, RepeatStep | StagesStep):
        if step.label is not None:
            return step.label.append
        return appends_only(step.body)
    return False

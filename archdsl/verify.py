"""`expect` lines checked against the analysis: the paper-number verification behind `archdsl verify`.

An ``expect TARGET OP VALUE [+- TOL[%]] ["source"]`` line names a quantity of the network and the
value a paper or a canonical implementation gives for it. TARGET is one of:

- a network figure: ``params``, ``buffers``, ``macs``, ``flops``, ``other_ops``, ``activations``,
  ``peak_activations`` (elements), ``activation_bytes``, ``peak_activation_bytes`` (float32),
  ``mac`` (memory access cost, ShuffleNet V2 §2, elements). These names are reserved in targets;
- a figure of one node, block or output X: ``X.shape``, ``X.rf`` (receptive-field size),
  ``X.rf_stride``, ``X.rf_start``, ``X.params``, ``X.buffers``, ``X.macs``, ``X.activations``,
  ``X.mac`` — or the call forms ``rf(X)``, ``rf_stride(X)``, ``rf_start(X)``, ``shape(X)``. The
  figures are those the analysis passes register (``archdsl.compiler.passes``): a new pass's
  figures are checkable here as soon as it is registered. X is an
  output name (``logits``), a tensor variable of the network body, a node path (``layer4.2.conv1``)
  or a block path (``layer4``: sums over its nodes; shape and field of its last node; a shared
  instance sums over every application, so its MACs count each time and its parameters once). Paths with
  numeric parts are written as strings: ``rf("features.12")``. A field is ``global`` once a global
  pool or a linear layer has seen the whole input; compare it with ``== global``. A number is
  compared with both axes, a pair ``[h, w]`` or ``196x196`` axis by axis;
- anything else is evaluated in the network body's final environment, so counts a spec computes
  are checkable: ``expect num_boxes == 8732``, ``expect len(layers) == 4``.

A leading network name (``resnet50.params``, ``resnet50.layer4.rf``) restricts the line to that
variant. ``==`` is exact (within a tolerance if one is given), ``~=`` needs a tolerance
(absolute, or ``%`` of the expected value); ``<= >= < >`` compare with the tolerance as slack.

>>> import archdsl
>>> spec = archdsl.load_string('''
... network tiny {
...     input image: 3x32x32
...     image -> conv(8, 3) as c1 -> conv(8, 3) as c2 -> avgpool(global) -> flatten -> linear(10) -> output logits
...     expect c2.rf == 5 "two 3×3 = one 5×5"
...     expect logits.shape == [10]
...     expect params ~= 900 +- 5%
... }''')
>>> [(c.quantity, c.computed, c.ok) for c in verify_spec(spec)]
[('c2.rf', '5', True), ('logits.shape', '[10]', True), ('params', '898', True)]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from archdsl.compiler.passes import Analysis, FigureError, Target, network_figures, node_figures

from .diagnostics import SOURCES, ArchError, Diagnostic, Span, did_you_mean
from .elaborate import ExpectEntry
from .evaluate import Env, Evaluator
from .ir import IR, Port, output_name
from .syntax import FLOAT_MAX, Attribute, Call, Index, Name, Node, Str
from .values import BOOLEAN_NUMBER_HINT, Tensor, boolean_against_number, describe

# What a target may name: the registered passes' figures (and the IR's own, `shape`), looked up when
# a target is evaluated, so that a pass registered later is checkable too. These tuples are the
# figures of the passes registered at import time.
QUANTITIES = tuple(network_figures())
NODE_QUANTITIES = tuple(node_figures())
FIELD_FUNCS = tuple(name for name, f in node_figures().items() if f.call_form)


class _TargetError(Exception):
    def __init__(self, message: str, span: Span, hint: str | None = None, code: str = "E0802") -> None:
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span, hint)


@dataclass
class Check:
    """One `expect` line evaluated for one network."""

    network: str
    file: str
    line: int
    col: int
    quantity: str
    op: str
    expected: str
    computed: str
    deviation: str
    source: str
    ok: bool
    diagnostic: Diagnostic | None = field(default=None, repr=False)
    more: tuple[Diagnostic, ...] = field(default=(), repr=False)  # a network's other elaboration errors

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("network", "file", "line", "col", "quantity", "op", "expected",
                                               "computed", "deviation", "source", "ok")}
        out["message"] = self.diagnostic.message if self.diagnostic else None
        return out


# ---------------------------------------------------------------------------------------------
# formatting


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1e4 else f"{v:.6g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(str(x) if isinstance(x, int) else fmt_value(x) for x in v) + "]"
    return str(v)


def _source_text(span: Span) -> str | None:
    line = SOURCES.line(span.file, span.line)
    if line is None or span.end_line != span.line:
        return None
    return line[span.col - 1 : span.end_col - 1] or None


def _expected_text(entry: ExpectEntry) -> str:
    stmt = entry.stmt
    text = _source_text(stmt.value.span) or fmt_value(entry.value)
    if stmt.tolerance_percent is not None:
        text += f" ± {stmt.tolerance_percent.value:g}%"
    elif stmt.tolerance is not None:
        text += f" ± {_source_text(stmt.tolerance.span) or fmt_value(entry.tolerance)}"
    return text


# ---------------------------------------------------------------------------------------------
# evaluating targets


def _strip_qualifier(target: Node, networks: set[str]) -> Node:
    """`resnet50.layer4.rf` → `layer4.rf` when `resnet50` is a network."""
    if isinstance(target, Attribute | Index):
        if isinstance(target.obj, Name) and target.obj.id in networks:
            return Name(target.span, target.name) if isinstance(target, Attribute) else target
        inner = _strip_qualifier(target.obj, networks)
        if inner is not target.obj:
            return Attribute(target.span, inner, target.name) if isinstance(target, Attribute) \
                else Index(target.span, inner, target.index)
    return target


def _path(node: Node) -> str | None:
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Name):
        return node.id
    if isinstance(node, Attribute):
        base = _path(node.obj)
        return f"{base}.{node.name}" if base is not None else None
    return None


class _Evaluator:
    def __init__(self, net: Any) -> None:
        self.net = net
        self.ir: IR = net.ir
        self.analysis: Analysis = net.analysis
        self.network_figures = network_figures()
        self.node_figures = node_figures()

    def quantity(self, name: str) -> Any:
        of_network = self.network_figures[name].of_network
        assert of_network is not None
        return of_network(self.ir, self.analysis)

    def nodes_of(self, node: Node) -> Target:
        """What X names: an output, a tensor variable, a node, or every node of a block (a shared
        instance's: of every application, its weights counted once)."""
        path = _path(node)
        if path is None:
            raise _TargetError("expected a node, block or output name here", node.span,
                               'write a name, or a path in quotes: rf("features.12")')
        for out in self.ir.outputs():
            if output_name(out) == path:
                return Target([out.inputs[0].node], out.inputs[0])
        value = self.net.variables.get(path)
        if isinstance(value, Tensor):
            return Target([value.port.node], value.port)
        applications = [n.name for n in self.ir.nodes("op") if n.name.startswith(path + "@")]
        if path in self.ir and self.ir.node(path).kind != "output":
            return Target([path, *applications], Port(path))
        inside = [n.name for n in self.ir.nodes("op") if n.name.startswith(path + ".")]
        if inside:
            return Target(inside + applications, Port(inside[-1]))
        names = [n.name for n in self.ir.nodes() if n.kind != "output"]
        names += [".".join(p) for p in self.ir.scopes]
        raise _TargetError(f"`{path}` is not an output, node or block of `{self.net.name}`", node.span,
                           did_you_mean(path, names) or "outputs, tensor variables, node and block paths work")

    def node_quantity(self, what: str, x: Node) -> Any:
        target = self.nodes_of(x)
        of_nodes = self.node_figures[what].of_nodes
        assert of_nodes is not None
        try:
            return of_nodes(self.ir, self.analysis, target)
        except FigureError as exc:
            raise _TargetError(str(exc), x.span) from None

    def eval(self, target: Node) -> Any:
        if isinstance(target, Name) and target.id in self.network_figures:
            if target.id in self.net.variables:  # which one the line checks would be a guess
                raise _TargetError(f"`{target.id}` is both a figure of the analysis and a variable of "
                                   f"`{self.net.name}`", target.span,
                                   "figure names are reserved in `expect` targets; rename the variable")
            return self.quantity(target.id)
        if isinstance(target, Attribute) and target.name in self.node_figures:
            return self.node_quantity(target.name, target.obj)
        if isinstance(target, Call) and target.func in self.node_figures and self.node_figures[target.func].call_form:
            if len(target.args) != 1 or target.args[0].name is not None:
                raise _TargetError(f"`{target.func}` takes one node, block or output", target.span)
            return self.node_quantity(target.func, target.args[0].value)
        # A count the spec computes: evaluate in the body's final environment.
        env = Env(dict(self.net.variables), self.net.spec.namespace, ())
        try:
            value = Evaluator(self.net.spec.limits).eval(target, env)
        except ArchError as exc:
            d = exc.diagnostics[0]
            raise _TargetError(d.message, d.span, d.hint or "targets: " + ", ".join(self.network_figures)
                               + ", X.shape, X.rf, or a variable of the network") from None
        if isinstance(value, Tensor):
            raise _TargetError("a tensor is not a number; compare its `.shape` or `.rf`", target.span)
        return value


# ---------------------------------------------------------------------------------------------
# comparing


def _compare(op: str, computed: Any, expected: Any, tol: float | None) -> bool:
    if isinstance(computed, list | tuple) or isinstance(expected, list | tuple):
        c = list(computed) if isinstance(computed, list | tuple) else [computed]
        e = list(expected) if isinstance(expected, list | tuple) else [expected]
        if len(c) == 1 and len(e) > 1:  # a square field, shown as one number
            c = c * len(e)
        if len(e) == 1 and len(c) > 1:
            e = e * len(c)
        return len(c) == len(e) and all(_compare(op, a, b, tol) for a, b in zip(c, e, strict=True))
    number = (int, float)
    if not (isinstance(computed, number) and isinstance(expected, number)) or isinstance(computed, bool):
        return op in ("==", "~=") and computed == expected
    # Exact rational arithmetic: near the largest float, `expected + slack` would round to inf.
    got, want, tolerance = Fraction(computed), Fraction(expected), Fraction(tol or 0)
    slack = tolerance + max(Fraction(1), abs(want)) / 10**9
    if op in ("==", "~="):
        return abs(got - want) <= slack
    return {"<=": got <= want + slack, ">=": got >= want - slack, "<": got < want + tolerance,
            ">": got > want - tolerance}[op]


def _deviation(computed: Any, expected: Any) -> str:
    if isinstance(computed, int | float) and isinstance(expected, int | float) \
            and not isinstance(computed, bool) and not isinstance(expected, bool):
        diff = Fraction(computed) - Fraction(expected)  # exact: a float difference may overflow
        if diff == 0:
            return "0"
        # Digit separators at every size, as the computed column has them (`+289,184,256`, never
        # `+2.89184e+08`); a fraction keeps six significant digits.
        text = f"{int(diff):+,}" if diff.denominator == 1 else _signed(diff, ",.0f" if abs(diff) >= 10**5 else ",.6g")
        if expected:
            percent = 100 * diff / abs(Fraction(expected))
            text += f" ({_signed(percent, ',.0f' if abs(percent) >= 1000 else '.3g', '%')})"
        return text
    return "—"


def _signed(x: Fraction, spec: str, unit: str = "") -> str:
    """`x` formatted as a float with its sign; beyond the float range, as the range's bound."""
    if abs(x) > FLOAT_MAX:
        return f"{'+' if x > 0 else '-'}{FLOAT_MAX:{spec}}{unit} or more"
    return f"{float(x):+{spec}}{unit}"


def check_entry(ev: _Evaluator | None, entry: ExpectEntry, networks: set[str],
                error: Diagnostic | None = None) -> Check:
    stmt = entry.stmt
    target = _strip_qualifier(stmt.target, networks)
    quantity = _source_text(stmt.target.span) or _path(target) or type(target).__name__
    unchecked = Check(network=entry.network, file=stmt.span.file, line=stmt.span.line, col=stmt.span.col,
                      quantity=quantity, op=stmt.op, expected=_expected_text(entry), computed="—", deviation="—",
                      source=stmt.source or "", ok=False)
    try:
        if ev is None:
            raise _TargetError(error.message if error else "the network did not elaborate", stmt.span)
        if stmt.op == "~=" and entry.tolerance is None:
            raise _TargetError("`~=` needs a tolerance", stmt.span, "write `~= 4.1G +- 2%` or `+- 1000`")
        computed = ev.eval(target)
        mixed = boolean_against_number(computed, entry.value)
        if mixed is not None:  # `false == 0` holds in Python: it must not pass (nor fail) by accident
            raise _TargetError(f"`{stmt.op}` between {describe(mixed[0])} and {describe(mixed[1])}: {quantity} is "
                               f"{fmt_value(computed)}, expected {stmt.op} {unchecked.expected}", stmt.span,
                               BOOLEAN_NUMBER_HINT, code="E0505")
    except _TargetError as exc:
        return replace(unchecked, diagnostic=exc.diagnostic)
    ok = _compare(stmt.op, computed, entry.value, entry.tolerance)
    shown = fmt_value(computed)
    diag = None
    if not ok:
        dev = _deviation(computed, entry.value)
        diag = Diagnostic(
            "E0801", f"expectation failed for `{entry.network}`: {quantity} is {shown}, expected {stmt.op} "
            f"{unchecked.expected}", stmt.span,
            f"computed {shown}" + (f" (deviation {dev})" if dev != "—" else "")
            + (f"; the expected value is from: {stmt.source}" if stmt.source else ""))
    return replace(unchecked, computed=shown, deviation=_deviation(computed, entry.value), ok=ok, diagnostic=diag)


def verify_network(spec: Any, name: str) -> list[Check]:
    """Every `expect` that applies to network `name` of `spec`."""
    networks = set(spec.namespace.networks)
    try:
        net = spec.network(name)
    except ArchError as exc:
        # The network does not elaborate: one failed check at its first error, carrying the others.
        d, *more = exc.diagnostics
        return [Check(network=name, file=d.span.file, line=d.span.line, col=d.span.col, quantity="(elaboration)",
                      op="", expected="", computed="—", deviation="—", source="", ok=False, diagnostic=d,
                      more=tuple(more))]
    ev = _Evaluator(net)
    return [check_entry(ev, e, networks) for e in net.expects]


def verify_spec(spec: Any, networks: list[str] | None = None) -> list[Check]:
    out: list[Check] = []
    for name in networks or spec.networks:
        out.extend(verify_network(spec, name))
    return out


__all__ = ["QUANTITIES", "Check", "check_entry", "verify_network", "verify_spec"]

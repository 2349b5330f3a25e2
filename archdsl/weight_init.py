"""The `init` statement: how a network's weights start, as its canonical implementation starts them.

``init conv: kaiming_normal(mode=fan_out, nonlinearity=relu)`` sets the weight of every convolution
in the body it is written in; ``init bn: weight=1, bias=0`` names the tensors; ``init conv as
classifier.1: normal(std=0.01), bias=0`` sets only the layers at (or under) a label. Schemes come
from a closed registry (:data:`SCHEMES`), each declared once here with its arguments and the
``torch.nn.init`` text the PyTorch backend writes for it; a bare number is ``constant(number)``.

A rule in a block applies to each of its instances and overrides the rules of the bodies around it
(torchvision's ``zero_init_residual`` zeroes a BN weight the network's rule set to 1); within one
body a later rule overrides an earlier one. Initialization changes no count: analysis never reads
the rules. This module imports nothing of torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .diagnostics import Diagnostic, Span, did_you_mean, error
from .ir import IR, IRNode
from .ops import all_ops, py_number
from .syntax import Arg, Call, InitStmt, Name, Node, Str

Word = str
ArgValue = float | int | Word


@dataclass(frozen=True)
class SchemeParam:
    name: str
    default: ArgValue | None  # None: required
    words: tuple[Word, ...] = ()  # a word argument (`mode=fan_out`): the words it takes; else a number


@dataclass(frozen=True)
class SchemeDef:
    """One scheme of the registry: its arguments, what it does, and its torch text."""

    name: str
    params: tuple[SchemeParam, ...]
    doc: str
    # The statements setting tensor `t` (an expression), given every argument (defaults filled) and
    # the arguments the spec wrote (in declaration order): torch's own spelling, written as given.
    torch: Callable[[str, dict[str, ArgValue], list[tuple[str, ArgValue]]], list[str]]


def _lit(v: ArgValue) -> str:
    return f'"{v}"' if isinstance(v, str) else py_number(v)  # words come from a closed set of identifiers


def _call(fn: str, t: str, given: list[tuple[str, ArgValue]], positional: bool = False) -> list[str]:
    args = [_lit(v) if positional else f"{k}={_lit(v)}" for k, v in given]
    return [f"nn.init.{fn}({', '.join([t, *args])})"]


def _plain(fn: str) -> Callable[[str, dict[str, ArgValue], list[tuple[str, ArgValue]]], list[str]]:
    return lambda t, _all, given: _call(fn, t, given)


# TensorFlow's truncated normal cuts at two standard deviations, which leaves it this much narrower:
# the standard deviation of a unit normal truncated to [-2, 2] (tf.keras VarianceScaling).
TRUNCATED_STD = 0.87962566103423978


def _variance_scaling(t: str, a: dict[str, ArgValue], _given: list[tuple[str, ArgValue]]) -> list[str]:
    """TensorFlow's VarianceScaling: variance scale / fan, the fans as torch counts them (a conv's
    receptive field times its input, resp. output, channels)."""
    fan_in, fan_out = f"{t}[0].numel()", f"{t}.size(0) * {t}[0][0].numel()"
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": f"({fan_in} + {fan_out}) / 2"}[str(a["mode"])]
    scale = _lit(a["scale"])
    if a["distribution"] == "uniform":
        return [f"bound = math.sqrt(3 * {scale} / ({fan}))", f"nn.init.uniform_({t}, -bound, bound)"]
    if a["distribution"] == "normal":
        return [f"nn.init.normal_({t}, std=math.sqrt({scale} / ({fan})))"]
    return [f"std = math.sqrt({scale} / ({fan})) / {TRUNCATED_STD!r}",
            f"nn.init.trunc_normal_({t}, std=std, a=-2 * std, b=2 * std)"]


_GAIN_WORDS = ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_KAIMING = (SchemeParam("a", 0), SchemeParam("mode", "fan_in", ("fan_in", "fan_out")),
            SchemeParam("nonlinearity", "leaky_relu", _GAIN_WORDS))

_TRUNC = (SchemeParam("mean", 0), SchemeParam("std", 1), SchemeParam("a", -2), SchemeParam("b", 2))
_SCALING = (SchemeParam("scale", 1.0), SchemeParam("mode", "fan_in", ("fan_in", "fan_out", "fan_avg")),
            SchemeParam("distribution", "truncated_normal", ("truncated_normal", "normal", "uniform")))

SCHEMES: dict[str, SchemeDef] = {s.name: s for s in (
    SchemeDef("kaiming_normal", _KAIMING, "He et al. 2015: normal, std gain/sqrt(fan) (torch's kaiming_normal_)",
              _plain("kaiming_normal_")),
    SchemeDef("kaiming_uniform", _KAIMING, "He et al. 2015: uniform, bound gain*sqrt(3/fan)",
              _plain("kaiming_uniform_")),
    SchemeDef("xavier_normal", (SchemeParam("gain", 1),),
              "Glorot and Bengio 2010: normal, std gain*sqrt(2/(fan_in+fan_out))", _plain("xavier_normal_")),
    SchemeDef("xavier_uniform", (SchemeParam("gain", 1),),
              "Glorot and Bengio 2010: uniform, bound gain*sqrt(6/(fan_in+fan_out))", _plain("xavier_uniform_")),
    SchemeDef("normal", (SchemeParam("mean", 0), SchemeParam("std", 1)), "normal(mean, std)", _plain("normal_")),
    SchemeDef("uniform", (SchemeParam("a", 0), SchemeParam("b", 1)), "uniform on [a, b]", _plain("uniform_")),
    SchemeDef("trunc_normal", _TRUNC, "normal(mean, std) redrawn outside [a, b] (absolute bounds, as torch's)",
              _plain("trunc_normal_")),
    SchemeDef("constant", (SchemeParam("value", None),), "every element `value` (a bare number means the same)",
              lambda t, _a, given: _call("constant_", t, given, positional=True)),
    SchemeDef("zeros", (), "every element 0", _plain("zeros_")),
    SchemeDef("ones", (), "every element 1", _plain("ones_")),
    SchemeDef("variance_scaling", _SCALING,
              "TensorFlow's VarianceScaling: variance scale/fan (uniform: bound sqrt(3*scale/fan))", _variance_scaling),
)}


@dataclass(frozen=True)
class Scheme:
    """A validated scheme: its name and the arguments the spec gave, in declaration order."""

    name: str
    given: tuple[tuple[str, ArgValue], ...] = ()

    def arguments(self) -> dict[str, ArgValue]:
        """Every argument, defaults filled."""
        out: dict[str, ArgValue] = {}
        for p in SCHEMES[self.name].params:
            if p.default is not None:
                out[p.name] = p.default
        out.update(self.given)
        return out

    def torch_lines(self, tensor: str) -> list[str]:
        """The statements that initialize `tensor` (a Python expression) this way."""
        return SCHEMES[self.name].torch(tensor, self.arguments(), list(self.given))

    def text(self) -> str:
        """The scheme as a spec writes it: `kaiming_normal(mode=fan_out)`."""
        if not self.given:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.given)})"


@dataclass(frozen=True)
class InitRule:
    """One target of an executed `init` statement: the layers of `kind` in the body's `scope` (under
    its `label` there, if given), and the scheme of each tensor. `nodes` is filled by :func:`resolve`."""

    kind: str
    scope: tuple[str, ...]  # the path of the body the statement ran in
    label: tuple[str, ...] | None
    instance: tuple[str, ...]  # the block instance it ran in (() for the network)
    block: str | None  # that instance's block definition
    depth: int  # how many block instances enclose it (a deeper rule overrides)
    schemes: tuple[tuple[str, Scheme, Span], ...]
    span: Span
    nodes: tuple[str, ...] = field(default=())

    @property
    def prefix(self) -> tuple[str, ...]:
        """The path the rule sets layers under, as the parts of a node name (a scope part may hold a dot)."""
        return _split((*self.scope, *(self.label or ())))


def _split(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for comp in path for p in comp.split("."))


def init_kinds() -> dict[str, list[str]]:
    """Each kind an `init` statement names → the ops that answer to it."""
    kinds: dict[str, list[str]] = {}
    for op in all_ops():
        if op.init_kind is not None:
            kinds.setdefault(op.init_kind, []).append(op.name)
    return kinds


def check_target(kind: str, span: Span) -> None:
    """A target's kind must be one that an `init` statement sets (E0540)."""
    kinds = init_kinds()
    if kind in kinds:
        return
    from .ops import get_op, has_op

    if has_op(kind) and get_op(kind).init_kind is None:
        hint = f"`{kind}` has no weights that `init` sets; it sets: {', '.join(sorted(kinds))}"
    else:
        hint = did_you_mean(kind, list(kinds)) or f"`init` sets: {', '.join(sorted(kinds))}"
    if has_op(kind) and get_op(kind).init_kind is not None:  # an alias (`batchnorm`, `fc`) or a spelling of conv
        hint = f"`{kind}` layers are set by `init {get_op(kind).init_kind}`"
    raise error("E0540", f"`init` cannot set `{kind}`", span, hint)


def read_scheme(arg: Arg, evaluate: Callable[[Node], object]) -> Scheme:
    """One argument of an `init` statement as a scheme: `name(args)`, a bare scheme name, or a number
    (a constant). `evaluate` gives the value of an expression in the statement's body."""
    node = arg.value
    if isinstance(node, Name) and node.id in SCHEMES:
        node = Call(node.span, node.id, node.span, ())
    if isinstance(node, Call) and node.func in SCHEMES:
        return Scheme(node.func, _scheme_args(SCHEMES[node.func], node, evaluate))
    if isinstance(node, Call):
        raise error("E0541", f"unknown initialization scheme `{node.func}`", node.func_span,
                    did_you_mean(node.func, list(SCHEMES)) or f"schemes: {', '.join(SCHEMES)}")
    value = evaluate(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = (did_you_mean(node.id, list(SCHEMES)) if isinstance(node, Name) else None) \
            or f"write a scheme (`normal(std=0.01)`) or a number; schemes: {', '.join(SCHEMES)}"
        raise error("E0541", "an initialization is a scheme or a number", node.span, hint)
    return Scheme("constant", (("value", value),))


def _scheme_args(scheme: SchemeDef, call: Call, evaluate: Callable[[Node], object]) -> tuple[tuple[str, ArgValue], ...]:
    names = [p.name for p in scheme.params]
    given: dict[str, ArgValue] = {}
    usage = f"{scheme.name}({', '.join(names)})" if names else f"`{scheme.name}` takes no arguments"
    for k, arg in enumerate(call.args):
        if arg.name is None:
            if any(a.name is not None for a in call.args[:k]):
                raise error("E0542", "a positional argument after a named one", arg.span, f"usage: {usage}")
            if k >= len(names):
                raise error("E0542", f"too many arguments for `{scheme.name}`", arg.span, f"usage: {usage}")
            name = names[k]
        else:
            name = arg.name
            if name not in names:
                raise error("E0542", f"`{scheme.name}` has no argument `{name}`", arg.span,
                            did_you_mean(name, names) or f"usage: {usage}")
        if name in given:
            raise error("E0542", f"`{name}` is given twice", arg.span, f"usage: {usage}")
        param = scheme.params[names.index(name)]
        given[name] = _argument(scheme, param, arg.value, evaluate)
    for p in scheme.params:
        if p.default is None and p.name not in given:
            raise error("E0542", f"`{scheme.name}` needs `{p.name}`", call.span, f"usage: {usage}")
    return tuple((n, given[n]) for n in names if n in given)


def _argument(scheme: SchemeDef, param: SchemeParam, node: Node, evaluate: Callable[[Node], object]) -> ArgValue:
    if param.words:
        word = node.id if isinstance(node, Name) else node.value if isinstance(node, Str) else None
        if word not in param.words:
            raise error("E0542", f"`{param.name}` of `{scheme.name}` is one of: {', '.join(param.words)}", node.span,
                        (did_you_mean(word, param.words) if word else None) or f"write `{param.name}={param.words[0]}`")
        return word
    value = evaluate(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error("E0542", f"`{param.name}` of `{scheme.name}` is a number", node.span,
                    f"write `{param.name}={param.default if param.default is not None else 0}`")
    return value


def read_tensors(stmt: InitStmt, evaluate: Callable[[Node], object]) -> tuple[tuple[str, Scheme, Span], ...]:
    """The statement's arguments: the weight's scheme (unnamed) and each named tensor's."""
    out: dict[str, tuple[str, Scheme, Span]] = {}
    for arg in stmt.args:
        tensor = arg.name or "weight"
        if tensor in out:
            raise error("E0544", f"the `{tensor}` is initialized twice in one statement", arg.span,
                        "give each tensor one scheme (an unnamed one is the weight's)")
        out[tensor] = (tensor, read_scheme(arg, evaluate), arg.span)
    return tuple(out.values())


def _under(name: str, prefix: tuple[str, ...]) -> bool:
    parts = name.split(".")
    return tuple(parts[:len(prefix)]) == prefix


def resolve(ir: IR, rules: list[InitRule]) -> tuple[list[InitRule], list[Diagnostic]]:
    """Each rule with the layers it sets, in the order they apply (outer bodies first); and the
    problems: a target that matches no layer of its kind, a tensor no matched layer has."""
    problems: list[Diagnostic] = []
    ordered = sorted(rules, key=lambda r: r.depth)  # stable: within a depth, the order they ran
    layers = [n for n in ir.nodes("op") if n.op_class.init_kind is not None]
    out: list[InitRule] = []
    reported: set[tuple[Span, str]] = set()

    def problem(d: Diagnostic) -> None:
        if (d.span, d.message) not in reported:
            reported.add((d.span, d.message))
            problems.append(d)

    for rule in ordered:
        matched = [n for n in layers if n.op_class.init_kind == rule.kind and _under(n.name, rule.prefix)]
        if not matched:
            problem(_no_match(ir, rule))
            continue
        own = [n for n in matched if n.shares is None]  # a shared instance's later application has no weights
        for tensor, _scheme, span in rule.schemes:
            if own and not any(tensor in _tensors(n) for n in own):
                names = sorted({t for n in own for t in _tensors(n)})
                where = f"the {rule.kind} layers here" if rule.label is None else f"`{'.'.join(rule.label)}`"
                problem(Diagnostic("E0544", f"{where} have no `{tensor}`", span,
                                   did_you_mean(tensor, names) or f"they have: {', '.join(names) or 'no parameters'}"
                                   + (" (a bias only with bias=true)" if tensor == "bias" else "")))
        out.append(_with_nodes(rule, tuple(n.name for n in own)))
    return out, problems


def _with_nodes(rule: InitRule, nodes: tuple[str, ...]) -> InitRule:
    return replace(rule, nodes=nodes)


def _tensors(node: IRNode) -> tuple[str, ...]:
    return node.op_class.init_parameters(node.attrs)


def _no_match(ir: IR, rule: InitRule) -> Diagnostic:
    if rule.label is None:
        return Diagnostic("E0543", f"no {rule.kind} layer here to initialize", rule.span,
                          "an `init` statement sets layers of the body it is written in, and those its blocks build")
    label = ".".join(rule.label)
    there = [n for n in ir.nodes("op") if _under(n.name, rule.prefix)]
    if there:
        ops = sorted({n.op or "" for n in there})
        return Diagnostic("E0543", f"`{label}` holds no {rule.kind} layer", rule.span, f"it holds: {', '.join(ops)}")
    base, size = len(_split(rule.scope)), len(rule.label)
    names = sorted({".".join(n.name.split(".")[base:base + size])
                    for n in ir.nodes("op") if _under(n.name, _split(rule.scope))})
    return Diagnostic("E0543", f"no layer is labelled `{label}` here", rule.span,
                      did_you_mean(label, names) or "a label is read in the body the statement is written in")


__all__ = ["SCHEMES", "InitRule", "Scheme", "SchemeDef", "SchemeParam", "check_target", "init_kinds", "read_scheme",
           "read_tensors", "resolve"]

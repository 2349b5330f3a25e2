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

import math
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from .diagnostics import Span, did_you_mean, error
from .ops import all_ops, py_number
from .ops.attr_schema import FLOAT32_MAX, INT64_MAX, INT64_MIN
from .syntax import Arg, Call, InitStmt, Name, Node, Str

Word = str
ArgValue = float | int | Word


@dataclass(frozen=True)
class SchemeParam:
    name: str
    default: ArgValue | None  # None: required
    words: tuple[Word, ...] = ()  # a word argument (`mode=fan_out`): the words it takes; else a number
    # The least number torch takes (a standard deviation: 0), `least` itself excluded where `strict`
    # (trunc_normal divides by its standard deviation): checked here, not where the module is built.
    least: float | None = None
    strict: bool = False
    most: float | None = None  # the largest number torch takes (see xavier_uniform's gain)


@dataclass(frozen=True)
class SchemeDef:
    """One scheme of the registry: its arguments, what it does, and its torch text."""

    name: str
    params: tuple[SchemeParam, ...]
    doc: str
    # The statements setting tensor `t` (an expression) of module `m` (another), given every argument
    # (defaults filled) and the arguments the spec wrote (in declaration order): torch's own
    # spelling, written as given.
    torch: Callable[[str, str, dict[str, ArgValue], list[tuple[str, ArgValue]]], list[str]]
    bounds: tuple[str, str] | None = None  # two arguments, the first at most the second (uniform's a, b)
    widest: float | None = None  # how far apart torch lets the bounds be (uniform_: to - from, a float32)
    fans: bool = False  # reads the tensor's fan-in or fan-out: needs one of two or more dimensions


def _lit(v: ArgValue) -> str:
    return f'"{v}"' if isinstance(v, str) else py_number(v)  # words come from a closed set of identifiers


def _call(fn: str, t: str, given: list[tuple[str, ArgValue]], positional: bool = False) -> list[str]:
    args = [_lit(v) if positional else f"{k}={_lit(v)}" for k, v in given]
    return [f"nn.init.{fn}({', '.join([t, *args])})"]


def _plain(fn: str) -> Callable[[str, str, dict[str, ArgValue], list[tuple[str, ArgValue]]], list[str]]:
    return lambda t, _m, _all, given: _call(fn, t, given)


# TensorFlow's truncated normal cuts at two standard deviations, which leaves it this much narrower:
# the standard deviation of a unit normal truncated to [-2, 2] (tf.keras VarianceScaling).
TRUNCATED_STD = 0.87962566103423978


def _variance_scaling(t: str, m: str, a: dict[str, ArgValue], _given: list[tuple[str, ArgValue]]) -> list[str]:
    """TensorFlow's VarianceScaling: variance scale / fan, the fans as torch counts them (a conv's
    receptive field times its input, resp. output, channels); `fan_out_per_group`: one group's
    output channels (timm's `fix_group_fanout`, TensorFlow's fan-out of a depthwise kernel);
    `fan_avg_per_group`: the mean of the fan-in and that fan-out (effdet's `_glorot_uniform(w, groups=…)`)."""
    named: list[str] = []
    if not m.isidentifier():  # a layer's long path, written once (the fans read it up to four times)
        named, t, m = [f"layer = {m}"], "layer" + t[len(m):], "layer"
    fan_in, fan_out = f"{t}[0].numel()", f"{t}.size(0) * {t}[0][0].numel()"
    group_fan_out = f"{t}.size(0) // {m}.groups * {t}[0][0].numel()"
    mode = str(a["mode"])
    if mode.startswith("fan_avg"):  # the two fans apart: one expression of both overflows a line
        named += [f"fan_in = {fan_in}", f"fan_out = {group_fan_out if mode.endswith('_per_group') else fan_out}"]
        fan = "(fan_in + fan_out) / 2"
    else:
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_out_per_group": group_fan_out}[mode]
    scale = _lit(a["scale"])
    if a["distribution"] == "uniform":  # variance bound²/3
        return [*named, f"bound = math.sqrt({_lit(3 * float(a['scale']))} / ({fan}))",
                f"nn.init.uniform_({t}, -bound, bound)"]
    if a["distribution"] == "normal":
        return [*named, f"nn.init.normal_({t}, std=math.sqrt({scale} / ({fan})))"]
    return [*named, f"std = math.sqrt({scale} / ({fan})) / {TRUNCATED_STD!r}",
            f"nn.init.trunc_normal_({t}, std=std, a=-2 * std, b=2 * std)"]


def _bilinear(t: str, _m: str, _a: dict[str, ArgValue], _given: list[tuple[str, ArgValue]]) -> list[str]:
    """Caffe's bilinear upsampling kernel (fcn.berkeleyvision.org surgery.upsample_filt: 1 − |x −
    center| / factor along each axis, factor ⌈k/2⌉, center (k − 1)/2) from each channel to itself."""
    return ["with torch.no_grad():",
            "\tkernel_h, kernel_w = (",
            "\t\t1 - (torch.arange(n, dtype=torch.float64) - (n - 1) / 2).abs() / ((n + 1) // 2)",
            f"\t\tfor n in {t}.shape[-2:]",
            "\t)",
            f"\t{t}.zero_()",
            f"\tfor channel in range(min({t}.size(0), {t}.size(1))):",
            f"\t\t{t}[channel, channel] = kernel_h[:, None] * kernel_w[None, :]"]


_GAIN_WORDS = ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_KAIMING = (SchemeParam("a", 0), SchemeParam("mode", "fan_in", ("fan_in", "fan_out")),
            SchemeParam("nonlinearity", "leaky_relu", _GAIN_WORDS))

_TRUNC = (SchemeParam("mean", 0), SchemeParam("std", 1, least=0, strict=True),
          SchemeParam("a", -2), SchemeParam("b", 2))
_SCALING = (SchemeParam("scale", 1.0, least=0, strict=True),
            SchemeParam("mode", "fan_in", ("fan_in", "fan_out", "fan_avg", "fan_out_per_group", "fan_avg_per_group")),
            SchemeParam("distribution", "truncated_normal", ("truncated_normal", "normal", "uniform")))

SCHEMES: dict[str, SchemeDef] = {s.name: s for s in (
    SchemeDef("kaiming_normal", _KAIMING, "He et al. 2015: normal, std gain/sqrt(fan) (torch's kaiming_normal_)",
              _plain("kaiming_normal_"), fans=True),
    SchemeDef("kaiming_uniform", _KAIMING, "He et al. 2015: uniform, bound gain*sqrt(3/fan)",
              _plain("kaiming_uniform_"), fans=True),
    # A negative gain is a negative standard deviation (normal_ refuses it), resp. bounds the wrong
    # way round (uniform_ refuses them).
    SchemeDef("xavier_normal", (SchemeParam("gain", 1, least=0),),
              "Glorot and Bengio 2010: normal, std gain*sqrt(2/(fan_in+fan_out))", _plain("xavier_normal_"), fans=True),
    # uniform_(-bound, bound) takes a range of at most FLOAT32_MAX, and the bound is largest on a 1×1
    # layer of one channel in and out: gain * sqrt(6 / 2).
    SchemeDef("xavier_uniform", (SchemeParam("gain", 1, least=0, most=FLOAT32_MAX / 2 / math.sqrt(3)),),
              "Glorot and Bengio 2010: uniform, bound gain*sqrt(6/(fan_in+fan_out))", _plain("xavier_uniform_"),
              fans=True),
    SchemeDef("normal", (SchemeParam("mean", 0), SchemeParam("std", 1, least=0)), "normal(mean, std)",
              _plain("normal_")),
    SchemeDef("uniform", (SchemeParam("a", 0), SchemeParam("b", 1)), "uniform on [a, b]", _plain("uniform_"),
              bounds=("a", "b"), widest=FLOAT32_MAX),
    SchemeDef("trunc_normal", _TRUNC, "normal(mean, std) redrawn outside [a, b] (absolute bounds, as torch's)",
              _plain("trunc_normal_"), bounds=("a", "b")),
    SchemeDef("constant", (SchemeParam("value", None),), "every element `value` (a bare number means the same)",
              lambda t, _m, _a, given: _call("constant_", t, given, positional=True)),
    SchemeDef("zeros", (), "every element 0", _plain("zeros_")),
    SchemeDef("ones", (), "every element 1", _plain("ones_")),
    SchemeDef("variance_scaling", _SCALING,
              "TensorFlow's VarianceScaling: variance scale/fan (uniform: bound sqrt(3*scale/fan))", _variance_scaling,
              fans=True),
    SchemeDef("bilinear", (), "a (transposed) convolution's kernels set to bilinear interpolation from each channel to "
              "itself, zero across channels (FCN's upsampling layers, Caffe's surgery.interp)", _bilinear, fans=True),
)}


@dataclass(frozen=True)
class Scheme:
    """A validated scheme: its name and the arguments the spec gave, in declaration order."""

    name: str
    given: tuple[tuple[str, ArgValue], ...] = ()
    # The expressions the spec wrote for the given arguments, by name (`std=1 / (in.channels // g)`):
    # what a generated class computes an argument from where its instances differ in it.
    written: tuple[tuple[str, Node], ...] = field(default=(), compare=False, repr=False)

    def arguments(self) -> dict[str, ArgValue]:
        """Every argument, defaults filled."""
        out: dict[str, ArgValue] = {}
        for p in SCHEMES[self.name].params:
            if p.default is not None:
                out[p.name] = p.default
        out.update(self.given)
        return out

    def torch_lines(self, module: str, tensor: str) -> list[str]:
        """The statements that initialize `tensor` of `module` (a Python expression) this way."""
        return SCHEMES[self.name].torch(f"{module}.{tensor}", module, self.arguments(), list(self.given))

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
    span: Span  # the target's
    statement: Span
    nodes: tuple[str, ...] = field(default=())

    @property
    def prefix(self) -> tuple[str, ...]:
        """The path the rule sets layers under, as the parts of a node name (a scope part may hold a dot)."""
        return split_path((*self.scope, *(self.label or ())))


def split_path(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for comp in path for p in comp.split("."))


def init_kinds() -> dict[str, list[str]]:
    """Each kind an `init` statement names → the ops that answer to it."""
    kinds: dict[str, list[str]] = {}
    for op in all_ops():
        if op.init_kind is not None:
            kinds.setdefault(op.init_kind, []).append(op.name)
    return kinds


GROUPED_KINDS = ("conv", "deconv")  # layers whose torch module has `groups`


def _check_schemes_fit(kind: str, matrices: set[str], tensors: tuple[tuple[str, Scheme, Span], ...]) -> None:
    """Each scheme can set its tensor of a `kind` layer (`matrices`: its tensors of two or more
    dimensions), where torch would refuse it when the module is built (E0542)."""
    for tensor, scheme, at in tensors:
        if scheme.name == "bilinear" and kind not in GROUPED_KINDS:
            raise error("E0542", f"a {kind} layer has no kernel to interpolate with", at,
                        "`bilinear` sets the kernels of conv and deconv layers")
        mode = str(scheme.arguments().get("mode", ""))
        if mode.endswith("_per_group") and kind not in GROUPED_KINDS:
            plain = mode.removesuffix("_per_group")
            raise error("E0542", f"a {kind} layer has no groups to divide its fan-out by", at,
                        f"write `mode={plain}`; `{mode}` is for convolutions")
        if SCHEMES[scheme.name].fans and tensor not in matrices:  # torch: "Fan in and fan out can not be computed"
            raise error("E0542", f"`{scheme.name}` reads a fan, and a {kind} layer's `{tensor}` has one dimension",
                        at, "a scheme without fans sets it: a number, `normal(std=0.01)`, `uniform(a=-1, b=1)`")


def check_target(kind: str, span: Span, tensors: tuple[tuple[str, Scheme, Span], ...]) -> str:
    """The kind a target names (an op's alias names its op's: `init batchnorm` is `init bn`): one that
    an `init` statement sets (E0540), with the tensors the statement names (E0544)."""
    from .ops import get_op, has_op

    kinds = init_kinds()
    op = get_op(kind) if has_op(kind) else None
    if kind not in kinds and op is not None and op.init_kind is not None and op.init_kind == op.name:
        kind = op.name  # an alias of the op the kind is named after
    if kind in kinds:
        known = sorted({t for name in kinds[kind] for t in get_op(name).init_tensors})
        for tensor, _scheme, at in tensors:
            if tensor not in known:
                raise error("E0544", f"a {kind} layer has no `{tensor}`", at,
                            did_you_mean(tensor, known) or f"its tensors: {', '.join(known)}")
        _check_schemes_fit(kind, {t for name in kinds[kind] for t in get_op(name).init_matrices}, tensors)
        return kind
    if op is not None and op.init_kind is not None:  # dwconv, pwconv: convolutions like any other
        hint = f"`{kind}` layers are {op.init_kind} layers: `init {op.init_kind}` sets them, `as LABEL` picks some"
    elif op is not None:
        hint = f"`{kind}` has no weights that `init` sets; it sets: {', '.join(sorted(kinds))}"
    else:
        hint = did_you_mean(kind, list(kinds)) or f"`init` sets: {', '.join(sorted(kinds))}"
    raise error("E0540", f"`init` cannot set `{kind}`", span, hint)


def read_scheme(arg: Arg, evaluate: Callable[[Node], object], functions: Container[str]) -> Scheme:
    """One argument of an `init` statement as a scheme: `name(args)`, a bare scheme name, or a number
    (a constant: any expression, `-log((1 - 0.01) / 0.01)`, `sqrt(2 / 4096)`). `evaluate` gives the
    value of an expression in the statement's body, `functions` names the language's functions
    (given by the caller: the evaluator's table sits above this module)."""
    node = arg.value
    if isinstance(node, Name) and node.id in SCHEMES:
        node = Call(node.span, node.id, node.span, ())
    if isinstance(node, Call) and node.func in SCHEMES:
        given = _scheme_args(SCHEMES[node.func], node, evaluate)
        names = [p.name for p in SCHEMES[node.func].params]
        written = tuple((a.name or names[k], a.value) for k, a in enumerate(node.args))
        return Scheme(node.func, given, tuple(sorted(written, key=lambda w: names.index(w[0]))))
    if isinstance(node, Call) and node.func not in functions:  # `sqrt(2 / 4096)` is a number
        raise error("E0541", f"unknown initialization scheme `{node.func}`", node.func_span,
                    did_you_mean(node.func, list(SCHEMES)) or f"schemes: {', '.join(SCHEMES)}")
    value = evaluate(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = (did_you_mean(node.id, list(SCHEMES)) if isinstance(node, Name) else None) \
            or f"write a scheme (`normal(std=0.01)`) or a number; schemes: {', '.join(SCHEMES)}"
        raise error("E0541", "an initialization is a scheme or a number", node.span, hint)
    _check_torch_number("the constant", value, node.span)
    return Scheme("constant", (("value", value),), (("value", node),))


def _scheme_args(scheme: SchemeDef, call: Call, evaluate: Callable[[Node], object]) -> tuple[tuple[str, ArgValue], ...]:
    names = [p.name for p in scheme.params]
    given: dict[str, ArgValue] = {}
    spans: dict[str, Span] = {}
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
        spans[name] = arg.value.span
    for p in scheme.params:
        if p.default is None and p.name not in given:
            raise error("E0542", f"`{scheme.name}` needs `{p.name}`", call.span, f"usage: {usage}")
    _check_bounds(scheme, given, spans, call.span)
    return tuple((n, given[n]) for n in names if n in given)


def _check_bounds(scheme: SchemeDef, given: dict[str, ArgValue], spans: dict[str, Span], span: Span) -> None:
    """A scheme's lower bound is at most its upper one, each as given or by default (torch's
    uniform_ refuses `from > to`)."""
    if scheme.bounds is None:
        return
    lo, hi = scheme.bounds
    low, high = (given.get(n, next(p.default for p in scheme.params if p.name == n)) for n in scheme.bounds)
    if not (isinstance(low, int | float) and isinstance(high, int | float)):
        return
    if low > high:
        raise error("E0542", f"`{scheme.name}`'s {lo} = {py_number(low)} is above its {hi} = {py_number(high)}",
                    spans.get(hi, spans.get(lo, span)), f"{lo} is the lower bound: {lo} <= {hi}")
    if scheme.widest is not None and high - low > scheme.widest:
        raise error("E0542", f"`{scheme.name}`'s {lo} = {_shown(low)} and {hi} = {_shown(high)} are more than "
                    f"{py_number(scheme.widest)} apart, the widest range torch draws from",
                    spans.get(hi, spans.get(lo, span)), f"narrow it: {hi} - {lo} <= {py_number(scheme.widest)}")


def _shown(value: float) -> str:
    """A number as a message shows it: an integer of more than 24 digits in floating point."""
    return f"{float(value):.17g}" if isinstance(value, int) and len(str(abs(value))) > 24 else py_number(value)


# PyTorch builds a module's tensors as float32 and reads an integer argument as a 64-bit one: a
# number beyond either sets no tensor (`constant_`: "value cannot be converted to type float without
# overflow", "int too big to convert"; `uniform_`: "from is out of bounds"; `kaiming_normal_`'s gain
# overflows), so it is refused where the spec writes it, as an op's attribute beyond 64 bits is.
def _check_torch_number(what: str, value: float, span: Span) -> None:
    """`value`, the number `what` (`std` of `normal`, the constant) is, is one PyTorch sets a tensor with."""
    within = f"write a value from {py_number(-FLOAT32_MAX)} to {py_number(FLOAT32_MAX)}, float32's range"
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        hint = f"write it as a float: `{py_number(float(value))}`" if abs(value) <= FLOAT32_MAX else within
        raise error("E0542", f"{what} is {_shown(value)}, beyond PyTorch's 64-bit integers (-2**63 to 2**63 - 1)",
                    span, hint)
    if abs(value) > FLOAT32_MAX:
        raise error("E0542", f"{what} is {_shown(value)}, beyond float32, the type of the tensors `init` sets",
                    span, within)


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
    _check_torch_number(f"`{param.name}` of `{scheme.name}`", value, node.span)
    if param.most is not None and value > param.most:
        raise error("E0542", f"`{param.name}` of `{scheme.name}` is {_shown(value)}; it must be at most "
                    f"{py_number(param.most)}", node.span,
                    f"write `{param.name}={param.default}` or another value at most {py_number(param.most)}")
    if param.least is not None and (value < param.least or (param.strict and value == param.least)):
        bound = f"{'above' if param.strict else 'at least'} {py_number(param.least)}"
        raise error("E0542", f"`{param.name}` of `{scheme.name}` is {py_number(value)}; it must be {bound}",
                    node.span, f"write `{param.name}={param.default}` or another value {bound}")
    return value


def read_tensors(stmt: InitStmt, evaluate: Callable[[Node], object],
                 functions: Container[str]) -> tuple[tuple[str, Scheme, Span], ...]:
    """The statement's arguments: the weight's scheme (unnamed) and each named tensor's (see
    :func:`read_scheme`)."""
    out: dict[str, tuple[str, Scheme, Span]] = {}
    for arg in stmt.args:
        tensor = arg.name or "weight"
        if tensor in out:
            raise error("E0544", f"the `{tensor}` is initialized twice in one statement", arg.span,
                        "give each tensor one scheme (an unnamed one is the weight's)")
        out[tensor] = (tensor, read_scheme(arg, evaluate, functions), arg.span)
    return tuple(out.values())


__all__ = ["SCHEMES", "InitRule", "Scheme", "SchemeDef", "SchemeParam", "check_target", "init_kinds", "read_scheme",
           "read_tensors"]

"""The public Python API: load a spec, pick a network, override it, analyze it.

>>> import archdsl
>>> spec = archdsl.load_string('''
... network tiny(width=8) {
...     input image: 3x32x32
...     image -> conv(width, 3) -> relu -> avgpool(global) -> flatten -> linear(10) -> output logits
... }''')
>>> report = spec.network("tiny", params={"width": 16}).analyze()
>>> report.params, report.outputs["logits"]
(618, [10])
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archdsl.compiler.passes import Analysis, Pass, node_figures, passes

from .diagnostics import SOURCES, ArchError, Diagnostic, Span, did_you_mean, error, render_svg
from .elaborate import Elaborated, Elaborator, ExpectEntry
from .evaluate import Env, Evaluator
from .ir import IR, Port
from .limits import LIMITS, Limits
from .loader import Definitions, Loader, find_in_zoo, zoo_network_names
from .namecheck import check_names
from .network import NetworkInfo
from .ops import Shape
from .parser import parse
from .report import REQUIRED, LayerReportFields, ReportFields, declared_fields, report_json
from .syntax import Assign, BlockDef, NetworkDef, VariantDef
from .values import jsonable

if TYPE_CHECKING:  # at run time, `__getattr__` below
    from .report_models import BlockReport as BlockReport
    from .report_models import Field as Field
    from .report_models import FieldReport as FieldReport
    from .report_models import LayerReport as LayerReport
    from .report_models import MemoryFigure as MemoryFigure
    from .report_models import Report as Report

# ---------------------------------------------------------------------------------------------
# Reports: the pydantic models (archdsl.report_models) are imported on first use — of a report
# object, or of their names here — so that `analyze --json`, which streams its JSON from the plain
# declaration of the fields (archdsl.report), never imports pydantic.

_REPORT_MODELS = frozenset({"BlockReport", "Field", "FieldReport", "LayerReport", "MemoryFigure", "Report"})


def __getattr__(name: str) -> Any:
    if name in _REPORT_MODELS:
        from . import report_models

        return getattr(report_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------


@dataclass
class Network:
    """One elaborated network: its IR, resolved parameters and `expect` lines."""

    name: str
    spec: Spec
    ir: IR
    parameters: dict[str, Any]
    expects: list[ExpectEntry]
    family: str
    variables: dict[str, Any] = field(default_factory=dict, repr=False)  # the body's final environment
    defaulted: frozenset[str] = frozenset()  # the parameters that took their definition's default
    _report: Report | None = field(default=None, repr=False)
    _analysis: Analysis | None = field(default=None, repr=False)
    _sizes: tuple[str | None] | None = field(default=None, repr=False)

    def input_sizes(self) -> str | None:
        """Which input sizes the generated module serves (for its docstring): tried by elaborating
        the network again at other sizes (see archdsl.sizes); computed once."""
        if self._sizes is None:
            from .sizes import size_statement  # the code generator: not on the analysis path

            values = dict(self.parameters)
            self._sizes = (size_statement(self.ir, lambda shape: self.spec.elaborate(self.name, values, shape).ir),)
        return self._sizes[0]

    def variant(self, changes: Mapping[str, object]) -> Network | None:
        """The network elaborated again with some parameters changed (at the spec's input), or None
        where the spec refuses those values."""
        try:
            e = self.spec.elaborate(self.name, {**self.parameters, **changes})
        except ArchError:
            return None
        return Network(self.name, self.spec, e.ir, e.params, e.expects, e.family, e.variables, e.defaulted)

    @property
    def info(self) -> NetworkInfo:
        """The description the compiler's backends take along with the IR."""
        return NetworkInfo(self.name, self.spec.file, self.family,
                           {k: jsonable(v) for k, v in self.parameters.items()}, self.defaulted)

    @property
    def analysis(self) -> Analysis:
        """The results of the registered passes (each run once, when its results are first asked for)."""
        if self._analysis is None:
            self._analysis = Analysis(self.ir)
        return self._analysis

    def analyze(self) -> Report:
        if self._report is None:
            self._report = build_report(self)
        return self._report

    def report_json(self) -> Iterator[str]:
        """The report as JSON text — exactly `analyze().model_dump_json(indent=2)` — in pieces,
        one layer at a time, so a huge network's report is never held whole."""
        if self._report is not None:
            yield self._report.model_dump_json(indent=2)
            return
        yield from report_json(_report_fields(self), _layer_rows(self))

    @property
    def input_shapes(self) -> dict[str, Shape]:
        return self.ir.input_shapes()

    @property
    def output_shapes(self) -> dict[str, Shape]:
        return self.ir.output_shapes()

    def diagram(self, fmt: str = "svg", depth: int | None = None, direction: str = "TB") -> bytes:
        """The network drawn by graphviz (`fmt`: svg, png, pdf or dot); see `archdsl diagram`."""
        from archdsl.compiler.backends.graphviz_backend import diagram

        return diagram(self, fmt, depth, direction)

    def _repr_svg_(self) -> str:  # Jupyter: the diagram, or why it cannot be drawn (E1103 without `dot`)
        try:
            return self.diagram("svg").decode("utf-8")
        except ArchError as exc:
            return render_svg(exc.diagnostics)


def build_report(net: Network) -> Report:
    """The report of `net`: its structure, and each registered pass's share of the figures. The
    figures of the passes whose report fields all have defaults (receptive fields, memory) are
    computed when first read, and so are the layer rows (see `Report.__getattribute__`): a report
    asked for its parameters and MACs runs the count pass alone."""
    from .report_models import LayerReport, Report

    later = [kind for kind in passes() if kind.network_fields and all(
        default is not REQUIRED for name, default in declared_fields(ReportFields) if name in kind.network_fields)]
    report = Report(**_report_fields(net, skip=later), layers=[])

    def layers() -> tuple[list[LayerReport], dict[str, list[list[int]]]]:
        return [LayerReport(**row) for row in _layer_rows(net)], group_outputs(net.ir)

    def figures(kind: type[Pass[Any]]) -> Callable[[], dict[str, Any]]:
        return lambda: kind.network_report(net.ir, net.analysis)

    report.defer(layers, {name: figures(kind) for kind in later for name in kind.network_fields})
    return report


def _layer_rows(net: Network) -> Iterator[dict[str, Any]]:
    """Each op node's `LayerReport` fields, in their declared order: its structure, and each
    registered pass's figures."""
    ir, analysis = net.ir, net.analysis
    kinds = passes()
    fields = declared_fields(LayerReportFields)
    # Every row starts as a copy of a row holding the declared fields (in the declared order,
    # whatever fills them: what the JSON writer needs) with their defaults and the values that
    # follow from the call — op, description, output shapes — made once per distinct (op,
    # attributes, output shapes). The attributes and the shapes (one tuple per distinct list, kept
    # by the IR) are keyed by identity: the nodes keep them referenced.
    template = dict(fields)
    starts: dict[tuple[Any, ...], dict[str, Any]] = {}
    scope: tuple[tuple[str, ...], str] = ((), "")  # the last scope and its text (a block's layers are consecutive)
    checked = False
    for node, *parts in zip(ir.nodes("op"), *[kind.layer_reports(ir, analysis) for kind in kinds], strict=True):
        key = (node.op, id(node.attrs), id(node.out_shapes))
        start = starts.get(key)
        if start is None:
            start = starts[key] = {
                **template, "op": node.op or "", "description": node.op_class.describe(node.attrs),
                "output_shape": list(node.out_shapes[0]), "output_shapes": [list(s) for s in node.out_shapes]}
        if node.scope is not scope[0]:
            scope = (node.scope, ".".join(node.scope))
        # The shape lists are shared between rows: the JSON writer only reads them, and the models
        # copy what they validate.
        row = start.copy()
        row["name"], row["scope"], row["shares"] = node.name, scope[1], node.shares
        for part in parts:
            row.update(part)
        if not checked:
            missing = [name for name, value in row.items() if value is REQUIRED]
            if missing or len(row) != len(fields):
                raise KeyError(f"layer fields {missing or sorted(set(row) - set(template))} not as declared")
            checked = True
        yield row


def _report_fields(net: Network, skip: Collection[type[Pass[Any]]] = ()) -> dict[str, Any]:
    """The network's `Report` fields but its layers (and those of the passes in `skip`)."""
    ir, analysis = net.ir, net.analysis
    totals: dict[str, Any] = {}
    for kind in passes():
        if kind not in skip:
            totals.update(kind.network_report(ir, analysis))
    return dict(
        network=net.name, file=net.spec.file, parameters=dict(net.info.parameters),
        inputs={k: list(v) for k, v in net.input_shapes.items()},
        outputs={k: list(v) for k, v in net.output_shapes.items()},
        scopes={".".join(path): info.title for path, info in ir.scopes.items()}, **totals,
    )


def group_outputs(ir: IR) -> dict[str, list[list[int]]]:
    """For every group of layers (each prefix of a layer's path: `layer1`, `layer1.0`, …), the shapes
    of its tensors that are read outside it, in the order they were made."""
    found: dict[str, dict[Port, None]] = {}
    parts: dict[str, list[str]] = {}  # each name's components
    groups: dict[str, list[str]] = {}  # each producer's groups: `a`, `a.b` for `a.b.c`
    for node in ir:
        consumer = parts.setdefault(node.name, node.name.split(".")) if node.kind == "op" else []
        for port in node.inputs:
            producer = parts.get(port.node) or parts.setdefault(port.node, port.node.split("."))
            common, limit = 0, min(len(consumer), len(producer) - 1)
            while common < limit and consumer[common] == producer[common]:
                common += 1
            if common + 1 < len(producer):  # the groups deeper than the shared prefix are left
                prefixes = groups.get(port.node)
                if prefixes is None:
                    prefixes = groups[port.node] = [".".join(producer[:k]) for k in range(1, len(producer))]
                for group in prefixes[common:]:
                    found.setdefault(group, {})[port] = None
    order = {n.name: i for i, n in enumerate(ir)}
    return {group: [list(ir.node(p.node).out_shapes[p.index])
                    for p in sorted(ports, key=lambda p: (order[p.node], p.index))] for group, ports in found.items()}


@dataclass
class Spec:
    """A loaded `.arch` file and everything it imports."""

    file: str
    namespace: Definitions
    limits: Limits = LIMITS

    @property
    def networks(self) -> list[str]:
        """Concrete networks defined in this file (not imported ones), in source order: those that
        build without arguments. A family whose parameters lack defaults is a template instead."""
        return [n for n in self.namespace.own_networks if not self.is_template(n)]

    @property
    def templates(self) -> list[str]:
        """Network families with required parameters (`network resnet(layers, block)`): built only
        through their variants or with --set."""
        return [n for n in self.namespace.own_networks if self.is_template(n)]

    def is_template(self, name: str) -> bool:
        definition, _ = self._entry(name)
        return isinstance(definition, NetworkDef) and any(p.default is None for p in definition.params)

    def network_parameters(self, name: str) -> dict[str, Any]:
        """Declared parameters and their defaults (variants: the values they set)."""
        definition, ns = self._entry(name)
        out: dict[str, Any] = {}
        chain = []
        while isinstance(definition, VariantDef):
            chain.append(definition)
            definition, ns = ns.networks[definition.base]
        assert isinstance(definition, NetworkDef)
        evaluator = Evaluator(self.limits)
        env = Env({}, ns, ())
        for p in definition.params:
            try:
                out[p.name] = jsonable(evaluator.eval(p.default, env)) if p.default is not None else None
            except ArchError:
                out[p.name] = None
            env.vars[p.name] = out[p.name]
        for variant in reversed(chain):
            for arg in variant.args:
                if arg.name:
                    try:
                        out[arg.name] = jsonable(evaluator.eval(arg.value, Env({}, ns, ())))
                    except ArchError:
                        out[arg.name] = None
        return out

    def _entry(self, name: str) -> Any:
        entry = self.namespace.network_def(name)
        if entry is None:
            known = self.namespace.own_networks
            raise error("E0601", f"no network `{name}` in {self.file}", Span.unknown(self.file),
                        did_you_mean(name, known) or f"networks here: {', '.join(known) or 'none'}")
        return entry

    def resolve_name(self, name: str | None) -> str:
        if name is not None:
            self._entry(name)
            return name
        if len(self.networks) == 1:
            return self.networks[0]
        if not self.networks and len(self.templates) == 1:
            return self.templates[0]
        if not self.namespace.own_networks:  # a file of blocks, which other specs import
            blocks = [item.name for item in self.namespace.module.items if isinstance(item, BlockDef)]
            more = f" and {len(blocks) - 4} more" if len(blocks) > 4 else ""
            what = f"only blocks ({', '.join(blocks[:4])}{more})" if blocks else "nothing to build"
            stem = Path(self.file).stem
            statement = f" (`import {stem}`)" if stem.isidentifier() else ""
            hint = (f"a file of blocks is imported by the specs that use it{statement}; compile one of those, "
                    "or add a `network` here" if blocks else "add a `network` to this file")
            raise error("E0602", f"{self.file} has no network to compile: it defines {what}",
                        Span.unknown(self.file), hint)
        if not self.networks:  # families whose parameters have no defaults
            raise error("E0602", f"{self.file} has no network that builds without arguments",
                        Span.unknown(self.file),
                        f"choose a family with --net and give its parameters with --set; families: "
                        f"{', '.join(self.templates)}")
        raise error("E0602", f"{self.file} defines {len(self.networks)} networks; choose one with --net",
                    Span.unknown(self.file), f"networks: {', '.join(self.networks) or 'none'}")

    def parse_value(self, text: str, name: str | None = None) -> Any:
        """Evaluate `--set` text (`1.1`, `[3,4,6,3]`, `bottleneck`) as an archdsl expression; its
        diagnostics (`1e400` too large, `2**1024` too large) point into the text, in a file named
        `<--set NAME>` for the parameter `name`."""
        bad = ArchError(Diagnostic("E0605", f"bad --set value `{text}`: not an expression", Span.unknown("<--set>"),
                                   "write a number, a list like [3, 4, 6, 3], a string in quotes, or a name"))
        wrapper = "network __set__ { __value__ = "
        file = f"<--set {name}>" if name else "<--set>"
        if name:
            SOURCES.add(file, text)
        try:
            module = parse(f"{wrapper}{text}\n}}", file, limits=self.limits)
            item = module.items[0] if len(module.items) == 1 else None
            if not (isinstance(item, NetworkDef) and len(item.body.stmts) == 1
                    and isinstance(item.body.stmts[0], Assign)):
                raise bad
            return Evaluator(self.limits).eval(item.body.stmts[0].value, Env({}, self.namespace, ()))
        except ArchError as exc:
            if exc is bad or any(d.code == "E0100" for d in exc.diagnostics):
                raise bad from None
            raise ArchError([_unwrapped(d, file, len(wrapper)) for d in exc.diagnostics]) from None

    def network(self, name: str | None = None, params: dict[str, Any] | None = None,
                input: Shape | str | None = None) -> Network:
        """Elaborate a network; `params` override its parameters (strings are parsed as expressions)."""
        name = self.resolve_name(name)
        values = {k: self.parse_value(v, k) if isinstance(v, str) else v for k, v in (params or {}).items()}
        shape = parse_shape(input, self.limits) if isinstance(input, str) else input
        elaborated = self.elaborate(name, values, shape, Span.unknown("<--set>") if params else None)
        return Network(name, self, elaborated.ir, elaborated.params, elaborated.expects, elaborated.family,
                       elaborated.variables, elaborated.defaulted)

    def elaborate(self, name: str, values: dict[str, Any], input: Shape | None = None,
                  span: Span | None = None) -> Elaborated:
        """Elaborate network `name` with parameter values (already values, not text)."""
        return Elaborator(self.limits).network(name, self.namespace, values, input, span)

    def check(self) -> list[Diagnostic]:
        """Every problem in the file: unknown names anywhere, and each network's errors — each once,
        naming the networks it occurs in when the file has several."""
        from archdsl.compiler.backends.torch_codegen import module_name_problems

        problems = check_names(self.namespace, [name for name, f in node_figures().items() if f.call_form])
        found: dict[tuple[Span, str], tuple[Diagnostic, list[str]]] = {}
        for name in self.networks:
            try:
                diagnostics = module_name_problems(self.network(name).ir)  # what compile would refuse
            except ArchError as exc:
                diagnostics = exc.diagnostics
            for d in diagnostics:
                found.setdefault((d.span, d.code), (d, []))[1].append(name)
        several = len(self.networks) > 1
        problems += [replace(d, notes=(*d.notes, _in_networks(names))) if several else d
                     for d, names in found.values()]
        unique = {(d.span, d.code): d for d in reversed(problems)}  # the name check's word first
        return sorted(unique.values(), key=Diagnostic.sort_key)


def _in_networks(names: list[str]) -> str:
    """`in network `a``, `in networks `a` and `b``, `in networks `a`, `b` and 3 more`."""
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        return f"in network {quoted[0]}"
    if len(quoted) > 3:
        return f"in networks {', '.join(quoted[:2])} and {len(quoted) - 2} more"
    return f"in networks {', '.join(quoted[:-1])} and {quoted[-1]}"


def _unwrapped(d: Diagnostic, file: str, shift: int) -> Diagnostic:
    """A diagnostic in `--set` text parsed (as `file`) behind a `shift`-character prefix on its first line."""
    if d.span.file != file:
        return d
    sp = d.span
    col, end_col = (max(1, c - shift) if line == 1 else c for line, c in ((sp.line, sp.col), (sp.end_line, sp.end_col)))
    return replace(d, span=Span(sp.file, sp.line, col, sp.end_line, end_col))


_SHAPE_RE = re.compile(r"^\s*\d+(\s*[x×,]\s*\d+)*\s*$")


def parse_shape(text: str, limits: Limits = LIMITS) -> Shape:
    if not _SHAPE_RE.match(text):
        raise error("E0603", f"bad input shape `{text}`", Span.unknown("<--input>"), "write it as 3x224x224")
    dims = tuple(int(d) for d in re.split(r"\s*[x×,]\s*", text.strip()))
    if any(d <= 0 for d in dims) or math.prod(dims) > limits.max_tensor_elements:
        raise error("E0603", f"input shape `{text}` is empty or too large", Span.unknown("<--input>"))
    return dims


def load(path: str | os.PathLike[str], limits: Limits = LIMITS) -> Spec:
    """Load a `.arch` file (and its imports)."""
    ns = Loader(limits).load_file(path)
    return Spec(str(path), ns, limits)


def load_string(text: str, file: str = "<string>", limits: Limits = LIMITS) -> Spec:
    """Load spec text; `file` is the name diagnostics will show."""
    ns = Loader(limits).load_text(text, file)
    return Spec(file, ns, limits)


def find(spec_or_name: str, limits: Limits = LIMITS) -> tuple[Spec, str | None]:
    """A path to a spec, or the name of a bundled network (`resnet50`): (spec, network or None)."""
    if os.path.exists(spec_or_name) or spec_or_name.endswith(".arch"):
        return load(spec_or_name, limits), None
    path = find_in_zoo(spec_or_name)
    if path is None:
        raise error("E0604", f"`{spec_or_name}` is neither a file nor a bundled network", Span.unknown(spec_or_name),
                    did_you_mean(spec_or_name, zoo_network_names()) or "run `archdsl list` to see the bundled networks")
    spec = load(path, limits)
    spec.file = f"{path.parent.name}/{path.name}"  # the zoo's own name for it (specs/resnet.arch), wherever installed
    return spec, spec_or_name


def analyze(spec_or_name: str, net: str | None = None, params: dict[str, Any] | None = None,
            input: Shape | str | None = None) -> Report:
    """One call from a path or bundled name to a report."""
    spec, found = find(spec_or_name)
    return spec.network(net or found, params, input).analyze()


def spec_files(target: str | Path) -> list[Path]:
    """A file, or every `.arch` file under a directory, sorted."""
    p = Path(target)
    return sorted(p.rglob("*.arch")) if p.is_dir() else [p]


# ---------------------------------------------------------------------------------------------
# PyTorch (torch is imported only here, lazily: analysis never pays for it)


def compile_source(spec_or_name: str | Spec | Network, net: str | None = None, params: dict[str, Any] | None = None,
                   input: Shape | str | None = None) -> str:
    """The standalone PyTorch source of a network (a path, a bundled name, a Spec or a Network)."""
    from archdsl.compiler.backends.torch_codegen import generate_source

    return generate_source(_network(spec_or_name, net, params, input))


def build(spec_or_name: str | Spec | Network, net: str | None = None, params: dict[str, Any] | None = None,
          input: Shape | str | None = None, weights: Any = None) -> Any:
    """An `nn.Module` built from exactly the source `compile_source` returns; with `weights` (a
    canonical model or a state dict), loaded with them by :func:`load_weights`."""
    from archdsl.compiler.backends.torch_codegen import build_module

    module = build_module(_network(spec_or_name, net, params, input))
    if weights is not None:
        load_weights(module, weights)
    return module


def load_weights(module: Any, source: Any, strict: bool = True) -> str:
    """Copy the parameters and buffers of `source` (an `nn.Module`, e.g. a torchvision model, or a
    state dict) into `module`, a module built from a spec. Tensors are matched by name when every
    tensor of `module` has a namesake in `source` (specs that keep the canonical names, like
    ResNet's), else by order (registration order, which the specs keep equal to the canonical
    implementation's); either way every shape must agree. Returns how they were matched, "name" or
    "order". Raises `WeightMappingError` (a ValueError) naming the first tensor that does not fit,
    or, with `strict`, the first tensor of `source` left over."""
    from archdsl.compiler.backends.weights import load_weights as load

    return load(module, source, strict)


def _network(target: str | Spec | Network, net: str | None, params: dict[str, Any] | None,
             input: Shape | str | None) -> Network:
    if isinstance(target, Network):
        if net is not None or params or input is not None:
            return target.spec.network(net or target.name, params, input)
        return target
    if isinstance(target, Spec):
        return target.network(net, params, input)
    spec, found = find(target)
    return spec.network(net or found, params, input)


def from_torch(model: Any, input_shape: Shape | str = (3, 224, 224), name: str | None = None,
               limits: Limits = LIMITS) -> str:
    """The `.arch` spec of a PyTorch model, traced at `input_shape` (batch excluded): one block per
    module class, labels equal to its state_dict keys. `model` is an nn.Module, a zero-argument
    factory, or "package.module:factory" (`torchvision.models:resnet50`, `timm:NAME`, `file.py:fn`);
    with a factory, the blocks' parameters take the names of its constructor arguments. What has no
    archdsl equivalent raises ArchError naming the module and the op. The spec is checked before it
    is returned: its parameter count and output shape must be the model's.
    `load_string(from_torch(model))` gives the Spec."""
    from archdsl.compiler.importer import import_any

    shape = parse_shape(input_shape, limits) if isinstance(input_shape, str) else tuple(input_shape)
    result = import_any(model, shape, name)
    report = load_string(result.text, f"{result.network}.arch", limits).network(result.network).analyze()
    if report.params != result.params or list(report.outputs.values()) != [list(s) for s in result.outputs]:
        raise error("E1206", f"internal error: the spec of `{result.network}` has {report.params:,} parameters "
                    f"and outputs {list(report.outputs.values())}, the model {result.params:,} and "
                    f"{[list(s) for s in result.outputs]}", Span.unknown(f"<{result.network}>"),
                    "this is a bug in archdsl import; please report it with the model")
    return result.text

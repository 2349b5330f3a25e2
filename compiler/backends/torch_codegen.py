"""PyTorch code generation: one elaborated network → one standalone Python file that imports only torch.

The generated file holds the helper classes the network's ops need (declared once, on the op), one
``nn.Module`` class per block definition and structure, and one class for the network. Submodules
mirror the spec's node paths, so the state_dict key of every op node is its IR name plus
``.weight``/``.bias``/… (``layer1.0.conv1.weight``, exactly as torchvision; an op whose state is one
bare parameter, like SSD's ``scale_weight``, is that key itself), and each ``forward``
reads like the dataflow: one named intermediate per node, one call per block instance.

>>> import archdsl
>>> net = archdsl.load_string('''
... network tiny {
...     input image: 3x8x8
...     image -> conv(4, 3) as conv1 -> relu -> output y
... }''').network()
>>> src = generate_source(net)
>>> "self.conv1 = nn.Conv2d(3, 4, kernel_size=(3, 3)" in src
True

NOTE: nothing from a spec reaches the source unchecked. Submodule names are ASCII letters, digits
and ``_`` (not leading), never an ``nn.Module`` API name, else the compiler stops with a diagnostic
at the label; those that are no Python attribute (``0``, ``class``) are registered with
``add_module`` and read with ``getattr``, as torch's own containers do; local variables and class names come from a
:class:`Namespace`, which only ever hands out safe identifiers; strings are written with ``ascii()``;
comments and docstrings keep a small safe alphabet. The ops' own ``torch_init``/``torch_forward``
texts are built from validated attributes (numbers, booleans and ``Literal`` strings) only, every
float through :func:`archdsl.ops.py_number` (exact, finite, or code generation stops).
"""

from __future__ import annotations

import json
import linecache
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archdsl.diagnostics import ArchError, Diagnostic, Span, error
from archdsl.ir import IR, IRNode, Port, output_name
from archdsl.values import jsonable

from ..hierarchy import ScopeTree
from .python_source import (
    INDENT,
    RESERVED_ATTRS,
    WIDTH,
    Namespace,
    camel,
    check_attribute,
    clip,
    is_attribute,
    py_str,
    safe_comment,
    wrap,
)

if TYPE_CHECKING:
    from torch import nn

    from archdsl.network import CompiledNetwork

# Canonical initialization schemes, keyed by network family: lines of an `_init_weights` method.
# Empty for now (PyTorch defaults); a family that needs its paper's init adds one entry here.
INIT_SCHEMES: dict[str, tuple[str, ...]] = {}


def parts(scope: tuple[str, ...]) -> tuple[str, ...]:
    """Scope components as name components (a label component like `1.5` holds a dot)."""
    return tuple(p for comp in scope for p in comp.split("."))


# ---------------------------------------------------------------------------------------------
# the value object and the module tree


@dataclass(frozen=True)
class GeneratedSource:
    """What the codegen returns: the file's text, the network class's name and the helpers used."""

    text: str
    class_name: str
    helpers: tuple[str, ...]


@dataclass
class _Slot:
    """A node of one class's submodule tree: a leaf (an op's module or a block instance) or a
    container (its children, by spec name)."""

    span: Span
    init: str | None = None
    children: dict[str, _Slot] = field(default_factory=dict)

    _sequential: tuple[int, bool] = (-1, False)  # (number of children, answer): children only grow

    @property
    def sequential(self) -> bool:
        if self._sequential[0] != len(self.children):
            answer = all(key == str(i) for i, key in enumerate(self.children))
            self._sequential = (len(self.children), answer)
        return self._sequential[1]


class _ClassBody:
    """The __init__ tree and forward lines of one class, before naming."""

    def __init__(self, reserved: frozenset[str]) -> None:
        self.root = _Slot(Span.unknown())
        self.refs: list[tuple[str, ...]] = []  # placeholder k ↔ submodule path
        self.names = Namespace(reserved)
        self.lines: list[str] = []

    def add_module(self, rel: tuple[str, ...], init: str, span: Span) -> str:
        """Place a submodule at `rel`; returns a placeholder for its reference in forward code."""
        slot = self.root
        for depth, part in enumerate(rel):
            check_attribute(part, span)
            last = depth == len(rel) - 1
            child = slot.children.get(part)
            if child is not None and (last or child.init is not None):
                what = ".".join(rel[:depth + 1])
                raise error("E0702", f"`{safe_comment(what)}` names both a layer and a group of layers", span,
                            "give the layer or the group another name with `as NAME`")
            if child is None:
                child = slot.children[part] = _Slot(span, init if last else None)
            slot = child
        return self.reuse(rel)

    def reuse(self, rel: tuple[str, ...]) -> str:
        """A placeholder for the submodule at `rel`, placed before (a shared instance applied again)."""
        self.refs.append(rel)
        return f"\x00{len(self.refs) - 1}\x00"

    def ref(self, rel: tuple[str, ...]) -> str:
        out, slot = _self_attr(rel[0]), self.root.children[rel[0]]
        for part in rel[1:]:
            out += f"[{part}]" if slot.sequential else f"[{py_str(part)}]"
            slot = slot.children[part]
        return out

    def resolve(self, line: str) -> str:
        return re.sub("\x00(\\d+)\x00", lambda m: self.ref(self.refs[int(m.group(1))]), line)

    def init_lines(self) -> list[str]:
        out: list[str] = []
        for name, slot in self.root.children.items():
            if is_attribute(name):
                out.extend(wrap(f"self.{name} = {self._render(slot)}", INDENT * 2))
            else:  # `as 0`, `as class`: registered as torch's containers do
                out.extend(wrap(f"self.add_module({py_str(name)}, {self._render(slot)})", INDENT * 2))
        return out

    def _render(self, slot: _Slot) -> str:
        """One-line constructor source of a slot; `_wrap` breaks it where it is too long."""
        if slot.init is not None:
            return slot.init
        if slot.sequential:
            return f"nn.Sequential({', '.join(self._render(c) for c in slot.children.values())})"
        items = ", ".join(f"{py_str(k)}: {self._render(c)}" for k, c in slot.children.items())
        return f"nn.ModuleDict({{{items}}})"


# ---------------------------------------------------------------------------------------------
# the generator


class TorchCodegen:
    """Generates the PyTorch source of one network; ``generate()`` returns a :class:`GeneratedSource`.

    Classes are generated bottom-up (a block's children first); instances of one block whose
    generated bodies are identical share a class, distinct structures get ``Name``, ``Name_2``, ….
    """

    def __init__(self, network: CompiledNetwork) -> None:
        self.network = network
        self.info = network.info
        self.ir: IR = network.ir
        self.blocks = ScopeTree.of_blocks(self.ir)
        self.order = {n.name: i for i, n in enumerate(self.ir)}
        self.helpers = self._helpers()
        reserved = frozenset(self.helpers)
        self.classes = Namespace(reserved)
        self.net_class = self.classes.create(camel(network.info.name))
        self.locals_reserved = reserved | {self.net_class}
        self.class_bodies: dict[tuple[str, str], str] = {}  # (block, body) → class name
        self.class_text: dict[str, list[str]] = {}
        self.class_instances: dict[str, list[str]] = {}
        self.instance_class: dict[tuple[str, ...], str] = {}
        self.children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        # A shared block instance's later applications (`head@2`, …), by its first one: they call its module.
        self.applications: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for path, info in self.ir.scopes.items():
            if info.shares is not None:
                self.applications.setdefault(info.shares, []).append(path)
        for node in self.ir:
            o = self.owner(node)
            while o:
                parent = self.blocks.parent[o]
                kids = self.children.setdefault(parent, [])
                if o not in kids:
                    kids.append(o)
                o = parent

    # --- structure
    def owner(self, node: IRNode) -> tuple[str, ...]:
        """The block instance whose class holds `node` (() for the network class)."""
        return () if node.kind != "op" else self.blocks.enclosing(node.scope)

    def inside(self, node: IRNode, scope: tuple[str, ...]) -> bool:
        return node.kind == "op" and node.scope[:len(scope)] == scope

    def _child_for(self, node: IRNode, scope: tuple[str, ...]) -> tuple[str, ...]:
        o = self.owner(node)
        while self.blocks.parent[o] != scope:
            o = self.blocks.parent[o]
        return o

    def _boundary(self, scope: tuple[str, ...]) -> tuple[list[Port], list[Port]]:
        """Ports a block instance reads from outside, and ports of it read outside, in order."""
        ins: dict[Port, None] = {}
        outs: set[Port] = set()
        for node in self.ir:
            if self.inside(node, scope):
                for p in node.inputs:
                    if not self.inside(self.ir.node(p.node), scope):
                        ins.setdefault(p)
            else:
                for p in node.inputs:
                    if self.inside(self.ir.node(p.node), scope):
                        outs.add(p)
        return list(ins), sorted(outs, key=lambda p: (self.order[p.node], p.index))

    def _outputs(self, scope: tuple[str, ...]) -> list[Port]:
        """The ports a block instance's class returns: those read outside it — for a shared instance,
        those read outside any of its applications."""
        outs = dict.fromkeys(self._boundary(scope)[1])
        for app in self.applications.get(scope, []):
            outs.update(dict.fromkeys(_mirror(p, app, scope) for p in self._boundary(app)[1]))
        return sorted(outs, key=lambda p: (self.order[p.node], p.index))

    def _application_inputs(self, app: tuple[str, ...], first: tuple[str, ...], span: Span) -> list[Port]:
        """The tensors an application of a shared instance passes, in the order its class takes them."""
        wanted = self._boundary(first)[0]
        given: dict[Port, Port] = {}
        for node in self.ir:
            if not self.inside(node, app):
                continue
            twin = self.ir.node(_mirror(Port(node.name), app, first).node)
            for mine, theirs in zip(node.inputs, twin.inputs, strict=True):
                if not self.inside(self.ir.node(mine.node), app) and given.setdefault(theirs, mine) != mine:
                    raise error("E0704", f"the shared instance `{safe_comment('.'.join(parts(first)))}` reads one "
                                "tensor twice at its first application but different tensors here", span,
                                "pass the same tensors in the same roles at every application")
        return [given[p] for p in wanted]

    def _helpers(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for node in self.ir.nodes("op"):
            src = node.op_class.torch_helper.strip()
            if src:
                m = re.match(r"class (\w+)\b", src)
                if m is None:
                    raise ValueError(f"op {node.op}: torch_helper must start with a class definition")
                found.setdefault(m.group(1), src)
        return dict(sorted(found.items()))

    # --- classes
    def _body(self, scope: tuple[str, ...]) -> tuple[_ClassBody, list[str]]:
        """Generate the class body of a block instance (or of the network, scope ())."""
        body = _ClassBody(self.locals_reserved | set(self.class_instances))
        ports: dict[Port, str] = {}
        inputs, outputs = (self._boundary(scope)[0], self._outputs(scope)) if scope else ([], [])
        args = self._arguments(scope, inputs, body, ports)
        base = parts(scope)
        done: set[tuple[str, ...]] = set()
        for node in self.ir:
            if not self.inside(node, scope):
                continue
            if self.owner(node) == scope:
                self._op(node, base, body, ports)
                continue
            child = self._child_for(node, scope)
            if child not in done:
                done.add(child)
                self._call(child, base, body, ports)
        body.lines.extend(self._return(scope, outputs, ports))
        return body, args

    def _arguments(self, scope: tuple[str, ...], inputs: list[Port], body: _ClassBody,
                   ports: dict[Port, str]) -> list[str]:
        """The forward's parameters: a block's inputs (`x`, or `x1`, `x2`, …), the network's by name."""
        if scope:
            args = ["x"] if len(inputs) == 1 else [f"x{i + 1}" for i in range(len(inputs))]
            for p, a in zip(inputs, args, strict=True):
                ports[p] = body.names.create(a)
            return args
        args = [body.names.create(n.name) for n in self.ir.inputs()]
        for n, a in zip(self.ir.inputs(), args, strict=True):
            ports[Port(n.name, 0)] = a
        return args

    def _return(self, scope: tuple[str, ...], outputs: list[Port], ports: dict[Port, str]) -> list[str]:
        """The forward's return line: a block's outputs in order; the network's output, or a dict of them."""
        if scope:
            results = [ports[p] for p in outputs]
            return [f"return {', '.join(results)}"] if results else []
        outs = [(output_name(n), ports[n.inputs[0]]) for n in self.ir.outputs()]
        if len(outs) == 1:
            return [f"return {outs[0][1]}"]
        return ["return {" + ", ".join(f"{py_str(k)}: {v}" for k, v in outs) + "}"]

    def _rel(self, name: str, base: tuple[str, ...], span: Span) -> tuple[str, ...]:
        full = tuple(name.split("."))
        if full[:len(base)] != base or len(full) == len(base):
            raise error("E0703", f"`{safe_comment(name)}` is not inside its block `{safe_comment('.'.join(base))}`",
                        span, "this is a bug in archdsl; please report it with the spec")
        return full[len(base):]

    def _op(self, node: IRNode, base: tuple[str, ...], body: _ClassBody, ports: dict[Port, str]) -> None:
        op, a, ins = node.op_class, node.attrs, self.ir.in_shapes(node)
        rel = self._rel(node.name, base, node.span)
        args = [ports[p] for p in node.inputs]
        # A shared instance applied again uses its first application's module (or parameter).
        first = self._rel(node.shares, base, node.span) if node.shares is not None else None

        def place(init: str) -> str:
            return body.reuse(first) if first is not None else body.add_module(rel, init, node.span)

        param = op.torch_parameter(a, ins) if len(rel) == 1 else None
        if param is not None:  # a bare parameter of this class, named by the node (SSD's scale_weight)
            expr = op.torch_forward_parameter(a, ins, args, place(param))
        else:
            init = op.torch_init(a, ins)
            expr = op.torch_forward(a, ins, args, place(init) if init is not None else None)
        n_out = len(node.out_shapes)
        if n_out == 1 and op.category != "split":
            if expr.isidentifier():  # identity: no new name
                ports[Port(node.name, 0)] = expr
                return
            var = body.names.create("_".join(rel))
            ports[Port(node.name, 0)] = var
            body.lines.append(f"{var} = {expr}")
            return
        names = [body.names.create(f"{'_'.join(rel)}_{i}") for i in range(n_out)]
        for i, v in enumerate(names):
            ports[Port(node.name, i)] = v
        target = f"({names[0]},)" if n_out == 1 else ", ".join(names)
        body.lines.append(f"{target} = {expr}")

    def _call(self, child: tuple[str, ...], base: tuple[str, ...], body: _ClassBody,
              ports: dict[Port, str]) -> None:
        info = self.ir.scopes[child]
        rel = self._rel(".".join(parts(child)), base, info.span)
        if info.shares is not None:  # a shared instance applied again: call its first application's module
            first = info.shares
            module = body.reuse(self._rel(".".join(parts(first)), base, info.span))
            inputs = self._application_inputs(child, first, info.span)
            outputs = [_mirror(p, first, child) for p in self._outputs(first)]
        else:
            module = body.add_module(rel, f"{self._class(child)}()", info.span)
            inputs, outputs = self._boundary(child)[0], self._outputs(child)
        call = f"{module}({', '.join(ports[p] for p in inputs)})"
        stem = "_".join(rel)
        if not outputs:
            body.lines.append(call)
        elif len(outputs) == 1:
            var = body.names.create(stem)
            ports[outputs[0]] = var
            body.lines.append(f"{var} = {call}")
        else:
            inner = parts(child)
            names = []
            for p in outputs:
                leaf = "_".join(p.node.split(".")[len(inner):])
                names.append(body.names.create(f"{stem}_{leaf}" + (f"_{p.index}" if p.index else "")))
                ports[p] = names[-1]
            body.lines.append(f"{', '.join(names)} = {call}")

    def _class(self, scope: tuple[str, ...]) -> str:
        """Name of the class for this block instance, generating it (and its children) if new."""
        if scope in self.instance_class:
            return self.instance_class[scope]
        for child in self.children.get(scope, []):
            if self.ir.scopes[child].shares is None:
                self._class(child)
        body, args = self._body(scope)
        block = self.ir.scopes[scope].block or "block"
        lines = self._method_lines(body, args)
        key = (block, "\n".join(lines))
        name = self.class_bodies.get(key)
        if name is None:
            name = self.class_bodies[key] = self.classes.create(camel(block))
            self.class_text[name] = lines
            self.class_instances[name] = []
        self.class_instances[name].append(".".join(parts(scope)))
        self.instance_class[scope] = name
        return name

    def _method_lines(self, body: _ClassBody, args: list[str], extra_init: tuple[str, ...] = ()) -> list[str]:
        lines = [f"{INDENT}def __init__(self):", f"{INDENT * 2}super().__init__()", *body.init_lines()]
        lines += [INDENT * 2 + x for x in extra_init]
        lines += ["", f"{INDENT}def forward(self, {', '.join(args)}):"]
        for line in body.lines:
            lines.extend(wrap(body.resolve(line), INDENT * 2))
        return lines

    def init_scheme(self) -> tuple[str, ...]:
        """The hook for canonical initialization: lines run at the end of the network's __init__."""
        return INIT_SCHEMES.get(self.info.family, ())

    # --- the file
    def generate(self) -> GeneratedSource:
        body, args = self._body(())
        net_lines = self._method_lines(body, args, self.init_scheme())
        out = self._header()
        code: list[list[str]] = []
        for name, lines in self.class_text.items():
            where = ", ".join(self.class_instances[name][:4])
            more = f" and {len(self.class_instances[name]) - 4} more" if len(self.class_instances[name]) > 4 else ""
            block = next(b for (b, _), n in self.class_bodies.items() if n == name)
            doc = safe_comment(f"Block {block}, used at {where}{more}.", WIDTH - 14)
            code.append([f"class {name}(nn.Module):", f'{INDENT}"""{doc}"""', "", *lines])
        code.append([f"class {self.net_class}(nn.Module):", *self._docstring(), "", *net_lines])
        # Helpers that some class constructs (an op held as a bare parameter needs none).
        used = "\n".join("\n".join(c) for c in code)
        helpers = {n: h for n, h in self.helpers.items() if re.search(rf"(?<![\w.]){n}\(", used)}
        code = [h.splitlines() for h in helpers.values()] + code
        text = "\n\n\n".join("\n".join(c) for c in code)
        imports = [imp for imp, pat in (("import torch", r"(?<![\w.])torch\."),
                                        ("import torch.nn.functional as F", r"(?<![\w.])F\."),
                                        ("from torch import nn", r"(?<![\w.])nn\.")) if re.search(pat, text)]
        out += ["", *imports, "", "", text, ""]
        return GeneratedSource("\n".join(out), self.net_class, tuple(helpers))

    def _docstring(self) -> list[str]:
        """The network class's docstring: its name, and the input sizes the module serves."""
        doc = safe_comment(f"The network {self.info.name}.", WIDTH - 14)
        sizes = self.network.input_sizes()
        if not sizes:
            return [f'{INDENT}"""{doc}"""']
        words, lines, line = safe_comment(sizes, 2000).split(), [], ""
        for word in words:
            if line and len(INDENT + line + " " + word) > WIDTH:
                lines.append(INDENT + line)
                line = word
            else:
                line = f"{line} {word}".strip()
        return [f'{INDENT}"""{doc}', "", *lines, INDENT + line, f'{INDENT}"""']

    def _header(self) -> list[str]:
        net = self.info
        spec = json.dumps(os.path.basename(net.file))
        lines = [f"# Generated by archdsl from {spec}, network {json.dumps(net.name)}.",
                 "# Do not edit: change the spec and run `archdsl compile` again."]
        if net.parameters:
            lines.append("# Settings:")
            for k, v in net.parameters.items():
                lines.append(clip(f"#   {json.dumps(k)[1:-1]} = {json.dumps(jsonable(v))}"))
        for name, shape in self.ir.input_shapes().items():
            lines.append(clip(f"# Input {json.dumps(name)[1:-1]}: N x {'x'.join(map(str, shape))}"))
        for name, shape in self.ir.output_shapes().items():
            lines.append(clip(f"# Output {json.dumps(name)[1:-1]}: N x {'x'.join(map(str, shape))}"))
        return lines


def _self_attr(name: str) -> str:
    return f"self.{name}" if is_attribute(name) else f"getattr(self, {py_str(name)})"


def _mirror(port: Port, src: tuple[str, ...], dst: tuple[str, ...]) -> Port:
    """The port of `dst` (an application of a shared instance) at `port`'s place in `src`."""
    prefix = ".".join(src)
    return Port(".".join(dst) + port.node[len(prefix):], port.index)


# ---------------------------------------------------------------------------------------------
# API


def module_signature(ir: IR) -> tuple[object, ...]:
    """What the generated code of `ir` is made of, without generating it: each node's name, kind,
    inputs and torch text (constructor, bare parameter, forward), each scope, the outputs' names.
    Two elaborations with equal signatures compile to the same module (the input sizes may differ)."""
    nodes: list[object] = []
    for node in ir:
        if node.kind != "op":
            nodes.append((node.name, node.kind, node.output_name, node.inputs))
            continue
        op, ins = node.op_class, ir.in_shapes(node)
        args = [f"a{k}" for k in range(len(node.inputs))]
        nodes.append((node.name, node.op, node.inputs, node.shares, op.torch_init(node.attrs, ins),
                      op.torch_parameter(node.attrs, ins), op.torch_forward(node.attrs, ins, args, "m")))
    scopes = tuple((path, info.kind, info.block, info.shares) for path, info in ir.scopes.items())
    return (tuple(nodes), scopes)


def module_name_problems(ir: IR) -> list[Diagnostic]:
    """What code generation would refuse about submodule names, found without generating (`archdsl
    check` runs it, so that check and compile agree): every part of the path of each layer that holds
    a module and of each block instance, and a layer whose path is also a group's."""
    blocks = ScopeTree.of_blocks(ir)
    entries: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[bool, Span]] = {}  # (class, path) → (layer?, span)
    for node in ir.nodes("op"):
        op, ins = node.op_class, ir.in_shapes(node)
        if node.shares is None and (op.torch_init(node.attrs, ins) or op.torch_parameter(node.attrs, ins)):
            owner = blocks.enclosing(node.scope)
            entries[(owner, tuple(node.name.split("."))[len(parts(owner)):])] = (True, node.span)
    for path, info in ir.scopes.items():
        if info.kind == "block" and info.shares is None:
            entries[(blocks.parent[path], parts(path)[len(parts(blocks.parent[path])):])] = (False, info.span)
    problems: dict[tuple[Span, str], Diagnostic] = {}
    for (owner, rel), (_, span) in entries.items():
        try:
            for part in rel:
                check_attribute(part, span)
            for k in range(1, len(rel)):
                if entries.get((owner, rel[:k]), (False, span))[0]:
                    what = ".".join(rel[:k])
                    raise error("E0702", f"`{safe_comment(what)}` names both a layer and a group of layers", span,
                                "give the layer or the group another name with `as NAME`")
        except ArchError as exc:
            d = exc.diagnostics[0]
            problems.setdefault((d.span, d.message), d)
    return list(problems.values())


def generate(network: CompiledNetwork) -> GeneratedSource:
    """The generated file as a value object (text, network class name, helpers used)."""
    return TorchCodegen(network).generate()


def generate_source(network: CompiledNetwork) -> str:
    """The text of the standalone PyTorch file for `network`."""
    return generate(network).text


def build_module(network: CompiledNetwork) -> nn.Module:
    """An instance of the network class, built by executing exactly the text `generate_source`
    returns (registered with linecache, so tracebacks and inspect show the generated lines)."""
    gen = generate(network)
    filename = f"<archdsl:{network.info.name}>"
    linecache.cache[filename] = (len(gen.text), None, gen.text.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"__name__": f"archdsl_generated.{gen.class_name}"}
    exec(compile(gen.text, filename, "exec"), namespace)
    module: nn.Module = namespace[gen.class_name]()
    return module


__all__ = [  # the Python-source helpers tests and other backends reach through here
    "RESERVED_ATTRS", "GeneratedSource", "Namespace", "TorchCodegen", "build_module", "generate", "generate_source",
    "module_name_problems", "module_signature",
    "py_str", "safe_comment",
]

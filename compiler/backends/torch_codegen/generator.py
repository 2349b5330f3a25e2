"""The generator (`TorchCodegen`): one elaborated network's IR walked once into class bodies,
block instances pooled into classes, names given, and the file written; a family of networks
(`generate_family`) shares its block classes and gets a network class with a function per network.
`module_signature` says what the code of an IR is made of, without generating it."""

from __future__ import annotations

import ast
import json
import linecache
import os
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from archdsl.diagnostics import Span, error
from archdsl.ir import IR, IRNode, Port, output_name
from archdsl.values import jsonable

from ...hierarchy import ScopeTree
from ..python_source import (
    INDENT,
    WIDTH,
    Namespace,
    camel,
    clip,
    family_class_name,
    py_str,
    safe_comment,
    wrap,
)
from ..torch_init import init_statements
from .class_body import GeneratedSource, _ChainCall, _ClassBody, _collapse_runs, _loop_passes
from .classes import _alternatives, _by_keyword, _Class, _difference, _own_inits, _returns, _source
from .constants import (
    Constant,
    KeywordDefaults,
    SpecValue,
    _Instance,
    _scalar_pairs,
    _template,
    _Templates,
)
from .expressions import _IN_CHANNELS, _function_helpers
from .family import FamilyClass
from .forward_numbers import (
    _BucketKey,
    _forward_numbers,
    _lines_within,
    _masked,
    _Number,
    _number_places,
    _Numbered,
    _reading_parameters,
)
from .parameters import _explained, _fitting, _spec_value
from .structures import _cut_forward, _Group, _groups, _in_place, _merged_forward, _Part, _reduce, _Structure
from .text import (
    _INSTANCE_REF,
    _REPEATED,
    _attributes,
    _imports,
    _instance_ref,
    _loop_runs,
    _mentions,
    _one_pass_loops,
    _resolve_instances,
    _reuse_names,
    _shift,
    _split_target,
    _statement_attributes,
    parts,
)

if TYPE_CHECKING:
    from archdsl.network import CompiledNetwork


@dataclass(frozen=True)
class _Probed:
    """A network of a family module, as its probes (TorchCodegen._probe) need it: its generator,
    its first block instance and its own instance (indices into the pooled instances), that
    instance, its constructor statements as its generator numbers its block instances, and those."""

    generator: TorchCodegen
    offset: int
    index: int
    instance: _Instance
    unshifted: list[str]
    blocks: list[_Instance]  # its block instances as its generator made them (the first network's
    # generator is the module's, whose instances become the pooled ones)


@dataclass(frozen=True)
class _ProbeRun:
    """A probe of network `network` (an index into the _Probed list): the common numbers it
    changed, its place among the probes, and what TorchCodegen._probe returned."""

    network: int
    changed: tuple[str, ...]
    order: tuple[int, int]
    generator: TorchCodegen
    instance: _Instance
    own_blocks: bool


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
        self.helpers = _helper_definitions(node.op_class.torch_helper for node in self.ir.nodes("op"))
        self.keyword_defaults: KeywordDefaults = {}
        self.templates = _Templates()  # _template, each distinct statement once
        self.loops: dict[str, str] = {}  # _loop_runs of each distinct statement of a family's network
        self.made: list[_Class] = []  # the classes named so far
        self.defaulted: dict[str, _Class] = {}  # those with defaults, by name: the file passes them by keyword
        self.spec_params: dict[str, list[str | None]] = {}  # a class's name → its parameters' spec names
        # A family's network → its generator and its block instances (start, stop).
        self.family: dict[int, tuple[TorchCodegen, int, int]] = {}
        # A family → its parameters that every network of the family sets alike, and their value.
        self.common_params: dict[str, dict[str, bool | int | float]] = {}
        # A family → its parameters' defaults, as the networks that leave them to the spec take them.
        self.spec_defaults: dict[str, dict[str, bool | int | float]] = {}
        self.family_names: dict[str, str] = {}  # a family (its network definition) → its class name
        # A network → its common numbers that no probe could lift (they stay fixed), and why.
        self.fixed: dict[str, dict[str, str]] = {}
        # Each distinct layer's constructor source, made once: identical layers share their validated
        # attributes (the IR keeps them alive, so their id is the key), as in module_signature.
        self.inits: dict[tuple[object, ...], str | None] = {}
        self.sizes_written: dict[str, str] = {}  # see _plain_sizes
        self._find_keyword_defaults()
        reserved = frozenset(self.helpers)
        self.classes = Namespace(reserved)
        self.net_class = self.classes.create(camel(network.info.name))
        self.locals_reserved = reserved | {self.net_class}
        self.instances: list[_Instance] = []  # block instances, children before their parent
        self.instance_index: dict[tuple[str, ...], int] = {}
        # A block instance's constructor statements, forward and arguments, by _leaf_key: made once per key.
        self.leaf_bodies: dict[tuple[object, ...], tuple[list[str], list[str], list[str], int, frozenset[str]]] = {}
        self.children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        # A shared block instance's later applications (`head@2`, …), by its first one: they call its module.
        self.applications: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for path, info in self.ir.scopes.items():
            if info.shares is not None:
                self.applications.setdefault(info.shares, []).append(path)
        # Each scope's op nodes in IR order (a node belongs to every prefix of its scope), and each
        # block instance's boundary once computed: walking the whole IR per instance was quadratic.
        self.members: dict[tuple[str, ...], list[IRNode]] = {}
        self.boundaries: dict[tuple[str, ...], tuple[list[Port], list[Port]]] = {}
        self.shared_from = {n.shares for n in self.ir if n.shares is not None}  # nodes whose module is reused
        self.depths: dict[tuple[str, ...], dict[str, int]] = {}  # see _depth
        # The generators whose block instances may share classes with this one's (a family's
        # networks, and a probe's), and where each layer of this one may overwrite an input: see _dies_here.
        self.peers: list[TorchCodegen] = [self]
        self.overwrites: dict[tuple[object, ...], bool] | None = None
        self.owners: dict[tuple[str, ...], tuple[str, ...]] = {}  # a node's scope → its owner (see owner)
        for node in self.ir.nodes("op"):
            for k in range(len(node.scope) + 1):
                self.members.setdefault(node.scope[:k], []).append(node)
        seen: set[tuple[str, ...]] = set()  # block instances already listed (a list lookup was quadratic)
        for node in self.ir:
            o = self.owner(node)
            while o and o not in seen:
                seen.add(o)
                parent = self.blocks.parent[o]
                self.children.setdefault(parent, []).append(o)
                o = parent

    def _find_keyword_defaults(self) -> None:
        """Each torch constructor's keyword arguments its op leaves out at their defaults (the last
        layer's op's, where ops share a constructor)."""
        callees: dict[str, str | None] = {}  # a constructor's source → what it calls, found once
        for node in self.ir.nodes("op"):
            op = node.op_class
            init = self._torch_init(node) if op.torch_defaults else None
            if init is None:
                continue
            if init not in callees:
                callees[init] = m[1] if (m := re.match(r"([\w.]+)\(", init)) else None
            if (callee := callees[init]) is not None:
                self.keyword_defaults[callee] = op.torch_defaults

    def _torch_init(self, node: IRNode, what: str = "init") -> str | None:
        """`node`'s op's constructor source (`Op.torch_init`; `what`: "init_in_place" or "parameter",
        `Op.torch_init_in_place` or `Op.torch_parameter`), each distinct layer's once."""
        key = (what, node.op, id(node.attrs), self.ir.in_shapes_key(node))
        found = self.inits.get(key, key)
        if found is key:
            found = self.inits[key] = getattr(node.op_class, f"torch_{what}")(node.attrs, self.ir.in_shapes(node))
        return cast(str | None, found)

    # --- structure
    def owner(self, node: IRNode) -> tuple[str, ...]:
        """The block instance whose class holds `node` (() for the network class)."""
        if node.kind != "op":
            return ()
        found = self.owners.get(node.scope)
        if found is None:
            found = self.owners[node.scope] = self.blocks.enclosing(node.scope)
        return found

    def inside(self, node: IRNode, scope: tuple[str, ...]) -> bool:
        return node.kind == "op" and node.scope[:len(scope)] == scope

    def _child_for(self, node: IRNode, scope: tuple[str, ...]) -> tuple[str, ...]:
        o = self.owner(node)
        while self.blocks.parent[o] != scope:
            o = self.blocks.parent[o]
        return o

    def _boundary(self, scope: tuple[str, ...]) -> tuple[list[Port], list[Port]]:
        """Ports a block instance reads from outside, and ports of it read outside, in order."""
        known = self.boundaries.get(scope)
        if known is not None:
            return list(known[0]), list(known[1])
        ins: dict[Port, None] = {}
        outs: set[Port] = set()
        for node in self.members.get(scope, []):
            for p in node.inputs:
                if not self.inside(self.ir.node(p.node), scope):
                    ins.setdefault(p)
            for consumer in self.ir.consumers(node.name):
                if not self.inside(consumer, scope):
                    outs.update(p for p in consumer.inputs if p.node == node.name)
        found = list(ins), sorted(outs, key=lambda p: (self.order[p.node], p.index))
        self.boundaries[scope] = found
        return list(found[0]), list(found[1])

    def outputs(self, scope: tuple[str, ...]) -> list[Port]:
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
        for node in self.members.get(app, []):
            twin = self.ir.node(_mirror(Port(node.name), app, first).node)
            for mine, theirs in zip(node.inputs, twin.inputs, strict=True):
                if not self.inside(self.ir.node(mine.node), app) and given.setdefault(theirs, mine) != mine:
                    raise error("E0704", f"the shared instance `{safe_comment('.'.join(parts(first)))}` reads one "
                                "tensor twice at its first application but different tensors here", span,
                                "pass the same tensors in the same roles at every application")
        return [given[p] for p in wanted]

    # --- classes
    def _body(self, scope: tuple[str, ...]) -> tuple[_ClassBody, list[str]]:
        """Generate the class body of a block instance (or of the network, scope ())."""
        body = _ClassBody(self.locals_reserved)
        ports: dict[Port, str] = {}
        inputs, outputs = (self._boundary(scope)[0], self.outputs(scope)) if scope else ([], [])
        args = self._arguments(scope, inputs, body, ports)
        if scope:  # the outputs it returns, named as the block declares them
            returned = set(outputs)
            body.declared = {p: n for p, n in self._declared_outputs(scope, scope).items() if p in returned}
        else:  # the network's values, named after the spec's variables
            body.named = {Port(node, index): name for name, node, index in self.ir.values}
        base = parts(scope)
        done: set[tuple[str, ...]] = set()
        for node in self.members.get(scope, []):
            if self.owner(node) == scope:
                self._op(node, base, body, ports)
                continue
            child = self._child_for(node, scope)
            if child not in done:
                done.add(child)
                self._call(child, base, body, ports)
        body.lines.extend(self._return(scope, outputs, ports))
        _collapse_runs(body)
        _loop_passes(body)
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

        param = self._torch_init(node, "parameter") if len(rel) == 1 else None
        module = None
        if param is not None:  # a bare parameter of this class, named by the node (SSD's scale_weight)
            expr = op.torch_forward_parameter(a, ins, args, place(param))
        else:
            init = self._torch_init(node)
            if (init is not None and len(args) == 1 and (in_place := self._torch_init(node, "init_in_place"))
                    and self._dies_here(node, 0)):
                init = in_place
            if init is None and (statement := self._in_place_statement(node, args)):
                ports[Port(node.name, 0)], line = statement
                body.lines.append(line)
                return
            module = place(init) if init is not None else None
            expr = op.torch_forward(a, ins, args, module)
        n_out = len(node.out_shapes)
        if n_out == 1 and op.category != "split":
            if expr.isidentifier():  # identity: no new name
                ports[Port(node.name, 0)] = expr
                return
            var = body.value_name(Port(node.name, 0), "_".join(rel))
            if first is None and len(args) == 1 and module is not None and expr == f"{module}({args[0]})":
                body.chain_calls.append(_ChainCall(len(body.lines), rel, args[0], var))
            ports[Port(node.name, 0)] = var
            body.lines.append(f"{var} = {expr}")
            return
        names = [body.value_name(Port(node.name, i), f"{'_'.join(rel)}_{i}") for i in range(n_out)]
        for i, v in enumerate(names):
            ports[Port(node.name, i)] = v
        target = f"({names[0]},)" if n_out == 1 else ", ".join(names)
        body.lines.append(f"{target} = {expr}")

    def _dies_here(self, node: IRNode, k: int) -> bool:
        """Whether `node` may overwrite its k-th input (torchvision's `nn.ReLU(inplace=True)` after a
        batch norm, `out += identity`, EfficientNet's `result += input` after a child block's batch
        norm): where this layer may (`_overwritten`) and, where the value is made in a child block,
        which the class's code does not show, where every layer of the same block, name and op
        (`_layer_key`) may too, in this network and in those sharing its classes (`self.peers`: a
        family's, a probe's). So the instances of a class agree: where one may not (EfficientNetV2's
        `FusedMbconv` without expansion: its child block ends in a SiLU, whose output may not be
        overwritten), none does, and they still read alike and share one class."""
        producer = self._overwritten(node, k)
        if producer is None:
            return False
        if self.owner(producer) == self.owner(node):  # the class's own layer: its code shows which
            return True
        key = (*self._layer_key(node), k)
        return all(peer._overwrites().get(key, True) for peer in self.peers)

    def _overwrites(self) -> dict[tuple[object, ...], bool]:
        """(`_layer_key`, input) → whether each layer of that key in this network may overwrite that input."""
        if self.overwrites is None:
            self.overwrites = {}
            for node in self.ir.nodes("op"):
                layer = self._layer_key(node)
                for k in range(len(node.inputs)):
                    key = (*layer, k)
                    self.overwrites[key] = self.overwrites.get(key, True) and self._overwritten(node, k) is not None
        return self.overwrites

    def _layer_key(self, node: IRNode) -> tuple[object, ...]:
        """A layer as its class knows it: the block definition holding it (None: the network's),
        its name within the block instance and its op (a family's networks hold different layers
        under one name: `body.2` a ReLU in one, a max pool in another)."""
        owner = self.owner(node)
        block = (self.ir.scopes[owner].block or "block") if owner else None
        return block, tuple(node.name.split("."))[len(parts(owner)):], node.op

    def _overwritten(self, node: IRNode, k: int) -> IRNode | None:
        """The layer whose output this `node` alone may overwrite as its k-th input, or None: the
        input is made by an op of its class or of a block inside it, whose output may be overwritten
        (`Op.output_overwritable`: autograd's backward of the op does not read it), and `node`,
        reading it once, is all that reads it. So never a block's or the network's input, a value
        read twice (a residual's identity) or an output. A module applied at several places
        (`shared`) is left out of place. A drop-path's output, its input itself at inference, may be
        overwritten where that input may be (`Op.output_overwritable_as_input`): the layer is then
        the one making that input."""
        port = node.inputs[k]
        producer = self.ir.node(port.node)
        if not (producer.kind == "op" and len(producer.out_shapes) == 1 and node.shares is None
                and node.name not in self.shared_from and self.inside(producer, self.owner(node))
                and node.inputs.count(port) == 1 and [c.name for c in self.ir.consumers(producer.name)] == [node.name]):
            return None
        if producer.op_class.output_overwritable_as_input and len(producer.inputs) == 1:
            return self._overwritten(producer, 0)
        return producer if producer.op_class.output_overwritable else None

    def _in_place_statement(self, node: IRNode, args: list[str]) -> tuple[str, str] | None:
        """(the variable holding the result, the statement) of a function op computed into one of
        its inputs where that input dies here and has the output's shape (`out += identity`), else
        None. Of two such inputs, the one more layers deep in the class: a residual's main path,
        as torchvision writes it, whether or not the shortcut has layers (`downsample`) — so the
        instances without them read the same and share the class."""
        ins = self.ir.in_shapes(node)
        dying = [k for k in range(len(args)) if ins[k] == node.out_shapes[0] and self._dies_here(node, k)]
        if len(dying) > 1:
            scope = self.owner(node)
            dying.sort(key=lambda k: -self._depth(node.inputs[k].node, scope))
        for k in dying:
            statement = node.op_class.torch_forward_in_place(node.attrs, ins, args, k)
            if statement is not None:
                return args[k], statement
        return None

    def _depth(self, name: str, scope: tuple[str, ...]) -> int:
        """The most layers on a path from outside `scope` to the node `name` (0 outside it)."""
        depths = self.depths.setdefault(scope, {})  # kept: a residual stack asks once per add
        stack = [name] if name not in depths else []
        while stack:  # iteratively: a chain of 10⁵ layers is deeper than Python's recursion
            node = self.ir.node(stack[-1])
            if not self.inside(node, scope):
                depths[stack.pop()] = 0
                continue
            todo = [p.node for p in node.inputs if p.node not in depths]
            if todo:
                stack.extend(todo)
                continue
            depths[stack.pop()] = 1 + max((depths[p.node] for p in node.inputs), default=0)
        return depths[name]

    def _call(self, child: tuple[str, ...], base: tuple[str, ...], body: _ClassBody,
              ports: dict[Port, str]) -> None:
        info = self.ir.scopes[child]
        rel = self._rel(".".join(parts(child)), base, info.span)
        if info.shares is not None:  # a shared instance applied again: call its first application's module
            first = info.shares
            module = body.reuse(self._rel(".".join(parts(first)), base, info.span))
            inputs = self._application_inputs(child, first, info.span)
            outputs = [_mirror(p, first, child) for p in self.outputs(first)]
        else:
            module = body.add_module(rel, _instance_ref(self._instance(child)), info.span)
            inputs, outputs = self._boundary(child)[0], self.outputs(child)
        call = f"{module}({', '.join(ports[p] for p in inputs)})"
        stem = "_".join(rel)
        if not outputs:
            body.lines.append(call)
        elif len(outputs) == 1:
            var = body.value_name(outputs[0], stem)
            ports[outputs[0]] = var
            if len(inputs) == 1 and info.shares is None:
                body.chain_calls.append(_ChainCall(len(body.lines), rel, ports[inputs[0]], var))
            body.lines.append(f"{var} = {call}")
        else:
            inner = parts(child)
            declared = self._declared_outputs(child if info.shares is None else info.shares, child)
            names = []
            for p in outputs:
                leaf = "_".join(p.node.split(".")[len(inner):])
                name = declared.get(p)  # as the spec names it, under the call's name where that is taken
                if name is None:
                    name = f"{stem}_{leaf}" + (f"_{p.index}" if p.index else "")
                elif not body.names.free(name):
                    name = f"{stem}_{name}"
                names.append(body.names.create(name))
                ports[p] = names[-1]
            body.lines.append(f"{', '.join(names)} = {call}")

    def _declared_outputs(self, scope: tuple[str, ...], at: tuple[str, ...]) -> dict[Port, str]:
        """The outputs the block of the instance at `scope` declares (`outputs(c3, c4, c5)`), by the
        port that computes each at its application `at` (`scope` itself, or a later application of
        a shared instance)."""
        prefix = ".".join(parts(at)) + "."
        return {Port(prefix + node, index): name for name, node, index in self.ir.scopes[scope].outputs}

    def _instance(self, scope: tuple[str, ...]) -> int:
        """Index of the block instance at `scope` in `self.instances`, generating it (children first)."""
        if scope in self.instance_index:
            return self.instance_index[scope]
        for child in self.children.get(scope, []):
            if self.ir.scopes[child].shares is None:
                self._instance(child)
        info = self.ir.scopes[scope]
        key = self._leaf_key(scope)
        made = self.leaf_bodies.get(key) if key is not None else None
        if made is None:
            body, args = self._body(scope)
            init = body.sequence(args)
            if init is not None:  # an nn.Sequential: no forward of its own
                forward = []
            else:
                init = body.container()
                forward = [body.resolve(line) for line in body.lines]
            size = len(forward) + body.unrolled if forward else 0
            made = (init or body.init_statements(info.lists), forward, args, size, frozenset(body.kept))
            if key is not None:
                self.leaf_bodies[key] = made
        inputs, _ = self._boundary(scope)
        values: dict[str, SpecValue] = dict(info.number_values)
        if len(inputs) == 1:
            shape = self.ir.node(inputs[0].node).out_shapes[inputs[0].index]
            if shape:
                values.setdefault(_IN_CHANNELS, shape[0])
        init, forward, args = list(made[0]), list(made[1]), list(made[2])
        self.instances.append(_Instance(scope, info.block or "block", init, forward, args, values, size=made[3],
                                        kept=made[4], ir=self.ir, input=inputs[0].node if len(inputs) == 1 else None,
                                        definitions=dict(info.local_definitions), params=info.params,
                                        arguments=info.arguments, conditions=info.conditions,
                                        defaults=info.defaults))
        self.instance_index[scope] = len(self.instances) - 1
        return len(self.instances) - 1

    def _leaf_key(self, scope: tuple[str, ...]) -> tuple[object, ...] | None:
        """What the class body of a block instance that holds no block instance is a function of: per
        layer, its name within the instance, op, attributes (identical layers share theirs) and input
        shapes, where each input comes from (a layer of the instance, or which of the instance's
        inputs), and which layers read it, inside or (which outputs) outside; the lists the
        instance builds; and its block (where a layer may overwrite an input: _dies_here). Instances
        of one key have one body (a residual stack's blocks: it is made once). None where the body
        reads more: a shared instance, or one holding shared layers."""
        info = self.ir.scopes[scope]
        if self.children.get(scope) or info.shares is not None or scope in self.applications:
            return None
        prefix = len(".".join(parts(scope))) + 1
        members = self.members.get(scope, [])
        inside = {node.name for node in members}
        ins: dict[Port, int] = {}  # the ports read from outside, in order (_boundary's)
        outs: list[Port] = []  # the ports read outside
        layers: list[object] = [info.lists, info.block]  # the block: see _dies_here
        for node in members:
            if node.shares is not None or node.name in self.shared_from:
                return None
            sources = tuple((p.node[prefix:], p.index) if p.node in inside else (None, ins.setdefault(p, len(ins)))
                            for p in node.inputs)
            readers: list[str | tuple[int, ...]] = []
            for c in self.ir.consumers(node.name):
                if c.name in inside:
                    readers.append(c.name[prefix:])
                else:
                    read = tuple(p.index for p in c.inputs if p.node == node.name)
                    outs.extend(Port(node.name, k) for k in read)
                    readers.append(read)
            layers.append((node.name[prefix:], node.op, id(node.attrs), self.ir.in_shapes_key(node), sources,
                           tuple(readers)))
        if scope not in self.boundaries:
            self.boundaries[scope] = list(ins), sorted(set(outs), key=lambda p: (self.order[p.node], p.index))
        return tuple(layers)

    def _classes(self) -> list[_Class]:
        """Group the block instances into classes: instances of one block whose code differs only in
        constants (numbers and booleans, their child blocks' arguments included) share a class, the
        differing constants becoming its constructor arguments (named after the block's parameters
        where values agree); structures that only lack parts of a fuller one — submodules it applies
        in place, the tail of its forward (a residual connection) — join that one's class, with a
        flag per part. Classes are made level by level, children first: a structure knows its
        children by their classes."""
        level = self._levels()
        top = max(level, default=0) + 1  # a family's networks: one level, above every block
        level = [top if inst.compress else lvl for inst, lvl in zip(self.instances, level, strict=True)]
        classes: list[_Class] = []
        class_of: dict[int, int] = {}
        calls: dict[int, str] = {}
        class_names = set(self.locals_reserved)
        signatures: dict[str, list[str]] = {}
        done: set[int] = set()  # the networks of the families written from the spec (FamilyClass)
        for depth in sorted(set(level)):
            if depth == top:
                self._add_network_inits(classes)
                done = self._add_computed_families(classes, class_of, calls, class_names, signatures)
            self._forward_numbers_as_parameters([i for i, lvl in enumerate(level) if lvl == depth], class_of)
            keys: dict[_Structure, int] = {}
            structures: list[_Structure] = []
            members: dict[int, list[int]] = {}
            for index, inst in enumerate(self.instances):
                if level[index] != depth or index in done:
                    continue
                inst = self._with_repeat_loops(index, calls)
                refs = (self._resolved(index, calls) if inst.compress else
                        [_INSTANCE_REF.sub(lambda m: f"__C{class_of[int(m[1])]}__", line) for line in inst.init])
                structure = _Structure(inst.block, tuple(self.templates(refs, self.keyword_defaults)[0]),
                                       tuple(inst.args), tuple(inst.forward), inst.size, inst.kept)
                key = keys.setdefault(structure, len(structures))
                if key == len(structures):
                    structures.append(structure)
                members.setdefault(key, []).append(index)
            groups = _groups(structures)
            merged = self._alternative_classes(groups, structures, members, calls, class_names, signatures)
            for g, group in enumerate(groups):
                if merged.get(g, True) is None:
                    continue  # the second side of a class made of alternatives
                made = [merged.get(g) or self._make_class(group, structures, members, calls, class_names, signatures)]
                # A family class takes the family's parameters and flags for its networks' outputs.
                other_parts = any(not part.outputs for part in made[0].parts)
                if (made[0].unnamed or other_parts) and self.instances[made[0].members[0][0]].compress:
                    made = [cls for key, _, _, _ in group.members for cls in self._family_classes(
                        key, structures, members[key], calls, class_names, signatures)]
                for cls in made:
                    self._name_class(cls, calls, class_names, signatures)
                    class_of.update((i, len(classes)) for i, _, _ in cls.members)
                    classes.append(cls)
        return classes

    def _alternative_classes(self, groups: list[_Group], structures: list[_Structure], members: dict[int, list[int]],
                             calls: dict[int, str], class_names: set[str], signatures: dict[str, list[str]]
                             ) -> dict[int, _Class | None]:
        """The classes that serve two groups of one block as the two sides of an `if` the block's body
        tests (`_alternatives`), by the first group's index, the second's mapped to None. Only a block
        with exactly two classes otherwise, and only where a condition the spec tests tells the two
        apart: where none does, the two are different modules (torchvision's RetinaNet classification
        and regression heads) and stay two classes."""
        of_block: dict[str, list[int]] = {}
        for g, group in enumerate(groups):
            of_block.setdefault(structures[group.full].block, []).append(g)
        found: dict[int, _Class | None] = {}
        for pair in of_block.values():
            if len(pair) != 2 or any(self.instances[i].compress for g in pair for i in members[groups[g].full]):
                continue
            first, second = (self._grouped(groups[g], structures, members, calls) for g in pair)
            cls = _alternatives(first, second, *(self._origins(members[groups[g].full][0]) for g in pair))
            if cls is None:
                continue
            cls.parameterize(self.instances, class_names, signatures, self.keyword_defaults, self.spec_params)
            if len(cls.parts) - 1 in cls.tests:
                found[pair[0]], found[pair[1]] = cls, None
        return found

    def _origins(self, index: int) -> dict[str, tuple[Span, ...]]:
        """Where in the spec the submodules of instance `index` come from, by their names inside it
        (`conv_2`, `extra.0.1`): the spans of the calls that made their layers and child blocks (a
        block's own layers and its call site). Two classes' statements or forward lines alike in text
        are one layer of the spec only if they come from the same calls (not the same auto-name,
        `conv_2`, that a layer of a branch and one after it take in the two)."""
        inst = self.instances[index]
        ir = inst.ir or self.ir
        prefix = ".".join(parts(inst.scope)) + "."
        found: dict[str, list[Span]] = {}
        named = [(node.name, node.span) for node in ir.nodes("op")]
        named += [(".".join(parts(path)), info.span) for path, info in ir.scopes.items()]
        for name, span in named:
            if name.startswith(prefix):
                components = name[len(prefix):].split(".")
                for k in range(1, len(components) + 1):
                    found.setdefault(".".join(components[:k]), []).append(span)
        return {name: tuple(spans) for name, spans in found.items()}

    def _levels(self) -> list[int]:
        """Each instance's level: above its children's, and the same for every instance of one block
        (the highest any has), so that the instances that build a child block in some calls only
        (EfficientDet's `to_width`, downsampling where the sizes differ) meet the others, and lack it
        as an optional part, instead of making a class of their own one level lower."""
        kids = [[int(k) for k in _INSTANCE_REF.findall("\n".join(inst.init))] for inst in self.instances]
        nesting: list[int] = []
        for k in kids:  # children before parents
            nesting.append(1 + max((nesting[c] for c in k), default=-1))
        of_block = [not inst.compress for inst in self.instances]  # not a family's network (see _classes)
        level = list(nesting)
        for _ in range(len({inst.block for inst in self.instances}) + 2):  # a level only grows
            highest: dict[str, int] = {}
            for inst, lvl, own in zip(self.instances, level, of_block, strict=True):
                if own:
                    highest[inst.block] = max(highest.get(inst.block, 0), lvl)
            unified = [highest[inst.block] if own else lvl for inst, lvl, own in zip(self.instances, level, of_block,
                                                                                       strict=True)]
            if unified == level:
                return level
            for i, k in enumerate(kids):  # a parent above its children again
                unified[i] = max(unified[i], 1 + max((unified[c] for c in k), default=-1))
            level = unified
        return nesting  # blocks nested in each other both ways (through block arguments)

    def _forward_buckets(self, indices: list[int], class_of: dict[int, int]) -> Iterable[list[_Numbered]]:
        """The instances (with their forwards' numbers) that are alike but for those numbers, by group;
        each distinct forward read once (a stack's instances share theirs). A group whose statements
        and forward lines are those of a fuller group, less some, joins it (Inception-ResNet's last
        `block8`: another scale, and no ReLU after the sum), its numbers placed by the lines they are on.
        A child block counts by its class (`class_of`), as in the structures TorchCodegen._classes compares."""
        buckets: dict[_BucketKey, list[tuple[int, list[_Number]]]] = {}
        read: dict[tuple[str, ...], tuple[list[_Number] | None, tuple[str, ...]]] = {}
        for index in indices:
            inst = self.instances[index]
            forward = tuple(inst.forward)
            if forward not in read:
                found = _forward_numbers(inst.forward)
                read[forward] = (found, tuple(_masked(line, [n for n in found or () if n.line == k])
                                              for k, line in enumerate(forward)))
            numbers, masked = read[forward]
            if numbers is not None and not inst.compress:
                init = tuple(_INSTANCE_REF.sub(lambda m: f"__C{class_of.get(int(m[1]), m[0])}__", line)
                             for line in inst.init)
                key = (inst.block, tuple(inst.args), inst.kept, init, masked)
                buckets.setdefault(key, []).append((index, numbers))
        by_block: dict[tuple[str, tuple[str, ...], frozenset[str]], list[_BucketKey]] = {}
        for key in buckets:
            by_block.setdefault(key[:3], []).append(key)
        out: list[list[_Numbered]] = []
        for keys in by_block.values():
            fullest = max(keys, key=lambda k: (len(k[4]), len(k[3])))
            places = {k: _lines_within(k, fullest) for k in keys}
            joined = all(p is not None for p in places.values())
            for group in [keys] if joined else [[k] for k in keys]:
                out.append([_Numbered(index, numbers, _number_places(numbers, places[key] if joined else None,
                                                                     buckets[fullest][0][1]))
                            for key in group for index, numbers in buckets[key]])
        return out

    def _forward_numbers_as_parameters(self, indices: list[int], class_of: dict[int, int]) -> None:
        """Instances of a block whose forwards differ only in numbers that are, in each, the value of
        one of the block's parameters (SSD's `reshape(-1, columns)`, 4 or 91 columns) keep that
        parameter as an attribute and read it in the forward (`self.columns = columns`), so that
        they share a class, as a hand-written `PerBox(columns)` would. A number two parameters
        could give, or one none gives, stays a number and its instances keep classes of their own."""
        for bucket in self._forward_buckets(indices, class_of):
            forwards = {tuple(self.instances[m.instance].forward) for m in bucket}
            if len(forwards) < 2:
                continue
            insts = [self.instances[m.instance] for m in bucket]
            attributes = {a for inst in insts for a in _attributes(inst.init)}
            params = [p for p in insts[0].params if p not in attributes]
            names: dict[int, str] = {}  # place among the fullest forward's numbers → parameter
            for place in sorted({p for m in bucket for p in m.places}):
                column = [(inst.values, m.numbers[m.places.index(place)].value)
                          for m, inst in zip(bucket, insts, strict=True) if place in m.places]
                if len({(type(v), v) for _, v in column}) == 1:
                    continue
                fits = _fitting([v for _, v in column], [values for values, _ in column], params)
                if len(fits) != 1:
                    break
                names[place] = fits[0]
            else:
                for m, inst in zip(bucket, insts, strict=True):
                    own = {k: names[p] for k, p in enumerate(m.places) if p in names}
                    self.instances[m.instance] = _reading_parameters(inst, m.numbers, own)

    def _with_repeat_loops(self, index: int, calls: dict[int, str]) -> _Instance:
        """The instance with its repeats of blocks written as loops (see _repeat_loop); a family's
        network has its own loops (_loop_runs)."""
        inst = self.instances[index]
        if not inst.compress and any("nn.Sequential(__I" in line for line in inst.init):
            inst = self.instances[index] = replace(inst, init=[
                self._repeat_loop(line, calls) if "nn.Sequential(__I" in line else line for line in inst.init])
        return inst

    def _repeat_loop(self, line: str, calls: dict[int, str]) -> str:
        """A `repeat` of block instances as the loop the spec writes, once the blocks' constructions
        are known (`calls`): `nn.Sequential(*(DarkResidual(128, 64) for _ in range(2)))`, or, where
        the first differs from the rest (a stage's downsampling block), `nn.Sequential(Bottleneck(…),
        *(Bottleneck(…) for _ in range(1, 4)))`; the count a constant, which becomes the block's
        parameter, so that stages of other lengths share a class. Other lists stay as they are."""
        def loop(m: re.Match[str]) -> str:
            refs = [int(k) for k in _INSTANCE_REF.findall(m[1])]
            parents = {self.instances[k].scope[:-1] for k in refs}
            ir = self.instances[refs[0]].ir or self.ir  # in a family module, the instance's own network's
            scope = ir.scopes.get(parents.pop()) if len(parents) == 1 else None
            if scope is None or scope.kind != "repeat":
                return m[0]
            made = [calls[k] for k in refs]
            first, n = _instance_ref(refs[0]), len(refs)
            if made.count(made[0]) == n:
                return f"nn.Sequential(*({first} for _ in range({n})))"
            if n > 1 and made.count(made[1]) == n - 1:
                return f"nn.Sequential({first}, *({_instance_ref(refs[1])} for _ in range(1, {n})))"
            return m[0]

        return _REPEATED.sub(loop, line)

    # --- a family's network class computed from its parameters
    def _add_computed_families(self, classes: list[_Class], class_of: dict[int, int], calls: dict[int, str],
                               class_names: set[str], signatures: dict[str, list[str]]) -> set[int]:
        """The classes of the families FamilyClass writes, added; their networks."""
        done: set[int] = set()
        writer = FamilyClass(self.instances, self.templates, self.keyword_defaults)
        for indices in self._differing_families(calls):
            cls = writer.write(indices, [self.family[i][0] for i in indices], classes, class_names)
            if cls is not None:
                self._name_class(cls, calls, class_names, signatures)
                class_of.update((i, len(classes)) for i in indices)
                classes.append(cls)
                done.update(indices)
        return done

    def _differing_families(self, calls: dict[int, str]) -> list[list[int]]:
        """The networks (with their probes) of each family built through a stage table that has two
        networks or more, or one and a probe (mobilenet_v2 and its `width`): what FamilyClass
        may write as one class."""
        families: dict[str, list[int]] = {}
        for index, inst in enumerate(self.instances):
            if inst.compress:
                families.setdefault(inst.block, []).append(index)
        out = []
        for indices in families.values():
            g = self.family[indices[0]][0]
            # a table's rows are the network's `stage1`, … or entries of a list of the network's (`features.1`)
            tables = bool(g.ir.list_rows) or any(info.table is not None and (len(path) == 1 or (
                len(path) == 2 and (path[0],) not in g.ir.scopes)) for path, info in g.ir.scopes.items())
            if len(indices) > 1 and tables:
                out.append(indices)
        return out

    def _add_network_inits(self, classes: list[_Class]) -> None:
        """A family's networks: each one's `init` statements join its constructor, now that its
        blocks' classes are named (the statements test them: `isinstance(m, Bottleneck)`)."""
        owned = _own_inits(classes, [(g.ir, {self.instances[i].scope: cls.name for cls in classes
                                             for i, _, _ in cls.members if start <= i < stop},
                                      {self.instances[i].scope: self.instances[i] for i in range(start, stop)})
                                     for g, start, stop in self.family.values()])
        for index, (g, start, stop) in self.family.items():
            class_of = {self.instances[i].scope: cls.name for cls in classes for i, _, _ in cls.members
                        if start <= i < stop}
            inst = self.instances[index]
            file = os.path.basename(g.info.file)
            extra = init_statements(g.ir, class_of, file, owned)
            # A flag every network of the family sets alike (`zero_init_residual`) that only adds init
            # statements: those statements, under the flag, which the family class takes.
            for name, value in self._common(g).items():
                other = g.network.variant({name: not value}) if type(value) is bool else None
                if other is None or module_signature(other.ir) != module_signature(g.ir):
                    continue  # the flag changes layers too: the class keeps it fixed
                more = init_statements(other.ir, class_of, file, owned)
                if len(more) > len(extra) and more[:len(extra)] == extra:
                    added = more[len(extra) + (not extra):]  # without a second "# Initialization" line
                    extra = [*extra, f"if {'not ' if value else ''}{name}:", *("\t" + line for line in added)]
            self.instances[index] = replace(inst, init=[*inst.init, *extra])

    def _common(self, g: TorchCodegen) -> dict[str, bool | int | float]:
        """The parameters of g's family that every network of the file's family sets alike."""
        return self.common_params.get(g.info.family, {})

    def _family_classes(self, key: int, structures: list[_Structure], indices: list[int], calls: dict[int, str],
                        class_names: set[str], signatures: dict[str, list[str]]) -> list[_Class]:
        """The classes of a family's networks of one structure: a family class takes the family's
        parameters, nothing else, so networks join a class while those give every size that differs;
        the others get classes of their own."""
        def build(members: list[int]) -> _Class:
            return self._make_class(_Group(key, ((key, frozenset(), None, None),)), structures, {key: members},
                                    calls, class_names, signatures)

        shared: list[list[int]] = []
        for index in indices:
            joined = next((s for s in shared if not build([*s, index]).unnamed), None)
            if joined is None:
                shared.append([index])
            else:
                joined.append(index)
        # A probe that joins no network of its own is no class (its constants are not the parameters).
        return [build(members) for members in shared if not all(self.instances[i].probe for i in members)]

    def _resolved(self, index: int, calls: dict[int, str]) -> list[str]:
        """An instance's constructor statements with its children's constructions; a family
        network's with each run of equal blocks as one loop."""
        inst = self.instances[index]
        resolved = [_resolve_instances(line, calls) for line in inst.init]
        if not inst.compress:
            return resolved
        out = []
        for line in resolved:  # a network's statements are asked for again (grouped, then made): once each
            looped = self.loops.get(line)
            if looped is None:
                looped = self.loops[line] = _loop_runs(line)
            out.append(looped)
        return out

    def _make_class(self, group: _Group, structures: list[_Structure], members: dict[int, list[int]],
                    calls: dict[int, str], class_names: set[str],
                    signatures: dict[str, list[str]]) -> _Class:
        cls = self._grouped(group, structures, members, calls)
        cls.parameterize(self.instances, class_names, signatures, self.keyword_defaults, self.spec_params)
        return cls

    def _grouped(self, group: _Group, structures: list[_Structure], members: dict[int, list[int]],
                 calls: dict[int, str]) -> _Class:
        """The class of a group, not yet parameterized: the full structure's statements and forward,
        with its parts, and each member's constants by statement."""
        full = structures[group.full]
        in_place = _in_place(full)
        lacking = {a for _, d, _, _ in group.members for a in d}
        entries = sorted(int(a[1:]) for a in lacking if a.startswith("\x01"))  # list entries: see _match
        dropped = sorted(lacking - {f"\x01{s}" for s in entries}, key=lambda a: in_place[a])
        tail = next((t for _, _, t, _ in group.members if t is not None), None)
        outputs = next((c for _, _, _, c in group.members if c is not None), None)
        parts = ([_Part(a) for a in dropped] + [_Part(f"\x01{s}", appended=s) for s in entries]
                 + ([_Part("tail", tail=True)] if tail is not None else []))
        if outputs is not None:
            parts.append(_Part(ast.literal_eval(outputs.keys[0]), outputs=outputs.keys))
        forward = (_cut_forward(full, outputs, len(parts) - 1) if outputs is not None
                   else _merged_forward(full, parts, tail, {in_place[a]: k for k, a in enumerate(dropped)}))
        cls = _Class(full.block, [], list(full.args), forward, parts)
        attrs = _statement_attributes(list(full.template))
        controls: list[set[int]] = []  # the statements each part builds
        for part in parts:
            cut = _reduce(full, frozenset(), tail) if part.tail else None
            if part.outputs and outputs is not None:
                controls.append(set(outputs.statements))
            elif part.appended is not None:
                controls.append({part.appended})
            else:
                controls.append(cut[1] if cut is not None else {s for s, a in enumerate(attrs) if a == part.name})
        cls.optional = {s: k for k, statements in enumerate(controls) for s in statements}
        for key, left_out, cut_at, cut_outputs in group.members:
            present = tuple(cut_at is None if part.tail else cut_outputs is None if part.outputs
                            else part.name not in left_out for part in parts)
            removed = {s for statements, has in zip(controls, present, strict=True) if not has for s in statements}
            for index in members[key]:
                template, constants = self.templates(self._resolved(index, calls), self.keyword_defaults)
                if key == group.full:
                    cls.template = template
                it = iter(constants)
                spread: list[list[Constant] | None] = [None if s in removed else next(it)
                                                       for s in range(len(full.template))]
                cls.members.append((index, spread, present))
        cls.members.sort(key=lambda m: m[0])
        return cls

    def _name_class(self, cls: _Class, calls: dict[int, str], class_names: set[str],
                    signatures: dict[str, list[str]]) -> None:
        """Name a class (a family network alone: after the network) and its members' constructions."""
        first = self.instances[cls.members[0][0]]
        # A family's first class is named after the family, any other after its first network; both
        # as the spec's title spells the family (`ResNet`, `ResNet50`: see family_class_name).
        real = [i for i, _, _ in cls.members if not self.instances[i].probe]
        own = first.compress and (len(real) == 1 or any(
            self.instances[c.members[0][0]].block == cls.block for c in self.made))
        candidate = camel(cls.block)
        if first.compress:
            family = self.family_names.get(cls.block, candidate)
            net = first.scope[0]
            suffix = net[len(cls.block):] if net.startswith(cls.block) else None
            candidate = camel(net) if own and suffix is None else family + (camel(suffix) if own and suffix else "")
        cls.name = self.classes.create(candidate)
        self.made.append(cls)
        class_names.add(cls.name)
        for name in cls.params:
            self.classes.reserve(name)
        if not first.compress:  # a family's network class takes its own defaults (_common_arguments)
            cls.merge_pairs()
            cls.take_defaults([self.instances[i] for i, _, _ in cls.members])
            if cls.defaults:
                self.defaulted[cls.name] = cls
        signatures[cls.name] = cls.params
        self.spec_params[cls.name] = cls.spec_params
        calls.update(cls.calls())

    def _method_lines(self, init: list[str], args: list[str], forward: list[str],
                      params: tuple[str, ...] = ()) -> list[str]:
        # A signature too long for one line is broken like any other call (black's style).
        lines = [*wrap(f"def __init__({', '.join(['self', *params])})", INDENT, " -> None:"),
                 f"{INDENT * 2}super().__init__()"]
        for statement in init:  # a leading tab: inside the `if` above
            if "for _ in range(1" in statement:
                statement = _one_pass_loops(statement)
            statement = self._plain_sizes(statement)
            if self.defaulted:
                statement = _by_keyword(statement, self.defaulted)
            lines.extend(wrap(statement.lstrip("\t"), INDENT * (2 + len(statement) - len(statement.lstrip("\t")))))
        typed = ", ".join(f"{a}: torch.Tensor" for a in args)
        lines += ["", *wrap(f"def forward(self, {typed})", INDENT, f" -> {_returns(forward)}:")]
        for line in forward:
            lines.extend(wrap(line.lstrip("\t"), INDENT * (2 + len(line) - len(line.lstrip("\t")))))
        return lines

    def _plain_sizes(self, statement: str) -> str:
        """`statement` with its torch layers' sizes of two equal elements written once (`_scalar_pairs`),
        for every statement the file writes: the network's own layers come here as `torch_init` wrote
        them, a family class's as FamilyClass wrote them (a block class's were written so already:
        _Class.merge_pairs reads them). Each distinct call worked out once (a 10⁵-layer chain's are one)."""
        head, rest = _split_target(statement)
        plain = self.sizes_written.get(rest)
        if plain is None:
            plain = self.sizes_written[rest] = _scalar_pairs(rest)
        return head + plain

    def init_scheme(self, classes: list[_Class]) -> list[str]:
        """The spec's `init` statements: statements run at the end of the network's __init__."""
        class_of = {self.instances[i].scope: cls.name for cls in classes for i, _, _ in cls.members}
        owned = _own_inits(classes, [(self.ir, class_of, {inst.scope: inst for inst in self.instances})])
        return init_statements(self.ir, class_of, os.path.basename(self.info.file), owned)

    # --- the file
    def generate(self) -> GeneratedSource:
        body, args = self._body(())
        classes = self._classes()
        calls = dict(call for cls in classes for call in cls.calls())
        net_init = [_resolve_instances(line, calls) for line in body.init_statements()] + self.init_scheme(classes)
        net_lines = self._method_lines(net_init, args, _reuse_names([body.resolve(line) for line in body.lines], args,
                                                                  frozenset(body.kept)))
        out = self._header()
        code: list[list[str]] = []
        first_of_block: dict[str, _Class] = {}
        for cls in sorted(classes, key=lambda c: c.members[0][0]):  # children before parents
            code.append(self._class_lines(cls, first_of_block.setdefault(cls.block, cls)))
        code.append([f"class {self.net_class}(nn.Module):", *self._docstring(), "", *net_lines])
        # Helpers that some class constructs (an op held as a bare parameter needs none).
        used = "\n".join("\n".join(c) for c in code)
        helpers = _helpers_used(self.helpers, used)
        code = [h.splitlines() for h in [*helpers.values(), *_function_helpers(used)]] + code
        text = "\n\n\n".join("\n".join(c) for c in code)
        out += ["", *_imports(text), "", "", text, ""]
        return GeneratedSource("\n".join(out), self.net_class, tuple(helpers))

    def generate_family(self, others: list[TorchCodegen]) -> GeneratedSource:
        """One module for this network and `others` (the networks of one file): every block class
        once, a class per family of networks that differ only in the family's parameters, and a
        function per network that builds it (`def resnet50(**kwargs: Any) -> ResNet50`); the parameters
        every network sets alike are keyword arguments with that default (`resnet50(classes=10)`), and
        a boolean under which networks have more outputs is a flag (`InceptionV3(aux=False)`)."""
        gens = [self, *others]
        for g in gens:
            g.peers = gens
        self.helpers = _helper_definitions(node.op_class.torch_helper for g in gens for node in g.ir.nodes("op"))
        self.keyword_defaults = {k: v for g in gens for k, v in g.keyword_defaults.items()}
        self.classes = Namespace(frozenset(self.helpers))
        self.locals_reserved = frozenset(self.helpers)
        pooled: list[_Instance] = []
        tops: list[int] = []
        self._find_common(gens)
        networks: list[_Probed] = []
        for g in gens:
            title = linecache.getline(g.info.file, 1)
            self.family_names.setdefault(g.info.family, family_class_name(
                g.info.family, title if title.startswith("#") else ""))
            body, args = g._body(())
            offset = len(pooled)

            def shift(line: str, offset: int = offset) -> str:
                return _shift(line, offset)

            pooled += [replace(inst, init=[shift(line) for line in inst.init]) for inst in g.instances]
            values = {k: v for k, raw in g.info.parameters.items() if (v := _spec_value(raw)) is not None}
            tops.append(len(pooled))
            self.family[len(pooled)] = (g, offset, len(pooled))
            init = body.init_statements()  # rendered once: a 10^5-layer network's is 10^5 constructors
            pooled.append(_Instance((g.info.name,), g.info.family, [shift(line) for line in init],
                                    [body.resolve(line) for line in body.lines], args, values, compress=True,
                                    size=len(body.lines) + body.unrolled))
            networks.append(_Probed(g, offset, len(pooled) - 1, pooled[-1], init, list(g.instances)))
        classes = self._classes_with_probes(pooled, networks)
        pooled = self.instances
        code: list[list[str]] = []
        first_of_block: dict[str, _Class] = {}
        nets = [c for c in classes if pooled[c.members[0][0]].compress]
        defaults = {c.name: self._common_arguments(c) for c in nets}
        for cls in sorted(classes, key=lambda c: c.members[0][0]):
            if cls in nets:
                continue
            code.append(self._class_lines(cls, first_of_block.setdefault(cls.block, cls)))
        for cls in nets:
            code.append(self._network_class_lines(cls, gens, tops, defaults[cls.name]))
        functions: list[str] = []
        for g, top in zip(gens, tops, strict=True):
            cls = next(c for c in nets if any(i == top for i, _, _ in c.members))
            m = next(k for k, (i, _, _) in enumerate(cls.members) if i == top)
            # An argument at the class's default is left to it (`resnet50`: `layers=` alone).
            kwargs = [f"{p}={_source(v)}" for p, v in zip(cls.params, cls.arguments[m], strict=True)
                      if defaults[cls.name].get(p) != _source(v)]
            functions.append("\n".join([f"def {g.info.name}(**kwargs: Any) -> {cls.name}:",
                                        *wrap(f"return {cls.name}({', '.join([*kwargs, '**kwargs'])})", INDENT)]))
        used = "\n".join("\n".join(c) for c in code)
        helpers = _helpers_used(self.helpers, used)
        code = ([h.splitlines() for h in [*helpers.values(), *_function_helpers(used)]] + code
                + [f.splitlines() for f in functions])
        text = "\n\n\n".join("\n".join(c) for c in code)
        imports = _imports(text)
        spec = json.dumps(os.path.basename(self.info.file))
        header = [f"# Generated by archdsl from {spec}: {len(gens)} network{'s' * (len(gens) > 1)}, one function each.",
                  "# Do not edit: change the spec and run `archdsl compile` again."]
        out = [*header, "", *imports, "", "", text, ""]
        return GeneratedSource("\n".join(out), ", ".join(c.name for c in nets), tuple(helpers))

    def _network_class_lines(self, cls: _Class, gens: list[TorchCodegen], tops: list[int],
                             defaults: dict[str, str]) -> list[str]:
        """A family's network class: what it builds, and why it is a class of its own if it is;
        `defaults`: its arguments that every network sets alike, with that value as default."""
        names = [gens[tops.index(i)].info.name for i, _, _ in cls.members if i in tops]
        doc = safe_comment(f"The networks {', '.join(names)}." if len(names) > 1 else f"The network {names[0]}.",
                           WIDTH - 14)
        why = []
        first = next(c for c in self.made if c.block == cls.block)
        if first is not cls:
            differs = "sizes" if first.template == cls.template else "layers"
            why = [f"# Not {first.name}: its {differs} differ from that class's in more than the family's parameters."]
        common = self._common(gens[tops.index(cls.members[0][0])])
        fixed = {p: reason for name in names for p, reason in self.fixed.get(name, {}).items() if p not in cls.params}
        for p, reason in fixed.items():  # a parameter whose probe failed (see _classes_with_probes)
            text = safe_comment(f"{p} stays {_source(common[p])}, not an argument: {reason}.", 2 * WIDTH)
            why += textwrap.wrap(text, WIDTH, initial_indent="# ", subsequent_indent="# ")
        params = tuple(f"{p}: {t}" + (f" = {defaults[p]}" if p in defaults else "")
                       for p, t in zip(cls.params, cls.types(), strict=True))
        lines = self._method_lines(cls.init, cls.args, cls.forward, params)
        return [*why, f"class {cls.name}(nn.Module):", f'{INDENT}"""{doc}"""', "", *lines]

    def _find_common(self, gens: list[TorchCodegen]) -> None:
        """Each family's parameters (numbers and flags) that all its networks in the file set alike:
        `classes`, `zero_init_residual`, a dropout rate. The family class takes them as keyword
        arguments defaulting to that value (torchvision's `resnet50(num_classes=10)`)."""
        by_family: dict[str, list[TorchCodegen]] = {}
        for g in gens:
            by_family.setdefault(g.info.family, []).append(g)
        for family, members in by_family.items():
            taken: dict[str, set[tuple[type, object]]] = {}
            for m in members:
                for k in m.info.defaulted:  # a list or a layer is no default a class takes (and no set member)
                    v = m.info.parameters.get(k)
                    taken.setdefault(k, set()).add((type(v), v if isinstance(v, bool | int | float) else repr(v)))
            # One value wherever the spec's default was taken (a default may read other parameters).
            self.spec_defaults[family] = {k: v for k, values in taken.items() if len(values) == 1
                                          and isinstance(v := next(iter(values))[1], bool | int | float)}
            first = members[0].info.parameters
            self.common_params[family] = {
                k: v for k, v in first.items()
                if isinstance(v, bool | int | float) and Namespace().create(k) == k  # a legal, unshadowing name
                and all(type(m.info.parameters.get(k)) is type(v) and m.info.parameters.get(k) == v for m in members)}

    def _classes_with_probes(self, pooled: list[_Instance], networks: list[_Probed]) -> list[_Class]:
        """The classes of the instances `pooled` and of the networks' probes (see _probe), which join
        their networks' classes, where a common parameter's constants become it. A probe whose blocks
        changed brings its block instances, which join the blocks' classes, where the constants that
        changed become the blocks' parameters; where it joins no network's class after all, the
        blocks' classes are made again without it (else they would take as arguments what every
        network sets alike). A network's probe changes all its common numbers at once; where that
        fails (mobilenet_v2: its channels follow `width` through `divisible`), one probe per number
        takes its place, and the numbers whose own probe fails stay fixed (`self.fixed`, and a
        comment in the generated file says which and why)."""
        family = dict(self.family)
        probes: list[_ProbeRun] = []
        for n, net in enumerate(networks):
            numbers = [k for k, v in self._common(net.generator).items() if type(v) is not bool]
            probes += self._probes(n, net, numbers, alone=False)
        while True:
            self.instances, self.family, self.made = list(pooled), dict(family), []
            self.classes = Namespace(frozenset(self.helpers))
            placed: dict[int, int] = {}  # a probe → its network instance
            for k, run in enumerate(probes):
                offset, stop = networks[run.network].offset, networks[run.network].index
                if run.own_blocks:
                    offset, stop = len(self.instances), len(self.instances) + len(run.generator.instances)
                    self.instances += [replace(b, init=[_shift(line, offset) for line in b.init], probe=True)
                                       for b in run.generator.instances]
                placed[k] = len(self.instances)
                self.family[len(self.instances)] = (run.generator, offset, stop)
                self.instances.append(replace(run.instance, init=[_shift(line, offset) for line in run.instance.init]))
            classes = self._classes()
            members = {i for cls in classes for i, _, _ in cls.members}
            lost = [k for k, i in placed.items() if i not in members]
            if not lost:
                return classes
            kept = [run for k, run in enumerate(probes) if k not in lost]
            for k in lost:
                run = probes[k]
                if len(run.changed) > 1:  # one probe per number instead
                    kept += self._probes(run.network, networks[run.network], list(run.changed), alone=True)
                else:
                    self._fix(networks[run.network], run.changed,
                              "it changes sizes in ways the class cannot compute from its arguments")
            probes = sorted(kept, key=lambda run: run.order)

    def _probes(self, n: int, net: _Probed, numbers: list[str], alone: bool) -> list[_ProbeRun]:
        """The probes of network n (`net`) over `numbers`: one changing them all, or (`alone`) one
        per number; a number whose probe fails is fixed (see _fix)."""
        out: list[_ProbeRun] = []
        if not numbers:  # nothing to lift: no probe
            return out
        for group in ([[k] for k in numbers] if alone or len(numbers) == 1 else [numbers]):
            probe = self._probe(net, group)
            if isinstance(probe, str):
                if len(group) > 1:
                    return self._probes(n, net, numbers, alone=True)
                self._fix(net, tuple(group), probe)
                continue
            order = (n, numbers.index(group[0]) + 1 if alone or len(numbers) == 1 else 0)
            out.append(_ProbeRun(n, tuple(group), order, *probe))
        return out

    def _fix(self, net: _Probed, names: tuple[str, ...], why: str) -> None:
        """Record that the network's numbers `names` stay fixed at its values, and why."""
        for name in names:
            self.fixed.setdefault(net.generator.info.name, {})[name] = why

    def _probe(self, net: _Probed, names: list[str]) -> tuple[TorchCodegen, _Instance, bool] | str:
        """A network elaborated again with its common numbers `names` changed (`classes` 1000 →
        1001): the constants that change with them are those parameters. Also returned: whether its
        block instances changed (`InceptionAux(classes)`: then the probe brings its own, which join
        the blocks' classes, where the constants that changed become the blocks' parameters). The
        probe's statements refer to its block instances as `net.unshifted` refers to the network's.
        Where the spec refuses the values or something changes besides constants, or besides
        constants that the parameters of the network or of the blocks holding them give (then the
        class keeps them fixed): why, in words."""
        g = net.generator
        numbers = self._common(g)
        changed = {k: (v + 1) / 2 if type(v) is float and 0 <= v < 1 else v + 1
                   for k, v in numbers.items() if k in names}
        other = g.network.variant(changed)
        if other is None:
            return "the spec refuses other values"
        pg = TorchCodegen(other)
        pg.peers = [*self.peers, pg]
        body, _ = pg._body(())
        kd = self.keyword_defaults
        same_blocks = [(i.scope, i.init, i.forward) for i in pg.instances] == [
            (i.scope, i.init, i.forward) for i in net.blocks]
        if len(pg.instances) != len(net.blocks):
            return "it changes how many blocks there are"
        if not same_blocks and not all(_explained(a, b, kd) for a, b in zip(net.blocks, pg.instances, strict=True)):
            return "it changes the blocks in more than the sizes their parameters give"
        init = body.init_statements()
        forward = [body.resolve(line) for line in body.lines]
        if forward != net.instance.forward or _template(init, kd)[0] != _template(net.unshifted, kd)[0]:
            return "it changes the layers, not only their sizes"
        values = {k: v for k, raw in other.info.parameters.items() if (v := _spec_value(raw)) is not None}
        return pg, replace(net.instance, init=init, values=values, probe=True), not same_blocks

    def _common_arguments(self, cls: _Class) -> dict[str, str]:
        """A family class's arguments with a default, and its source: the spec's default (`groups=1`),
        else the value every network sets alike; moved to the end of its parameters (a default
        follows the arguments without one). A flag that only its init statements read joins them."""
        first = self.instances[cls.members[0][0]]
        common = {**self.common_params.get(first.block, {}), **self.spec_defaults.get(first.block, {})}
        reads = {n for line in cls.init for n in re.findall(r"^\s*if (?:not )?(\w+):$", line)}
        for name in common:
            if name in reads and name not in cls.params:
                cls.params.append(name)
                for values in cls.arguments:
                    values.append(common[name])
        moved = [p for p in cls.params if p in common]
        order = [k for k, p in enumerate(cls.params) if p not in common] + [cls.params.index(p) for p in moved]
        cls.params = [cls.params[k] for k in order]
        cls.arguments = [[values[k] for k in order] for values in cls.arguments]
        return {p: _source(common[p]) for p in moved}

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

    def _class_lines(self, cls: _Class, first: _Class) -> list[str]:
        """The source of a block class; `first` is its block's first class, which a second one explains
        itself against."""
        # Where the block is used: each place once (a file's networks share places; probes are none).
        where = list(dict.fromkeys(".".join(parts(self.instances[i].scope)) for i, _, _ in cls.members
                                   if not self.instances[i].probe))
        more = f" and {len(where) - 4} more" if len(where) > 4 else ""
        summary = safe_comment(f"Block {cls.block}, used at {', '.join(where[:4])}{more}.", WIDTH - 14)
        doc = [f'{INDENT}"""{summary}"""']
        if first is not cls:  # a second paragraph says why
            why = safe_comment(f"A class of its own: {_difference(cls, first)}.", 2 * WIDTH)
            doc = [f'{INDENT}"""{summary}', "",
                   *textwrap.wrap(why, WIDTH - 4, initial_indent=INDENT, subsequent_indent=INDENT), f'{INDENT}"""']
        params = tuple(f"{p}: {t}" + (f" = {_source(cls.defaults[p])}" if p in cls.defaults else "")
                       for p, t in zip(cls.params, cls.types(), strict=True))
        lines = self._method_lines(cls.init, cls.args, cls.forward, params)
        if cls.template and cls.template[-1] == "super().__init__(*layers)":  # _ClassBody.sequence, .container
            own = [line for line in lines if line != f"{INDENT * 2}super().__init__()"]
            return [f"class {cls.name}(nn.Sequential):", *doc, "", *(own if cls.forward else own[:own.index("")])]
        return [f"class {cls.name}(nn.Module):", *doc, "", *lines]

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


def _mirror(port: Port, src: tuple[str, ...], dst: tuple[str, ...]) -> Port:
    """The port of `dst` (an application of a shared instance) at `port`'s place in `src`."""
    prefix = ".".join(src)
    return Port(".".join(dst) + port.node[len(prefix):], port.index)


def module_signature(ir: IR) -> tuple[object, ...]:
    """What the generated code of `ir` is made of, without generating it: each node's name, kind,
    inputs and torch text (constructor, bare parameter, forward), each scope, the outputs' names.
    Two elaborations with equal signatures compile to the same module (the input sizes may differ)."""
    nodes: list[object] = []
    # The torch text of each distinct call (op, attributes, input shapes), made once: identical
    # layers share their validated attributes (the IR keeps them alive, so their id is the key).
    texts: dict[tuple[object, ...], tuple[object, ...]] = {}
    for node in ir:
        if node.kind != "op":
            nodes.append((node.name, node.kind, node.output_name, node.inputs))
            continue
        ins = ir.in_shapes(node)
        key = (node.op, id(node.attrs), *ins)
        text = texts.get(key)
        if text is None:
            op, args = node.op_class, [f"a{k}" for k in range(len(node.inputs))]
            text = texts[key] = (op.torch_init(node.attrs, ins), op.torch_parameter(node.attrs, ins),
                                 op.torch_forward(node.attrs, ins, args, "m"))
        nodes.append((node.name, node.op, node.inputs, node.shares, *text))
    scopes = tuple((path, info.kind, info.block, info.shares) for path, info in ir.scopes.items())
    return (tuple(nodes), scopes)


def _helper_definitions(helpers: Iterable[str]) -> dict[str, str]:
    """The definitions of the ops' helpers (`Op.torch_helper`: one or more classes and functions),
    by name, each once: a helper's definitions together, in its order, the helpers by their
    first definition's name."""
    found: dict[str, tuple[str, int, str]] = {}
    for src in dict.fromkeys(h.strip() for h in helpers):
        first = ""  # the helper's first definition's name, which orders its definitions among the others
        for k, definition in enumerate(re.split(r"\n(?=\S)", src) if src else []):
            m = re.match(r"(?:class|def) (\w+)\b", definition)
            if m is None:
                raise ValueError(f"torch_helper: every top-level statement must be a class or function "
                                 f"definition, not {definition.splitlines()[0]!r}")
            first = first or m[1]
            found.setdefault(m[1], (first, k, definition.strip()))
    return {name: src for name, (_, _, src) in sorted(found.items(), key=lambda item: item[1][:2])}


def _helpers_used(helpers: dict[str, str], used: str) -> dict[str, str]:
    """Of the ops' helper definitions (`_helper_definitions`, in its order), those the code `used`
    calls or builds, and those these use in turn."""
    wanted = {n for n in helpers if _mentions(used, f"{n}(")}
    pending = list(wanted)
    while pending:
        src = helpers[pending.pop()]
        for other in helpers:
            if other not in wanted and _mentions(src, f"{other}("):
                wanted.add(other)
                pending.append(other)
    return {n: src for n, src in helpers.items() if n in wanted}

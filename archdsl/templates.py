"""Block calls elaborated once: a call whose block, argument values and input shapes were met
before in the same elaboration builds exactly the same layers, so the elaborator records what the
first such call built — its layers, scopes and names, relative to the block instance's path — as a
:class:`Template`, and every later identical call instantiates it under its own path instead of
evaluating the body again (ResNet-50's 16 bottlenecks are 8 distinct calls, EfficientNet-B7's 55
MBConv blocks 14).

Only calls that are nothing but a function of their key are recorded: no error, no shared
instance, no `init`/`output`/`expect` statement, nothing named outside the instance's own fresh
path. A call is keyed by the identity of the block definition and its file's namespace, each
argument's value with its type (`1`, `1.0` and `true` differ; a float by its `repr`, so `-0.0`
is not `0.0`), and, for input tensors, their shapes and which of them are the same tensor. A value
that carries more than that — a size read from a tensor (:class:`~archdsl.values.Dim`: it can
become an input), a shared instance, a poisoned name — makes the call unkeyable: it is always
elaborated.

A numeric parameter that the block's body reads only in op calls' arguments `x -> op(…)` that set
attributes changing no output shape (`Op.shape_free`), in calls whose arguments read nothing but
such parameters and constants (:func:`holes`: EfficientNet's `drop`, only ever `drop_path(drop)`;
a norm's `eps`), is keyed by its type alone: a call that differs in it replays
the template with those layers' attributes bound again from its own values — validated and their
output shapes checked as elaboration does, the shapes the template's own — and its scope's title
and numbers made again; where anything would differ, the call is elaborated instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from .diagnostics import Span
from .ir import IR, IRNode, Port, ScopeInfo
from .ops import Attrs, Shape, get_op, has_op
from .syntax import Arg, BlockDef, Call, CallStep, Name, Node
from .values import BlockRef, Bundle, OpRef, Partial, Tensor, Value

Path = tuple[str, ...]
# An input of a template's layer: (k, output index), k >= 0 the template's k-th layer, k < 0 the
# call's input tensor -k - 1.
Source = tuple[int, int]


class Unkeyable(Exception):
    """A call whose result may depend on more than its key: it is elaborated, never replayed."""


@dataclass(slots=True)
class Holes:
    """A block's parameters that reach only op calls' arguments (see the module's docstring), and
    those calls by their span (the span of the layers they make)."""

    params: frozenset[str]
    sites: dict[Span, CallStep]


def holes(block: BlockDef, blocks: dict[str, Any]) -> Holes | None:
    """The holes of `block` (`blocks`: the blocks its file sees, whose names a call could mean
    instead of an op's), or None when it has none; worked out once per definition and set of block
    names. Keyed by the names, not the namespace: every load of a file makes a namespace of its own
    around the same (cached) definitions, and the holes depend on nothing else of it."""
    key = (id(block), frozenset(blocks))
    known = _HOLES.get(key)
    if known is not None and known[0] is block:
        return known[1]
    if len(_HOLES) >= 1 << 12:
        _HOLES.clear()
    found = _HOLES[key] = (block, _holes(block, blocks))  # the block kept alive: its id stays its own
    return found[1]


_HOLES: dict[tuple[int, frozenset[str]], tuple[BlockDef, Holes | None]] = {}


def _holes(block: BlockDef, blocks: dict[str, Any]) -> Holes | None:
    params = {p.name for p in block.params}
    bound: set[str] = set()  # every other name the body writes: a target, a loop variable, a label
    reads: dict[str, int] = dict.fromkeys(params, 0)
    steps: list[CallStep] = []
    for node in _nodes((block.body, *(p.default for p in block.params if p.default is not None)), bound):
        if type(node) is Name and node.id in reads:
            reads[node.id] += 1
        elif type(node) is CallStep:
            steps.append(node)
    # The names a call's arguments may read besides the holes: those the body does not bind (symbols
    # such as `same`, ops, blocks), which mean the same wherever the arguments are evaluated.
    local = params | bound | set(block.inputs) | {"in"}
    calls = [(step, _arguments(step)) for step in steps
             if not (step.func in local or step.func in blocks or not has_op(step.func))]
    candidates = {p for p in params if p not in bound}
    while True:  # drop every parameter read anywhere but where a site may bind it, until none is
        sites, inside = _sites(calls, candidates, local)
        kept = {p for p in candidates if inside[p] == reads[p]}
        if kept == candidates:
            return Holes(frozenset(candidates), sites) if candidates else None
        candidates = kept


def _sites(calls: list[tuple[CallStep, list[tuple[bool, list[str]]]]], candidates: set[str], local: set[str]
           ) -> tuple[dict[Span, CallStep], dict[str, int]]:
    """The op calls that may bind the holes `candidates` again (by span), and how often each
    candidate is read where such a call may bind it."""
    sites: dict[Span, CallStep] = {}
    inside = dict.fromkeys(candidates, 0)
    for step, arguments in calls:
        if not all(n in candidates or n not in local for _, read in arguments for n in read):
            continue  # arguments that could not be evaluated on their own
        free = [read for free, read in arguments if free and any(n in candidates for n in read)]
        if free:
            sites[step.span] = step
            for n in (n for read in free for n in read if n in inside):
                inside[n] += 1
    return sites, inside


def _arguments(step: CallStep) -> list[tuple[bool, list[str]]]:
    """Each argument of an op call: whether the attribute it sets changes no output shape
    (`Op.shape_free`), and the names it reads."""
    op = get_op(step.func)
    positional = () if op.variadic else op.positional
    out = []
    for k, arg in enumerate(step.args):
        attribute = arg.name if arg.name is not None else positional[k] if k < len(positional) else None
        out.append((attribute in op.shape_free, [n.id for n in _nodes(arg.value, set()) if type(n) is Name]))
    return out


def _nodes(roots: Any, bound: set[str]) -> Iterator[Node]:
    """Every syntax node under `roots` (a node or a tuple of them); adds to `bound` every string a
    node holds, directly or in a tuple, but a name read, a keyword argument's name and a called name."""
    stack = [roots]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, str):  # in a tuple: a label's text, the names a statement unpacks into
            bound.add(item)
        elif isinstance(item, Node):
            yield item
            for field, value in item.__dict__.items():
                if isinstance(value, str):
                    if not (type(item) is Name or (type(item) is Arg and field == "name")
                            or (type(item) in (Call, CallStep) and field == "func")):
                        bound.add(value)
                elif isinstance(value, Node | tuple):
                    stack.append(value)


def call_key(block: object, namespace: object, bound: dict[str, Value],
             args: dict[str, Value]) -> tuple[tuple[object, ...], list[Port]] | None:
    """(the key of a block call, its input tensors' ports in key order), or None when unkeyable.
    `block` and `namespace` are kept alive by the elaboration, so their identities are stable."""
    ports: dict[Port, int] = {}
    try:
        key = (id(block), id(namespace), _keys(bound, ports), _keys(args, ports))
    except Unkeyable:
        return None
    return key, list(ports)


_HOLE = object()  # a hole's value in a key: its type alone counts


def without_holes(key: tuple[object, ...], params: frozenset[str]) -> tuple[object, ...] | None:
    """A call's key (`call_key`'s) with the numbers its holes `params` take keyed by their type
    alone, or None where it gives none of them a number."""
    block, namespace, bound, args = key
    masked: list[tuple[str, object]] = []
    changed = False
    for name, typed in cast("tuple[tuple[str, object], ...]", args):
        # a number's key is (int, value) or (float, repr); a block's or an op's is the reference itself
        kind = typed[0] if type(typed) is tuple else None
        if name in params and (kind is int or kind is float):
            masked.append((name, (kind, _HOLE)))
            changed = True
        else:
            masked.append((name, typed))
    return (block, namespace, bound, tuple(masked)) if changed else None


def _keys(values: dict[str, Value], ports: dict[Port, int]) -> tuple[tuple[str, object], ...]:
    """Each name with its value's key (`_key`, the common scalars decided in place)."""
    keys: list[tuple[str, object]] = []
    for name, value in values.items():
        kind = type(value)
        keys.append((name, (kind, value) if kind is int or kind is bool or kind is str or value is None
                     else _key(value, ports)))
    return tuple(keys)


def _key(value: Value, ports: dict[Port, int]) -> object:
    kind = type(value)
    if kind is int or kind is bool or kind is str or value is None:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))
    if kind is Tensor:
        k = ports.setdefault(value.port, len(ports))
        return (kind, value.shape, k)
    if kind is list or kind is tuple:
        return (kind, tuple(_key(v, ports) for v in value))
    if kind is Bundle:
        return (kind, value.names, tuple(_key(t, ports) for t in value.tensors))
    if kind is BlockRef or kind is OpRef:
        return value
    if kind is Partial:  # its spans only locate errors, and a recorded call had none
        return (kind, value.target, tuple(_key(v, ports) for v, _ in value.scalars),
                tuple((k, _key(v, ports)) for k, v, _ in value.kwargs), value.label)
    raise Unkeyable


# TemplateNode, Template and Recorded are made per block call or per layer, so they are not `frozen`
# (see archdsl.ir.Port); nothing changes them once made.
@dataclass(slots=True)
class TemplateNode:
    name: str  # relative to the instance's path
    op: str | None
    attrs: Attrs | None
    inputs: tuple[Source, ...]
    out_shapes: tuple[Shape, ...]
    in_shapes: tuple[Shape, ...]  # as the IR keeps them (one tuple, shared by every copy)
    scope: Path  # relative
    span: Span


@dataclass(slots=True)
class Template:
    """What one call of a block built, relative to its instance's path; see the module's docstring."""

    title: str
    numbers: tuple[tuple[str, int | float], ...]
    definitions: tuple[tuple[str, Any], ...]
    params: tuple[str, ...]  # the block's parameters and the conditions its body tested (ScopeInfo)
    conditions: tuple[tuple[Any, bool], ...]
    nodes: tuple[TemplateNode, ...]
    scopes: tuple[ScopeInfo, ...]  # nested scopes, in creation order, paths relative
    names: tuple[tuple[Path, frozenset[str]], ...]  # the names used per scope (relative)
    suffixes: tuple[tuple[Path, str, int], ...]  # the elaborator's next free suffix per (scope, base)
    result: object  # the call's value, its tensors as Sources
    steps: int  # evaluation steps the call took
    depth: int  # how much deeper than the call itself its block calls went
    lists: tuple[str, ...] = ()  # the lists appended to directly under the instance (ScopeInfo.lists)
    in_shapes: tuple[tuple[Shape, ...], ...] = ()  # each node's TemplateNode.in_shapes, in order
    outputs: tuple[tuple[str, str, int], ...] = ()  # ScopeInfo.outputs (relative already)
    defaults: tuple[tuple[str, bool | int | float], ...] = ()  # ScopeInfo.defaults


def encode_result(value: Value, index: dict[str, int], inputs: dict[Port, int]) -> object:
    """The call's value with each tensor as a Source; raises Unkeyable for anything else."""
    if type(value) is Tensor:
        port = value.port
        if port.node in index:
            return ("t", (index[port.node], port.index), value.shape)
        if port in inputs:
            return ("t", (-inputs[port] - 1, port.index), value.shape)
        raise Unkeyable
    if type(value) is Bundle:
        return ("b", value.names, tuple(encode_result(t, index, inputs) for t in value.tensors))
    if type(value) is tuple:
        return ("u", tuple(encode_result(t, index, inputs) for t in value))
    raise Unkeyable


def decode_result(code: Any, names: list[str], ports: list[Port]) -> Value:
    kind = code[0]
    if kind == "t":
        (k, i), shape = code[1], code[2]
        return Tensor(Port(names[k], i) if k >= 0 else ports[-k - 1], shape)
    if kind == "b":
        return Bundle(code[1], tuple(decode_result(c, names, ports) for c in code[2]))
    return tuple(decode_result(c, names, ports) for c in code[1])


def instantiate(template: Template, ir: IR, path: Path, block: str, span: Span, ports: list[Port],
                arguments: tuple[tuple[str | None, Any], ...] = (), attrs: dict[int, Attrs] | None = None,
                title: str | None = None, numbers: tuple[tuple[str, int | float], ...] | None = None,
                ) -> tuple[Value, list[tuple[Path, frozenset[str]]], list[tuple[Path, str, int]]]:
    """Add the template's scopes and layers to `ir` under `path` (the call at `span`, its input
    tensors at `ports`, its arguments as written `arguments`; where its holes differ, the attributes
    of its k-th layer `attrs[k]`, its `title` and `numbers`); returns the call's value and the names
    and suffixes to claim under `path`."""
    ir.scopes[path] = ScopeInfo(path, "block", title or template.title, block, span, None, numbers or template.numbers,
                                template.definitions, template.params, arguments, template.conditions,
                                template.defaults, lists=template.lists, outputs=template.outputs)
    for info in template.scopes:
        where = path + info.path
        ir.scopes[where] = info.moved(where)
    prefix = ".".join(path) + "."
    names: list[str] = []
    copies: list[IRNode] = []
    scopes: dict[Path, Path] = {}
    for t in template.nodes:
        name = prefix + t.name
        scope = scopes.get(t.scope)
        if scope is None:
            scope = scopes[t.scope] = path + t.scope
        sources = t.inputs
        if len(sources) == 1:  # most layers
            k, i = sources[0]
            inputs: tuple[Port, ...] = (Port(names[k], i) if k >= 0 else ports[-k - 1],)
        else:
            inputs = tuple([Port(names[k], i) if k >= 0 else ports[-k - 1] for k, i in sources])
        copies.append(IRNode(name, "op", t.op, attrs.get(len(copies), t.attrs) if attrs else t.attrs, inputs,
                             t.out_shapes, scope, t.span))
        names.append(name)
    # The template's shapes are this IR's own copies: it was recorded in this elaboration.
    ir.add_copies(copies, template.in_shapes)
    value = decode_result(template.result, names, ports)
    return (value, [(path + rel, used) for rel, used in template.names],
            [(path + rel, base, k) for rel, base, k in template.suffixes])


@dataclass(slots=True)
class Recorded:
    """What a call built, as the elaboration holds it (the IR's own nodes and scopes, the names it
    used): turned into a :class:`Template` only when a second identical call comes, since most
    calls are never repeated."""

    nodes: list[IRNode]
    in_shapes: list[tuple[Shape, ...]]
    scopes: list[ScopeInfo]
    names: list[tuple[Path, frozenset[str]]]
    suffixes: list[tuple[Path, str, int]]
    path: Path
    ports: list[Port]
    result: Value
    top: ScopeInfo
    steps: int
    depth: int

    def build(self) -> Template | None:
        return record(self.nodes, self.in_shapes, self.scopes, self.names, self.suffixes, self.path, self.ports,
                      self.result, self.top, self.steps, self.depth)


def record(ir_nodes: list[IRNode], in_shapes: list[tuple[Shape, ...]], scopes: list[ScopeInfo],
           names: list[tuple[Path, frozenset[str]]], suffixes: list[tuple[Path, str, int]], path: Path,
           ports: list[Port], result: Value, top: ScopeInfo, steps: int, depth: int) -> Template | None:
    """The template of a call that built `ir_nodes` (their inputs' shapes `in_shapes`) and `scopes`
    (besides its own, `top`) and used `names` and `suffixes`, all under `path`; None when anything
    reaches outside it."""
    n = len(path)
    prefix = ".".join(path) + "."
    index: dict[str, int] = {}
    inputs = {port: k for k, port in enumerate(ports)}
    nodes: list[TemplateNode] = []
    for node in ir_nodes:
        if (node.kind != "op" or not node.name.startswith(prefix) or node.scope[:n] != path
                or node.shares is not None or node.output_name is not None):
            return None
        sources: list[Source] = []
        for port in node.inputs:
            if port.node in index:
                sources.append((index[port.node], port.index))
            elif port in inputs:
                sources.append((-inputs[port] - 1, port.index))
            else:
                return None
        index[node.name] = len(nodes)
        nodes.append(TemplateNode(node.name[len(prefix):], node.op, node.attrs, tuple(sources), node.out_shapes,
                                  in_shapes[len(nodes)], node.scope[n:], node.span))
    if any(info.path[:n] != path or info.shares is not None for info in scopes) \
            or any(scope[:n] != path for scope, _ in names) or any(scope[:n] != path for scope, _, _ in suffixes):
        return None
    try:
        code = encode_result(result, index, inputs)
    except Unkeyable:
        return None
    relative = tuple([info.moved(info.path[n:]) for info in scopes])  # none is shared (checked above)
    return Template(top.title, top.number_values, top.local_definitions, top.params, top.conditions, tuple(nodes),
                    relative,
                    tuple((scope[n:], used) for scope, used in names),
                    tuple((scope[n:], base, k) for scope, base, k in suffixes), code, steps, depth, top.lists,
                    tuple([t.in_shapes for t in nodes]), top.outputs, top.defaults)


__all__ = ["Recorded", "Template", "Unkeyable", "call_key", "instantiate", "record"]

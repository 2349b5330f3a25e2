"""Which of a block's values each constant of its instances follows: the channels of a block's input
as its spec writes them (`_input_channels`), the parameter a layer's constant is written from
(`_written_name`, refusing names equal by chance: `_coincidental`), and an expression of the members'
spec values that gives a column of constants (`_express`: a value, a multiple, a choice under a flag,
a list's element). Where the generated class's constructor gets its parameters from."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, cast

from archdsl.ir import IR, IRNode
from archdsl.ops import Shape

from ..python_source import (
    Namespace,
)
from .constants import Constant, KeywordDefaults, SpecValue, _Instance, _template
from .expressions import _IN_CHANNELS, _is_in_channels, _placeholder, _python_expression
from .text import _ASSIGNED_ATTRIBUTE, _MEMO_SIZE, parts


def _written_changes(ir: IR, node: IRNode, fits: list[str], by: int = 1) -> Iterator[tuple[str, Any]]:
    """For each argument of the op call that made `node` written as one of the names `fits` (an
    integer attribute, or a pair of one integer: `stride=s` for a stride of (s, s)), the name and
    the node's attributes with that attribute `by` larger."""
    from archdsl.syntax import Name

    op, attrs = node.op_class, node.attrs
    for k, (keyword, expr) in enumerate(ir.arguments.get(node.span, ())):
        attr = keyword if keyword is not None else op.positional[k] if k < len(op.positional) else None
        value = getattr(attrs, attr, None) if attr else None
        name = expr.id if isinstance(expr, Name) else _IN_CHANNELS if _is_in_channels(expr) else None
        if type(value) is int:
            larger: int | tuple[int, ...] = value + by
        elif isinstance(value, tuple) and len({(type(v), v) for v in value}) == 1 and type(value[0]) is int:
            larger = tuple(v + by for v in value)
        else:
            continue
        if attrs is not None and name in fits:
            changed = _validated(attrs, str(attr), larger)
            if changed is not None:
                yield str(name), changed


@lru_cache(maxsize=_MEMO_SIZE)
def _validated(attrs: Any, attr: str, value: object) -> Any:
    """`attrs` with `attr` set to `value`, validated; None where the op refuses it. Kept: the
    parameterization asks again for each member of a class, whose layers are alike."""
    from archdsl.ops.attr_schema import Invalid

    try:
        return type(attrs).validate({**vars(attrs), attr: value})
    except Invalid:
        return None


def _channels_written(ir: IR, name: str, scope: tuple[str, ...], fits: list[str]) -> str | None:
    """The one of `fits` that the layers of the block instance at `scope` write for the channels
    of the node `name`'s output: the argument of its call that changes them, or, where it keeps
    its input's channels (a norm, an activation), its input's; None outside the instance's own
    layers (a child block's layers write the child's names)."""
    while name in ir:
        node = ir.node(name)
        if node.scope[:len(scope)] != scope:  # made before the instance: its input
            return _IN_CHANNELS if _IN_CHANNELS in fits else None
        if _in_child_block(ir, node, scope) or not _channel_layer(node):
            return None
        names = _channels_changers(ir, node, fits)
        if names:
            return names.pop() if len(names) == 1 else None
        if not _keeps_channels(ir, node):
            return None
        name = node.inputs[0].node
    return None


def _input_channels(parent: _Instance, child: _Instance, children: list[_Instance], known: set[str],
                    read: list[str]) -> str | None:
    """The channels of the input of `child`, a block instance in `parent` (`children`: all of
    them), as `parent`'s spec writes them, in Python over the names `known` (see
    _python_expression): the argument that makes them, of a layer of `parent` (`conv(c1, 1)`) or of
    the call of a child that makes them (`dconv(2 * c, 3)`), found upstream past layers and
    children that keep their input's channels; `in_channels` where they are `parent`'s input's;
    None where nothing written gives them."""
    ir, name = parent.ir, child.input
    while ir is not None and name is not None and name in ir:
        node = ir.node(name)
        if node.scope[:len(parent.scope)] != parent.scope:  # made before `parent`: its input
            return _placeholder(_IN_CHANNELS, known, read)
        if not _channel_layer(node):
            return None
        maker = next((c for c in children if node.scope[:len(c.scope)] == c.scope), None)
        if maker is not None:  # a child's layer: the child's parameter that gives them, as its call passes it
            channels = node.out_shapes[0][0]
            fits = [p for p in (*maker.params, _IN_CHANNELS) if type(maker.values.get(p)) is int
                    and maker.values[p] == channels]
            written = _channels_written(ir, name, maker.scope, fits)
            if written == _IN_CHANNELS:
                name = maker.input
                continue
            copies = _copies_of_input(ir, name, maker.scope) if written is None else 0
            if copies:  # SPP's pools and its input, side by side: so many times the child's input
                inner = _input_channels(parent, maker, children, known, read)
                return None if inner is None else f"{copies} * {inner if ' ' not in inner else f'({inner})'}"
            argument = maker.argument(written) if written is not None else None
            return None if argument is None else _python_expression(argument, known, read)
        channels = node.out_shapes[0][0]
        names = _channels_changers(ir, node, [n for n in known if parent.values.get(n) == channels])
        if names:
            return _placeholder(names.pop(), known, read) if len(names) == 1 else None
        if not _keeps_channels(ir, node):
            return None
        name = node.inputs[0].node
    return None


def _copies_of_input(ir: IR, name: str, scope: tuple[str, ...]) -> int:
    """How many copies of the channels of its input the block instance at `scope` makes in the
    output of its node `name`: a concatenation along the channels whose every operand passes the
    instance's input on (SPP: three stride-1 pools and the input); 0 for anything else."""
    node = ir.node(_kept_from(ir, name, scope))
    if node.scope[:len(scope)] != scope or node.op != "concat" or getattr(node.attrs, "dim", None) != 0:
        return 0
    sources = {_kept_from(ir, port.node, scope) for port in node.inputs}
    return len(node.inputs) if len(sources) == 1 and ir.node(sources.pop()).scope[:len(scope)] != scope else 0


def _kept_from(ir: IR, name: str, scope: tuple[str, ...]) -> str:
    """The node whose channels the node `name` has, walking up past the layers of the block
    instance at `scope` that keep their input's (norms, activations, stride-1 pools)."""
    while (node := ir.node(name)).scope[:len(scope)] == scope and _channel_layer(node) \
            and _keeps_channels(ir, node):
        name = node.inputs[0].node
    return name


def _channel_layer(node: IRNode) -> bool:
    """Whether `node` is a layer with one output, whose channels the helpers above can follow."""
    return node.kind == "op" and node.attrs is not None and len(node.out_shapes) == 1


def _channels_changers(ir: IR, node: IRNode, fits: list[str]) -> set[str]:
    """The names of `fits` that the layer's call writes for an argument that changes its channels."""
    ins, out = ir.in_shapes(node), node.out_shapes[0][:1]
    return {n for n, attrs in _written_changes(ir, node, fits) if _inferred(node, attrs, ins)[:1] != out}


def _keeps_channels(ir: IR, node: IRNode) -> bool:
    """Whether the layer passes its input's channels on (a norm, an activation): it makes one more
    channel of one more."""
    ins, out = ir.in_shapes(node), node.out_shapes[0][:1]
    wider = _wider(ins)
    return bool(node.inputs and wider and out == ins[0][:1] and _inferred(node, node.attrs, wider)[:1] == wider[0][:1])


def _in_child_block(ir: IR, node: IRNode, scope: tuple[str, ...]) -> bool:
    """Whether `node` lies in a block instance nested in the one at `scope`."""
    return any((info := ir.scopes.get(node.scope[:k])) is not None and info.kind == "block"
               for k in range(len(scope) + 1, len(node.scope) + 1))


def _statement_nodes(ir: IR, scope: tuple[str, ...], attr: str) -> list[IRNode]:
    """The op nodes a constructor statement of the block instance at `scope` builds: the layer
    `attr`, or the numbered layers of the nn.Sequential `attr`; [] for anything else."""
    name = ".".join((*parts(scope), attr))
    if name in ir:
        nodes = [ir.node(name)]
    else:
        nodes = []
        while f"{name}.{len(nodes)}" in ir:
            nodes.append(ir.node(f"{name}.{len(nodes)}"))
    return nodes if all(n.kind == "op" and n.attrs is not None for n in nodes) else []


class _LayerConstant(NamedTuple):
    """The layer of a member's constructor statement that a constant belongs to, and where."""

    ir: IR
    node: IRNode
    ins: list[Shape]
    made: list[Constant]  # the layer's constants
    at: int  # the constant's place among them

    def counts_input_channels(self, defaults: KeywordDefaults) -> bool:
        """Whether the constant changes with the channels of the layer's input."""
        wider = _wider(self.ins)
        return bool(wider and self.node.inputs
                    and _constructed(self.node, self.node.attrs, wider, defaults)[self.at] != self.made[self.at])


def _layer_constant(inst: _Instance, line: str, written: list[Constant], q: int,
                    defaults: KeywordDefaults) -> _LayerConstant | None:
    """The layer that makes the q-th constant of an instance's statement `line` (`written`: its
    constants), or None where the statement is not its layers' plain construction."""
    ir, match = inst.ir, _ASSIGNED_ATTRIBUTE.match(line)
    nodes = _statement_nodes(ir, inst.scope, match[1]) if ir is not None and match else []
    if ir is None or not nodes:
        return None
    # The statement's constants, layer by layer (an nn.Sequential's one after another).
    made = [_constructed(node, node.attrs, ir.in_shapes(node), defaults) for node in nodes]
    if not _same_numbers([c for m in made for c in m], written):
        return None
    k, at = 0, q  # the layer the constant belongs to, and its place among that layer's
    while at >= len(made[k]):
        at, k = at - len(made[k]), k + 1
    return _LayerConstant(ir, nodes[k], ir.in_shapes(nodes[k]), made[k], at)


def _followed(layer: _LayerConstant, fits: list[str], defaults: KeywordDefaults) -> set[str]:
    """The names of `fits` that the layer's call writes for an argument the constant follows, one
    for one: not one it merely depends on (a "same" padding of 1 changes with the stride, also 1,
    but is no stride)."""
    node, ins = layer.node, layer.ins
    followed = [{n for n, attrs in _written_changes(layer.ir, node, fits, by)
                 if _follows(_constructed(node, attrs, ins, defaults)[layer.at], layer.made[layer.at], by)}
                for by in (1, 2)]
    return followed[0] & followed[1]


def _written_name(statements: list[tuple[_Instance, str, list[Constant]]], q: int, fits: list[str],
                  defaults: KeywordDefaults) -> str | None:
    """Of the names `fits`, all as large as the q-th constant of a layer's statement in each instance
    (`statements`: the instance, the statement and its constants), the one the spec writes for it:
    the argument of the layer's call whose attribute, changed, changes the constant (`conv(e3x3, 3)`;
    e1x1 is as large in every instance of SqueezeNet's fire), or, for the channels of the layer's
    input, the argument that gives the channels of the layer making them (NIN's `conv(c1, 1) -> relu
    -> conv(c2, 1)`: c1 for the second's input, though c is as large). None where the instances
    disagree or nothing written gives it."""
    found: set[str | None] = set()
    for inst, line, written in statements:
        layer = _layer_constant(inst, line, written, q, defaults)
        if layer is None:
            return None
        names: set[str | None] = set(_followed(layer, fits, defaults))
        if layer.counts_input_channels(defaults):
            names.add(_channels_written(layer.ir, layer.node.inputs[0].node, inst.scope, fits))  # the input's channels
        if len(names) != 1:
            return None
        found |= names
    return found.pop() if len(found) == 1 else None


def _coincidental(statements: list[tuple[_Instance, str, list[Constant]]], q: int, name: str,
                  defaults: KeywordDefaults) -> bool:
    """Whether `name`, as large as the q-th constant of a layer's statement in each instance, is so
    by chance: the layer's call writes it for an argument that the constant does not follow (a
    default padding as large as the stride the call writes, 1 at stride 1 and 2 at stride 2 with a
    5x5 kernel)."""
    for inst, line, written in statements:
        layer = _layer_constant(inst, line, written, q, defaults)
        if layer is None or not any(n == name for n, _ in _written_changes(layer.ir, layer.node, [name])):
            continue
        if layer.counts_input_channels(defaults):
            continue  # the input's channels, which the layers before it give (see _written_name)
        if name not in _followed(layer, [name], defaults):
            return True
    return False


def _follows(changed: Constant, constant: Constant, by: int) -> bool:
    """Whether a constant, its argument `by` larger, is `by` larger too."""
    return type(changed) is int and type(constant) is int and changed == constant + by


def _line_of(inst: _Instance, consts: Sequence[object], s: int) -> str:
    """A class member's constructor statement for the class's statement s (`consts`: the member's
    constants by statement, None for one it lacks)."""
    return inst.init[sum(c is not None for c in consts[:s])]


def _same_numbers(made: list[Constant], written: list[Constant]) -> bool:
    """Whether a statement's constants are those its layers make, flags aside (an activation is
    written in place, `inplace=True`, where its layer's own text has none)."""
    return len(made) == len(written) and all(
        a == b for a, b in zip(made, written, strict=True) if type(a) is not bool and type(b) is not bool)


def _constructed(node: IRNode, attrs: Any, ins: list[Shape], defaults: KeywordDefaults) -> list[Constant]:
    """The constants of the statement constructing the op node with these attributes and inputs."""
    return _template([f"self.x = {node.op_class.torch_init(attrs, ins)}"], defaults)[1][0]


def _wider(ins: list[Shape]) -> list[Shape]:
    """The input shapes with the first one a channel wider; [] where it has no channels."""
    return [(ins[0][0] + 1, *ins[0][1:]), *ins[1:]] if ins and ins[0] else []


def _inferred(node: IRNode, attrs: Any, ins: Sequence[Shape]) -> Shape:
    """The node's output shape with these attributes and input shapes; () where none comes."""
    return _inferred_by(str(node.op), attrs, tuple(ins))


@lru_cache(maxsize=_MEMO_SIZE)
def _inferred_by(op: str, attrs: Any, ins: tuple[Shape, ...]) -> Shape:
    from archdsl.ops import ShapeError, get_op

    try:
        outs = get_op(op).infer(attrs, list(ins))
    except ShapeError:
        return ()
    return outs[0] if len(outs) == 1 else ()


def _spec_value(value: object) -> SpecValue | None:
    """A network parameter as a value a constant may be named after (numbers, booleans, lists of integers)."""
    if isinstance(value, int | float):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def _explained(a: _Instance, b: _Instance, defaults: KeywordDefaults) -> bool:
    """Whether block instance `b` is `a` with other constants, each of which the spec values of
    the two give alike (`classes` in `InceptionAux(classes)`'s linear layer)."""
    if (a.scope, a.block, a.forward) != (b.scope, b.block, b.forward):
        return False
    (template, constants), (other, theirs) = _template(a.init, defaults), _template(b.init, defaults)
    if template != other:
        return False
    shared = [n for n in a.values if n in b.values]
    return all((x == y and type(x) is type(y)) or _express((x, y), [a.values, b.values], shared, {}, Namespace())
               for xs, ys in zip(constants, theirs, strict=True) for x, y in zip(xs, ys, strict=True))


def _fitting(column: Sequence[Constant], candidates: Sequence[Mapping[str, SpecValue]],
             names: Iterable[str]) -> list[str]:
    """The names whose value, of the same type, is the column's in every member (`candidates`)."""
    return [n for n in names if all(type(c.get(n)) is type(v) and c.get(n) == v
                                    for c, v in zip(candidates, column, strict=True))]


def _preference(values: dict[str, SpecValue]) -> list[str]:
    """in_channels first (a constructor takes its input's size first), then parameters, then locals."""
    return sorted(values, key=lambda n: n != _IN_CHANNELS)


def _express(column: tuple[Constant, ...], candidates: list[dict[str, SpecValue]], shared: list[str],
             spec_names: dict[str, str], names: Namespace, taken: set[str] | None = None) -> str | None:
    """A Python expression of the members' spec values that gives `column` for each, or None: one
    value of the same type (parameters first, then locals, then in_channels), the negation of the
    one boolean that gives it negated, an element of a list, one integer times a constant, or the
    difference of two integers. Only
    `shared` names (that every member of the class has) are used. With `taken` (a loop's bound),
    only a list element not in `taken`."""

    def use(n: str) -> str:
        if n not in spec_names:
            spec_names[n] = names.create(n)
        return spec_names[n]

    fits = [] if taken is not None else _fitting(column, candidates, shared)
    if fits:
        return use(fits[0])
    flags = taken is None and all(type(v) is bool for v in column)
    negated = _fitting(tuple(not v for v in column), candidates, shared) if flags else []
    if len(negated) == 1:  # `bias=not batch_normalize`; of two such flags, neither is the one written
        return f"not {use(negated[0])}"
    if not all(type(v) is int for v in column):
        return None
    for n in shared:  # an element of a list parameter (a network's `layers[2]`)
        j = _element(column, [c[n] for c in candidates], {int(t.rsplit("[")[1][:-1]) for t in taken or ()
                                                          if t.startswith(f"{spec_names.get(n, n)}[")})
        if j is not None:
            return f"{use(n)}[{j}]"
    return None if taken is not None else _arithmetic(column, candidates, shared, use)


def _arithmetic(column: tuple[Constant, ...], candidates: list[dict[str, SpecValue]], shared: list[str],
                use: Callable[[str], str]) -> str | None:
    """`_express`'s last resorts, each name written through `use`: one integer times a constant (or
    a convolution's default padding from it), the difference of two integers, or a choice of an
    integer and a constant by a flag; None."""
    multiple = _multiple(column, candidates, shared)
    if multiple:
        return f"{use(multiple[0])} * {multiple[1]}" if multiple[1] > 0 else f"({use(multiple[0])} - 1) // 2"
    difference = _difference(column, candidates, shared)
    if difference:  # megvii's ShuffleNet: `outputs = oup - inp`
        return f"{use(difference[0])} - {use(difference[1])}"
    choice = _choice(column, candidates, shared)
    if choice:  # `stride if stride_1x1 else 1`
        flag, value, other, when = choice
        return f"{use(value)} if {'' if when else 'not '}{use(flag)} else {other!r}"
    return None


def _choice(column: tuple[Constant, ...], candidates: list[dict[str, SpecValue]],
            shared: list[str]) -> tuple[str, str, int, bool] | None:
    """(a shared boolean, a shared integer, a constant, the boolean's value) such that the column is
    the integer where the boolean has that value and the constant elsewhere, or None."""
    flags = [n for n in shared if all(type(c[n]) is bool for c in candidates)]
    ints = [n for n in shared if all(type(c[n]) is int for c in candidates)]
    for flag in flags:
        for when in (True, False):
            chosen = [c[flag] == when for c in candidates]
            if all(chosen) or not any(chosen):
                continue
            others = {v for v, ch in zip(column, chosen, strict=True) if not ch}
            if len(others) != 1 or type(next(iter(others))) is not int:
                continue
            for n in ints:
                if all(c[n] == v for c, v, ch in zip(candidates, column, chosen, strict=True) if ch):
                    return flag, n, int(next(iter(others))), when
    return None


def _multiple(column: tuple[Constant, ...], candidates: list[dict[str, SpecValue]],
              shared: list[str]) -> tuple[str, int] | None:
    """(a shared integer value, k) such that the value times k gives the column, k > 1, or None; or
    k = 0 where the column is (value - 1) // 2, a convolution's default padding (as torchvision computes it)."""
    for n in shared:
        if all(type(x := c[n]) is int and (int(x) - 1) // 2 == v for c, v in zip(candidates, column, strict=True)):
            return n, 0
        first = candidates[0][n]
        if type(first) is int and first > 0 and int(column[0]) % first == 0:
            k = int(column[0]) // first
            if k > 1 and all(type(c[n]) is int and c[n] * k == v for c, v in zip(candidates, column, strict=True)):
                return n, k
    return None


def _difference(column: tuple[Constant, ...], candidates: list[dict[str, SpecValue]],
                shared: list[str]) -> tuple[str, str] | None:
    """The one pair of shared integer values whose difference is the column, where the column takes
    more than one value (so that no single member's numbers can give it by chance), or None."""
    if len(set(column)) < 2 or not all(type(v) is int for v in column):
        return None
    ints = [n for n in shared if all(type(c[n]) is int for c in candidates)]
    rows = [[cast(int, c[n]) for n in ints] for c in candidates]
    found = [(ints[a], ints[b]) for a in range(len(ints)) for b in range(len(ints))
             if a != b and all(row[a] - row[b] == v for row, v in zip(rows, column, strict=True))]
    return found[0] if len(found) == 1 else None


def _element(column: tuple[Constant, ...], lists: list[SpecValue], taken: set[int]) -> int | None:
    """The first index, not in `taken`, at which each list holds the column's value, or None."""
    if not all(isinstance(x, tuple) for x in lists):
        return None
    tuples = [x for x in lists if isinstance(x, tuple)]
    return next((j for j in range(min(len(x) for x in tuples)) if j not in taken
                 and all(x[j] == v for x, v in zip(tuples, column, strict=True))), None)

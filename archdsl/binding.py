"""Argument binding: the arguments of an op or block call, sorted and matched to what it takes.

A call's arguments are split into input tensors (positional, plus the chained input of
``x -> f(...)``), other positional values, and keywords (tensors given by name go to a block's named
inputs). :func:`bind_op` and :func:`bind_block` then match them to the op's attributes or the
block's inputs and parameters, with a diagnostic at the offending argument for every mismatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Span, did_you_mean, error
from .ops import Op
from .syntax import Arg, BlockDef, Node
from .values import (
    BlockRef,
    Bundle,
    OpRef,
    Partial,
    SharedRef,
    Tensor,
    Value,
    describe,
    render_value,
    spatial_size_of,
)

Located = tuple[Value, Span]  # a value and the span of the argument that gave it
_TENSORS = (Tensor, tuple, Bundle)
CHAINED = Span.unknown()  # the span of a chained input (`x -> f(…)`): no argument gave it


@dataclass
class CallArgs:
    """A call's evaluated arguments, each with its span (the chained input's span is unknown)."""

    tensors: list[tuple[Tensor, Span]] = field(default_factory=list)
    scalars: list[Located] = field(default_factory=list)
    kw_tensors: dict[str, Located] = field(default_factory=dict)
    kwargs: dict[str, Located] = field(default_factory=dict)


def flatten_tensors(v: Value) -> list[Tensor]:
    if isinstance(v, Tensor):
        return [v]
    if isinstance(v, Bundle):
        return list(v.tensors)
    return list(v)


def split_args(args: tuple[Arg, ...], chained: Value, evaluate: Callable[[Node, Any], Value], env: Any,
               done: Sequence[Value] = ()) -> CallArgs:
    """Evaluate `args` in order (`evaluate(expression, env)`) and sort them; tensors must come before
    the other positional values.
    `done`: the values of the first arguments, evaluated already (by a caller that looked for a fast
    path first, checking each as it went: see :func:`plain_arguments`)."""
    tensors: list[tuple[Tensor, Span]] = []
    scalars: list[Located] = []
    kw_tensors: dict[str, Located] = {}
    kwargs: dict[str, Located] = {}
    if type(chained) is Tensor:  # the common chained input, one tensor
        tensors.append((chained, CHAINED))
    elif chained is not None:
        tensors.extend((t, CHAINED) for t in flatten_tensors(chained))
    evaluated = len(done)
    for k, arg in enumerate(args):
        value = done[k] if k < evaluated else evaluate(arg.value, env)
        name = arg.name
        if name is not None:
            if name in kwargs or name in kw_tensors:
                raise error("E0516", f"`{name}` is given twice", arg.span)
            target = kw_tensors if isinstance(value, Tensor) else kwargs
            target[name] = (value, arg.span)
            continue
        if type(value) in _SCALARS:  # the common attribute values, decided at once
            scalars.append((value, arg.span))
            continue
        if isinstance(value, list) and value and any(isinstance(v, Tensor) for v in value):
            value = _tensor_list(value, arg.span)  # `concat(feats)`: a list of tensors is its tensors
        if isinstance(value, _TENSORS):
            if scalars:
                raise error("E0517", "tensor arguments come before the other arguments", arg.span,
                            "write the inputs first: `concat(a, b, dim=0)`")
            tensors.extend((t, arg.span) for t in flatten_tensors(value))
        else:
            scalars.append((value, arg.span))
    return CallArgs(tensors, scalars, kw_tensors, kwargs)


_SCALARS = frozenset({int, float, bool, str, type(None)})  # never a tensor, nor a list that may hold tensors


def plain_arguments(args: tuple[Arg, ...], evaluate: Callable[[Node, Any], Value], env: Any
                    ) -> tuple[list[Value], tuple[tuple[str | None, object], ...] | None]:
    """Evaluate `args` in order (`evaluate(expression, env)`) while each value is plain — a number,
    a string, a boolean, none, or a list of those — checking each as :func:`split_args` does.
    Returns the values evaluated and, when all were plain, the arguments' key: each one's name and
    typed value (`1`, `1.0` and `true` differ, and `-0.0` from `0.0`). At the first other value it
    stops and gives None for the key: `split_args(args, chained, evaluate, env, done=values)` then takes
    over where it stopped, with every check in the same order as if it had started."""
    values: list[Value] = []
    key: list[tuple[str | None, object]] = []
    named: set[str] | None = None
    for arg in args:
        value = evaluate(arg.value, env)
        values.append(value)
        kind = type(value)
        typed = (kind, value) if kind is int or kind is str or kind is bool or value is None else plain_key(value)
        if typed is None:
            return values, None
        name = arg.name
        if name is not None:
            if named is None:
                named = {name}
            elif name in named:
                raise error("E0516", f"`{name}` is given twice", arg.span)
            else:
                named.add(name)
        key.append((name, typed))
    return values, tuple(key)


def plain_key(value: Value) -> object:
    """A plain value with its type, hashable (see :func:`plain_arguments`); None for any other value."""
    kind = type(value)
    if kind is int or kind is str or kind is bool or value is None:
        return (kind, value)
    if kind is float:
        return (kind, value.hex())
    if kind is list:
        items = tuple([plain_key(v) for v in value])
        return None if None in items else (kind, items)
    return None


def plain_call(values: list[Value], args: tuple[Arg, ...], chained: Tensor) -> CallArgs:
    """What :func:`split_args` makes of `chained` and plain argument values (see :func:`plain_arguments`)."""
    scalars: list[Located] = []
    kwargs: dict[str, Located] = {}
    for value, arg in zip(values, args, strict=True):
        if arg.name is None:
            scalars.append((value, arg.span))
        else:
            kwargs[arg.name] = (value, arg.span)
    return CallArgs([(chained, CHAINED)], scalars, {}, kwargs)


def as_partial(target: BlockRef | OpRef | Partial | SharedRef, call: CallArgs, label: tuple[str, ...] | None,
               chained: Value) -> Partial | None:
    """The layer value of a call without input tensors (`leaky(0.1)`), or None when it has inputs."""
    if chained is not None or call.tensors or call.kw_tensors or isinstance(target, SharedRef):
        return None
    if isinstance(target, Partial):
        call, label, target = with_partial(target, call), label or target.label, target.target
    return Partial(target, tuple(call.scalars), tuple((k, v, sp) for k, (v, sp) in call.kwargs.items()), label)


def with_partial(partial: Partial, call: CallArgs) -> CallArgs:
    """A layer value's own arguments, then the call's: `act = leaky(0.1)` … `x -> act`."""
    kwargs: dict[str, Located] = {k: (v, sp) for k, v, sp in partial.kwargs}
    for key, (value, sp) in call.kwargs.items():
        if key in kwargs:
            raise error("E0516", f"`{key}` is given twice", sp,
                        f"`{partial.text()}` sets it already; call the op itself to choose it here")
        kwargs[key] = (value, sp)
    return CallArgs(tensors=call.tensors, scalars=[*partial.scalars, *call.scalars], kw_tensors=call.kw_tensors,
                    kwargs=kwargs)


def size_inputs(op: type[Op], call: CallArgs) -> CallArgs:
    """`upsample(x, size=[lat.h, lat.w])` is `upsample(x, lat)`: a size read from one tensor's shape
    becomes that tensor, so the generated module takes the size from it at run time."""
    attr = op.size_from_tensor
    if attr is None or attr not in call.kwargs or len(call.tensors) != 1 or call.kw_tensors:
        return call
    value, span = call.kwargs[attr]
    tensor = spatial_size_of(value)
    if tensor is None:
        return call
    kwargs = {k: v for k, v in call.kwargs.items() if k != attr}
    return CallArgs(tensors=[*call.tensors, (tensor, span)], scalars=call.scalars, kwargs=kwargs)


def _tensor_list(items: list[Value], span: Span) -> tuple[Tensor, ...]:
    if not all(isinstance(v, Tensor) for v in items):
        other = next(v for v in items if not isinstance(v, Tensor))
        raise error("E0302", f"a list of tensors holds {describe(other)}", span,
                    "a list passed as inputs holds tensors only; pass other values as attributes")
    return tuple(items)


def bind_op(op: type[Op], name: str, call: CallArgs, span: Span) -> tuple[list[Tensor], dict[str, Any],
                                                                           dict[str, Span]]:
    """(input tensors, attribute values, attribute spans) of a call of the op `name`."""
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    scalars = call.scalars
    if scalars and not op.Attrs.model_fields:
        raise error("E0301", f"`{name}` takes no attributes", scalars[0][1], f"write `{name}` on its own")
    if op.variadic and scalars and not (len(scalars) == 1 and isinstance(scalars[0][0], list)):
        first, last = scalars[0][1], scalars[-1][1]  # `reshape(-1, 91)` is `reshape([-1, 91])`
        scalars = [([v for v, _ in scalars], Span(first.file, first.line, first.col, last.end_line, last.end_col))]
    if len(scalars) > len(op.positional):
        extra_span = scalars[len(op.positional)][1]
        takes = ", ".join(op.positional) or "no positional attributes"
        raise error("E0301", f"`{name}` takes {len(op.positional)} positional attribute(s) ({takes}), "
                    f"got {len(scalars)}", extra_span, _name_them(op))
    for field_name, (value, sp) in zip(op.positional, scalars, strict=False):
        values[field_name], spans[field_name] = value, sp
    for key, (value, sp) in call.kwargs.items():
        if key in values:
            raise error("E0516", f"`{key}` is given twice", sp)
        values[key], spans[key] = value, sp
    for key, value in values.items():
        if type(value) not in _PLAIN and isinstance(value, _NOT_ATTRIBUTES):
            raise error("E0302", f"`{name}`: attribute `{key}` cannot be {describe(value)}", spans[key])
    _check_input_count(op, name, call.tensors, span)
    return [t for t, _ in call.tensors], values, spans


_PLAIN = frozenset({int, float, bool, str, list, type(None)})  # what attributes mostly are: decided at once
_NOT_ATTRIBUTES = (BlockRef, OpRef, Partial, SharedRef, Tensor, Bundle, tuple)


def _name_them(op: type[Op]) -> str:
    """The hint for too many positional attributes, with an example from the op's own attributes."""
    named = [(k, f) for k, f in op.Attrs.model_fields.items() if k not in op.positional]
    if not named:
        return f"`{op.name}` takes no other attributes"
    key, f = named[0]
    shown = not f.is_required() and isinstance(f.default, int | float | str) and not isinstance(f.default, bool)
    example = f"{key}={render_value(f.default)}" if shown else f"{key}=…"
    return f"name the other attributes, e.g. {example}"


def _check_input_count(op: type[Op], name: str, tensors: list[tuple[Tensor, Span]], span: Span) -> None:
    n = len(tensors)
    if op.min_inputs <= n and (op.max_inputs is None or n <= op.max_inputs):
        return
    want = (f"{op.min_inputs}" if op.max_inputs == op.min_inputs else
            f"at least {op.min_inputs}" if op.max_inputs is None else f"{op.min_inputs}–{op.max_inputs}")
    where, hint = span, "feed it with `x -> op(...)` or pass the tensors first: `op(a, b)`"
    if op.max_inputs is not None and n > op.max_inputs:
        extra_span = tensors[op.max_inputs][1]
        if extra_span.file == span.file:  # an argument, not the chained input
            where = extra_span
            if tensors[0][1].file != span.file:
                hint = (f"in a chain `x -> {name}(...)` the input comes from the left; this argument is "
                        "a tensor, so it is taken as another input, not as an attribute")
    raise error("E0304", f"`{name}` takes {want} input tensor(s), got {n}", where, hint)


def bind_block(block: BlockDef, call: CallArgs, span: Span) -> tuple[dict[str, Value], dict[str, Value]]:
    """(inputs by name, parameters given) of a call of `block`; parameter defaults are left to the caller."""
    name = block.name
    if len(call.tensors) > len(block.inputs):
        raise error("E0520", f"block `{name}` takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), "
                    f"got {len(call.tensors)}", span)
    bound: dict[str, Value] = {}
    for input_name, (t, _) in zip(block.inputs, call.tensors, strict=False):
        bound[input_name] = t
    kwargs = dict(call.kwargs) if call.kw_tensors else call.kwargs  # copied only to add to
    for key, (t, sp) in call.kw_tensors.items():
        if key in block.inputs:
            if key in bound:
                raise error("E0516", f"input `{key}` is given twice", sp)
            bound[key] = t
        else:
            kwargs[key] = (t, sp)
    missing = [i for i in block.inputs if i not in bound] if len(bound) < len(block.inputs) else None
    if missing:
        raise error("E0520", f"block `{name}` needs input(s) {', '.join(missing)}", span,
                    f"pass them as `{name}({', '.join(block.inputs)}, ...)` or chain: `x -> {name}(...)`")
    return bound, _bind_params(block, call.scalars, kwargs)


def _bind_params(block: BlockDef, scalars: list[Located], kwargs: dict[str, Located]) -> dict[str, Value]:
    name = block.name
    if len(scalars) > len(block.params):
        raise error("E0521", f"block `{name}` takes {len(block.params)} parameter(s), got {len(scalars)}",
                    scalars[len(block.params)][1],
                    f"its parameters: {', '.join(p.name for p in block.params) or 'none'}")
    args: dict[str, Value] = {}
    for p, (v, _) in zip(block.params, scalars, strict=False):
        args[p.name] = v
    if not kwargs:
        return args
    params = {p.name: p for p in block.params}
    for key, (v, sp) in kwargs.items():
        if key not in params:
            raise error("E0522", f"block `{name}` has no parameter `{key}`", sp,
                        did_you_mean(key, [*params, *block.inputs]) or
                        f"its parameters: {', '.join(params) or 'none'}")
        if key in args:
            raise error("E0516", f"`{key}` is given twice", sp)
        args[key] = v
    return args

"""The static name check: every call in a file names something that exists.

Elaboration stops at a network's first problem; this pass reads every block and network of a file
at once and reports every unknown op or block, and every keyword argument that the op or block
called does not take (``archdsl check``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from .diagnostics import Diagnostic, did_you_mean
from .functions import BUILTINS
from .loader import Definitions
from .ops import get_op, has_op, op_names
from .syntax import (
    Assign,
    BlockDef,
    Body,
    Call,
    CallStep,
    Destructure,
    Expect,
    InitStmt,
    NetworkDef,
    Node,
    OutputDecl,
    Param,
    RepeatStep,
    RepeatStmt,
    Shared,
    StagesStep,
)
from .values import TENSOR_ATTRS, UNKNOWN_CALLABLE_HINT


def check_names(ns: Definitions, figure_calls: Collection[str] = ()) -> list[Diagnostic]:
    """Static pass over a file: every called name must be a local, a parameter, a block, an op or a
    builtin — or, as the whole target of an `expect` line, one of `figure_calls`, the figures of the
    analysis that may be written as a call (`expect rf("layer4") == 427`: `archdsl verify` reads
    them; the caller names them, as the analysis passes are no concern of the language's core).
    Finds all unknown names at once (elaboration stops at the first problem)."""
    problems: list[Diagnostic] = []
    known_global = set(ns.blocks) | set(op_names()) | set(BUILTINS)
    for item in ns.module.items:
        if not isinstance(item, BlockDef | NetworkDef):
            continue
        local: set[str] = {p.name for p in item.params}
        _collect_assigned(item.body, local)
        figures = {id(n.target) for n in _walk(item.body)
                   if isinstance(n, Expect) and isinstance(n.target, Call) and n.target.func in figure_calls}
        for call in _collect_calls(item.body):
            if id(call) in figures:
                continue
            if call.func not in local and call.func not in known_global:
                # A call fed by `->` takes a tensor, so the numeric builtins are no candidates.
                candidates = known_global - set(BUILTINS) if isinstance(call, CallStep | Shared) else known_global
                hint = (_figure_hint(call.func) if call.func in figure_calls
                        else did_you_mean(call.func, [*candidates, *local]) or UNKNOWN_CALLABLE_HINT)
                problems.append(Diagnostic("E0402", f"unknown op or block `{call.func}`", call.func_span, hint))
            elif call.func not in local:
                problems.extend(_check_keywords(call, ns))
    return problems


def _figure_hint(func: str) -> str:
    """What to write for a figure's call form (`rf(X)`) used anywhere but as a whole `expect` target."""
    where = f"`{func}(X)` is read only as the whole target of an `expect` line (`expect {func}(X) == …`)"
    if func in TENSOR_ATTRS:
        return f"{where}; elsewhere a tensor `x` gives it as `x.{func}`"
    return f"{where}; it is a figure of the analysis, not a value in the body"


def _walk(node: Any) -> Iterator[Node]:
    if isinstance(node, InitStmt):  # `kaiming_normal(…)` names a scheme, not an op: elaboration checks it
        yield node
        for arg in node.args:
            yield from _walk(arg.value.args if isinstance(arg.value, Call) else arg.value)
        yield from _walk(node.targets)
    elif isinstance(node, Node):
        yield node
        for value in vars(node).values():
            yield from _walk(value)
    elif isinstance(node, tuple):
        for item in node:
            yield from _walk(item)


def _collect_assigned(body: Body, names: set[str]) -> None:
    for node in _walk(body):
        if isinstance(node, Assign):
            names.add(node.target)
        elif isinstance(node, OutputDecl):
            names.add(node.name)
        elif isinstance(node, Destructure):
            names.update(node.targets)
        elif isinstance(node, Param):
            names.add(node.name)
        elif isinstance(node, StagesStep):  # table columns may hold blocks: `stages(op, c) {…} op(c)`
            names.update(node.columns)
        elif isinstance(node, RepeatStep | RepeatStmt) and node.var:
            names.add(node.var)


def _collect_calls(body: Body) -> list[Call | CallStep | Shared]:
    return [n for n in _walk(body) if isinstance(n, Call | CallStep | Shared)]


def _check_keywords(call: Call | CallStep | Shared, ns: Definitions) -> list[Diagnostic]:
    """Keyword arguments must name an attribute of the op, or a parameter or input of the block."""
    if call.func in ns.blocks:
        block = ns.blocks[call.func][0]
        known, what = [p.name for p in block.params] + list(block.inputs), f"block `{call.func}`"
    elif has_op(call.func) and call.func not in BUILTINS:
        known, what = list(get_op(call.func).Attrs.model_fields), f"`{call.func}`"
    else:
        return []
    return [Diagnostic("E0303", f"{what} has no attribute `{a.name}`", a.span,
                       did_you_mean(a.name, known) or f"it takes: {', '.join(known) or 'no attributes'}")
            for a in call.args if a.name is not None and a.name not in known]

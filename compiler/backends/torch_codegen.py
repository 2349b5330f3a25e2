"""PyTorch code generation: one elaborated network → one standalone Python file that imports only torch.

The generated file holds the helper classes the network's ops need (declared once, on the op), one
``nn.Module`` class per block definition and structure, and one class for the network. A block's
instances share a class when their code differs only in constants (integers, floats, booleans, the
class of an argument-free module like an activation), which become its constructor arguments, named
after the block's parameters (``Bottleneck(in_channels, c, stride, downsample)``); a submodule that
only some instances build and apply in place is built under a flag, and so is the tail of the
forward that only some run (a residual connection, ``MBConv``'s ``if self.residual:``). Submodules
mirror the spec's node paths, so the state_dict key of every op node is its IR name plus
``.weight``/``.bias``/… (``layer1.0.conv1.weight``, exactly as torchvision; an op whose state is one
bare parameter, like SSD's ``scale_weight``, is that key itself). Each ``forward`` reads like
hand-written code: a container whose modules run one after another is called once
(``x = self.layer1(x)``), and a value takes over the name of an input that dies where it is made;
as in torchvision's models, a value that dies where it is read is overwritten there
(``nn.ReLU(inplace=True)`` after a batch norm, ``out += identity``: see ``TorchCodegen._dies_here``).

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

import ast
import io
import json
import linecache
import math
import os
import re
import textwrap
import tokenize
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from itertools import pairwise
from types import CodeType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from archdsl.diagnostics import ArchError, Diagnostic, Span, error
from archdsl.ir import IR, IRNode, Port, output_name
from archdsl.ops import Shape, py_number
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
    family_class_name,
    is_attribute,
    py_str,
    safe_comment,
    wrap,
)
from .torch_init import MARK, ClassInit, class_init_statements, init_statements

# How generated code begins a list of modules it appends to (`as block[]`, a stage's blocks), and
# how a class's statements are read back for the lists it builds.
_LIST_START = re.compile(r"(\w+): list\[nn\.Module\] = \[\]")


def _new_list(var: str) -> str:
    return f"{var}: list[nn.Module] = []"

if TYPE_CHECKING:
    from torch import nn

    from archdsl.network import CompiledNetwork
    from archdsl.syntax import Node


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
        self.chain_calls: list[_ChainCall] = []  # one-input one-output block calls, for _collapse_runs
        self.loop_var: str | None = None  # the variable of the forward's loops over passes (_loop_passes)
        self.numbered = False  # whether a container below the class's own submodules is numbered (`repeat`'s)
        self.unrolled = 0  # the forward's statements that its loops over passes run more than they hold
        self.indexed = False  # the class is an nn.Sequential with a forward of its own: `self[0]` (container)
        self.declared: dict[Port, str] = {}  # the values the block declares as outputs, by their names
        self.named: dict[Port, str] = {}  # the values the spec's variables hold, by their names (IR.values)
        self.kept: set[str] = set()  # the variables named so: `_named` gives them to no other value

    def value_name(self, port: Port, fallback: str) -> str:
        """The variable of the value at `port`: named as the block declares it where it is an output
        the block returns, else as the spec's variable that holds it (both kept), else after
        `fallback`, a name another value may take over."""
        name = self.declared.get(port) or self.named.get(port)
        if name is None:
            return self.names.create(fallback)
        var = self.names.create(name)
        self.kept.add(var)
        return var

    def add_module(self, rel: tuple[str, ...], init: str, span: Span) -> str:
        """Place a submodule at `rel`; returns a placeholder for its reference in forward code."""
        slot = self.root
        last = len(rel) - 1
        for depth, part in enumerate(rel):
            child = slot.children.get(part)
            if child is None:  # a part already placed was checked then
                check_attribute(part, span)
                child = slot.children[part] = _Slot(span, init if depth == last else None)
                self.numbered = self.numbered or (depth > 0 and part.isdecimal())
            elif depth == last or child.init is not None:
                what = ".".join(rel[:depth + 1])
                raise error("E0702", f"`{safe_comment(what)}` names both a layer and a group of layers", span,
                            "give the layer or the group another name with `as NAME`")
            slot = child
        return self.reuse(rel)

    def reuse(self, rel: tuple[str, ...]) -> str:
        """A placeholder for the submodule at `rel`, placed before (a shared instance applied again)."""
        self.refs.append(rel)
        return f"\x00{len(self.refs) - 1}\x00"

    def ref(self, rel: tuple[str, ...]) -> str:
        return self.ref_from(f"self[{rel[0]}]" if self.indexed else _self_attr(rel[0]), rel[:1], rel[1:])

    def ref_from(self, out: str, at: tuple[str, ...], rel: tuple[str, ...]) -> str:
        """The reference to the submodule at `at + rel`, from `out`, the submodule at `at`."""
        slot = self.slot(at)
        for part in rel:
            out += f"[{part}]" if slot.sequential else f"[{py_str(part)}]"
            slot = slot.children[part]
        return out

    def slot(self, rel: tuple[str, ...]) -> _Slot:
        slot = self.root
        for part in rel:
            slot = slot.children[part]
        return slot

    def resolve(self, line: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.ref(self.refs[int(m.group(1))]), line) if "\x00" in line else line

    def sequence(self, args: list[str]) -> list[str] | None:
        """A block whose layers are named 0, 1, 2 … and run one after another, as torchvision's
        Conv2dNormActivation (`as 0`, `as 1`, …), is an `nn.Sequential` itself: its constructor
        statements (`layers.append(…)` per layer, then `super().__init__(*layers)`), else None."""
        slots = self.root.children
        if not slots or len(args) != 1 or not self.root.sequential or any(s.init is None for s in slots.values()):
            return None
        value = args[0]
        for k, line in enumerate(self.lines[:-1]):
            m = re.fullmatch(rf'(\w+) = getattr\(self, "{k}"\)\({value}\)', self.resolve(line))
            if m is None:
                return None
            value = m[1]
        if len(self.lines) != len(slots) + 1 or self.lines[-1] != f"return {value}":
            return None
        return self._sequential_init()

    def container(self) -> list[str] | None:
        """A block whose layers are named 0, 1, 2 … but whose forward is more than running them one
        after another (YOLOv4's backbone stages, tapped after the third and the fourth) is an
        `nn.Sequential` too, with a forward of its own that reads `self[0]`: its constructor
        statements, else None. Sets `indexed`, so call it before resolving the forward's lines."""
        slots = self.root.children
        if not slots or not self.root.sequential or any(s.init is None for s in slots.values()):
            return None
        self.indexed = True
        return self._sequential_init()

    def _sequential_init(self) -> list[str]:
        return [_new_list("layers"), *(f"layers.append({s.init})" for s in self.root.children.values()),
                "super().__init__(*layers)"]

    def init_statements(self, lists: tuple[str, ...] = ()) -> list[str]:
        """One unwrapped statement per top-level submodule: `self.name = …`, or `self.add_module(…)`
        for a name that is no attribute (`as 0`, `as class`), as torch's containers register it. A
        list the spec appends to (`as block[]`, `lists`) is built as torchvision builds it, a
        statement per entry (`layers.append(…)`, so that an entry the spec builds under an `if` is
        one statement under that `if`) and then `self.block = nn.Sequential(*layers)`."""
        out: list[str] = []
        for name, slot in self.root.children.items():
            if name in lists and slot.init is None and slot.sequential and is_attribute(name):
                var = "layers" if len(lists) == 1 else f"{name}_layers"
                out += [_new_list(var), *(f"{var}.append({self._render(c)})" for c in
                                                          slot.children.values()),
                        f"self.{name} = nn.Sequential(*{var})"]
            else:
                out.append(f"self.{name} = {self._render(slot)}" if is_attribute(name)
                           else f"self.add_module({py_str(name)}, {self._render(slot)})")
        return out

    def _render(self, slot: _Slot) -> str:
        """One-line constructor source of a slot; `_wrap` breaks it where it is too long."""
        if slot.init is not None:
            return slot.init
        if slot.sequential:
            return f"nn.Sequential({', '.join(self._render(c) for c in slot.children.values())})"
        items = ", ".join(f"{py_str(k)}: {self._render(c)}" for k, c in slot.children.items())
        return f"nn.ModuleDict({{{items}}})"


class _ChainCall(NamedTuple):
    """A forward line `output = self.<rel>(input)` that calls a submodule (a block or an op's module);
    a tuple, made per layer (a frozen dataclass's constructor costs several times as much)."""

    line: int
    rel: tuple[str, ...]
    input: str
    output: str


def _rename(line: str, old: str, new: str) -> str:
    """`line` with the variable `old` called `new` (attributes and string literals untouched)."""
    return _renamed(line, {old: new}) if old in line else line


def _container_calls(calls: list[_ChainCall]) -> dict[tuple[str, ...], list[_ChainCall]]:
    """The calls of each container's modules, by container (every container above one, too)."""
    runs: dict[tuple[str, ...], list[_ChainCall]] = {}
    for call in calls:
        if len(call.rel) >= 2:
            runs.setdefault(call.rel[:-1], []).append(call)
    for container in list(runs):
        for k in range(1, len(container)):
            runs.setdefault(container[:k], [])
    return runs


def _collapse_runs(body: _ClassBody) -> None:
    """Call a container once (`x = self.layer1(x)`) where the forward calls all of its modules one
    after another, each on the previous one's output and nothing else reading those."""
    runs = _container_calls(body.chain_calls)
    dropped: set[int] = set()
    renamed: dict[str, str] = {}  # an earlier run's last output → the run's name
    # The lines holding each name as a token (attributes too), kept as lines change: which lines
    # read a run's values, or need its last output renamed, without a look at every line per run.
    holders: _Holders | None = None
    # Innermost containers first: a container called once is a call in its own container's run
    # (`features.1` of EfficientNet's `features`, itself a sequence of blocks).
    for container in sorted(runs, key=len, reverse=True):
        calls = runs[container]
        if len(calls) == 1 and calls[0].rel[-1] != "0":  # one call: of the container's only child, `0`
            continue
        calls.sort(key=lambda c: c.line)  # with the calls of the containers inside it, in order
        slot = body.slot(container)
        if not (slot.sequential and [c.rel[-1] for c in calls] == list(slot.children)):
            continue
        if not all(all(k in dropped for k in range(a.line + 1, b.line))
                   and renamed.get(b.input, b.input) == a.output for a, b in pairwise(calls)):
            continue
        if holders is None:
            holders = _Holders(body.lines)
        run = {c.line for c in calls}
        if any(i not in run for c in calls[:-1] for i in holders.lines_of(c.output)):
            continue
        last = calls[-1].output  # named after the spec's variable (kept), the run's value keeps the name
        name = last if last in body.kept else body.names.create("_".join(container))
        first = renamed.get(calls[0].input, calls[0].input)
        # The line holds a placeholder, as every reference until naming (a loop over passes reads it
        # as data); its words are the reference's text, as the lines that read it there see it.
        holders.set(calls[0].line, f"{name} = {body.reuse(container)}({first})",
                    f"{name} = {body.ref(container)}({first})")
        dropped.update(c.line for c in calls[1:])
        renamed[last] = name
        for i in sorted(holders.lines_of(last)):  # the lines that hold it: the others stay as they are
            if i > calls[-1].line:
                shown = holders.shown.get(i)
                holders.set(i, _rename(body.lines[i], last, name),
                            None if shown is None else _rename(shown, last, name))
        if len(container) >= 2:
            runs.setdefault(container[:-1], []).append(_ChainCall(calls[0].line, container, first, name))
    body.lines = [line for i, line in enumerate(body.lines) if i not in dropped]
    body.chain_calls = []


# A forward line that calls a block of several outputs: `a, b = \x00k\x00(c, d)`.
_MULTI_CALL = re.compile("((?:[A-Za-z]\\w*, )+[A-Za-z]\\w*) = \x00(\\d+)\x00\\(([A-Za-z]\\w*(?:, [A-Za-z]\\w*)*)\\)\\Z")


class _Passes(NamedTuple):
    """A run of passes over a numbered container (`nn.Sequential` of n ≥ 2 children, `repeat n`'s):
    the forward lines [start, start + m·n), pass j's m lines applying child j (and nothing else of
    the container), each equal to the one before but for its names and its child (see _pass_form)."""

    container: tuple[str, ...]
    start: int
    m: int
    n: int
    state: list[tuple[str, int]]  # what a pass hands the next: (the name pass 0 reads, its definition's ordinal)
    first: list[str]  # pass 0's names, in the order it defines them
    last: list[str]  # the last pass's
    inner: set[str]  # the names of the passes but the last (nothing after the run may read them)
    reads: set[str]  # the names from before the run that pass 1 (so every pass after the first) reads


# A pass in a form equal for equal passes: its lines split into `_READ_TOKENS`'s tokens and the text
# between them, a name the pass defines as ("def", its ordinal), one the previous pass defines as
# ("prev", its ordinal), a reference to the pass's own child as ("ref", the path below the child).
_PassForm = list[tuple[object, ...]]


def _pass_form(body: _ClassBody, run: tuple[tuple[str, ...], int, int], j: int,
               before: dict[str, int]) -> tuple[_PassForm, dict[str, int], set[str]] | None:
    """Pass j of `run` (container, start, m) in its form, the names it defines (with their ordinals)
    and, for pass 1, the names from before the pass it reads; None where a line is no plain statement."""
    container, start, m = run
    c = len(container)
    forms: dict[str, object] = {name: ("prev", o) for name, o in before.items()}  # a token → its form
    defs: dict[str, int] = {}
    form: _PassForm = []

    def ref(token: str) -> object:  # a reference: to the pass's child (or inside it), or another
        rel = body.refs[int(token[1:-1])]
        return ("ref", rel[c + 1:]) if rel[:c] == container else ("abs", rel)

    for line in body.lines[start + j * m:start + (j + 1) * m]:
        if line.startswith(("\t", "return")) or line.endswith(":") or "self." in line:
            return None
        pieces: list[object] = list(_PASS_TOKENS.split(line))
        # The names it defines: one before ` = ` (`x = …`, most lines), else as _named reads them.
        head = [pieces[1]] if len(pieces) > 2 and pieces[0] == "" and pieces[2] == " = " else (
            _WORD.findall(t[1]) if (t := _TARGETS.match(line)) else [])
        for name in cast(list[str], head):
            if name not in defs:
                forms[name] = ("def", defs.setdefault(name, len(defs)))
        pieces[1::2] = [forms.get(t) or (ref(t) if t[0] == "\x00" else t) for t in cast(list[str], pieces[1::2])]
        form.append(tuple(pieces))
    reads = {t for line in form for t in line[1::2] if isinstance(t, str) and (t[0].isalpha() or t[0] == "_")
             } if j == 1 else set()
    return form, defs, reads


def _passes(body: _ClassBody, container: tuple[str, ...], start: int, m: int, n: int) -> _Passes | None:
    """The run of n passes of m lines over `container` from line `start`, where pass 0 reads, in
    the places where pass 1 reads values of pass 0, values from before the run (one name per
    value), and every later pass equals pass 1 (reading the values of the pass before it)."""
    run = (container, start, m)
    zeroth = _pass_form(body, run, 0, {})
    if zeroth is None:
        return None
    form0, defs0, _ = zeroth
    firstth = _pass_form(body, run, 1, defs0)
    if firstth is None:
        return None
    form1, prev, reads = firstth
    state = _handed(form0, form1)
    if state is None:
        return None
    inner = set(defs0)
    for j in range(2, n):
        found = _pass_form(body, run, j, prev)
        if found is None or found[0] != form1:
            return None
        inner.update(prev)
        prev = found[1]
    return _Passes(container, start, m, n, [(a, q) for q, a in state.items()], list(defs0), list(prev), inner, reads)


def _handed(form0: _PassForm, form1: _PassForm) -> dict[int, str] | None:
    """Where pass 0 (`form0`) and pass 1 (`form1`) differ only in what pass 1 reads of pass 0: each
    such value's ordinal in pass 0 and the name pass 0 reads in its place, one name per value; else None."""
    state: dict[int, str] = {}
    ordinal: dict[str, int] = {}
    for line0, line1 in zip(form0, form1, strict=True):
        if len(line0) != len(line1):
            return None
        for a, b in zip(line0, line1, strict=True):
            if a == b:
                continue
            if not (isinstance(b, tuple) and b[0] == "prev" and isinstance(a, str) and a.isidentifier()):
                return None
            if state.setdefault(b[1], a) != a or ordinal.setdefault(a, b[1]) != b[1]:
                return None
    return state


_ChildLines = dict[tuple[str, ...], dict[int, int]]  # a numbered container → child → a line


def _child_lines(body: _ClassBody) -> tuple[_ChildLines, _ChildLines, set[tuple[str, ...]]]:
    """From the references the forward's lines hold: for each numbered container, the first and the
    last line that references each child (or something inside it); and the submodules referenced."""
    firsts: _ChildLines = {}
    lasts: _ChildLines = {}
    called: set[tuple[str, ...]] = set()
    for i, line in enumerate(body.lines):
        if "\x00" not in line:
            continue
        for k in _PLACEHOLDER.findall(line):
            rel = body.refs[int(k)]
            called.add(rel)
            for d in range(1, len(rel)):
                if rel[d].isdigit():
                    j = int(rel[d])
                    firsts.setdefault(rel[:d], {}).setdefault(j, i)
                    lasts.setdefault(rel[:d], {})[j] = i
    return firsts, lasts, called


def _pass_runs(body: _ClassBody) -> list[_Passes]:
    """The runs of passes in the forward, in order; of two that start on one line, the outer one."""
    firsts, lasts, called = _child_lines(body)
    found: list[tuple[int, int, tuple[str, ...], int, int]] = []
    for container, first in firsts.items():
        slot = body.slot(container)
        n = len(slot.children)
        if n < 2 or slot.init is not None or not slot.sequential or len(first) != n or container in called:
            continue
        start, m = first[0], first[1] - first[0]
        if m > 0 and all(first[j] == start + j * m and lasts[container][j] < start + (j + 1) * m for j in range(n)):
            found.append((start, len(container), container, m, n))
    runs: list[_Passes] = []
    end = 0
    for start, _, container, m, n in sorted(found):
        if start >= end and (run := _passes(body, container, start, m, n)) is not None:
            runs.append(run)
            end = start + m * n
    return runs


def _loop_passes(body: _ClassBody) -> None:
    """Each run of equal passes over a numbered container (`repeat n { conv -> bn }`'s, one child
    per pass) as the loop a person writes (`for layer in self.repeat: x = layer["conv"](x)`, …),
    made from the passes as data: the first pass's lines, the child it applies read as the loop's
    variable, its names given as `_reuse_names` gives them, the values a pass hands the next kept
    in the names the first pass reads them from. After the loop every variable holds its last
    pass's value, as the unrolled lines leave them. The run's lines are read once, and whatever
    follows (naming, classes, the text) sees the loop alone."""
    runs = _pass_runs(body) if body.numbered else []
    if not runs:
        return
    out: list[str] = []  # the lines, last first
    readers: dict[str, list[int]] = {}  # a name → the lines of `out` that read it

    def add(line: str) -> None:
        out.append(line)
        for name in set(_names(line)):
            readers.setdefault(name, []).append(len(out) - 1)

    end = len(body.lines)
    for run in reversed(runs):
        stop = run.start + run.m * run.n
        for i in range(end - 1, stop - 1, -1):
            add(body.lines[i])
        loop = _pass_loop(body, run, readers)
        lines = body.lines[run.start:stop] if loop is None else loop[0]
        for old, new in (loop[1] if loop is not None else {}).items():  # the last pass's values read later
            for k in readers.pop(old, []):
                out[k] = _rename(out[k], old, new)
                readers.setdefault(new, []).append(k)
        for line in reversed(lines):
            add(line)
        end = run.start
    body.lines = body.lines[:end] + out[::-1]


def _pass_loop(body: _ClassBody, run: _Passes, after: Mapping[str, object]) -> tuple[list[str], dict[str, str]] | None:
    """The lines of `run`'s loop and the names of its last pass's values that lines after it read
    (`after`: the names those read), renamed; None where no loop computes what the passes do."""
    if any(name in after for name in run.inner):  # a value of an earlier pass read later: overwritten in a loop
        return None
    cell = _MULTI_CALL.match(body.lines[run.start]) if run.m == 1 else None
    if cell is not None:
        return _cell_loop(body, run, cell)
    state: list[str] = []  # the variable of each value a pass hands the next
    copies: list[tuple[str, str]] = []
    for name, _ in run.state:
        if name in after or name in run.reads:  # read again after the first pass: the loop keeps it
            copies.append((body.names.create(name), name))
            state.append(copies[-1][0])
        else:
            state.append(name)
    lines = body.lines[run.start:run.start + run.m]
    if copies:
        lines = [_renamed(line, {old: new for new, old in copies}) for line in lines]
    kept = [o for o, name in enumerate(run.last) if name in after]
    # A last statement reading what a pass hands the next and what is read after the run keeps them alive.
    live = ", ".join(dict.fromkeys([*(run.first[q] for _, q in run.state), *(run.first[o] for o in kept)]))
    named, alias = _named([*lines, live], state)
    if any(alias.get(run.first[q]) != s for (_, q), s in zip(run.state, state, strict=True)):
        return None
    if body.loop_var is None:  # the loops share it: each binds it before its body reads it
        body.loop_var = body.names.create("layer")
    var, c = body.loop_var, len(run.container)
    child = (*run.container, "0")

    def local(m: re.Match[str]) -> str:
        rel = body.refs[int(m[1])]
        return body.ref_from(var, child, rel[c + 1:]) if rel[:c + 1] == child else m[0]

    loop = [f"{', '.join(new for new, _ in copies)} = {', '.join(old for _, old in copies)}"] if copies else []
    loop.append(f"for {var} in {body.reuse(run.container)}:")
    loop += ["\t" + _PLACEHOLDER.sub(local, line) for line in named[:-1]]
    # Its statements run m·n times where it holds len(loop): counted where classes are ordered by
    # size (_Structure.size), as the unrolled lines were. (A loop over cells was written as a loop
    # before classes were made, and counts as written.)
    body.unrolled += run.m * run.n - len(loop)
    return loop, {run.last[o]: alias.get(run.first[o], run.first[o]) for o in kept}


def _cell_loop(body: _ClassBody, run: _Passes, call: re.Match[str]) -> tuple[list[str], dict[str, str]] | None:
    """The loop of a run whose passes each call one child of several outputs (`call`, pass 0's line)
    on the outputs of the one before, in one order and nothing else (EfficientDet's BiFPN layers),
    as effdet's BiFpn runs its layers: `for cell in self.fpn["cell"]: p3, p4 = cell(p4, p3)`. The
    loop's variables are named after the first pass's outputs; before the loop they take the first
    pass's inputs. None where the passes read anything else."""
    inputs, outputs = call[3].split(", "), call[1].split(", ")
    if (body.refs[int(call[2])] != (*run.container, "0") or run.reads or len(set(inputs)) != len(inputs)
            or not len(inputs) == len(outputs) == len(run.state)):
        return None
    # Named as the first pass's outputs, whose names the loop frees: the block's output names where it
    # declares them (`o3`), else the layer's name without the child's (`c_0_p` as `p`).
    stem = "_".join((*run.container, "0")) + "_"
    names = [body.names.create(n[len(stem):]) if n.startswith(stem) else n for n in run.first]
    state = [names[q] for _, q in run.state]  # as a child takes them
    var = body.names.create(run.container[-1])
    start = f"{', '.join(state)} = {', '.join(inputs)}"
    loop = [start if len(INDENT * 2 + start) <= WIDTH else f"{', '.join(state)} = ({', '.join(inputs)})",
            f"for {var} in {body.reuse(run.container)}:", f"\t{', '.join(names)} = {var}({', '.join(state)})"]
    return loop, dict(zip(run.last, names, strict=True))


class _Holders:
    """Lines, and the lines holding each name as a token (`_TOKEN`'s, after a dot too), kept
    up to date as lines are replaced."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.shown: dict[int, str] = {}  # a line whose words are those of another text (see set)
        self.words = [_words(line) for line in lines]
        self.holding: dict[str, set[int]] = {}
        for i, words in enumerate(self.words):
            for word in words:
                self.holding.setdefault(word, set()).add(i)

    def lines_of(self, name: str) -> set[int]:
        return self.holding.get(name, set())

    def set(self, i: int, line: str, shown: str | None = None) -> None:
        """Replace line i; with `shown`, its words are that text's (a reference's text for its placeholder)."""
        old, new = self.words[i], _words(line if shown is None else shown)
        if shown is None:
            self.shown.pop(i, None)
        else:
            self.shown[i] = shown
        for word in old - new:
            self.holding[word].discard(i)
        for word in new - old:
            self.holding.setdefault(word, set()).add(i)
        self.lines[i], self.words[i] = line, new


def _words(line: str) -> set[str]:
    return {n for n in _WORDS.findall(line) if n}


def _renamed(text: str, renames: Mapping[str, str]) -> str:
    """`text` with each variable in `renames` renamed (attributes and string literals untouched).
    Split into `_READ`'s tokens, a variable is a token that a name of `renames` equals (a string,
    an attribute with its dot or a number never does): no Python call per token."""
    pieces = _READ_TOKENS.split(text)
    pieces[1::2] = [renames.get(token, token) for token in pieces[1::2]]
    return "".join(pieces)


_ASSIGN = re.compile(r"([A-Za-z]\w*) = (.+)\Z", re.S)
_TARGETS = re.compile(r"(\(?[A-Za-z]\w*(?:, *[A-Za-z]\w*)*,?\)?) = (.+)\Z", re.S)


# What each memo of the parameterization keeps: a generation's keys, bounded for a long process
# that compiles many specs (the fuzzer, the test suite).
_MEMO_SIZE = 1 << 14


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


def _is_in_channels(expr: Node) -> bool:
    """Whether a spec expression is `in.channels`."""
    from archdsl.syntax import Attribute, Name

    return (isinstance(expr, Attribute) and expr.name == "channels"
            and isinstance(expr.obj, Name) and expr.obj.id == "in")


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


_IN_CHANNELS = "in_channels"  # a block instance's input channels among its values (TorchCodegen._instance)

class _Number(NamedTuple):
    """A number in a forward line: the line, where it starts and ends in it, and its value."""

    line: int
    start: int
    end: int
    value: int | float


def _forward_numbers(lines: list[str]) -> list[_Number] | None:
    """The numbers of a forward, in order, or None where a line is no Python this can read."""
    out: list[_Number] = []
    for k, line in enumerate(lines):
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
        except (tokenize.TokenError, SyntaxError):
            return None
        for t in tokens:
            if t.type == tokenize.NUMBER:
                value = ast.literal_eval(t.string)
                if type(value) not in (int, float):
                    return None
                out.append(_Number(k, t.start[1], t.end[1], value))
    return out


_NUMBER_MARK = "\x02"  # a number of a forward line, masked


def _masked(line: str, numbers: list[_Number], texts: list[str] | None = None) -> str:
    """The line with each of `numbers` (its own, in order) replaced by its text in `texts` (by
    `_NUMBER_MARK` where None)."""
    out, at = [], 0
    for k, n in enumerate(numbers):
        out += [line[at:n.start], _NUMBER_MARK if texts is None else texts[k]]
        at = n.end
    return "".join([*out, line[at:]])


def _reading_parameters(inst: _Instance, numbers: list[_Number], names: dict[int, str]) -> _Instance:
    """The instance with the forward's numbers at `names`' positions read from attributes named
    after the parameters that give them, which the constructor stores first, in the block's order."""
    forward = []
    for at, line in enumerate(inst.forward):
        here = [k for k, n in enumerate(numbers) if n.line == at and k in names]
        forward.append(_masked(line, [numbers[k] for k in here], [f"self.{names[k]}" for k in here]))
    order = sorted(names.items(), key=lambda kn: inst.params.index(kn[1]))
    stored = dict.fromkeys(f"self.{name} = {py_number(numbers[k].value)}" for k, name in order)
    return replace(inst, init=[*stored, *inst.init], forward=forward)


# A bucket of forward numbers: the block, its arguments, its kept names, its statements and its
# forward lines with the numbers masked.
_BucketKey = tuple[str, tuple[str, ...], frozenset[str], tuple[str, ...], tuple[str, ...]]


class _Numbered(NamedTuple):
    """An instance's forward numbers, each with its place among those of the fullest forward of
    its group (TorchCodegen._forward_buckets)."""

    instance: int
    numbers: list[_Number]
    places: list[int]


def _lines_within(key: _BucketKey, fullest: _BucketKey) -> list[int] | None:
    """Where each forward line of a bucket (`key`: …, its statements, its masked forward) is among
    the fullest's, whose statements and lines are its own with some more; None where they are not,
    or where its lines could sit in more than one way (two equal lines, one of them missing)."""
    def within(part: Sequence[str], whole: Sequence[str], backwards: bool) -> list[int] | None:
        order = range(len(whole) - 1, -1, -1) if backwards else range(len(whole))
        wanted = list(reversed(part)) if backwards else list(part)
        found: list[int] = []
        for j in order:
            if len(found) < len(wanted) and whole[j] == wanted[len(found)]:
                found.append(j)
        if len(found) < len(wanted):
            return None
        return found[::-1] if backwards else found

    if within(key[3], fullest[3], False) is None:
        return None
    # What a forward returns differs with its last part (`return relu`, `return add`): the values'
    # lines are placed, a return line holds no number to place.
    mine = [j for j, line in enumerate(key[4]) if not line.startswith("return ")]
    theirs = [j for j, line in enumerate(fullest[4]) if not line.startswith("return ")]
    if any(_NUMBER_MARK in key[4][j] for j in range(len(key[4])) if j not in mine):
        return None
    texts, full = [key[4][j] for j in mine], [fullest[4][j] for j in theirs]
    first, last = within(texts, full, False), within(texts, full, True)
    if first is None or first != last:
        return None
    places = [-1] * len(key[4])
    for j, k in zip(mine, first, strict=True):
        places[j] = theirs[k]
    return places


def _number_places(numbers: list[_Number], lines: list[int] | None, fullest: list[_Number]) -> list[int]:
    """Each number's place among the fullest forward's numbers: the same line (`lines`: each of
    this forward's lines there; None: this forward is the fullest's but for its numbers) and the
    same order within it."""
    if lines is None:
        return list(range(len(numbers)))
    at = {(n.line, sum(1 for o in fullest[:k] if o.line == n.line)): k for k, n in enumerate(fullest)}
    return [at[(lines[n.line], sum(1 for o in numbers[:k] if o.line == n.line))] for k, n in enumerate(numbers)]


def _reuse_names(lines: list[str], args: list[str], kept: frozenset[str] = frozenset()) -> list[str]:
    """Forward lines with as few names as hand-written code has: a value whose input dies where it
    is computed takes that input's name (`x = self.bn1(x)`), preferring the forward's arguments;
    a value read later besides keeps a name of its own, and so does one named `kept` (a block's
    declared output, `c3 = self.layer2(x)`), whose name no other value takes."""
    return _named(lines, args, kept)[0]


def _named(lines: list[str], args: list[str], kept: frozenset[str] = frozenset()) -> tuple[list[str], dict[str, str]]:
    """`_reuse_names`'s lines, and the name each variable of `lines` is given."""
    parsed: list[tuple[str, list[str], str, list[str]]] = []  # (targets' text, targets, the rest, names read)
    for line in lines:
        m = _TARGETS.match(line)
        head, expr = (m[1], m[2]) if m else ("", line)
        parsed.append((head, _WORD.findall(head), expr, _names(expr)))
    last: dict[str, int] = {}
    for i, (_, _, _, names) in enumerate(parsed):
        for name in names:
            last[name] = i
    alias = {a: a for a in args}
    out: list[str] = []
    for i, (head, targets, expr, names) in enumerate(parsed):
        used = {n: None for n in names if n in alias}  # in order; a dict, as a list lookup per token was quadratic
        text = expr
        if any(alias[n] != n for n in used):  # else the line reads as it is
            text = _renamed(expr, {n: alias[n] for n in used})
        dying = [alias[n] for n in used if last.get(n) == i and alias[n] not in kept]
        if len(dying) > 1:
            dying.sort(key=lambda n: n not in args)
        if len(targets) == 1 and dying and targets[0] in last and targets[0] not in kept and _ASSIGN.match(lines[i]):
            alias[targets[0]] = dying[0]
        else:
            alias.update((t, t) for t in targets)
        if not targets:
            out.append(text)
        else:
            renamed = alias[head] if head == targets[0] else _WORD.sub(lambda m: alias[m[0]], head)
            out.append(f"{renamed} = {text}")
    return out, alias


def _names(expr: str) -> list[str]:
    """The variables an expression reads (names not after a dot; strings skipped)."""
    return [n for n in _READ.findall(expr) if n]


# A variable's name in an assignment's targets.
_WORD = re.compile(r"[A-Za-z]\w*")
# `_TOKEN`'s name tokens (group 1), after a dot too: strings and numbers matched to be passed over.
_WORDS = re.compile(r'"(?:[^"\\]|\\.)*"|([A-Za-z_]\w*)|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?', re.S)
# `_TOKEN`'s tokens but those of one character (which the regular expression engine steps over),
# a name after a dot taken with the dot, a name read captured: names read found, and renamed, in
# one pass of the engine.
_READ = re.compile(r'"(?:[^"\\]|\\.)*"|\.[A-Za-z_]\w*|([A-Za-z_]\w*)|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?', re.S)
# `_READ`'s tokens, each whole in one group: `split` gives text between tokens and tokens, alternately.
_READ_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*"|\.[A-Za-z_]\w*|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)', re.S)
# `_READ_TOKENS`'s tokens, and a submodule's placeholder as one.
_PASS_TOKENS = re.compile("(\x00\\d+\x00|" + _READ_TOKENS.pattern[1:], re.S)


# ---------------------------------------------------------------------------------------------
# block instances and the classes they share

# A placeholder in constructor statements until the classes are known: `__I3__`, the construction
# of block instance 3 (`__C3__`: some instance of class 3, in a structure's key). Namespace never
# hands out a name that starts with `_`, so no spec name can look like one.
_INSTANCE_REF = re.compile(r"__I(\d+)__")
_REPEATED = re.compile(r"nn\.Sequential\(((?:__I\d+__, )*__I\d+__)\)")  # a list of block instances alone
# The tokens of a constructor statement: strings, names, numbers, any other character alone.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|.', re.S)
_HOLE = "\x00"
# Of `_TOKEN`'s tokens, the strings, brackets and commas alone, and a group of at most four levels
# (strings inside it whole) as one token: the regular expression engine steps over the rest (a call's
# arguments are found without a Python step per token; `nn.ModuleDict({"conv": nn.Conv2d(…)})`, a
# repeat's pass, is one).
_STRING = r'"(?:[^"\\]|\\.)*+"'
_GROUP = r'[(\[{](?:[^()\[\]{}"]++|' + _STRING + r'|INNER)*+[)\]}]'  # INNER: the groups inside
_BRACKET = re.compile(_STRING + "|" + _GROUP.replace("INNER", _GROUP.replace("INNER", _GROUP.replace(
    "INNER", _GROUP.replace("|INNER", "")))) + r'|[()\[\]{},]', re.S)
_IN_PLACE = ["inplace", "=", "True", ")"]  # the tokens after `nn.ReLU(` of an activation applied in place
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")  # a submodule reference in forward code until it is named
_NAME = re.compile(r"[A-Za-z_]\w*\Z")
# A call in a constructor statement: the callee (`nn.Conv2d`, `ConvBnAct`) and its parenthesis.
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\(")
# A forward line that applies one submodule to one value.
_APPLY = re.compile(r"(\w+) = self\.(\w+)\((\w+)\)\Z")



class ModuleClass(str):
    """A torch module class passed as a value (`nn.ReLU` in `ConvBn(…, nn.ReLU)`); its repr is its source."""

    def __repr__(self) -> str:
        return str(self)


# What a constructor statement's holes hold: the integers, floats and booleans of its arguments, and
# the torch classes of argument-free modules (an activation), which a class takes as arguments.
Constant = int | float | bool | ModuleClass
# A spec value a constant may be named after: a number, or a list of integers (a network's `layers`).
SpecValue = int | float | tuple[int, ...]
Argument = Constant | tuple[int, ...] | None
# torch constructor → the keyword arguments its op leaves out at their defaults (Op.torch_defaults).
KeywordDefaults = dict[str, tuple[tuple[str, str], ...]]


def _instance_ref(index: int) -> str:
    return f"__I{index}__"


def _shift(line: str, offset: int) -> str:
    """A constructor statement of one network's instances, placed `offset` further in a pool."""
    return _INSTANCE_REF.sub(lambda m: _instance_ref(int(m[1]) + offset), line) if offset else line


def _resolve_instances(line: str, calls: dict[int, str]) -> str:
    return _INSTANCE_REF.sub(lambda m: calls[int(m[1])], line)


def _constant(token: str) -> Constant | None:
    if token in ("True", "False"):
        return token == "True"
    if token[0].isdigit():
        return int(token) if token.isdigit() else float(token)
    return None


def _template(statements: list[str], defaults: KeywordDefaults) -> tuple[list[str], list[list[Constant]]]:
    """Constructor statements with every number and boolean replaced by a hole, and each one's
    constants; the keywords a constructor leaves out at their defaults written out (`groups=1`), so
    that a depthwise conv and a dense one have one template."""
    out: list[str] = []
    constants: list[list[Constant]] = []
    for statement in statements:
        template, values = _statement_template(statement, defaults)
        out.append(template)
        constants.append(list(values))
    return out, constants


class _Templates:
    """`_template`, each distinct statement worked out once: a network's block instances repeat
    their statements (a residual stack's blocks all build the same layers), and a class is
    grouped, then made, from the same statements."""

    def __init__(self) -> None:
        self.defaults: KeywordDefaults | None = None
        self.known: dict[str, tuple[str, tuple[Constant, ...]]] = {}

    def __call__(self, statements: list[str], defaults: KeywordDefaults) -> tuple[list[str], list[list[Constant]]]:
        if defaults is not self.defaults:  # what is known holds for one table of defaults
            self.defaults, self.known = defaults, {}
        out: list[str] = []
        constants: list[list[Constant]] = []
        for statement in statements:
            # `self.conv_5 = ` holds no constant and no call: what follows it is worked out once for
            # all the layers it builds (a wide graph's branches differ in their names alone).
            head, rest = _split_target(statement)
            found = self.known.get(rest)
            if found is None:
                found = self.known[rest] = _statement_template(rest, defaults)
            out.append(head + found[0])
            constants.append(list(found[1]))
        return out, constants


_SLOT_TARGET = re.compile(r"self\.[A-Za-z_]\w* = ")


def _split_target(statement: str) -> tuple[str, str]:
    """(`self.NAME = `, the rest) of a constructor statement, or ("", the statement)."""
    target = _SLOT_TARGET.match(statement)
    return (statement[:target.end()], statement[target.end():]) if target else ("", statement)


_PADDING = re.compile(r"\(\w+ - 1\) // 2")  # a convolution's default padding (see _multiple)


def _statement_template(statement: str, defaults: KeywordDefaults) -> tuple[str, tuple[Constant, ...]]:
    """One statement's template and constants (see `_template`)."""
    constants: list[Constant] = []

    def hole(m: re.Match[str]) -> str:
        if m[1] is not None:  # `nn.ReLU()`, `nn.ReLU(inplace=True)` (the class a hole, the call kept), `nn.ReLU`
            constants.append(ModuleClass(f"nn.{m[1]}"))
            return _HOLE + m[2]
        if m[3] is not None:
            constants.append(m[3] == "True")
            return _HOLE
        if m[4] is not None:
            constants.append(int(m[4]) if m[4].isdigit() else float(m[4]))
            return _HOLE
        return m[0]  # a string, as it is

    return _CONSTANT.sub(hole, _keywords(statement, defaults, write=True)), tuple(constants)


# What `_template` makes a hole of, where `_TOKEN` would find it as a token: a module class
# `nn.NAME` (not after a dot) not called, called without arguments, or called with `inplace=True`
# alone (group 2: that call, kept); `True` or `False`; a number. Strings are matched to be passed
# over; the rest (names, whose digits are no number) the regular expression engine steps over.
_CONSTANT = re.compile(r'''"(?:[^"\\]|\\.)*"'''
                       r"|(?<![\w.])nn\.([A-Za-z_]\w*)(?!\w)(\(inplace=True\)|(?=\(\))|(?!\())"
                       r"|(?<!\w)(True|False)(?!\w)"
                       r"|(?<!\w)(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", re.S)


def _call_arguments(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose `(` is at `start`, and the position of its `)`.
    A group of at most two levels inside it is one token (`_BRACKET`), as its commas are no
    argument's end: a Sequential of 10⁵ layers is read in a third of the steps."""
    depth, args, begin = 1, [], start + 1
    for m in _BRACKET.finditer(text, start + 1):
        tok = m[0]
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[begin:m.start()].strip())
                return [a for a in args if a], m.start()
        elif tok == "," and depth == 1:
            args.append(text[begin:m.start()].strip())
            begin = m.end()
    raise ValueError(f"unbalanced call in generated code: {text!r}")


# A size of torch's 2-d layers, which take one value for both dimensions (`_pair`): the keyword and
# its tuple's parenthesis.
_PAIR_KEYWORD = re.compile(r"(?<![\w.])(kernel_size|stride|padding|dilation|output_padding)=\(")
_PAIR_LAYERS = ("nn.Conv2d(", "nn.ConvTranspose2d(", "nn.MaxPool2d(", "nn.AvgPool2d(", "nn.LPPool2d(")


def _scalar_pairs(statement: str) -> str:
    """A 2-d layer's size given as the same expression twice, written once, as torchvision writes it
    (`stride=stride`, not `stride=(stride, stride)`); a pair of numbers stays the pair its `repr`
    shows. Only in a statement whose classes are torch's (a class of the file's own may want a tuple).

    >>> _scalar_pairs("self.conv = nn.Conv2d(c, c, kernel_size=(k, k), stride=(1, 1), padding=(p, q))")
    'self.conv = nn.Conv2d(c, c, kernel_size=k, stride=(1, 1), padding=(p, q))'
    """
    if "=(" not in statement or not any(layer in statement for layer in _PAIR_LAYERS) or any(
            not m[1].startswith("nn.") and m[1].rsplit(".", 1)[-1][:1].isupper() for m in _CALL.finditer(statement)):
        return statement
    out, at = [], 0
    for m in _PAIR_KEYWORD.finditer(statement):
        if m.start() < at:
            continue
        items, end = _call_arguments(statement, m.end() - 1)
        if len(items) == 2 and items[0] == items[1] and _constant(items[0]) is None:
            out += [statement[at:m.end() - 1], items[0]]
            at = end + 1
    return "".join([*out, statement[at:]])


_KEYWORD = re.compile(r"(\w+)=(?!=)")


def _keywords(statement: str, defaults: KeywordDefaults, write: bool) -> str:
    """`statement` with the defaulted keywords of each known constructor written out in full
    (`write`), or left out where they hold their default (the form `torch_init` writes)."""

    def rewrite(callee: str, args: list[str]) -> str:
        known = dict(defaults[callee])
        given: dict[str, str] = {}
        rest: list[str] = []
        for arg in args:
            kw = _KEYWORD.match(arg)
            if kw and kw[1] in known:
                given[kw[1]] = arg[kw.end():]
            else:
                rest.append(arg)
        tail = [f"{k}={given.get(k, d)}" for k, d in known.items() if write or given.get(k, d) != d]
        return ", ".join(rest + tail)

    return _rewrite_calls(statement, lambda callee: bool(defaults.get(callee)), rewrite)


def _rewrite_calls(statement: str, wanted: Callable[[str], bool], rewrite: Callable[[str, list[str]], str],
                   calls: re.Pattern[str] = _CALL) -> str:
    """`statement` with the arguments of each call of a `wanted` callee replaced by what `rewrite`
    makes of them (the callee, its arguments), from the last call back, so that a call's arguments
    are read with the calls inside them rewritten.

    The text from `done` on is `pieces` (rewritten, in reverse order), while statement[:done] is as
    it was: one copy of the text in all, not one per call (a Sequential of 10⁵ layers); only a call
    that encloses one rewritten already needs the text put together first. `calls`: the calls to
    look at (`_CALL`'s, or a pattern finding only those of the callees wanted)."""
    pieces: list[str] = []
    done = len(statement)
    for m in reversed(list(calls.finditer(statement))):
        if not wanted(m[1]):
            continue
        args, end = _call_arguments(statement, m.end() - 1)
        if end >= done:  # it encloses a call rewritten already: read its arguments rewritten
            statement, pieces = statement[:done] + "".join(reversed(pieces)), []
            done = len(statement)
            args, end = _call_arguments(statement, m.end() - 1)
        pieces += [statement[end:done], rewrite(m[1], args)]
        done = m.end()
    return statement[:done] + "".join(reversed(pieces))


@dataclass(frozen=True)
class _Instance:
    """One block instance's generated code, before it is assigned a class."""

    scope: tuple[str, ...]
    block: str
    init: list[str]  # constructor statements; child blocks as `__I<k>__`
    forward: list[str]  # one line per value, each its own name (names are reused per class)
    args: list[str]
    values: dict[str, SpecValue]  # what a differing constant may be named after: parameters, locals, in_channels
    compress: bool = False  # a family's network: runs of equal blocks written as one loop
    size: int = 0  # the statements its forward runs (see _Structure.size)
    probe: bool = False  # a family network elaborated again with its common parameters changed (see _probe)
    definitions: dict[str, Node] = field(default_factory=dict)  # locals defined by an expression
    # The block's parameters, the arguments its call wrote (ScopeInfo.arguments), the conditions its
    # body tested: what its parent's class computes a constant from rather than take it.
    params: tuple[str, ...] = ()
    arguments: tuple[tuple[str | None, Node], ...] = ()
    conditions: tuple[tuple[Node, bool], ...] = ()
    kept: frozenset[str] = frozenset()  # _ClassBody.kept
    input: str | None = None  # the layer whose output it reads, where it reads one (see _input_channels)
    ir: IR | None = field(default=None, compare=False)  # the network's, whose layers these are (see _written_name)

    def argument(self, param: str) -> Node | None:
        """The expression the call passed for `param` as written, or None (a default, or unknown)."""
        positional = [value for name, value in self.arguments if name is None]
        named = {name: value for name, value in self.arguments if name is not None}
        if param in named:
            return named[param]
        k = self.params.index(param) if param in self.params else len(positional)
        return positional[k] if k < len(positional) else None


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


@dataclass(frozen=True)
class _Structure:
    """What makes instances share a class: block, constructor template (children by class), forward."""

    block: str
    template: tuple[str, ...]
    args: tuple[str, ...]
    forward: tuple[str, ...]
    # Its forward's length, a `repeat`'s loop counted as the statements it runs (see _pass_loop):
    # what "fullest" means where structures are ordered (_groups); no part of what makes a class.
    size: int = field(default=0, compare=False)
    kept: frozenset[str] = frozenset()  # the variables named after the block's outputs (_ClassBody.kept)


@dataclass(frozen=True)
class _Part:
    """An optional part of a class: a submodule applied in place (`x = self.downsample(x)`), built
    and applied when its flag is set; the tail of the forward (a residual connection), run when
    its flag is set, with the submodules only it uses; or some of a network's outputs (an auxiliary
    classifier), computed and returned when its flag is set, with what only they need."""

    name: str  # the submodule, the tail's flag, or the first of the outputs (a name for the flag)
    tail: bool = False
    outputs: tuple[str, ...] = ()  # the outputs' keys in the returned dict (Python string literals)
    appended: int | None = None  # an entry appended to a list (`layers.append(…)`): its statement

    @property
    def kept(self) -> bool:
        """Whether the class keeps the part's flag (`self.residual = residual`): its forward tests it."""
        return self.tail or bool(self.outputs)


@dataclass(frozen=True)
class _OutputCut:
    """How a network is a fuller one less some of its outputs: their keys, the forward lines and
    constructor statements of the fuller one that only they need, and the return line without them
    (in the fuller one's variables)."""

    keys: tuple[str, ...]
    lines: frozenset[int]
    statements: frozenset[int]
    returns: str


# A structure that serves a group: (structure, submodules left out, tail var, outputs left out).
_Member = tuple[int, frozenset[str], str | None, _OutputCut | None]


@dataclass(frozen=True)
class _Group:
    """The structures one class serves: the full one, and others that lack some of its parts."""

    full: int
    members: tuple[_Member, ...]


@dataclass
class _Class:
    """One generated block class: its template (constructor statements with holes), its members
    (instance index, each statement's constants, None for an optional statement it lacks, and which
    optional parts it has) and its parameters. `optional` maps a statement to its part in `parts`."""

    block: str
    template: list[str]
    args: list[str]
    forward: list[str]
    parts: list[_Part] = field(default_factory=list)
    optional: dict[int, int] = field(default_factory=dict)
    members: list[tuple[int, list[list[Constant] | None], tuple[bool, ...]]] = field(default_factory=list)
    name: str = ""
    params: list[str] = field(default_factory=list)
    init: list[str] = field(default_factory=list)
    arguments: list[list[Argument]] = field(default_factory=list)  # per member, each param's value
    unnamed: bool = False  # some parameter is named after nothing in the spec
    named: dict[str, str] = field(default_factory=dict)  # the spec's names the constructor has → their names there
    spec_params: list[str | None] = field(default_factory=list)  # each parameter's spec name, if any

    def parameterize(self, instances: list[_Instance], class_names: set[str],
                     signatures: dict[str, list[str]], defaults: KeywordDefaults,
                     spec_params: dict[str, list[str | None]] | None = None) -> None:
        """Name the constants that differ between members and fill the template's holes with them;
        the names shadow no class (`class_names`). A constant named after nothing in the spec takes
        the name of what it is passed to (`signatures`: the parameters of the classes made so far).
        Members without an optional statement pass None for such a name; the first of an in-place
        part's stands for its flag (`activation=None`, as torchvision's `activation_layer`). What the
        spec computes, the constructor computes: an argument of a child block as its call writes it
        (`SqueezeExcite(hidden, max(1, in_channels // 4))`; `spec_params`: each class's parameters'
        spec names), and a part's flag as the condition that builds it (`if hidden != in_channels:`),
        where that gives every member's value. A constant that several of the block's parameters
        give in every member is the one the layer's call writes, where that tells
        (`nn.Conv2d(s1x1, e3x3, …)` though e1x1 equals e3x3 in every instance)."""
        candidates = [instances[i].values for i, _, _ in self.members]
        shared = [n for n in sorted(candidates[0], key=lambda n: n == _IN_CHANNELS)
                  if all(n in c for c in candidates)]
        # A class that builds its appended entries in lists (`layers`: `init_statements`, `sequence`)
        # names no parameter or local after them.
        lists = {m[1] for i, _, _ in self.members for line in instances[i].init
                 if (m := _LIST_START.fullmatch(line))}
        names = Namespace(class_names | lists)
        spec_names: dict[str, str] = {}  # spec name → argument name
        # Constants named after nothing in the spec, per member (None: a member without the statement).
        unnamed: dict[int, tuple[tuple[Constant | None, ...], int, int | None]] = {}  # expr → (key, hole, part)
        exprs: list[str] = []
        bounds: set[str] = set()  # list elements that bound a loop so far (each stage its own)
        holes = _Holes(self.template)
        hole = 0
        constants: list[tuple[int, int, int, list[int]]] = []  # a constant's hole: its expr, statement, place, members
        for s in range(len(self.template)):
            having = [m for m, (_, consts, _) in enumerate(self.members) if consts[s] is not None]
            for q, column in enumerate(zip(*(self.members[m][1][s] or [] for m in having), strict=True)):
                # A loop's bound is the parameter that gives it even where the members agree.
                count = holes.in_range(hole) and _express(
                    column, [candidates[m] for m in having], shared, spec_names, names, taken=bounds)
                if count:
                    bounds.add(count)
                    exprs.append(count)
                elif len({(type(v), v) for v in column}) == 1:
                    constants.append((len(exprs), s, q, having))
                    exprs.append(repr(column[0]))
                else:
                    # A child block's argument as its call writes it (`c // 2`), before any name
                    # whose value merely agrees in every member (`in_channels`).
                    passed = self._passed(instances, (s, q), spec_params or {}, shared,
                                          {m: (candidates[m], v) for m, v in zip(having, column, strict=True)})
                    fits = [] if passed is not None else _fitting(column, [candidates[m] for m in having], shared)
                    chosen = self._written(instances, having, (s, q), fits, defaults) if fits else None
                    # A name as large by chance is no candidate (see _coincidental).
                    by_chance = set() if chosen else self._by_chance(instances, having, (s, q), fits, defaults)
                    expr = (_rename_all(passed[0], _name_all(passed[1], spec_names, names)) if passed is not None
                            else _express(column, [candidates[m] for m in having],
                                          [chosen] if chosen else [n for n in shared if n not in by_chance],
                                          spec_names, names))
                    if expr is None:
                        values = dict(zip(having, column, strict=True))
                        key = tuple(values.get(m) for m in range(len(self.members)))
                        unnamed[len(exprs)] = (key, hole, self.optional.get(s))
                    exprs.append(expr or "")
                hole += 1
        derived = self._derived(exprs, names, signatures, holes)
        # One argument per column; a column with gaps joins a full one it agrees with, else its gaps
        # pass None, and the first such of an in-place part stands for the part's flag.
        full = [key for key, _, _ in unnamed.values() if None not in key]
        fresh: dict[tuple[Constant | None, ...], str] = {}
        part_args: dict[int, str] = {}
        for pos, (key, at, k) in unnamed.items():
            key = next((f for f in full if all(a is None or (type(a), a) == (type(b), b)
                                               for a, b in zip(key, f, strict=True))), key)
            if key not in fresh:
                fresh[key] = names.create(holes.argument_name(at, signatures))
            exprs[pos] = fresh[key]
            if None in key and k is not None and not self.parts[k].kept:
                part_args.setdefault(k, fresh[key])
        tests = {k: _rename_all(text, _name_all(read, spec_names, names)) for k, (text, read)
                 in self._conditions(instances, candidates, shared).items() if k not in part_args}
        computed = self._computed(instances, spec_names, shared, names)
        part_args.update(self._flags_named(candidates, shared, spec_names, names))
        for pos, s, q, having in constants:  # after every name the class takes or computes is known
            exprs[pos] = self._named_constant(instances, having, (s, q), spec_names, spec_params or {},
                                              defaults, names) or exprs[pos]
        order = [n for n in _preference(candidates[0]) if n in spec_names and n not in computed]
        flags = [part_args.get(k) or names.create("residual" if part.tail else part.name if part.appended is None
                                                  else _entry_name(self.template[part.appended]))
                 for k, part in enumerate(self.parts)]
        taken = set(part_args) | set(tests)  # flags that are no parameter
        self.params = ([spec_names[n] for n in order] + list(fresh.values())
                       + [f for k, f in enumerate(flags) if k not in taken])
        self.spec_params = [*order, *(None for _ in range(len(self.params) - len(order)))]
        self.arguments = [[*(cand[n] for n in order), *(key[m] for key in fresh),
                           *(has for k, has in enumerate(self.members[m][2]) if k not in taken)]
                          for m, cand in enumerate(candidates)]
        self.init = [*computed.values(), *(f"{name} = {expr}" for expr, name in derived.items()),
                     *self._statements(flags, iter(exprs), defaults, set(part_args), tests)]
        self.forward = [re.sub(r"\x00(\d+)\x00", lambda m: flags[int(m[1])], line) for line in self.forward]
        self.unnamed = bool(fresh)
        self.named = dict(spec_names)

    def _flags_named(self, candidates: list[dict[str, SpecValue]], shared: list[str], spec_names: dict[str, str],
                     names: Namespace) -> dict[int, str]:
        """The flags of optional outputs named after the spec's boolean that is true exactly where the
        outputs are (`aux`), by part. The class keeps a flag as an attribute of that name, so a
        boolean that names a submodule too is passed over (the flag is then named after the output)."""
        found: dict[int, str] = {}
        attrs = set(_attributes(self.template))
        for k, part in enumerate(self.parts):
            if not part.outputs:
                continue
            for a in attrs:
                names.reserve(a)
            present = [has[k] for _, _, has in self.members]
            n = next((n for n in shared if n not in attrs and all(
                type(c[n]) is bool and c[n] == p for c, p in zip(candidates, present, strict=True))), None)
            if n is not None:
                if n not in spec_names:
                    spec_names[n] = names.create(n)
                found[k] = spec_names[n]
        return found

    def _derived(self, exprs: list[str], names: Namespace, signatures: dict[str, list[str]],
                 holes: _Holes) -> dict[str, str]:
        """A size computed from an argument (a convolution's padding) is a local named for what it is
        passed as, computed once however many holes take it (`padding = (k - 1) // 2`): each such
        expression's local, the holes (`exprs`) reading it."""
        derived: dict[str, str] = {}
        for pos, expr in enumerate(exprs):
            if _PADDING.fullmatch(expr):
                if expr not in derived:
                    derived[expr] = names.create(holes.argument_name(pos, signatures))
                exprs[pos] = derived[expr]
        return derived

    def _named_constant(self, instances: list[_Instance], having: list[int], at: tuple[int, int],
                        spec_names: dict[str, str], spec_params: dict[str, list[str | None]],
                        defaults: KeywordDefaults, names: Namespace) -> str | None:
        """A number equal in every member having statement s (`at`: its q-th constant) where the call
        making it writes a name the class takes or computes anyway: that name, or the child's
        argument as written over such names (`nn.Conv2d(in_channels, c, …, stride=(stride, stride))`
        in the downsampling of a basic block, whose instances with one all have stride 2); None
        where nothing written gives it, so that no name comes in for a number alone."""
        s, q = at
        value = self.members[having[0]][1][s][q]  # type: ignore[index]
        if type(value) is not int:
            return None
        values = {m: instances[self.members[m][0]].values for m in having}
        passed = self._passed(instances, at, spec_params, list(spec_names), {m: (v, value) for m, v in values.items()})
        if passed is not None:
            return _rename_all(passed[0], _name_all(passed[1], spec_names, names))
        known = _fitting([value] * len(having), list(values.values()), spec_names)
        chosen = self._written(instances, having, at, known, defaults, fitting=1) if known else None
        return spec_names[chosen] if chosen is not None else None

    def written_init(self, made: ClassInit, checks: list[tuple[int, dict[str, SpecValue], object]]) -> list[str] | None:
        """The class's own init statements (`made`), each number its instances differ in computed
        from the class's names as the spec writes it (`std=1 / (in_channels // first_groups)`); a
        name every instance gives the same value is that value. None where an expression reads
        anything else, or does not give every instance's number (`checks`: the mark, an
        instance's values, its number)."""
        constants = {n: v for n, v in checks[0][1].items()
                     if n not in self.named and isinstance(v, int | float) and not isinstance(v, bool)
                     and all(_same(values.get(n), v) for _, values, _ in checks)} if checks else {}
        texts: list[str] = []
        for w in made.written:
            text = _python_expression(w.expression, {*self.named, *constants}, [])
            if text is None:
                return None
            texts.append(text)
        if any(not _same(_evaluate(texts[k], values), value) for k, values, value in checks):
            return None
        names = {**self.named, **{n: py_number(v) for n, v in constants.items()}}
        return [MARK.sub(lambda m: _rename_all(texts[int(m[1])], names), line) for line in made.lines]

    def _written(self, instances: list[_Instance], having: list[int], at: tuple[int, int], fits: list[str],
                 defaults: KeywordDefaults, fitting: int = 2) -> str | None:
        """Of the names `fits`, each the q-th constant of statement s (`at`) in every member having
        it, the one its layer's call writes (see _written_name), where `fitting` or more fit (two:
        one needs no telling apart); else None."""
        s, q = at
        members = [self.members[m] for m in having]
        # A parameter or the input's channels: a local the constructor would compute from more than
        # the class takes now (ResNet's `width` from `base_width` and `groups`).
        named = [n for n in fits if n in instances[members[0][0]].params or n == _IN_CHANNELS]
        if len(fits) < fitting or not named:
            return None
        chosen = _written_name(self._statements_of(instances, having, s), q, fits, defaults)
        return chosen if chosen in named else None

    def _by_chance(self, instances: list[_Instance], having: list[int], at: tuple[int, int], fits: list[str],
                   defaults: KeywordDefaults) -> set[str]:
        """The names of `fits` as large as the q-th constant of statement s (`at`) only by chance in
        some member having it (see _coincidental)."""
        if not fits:
            return set()
        s, q = at
        statements = self._statements_of(instances, having, s)
        return {n for n in fits if _coincidental(statements, q, n, defaults)}

    def _statements_of(self, instances: list[_Instance], having: list[int],
                       s: int) -> list[tuple[_Instance, str, list[Constant]]]:
        """Each member having statement s: its instance, its statement and that statement's constants."""
        return [(instances[i], _line_of(instances[i], consts, s), consts[s] or [])
                for i, consts, _ in (self.members[m] for m in having)]

    def _passed(self, instances: list[_Instance], at: tuple[int, int], spec_params: dict[str, list[str | None]],
                shared: list[str], column: dict[int, tuple[dict[str, SpecValue], Constant]],
                ) -> tuple[str, list[str]] | None:
        """The expression (and the names it reads) that the spec passes for the q-th hole of statement
        s (`at`) where that hole is an argument of a generated class named after its block's parameter:
        the child's call as written, the same in every member having the statement and giving its
        constant there (`column`: member → its values and the constant)."""
        s, q = at
        statement = self.template[s]
        found = _hole_call(statement, q, spec_params) if not _called(statement).isdisjoint(spec_params) else None
        if found is None:
            return None
        callee, position, occurrence = found
        param = spec_params[callee][position]
        texts: set[str | None] = set()
        read: list[str] = []
        known = set(shared)
        for i, consts, _ in self.members:
            if consts[s] is None:
                continue
            refs = _INSTANCE_REF.findall(_line_of(instances[i], consts, s))
            child = instances[int(refs[occurrence])] if param and occurrence < len(refs) else None
            if child is not None and param == _IN_CHANNELS:  # not written in the call: what makes the input's
                children = [instances[int(r)] for line in instances[i].init for r in _INSTANCE_REF.findall(line)]
                texts.add(_input_channels(instances[i], child, children, known, read))
            else:
                node = child.argument(param) if child is not None and param else None
                texts.add(None if node is None else _python_expression(node, known, read))
            if None in texts or len(texts) > 1:  # no one expression: the other members need not be read
                return None
        text = texts.pop() if len(texts) == 1 else None
        if text is None or not all(_same(_evaluate(text, values), v) for values, v in column.values()):
            return None
        return text, read

    def _conditions(self, instances: list[_Instance], candidates: list[dict[str, SpecValue]],
                    shared: list[str]) -> dict[int, tuple[str, list[str]]]:
        """Each part whose flag is a condition the block's body tests, the same in every member and
        true (or false, then negated) exactly where the member has the part: the test as Python,
        and the names it reads. A part two conditions could give is left a parameter."""
        out: dict[int, tuple[str, list[str]]] = {}
        for k, part in enumerate(self.parts):
            if part.outputs:  # a network's optional outputs: its flag (_flags_named)
                continue
            found: dict[str, list[str]] = {}
            for node, _ in dict.fromkeys(instances[self.members[0][0]].conditions):
                outcomes = [{t for c, t in instances[i].conditions if c == node} for i, _, _ in self.members]
                if any(len(o) != 1 for o in outcomes):
                    continue
                read: list[str] = []
                text = _python_expression(node, set(shared), read)
                flips = {next(iter(o)) != has[k] for o, (_, _, has) in zip(outcomes, self.members, strict=True)}
                if text is None or len(flips) != 1:
                    continue
                text = f"not ({text})" if flips.pop() else text
                if all(_same(_evaluate(text, c), has[k]) for c, (_, _, has) in zip(candidates, self.members,
                                                                                 strict=True)):
                    found.setdefault(text, read)
            if len(found) == 1:
                out[k] = next(iter(found.items()))
        return out

    def _computed(self, instances: list[_Instance], spec_names: dict[str, str], shared: list[str],
                  names: Namespace) -> dict[str, str]:
        """The spec's locals used here that the constructor computes from the parameters their
        definitions read (`width = int(c * (base_width / 64)) * groups`), rather than take: each
        local's statement, by spec name. A definition is used only if it is the same in every member
        and reads only parameters every member has (and `in.channels`), through known functions."""
        definitions = [instances[i].definitions for i, _, _ in self.members]
        out: dict[str, str] = {}
        for n in list(spec_names):
            node = definitions[0].get(n)
            if node is None or any(d.get(n) != node for d in definitions):
                continue
            read: list[str] = []
            expr = _python_expression(node, set(shared) - set(definitions[0]), read)
            if expr is None:
                continue
            for r in read:
                if r not in spec_names:
                    spec_names[r] = names.create(r)
            out[n] = f"{spec_names[n]} = {_rename_all(expr, spec_names)}"
        return out

    def _statements(self, flags: list[str], holes: Iterator[str], defaults: KeywordDefaults,
                    by_class: set[int], tests: dict[int, str]) -> list[str]:
        """The constructor's statements: the template filled, each optional part's under its flag
        (`by_class`: the parts whose flag is their module class argument, None when not built;
        `tests`: the parts whose flag the constructor computes, and how)."""
        out = [f"self.{flags[k]} = {tests.get(k, flags[k])}" for k, part in enumerate(self.parts) if part.kept]
        unwritten: dict[str, str] = {}  # each distinct constructor call's, once (see _Templates)
        for s, statement in enumerate(self.template):
            head, rest = _split_target(_fill(statement, holes))
            if rest not in unwritten:
                unwritten[rest] = _scalar_pairs(_keywords(rest, defaults, write=False))
            filled = head + unwritten[rest]
            k = self.optional.get(s)
            if k is None:
                out.append(filled)
            elif self.parts[k].appended is not None:  # an entry the spec builds under an `if`
                out += [f"if {f'{flags[k]} is not None' if k in by_class else tests.get(k, flags[k])}:", "\t" + filled]
            elif not self.parts[k].kept:  # built only when asked for; None otherwise, which forward tests
                test = f"{flags[k]} is not None" if k in by_class else tests.get(k, flags[k])
                out += [f"self.{self.parts[k].name} = None", f"if {test}:", "\t" + filled]
            else:
                if self.optional.get(s - 1) != k:
                    out.append(f"if self.{flags[k]}:" if k in tests else f"if {flags[k]}:")
                out.append("\t" + filled)
        return out

    def types(self) -> list[str]:
        """Each parameter's annotation, from the values the members pass."""
        return [_annotation([values[j] for values in self.arguments]) for j in range(len(self.params))]

    def calls(self) -> list[tuple[int, str]]:
        """(instance index, its construction) for every member."""
        return [(i, f"{self.name}({', '.join(map(_source, values))})")
                for (i, _, _), values in zip(self.members, self.arguments, strict=True)]


def _entry_name(statement: str) -> str:
    """What an entry appended to a list is called (a flag building it): its module's class in
    snake case (`layers.append(nn.ReLU6(…))`: `relu6`; `ConvBnAct(…)`: `conv_bn_act`).

    >>> _entry_name("layers.append(nn.SiLU(inplace=True))"), _entry_name("layers.append(ConvBnAct(8, 16))")
    ('silu', 'conv_bn_act')
    """
    m = re.match(r"\w+\.append\((?:nn\.)?(\w+)\(", statement)
    if m is None:  # its class is an argument (an activation's, as torchvision's `activation_layer`)
        return "activation"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", m[1]).lower()


def _source(value: Argument) -> str:
    """A constructor argument's source: a list of integers as a list, else its repr."""
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) else repr(value)


def _annotation(values: list[Argument]) -> str:
    """The type of a constructor parameter that takes `values` (None: the member leaves a part out)."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, tuple) for v in present):
        kind = "list[int]"
    elif all(isinstance(v, bool) for v in present):
        kind = "bool"
    elif all(isinstance(v, ModuleClass) for v in present):
        kind = "type[nn.Module]"
    elif all(type(v) is int for v in present):
        kind = "int"
    else:
        kind = "float"
    return f"{kind} | None" if len(present) < len(values) else kind


def _returns(forward: list[str]) -> str:
    """A forward's return annotation, from its return lines (a network whose outputs a flag
    governs returns a tensor or a dict: `torch.Tensor | dict[str, torch.Tensor]`)."""
    kinds: dict[str, None] = {}
    for line in forward:
        line = line.lstrip("\t")
        if not line.startswith("return "):
            continue
        if line.startswith("return {"):
            kinds["dict[str, torch.Tensor]"] = None
        else:
            count = line.count(",") + 1 if "," in line else 1
            kinds["torch.Tensor" if count == 1 else f"tuple[{', '.join(['torch.Tensor'] * count)}]"] = None
    return " | ".join(kinds) or "None"


class _Holes:
    """Where the holes of a template are, found once (a lookup per hole that scanned the template
    from its start was quadratic in a network of many layers)."""

    def __init__(self, template: list[str]) -> None:
        self.text = "\n".join(template)
        self.positions = [m.start() for m in re.finditer(_HOLE, self.text)]

    def in_range(self, k: int) -> bool:
        """Whether the k-th hole is the bound of a loop (`range(<hole>)`, `range(1, <hole>)`)."""
        pos = self.positions[k]
        return self.text.endswith("range(", 0, pos) or self.text.endswith(f"range({_HOLE}, ", 0, pos)

    def argument_name(self, k: int, params: dict[str, list[str]]) -> str:
        """A name for the k-th hole: the parameter it is passed to when it is an argument of a generated
        class (`params`: their parameters), the keyword it belongs to (`stride` in `stride=(<hole>, …)`),
        else `activation` for a class the statement calls (`layers.append(<hole>(inplace=True))`: only
        argument-free modules are holes) and `size` for a number."""
        text, pos = self.text, self.positions[k]
        depth, commas = 0, 0
        for i in range(pos - 1, -1, -1):
            ch = text[i]
            if ch in ")]}":
                depth += 1
            elif ch in "([{" and depth:
                depth -= 1
            elif ch in "([{":
                end = _stripped_end(text, i)
                callee = _word_before(text, end)
                if callee and callee in params and commas < len(params[callee]):
                    return params[callee][commas]
                keyword = _word_before(text, end - 1) if end and text[end - 1] == "=" else None
                if keyword:
                    return keyword
                break
            elif ch == "," and not depth:
                commas += 1
            elif ch == "=" and not depth:
                return _word_before(text, _stripped_end(text, i)) or "size"
        return "activation" if text.startswith("(", pos + len(_HOLE)) else "size"


def _stripped_end(text: str, end: int) -> int:
    """The end of `text[:end].rstrip()`, found without copying the text before it."""
    while end and text[end - 1].isspace():
        end -= 1
    return end


def _word_before(text: str, end: int) -> str | None:
    """The word (`\\w+`) that ends at `end`, or None: `re.search(r"(\\w+)$", text[:end])`, without
    copying the text before it."""
    start = end
    while start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return text[start:end] if start < end else None


def _callee(call: str) -> str:
    """The constructor a module expression calls: `Bottleneck` for `Bottleneck(64, 64, 1)`."""
    return call.split("(", 1)[0]


def _loop_runs(statement: str) -> str:
    """`nn.Sequential(a, b, b, b)` as `nn.Sequential(a, *(b for _ in range(1, 4)))`: each run of
    equal modules as one loop, so that networks whose stages differ in length share a class."""
    def rewrite(_: str, args: list[str]) -> str:
        items: list[str] = []
        i = 0
        while i < len(args):
            j = i
            while j + 1 < len(args) and args[j + 1] == args[i]:
                j += 1
            bounds = f"{i}, {j + 1}" if i else f"{j + 1}"
            # A stage's one module after its first, of its class, is a loop too, so that stages of
            # other lengths read alike; a lone module of its own class (a classifier's activation),
            # or one in a longer list of modules (MobileNetV2's `features`), stays itself.
            looped = j > i or (i == 1 and _callee(args[i]) == _callee(args[i - 1]))
            items.append(f"*({args[i]} for _ in range({bounds}))" if looped else args[i])
            i = j + 1
        return ", ".join(items)

    return _rewrite_calls(statement, lambda callee: callee == "nn.Sequential", rewrite, _SEQUENTIAL_CALL)


_ONE_PASS = (" for _ in range(1))", " for _ in range(1, 2))")  # how a repeat's loop run once ends


def _one_pass_loops(statement: str) -> str:
    """`nn.Sequential(*(X for _ in range(1)))` and `…(1, 2)))` with `X` for the loop: a repeat's loop
    (see TorchCodegen._repeat_loop) whose count is no parameter and runs once is its one module."""
    def rewrite(_: str, args: list[str]) -> str:
        return ", ".join(next((a[2:-len(tail)] for tail in _ONE_PASS if a.startswith("*(") and a.endswith(tail)), a)
                         for a in args)

    return _rewrite_calls(statement, lambda callee: callee == "nn.Sequential", rewrite, _SEQUENTIAL_CALL)


_SEQUENTIAL_CALL = re.compile(r"(?<![\w.])(nn\.Sequential)\(")  # the calls _loop_runs rewrites: `_CALL`'s of them


# The spec's functions a generated constructor may call, and the Python that computes each alike:
# a builtin, `math`'s, or a helper function the file defines (once, where it is used; see
# _function_helpers), named with a leading `_` so that no name from a spec can shadow it.
_PY_FUNCTIONS = {"int": "int", "min": "min", "max": "max", "abs": "abs", "float": "float", "round": "round",
                 "ceil": "math.ceil", "floor": "math.floor", "divisible": "_make_divisible"}
_FUNCTION_HELPERS = {
    "_make_divisible": '''def _make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The nearest multiple of `divisor`, at least `min_value`, never 10 % below `value` (MobileNet)."""
    least = divisor if min_value is None else min_value
    rounded = max(least, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded''',
}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def _function_helpers(text: str) -> list[str]:
    """The helper functions `text` calls, each one's source."""
    return [src for name, src in _FUNCTION_HELPERS.items() if _mentions(text, f"{name}(")]


def _python_expression(node: Node, known: set[str], read: list[str]) -> str | None:
    """The Python source of a spec expression over the names `known` (and `in.channels`), each read
    listed in `read`; None if it uses anything else. Names come out as placeholders `\x01name\x01`
    until the constructor's argument names are known; numbers are written by py_number."""
    from archdsl.syntax import BinOp, BoolOp, Call, Index, Not, Ternary, Unary

    def go(n: Node) -> str | None:
        if isinstance(n, BinOp | BoolOp | Not | Unary):
            return _python_operator(n, go)
        if isinstance(n, Call) and n.func in _PY_FUNCTIONS and n.args and all(a.name is None for a in n.args):
            args = [go(a.value) for a in n.args]
            if any(a is None for a in args):
                return None
            return f"{_PY_FUNCTIONS[n.func]}({', '.join(_unparenthesize(str(a)) for a in args)})"
        if isinstance(n, Index):  # an element of a list parameter (`layers[2]`)
            obj, index = go(n.obj), go(n.index)
            return None if obj is None or index is None else f"{obj}[{_unparenthesize(index)}]"
        if isinstance(n, Ternary):
            cond, then, orelse = go(n.cond), go(n.then), go(n.orelse)
            if cond is None or then is None or orelse is None:
                return None
            return f"({then} if {_unparenthesize(cond)} else {orelse})"
        return _python_leaf(n, known, read)

    text = go(node)
    return None if text is None else _unparenthesize(text)


def _python_operator(n: Node, go: Callable[[Node], str | None]) -> str | None:
    """An arithmetic, comparison or boolean operation as Python, in parentheses (see _python_expression)."""
    from archdsl.syntax import BinOp, BoolOp, Not, Unary

    if isinstance(n, BinOp | BoolOp) and n.op in ("+", "-", "*", "/", "//", "%", "and", "or", *_COMPARISONS):
        left, right = go(n.left), go(n.right)
        if left is None or right is None:
            return None
        if isinstance(n, BoolOp) or n.op in _COMPARISONS:  # looser than any arithmetic (`and`: comparisons too)
            left, right = (_unparenthesize(t) if (isinstance(o, BinOp) and (isinstance(n, BoolOp)
                                                                              or o.op not in _COMPARISONS))
                           or (isinstance(o, Not) and isinstance(n, BoolOp)) else t
                           for t, o in ((left, n.left), (right, n.right)))
        return f"({left} {n.op} {right})"
    if isinstance(n, Not | Unary) and (isinstance(n, Not) or n.op == "-"):
        inner = go(n.operand)
        if inner is not None and isinstance(n, Not) and isinstance(n.operand, BinOp):
            inner = _unparenthesize(inner)
        return None if inner is None else f"({'not ' if isinstance(n, Not) else '-'}{inner})"
    return None


def _python_leaf(n: Node, known: set[str], read: list[str]) -> str | None:
    """A number, boolean, known name or `in.channels` as Python (see _python_expression)."""
    from archdsl.syntax import Const, Name, Num

    if isinstance(n, Num) and not isinstance(n.value, bool):
        return repr(n.value) if isinstance(n.value, int) else py_number(n.value)
    if isinstance(n, Const) and isinstance(n.value, bool):
        return repr(n.value)
    if isinstance(n, Name):
        return _placeholder(n.id, known, read)
    if _is_in_channels(n):
        return _placeholder(_IN_CHANNELS, known, read)
    return None


def _placeholder(name: str, known: set[str], read: list[str]) -> str | None:
    """A name of `known` as _python_expression writes it, listed in `read`; None for any other."""
    if name not in known:
        return None
    read.append(name)
    return f"\x01{name}\x01"


def _evaluate(expr: str, values: Mapping[str, object]) -> object:
    """The value of a generated expression (placeholders `\x01name\x01` read from `values`), computed as
    the generated file computes it: what checks that an expression gives every member's constant. The
    text comes from _python_expression alone (identifiers, numbers, operators, known functions); None
    where it does not compute."""
    names = {n: f"v{k}" for k, n in enumerate(values)}
    text = re.sub("\x01(\\w+)\x01", lambda m: names.get(m[1], "missing"), expr)
    try:
        return eval(_compiled(text), _evaluation_scope(), {names[n]: v for n, v in values.items()})
    except Exception:  # an expression that does not compute is no candidate
        return None


@cache
def _compiled(text: str) -> CodeType:
    return compile(text, "<generated expression>", "eval")


@cache
def _evaluation_scope() -> dict[str, object]:
    """What a generated expression may call: the functions of _PY_FUNCTIONS, no other builtin."""
    scope: dict[str, object] = {"__builtins__": {}, "math": math, "int": int, "min": min, "max": max, "abs": abs,
                                "float": float, "round": round}
    exec(_FUNCTION_HELPERS["_make_divisible"], scope)
    return scope


def _same(a: object, b: object) -> bool:
    """Equal and of one type (an int is no float, a bool no int)."""
    return type(a) is type(b) and a == b


def _unparenthesize(text: str) -> str:
    """`text` without its outer parentheses, if they enclose it all."""
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        return text[1:-1]
    return text


def _name_all(read: list[str], spec_names: dict[str, str], names: Namespace) -> dict[str, str]:
    """`spec_names`, with an argument name for each spec name in `read` that has none yet."""
    for n in read:
        if n not in spec_names:
            spec_names[n] = names.create(n)
    return spec_names


@lru_cache(maxsize=_MEMO_SIZE)
def _called(statement: str) -> frozenset[str]:
    """The names a statement calls (`Dconv`, `nn.Conv2d`): a statement that calls no generated class
    passes no hole to one, which spares _hole_call's scan (a class's statements are few and shared
    by all its members; its holes are many)."""
    return frozenset(m[1] for m in _CALL.finditer(statement))


def _hole_call(statement: str, q: int, classes: dict[str, list[str | None]]) -> tuple[str, int, int] | None:
    """(the generated class, its argument's position, which of the statement's calls of generated
    classes it is) of the call whose direct argument the q-th hole of `statement` is, or None."""
    pos = -1
    for _ in range(q + 1):
        pos = statement.index(_HOLE, pos + 1)
    calls = [m for m in _CALL.finditer(statement) if m[1] in classes]
    for occurrence, m in enumerate(calls):
        end = _call_arguments(statement, m.end() - 1)[1]
        if not m.end() <= pos < end:
            continue
        depth, position = 0, 0
        for tok in _TOKEN.findall(statement[m.end():pos]):
            depth += tok in "([{"
            depth -= tok in ")]}"
            position += tok == "," and depth == 0
        if depth or position >= len(classes[m[1]]):  # inside a bracket of its own, or past the parameters
            return None
        return m[1], position, occurrence
    return None


def _rename_all(expr: str, spec_names: dict[str, str]) -> str:
    return re.sub("\x01(\\w+)\x01", lambda m: spec_names[m[1]], expr)


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


def _in_place(full: _Structure) -> dict[str, int]:
    """The submodules `full` applies once, to one value (`y = self.m(x)`): forward line by name."""
    assigned = Counter(_statement_attributes(list(full.template)))
    lines_using = Counter(a for line in full.forward for a in _self_attributes(line))
    found: dict[str, int] = {}
    for i, line in enumerate(full.forward):
        m = _APPLY.match(line)
        if m and assigned[m[2]] == 1 and lines_using[m[2]] == 1:
            found[m[2]] = i
    return found


# `self.NAME` not followed by a word character, at every place (overlapping: `myself.a` holds `self.a`).
_SELF_ATTRIBUTE = re.compile(r"(?=self\.(\w+))")


def _self_attributes(line: str) -> set[str]:
    """The names a for which `re.search(rf"self\\.{a}\\b", line)` finds something, found in one pass
    (a search per name and line was quadratic in a network of many layers)."""
    return {m[1] for m in _SELF_ATTRIBUTE.finditer(line)}


def _reduce(full: _Structure, dropped: frozenset[str], tail: str | None) -> tuple[_Structure, set[int]] | None:
    """`full` without the submodules `dropped` (each applied in place: its result is its input) and,
    with `tail`, without the forward lines after the one that computes `tail` (which it then
    returns) and the submodules only those use; and the statements left out."""
    attrs = _statement_attributes(list(full.template))
    removed = {s for s, a in enumerate(attrs) if a in dropped}
    subst: dict[str, str] = {}
    lines: list[str] = []
    for line in full.forward:
        for old, new in subst.items():
            line = _rename(line, old, new)
        m = _APPLY.match(line)
        if m and m[2] in dropped:
            subst[m[1]] = m[3]
            continue
        lines.append(line)
    if tail is not None:
        k = next((i for i, line in enumerate(lines) if re.match(rf"{tail} = ", line)), None)
        if k is None or k >= len(lines) - 2 or not re.fullmatch(r"return \w+", lines[-1]):
            return None
        used = {a for line in lines[k + 1:-1] for a in re.findall(r"self\.(\w+)", line)}
        if any(not used.isdisjoint(_self_attributes(line)) for line in lines[:k + 1]):
            return None
        removed |= {s for s, a in enumerate(attrs) if a in used}
        lines = [*lines[:k + 1], f"return {tail}"]
    template = tuple(t for s, t in enumerate(full.template) if s not in removed)
    return _Structure(full.block, template, full.args, tuple(lines), full.size, full.kept), removed


_APPEND = re.compile(r"\w+\.append\(")  # a constructor statement adding an entry to a list


def _appended(full: _Structure, reduced: _Structure) -> set[int]:
    """The entries appended to a list (`layers.append(…)`) that `full` builds and `reduced` lacks,
    where `reduced`'s statements are `full`'s in order, matched from the end (an optional step comes
    before the ones it shifts, as an expansion before a depthwise conv alike in code)."""
    left: set[int] = set()
    j = len(reduced.template) - 1
    for s in range(len(full.template) - 1, -1, -1):
        if j >= 0 and reduced.template[j] == full.template[s]:
            j -= 1
        elif _APPEND.match(full.template[s]):
            left.add(s)
    return left if j < 0 else set()


def _match(full: _Structure, reduced: _Structure) -> tuple[frozenset[str], str | None, _OutputCut | None] | None:
    """How `reduced` is `full` less some parts: (submodules applied in place it lacks, and the
    entries appended to a list it lacks as `\x01<statement>`; the variable its tail starts after or
    None; the outputs it lacks or None), or None."""
    if full.block != reduced.block or full.args != reduced.args or len(full.template) < len(reduced.template):
        return None
    appended = _appended(full, reduced)
    if appended:
        entries = frozenset(f"\x01{s}" for s in appended)
        stripped = replace(full, template=tuple(t for s, t in enumerate(full.template) if s not in appended))
        if stripped == reduced:
            return entries, None, None
        found = _match_parts(stripped, reduced)
        return (found[0] | entries, found[1], found[2]) if found is not None and found[2] is None else None
    return _match_parts(full, reduced)


def _match_parts(full: _Structure, reduced: _Structure) -> tuple[frozenset[str], str | None, _OutputCut | None] | None:
    """`_match` for structures alike in the entries of their lists."""
    outputs = _cut_outputs(full, reduced)
    if outputs is not None:
        return frozenset(), None, outputs
    kept = set(_attributes(list(reduced.template)))
    absent = frozenset(a for a in _in_place(full) if a not in kept)
    whole = _reduce(full, absent, None)
    if absent and whole is not None and whole[0] == reduced:
        return absent, None, None
    m = re.fullmatch(r"return (\w+)", reduced.forward[-1]) if reduced.forward else None
    if m is None or m[1] in full.args:
        return None
    k = next((i for i, line in enumerate(full.forward) if re.match(rf"{m[1]} = ", line)), None)
    after = full.forward[k + 1:] if k is not None else ()
    dropped = frozenset(absent - {a for line in after for a in re.findall(r"self\.(\w+)", line)})
    cut = _reduce(full, dropped, m[1])
    return (dropped, m[1], None) if cut is not None and cut[0] == reduced else None


# An entry of a network's returned dict: its key (a Python string literal) and its variable.
_RETURN_ENTRY = re.compile(r'("(?:[^"\\]|\\.)*"): (\w+)')


def _cut_outputs(full: _Structure, reduced: _Structure) -> _OutputCut | None:
    """How `reduced` is the network `full` less some of its named outputs, or None: the forward
    lines that only those need go (a line is kept where a value it computes is read later), with
    the submodules that only those lines use and the constructor statements `reduced` lacks besides
    (its init statements for them), none of which may build a submodule the kept lines use."""
    last = full.forward[-1] if full.forward else ""
    entries = _RETURN_ENTRY.findall(last) if last.startswith("return {") else []
    returns = reduced.forward[-1] if reduced.forward else ""
    bare = re.fullmatch(r"return (\w+)", returns)
    if bare is not None:
        kept = [key for key, var in entries if var == bare[1]][:1]
    else:
        kept = [key for key, _ in _RETURN_ENTRY.findall(returns)] if returns.startswith("return {") else []
    values = dict(entries)
    if not kept or len(kept) >= len(values) or not set(kept) <= set(values):
        return None
    live = {values[key] for key in kept}
    lines: set[int] = set()
    for i in range(len(full.forward) - 2, -1, -1):
        line = full.forward[i]
        m = _TARGETS.match(line)
        targets = re.findall(r"[A-Za-z]\w*", m[1]) if m else []
        if targets and live.isdisjoint(targets):
            lines.add(i)
            continue
        live.update(_names(m[2] if m else line))
    forward = (*(line for i, line in enumerate(full.forward[:-1]) if i not in lines), returns)
    if forward != reduced.forward:
        return None
    attrs = _statement_attributes(list(full.template))
    needed = {a for line in forward for a in re.findall(r"self\.(\w+)", line)}
    only = {a for i in lines for a in re.findall(r"self\.(\w+)", full.forward[i])} - needed
    statements = {s for s, a in enumerate(attrs) if a in only}
    j = 0
    for s, statement in enumerate(full.template):
        if s in statements:
            continue
        if j < len(reduced.template) and reduced.template[j] == statement:
            j += 1
        else:
            statements.add(s)
    if j != len(reduced.template) or any(attrs[s] in needed for s in statements):
        return None
    keys = tuple(key for key, _ in entries if key not in kept)
    return _OutputCut(keys, frozenset(lines), frozenset(statements), returns)


def _merged_forward(full: _Structure, parts: list[_Part], tail: str | None, part_lines: dict[int, int]) -> list[str]:
    """The forward of a class with optional parts: `full`'s, its names reused, each in-place
    submodule's line under `if self.m is not None` (or `y = self.m(x) if … else x`), the tail under
    `if self.<flag>:` (a placeholder `\\x00k\\x00` until the flag is named), ending in the variable
    the class returns without it."""
    lines, alias = _named(list(full.forward), list(full.args), full.kept)
    tail_k = next((k for k, p in enumerate(parts) if p.tail), None)
    start = end = len(lines)
    if tail is not None:
        start = next(i for i, line in enumerate(full.forward) if re.match(rf"{tail} = ", line)) + 1
        end = len(lines) - 1
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in part_lines:
            name = parts[part_lines[i]].name
            m = _APPLY.match(line)
            assert m is not None
            out += ([f"if self.{name} is not None:", "\t" + line] if m[1] == m[3]
                    else [f"{m[1]} = self.{name}({m[3]}) if self.{name} is not None else {m[3]}"])
        elif start <= i < end:
            if i == start:
                out.append(f"if self.\x00{tail_k}\x00:")
            if i == end - 1:  # the tail's result takes the name of the value it replaces
                line = re.sub(r"\A\w+ = ", f"{alias[tail]} = ", line) if tail else line
            out.append("\t" + line)
        elif i == end and tail is not None:
            out.append(f"return {alias[tail]}")
        else:
            out.append(line)
    # A value named after a submodule that may be absent is named for what it is: the output so far.
    taken = {n for line in out for n in _names(line)} if any(not part.tail for part in parts) else set()
    for part in parts:
        if not part.tail and part.name in taken and "out" not in taken:
            out = [_rename(line, part.name, "out") for line in out]
            taken.add("out")
    return out


def _cut_forward(full: _Structure, cut: _OutputCut, k: int) -> list[str]:
    """The forward of a network class whose outputs `cut` are computed and returned only where its
    flag (part `k`, a placeholder until it is named) is set: `full`'s, its names reused. It returns
    without them before the run of their lines that ends the forward, if any (`if not self.aux:
    return x`, as torchvision's models do); each earlier run of their lines is under the flag."""
    lines, alias = _named(list(full.forward), list(full.args), full.kept)
    flag = f"self.\x00{k}\x00"
    short = "".join(alias.get(tok, tok) if _NAME.match(tok) else tok for tok in _TOKEN.findall(cut.returns))
    body = lines[:-1]
    start = len(body)
    while start - 1 in cut.lines:
        start -= 1
    out: list[str] = []
    for i, line in enumerate(body[:start]):
        if i in cut.lines and i - 1 not in cut.lines:
            out.append(f"if {flag}:")
        out.append("\t" + line if i in cut.lines else line)
    return [*out, f"if not {flag}:", "\t" + short, *body[start:], lines[-1]]


def _groups(structures: list[_Structure]) -> list[_Group]:
    """The classes to make: each structure, fullest first, with the others it serves (that lack
    some of its parts, all the same tail)."""
    order = sorted(range(len(structures)), key=lambda k: (-len(structures[k].template), -structures[k].size, k))
    taken: set[int] = set()
    groups: list[_Group] = []
    for full in order:
        if full in taken:
            continue
        members: list[_Member] = [(full, frozenset(), None, None)]
        tail: str | None = None
        cut: _OutputCut | None = None
        for other in order:
            found = None if other in taken or other == full else _match(structures[full], structures[other])
            if found is None or (found[1] is not None and tail not in (None, found[1])):
                continue
            # One set of outputs left out, by every structure the group serves besides the full one.
            if found[2] != cut and not (cut is None and len(members) == 1):
                continue
            tail, cut = tail or found[1], cut or found[2]
            members.append((other, *found))
        taken.update(m[0] for m in members)
        groups.append(_Group(full, tuple(sorted(members, key=lambda m: m[0]))))
    return groups


def _difference(cls: _Class, other: _Class) -> str:
    """Why two classes of one block are two: the submodules one has and the other lacks, else their code."""
    mine, theirs = _attributes(cls.template), _attributes(other.template)
    added = [a for a in mine if a not in theirs]
    lacking = [a for a in theirs if a not in mine]
    if not added and not lacking:
        return f"its layers differ from those of {other.name} in more than numbers"
    said = [f"it has {', '.join(added)}"] if added else []
    said += [f"lacks {', '.join(lacking)}"] if lacking else []
    return f"unlike {other.name}, {' and '.join(said)} (the spec builds them only in some instances)"


def _attributes(statements: list[str]) -> list[str]:
    return [a for a in _statement_attributes(statements) if a is not None]


def _statement_attributes(statements: list[str]) -> list[str | None]:
    """The attribute each constructor statement assigns (None for `self.add_module(…)`)."""
    return [m[1] if (m := _ASSIGNED_ATTRIBUTE.match(s)) else None for s in statements]


_ASSIGNED_ATTRIBUTE = re.compile(r"self\.(\w+) = ")


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
    one boolean that gives it negated, an element of a list, or one integer times a constant. Only
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
    multiple = None if taken is not None else _multiple(column, candidates, shared)
    if multiple:
        return f"{use(multiple[0])} * {multiple[1]}" if multiple[1] > 0 else f"({use(multiple[0])} - 1) // 2"
    choice = None if taken is not None else _choice(column, candidates, shared)
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


def _element(column: tuple[Constant, ...], lists: list[SpecValue], taken: set[int]) -> int | None:
    """The first index, not in `taken`, at which each list holds the column's value, or None."""
    if not all(isinstance(x, tuple) for x in lists):
        return None
    tuples = [x for x in lists if isinstance(x, tuple)]
    return next((j for j in range(min(len(x) for x in tuples)) if j not in taken
                 and all(x[j] == v for x, v in zip(tuples, column, strict=True))), None)


def _fill(statement: str, holes: Iterator[str]) -> str:
    """A template statement with its holes filled in order (a product in parentheses where it must be)."""
    pieces = statement.split(_HOLE)
    out = [pieces[0]]
    for piece in pieces[1:]:
        expr = next(holes)
        if " " in expr and out[-1].rstrip()[-1:] not in ("(", ",", "=", "["):
            expr = f"({expr})"
        out.append(expr + piece)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# a family's network class computed from its parameters


_CHANNELS = "\x02channels"  # the running channel count's key in a member's values (no spec name is one)


@dataclass
class _FamilyBody:
    """The constructor of a family's network class written from the spec where the networks' layers
    differ in more than constants (EfficientNet's stage depths and widths): each block's arguments
    as its call writes them, over the family's parameters; a stage table as a list of rows and a
    loop over them, a `repeat` as a loop; the channel count carried from one block to the next.
    Every expression is checked to give each member's value (networks and probes) before it is used."""

    envs: list[dict[str, object]]  # per member: the network's parameters
    names: Namespace
    spec_names: dict[str, str] = field(default_factory=dict)  # spec name → Python name
    lines: list[str] = field(default_factory=list)
    channels_known: bool = False  # whether each member's values hold the running channel count
    pending: str | None = None  # the channel count's expression, until a statement reads it
    pending_at: int = 0  # where the statement setting it goes then: after the block that gives it

    def name(self, n: str) -> str:
        if n not in self.spec_names:
            self.spec_names[n] = self.names.create("channels" if n == _CHANNELS else n)
        return self.spec_names[n]

    def source(self, text: str) -> str:
        return re.sub("\x01([^\x01]+)\x01", lambda m: self.name(m[1]), text)

    def use_channels(self, text: str) -> None:
        """Before a statement reading the channel count (`text`), the statement that sets it."""
        if self.pending is not None and f"\x01{_CHANNELS}\x01" in text:
            self.lines.insert(self.pending_at, f"{self.name(_CHANNELS)} = {self.source(self.pending)}")
            self.pending = None

    def carry(self, expression: str | None, values: list[int | None]) -> None:
        """After a block: its output channels are the running count, `expression` (None: unknown)."""
        self.channels_known = expression is not None and all(v is not None for v in values)
        self.pending = None if expression == f"\x01{_CHANNELS}\x01" else expression
        self.pending_at = len(self.lines)
        for env, v in zip(self.envs, values, strict=True):
            env[_CHANNELS] = v

    def column(self, values: list[object], envs: list[dict[str, object]], nodes: list[Node],
               known: set[str], in_channels: bool = False) -> str | None:
        """An expression (placeholders kept) giving `values`, one per environment: the running channel
        count for an input's channels, one of the spec's expressions `nodes`, a parameter that gives
        them, or the one constant they all are."""
        if in_channels and self.channels_known and all(
                _same(e.get(_CHANNELS), v) for e, v in zip(envs, values, strict=True)):
            return f"\x01{_CHANNELS}\x01"
        for node in nodes:
            text = _python_expression(node, known, [])
            if text is not None and all(_same(_evaluate(text, e), v) for e, v in zip(envs, values, strict=True)):
                return text
        for n in (n for n in envs[0] if n in known):  # in the parameters' order: deterministic
            if all(_same(e.get(n), v) for e, v in zip(envs, values, strict=True)):
                return f"\x01{n}\x01"
        first = values[0]
        if all(_same(v, first) for v in values) and isinstance(first, bool | int | float | ModuleClass):
            return first if isinstance(first, ModuleClass) else repr(first)
        return None


_INIT_BRANCH = re.compile(r"\t(?:el)?if isinstance\(m, (.+)\):\Z")


def _init_branches(lines: list[str]) -> list[tuple[str, list[str]]] | None:
    """The branches (the class tested, the lines under it) of a constructor's `for m in
    self.modules():` loop, the last statements (see `_add_network_inits`), else None."""
    branches: list[tuple[str, list[str]]] = []
    for line in lines:
        head = _INIT_BRANCH.match(line)
        if head is not None:
            branches.append((head[1], []))
        elif line.startswith("\t\t") and branches:
            branches[-1][1].append(line)
        else:
            return None
    return branches


def _united_inits(inits: list[list[str]]) -> list[list[str]] | None:
    """The members' constructors with one `for m in self.modules():` loop, the union of theirs, where
    they differ only in which classes it tests (VGG's `elif isinstance(m, nn.BatchNorm2d)` in the
    `_bn` networks alone): a branch for a class no module of a member is does nothing there. The
    constructors as they are where they have the same number of statements; None where they differ
    otherwise."""
    if all(len(init) == len(inits[0]) for init in inits):
        return inits
    loop = "for m in self.modules():"
    starts = [init.index(loop) if loop in init else -1 for init in inits]
    if any(k < 0 for k in starts) or any(k != starts[0] for k in starts):
        return None
    branches = [_init_branches(init[k + 1:]) for init, k in zip(inits, starts, strict=True)]
    if any(b is None for b in branches):
        return None
    widest = max(cast("list[list[tuple[str, list[str]]]]", branches), key=len)
    for b in cast("list[list[tuple[str, list[str]]]]", branches):
        remaining = iter(widest)
        if not all(any(branch == other for other in remaining) for branch in b):
            return None  # not the widest one's branches with some left out
    lines = [f"\t{'el' if j else ''}if isinstance(m, {cls}):" for j, (cls, _) in enumerate(widest)]
    body = [line for j, (_, under) in enumerate(widest) for line in (lines[j], *under)]
    return [[*init[:k + 1], *body] for init, k in zip(inits, starts, strict=True)]


class _LayerRows:
    """A stage table whose row steps append bare layers to a list of the network's (`conv(c, 3,
    pad=1) as features[]`), as torchvision's VGG `make_layers(cfg, batch_norm)` builds `features`: a
    loop over the rows, inside it the row's steps (a `repeat` a loop over its count, an `if` an `if`),
    each layer appended, the running channel count set after a layer that changes it. First `walk`
    finds, in every member, row and pass, the layer each call step built; then `write` writes each
    call step once, its constants as expressions checked against every layer it built."""

    def __init__(self, body: _FamilyBody, attr: str, table: Node, known: set[str], at: list[int], var: str,
                 templates: _Templates, defaults: KeywordDefaults) -> None:
        self.body, self.attr, self.table, self.known, self.at, self.var = body, attr, table, known, at, var
        self.templates, self.defaults = templates, defaults
        # per call step (by where it is written, which tells steps apart however the members' specs were
        # loaded): each layer it built, (the entry, its environment with its input's channels as the
        # running count, its output channels)
        self.built: dict[Span, list[tuple[str, dict[str, object], int]]] = {}
        self.first_in: list[object] = []  # per member: the channels the table takes
        self.ends: list[int | None] = [None] * len(body.envs)  # per member: the channels it gives
        self.lines: list[str] = []

    def walk(self, g: TorchCodegen, entries: list[str], m: int, r: int, group: tuple[Node, ...],
             env: dict[str, object]) -> bool:
        """The layers member m's row r built from `group`, its entries from `self.at[m]` on, found."""
        from archdsl.syntax import CallStep, IfStep, RepeatStep

        for step in group:
            if isinstance(step, CallStep):
                ok = self._built(g, entries, m, r, step, env)
            elif isinstance(step, IfStep):
                cond = _python_expression(step.cond, self.known | set(env), [])
                ok = cond is not None and self.walk(
                    g, entries, m, r, step.then if _evaluate(cond, env) else (step.orelse or ()), env)
            elif isinstance(step, RepeatStep) and step.table_index is None:
                count = _python_expression(step.count, self.known | set(env), [])
                times = _evaluate(count, env) if count is not None else None
                ok = type(times) is int and all(
                    self.walk(g, entries, m, r, step.body, {**env, step.var: i} if step.var else env)
                    for i in range(times))
            else:
                ok = False
            if not ok:
                return False
        return True

    def _built(self, g: TorchCodegen, entries: list[str], m: int, r: int, step: Node, env: dict[str, object]) -> bool:
        k = self.at[m]
        if (k >= len(entries) or g.ir.list_rows.get((self.attr, str(k))) != (self.table, r + 1)
                or _INSTANCE_REF.search(entries[k]) or f"{self.attr}.{k}" not in g.ir):
            return False  # not a layer this table's row appended
        node = g.ir.node(f"{self.attr}.{k}")
        ins, outs = g.ir.in_shapes(node), node.out_shapes
        if len(ins) != 1 or len(outs) != 1 or not ins[0] or not outs[0]:
            return False
        if len(self.first_in) == m:
            self.first_in.append(ins[0][0])
        self.built.setdefault(step.span, []).append((entries[k], {**env, _CHANNELS: ins[0][0]}, outs[0][0]))
        self.at[m] = k + 1
        self.ends[m] = outs[0][0]
        return True

    def write(self, group: tuple[Node, ...], depth: int, names: set[str]) -> bool:
        """The lines of `group`'s steps, indented `depth` deep; whether each could be written."""
        from archdsl.syntax import CallStep, IfStep, RepeatStep

        indent, body = "\t" * depth, self.body
        for step in group:
            if isinstance(step, CallStep):
                ok = self._write_layer(step, indent, names)
            elif isinstance(step, IfStep):
                cond = _python_expression(step.cond, names, [])
                self.lines.append(f"{indent}if {body.source(cond or '')}:")
                ok = cond is not None and self.write(step.then, depth + 1, names)
                if ok and step.orelse:
                    self.lines.append(f"{indent}else:")
                    ok = self.write(step.orelse, depth + 1, names)
            elif isinstance(step, RepeatStep):
                count = _python_expression(step.count, names, [])
                index = body.name(step.var) if step.var else "_"
                self.lines.append(f"{indent}for {index} in range({body.source(count or '')}):")
                ok = count is not None and self.write(step.body, depth + 1, names | ({step.var} if step.var else set()))
            else:
                ok = False
            if not ok:
                return False
        return True

    def _write_layer(self, step: Node, indent: str, names: set[str]) -> bool:
        """`layers.append(…)` of a call step, then the running count where the layer changes it."""
        from archdsl.syntax import CallStep

        layers, body = self.built.get(step.span), self.body
        if not layers or not isinstance(step, CallStep):
            return False  # a layer no member builds: nothing to write it from
        templates = [self.templates([f"{self.var}.append({entry})"], self.defaults) for entry, _, _ in layers]
        if any(t[0] != templates[0][0] for t in templates):
            return False
        values = [list(c) for c in zip(*(t[1][0] for t in templates), strict=True)]
        envs = [env for _, env, _ in layers]
        written = [arg.value for arg in step.args]
        texts = [(c[0] if isinstance(c[0], ModuleClass) else repr(c[0])) if all(_same(v, c[0]) for v in c)
                 else body.column(c, envs, written, names, in_channels=True) for c in values]
        if any(t is None for t in texts):
            return False
        line = _keywords(_fill(templates[0][0][0], iter(str(t) for t in texts)), self.defaults, write=False)
        self.lines.append(indent + _scalar_pairs(body.source(line)))
        outs = [out for _, _, out in layers]
        if all(_same(env[_CHANNELS], out) for env, out in zip(envs, outs, strict=True)):
            return True
        carried = next((str(t) for t, c in zip(texts, values, strict=True)
                        if all(_same(v, o) for v, o in zip(c, outs, strict=True))), None)
        if carried is None or carried == f"\x01{_CHANNELS}\x01":
            return False
        self.lines.append(f"{indent}{body.name(_CHANNELS)} = {body.source(carried)}")
        return True


def _table_counting(body: _FamilyBody, across: tuple[str, str] | None, count: str, targets: str, columns: int,
                    table: str) -> tuple[list[str], list[str]]:
    """`repeat n as i, j of blocks` after a table: the lines before the loop over its rows (`blocks`,
    the rows' counts summed; `j` from 0) and the line after each block (`j` counts it), as
    torchvision's EfficientNet keeps `total_stage_blocks` and `stage_block_id`."""
    if across is None:
        return [], []
    index, total = (body.name(n) for n in across)
    rows = f"{targets}{',' if columns == 1 else ''}"
    return [f"{total} = sum({body.source(count)} for {rows} in {table})", f"{index} = 0"], [f"\t\t{index} += 1"]


def _table_rows(insts: list[_Instance], t: int, label: str, count: int) -> list[list[list[int]]] | None:
    """The block instances of each row (`self.stage1 = nn.Sequential(__I4__, …)`, from statement t
    on), per member: rows named as the table's label and their number say, else None."""
    rows: list[list[list[int]]] = []
    for r in range(count):
        per_member = []
        for inst in insts:
            slot = _slot_statement(inst.init[t + r]) if t + r < len(inst.init) else None
            refs = _sequential_refs(slot[1]) if slot and slot[0] == f"{label}{r + 1}" else None
            if refs is None:
                return None
            per_member.append(refs)
        rows.append(per_member)
    return rows


def _slot_statement(line: str) -> tuple[str, str] | None:
    """(attribute, constructor) of a statement `self.NAME = …`, else None."""
    m = re.match(r"self\.(\w+) = (.*)\Z", line, re.S)
    return (m[1], m[2]) if m else None


def _sequential_refs(constructor: str) -> list[int] | None:
    """The block instances of `nn.Sequential(__I3__, __I8__, …)`, else None."""
    m = re.fullmatch(r"nn\.Sequential\(((?:__I\d+__(?:, )?)+)\)", constructor)
    return [int(k) for k in _INSTANCE_REF.findall(m[1])] if m else None


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
        self.keyword_defaults: KeywordDefaults = {}
        self.templates = _Templates()  # _template, each distinct statement once
        self.loops: dict[str, str] = {}  # _loop_runs of each distinct statement of a family's network
        self.made: list[_Class] = []  # the classes named so far
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
        for node in self.members.get(app, []):
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
        body = _ClassBody(self.locals_reserved)
        ports: dict[Port, str] = {}
        inputs, outputs = (self._boundary(scope)[0], self._outputs(scope)) if scope else ([], [])
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
            outputs = [_mirror(p, first, child) for p in self._outputs(first)]
        else:
            module = body.add_module(rel, _instance_ref(self._instance(child)), info.span)
            inputs, outputs = self._boundary(child)[0], self._outputs(child)
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
                                        arguments=info.arguments, conditions=info.conditions))
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
        level: list[int] = []
        for inst in self.instances:  # children before parents
            kids = [int(k) for k in _INSTANCE_REF.findall("\n".join(inst.init))]
            level.append(1 + max((level[k] for k in kids), default=-1))
        top = max(level, default=0) + 1  # a family's networks: one level, above every block
        level = [top if inst.compress else lvl for inst, lvl in zip(self.instances, level, strict=True)]
        classes: list[_Class] = []
        class_of: dict[int, int] = {}
        calls: dict[int, str] = {}
        class_names = set(self.locals_reserved)
        signatures: dict[str, list[str]] = {}
        done: set[int] = set()  # the networks of the families written from the spec (_computed_family)
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
            for group in _groups(structures):
                made = [self._make_class(group, structures, members, calls, class_names, signatures)]
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
        """The classes of the families _computed_family writes, added; their networks."""
        done: set[int] = set()
        for indices in self._differing_families(calls):
            cls = self._computed_family(indices, classes, class_names)
            if cls is not None:
                self._name_class(cls, calls, class_names, signatures)
                class_of.update((i, len(classes)) for i in indices)
                classes.append(cls)
                done.update(indices)
        return done

    def _differing_families(self, calls: dict[int, str]) -> list[list[int]]:
        """The networks (with their probes) of each family built through a stage table that has two
        networks or more, or one and a probe (mobilenet_v2 and its `width`): what _computed_family
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

    def _computed_family(self, indices: list[int], classes: list[_Class], class_names: set[str]) -> _Class | None:
        """The class of a family's networks (`indices`, with their probes) whose layers differ in
        more than constants, written from the spec (see _FamilyBody); None where some statement is
        not one this can write, or some expression does not give every member's value."""
        insts = [self.instances[i] for i in indices]
        united = _united_inits([inst.init for inst in insts])
        if united is None:
            return None
        insts = [replace(inst, init=init) for inst, init in zip(insts, united, strict=True)]
        first = insts[0]
        if any(i.forward != first.forward or i.args != first.args or len(i.init) != len(first.init) for i in insts):
            return None
        gens = [self.family[i][0] for i in indices]
        envs: list[dict[str, object]] = [
            {k: v for k, raw in g.info.parameters.items() if type(v := _spec_value(raw)) in (int, float, bool, tuple)}
            for g in gens]
        known = set.intersection(*(set(e) for e in envs))
        names = Namespace(class_names)
        body = _FamilyBody(envs, names)
        for n in envs[0]:  # a parameter keeps its name where it is a legal one (`classes=10`, as the spec's)
            if Namespace().create(n) == n:
                names.reserve(n)
                body.spec_names[n] = n
        for line in first.init:  # the names the network's init statements use (`for m in self.modules()`)
            for n in _names(line):
                names.reserve(n)
        arguments = {i: (cls, cls.arguments[m]) for cls in classes for m, (i, _, _) in enumerate(cls.members)}
        t = 0
        while t < len(first.init):
            done = self._computed_statement(body, t, insts, gens, arguments, known)
            if done is None:
                return None
            t += done
        used = {n for line in body.lines for n in _names(line)}
        order = [n for n in envs[0] if n != _CHANNELS and body.spec_names.get(n) in used]
        cls = _Class(first.block, [], list(first.args),
                     _reuse_names(list(first.forward), list(first.args), first.kept))
        cls.members = [(i, [], ()) for i in indices]
        cls.params = [body.spec_names[n] for n in order]
        cls.spec_params = list(order)
        cls.arguments = [[cast(Argument, e[n]) for n in order] for e in envs]
        cls.init = body.lines
        return cls

    def _computed_statement(self, body: _FamilyBody, t: int, insts: list[_Instance], gens: list[TorchCodegen],
                            arguments: dict[int, tuple[_Class, list[Argument]]], known: set[str]) -> int | None:
        """Statement t of the members' constructors, written (a stage table: all its rows): how many
        statements that was, or None where it cannot be."""
        lines = [inst.init[t] for inst in insts]
        slot = _slot_statement(lines[0])
        info = gens[0].ir.scopes.get((slot[0],)) if slot else None
        if slot and info is not None and info.table is not None and info.row == 1:
            return self._computed_table(body, info.table, t, insts, gens, arguments, known)
        if slot and (any(info.table is not None and path[:1] == (slot[0],) and len(path) == 2
                         for path, info in gens[0].ir.scopes.items())
                     or any(path[:1] == (slot[0],) for path in gens[0].ir.list_rows)):
            return 1 if self._computed_list(body, slot[0], lines, gens, arguments, known) else None
        refs = [_INSTANCE_REF.findall(line) for line in lines]
        if not any(refs):
            return 1 if self._computed_plain(body, lines, gens, known) else None
        single = slot and all(len(r) == 1 and line == f"self.{slot[0]} = __I{r[0]}__"
                              for r, line in zip(refs, lines, strict=True))
        if slot and single and self._computed_block(body, slot[0], [int(r[0]) for r in refs], gens, arguments, known):
            return 1
        return None

    def _computed_call(self, body: _FamilyBody, cls: _Class, values: list[list[Argument]],
                       envs: list[dict[str, object]], nodes: list[list[Node | None]], known: set[str]) -> str | None:
        """`Class(…)` with each argument as an expression that gives every instance's value (one
        instance per environment), or None."""
        texts: list[str] = []
        for j, spec in enumerate(cls.spec_params or [None] * len(cls.params)):
            node = nodes[0][j] if all(n[j] == nodes[0][j] for n in nodes) else None
            text = body.column([v[j] for v in values], envs, [node] if node is not None else [], known,
                               in_channels=spec == _IN_CHANNELS)
            if text is None:
                return None
            texts.append(text)
        return f"{cls.name}({', '.join(texts)})"

    def _call_nodes(self, cls: _Class, index: int) -> list[Node | None]:
        """The expressions an instance's call writes for its class's parameters (None: not written)."""
        inst = self.instances[index]
        return [inst.argument(p) if p and p != _IN_CHANNELS else None for p in cls.spec_params or cls.params]

    def _out_channels(self, g: TorchCodegen, index: int) -> int | None:
        ports = g._outputs(self.instances[index].scope)
        shape = g.ir.node(ports[0].node).out_shapes[ports[0].index] if len(ports) == 1 else ()
        return shape[0] if shape else None

    def _carry(self, body: _FamilyBody, call: str, outs: list[int | None], envs: list[dict[str, object]],
               values: list[list[Argument]]) -> str | None:
        """The argument of `call` (its source, placeholders kept) that gives the block's output
        channels in every instance (the new running count), or None."""
        args = _call_arguments(call, call.index("("))[0]
        return next((a for j, a in enumerate(args) if all(_same(v[j], o) for v, o in zip(values, outs, strict=True))
                     and a != f"\x01{_CHANNELS}\x01"), None)

    def _computed_list(self, body: _FamilyBody, attr: str, lines: list[str], gens: list[TorchCodegen],
                       arguments: dict[int, tuple[_Class, list[Argument]]], known: set[str]) -> bool:
        """A list of the network's that holds a stage table's blocks (`as features[]`), written as
        torchvision builds its `features`: a `layers.append(…)` per block, a loop over the table's
        rows appending each row's blocks (EfficientNet's rows, entries of the list: as one
        `nn.Sequential` each; MobileNetV2's, no scopes: one by one), then `self.features =
        nn.Sequential(*layers)`. Whether it could be written (the members' `lines`:
        `self.features = nn.Sequential(…)`)."""
        items: list[list[str]] = []
        for line in lines:
            if not line.startswith(f"self.{attr} = nn.Sequential("):
                return False
            items.append(_call_arguments(line, len(f"self.{attr} = nn.Sequential"))[0])
        var = body.names.create("layers")
        body.lines.append(_new_list(var))
        at = [0] * len(items)  # each member's next entry
        while at[0] < len(items[0]):
            info = gens[0].ir.scopes.get((attr, str(at[0])))
            flat = gens[0].ir.list_rows.get((attr, str(at[0])))
            if (info is not None and info.table is not None and info.row == 1) or (flat is not None and flat[1] == 1):
                table = info.table if info is not None and info.table is not None else flat[0] if flat else None
                if flat is not None and not _INSTANCE_REF.fullmatch(items[0][at[0]]):
                    if not self._computed_layer_table(body, attr, cast("Node", table), items, at, gens, known, var):
                        return False
                    continue
                rows = self._list_rows(attr, table, flat is not None, items, at, gens)
                if rows is None or self._computed_table(body, cast("Node", table), 0, [], gens, arguments, known,
                                                        (rows, var, flat is not None)) is None:
                    return False
                continue
            refs = [re.fullmatch(r"__I(\d+)__", entries[k]) if k < len(entries) else None
                    for entries, k in zip(items, at, strict=True)]
            if not all(refs) or not self._computed_block(body, var, [int(r[1]) for r in refs if r], gens, arguments,
                                                         known, append=True):
                return False
            at = [k + 1 for k in at]
        if any(k != len(entries) for entries, k in zip(items, at, strict=True)):
            return False
        body.lines.append(f"self.{attr} = nn.Sequential(*{var})")
        return True

    def _computed_layer_table(self, body: _FamilyBody, attr: str, table: Node, items: list[list[str]], at: list[int],
                              gens: list[TorchCodegen], known: set[str], var: str) -> bool:
        """A stage table whose rows append layers, not blocks, to a list of the network's (`conv as
        features[]`), written as torchvision's VGG `make_layers` builds `features` (see _LayerRows);
        `at` (each member's next entry) moved past the table's entries. Whether it could be."""
        from archdsl.syntax import StagesStep

        if not isinstance(table, StagesStep) or not body.envs:
            return False
        steps: tuple[Node, ...] = table.body if isinstance(table.body, tuple) else (table.body,)
        columns = list(table.columns)
        cells = [[_python_expression(cell, known, []) for cell in row.cells] for row in table.rows]
        if any(c is None for row in cells for c in row):
            return False
        rows = _LayerRows(body, attr, table, known | set(columns), at, var, self.templates, self.keyword_defaults)
        for m, (entries, g, env) in enumerate(zip(items, gens, body.envs, strict=True)):
            for r, row in enumerate(cells):
                row_env = {**env, **{c: _evaluate(cast(str, text), env) for c, text in zip(columns, row, strict=True)}}
                if not rows.walk(g, entries, m, r, steps, row_env):
                    return False
        if len(rows.first_in) != len(body.envs):
            return False
        channels = f"\x01{_CHANNELS}\x01"
        body.use_channels(channels)
        start: list[str] = []
        if not (body.channels_known and all(_same(e.get(_CHANNELS), c)
                                            for e, c in zip(body.envs, rows.first_in, strict=True))):
            count = body.column(rows.first_in, body.envs, [], known)  # the count starts here: the input's channels
            if count is None:
                return False
            start = [f"{body.name(_CHANNELS)} = {body.source(count)}"]
        body.channels_known = True  # what the loop's layers read: set before it, kept by each layer changing it
        if not rows.write(steps, 1, rows.known):
            return False
        table_name = body.names.create("stages")
        targets = ", ".join(body.name(c) for c in columns)
        rows_text = ", ".join(f"({', '.join(str(c) for c in row)}{',' if len(row) == 1 else ''})" for row in cells)
        body.lines += [*start, f"{table_name} = [{body.source(rows_text)}]",
                       f"for {targets}{',' if len(columns) == 1 else ''} in {table_name}:", *rows.lines]
        body.carry(channels, rows.ends)
        return True

    def _list_rows(self, attr: str, table: Node | None, flat: bool, items: list[list[str]], at: list[int],
                   gens: list[TorchCodegen]) -> list[list[list[int]]] | None:
        """The block instances of each row of `table` in a list of the network's, per member, from
        each member's next entry (`at`, moved past them): one entry per row holding its blocks
        (`nn.Sequential(__I4__, …)`), or (`flat`) the entries the rows appended one by one."""
        count = len(getattr(table, "rows", ()))
        rows: list[list[list[int]]] = [[] for _ in range(count)]
        for m, (entries, g) in enumerate(zip(items, gens, strict=True)):
            for r in range(count):
                refs: list[int] | None = []
                if not flat:
                    k = at[m]
                    info = g.ir.scopes.get((attr, str(k)))
                    # the same table by value: a family's networks may come from separate loads of the file
                    ok = (k < len(entries) and info is not None and info.row == r + 1
                          and (info.table is table or info.table == table))
                    refs = _sequential_refs(entries[k]) if ok else None
                    at[m] += 1
                while flat and refs is not None and g.ir.list_rows.get((attr, str(at[m]))) == (table, r + 1):
                    ref = re.fullmatch(r"__I(\d+)__", entries[at[m]]) if at[m] < len(entries) else None
                    refs = [*refs, int(ref[1])] if ref else None
                    at[m] += 1
                if refs is None:
                    return None
                rows[r].append(refs)
        return rows

    def _computed_block(self, body: _FamilyBody, attr: str, indices: list[int], gens: list[TorchCodegen],
                        arguments: dict[int, tuple[_Class, list[Argument]]], known: set[str],
                        append: bool = False) -> bool:
        """`self.<attr> = Block(…)` (`append`: `<attr>.append(Block(…))`, `attr` a list) computed from
        the family's parameters; whether it could be."""
        cls = arguments[indices[0]][0]
        if any(arguments[i][0] is not cls for i in indices):
            return False
        values = [arguments[i][1] for i in indices]
        call = self._computed_call(body, cls, values, body.envs, [self._call_nodes(cls, i) for i in indices], known)
        if call is None:
            return False
        body.use_channels(call)
        outs = [self._out_channels(g, i) for g, i in zip(gens, indices, strict=True)]
        carried = self._carry(body, call, outs, body.envs, values)
        args = _call_arguments(call, call.index("("))[0]
        if carried is not None and f"\x01{_CHANNELS}\x01" not in call and not _NAME.match(carried):
            # A block that starts the count (a stem): the count first, then the block that takes it.
            body.lines.append(f"{body.name(_CHANNELS)} = {body.source(carried)}")
            call = f"{cls.name}({', '.join(f'{chr(1)}{_CHANNELS}{chr(1)}' if a == carried else a for a in args)})"
            carried = f"\x01{_CHANNELS}\x01"
        body.lines.append(f"{attr}.append({body.source(call)})" if append else f"self.{attr} = {body.source(call)}")
        body.carry(carried, outs)
        return True

    def _computed_plain(self, body: _FamilyBody, lines: list[str], gens: list[TorchCodegen], known: set[str]) -> bool:
        """A statement of no block (a layer, an init statement): its constants as expressions. A
        layer's output channels are the running count after it where some constant gives them, or
        they are its input's (avgpool, dropout); else the count is unknown from there on."""
        templates = [self.templates([line], self.keyword_defaults) for line in lines]
        if any(t[0] != templates[0][0] for t in templates):
            return False
        columns = [list(c) for c in zip(*(t[1][0] for t in templates), strict=True)]
        slot = _slot_statement(lines[0])
        # A layer's constants that differ between members are its arguments as the spec writes them.
        ir = gens[0].ir
        written = [node for _, node in ir.arguments.get(ir.node(slot[0]).span, ())] if slot and slot[0] in ir else []
        texts = [repr(c[0]) if all(_same(v, c[0]) for v in c) else body.column(c, body.envs, written, known, True)
                 for c in columns]
        if any(t is None for t in texts):
            return False
        nodes = [g.ir.node(slot[0]) if slot and slot[0] in g.ir else None for g in gens]
        outs = [n.out_shapes[0][0] if n is not None and len(n.out_shapes) == 1 and n.out_shapes[0] else None
                for n in nodes]
        kept = slot is None or (body.channels_known and all(
            _same(e.get(_CHANNELS), o) for e, o in zip(body.envs, outs, strict=True)))
        carried = None if kept else next((k for k, c in enumerate(columns)
                                          if all(_same(v, o) for v, o in zip(c, outs, strict=True))), None)
        channels = f"\x01{_CHANNELS}\x01"
        if carried is not None and not any(channels in str(t) for t in texts) and "\x01" in str(texts[carried]):
            # A layer that starts the count (a stem): the count first, then the layer that takes it.
            body.lines.append(f"{body.name(_CHANNELS)} = {body.source(str(texts[carried]))}")
            texts[carried] = channels
        line = _keywords(_fill(templates[0][0][0], iter(str(t) for t in texts)), self.keyword_defaults, write=False)
        body.use_channels(line)
        body.lines.append(_scalar_pairs(body.source(line)))
        if not kept:
            body.carry(None if carried is None else str(texts[carried]), outs)
        return True

    def _computed_table(self, body: _FamilyBody, table: Node, t: int, insts: list[_Instance],
                        gens: list[TorchCodegen], arguments: dict[int, tuple[_Class, list[Argument]]],
                        known: set[str], listed: tuple[list[list[list[int]]], str, bool] | None = None) -> int | None:
        """A stage table whose rows each repeat one block: the rows as a list, a loop over them and
        one over each row's repeat, each row's blocks an `nn.Sequential` named as the spec names it
        (`stage1`, `stage2`, …), or appended to a list (`listed`: each row's block instances per
        member, the list's variable, and whether the blocks go into the list one by one rather than
        as a row's `nn.Sequential`). The number of statements (rows) written, or None."""
        from archdsl.syntax import CallStep, RepeatStep, StagesStep

        if not isinstance(table, StagesStep):
            return None
        step = table.body[0] if isinstance(table.body, tuple) and len(table.body) == 1 else table.body
        label = table.label.static() if table.label is not None else ("stage",)
        if not (isinstance(step, RepeatStep) and len(step.body) == 1 and label and len(label) == 1
                and isinstance(step.body[0], CallStep)):
            return None
        rows = listed[0] if listed is not None else _table_rows(insts, t, label[0], len(table.rows))
        if rows is None:
            return None
        cells = [[_python_expression(cell, known, []) for cell in row.cells] for row in table.rows]
        if any(c is None for row in cells for c in row):
            return None
        columns = list(table.columns)
        loop_known = known | set(columns)
        count = _python_expression(step.count, loop_known, [])
        if count is None:
            return None
        cls = arguments[rows[0][0][0]][0]
        # `repeat n as i, j of blocks`: torchvision's `stage_block_id` and `total_stage_blocks`
        across = (step.table_index.index, step.table_index.total) if step.table_index is not None else None
        found = self._table_instances(body, cells, columns, (count, step.var or ""), rows, cls, arguments, gens,
                                      across)
        if found is None:
            return None
        envs, values, nodes, outs, channels = found
        loop = _FamilyBody(envs, body.names, body.spec_names, channels_known=body.channels_known)
        call = self._computed_call(loop, cls, values, envs, nodes,
                                   loop_known | ({step.var} if step.var else set()) | set(across or ()))
        carried = call and self._carry(loop, call, outs, envs, values)
        if call is None or carried is None:
            return None
        body.use_channels(call)
        targets = ", ".join(body.name(c) for c in columns)
        rows_text = ", ".join(f"({', '.join(str(c) for c in row)}{',' if len(row) == 1 else ''})" for row in cells)
        if listed is not None and listed[2]:  # torchvision's MobileNetV2: `for … in …: for i in …: features.append(…)`
            table_name = body.names.create("stages")
            counting, counted = _table_counting(body, across, count, targets, len(columns), table_name)
            body.lines += [
                f"{table_name} = [{body.source(rows_text)}]",
                *counting,
                f"for {targets}{',' if len(columns) == 1 else ''} in {table_name}:",
                f"\tfor {body.name(step.var) if step.var else '_'} in range({body.source(count)}):",
                f"\t\t{listed[1]}.append({body.source(call)})",
                f"\t\t{body.name(_CHANNELS)} = {body.source(carried)}",
                *counted,
            ]
            body.carry(f"\x01{_CHANNELS}\x01", channels)
            return len(table.rows)
        if listed is not None:  # torchvision's EfficientNet: `for … in stages: … layers.append(nn.Sequential(*blocks))`
            table_name, blocks = (body.names.create(n) for n in ("stages", "blocks"))
            counting, counted = _table_counting(body, across, count, targets, len(columns), table_name)
            body.lines += [
                f"{table_name} = [{body.source(rows_text)}]",
                *counting,
                f"for {targets}{',' if len(columns) == 1 else ''} in {table_name}:",
                f"\t{_new_list(blocks)}",
                f"\tfor {body.name(step.var) if step.var else '_'} in range({body.source(count)}):",
                f"\t\t{blocks}.append({body.source(call)})",
                f"\t\t{body.name(_CHANNELS)} = {body.source(carried)}",
                *counted,
                f"\t{listed[1]}.append(nn.Sequential(*{blocks}))",
            ]
            body.carry(f"\x01{_CHANNELS}\x01", channels)
            return len(table.rows)
        name, table_name, blocks = (body.names.create(n) for n in ("row", "stages", "blocks"))
        attribute = "f" + py_str(label[0])[:-1] + "{" + name + '}"'  # f"stage{row}": the spec's names
        counting, counted = _table_counting(body, across, count, targets, len(columns), table_name)
        body.lines += [
            f"{table_name} = [{body.source(rows_text)}]",
            *counting,
            f"for {name}, ({targets}) in enumerate({table_name}, start=1):",
            f"\t{_new_list(blocks)}",
            f"\tfor {body.name(step.var) if step.var else '_'} in range({body.source(count)}):",
            f"\t\t{blocks}.append({body.source(call)})",
            f"\t\t{body.name(_CHANNELS)} = {body.source(carried)}",
            *counted,
            f"\tself.add_module({attribute}, nn.Sequential(*{blocks}))",
        ]
        body.carry(f"\x01{_CHANNELS}\x01", channels)
        return len(table.rows)

    def _table_instances(self, body: _FamilyBody, cells: list[list[str | None]], columns: list[str],
                         repeat: tuple[str, str], rows: list[list[list[int]]], cls: _Class,
                         arguments: dict[int, tuple[_Class, list[Argument]]], gens: list[TorchCodegen],
                         across: tuple[str, str] | None = None,
                         ) -> tuple[list[dict[str, object]], list[list[Argument]], list[list[Node | None]],
                                    list[int | None], list[int | None]] | None:
        """Each block of a stage table, in every member: its environment (the member's parameters,
        the row's cells, the repeat's index — and with `across`, the names of `, j of blocks`, the
        block's index in the table and the table's number of blocks — the channels it takes), its
        arguments, the expressions its call writes, its output channels; and each member's channels
        after the table. None where a row's repeat count (`repeat`: its expression and index) is not
        the row's number of blocks or a block is not of `cls`."""
        count, var = repeat
        totals = [sum(len(row[m]) for row in rows) for m in range(len(body.envs))]
        before = [0] * len(body.envs)
        envs: list[dict[str, object]] = []
        values: list[list[Argument]] = []
        nodes: list[list[Node | None]] = []
        outs: list[int | None] = []
        channels = [cast(int | None, e.get(_CHANNELS)) for e in body.envs]
        for r, row_cells in enumerate(cells):
            for m, member in enumerate(body.envs):
                row_env = {**member, **{c: _evaluate(str(x), member) for c, x in zip(columns, row_cells, strict=True)}}
                if not _same(_evaluate(count, row_env), len(rows[r][m])):
                    return None
                for i, index in enumerate(rows[r][m]):
                    if arguments[index][0] is not cls:
                        return None
                    counted = {across[0]: before[m] + i, across[1]: totals[m]} if across is not None else {}
                    envs.append({**row_env, **({var: i} if var else {}), **counted, _CHANNELS: channels[m]})
                    values.append(arguments[index][1])
                    nodes.append(self._call_nodes(cls, index))
                    channels[m] = self._out_channels(gens[m], index)
                    outs.append(channels[m])
                before[m] += len(rows[r][m])
        return envs, values, nodes, outs, channels

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
        cls.parameterize(self.instances, class_names, signatures, self.keyword_defaults, self.spec_params)
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
            lines.extend(wrap(statement.lstrip("\t"), INDENT * (2 + len(statement) - len(statement.lstrip("\t")))))
        typed = ", ".join(f"{a}: torch.Tensor" for a in args)
        lines += ["", *wrap(f"def forward(self, {typed})", INDENT, f" -> {_returns(forward)}:")]
        for line in forward:
            lines.extend(wrap(line.lstrip("\t"), INDENT * (2 + len(line) - len(line.lstrip("\t")))))
        return lines

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
        helpers = {n: h for n, h in self.helpers.items() if _mentions(used, f"{n}(")}
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
        self.helpers = dict(sorted({k: v for g in gens for k, v in g.helpers.items()}.items()))
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
        helpers = {n: h for n, h in self.helpers.items() if _mentions(used, f"{n}(")}
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
        params = tuple(f"{p}: {t}" for p, t in zip(cls.params, cls.types(), strict=True))
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


_Hosts = tuple[IR, dict[tuple[str, ...], str], dict[tuple[str, ...], _Instance]]  # a network, its classes, instances


def _own_inits(classes: list[_Class], networks: list[_Hosts]) -> frozenset[str]:
    """The block classes that initialize themselves (torch_init.class_init_statements): those whose
    statements every network (its IR, each block instance's class and each one's instance) that has
    the class gives alike, and whose numbers that differ between instances the class computes as the
    spec writes them; appended to their constructors; their names, which the networks' init
    statements leave out."""
    found: dict[str, ClassInit] = {}
    checks: dict[str, list[tuple[int, dict[str, SpecValue], object]]] = {}  # class → (mark, instance's values, value)
    refused: set[str] = set()
    for ir, class_of, instance_of in networks:
        own = class_init_statements(ir, class_of)
        for name in set(class_of.values()):
            made = own.get(name)
            if (made is None or found.setdefault(name, made).lines != made.lines
                    or any(path not in instance_of for w in made.written for path in w.values)):
                refused.add(name)
                continue
            checks.setdefault(name, []).extend((k, instance_of[path].values, value) for k, w in enumerate(made.written)
                                               for path, value in w.values.items() if class_of[path] == name)
    owned = set()
    for cls in classes:
        made = found.get(cls.name)
        lines = None if made is None or cls.name in refused else cls.written_init(made, checks.get(cls.name, []))
        if lines is not None:
            cls.init = [*cls.init, *lines]
            owned.add(cls.name)
    return frozenset(owned)


def _imports(text: str) -> list[str]:
    """The import lines a generated file's text needs: the standard library's, then torch's."""
    found = [[imp for imp, word in group if _mentions(text, word)] for group in (
        (("import math", "math."), ("from typing import Any", "Any")),
        (("import torch", "torch."), ("import torch.nn.functional as F", "F."), ("from torch import nn", "nn.")))]
    return found[1] if not found[0] else [*found[0], "", *found[1]]


def _mentions(text: str, word: str) -> bool:
    """Whether `word` occurs in `text` neither after a word character or a dot nor, if it ends in
    one, before a word character: `re.search(rf"(?<![\\w.]){word}\\b", text)` for a word, without
    the \\b for one that ends in `.` or `(`, found by substring search (a file's text is long)."""
    whole = word[-1].isalnum() or word[-1] == "_"
    at = text.find(word)
    while at >= 0:
        end = at + len(word)
        if ((at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_."))
                and (not whole or end == len(text) or not (text[end].isalnum() or text[end] == "_"))):
            return True
        at = text.find(word, at + 1)
    return False


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


def generate_family(networks: list[CompiledNetwork]) -> GeneratedSource:
    """One module for the networks of a file: block classes once, family classes, a function per network."""
    first, *others = [TorchCodegen(n) for n in networks]
    return first.generate_family(others)


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
    "RESERVED_ATTRS", "GeneratedSource", "Namespace", "TorchCodegen", "build_module", "generate", "generate_family",
    "generate_source",
    "module_name_problems", "module_signature",
    "py_str", "safe_comment",
]

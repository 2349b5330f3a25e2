"""One class's body as it is built: the submodule tree of its `__init__` (`_Slot`) and its forward
lines (`_ClassBody`), a container called once where its modules run one after another
(`_collapse_runs`), and a run of equal passes over a numbered container written as a loop
(`_loop_passes`: `for layer in self.layers: x = layer(x)`). The file as a value: `GeneratedSource`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple, cast

from archdsl.diagnostics import Span, error
from archdsl.ir import Port

from ..python_source import (
    INDENT,
    WIDTH,
    Namespace,
    check_attribute,
    is_attribute,
    py_str,
    safe_comment,
)
from .text import (
    _PASS_TOKENS,
    _PLACEHOLDER,
    _TARGETS,
    _WORD,
    _named,
    _names,
    _new_list,
    _rename,
    _renamed,
    _self_attr,
    _words,
)


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

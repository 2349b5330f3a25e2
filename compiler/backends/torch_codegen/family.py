"""A family module's network class computed from its parameters: `FamilyClass` writes the
constructor (`_FamilyBody`) from the spec where the networks' layers differ in more than constants
(a table's rows, stage depths; `_LayerRows`: a table of bare layers), the members'
`for m in self.modules():` initialization loops united. The generator (TorchCodegen) decides which
families it writes and names the class."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, cast

from archdsl.diagnostics import Span
from archdsl.ir import IR, Port

from ..python_source import Namespace, py_str
from .classes import _Class
from .constants import (
    Argument,
    KeywordDefaults,
    ModuleClass,
    _fill,
    _Instance,
    _keywords,
    _Templates,
)
from .expressions import _IN_CHANNELS, _evaluate, _python_expression, _same
from .parameters import _spec_value
from .text import _INSTANCE_REF, _NAME, _call_arguments, _names, _new_list, _reuse_names

if TYPE_CHECKING:
    from archdsl.network import NetworkInfo
    from archdsl.syntax import Node


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
            self.spec_names[n] = self.names.create(n if n != _CHANNELS else self._channels_name())
        return self.spec_names[n]

    def _channels_name(self) -> str:
        """The running channel count's name: `channels`, or, where the family has a parameter of that
        name (ShuffleNet V1's Stage 2 width), `in_channels`: what it is to the next block."""
        return "in_channels" if any("channels" in env for env in self.envs) else "channels"

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
    self.modules():` loop, the last statements (see TorchCodegen._add_network_inits), else None."""
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

    def walk(self, g: FamilyMember, entries: list[str], m: int, r: int, group: tuple[Node, ...],
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

    def _built(self, g: FamilyMember, entries: list[str], m: int, r: int, step: Node, env: dict[str, object]) -> bool:
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
        self.lines.append(indent + body.source(line))
        outs = [out for _, _, out in layers]
        if all(_same(env[_CHANNELS], out) for env, out in zip(envs, outs, strict=True)):
            return True
        carried = next((str(t) for t, c in zip(texts, values, strict=True)
                        if all(_same(v, o) for v, o in zip(c, outs, strict=True))), None)
        if carried is None or carried == f"\x01{_CHANNELS}\x01":
            return False
        self.lines.append(f"{indent}{body.name(_CHANNELS)} = {body.source(carried)}")
        return True


class FamilyMember(Protocol):
    """A network of a family module, as its generator holds it."""

    @property
    def ir(self) -> IR: ...

    @property
    def info(self) -> NetworkInfo: ...

    def outputs(self, scope: tuple[str, ...]) -> list[Port]:
        """The ports a block instance's class returns (`scope`: the instance), in order."""


class FamilyClass:
    """Writes the class of a family's networks whose layers differ in more than constants from the
    spec (see _FamilyBody), over the module's pooled block instances (`instances`, each network's
    and probe's among them), as the generator groups their statements (`templates`, with the torch
    constructors' keyword defaults)."""

    def __init__(self, instances: list[_Instance], templates: _Templates, keyword_defaults: KeywordDefaults) -> None:
        self.instances, self.templates, self.keyword_defaults = instances, templates, keyword_defaults

    def write(self, indices: list[int], gens: list[FamilyMember], classes: list[_Class],
              class_names: set[str]) -> _Class | None:
        """The class of the networks `indices` (with their probes; `gens`, their networks), written
        from the spec; None where some statement is not one this can write, or some expression does
        not give every member's value. `classes`: the block classes made so far, which the calls use."""
        insts = [self.instances[i] for i in indices]
        united = _united_inits([inst.init for inst in insts])
        if united is None:
            return None
        insts = [replace(inst, init=init) for inst, init in zip(insts, united, strict=True)]
        first = insts[0]
        if any(i.forward != first.forward or i.args != first.args or len(i.init) != len(first.init) for i in insts):
            return None
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

    def _computed_statement(self, body: _FamilyBody, t: int, insts: list[_Instance], gens: list[FamilyMember],
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

    def _out_channels(self, g: FamilyMember, index: int) -> int | None:
        ports = g.outputs(self.instances[index].scope)
        shape = g.ir.node(ports[0].node).out_shapes[ports[0].index] if len(ports) == 1 else ()
        return shape[0] if shape else None

    def _carry(self, body: _FamilyBody, call: str, outs: list[int | None], envs: list[dict[str, object]],
               values: list[list[Argument]]) -> str | None:
        """The argument of `call` (its source, placeholders kept) that gives the block's output
        channels in every instance (the new running count), or None."""
        args = _call_arguments(call, call.index("("))[0]
        return next((a for j, a in enumerate(args) if all(_same(v[j], o) for v, o in zip(values, outs, strict=True))
                     and a != f"\x01{_CHANNELS}\x01"), None)

    def _computed_list(self, body: _FamilyBody, attr: str, lines: list[str], gens: list[FamilyMember],
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
                              gens: list[FamilyMember], known: set[str], var: str) -> bool:
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
                   gens: list[FamilyMember]) -> list[list[list[int]]] | None:
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

    def _computed_block(self, body: _FamilyBody, attr: str, indices: list[int], gens: list[FamilyMember],
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

    def _computed_plain(self, body: _FamilyBody, lines: list[str], gens: list[FamilyMember], known: set[str]) -> bool:
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
        body.lines.append(body.source(line))
        if not kept:
            body.carry(None if carried is None else str(texts[carried]), outs)
        return True

    def _computed_table(self, body: _FamilyBody, table: Node, t: int, insts: list[_Instance],
                        gens: list[FamilyMember], arguments: dict[int, tuple[_Class, list[Argument]]],
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
        # The rows' loop as torchvision writes each: its MobileNetV2 (`listed`, one by one) `for … in stages:
        # for i in …: features.append(…)`; its EfficientNet (`listed`) `for … in stages: … layers.append(
        # nn.Sequential(*blocks))`; its ResNet `for row, (…) in enumerate(stages, start=1): … self.add_module(
        # f"stage{row}", nn.Sequential(*blocks))`. Names are made in the order the file reads them.
        unpacked = f"{targets}{',' if len(columns) == 1 else ''}"
        blocks: str | None = None
        if listed is not None and listed[2]:
            table_name = body.names.create("stages")
            header, into, row_end = f"for {unpacked} in {table_name}:", listed[1], []
        elif listed is not None:
            table_name, blocks = (body.names.create(n) for n in ("stages", "blocks"))
            header, into = f"for {unpacked} in {table_name}:", blocks
            row_end = [f"\t{listed[1]}.append(nn.Sequential(*{blocks}))"]
        else:
            row, table_name, blocks = (body.names.create(n) for n in ("row", "stages", "blocks"))
            header, into = f"for {row}, ({targets}) in enumerate({table_name}, start=1):", blocks
            attribute = "f" + py_str(label[0])[:-1] + "{" + row + '}"'  # f"stage{row}": the spec's names
            row_end = [f"\tself.add_module({attribute}, nn.Sequential(*{blocks}))"]
        counting, counted = _table_counting(body, across, count, targets, len(columns), table_name)
        body.lines += [
            f"{table_name} = [{body.source(rows_text)}]",
            *counting,
            header,
            *([] if blocks is None else [f"\t{_new_list(blocks)}"]),
            f"\tfor {body.name(step.var) if step.var else '_'} in range({body.source(count)}):",
            f"\t\t{into}.append({body.source(call)})",
            f"\t\t{body.name(_CHANNELS)} = {body.source(carried)}",
            *counted,
            *row_end,
        ]
        body.carry(f"\x01{_CHANNELS}\x01", channels)
        return len(table.rows)

    def _table_instances(self, body: _FamilyBody, cells: list[list[str | None]], columns: list[str],
                         repeat: tuple[str, str], rows: list[list[list[int]]], cls: _Class,
                         arguments: dict[int, tuple[_Class, list[Argument]]], gens: list[FamilyMember],
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

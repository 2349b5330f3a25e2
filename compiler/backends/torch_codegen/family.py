"""A family module's network class computed from its parameters (`_FamilyBody`): the constructor
written from the spec where the networks' layers differ in more than constants (a table's rows,
stage depths), and the members' `for m in self.modules():` initialization loops united."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from ..python_source import (
    Namespace,
)
from .constants import ModuleClass, _Instance
from .expressions import _evaluate, _python_expression, _same
from .text import _INSTANCE_REF

if TYPE_CHECKING:
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

"""What makes block instances share a class (`_Structure`: block, constructor template, forward),
and how one structure is a fuller one less some parts: a submodule applied in place, built under a
flag (`_Part`, `_merged_forward`), or a network's named outputs computed only where asked
(`_OutputCut`, `_cut_forward`). `_groups` chooses the classes to make. Two groups of one block that
differ otherwise may still be one class, each the branch of an `if` (`_Part.alternative`, see
classes._alternatives), where a condition the spec's block tests tells them apart."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

from .text import (
    _APPLY,
    _NAME,
    _TARGETS,
    _TOKEN,
    _attributes,
    _named,
    _names,
    _rename,
    _self_attributes,
    _statement_attributes,
)


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
    alternative: bool = False  # which of two groups' code runs (see classes._alternatives)
    outputs: tuple[str, ...] = ()  # the outputs' keys in the returned dict (Python string literals)
    appended: int | None = None  # an entry appended to a list (`layers.append(…)`): its statement

    @property
    def kept(self) -> bool:
        """Whether the class keeps the part's flag (`self.residual = residual`): its forward tests it."""
        return self.tail or self.alternative or bool(self.outputs)


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

"""Numbers in a block's forward (Inception-ResNet's residual scale, `x * 0.17`): found, masked, and read from
attributes the constructor stores (`self.scale`) where instances differ in them, also where one
instance lacks a part of the others (`_lines_within`: Inception-ResNet-v2's last `Block8`)."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from archdsl.ops import py_number

from .constants import _Instance


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

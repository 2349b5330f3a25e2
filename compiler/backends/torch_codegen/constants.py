"""Constructor statements as templates: every number, boolean and argument-free module class of a
block instance's statements becomes a hole (`_template`), so that instances whose statements differ
only there can share one class, the holes filled per instance (`_fill`) or by the class's
parameters. Also the block instance itself (`_Instance`), as the generator first writes it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archdsl.ir import IR
from archdsl.ops import torch_sized_constructors

from .text import _CALL, _HOLE, _KEYWORD, _call_arguments, _rewrite_calls, _split_target, _stripped_end, _word_before

if TYPE_CHECKING:
    from archdsl.syntax import Node


class ModuleClass(str):
    """A torch module class passed as a value (`nn.ReLU` in `ConvBn(…, nn.ReLU)`); its repr is its source."""

    def __repr__(self) -> str:
        return str(self)


# What a constructor statement's holes hold: the integers, floats and booleans of its arguments, and
# the torch classes of argument-free modules (an activation), which a class takes as arguments.
Constant = int | float | bool | ModuleClass


# A spec value a constant may be named after: a number, or a list of integers (a network's `layers`).
SpecValue = int | float | tuple[int, ...]


class SizePair(tuple[int, int]):
    """A 2-d layer's size that one constructor argument passes whole (`kernel_size=(1, 7)`, as
    torchvision's `BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))`): its source is the tuple."""

    def __repr__(self) -> str:
        return f"({self[0]}, {self[1]})"


Argument = Constant | tuple[int, ...] | None


# torch constructor → the keyword arguments its op leaves out at their defaults (Op.torch_defaults).
KeywordDefaults = dict[str, tuple[tuple[str, str], ...]]


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


# A size of torch's 2-d layers, which take one value for both dimensions (`_pair`): the keyword and
# its tuple's parenthesis.
_PAIR_KEYWORD = re.compile(r"(?<![\w.])(kernel_size|stride|padding|dilation|output_padding)=\(")


def _may_pair_sizes(statement: str) -> bool:
    """Whether `statement` may build a 2-d layer of torch's with a size given as a tuple (a quick test)."""
    return "=(" in statement and any(layer in statement for layer in torch_sized_constructors())


def _sizes_are_torch_s(statement: str) -> bool:
    """Whether `statement` builds a 2-d layer of torch's, and no class of the file's own (whose
    sizes may need to be tuples) but those built as torch's (`MaxPool2dSame`): where a size may be
    one number or a pair."""
    sized = torch_sized_constructors()
    return _may_pair_sizes(statement) and not any(
        not m[1].startswith("nn.") and m[1].rsplit(".", 1)[-1][:1].isupper() and m[1] not in sized
        for m in _CALL.finditer(statement))


def _scalar_pairs(statement: str) -> str:
    """A size of torch's 2-d layers given as the same expression or number twice, written once, as
    torchvision writes it (`stride=stride`, `kernel_size=3`, not `stride=(stride, stride)`,
    `kernel_size=(3, 3)`): only in the arguments of torch's layers (a class of the file's own may
    want a tuple).

    >>> _scalar_pairs("self.conv = nn.Conv2d(c, c, kernel_size=(k, k), stride=(2, 2), padding=(p, q))")
    'self.conv = nn.Conv2d(c, c, kernel_size=k, stride=2, padding=(p, q))'
    >>> _scalar_pairs("nn.Sequential(nn.MaxPool2d(kernel_size=(3, 3)), Local(kernel_size=(3, 3)))")
    'nn.Sequential(nn.MaxPool2d(kernel_size=3), Local(kernel_size=(3, 3)))'
    """
    if not _may_pair_sizes(statement):
        return statement

    def once(arg: str) -> str:
        m = _PAIR_KEYWORD.match(arg)
        if m is None:
            return arg
        items, end = _call_arguments(arg, m.end() - 1)
        return f"{m[1]}={items[0]}" if len(items) == 2 and items[0] == items[1] and end == len(arg) - 1 else arg

    sized = torch_sized_constructors()
    return _rewrite_calls(statement, lambda callee: callee in sized,
                          lambda callee, args: ", ".join(once(arg) for arg in args))


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
    defaults: tuple[tuple[str, bool | int | float], ...] = ()  # ScopeInfo.defaults
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


def _fill(statement: str, holes: Iterator[str]) -> str:
    """A template statement with its holes filled in order (a product in parentheses where it must be)."""
    pieces = statement.split(_HOLE)
    out = [pieces[0]]
    for piece in pieces[1:]:
        expr = next(holes)
        if " " in expr and (out[-1].rstrip()[-1:] not in ("(", ",", "=", "[")
                            or (" if " in expr and piece.lstrip()[:1] not in (",", ")", "]", ""))):
            expr = f"({expr})"
        out.append(expr + piece)
    return "".join(out)

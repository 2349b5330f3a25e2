"""Python source text for generated code: safe identifiers, literals, comments and line wrapping.

Every code-generating backend builds on this module, so that nothing from a spec reaches a
generated file unchecked: identifiers come from a :class:`Namespace` (legal, unique, shadowing
nothing), submodule names pass :func:`check_attribute`, strings are written by :func:`py_str`, free
text by :func:`safe_comment`, and long statements are broken by :func:`wrap` the way black would.
Numbers are written by :func:`archdsl.ops.py_number`, declared with the op contract because the
ops' own torch texts are where attribute values become source.
"""

from __future__ import annotations

import builtins
import keyword
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from functools import lru_cache

from archdsl.diagnostics import Span, error

WIDTH = 120  # the project's line length; generated files pass `ruff check` under it
INDENT = "    "
MAX_IDENTIFIER = 100

# Every public name of nn.Module, nn.Sequential and nn.ModuleDict (tests compare this with torch):
# a submodule called `forward` or `keys` would be refused by torch or break the container.
RESERVED_ATTRS = frozenset({
    "T_destination", "add_module", "append", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "clear", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extend", "extra_repr", "float",
    "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "insert", "ipu",
    "items", "keys", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "pop", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "update",
    "values", "xpu", "zero_grad",
})
# Globals of every generated file; no local variable or class may shadow them.
GLOBALS = frozenset({"torch", "nn", "F", "self", "super"})

# Names pycodestyle calls ambiguous (E741: `l`, `O`, `I` read as 1 and 0): `l_2` instead.
_AMBIGUOUS = frozenset({"l", "O", "I"})

_UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_]")
_MODULE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*\Z")

class Namespace:
    """Hands out legal, unique, non-shadowing Python identifiers for generated code.

    Invariants: every name returned is an ASCII identifier that does not start with an underscore,
    is not a keyword or soft keyword nor `l`, `O` or `I` (ambiguous to pycodestyle, E741), shadows no
    builtin and none of the generated file's globals (``torch``, ``nn``, ``F``, ``self``, the
    reserved names given), is at most 100 characters long,
    and was not handed out before. Candidates are sanitized (other characters become ``_``, a
    leading digit gets a ``v_`` prefix) and made unique with a suffix ``_2``, ``_3``, …; the same
    sequence of candidates always yields the same names.

    >>> ns = Namespace({"Bottleneck"})
    >>> ns.create("torch"), ns.create("relu"), ns.create("relu"), ns.create("0.conv"), ns.create("class")
    ('torch_2', 'relu', 'relu_2', 'v_0_conv', 'class_2')
    """

    def __init__(self, reserved: set[str] | frozenset[str] = frozenset()) -> None:
        self._taken: set[str] = set(GLOBALS) | set(reserved)
        # Per base taken, the suffix to try next: names are never given back, so every suffix
        # below it is still taken (trying them all again made n alike candidates quadratic).
        self._next: dict[str, int] = {}

    def create(self, candidate: str) -> str:
        if _safe(candidate):
            base = candidate  # safe as it is (a layer's name, as most are): what the regular expression keeps
        else:
            base = _UNSAFE_CHARACTER.sub("_", candidate).strip("_")[:MAX_IDENTIFIER - 8] or "v"
            if base[0].isdigit():
                base = "v_" + base
        name = base
        if not self._free(name):
            k = self._next.get(base, 2)
            name, k = f"{base}_{k}", k + 1
            while not self._free(name):
                name, k = f"{base}_{k}", k + 1
            self._next[base] = k
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> None:
        """Never hand out `name` (an identifier some other namespace gave out, to be kept unshadowed)."""
        self._taken.add(name)

    def free(self, name: str) -> bool:
        """Whether `create(name)` would hand out `name` itself."""
        return _safe(name) and self._free(name)

    def _free(self, name: str) -> bool:
        return (name not in self._taken and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
                and not hasattr(builtins, name) and name not in _AMBIGUOUS)


def _safe(candidate: str) -> bool:
    """Whether a candidate name is a legal identifier `Namespace.create` keeps as it is (before
    making it unique): ASCII, no leading or trailing `_`, short enough for a suffix."""
    return (candidate.isidentifier() and candidate.isascii() and candidate[0] != "_" and candidate[-1] != "_"
            and len(candidate) <= MAX_IDENTIFIER - 8)


def check_attribute(name: str, span: Span) -> None:
    """Refuse a spec name that cannot name a submodule. torch accepts any name without a dot that
    is not an attribute already (`add_module("0", m)`, as nn.Sequential does); a leading `_` is
    refused too, for torch's own private attributes live there."""
    if name in _ACCEPTED_NAMES or (name.isdecimal() and name.isascii() and len(name) <= MAX_IDENTIFIER):
        return  # a name checked before (`conv` of each of 10^5 repeats), or a number (`repeat`'s children)
    reason = None
    if len(name) > MAX_IDENTIFIER:
        reason = f"it is longer than {MAX_IDENTIFIER} characters"
    elif not _MODULE_NAME_RE.match(name):
        reason = ("it is not made of ASCII letters, digits and `_` (dashes between them), starting with a "
                  "letter or digit")
    elif name in RESERVED_ATTRS:
        reason = "torch.nn.Module uses that name itself"
    if reason:
        shown = ascii(name if len(name) <= 40 else name[:37] + "...")
        raise error("E0701", f"{shown} cannot name a PyTorch submodule: {reason}", span,
                    "rename the layer with `as NAME` (letters, digits and `_`, not a name torch.nn.Module uses)")
    if len(_ACCEPTED_NAMES) < _MEMO_LIMIT:
        _ACCEPTED_NAMES.add(name)


_MEMO_LIMIT = 4096  # distinct names remembered: a spec's layer names, bounded for a generated one
_ACCEPTED_NAMES: set[str] = set()


def is_attribute(name: str) -> bool:
    """Whether `self.NAME` can be written (else the generated code uses `add_module`/`getattr`)."""
    return name.isidentifier() and not keyword.iskeyword(name)


@lru_cache(maxsize=_MEMO_LIMIT)  # the same few keys (`"conv"`) quoted per layer
def py_str(text: str) -> str:
    """A string literal for generated code: ASCII only, quotes and control characters escaped."""
    return '"' + ascii(text)[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'


def safe_comment(text: str, limit: int = 100) -> str:
    """Text for a comment or docstring: a small alphabet, no line breaks, no quotes, bounded length."""
    cleaned = re.sub(r"[^A-Za-z0-9_ .,:;=+*/()\[\]<>`-]", "?", text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 3] + "..."


def camel(name: str) -> str:
    """`inverted_residual` → `InvertedResidual` (a candidate; Namespace makes it safe)."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"_+", name) if p) or "Block"


def family_class_name(family: str, title: str) -> str:
    """The class name of a family of networks: the family as the spec's title line spells it, where
    one of its words is the family's name with its underscores dropped, compared case-blind
    (`resnet` in "# ResNet (He et al. 2016 …" → `ResNet`, `mobilenet_v2` in "# MobileNetV2 …" →
    `MobileNetV2`: the paper's and torchvision's spelling, which `camel` cannot guess), else `camel`.
    Only an ASCII word of letters and digits, which equals the family's own name but for case, is
    taken from the title (a candidate; Namespace makes it safe).

    >>> family_class_name("resnet", "# ResNet (He et al. 2016)"), family_class_name("inception_v3", "# Inception-v3")
    ('ResNet', 'InceptionV3')
    """
    wanted = family.replace("_", "").lower()
    spelled = next((w for w in re.findall(r"[A-Za-z0-9]+", title) if w.lower() == wanted and w[:1].isalpha()), None)
    return spelled[:1].upper() + spelled[1:] if spelled else camel(family)


def clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."


# `a, b, c = call(`: a tuple assignment whose targets alone may overflow the line.
_UNPACKING = re.compile(r"([A-Za-z_]\w*(?:, [A-Za-z_]\w*)+) = (.*)")


# `return a, b, c`: a multi-output block's results, no bracket to break at.
_RETURNED = re.compile(r"return ([A-Za-z_]\w*(?:, [A-Za-z_]\w*)+)")


def wrap(line: str, indent: str, suffix: str = "", width: int = WIDTH) -> list[str]:
    """Break a long statement at the commas of its last bracket group, one item per line with a
    trailing comma (black's style); items still too long are wrapped again."""
    if len(indent) + len(line) + len(suffix) <= width:
        return [indent + line + suffix]
    if line.endswith((")):", "]:", "}:")):  # a compound statement's header: its group, then the colon
        return wrap(line[:-1], indent, ":" + suffix, width)
    return _Brackets(line).wrap(0, len(line), indent, suffix, width)


class _Brackets:
    """A statement's brackets, commas and quoted texts, found in one pass, so that `wrap` breaks a
    group and the groups inside it without scanning their text again at every level (that made a
    nested constructor, `nn.Sequential(nn.ModuleDict({…}), …)`, cost its depth times its length).
    Each is filed under its depth (the brackets open around it), in order: at one depth, the k-th
    closing bracket closes the k-th opening one. A group of at most two levels and no quotes
    (`nn.Conv2d(16, 16, kernel_size=(3, 3))`) is one step of the regular expression engine: what is
    inside it is filed only if it is broken (`inside`, its own _Brackets from its first item on).

    What one pass over the line finds inside a group is what a pass over one of its items alone
    finds: a group's contents are balanced. A line whose last character is quoted (an unclosed
    string, never generated) is broken by `_wrap_scanned`, which scans each item anew."""

    def __init__(self, line: str, start: int = 0, end: int | None = None) -> None:
        self.line = line
        self.opens: list[list[int]] = [[]]
        self.closes: list[list[int]] = [[]]
        self.commas: list[list[int]] = [[]]
        self.quotes: list[list[int]] = [[]]
        self.quote_ends: dict[int, int] = {}
        self.compact: set[int] = set()  # groups taken in one step: what is inside them is not filed
        self.inner: dict[int, _Brackets] = {}  # a compact group → what is inside it, once broken
        depth, last = 0, -1
        for m in _MARK.finditer(line, start, len(line) if end is None else end):
            kind = m.lastindex
            if kind == 4:
                self.commas[depth].append(m.start())
            elif kind == 1:
                self.opens[depth].append(m.start())
                last = m.end() - 1
                self.closes[depth].append(last)
                self.compact.add(m.start())
            elif kind == 2:
                self.opens[depth].append(m.start())
                depth += 1
                if depth == len(self.opens):
                    for found in (self.opens, self.closes, self.commas, self.quotes):
                        found.append([])
            elif kind == 3:
                last = m.start()
                if depth:  # else it closes nothing (as the scanner `_opening_of_last_group` reads it)
                    depth -= 1
                    self.closes[depth].append(last)
            else:
                self.quotes[depth].append(m.start())
                self.quote_ends[m.start()] = m.end()
        self.unclosed = depth > 0  # a bracket left open after the last group: no group to break
        self.quoted_end = bool(line) and line[-1] in ")]}" and last != len(line) - 1

    def wrap(self, s: int, e: int, indent: str, suffix: str, width: int, depth: int = 0) -> list[str]:
        """`wrap` of the text from s to e: the line, or an item of a group (`depth`: the brackets
        open around it)."""
        line = self.line
        if len(indent) + e - s + len(suffix) <= width:
            return [indent + line[s:e] + suffix]
        whole = s == 0 and e == len(line)
        if whole and (self.quoted_end or self.unclosed):
            return _wrap_scanned(line, indent, suffix, width)
        o = self._opening(e - 1, depth) if e > s and line[e - 1] in ")]}" else None
        if o is None or o == e - 2:
            return _unbroken(line[s:e], indent, suffix)
        inside, d = self, depth + 1  # where the group's items are filed, and their depth there
        if o in self.compact:
            inside, d = self.inner.get(o) or self.inner.setdefault(o, _Brackets(line, o + 1, e - 1)), 0
        commas = inside.commas[d]
        items: list[tuple[int, int]] = []
        begin = o + 1
        for k in range(bisect_right(commas, o), bisect_right(commas, e - 1)):
            items.append(_stripped(line, begin, commas[k]))
            begin = commas[k] + 1
        b, c = _stripped(line, begin, e - 1)
        if b < c:
            items.append((b, c))
        head = line[s:o + 1]
        generator = inside._generator(d, *items[0]) if len(items) == 1 else None
        atom = (head.endswith("(") and not re.match(r"[\w)\]]\($", head[-2:]) and len(items) == 1
                and line[_stripped(line, s, e - 1)[1] - 1] != ",")
        item = line[items[0][0]:items[0][1]] if generator is not None else ""
        trailing = "" if generator is not None or atom else ","
        return _broken(head, item, generator, line[e - 1], indent, suffix, width,
                       (inside.wrap(b, c, indent + INDENT, trailing, width, d) for b, c in items))

    def _opening(self, close: int, depth: int) -> int | None:
        """The opening bracket of the closing one at `close`, at `depth`; None if it closes nothing."""
        closes = self.closes[depth] if depth < len(self.closes) else []
        k = bisect_left(closes, close)
        return self.opens[depth][k] if k < len(closes) and closes[k] == close else None

    def _generator(self, depth: int, s: int, e: int) -> int | None:
        """Where `_masked` of the item from s to e (at `depth`) has its first `\\sfor\\s`, as an
        offset in the item; None if nowhere. Only the item's top level is read: a blanked run (a
        nested group's contents, a quoted text) stands as one space."""
        line, opens, quotes = self.line, self.opens[depth], self.quotes[depth]
        blanks = sorted([*((o + 1, self.closes[depth][k]) for k, o in
                           enumerate(opens[bisect_left(opens, s):bisect_left(opens, e)], bisect_left(opens, s))),
                         *((q, self.quote_ends[q]) for q in quotes[bisect_left(quotes, s):bisect_left(quotes, e)])])
        pieces, offsets, where = [], [], []  # the text searched, in pieces; their offsets there and in the line
        at, size = s, 0
        for blank, stop in blanks:
            pieces.append(line[at:blank])
            offsets.append(size)
            where.append(at)
            size += blank - at
            if stop > blank:
                pieces.append(" ")
                offsets.append(size)
                where.append(stop - 1)
                size += 1
            at = stop
        pieces.append(line[at:e])
        offsets.append(size)
        where.append(at)
        m = _FOR.search("".join(pieces))
        if m is None:
            return None
        k = bisect_right(offsets, m.start()) - 1
        return where[k] + m.start() - offsets[k] - s


def _wrap_scanned(line: str, indent: str, suffix: str, width: int,
                  again: Callable[[str, str, str, int], list[str]] = wrap) -> list[str]:
    """`wrap` of a line whose last character is quoted: the group closed by its last bracket
    outside quotes, its items found by scanning them, each wrapped by `again` as a line of its own
    (tests pass this function itself: `wrap` as it was before `_Brackets`, for reference)."""
    split = _last_group(line)
    if split is None:
        return _unbroken(line, indent, suffix)
    head, items, tail = split
    found = _FOR.search(_masked(items[0])) if len(items) == 1 else None
    generator = found.start() if found is not None else None
    atom = (head.endswith("(") and not re.search(r"[\w)\]]\($", head) and len(items) == 1
            and not line[:-1].rstrip().endswith(","))
    trailing = "" if generator is not None or atom else ","
    return _broken(head, items[0] if generator is not None else "", generator, tail, indent, suffix, width,
                   (again(item, indent + INDENT, trailing, width) for item in items))


def _unbroken(line: str, indent: str, suffix: str) -> list[str]:
    """A long statement without a group to break at the end: `return a, b, …` (a multi-output
    block) in black's parentheses, else as it is."""
    returned = _RETURNED.fullmatch(line)
    if returned:
        return [indent + "return (", *(f"{indent}{INDENT}{name}," for name in returned[1].split(", ")),
                indent + ")" + suffix]
    return [indent + line + suffix + "  # noqa: E501"]


def _broken(head: str, item: str, generator: int | None, tail: str, indent: str, suffix: str, width: int,
            wrapped_items: Iterator[list[str]]) -> list[str]:
    """A statement broken at its last group: `head` (up to its opening bracket), the group's items
    (`wrapped_items`), `tail` (its closing bracket). A generator expression alone in its parentheses
    (`*(m for _ in range(1, 3))`: `item`, its `for` at offset `generator`) takes no trailing comma,
    `(m for _ in range(3),)` being a syntax error, and where too long is broken before its `for`;
    neither does a parenthesized expression of one item, `2 / (a * b)` (a comma would make it a
    tuple). A call's or a collection's items take one (black's magic trailing comma)."""
    out: list[str] = []
    unpacking = _UNPACKING.match(head)
    if unpacking and len(indent) + len(head) > width:  # black: the targets in parentheses, one a line
        out.append(indent + "(")
        out.extend(f"{indent}{INDENT}{target}," for target in unpacking[1].split(", "))
        head = ") = " + unpacking[2]
    out.append(indent + head)
    if generator is not None and len(indent + INDENT + item) > width:  # black: element, then its `for`
        out += [*wrap(item[:generator], indent + INDENT, "", width),
                *wrap(item[generator + 1:], indent + INDENT, "", width)]
    else:
        for lines in wrapped_items:
            out.extend(lines)
    out.append(indent + tail + suffix)
    return out


def _stripped(text: str, s: int, e: int) -> tuple[int, int]:
    """The bounds of `text[s:e].strip()` in `text`."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _masked(text: str) -> str:
    """`text` with what its brackets and quotes hold blanked: its top level alone."""
    out, level = [], 0
    for m in _PIECE.finditer(text):
        piece = m[0]
        level -= piece in (")", "]", "}")
        out.append(piece if level == 0 and piece[0] not in "\"'" else " " * len(piece))
        level += piece in ("(", "[", "{")
    return "".join(out)


def _last_group(line: str) -> tuple[str, list[str], str] | None:
    """(text up to and including the opening bracket, top-level items, closing text) of the bracket
    group that closes at the end of `line`, or None."""
    if not line or line[-1] not in ")]}":
        return None
    start = _opening_of_last_group(line)
    if start is None or start == len(line) - 2:
        return None
    return line[:start + 1], _top_level_items(line[start + 1:-1]), line[-1]


def _opening_of_last_group(line: str) -> int | None:
    """Offset of the bracket that the last character of `line` closes, if every bracket before it
    is balanced (quoted text skipped); None otherwise."""
    depth, start = 0, None
    starts: list[int] = []
    for m in _PIECE.finditer(line):
        ch = m[0][0]
        if ch in "([{":
            starts.append(m.start())
        elif ch in ")]}":
            start = starts.pop() if starts else None
            depth = len(starts)
    return start if depth == 0 else None


def _top_level_items(inner: str) -> list[str]:
    """The comma-separated items of a bracket group's contents (commas inside brackets or quotes
    do not separate)."""
    items, level, begin = [], 0, 0
    for m in _PIECE.finditer(inner):
        ch = m[0][0]
        if ch in "([{":
            level += 1
        elif ch in ")]}":
            level -= 1
        elif ch == "," and level == 0:
            items.append(inner[begin:m.start()].strip())
            begin = m.end()
    if inner[begin:].strip():
        items.append(inner[begin:].strip())
    return items


# What `_Brackets` looks at, in one pass: a quoted text (as `_PIECE` reads it), a group of at most two
# levels without quotes (group 1), an opening bracket, a closing one, a comma; the text between is
# passed over by the regular expression engine.
_MARK = re.compile(r""""(?:[^"]|(?<=\\)")*(?:"|\Z)|'(?:[^']|(?<=\\)')*(?:'|\Z)"""
                   r"""|([(\[{](?:[^()\[\]{}"']++|[(\[{][^()\[\]{}"']*+[)\]}])*+[)\]}])|([(\[{])|([)\]}])|(,)""", re.S)
# A generator expression's `for`, on the top level of an item.
_FOR = re.compile(r"\sfor\s")

# The pieces the two scanners above step through: a quoted text (closed by its quote when no
# backslash precedes it, or by the end of the line), a bracket, a comma, or a run of anything else.
_PIECE = re.compile(r""""(?:[^"]|(?<=\\)")*(?:"|\Z)|'(?:[^']|(?<=\\)')*(?:'|\Z)|[^"'()\[\]{},]+|.""", re.S)

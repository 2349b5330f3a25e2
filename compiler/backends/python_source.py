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

    def _free(self, name: str) -> bool:
        return (name not in self._taken and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
                and not hasattr(builtins, name) and name not in _AMBIGUOUS)


def check_attribute(name: str, span: Span) -> None:
    """Refuse a spec name that cannot name a submodule. torch accepts any name without a dot that
    is not an attribute already (`add_module("0", m)`, as nn.Sequential does); a leading `_` is
    refused too, for torch's own private attributes live there."""
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


def is_attribute(name: str) -> bool:
    """Whether `self.NAME` can be written (else the generated code uses `add_module`/`getattr`)."""
    return name.isidentifier() and not keyword.iskeyword(name)


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
    split = _last_group(line)
    returned = _RETURNED.fullmatch(line)
    if split is None and returned:  # `return a, b, …` (a multi-output block): black's parentheses
        return [indent + "return (", *(f"{indent}{INDENT}{name}," for name in returned[1].split(", ")),
                indent + ")" + suffix]
    if split is None:
        return [indent + line + suffix + "  # noqa: E501"]
    head, items, tail = split
    out: list[str] = []
    unpacking = _UNPACKING.match(head)
    if unpacking and len(indent) + len(head) > width:  # black: the targets in parentheses, one a line
        out.append(indent + "(")
        out.extend(f"{indent}{INDENT}{target}," for target in unpacking[1].split(", "))
        head = ") = " + unpacking[2]
    out.append(indent + head)
    # A generator expression alone in its parentheses (`*(m for _ in range(1, 3))`) takes no comma:
    # `(m for _ in range(3),)` is a syntax error.
    generator = re.search(r"\sfor\s", _masked(items[0])) if len(items) == 1 else None
    # Nor does a parenthesized expression of one item, `2 / (a * b)`: the comma would make it a tuple.
    # A call's or a collection's items take one (black's magic trailing comma).
    atom = (head.endswith("(") and not re.search(r"[\w)\]]\($", head) and len(items) == 1
            and not line[:-1].rstrip().endswith(","))
    if generator is not None and len(indent + INDENT + items[0]) > width:  # black: element, then its `for`
        out += [*wrap(items[0][:generator.start()], indent + INDENT, "", width),
                *wrap(items[0][generator.start() + 1:], indent + INDENT, "", width)]
        items = []
    for item in items:
        out.extend(wrap(item, indent + INDENT, "" if generator or atom else ",", width))
    out.append(indent + tail + suffix)
    return out


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


# The pieces the two scanners above step through: a quoted text (closed by its quote when no
# backslash precedes it, or by the end of the line), a bracket, a comma, or a run of anything else.
_PIECE = re.compile(r""""(?:[^"]|(?<=\\)")*(?:"|\Z)|'(?:[^']|(?<=\\)')*(?:'|\Z)|[^"'()\[\]{},]+|.""", re.S)

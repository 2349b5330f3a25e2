"""Lines of generated Python read and rewritten as text: the names a line reads and assigns
(`_names`, `_named`), variables renamed (`_renamed`), the calls and arguments of a constructor
statement (`_call_arguments`, `_rewrite_calls`), a repeat's `nn.Sequential(…)` written as its loop
(`_loop_runs`), and the placeholders that stand for block instances (`__I3__`) and submodules (an
index between two NUL characters) until their classes and names are known. Regular expressions throughout, one pass of
the engine where it can: the generator runs these over every line of every class it writes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache

from ..python_source import (
    Namespace,
    is_attribute,
    py_str,
)

# How generated code begins a list of modules it appends to (`as block[]`, a stage's blocks), and
# how a class's statements are read back for the lists it builds.
_LIST_START = re.compile(r"(\w+): list\[nn\.Module\] = \[\]")


def _new_list(var: str) -> str:
    return f"{var}: list[nn.Module] = []"


def parts(scope: tuple[str, ...]) -> tuple[str, ...]:
    """Scope components as name components (a label component like `1.5` holds a dot)."""
    return tuple(p for comp in scope for p in comp.split("."))


def _rename(line: str, old: str, new: str) -> str:
    """`line` with the variable `old` called `new` (attributes and string literals untouched)."""
    return _renamed(line, {old: new}) if old in line else line


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


_PLACEHOLDER = re.compile("\x00(\\d+)\x00")  # a submodule reference in forward code until it is named


_NAME = re.compile(r"[A-Za-z_]\w*\Z")


# A call in a constructor statement: the callee (`nn.Conv2d`, `ConvBnAct`) and its parenthesis.
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\(")


# A forward line that applies one submodule to one value.
_APPLY = re.compile(r"(\w+) = self\.(\w+)\((\w+)\)\Z")


def _instance_ref(index: int) -> str:
    return f"__I{index}__"


def _shift(line: str, offset: int) -> str:
    """A constructor statement of one network's instances, placed `offset` further in a pool."""
    return _INSTANCE_REF.sub(lambda m: _instance_ref(int(m[1]) + offset), line) if offset else line


def _resolve_instances(line: str, calls: dict[int, str]) -> str:
    return _INSTANCE_REF.sub(lambda m: calls[int(m[1])], line)


_SLOT_TARGET = re.compile(r"self\.[A-Za-z_]\w* = ")


def _split_target(statement: str) -> tuple[str, str]:
    """(`self.NAME = `, the rest) of a constructor statement, or ("", the statement)."""
    target = _SLOT_TARGET.match(statement)
    return (statement[:target.end()], statement[target.end():]) if target else ("", statement)


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


_KEYWORD = re.compile(r"(\w+)=(?!=)")


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


# `self.NAME` not followed by a word character, at every place (overlapping: `myself.a` holds `self.a`).
_SELF_ATTRIBUTE = re.compile(r"(?=self\.(\w+))")


def _self_attributes(line: str) -> set[str]:
    """The names a for which `re.search(rf"self\\.{a}\\b", line)` finds something, found in one pass
    (a search per name and line was quadratic in a network of many layers)."""
    return {m[1] for m in _SELF_ATTRIBUTE.finditer(line)}


def _attributes(statements: list[str]) -> list[str]:
    return [a for a in _statement_attributes(statements) if a is not None]


def _statement_attributes(statements: list[str]) -> list[str | None]:
    """The attribute each constructor statement assigns (None for `self.add_module(…)`)."""
    return [m[1] if (m := _ASSIGNED_ATTRIBUTE.match(s)) else None for s in statements]


_ASSIGNED_ATTRIBUTE = re.compile(r"self\.(\w+) = ")


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

"""Fuzzing helpers shared by tests/test_fuzz.py (CI, fixed budget) and benchmarks/fuzz.py (nightly).

A case is a spec text. :func:`run_case` feeds it through the Python API — load, the static name
check, elaboration and analysis of (at most two of) its networks, and PyTorch code generation when
that backend is present — and classifies the result: success, diagnostics (an :class:`ArchError`
whose every diagnostic lies inside the input), or a failure (a traceback, a diagnostic outside the
input, or a case slower than the hang bound).

Cases come from two sources, both deterministic for a given seed:
- :func:`spec_strategy`, a hypothesis grammar of valid-looking specs (random ops from the registry,
  attributes, numbers, blocks, repeats, conditionals, merges, stage tables);
- :func:`mutations`, edits of every spec in specs/ (delete/duplicate/swap tokens and lines, numbers
  → 0, −1, huge, floats) and truncations at many positions.
"""

from __future__ import annotations

import gc
import random
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

import archdsl.api as api
from archdsl.diagnostics import SOURCES, ArchError, Diagnostic
from archdsl.namecheck import check_names
from archdsl.ops import op_names

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
# A case must finish within HANG_S seconds of CPU time. CPU time, not wall time: a runaway loop
# burns CPU, while other processes on a loaded machine only stretch the wall clock.
HANG_S = 2.0
FILE = "fuzz.arch"

try:
    from archdsl.compiler.backends.torch_codegen import generate_source
except ImportError:  # the backend is optional: then only check and analyze
    generate_source = None


@dataclass
class Tally:
    cases: int = 0
    successes: int = 0
    diagnostics: int = 0
    tracebacks: int = 0
    hangs: int = 0
    bad_positions: int = 0
    max_time: float = 0.0  # CPU seconds
    max_wall: float = 0.0
    failures: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.tracebacks or self.hangs or self.bad_positions)

    def summary(self) -> str:
        return (f"cases {self.cases}, successes {self.successes}, diagnostics {self.diagnostics}, "
                f"tracebacks {self.tracebacks}, hangs {self.hangs}, bad positions {self.bad_positions}, "
                f"max time {self.max_time:.3f} s CPU ({self.max_wall:.3f} s wall)")


def position_ok(d: Diagnostic, text: str) -> bool:
    """The diagnostic's line:col lies inside the text it names (or, for an imported file, its text)."""
    source = text if d.span.file == FILE else SOURCES.texts.get(d.span.file)
    if source is None:
        return d.span.file.startswith("<") and (d.span.line, d.span.col) == (1, 1)
    lines = source.split("\n")
    if not 1 <= d.span.line <= len(lines):
        return False
    return 1 <= d.span.col <= len(lines[d.span.line - 1]) + 1


def run_case(text: str, tally: Tally, networks: int = 2) -> str:
    """Run one case, count it in `tally`; returns "ok", "diagnostics" or a failure description.

    A case over the bound is timed once more after a full garbage collection: in a long run the
    collector's pauses over everything earlier cases left behind land on whichever case is
    running, and only a case that is slow on its own is a hang."""
    outcome, elapsed, wall = _timed_case(text, networks)
    if elapsed > HANG_S:
        gc.collect()
        outcome, elapsed, wall = _timed_case(text, networks)
    tally.cases += 1
    tally.max_time = max(tally.max_time, elapsed)
    tally.max_wall = max(tally.max_wall, wall)
    if outcome == "ok":
        tally.successes += 1
    elif outcome == "diagnostics":
        tally.diagnostics += 1
    elif outcome.startswith("traceback"):
        tally.tracebacks += 1
    else:
        tally.bad_positions += 1
    if elapsed > HANG_S:
        tally.hangs += 1
        outcome = f"hang: {elapsed:.2f} s CPU"
    if outcome not in ("ok", "diagnostics") and len(tally.failures) < 20:
        tally.failures.append(f"{outcome}\n--- input ---\n{text[:2000]}")
    return outcome


def _timed_case(text: str, networks: int) -> tuple[str, float, float]:
    """(outcome, CPU seconds, wall seconds) of one run of a case."""
    start, start_cpu = time.perf_counter(), time.process_time()
    outcome = "ok"
    try:
        spec = api.load_string(text, FILE)
        problems = check_names(spec.namespace)
        if problems:
            raise ArchError(problems)
        names = spec.networks
        chosen = names[:1] + names[len(names) // 2: len(names) // 2 + 1] if len(names) > 1 else names
        for name in chosen[:networks]:
            net = spec.network(name)
            net.analyze()
            if generate_source is not None:
                generate_source(net)
    except ArchError as exc:
        outcome = "diagnostics"
        bad = [d for d in exc.diagnostics if not position_ok(d, text)]
        if bad:
            outcome = f"diagnostic outside the input: {bad[0].span.where()}: {bad[0].message}"
    except Exception:  # what the fuzzer is looking for
        outcome = "traceback: " + traceback.format_exc(limit=-6)
    return outcome, time.process_time() - start_cpu, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Grammar-based generation

OPS = sorted(op_names())
ATTRS = ["stride", "pad", "groups", "bias", "dilation", "p", "dim", "kernel", "out", "mode", "size", "scale",
         "slope", "sections", "eps", "ceil_mode", "multiplier", "block", "output_pad", "affine", "strides"]
WORDS = ["same", "valid", "global", "nearest", "bilinear", "true", "false", "none", "fast"]
NAMES = ["c", "n", "w", "c", "n", "w", "i", "x", "layers"]  # mostly names every definition binds
TAME = ["conv(c, 3)", "conv(16, 1, stride=2)", "bn", "relu", "relu6", "silu", "maxpool(2)",
        "maxpool(3, stride=2, pad=1)", "avgpool(2)", "dropout(0.1)", "dwconv(3)", "pwconv(w)", "shuffle(1)", "identity",
        "conv(n * 4, 3, groups=1)",
        "hswish", "sigmoid", "upsample(2)", "lrn", "conv(8, 1x3)", "deconv(8, 2, stride=2)"]

numbers = st.one_of(
    st.integers(-2, 70),
    st.sampled_from(["0", "1", "2", "3", "7", "64", "1_000", "300M", "4.1G", "10**9", "2**70", "1e-3", "0.5",
                     "-1", "1.5"]),
).map(str)
shapes = st.lists(st.integers(1, 64), min_size=3, max_size=3).map(lambda ds: "x".join(map(str, ds)))


def _expr(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or"]),
                  children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda e: f"({e})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
        st.lists(children, max_size=4).map(lambda xs: f"[{', '.join(xs)}]"),
        st.tuples(st.sampled_from(["min", "max", "round", "ceil", "divisible", "len", "int", "sqrt"]),
                  st.lists(children, min_size=1, max_size=2)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(["channels", "c", "h", "w", "shape", "numel"])
                  ).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(st.sampled_from(NAMES), children).map(lambda t: f"{t[0]}[{t[1]}]"),
    )


exprs = st.recursive(st.one_of(numbers, shapes, st.sampled_from(NAMES + WORDS), st.just('"s"')), _expr,
                     max_leaves=6)


@st.composite
def calls(draw: st.DrawFn, blocks: tuple[str, ...] = ()) -> str:
    if draw(st.integers(0, 2)) > 0:
        return draw(st.sampled_from(TAME + [f"{b}(8)" for b in blocks]))
    name = draw(st.sampled_from(OPS + list(blocks)) if blocks else st.sampled_from(OPS))
    args = draw(st.lists(st.one_of(exprs, st.tuples(st.sampled_from(ATTRS), exprs).map(lambda t: f"{t[0]}={t[1]}")),
                         max_size=3))
    text = name if not args and draw(st.booleans()) else f"{name}({', '.join(args)})"
    if draw(st.integers(0, 5)) == 0:
        text += f" as {draw(st.sampled_from(['conv1', 'fc', 'layer1', 'a.b', 'x.0']))}"
    return text


@st.composite
def steps(draw: st.DrawFn, blocks: tuple[str, ...] = (), depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth < 2 else 5))
    if kind <= 5:
        return draw(calls(blocks))
    inner = draw(steps(blocks, depth + 1))
    if kind == 6:
        if draw(st.booleans()):  # in brackets, since a `->` may follow on the same line
            return f"(repeat {draw(numbers)}: {inner})"
        return f"repeat {draw(numbers)} as i {{ {inner} -> conv(i + 1, 1) }}"
    if kind == 7:
        return f"if {draw(exprs)} {{ {inner} }} else {{ {draw(steps(blocks, depth + 1))} }}"
    if kind == 8:
        return f"repeat {draw(numbers)} {{ {inner} -> {draw(calls(blocks))} }} as stage"
    rows = draw(st.lists(st.tuples(st.integers(0, 64), st.integers(0, 3)), min_size=1, max_size=3))
    table = "\n".join(f"        {a}, {b}" for a, b in rows)
    return f"(stages(c, n) as layer {{\n{table}\n    }} repeat n: {inner})"


def _chain(draw: st.DrawFn, head: str, blocks: tuple[str, ...]) -> str:
    parts = draw(st.lists(steps(blocks), min_size=1, max_size=5))
    return " -> ".join([head, *parts])


@st.composite
def statements(draw: st.DrawFn, head: str, blocks: tuple[str, ...]) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 7))
        if kind <= 2:
            out.append(f"{draw(st.sampled_from(['x', 'y', 'a', 'b']))} = {_chain(draw, head, blocks)}")
        elif kind == 3:
            out.append(f"{draw(st.sampled_from(NAMES))} = {draw(exprs)}")
        elif kind == 4:
            merge = draw(st.sampled_from(["concat", "fuse", "add", "mul"]))
            out.append(f"{merge}({head}, {draw(st.sampled_from(['x', 'y', head]))})")
        elif kind == 5:
            out.append(f"{draw(st.sampled_from(['x', 'y', head]))} {draw(st.sampled_from(['+', '*']))} "
                       f"{draw(st.sampled_from(['x', 'y', head]))}")
        elif kind == 6:
            out.append(f"a, b = split({head}, {draw(st.sampled_from(['2', '[1, 2]', '3']))})")
        else:
            out.append(f"repeat {draw(numbers)} as i {{ x = {_chain(draw, head, blocks)} -> conv(8 + i, 1) }}")
    out.append(_chain(draw, head, blocks))
    return out


@st.composite
def spec_strategy(draw: st.DrawFn) -> str:
    """A random valid-looking spec: a few blocks, then a network using them."""
    parts: list[str] = []
    if draw(st.integers(0, 9)) == 0:
        parts.append("import common")
    blocks: list[str] = []
    for k in range(draw(st.integers(0, 2))):
        name = f"blk{k}"
        params = draw(st.sampled_from(["c, n=1, w=8", "c=16, n=2, w=4, s=1", "c=8, n=1, w=8, expand=2"]))
        body = draw(statements("in", tuple(blocks)))
        parts.append(f"block {name}({params}) {{\n    " + "\n    ".join(body) + "\n}")
        blocks.append(name)
    if draw(st.integers(0, 4)) == 0:
        blocks.append(blocks[0] if blocks else "relu")  # self/mutual recursion, sometimes
    params = draw(st.sampled_from(["(c=8, n=2, w=16)", "(c=16, n=1, w=8, layers=[1, 2])", "(c=4, n=0, w=4)", ""]))
    body = draw(statements("image", tuple(blocks)))
    shape = draw(st.one_of(shapes, st.sampled_from(["3x32x32", "3x64x64", "16x8x8", "[3, 32, 32]", "8x16x16"])))
    net = f"network net{params} {{\n    input image: {shape}\n    " + "\n    ".join(body) + "\n}"
    parts.append(net)
    if draw(st.booleans()):
        parts.append(f"network small = net({draw(st.sampled_from(['', 'width=8', 'c=4', 'nope=1']))})")
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Mutation of the zoo

TOKEN = re.compile(r"\d[\w.]*|\w+|->|\*\*|//|[=!<>]=|\S")
NUMBER = re.compile(r"(?<![\w.])\d[\d_]*(\.\d+)?([eE][+-]?\d+)?[KMGTB]?(?![\w])")
REPLACEMENTS = ["0", "-1", "1", "10**12", "2**70", "99999999999", "0.5", "3.7", "1e-9", "1e300", "-0.0"]


def zoo_texts() -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(SPECS.glob("*.arch"))]


def mutate(text: str, rng: random.Random) -> str:
    """One random edit of `text` (a token or line deleted, duplicated or swapped; a number changed)."""
    kind = rng.randrange(8)
    if kind <= 2:
        tokens = [m.span() for m in TOKEN.finditer(text)]
        if not tokens:
            return text
        i = rng.randrange(len(tokens))
        a, b = tokens[i]
        if kind == 0:
            return text[:a] + text[b:]
        if kind == 1:
            return text[:b] + " " + text[a:b] + text[b:]
        j = min(i + 1, len(tokens) - 1)
        c, d = tokens[j]
        return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:] if j != i else text
    if kind <= 5:
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        if kind == 3:
            del lines[i]
        elif kind == 4:
            lines.insert(i, lines[i])
        else:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    found = list(NUMBER.finditer(text))
    if not found:
        return text
    m = rng.choice(found)
    return text[: m.start()] + rng.choice(REPLACEMENTS) + text[m.end():]


def mutations(per_spec: int, seed: int = 0, edits: int = 3) -> Iterator[str]:
    """`per_spec` mutants of every zoo spec, each with 1..`edits` random edits; deterministic."""
    for index, (name, text) in enumerate(zoo_texts()):
        rng = random.Random(f"{seed}:{index}:{name}")
        for _ in range(per_spec):
            mutant = text
            for _ in range(rng.randint(1, edits)):
                mutant = mutate(mutant, rng)
            yield mutant


def truncations(files: list[str], positions: int) -> Iterator[str]:
    """Each named zoo spec cut at `positions` evenly spread offsets."""
    texts = dict(zoo_texts())
    for name in files:
        text = texts[name]
        for k in range(1, positions + 1):
            yield text[: len(text) * k // (positions + 1)]

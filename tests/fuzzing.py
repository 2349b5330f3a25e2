"""Fuzzing helpers shared by tests/test_fuzz.py (CI, fixed budget) and benchmarks/fuzz.py (nightly).

A case is a spec text. :func:`run_case` writes it to a file and drives the command line with it as
a user would — ``archdsl check``, ``analyze --json``, ``compile -o x.py``, ``diagram -o x.dot``,
``verify`` (in-process, through :func:`archdsl.cli.main`, for speed) — for (at most two of) its
networks, and classifies the result: success, diagnostics (exit status 1, every diagnostic inside
the input), or a failure: a traceback escaping the CLI, an internal error (``E9999``: the CLI
caught an exception it did not expect), another exit status, a diagnostic outside the input, a
command slower than the hang bound, or a generated module that does not construct (or, run on
meta tensors, gives other output shapes than the analysis).

Cases come from two sources, both deterministic for a given seed:
- :func:`spec_strategy`, a hypothesis grammar of valid-looking specs (random ops from the registry,
  attributes, numbers — the edges of the float range among them —, blocks, repeats, conditionals,
  merges, stage tables);
- :func:`mutations`, edits of every spec in specs/ (delete/duplicate/swap tokens and lines, numbers
  → 0, −1, huge, floats, and :data:`EDGE_NUMBERS`: ``1e400``, ``1e308G``, ``2**1024``, ``nan``, …)
  and truncations at many positions.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import random
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from hypothesis import strategies as st

from archdsl.cli import main as cli_main
from archdsl.diagnostics import SOURCES
from archdsl.ops import op_names

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
# A command must finish within HANG_S seconds of CPU time. CPU time, not wall time: a runaway loop
# burns CPU, while other processes on a loaded machine only stretch the wall clock.
HANG_S = 2.0
FILE = "fuzz.arch"
COMMANDS = ("check", "analyze", "compile", "diagram", "verify")
# Numbers at the edges of the float range, as a user might write them (spelled-out `nan` and `inf`
# included): each must be a diagnostic at its position or a working network, never an internal error.
EDGE_NUMBERS = ["1e308", "1e400", "1e308G", "2**1024", "2**1023 * 2.0", "-0", "-0.0", "nan", "inf", "-inf",
                "1e-400", "5e-324", "1.7976931348623157e308", "1.8e308", "1e300T", "1e308 * 10", "9" * 400,
                "1e999999999G", "0e999", "1e-320", "1e12"]

Construct = Callable[[str, str], None]  # (generated source, class name) → builds it, or raises


@dataclass
class Tally:
    cases: int = 0
    commands: int = 0  # command runs
    successes: int = 0  # cases where every command exited 0
    diagnostics: int = 0  # cases where some command reported diagnostics (and none failed)
    tracebacks: int = 0  # an exception escaped the CLI
    internal_errors: int = 0  # the CLI reported E9999 (an exception it caught but did not expect)
    exit_statuses: int = 0  # an exit status other than 0 and 1
    hangs: int = 0
    bad_positions: int = 0
    modules_built: int = 0  # generated modules constructed
    not_constructed: int = 0  # generated modules that fail to construct, or to run with the analysis's shapes
    max_time: float = 0.0  # CPU seconds of one command
    max_wall: float = 0.0
    failures: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.tracebacks or self.internal_errors or self.exit_statuses or self.hangs or self.bad_positions
                    or self.not_constructed)

    def summary(self) -> str:
        return (f"cases {self.cases} ({self.commands} commands), successes {self.successes}, "
                f"diagnostics {self.diagnostics}, tracebacks {self.tracebacks}, "
                f"internal errors {self.internal_errors}, other exit statuses {self.exit_statuses}, "
                f"hangs {self.hangs}, bad positions {self.bad_positions}, modules built {self.modules_built}, "
                f"not constructed {self.not_constructed}, max time {self.max_time:.3f} s CPU "
                f"({self.max_wall:.3f} s wall) per command")


def position_ok(file: str, line: int, col: int, path: str, text: str) -> bool:
    """file:line:col lies inside the text it names: the case (at `path`), an imported file, or an
    unknown place (`<--set>`, a missing file) at 1:1."""
    source = text if file == path else SOURCES.texts.get(file)
    if source is None:
        return (line, col) == (1, 1)
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return False
    return 1 <= col <= len(lines[line - 1]) + 1


_WHERE = re.compile(r"^  --> (.*):(\d+):(\d+)$", re.MULTILINE)


def _diagnostic_positions(stderr: str) -> list[tuple[str, int, int]]:
    """Where each diagnostic on stderr points: rendered (`  --> file:line:col`) or JSON (--json)."""
    found = [(f, int(line), int(col)) for f, line, col in _WHERE.findall(stderr)]
    if stderr.lstrip().startswith("{"):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            found += [(d["file"], d["line"], d["col"]) for d in json.loads(stderr)["diagnostics"]]
    return found


_workspace: Path | None = None


def workspace(directory: Path | None = None) -> Path:
    """This process's directory for the case file and the commands' outputs (`directory` sets it;
    by default a fresh temporary directory)."""
    global _workspace
    if directory is not None:
        _workspace = directory
    if _workspace is None:
        _workspace = Path(tempfile.mkdtemp(prefix="archdsl-fuzz-"))
    return _workspace


_NETWORK = re.compile(r"^[ \t]*network[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
_PARAMETER = re.compile(r"^[ \t]*network[ \t]+\w+[ \t]*\([ \t]*([A-Za-z_]\w*)[ \t]*=", re.MULTILINE)


def networks_of(text: str, at_most: int) -> list[str | None]:
    """The networks a user would name with --net: the middle one (in a zoo file, a variant such as
    resnet50) and the first (often the family, resnet), or None (no --net) when the text defines
    none the regular expression sees."""
    names = list(dict.fromkeys(_NETWORK.findall(text)))
    if not names:
        return [None]
    return list(dict.fromkeys([names[len(names) // 2], names[0]]))[:at_most]


def edge_setting(text: str, k: int) -> list[str]:
    """For every 7th case k: `--set PARAM=EDGE` on the first network parameter, if there is one."""
    found = _PARAMETER.search(text)
    if k % 7 or found is None:
        return []
    return ["--set", f"{found.group(1)}={EDGE_NUMBERS[k // 7 % len(EDGE_NUMBERS)]}"]


def command_lines(command: str, path: Path, net: str | None, extra: Sequence[str]) -> list[str]:
    """The argument list a user types for `command` on `path` (`extra`, --set and --input, goes to
    the commands that build one network: analyze, compile, diagram)."""
    out = path.parent
    net_args = ["--net", net] if net else []
    return {
        "check": ["check", str(path)],
        "analyze": ["analyze", str(path), "--json", *net_args, *extra],
        "compile": ["compile", str(path), "-o", str(out / "x.py"), *net_args, *extra],
        "diagram": ["diagram", str(path), "-o", str(out / "x.dot"), *net_args, *extra],
        "verify": ["verify", str(path), *net_args],
    }[command]


def run_case(text: str, tally: Tally, networks: int = 2, commands: Sequence[str] = COMMANDS,
             extra: Sequence[str] = (), construct: Construct | None = None) -> str:
    """Run one case through `commands` (each network-specific one for at most `networks` networks,
    with `extra` arguments such as --set), count it in `tally`; returns "ok", "diagnostics" or the
    first failure's description. `construct`, when given, builds every module `compile` writes."""
    path = workspace() / FILE
    path.write_text(text, encoding="utf-8")
    tally.cases += 1
    outcomes: list[str] = []
    for command in commands:
        for net in ([None] if command == "check" else networks_of(text, networks)):
            argv = command_lines(command, path, net, extra)
            outcomes.append(_run_command(argv, text, path, tally, construct if command == "compile" else None))
    failures = [o for o in outcomes if o not in ("ok", "diagnostics")]
    outcome = failures[0] if failures else "diagnostics" if "diagnostics" in outcomes else "ok"
    if outcome == "ok":
        tally.successes += 1
    elif outcome == "diagnostics":
        tally.diagnostics += 1
    return outcome


def _run_command(argv: list[str], text: str, path: Path, tally: Tally, construct: Construct | None) -> str:
    """One command, timed once more after a full garbage collection when over the bound: in a long
    run the collector's pauses over everything earlier cases left behind land on whichever command is
    running, and only a command that is slow on its own is a hang."""
    for output in ("x.py", "x.dot"):
        (path.parent / output).unlink(missing_ok=True)
    result = _timed_command(argv)
    if result[3] > HANG_S:
        gc.collect()
        result = _timed_command(argv)
    rc, stdout, stderr, elapsed, wall = result
    tally.commands += 1
    tally.max_time = max(tally.max_time, elapsed)
    tally.max_wall = max(tally.max_wall, wall)
    outcome = "ok" if rc == 0 else "diagnostics"
    if isinstance(rc, str):
        tally.tracebacks += 1
        outcome = rc
    elif "error[E9999]" in stderr or '"code": "E9999"' in stderr:
        tally.internal_errors += 1
        outcome = f"internal error:\n{stderr[-3000:]}"
    elif rc not in (0, 1):
        tally.exit_statuses += 1
        outcome = f"exit status {rc}:\n{stderr[-2000:]}"
    else:
        bad = [p for p in _diagnostic_positions(stderr) if not position_ok(*p, str(path), text)]
        if bad:
            tally.bad_positions += 1
            outcome = f"diagnostic outside the input: {bad[0]}\n{stderr[-2000:]}"
    if elapsed > HANG_S:
        tally.hangs += 1
        outcome = f"hang: {elapsed:.2f} s CPU"
    if outcome == "ok" and construct is not None:
        outcome = _construct(path.parent / "x.py", stdout, construct, tally)
    if outcome not in ("ok", "diagnostics") and len(tally.failures) < 20:
        tally.failures.append(f"archdsl {' '.join(argv)}\n{outcome}\n--- input ---\n{text[:2000]}")
    return outcome


def _timed_command(argv: list[str]) -> tuple[int | str, str, str, float, float]:
    """(exit status, or the traceback of an exception escaping main; stdout; stderr; CPU s; wall s)."""
    out, err = io.StringIO(), io.StringIO()
    start, start_cpu = time.perf_counter(), time.process_time()
    rc: int | str
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _tracebacks_shown():
        try:
            rc = cli_main(argv)
        except SystemExit as exc:  # argparse refusing the arguments
            rc = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # what the fuzzer is looking for
            rc = "traceback: " + traceback.format_exc(limit=-6)
    return rc, out.getvalue(), err.getvalue(), time.process_time() - start_cpu, time.perf_counter() - start


@contextlib.contextmanager
def _tracebacks_shown() -> Iterator[None]:
    """ARCHDSL_DEBUG=1 while a command runs: an internal error's report then holds its traceback."""
    with mock.patch.dict(os.environ, {"ARCHDSL_DEBUG": "1"}):
        yield


_WROTE = re.compile(r"^wrote .*: class (\w+) \(network ", re.MULTILINE)


def _construct(module_file: Path, stdout: str, construct: Construct, tally: Tally) -> str:
    found = _WROTE.search(stdout)
    if found is None or not module_file.exists():
        tally.not_constructed += 1
        return f"compile exited 0 but wrote no module:\n{stdout[-500:]}"
    try:
        construct(module_file.read_text(encoding="utf-8"), found.group(1))
    except Exception:
        tally.not_constructed += 1
        return "the generated module does not construct or run: " + traceback.format_exc(limit=-4)
    tally.modules_built += 1
    return "ok"


_HEADER_SHAPE = re.compile(r"^# (Input|Output) .*: N x ([0-9x]+)$", re.MULTILINE)


def build_on_meta(source: str, class_name: str) -> None:
    """Execute a generated file, construct its network class on the `meta` device (every submodule
    built, names resolved, arguments accepted, no weights allocated) and run it on meta inputs of
    the shapes its header states: the outputs must have the shapes the analysis gave."""
    import torch

    shapes: dict[str, list[tuple[int, ...]]] = {"Input": [], "Output": []}
    for kind, dims in _HEADER_SHAPE.findall(source):
        shapes[kind].append(tuple(int(d) for d in dims.split("x")))
    namespace: dict[str, object] = {"__name__": "archdsl_fuzz_generated"}
    exec(compile(source, "<generated>", "exec"), namespace)
    network = namespace[class_name]
    assert isinstance(network, type) and issubclass(network, torch.nn.Module)
    with torch.device("meta"):
        module = network()
        result = module(*(torch.empty(2, *shape) for shape in shapes["Input"]))
    outputs = list(result.values()) if isinstance(result, dict) else list(result) \
        if isinstance(result, tuple | list) else [result]
    got = [tuple(t.shape) for t in outputs]
    want = [(2, *shape) for shape in shapes["Output"]]
    assert got == want, f"the module computes shapes {got}; the analysis says {want}"


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
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

_ordinary_numbers = st.one_of(
    st.integers(-2, 70),
    st.sampled_from(["0", "1", "2", "3", "7", "64", "1_000", "300M", "4.1G", "10**9", "2**70", "1e-3", "0.5",
                     "-1", "1.5"]),
)
# One number in 40 at the edges: a spec draws a dozen numbers, and an out-of-range literal ends it
# in the parser, before anything else is exercised.
numbers = st.integers(0, 39).flatmap(lambda k: st.sampled_from(EDGE_NUMBERS) if k == 0 else _ordinary_numbers
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
REPLACEMENTS = ["0", "-1", "1", "10**12", "2**70", "99999999999", "0.5", "3.7", "1e-9", "1e300", "-0.0", *EDGE_NUMBERS]


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

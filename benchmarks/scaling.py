"""How the compiler scales with the size of a network: 10² … 10⁵ layers, three shapes of graph.

    python benchmarks/scaling.py [--sizes 100 1000 10000 100000] [--shapes chain residual wide]

Graphs (spec text generated here, with every resource limit raised through `limits=` / `--max-…`):
- chain:    n convolutions in a row, `image -> repeat n: conv(16, 3)`; and `chain-unrolled`, the same
            written as n statements, so that the parser's share grows with n too;
- residual: n/4 residual blocks `in + (in -> conv -> relu -> conv)`, by `repeat`; and
            `residual-unrolled`, one statement per block;
- wide:     n/2 parallel branches `image -> conv(4, 1) -> relu` merged by one concat (no repeat form).
The unrolled twins stop at --unrolled-max (default 10⁴) unless raised: parsing is ~0.4 ms a
statement. A stage whose time, extrapolated from the two sizes before (t ∝ n^k, k ≥ 1), would pass
--budget seconds is skipped at that size and marked `> budget`, with the CLI command that needs it.

Per size, in a fresh process (after a warm-up on a 10-layer graph of the same shape): the median
time of each stage through the public API — parse (`load_string`), elaborate (`Spec.network`),
analyze (`Network.analyze`: every pass and the report), json (the report's JSON text), compile
(`compile_source`), dot (`Network.diagram("dot")`) — and, from one run under tracemalloc, the peak
memory the stages allocate and the bytes per layer the elaborated network keeps. Then whole
processes of the CLI on the same file: `analyze --json -o`, `compile -o`, `diagram -o FILE.dot`
(wall time, peak RSS, output size), next to `python -c "import torch"` timed in the same run.
Last row of each table: the exponent of a least-squares fit t ∝ n^k over sizes ≥ --fit-from.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    CLI,
    checked,
    fit_exponent,
    header,
    invocation,
    mb,
    median,
    ms,
    run_process,
    table,
)

# Limits raised far past any size measured here (each is a `--max-…` flag and a `Limits` field).
RAISED_LIMITS = {
    "max_nodes": 10**7, "max_repeat": 10**7, "max_steps": 10**8, "max_file_chars": 10**9,
    "max_line_chars": 10**9, "max_list_len": 10**8,
}
STAGES = ("parse", "parse (cached)", "elaborate", "analyze", "json", "compile", "dot")
FIRST_RUN = "analyze --json, first run"
CLI_STAGES = (FIRST_RUN, "analyze --json", "compile", "diagram .dot")
CLI_NEEDS = {FIRST_RUN: "json", "analyze --json": "json", "compile": "compile", "diagram .dot": "dot"}
OVER = "> budget"


def _chain(n: int) -> str:
    return f"network chain {{\n    input image: 16x8x8\n    image -> repeat {n} {{ conv(16, 3) }} -> output y\n}}\n"


def _chain_unrolled(n: int) -> str:
    body = "".join("    x = x -> conv(16, 3)\n" for _ in range(n))
    return f"network chain {{\n    input image: 16x8x8\n    x = image\n{body}    x -> output y\n}}\n"


_RESIDUAL_BLOCK = "block residual(c) {\n    in + (in -> conv(c, 3) -> relu -> conv(c, 3))\n}\n"


def _residual(n: int) -> str:
    return (f"{_RESIDUAL_BLOCK}network residual_stack {{\n    input image: 16x8x8\n"
            f"    image -> repeat {max(1, n // 4)} {{ residual(16) }} -> output y\n}}\n")


def _residual_unrolled(n: int) -> str:
    body = "".join("    x = x + (x -> conv(16, 3) -> relu -> conv(16, 3))\n" for _ in range(max(1, n // 4)))
    return f"network residual_stack {{\n    input image: 16x8x8\n    x = image\n{body}    x -> output y\n}}\n"


def _wide(n: int) -> str:
    k = max(1, n // 2)
    body = "".join(f"    b{i} = image -> conv(4, 1) -> relu\n" for i in range(k))
    merged = ", ".join(f"b{i}" for i in range(k))
    return f"network wide {{\n    input image: 16x8x8\n{body}    concat({merged}) -> output y\n}}\n"


@dataclass(frozen=True)
class GraphShape:
    name: str
    text: Callable[[int], str]  # spec text of about n layers
    capped: bool  # the unrolled twin of a repeat form: sizes up to --unrolled-max only


SHAPES = [
    GraphShape("chain", _chain, False),
    GraphShape("chain-unrolled", _chain_unrolled, True),
    GraphShape("residual", _residual, False),
    GraphShape("residual-unrolled", _residual_unrolled, True),
    GraphShape("wide", _wide, False),
]


def _shape(name: str) -> GraphShape:
    return next(s for s in SHAPES if s.name == name)


# ---------------------------------------------------------------------------------------------
# One (shape, size) in a fresh process: `--worker SHAPE N FILE REPEAT MEMORY`


def _pipeline(path: Path, limits: Any, clock: Callable[[str], None], skip: frozenset[str]) -> dict[str, Any]:
    """Every stage once (but those in `skip`), calling `clock(stage)` after each; returns what they
    produced. The first load parses (the parse cache has no entry for this text: see
    `_fresh_parse_cache`), the second finds the text in the cache, as every later run of the CLI on
    an unchanged file does."""
    import archdsl.api as api

    api.load(path, limits=limits)
    clock("parse")
    spec = api.load(path, limits=limits)
    clock("parse (cached)")
    net = spec.network()
    clock("elaborate")
    report = net.analyze()
    clock("analyze")
    out = {"net": net, "layers": len(report.layers), "params": report.params}
    if "json" not in skip:
        out["json"] = len(report.model_dump_json())
        clock("json")
    if "compile" not in skip:
        out["source"] = len(api.compile_source(net))
        clock("compile")
    if "dot" not in skip:
        out["dot"] = len(net.diagram("dot"))
        clock("dot")
    return out


@contextlib.contextmanager
def _fresh_parse_cache() -> Iterator[None]:
    """An empty parse cache (archdsl keeps parsed files under $XDG_CACHE_HOME/archdsl)."""
    with tempfile.TemporaryDirectory(prefix="archdsl-scaling-cache-") as tmp, \
            mock.patch.dict(os.environ, {"XDG_CACHE_HOME": tmp}):
        yield


def worker(shape: GraphShape, n: int, path: Path, repeat: int, memory: bool, skip: frozenset[str]) -> dict[str, Any]:
    import archdsl.api as api
    from archdsl.limits import Limits

    limits = Limits(**RAISED_LIMITS)
    small = path.with_name(f"warmup_{path.name}")
    small.write_text(shape.text(10), encoding="utf-8")
    with _fresh_parse_cache():
        _pipeline(small, limits, lambda stage: None, frozenset())  # warm-up: lazy imports, grammar tables
    times: dict[str, list[float]] = {s: [] for s in STAGES if s not in skip}
    result: dict[str, Any] = {}
    for _ in range(repeat):
        gc.collect()
        last = time.perf_counter()

        def clock(stage: str) -> None:
            nonlocal last
            now = time.perf_counter()
            times[stage].append(now - last)
            last = now

        with _fresh_parse_cache():
            result = _pipeline(path, limits, clock, skip)
        del result["net"]
    out: dict[str, Any] = {"layers": result["layers"], "params": result["params"], "chars": path.stat().st_size,
                           "times": {s: median(ts) for s, ts in times.items()}}
    if memory:
        gc.collect()
        peaks: dict[str, int] = {}
        kept: dict[str, int] = {}
        with _fresh_parse_cache():
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]

            def traced(stage: str) -> None:
                current, peak = tracemalloc.get_traced_memory()
                peaks[stage] = peak - before
                kept[stage] = current - before
                tracemalloc.reset_peak()

            traced_result = _pipeline(path, limits, traced, skip)
            tracemalloc.stop()
        del traced_result["net"]
        out["peak_bytes"] = peaks
        out["kept_bytes"] = kept
    api.load(path, limits=limits)  # leaves the parse in the caller's cache, for the CLI runs
    return out


def _worker_command(shape: GraphShape, n: int, path: Path, repeat: int, memory: bool,
                    skip: frozenset[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", shape.name, str(n), str(path), str(repeat),
            "1" if memory else "0", ",".join(sorted(skip))]


def projected_over_budget(rows: list[dict[str, Any]], n: int, budget: float) -> frozenset[str]:
    """Stages whose time at `n`, extrapolated from the last two sizes measured (t ∝ n^k, k at least
    1), would exceed `budget` seconds; a stage skipped at a smaller size stays skipped."""
    skip = set()
    for stage in STAGES:
        points = [(r["layers"], r["times"].get(stage)) for r in rows]
        if any(t is None for _, t in points):
            skip.add(stage)
            continue
        if not points:
            continue
        (n1, t1), (n2, t2) = points[-2] if len(points) > 1 else points[-1], points[-1]
        k = max(1.0, math.log(t2 / t1) / math.log(n2 / n1)) if n2 > n1 and t1 > 0 and t2 > 0 else 1.0
        if t2 * (n / n2) ** k > budget:
            skip.add(stage)
    return frozenset(skip) - {"parse", "parse (cached)", "elaborate", "analyze"}  # every other stage needs these


def _limit_flags() -> list[str]:
    return [f for k, v in RAISED_LIMITS.items() for f in (f"--{k.replace('_', '-')}", str(v))]


def cli_runs(spec: Path, tmp: Path, cache: Path, skip: frozenset[str]) -> dict[str, tuple[float, int, int]]:
    """(wall seconds, peak RSS bytes, output bytes) of each CLI command on the generated file: the
    first analyze with an empty parse cache (a new or edited file), the rest with `cache`, which
    holds this file's parse (every later run on an unchanged file)."""
    report, source, dot = tmp / "report.json", tmp / "generated.py", tmp / "graph.dot"
    outputs = {FIRST_RUN: report, "analyze --json": report, "compile": source, "diagram .dot": dot}
    commands = {
        FIRST_RUN: [*CLI, "analyze", str(spec), "--json", "-o", str(outputs[FIRST_RUN])],
        "analyze --json": [*CLI, "analyze", str(spec), "--json", "-o", str(outputs["analyze --json"])],
        "compile": [*CLI, "compile", str(spec), "-o", str(outputs["compile"])],
        "diagram .dot": [*CLI, "diagram", str(spec), "-o", str(outputs["diagram .dot"])],
    }
    result = {}
    for stage, cmd in commands.items():
        if CLI_NEEDS[stage] in skip:
            continue
        with contextlib.ExitStack() as stack:
            empty = stack.enter_context(tempfile.TemporaryDirectory(prefix="archdsl-scaling-cache-"))
            env = os.environ | {"XDG_CACHE_HOME": empty if stage == FIRST_RUN else str(cache)}
            run = checked(run_process([*cmd, *_limit_flags()], env), cmd)
        result[stage] = (run.wall_s, run.peak_rss_bytes, outputs[stage].stat().st_size)
        if stage == "analyze --json":
            json.loads(outputs[stage].read_text(encoding="utf-8"))  # it must be whole, valid JSON
    return result


# ---------------------------------------------------------------------------------------------


def _total(r: dict[str, Any]) -> float | None:
    """A new file to every output (the cached parse is no part of it); None when a stage was skipped."""
    if any(s not in r["times"] for s in STAGES):
        return None
    return float(sum(t for s, t in r["times"].items() if s != "parse (cached)"))


def _fit(fitted: list[dict[str, Any]], value: Callable[[dict[str, Any]], float | None]) -> str:
    points = [(r["layers"], v) for r in fitted if (v := value(r)) is not None]
    k = fit_exponent([n for n, _ in points], [v for _, v in points])
    return "—" if math.isnan(k) else f"n^{k:.2f}"


def _cell(x: float | None, fmt: Callable[[float], str] = ms) -> str:
    return OVER if x is None else fmt(x)


def _stage_time(stage: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["times"].get(stage)


def _cli_figure(stage: str, i: int) -> Callable[[dict[str, Any]], float | None]:  # i: 0 wall, 1 peak RSS, 2 bytes
    return lambda r: r["cli"][stage][i] if stage in r["cli"] else None


def _in_process_table(rows: list[dict[str, Any]], fitted: list[dict[str, Any]], fit_from: int) -> str:
    memory = "peak_bytes" in rows[0]
    out = []
    for r in rows:
        row = [f"{r['layers']:,}", f"{r['chars']:,}", *(_cell(r["times"].get(s)) for s in STAGES), _cell(_total(r))]
        if memory:
            row += [mb(max(r["peak_bytes"].values())), f"{r['kept_bytes']['elaborate'] / r['layers']:,.0f} B/layer",
                    f"{r['kept_bytes'][max(r['kept_bytes'], key=STAGES.index)] / r['layers']:,.0f} B/layer"]
        out.append(row)
    exponents = ["exponent", f"(≥ {fit_from:,})", *(_fit(fitted, _stage_time(s)) for s in STAGES),
                 _fit(fitted, _total)]
    headers = ["layers", "spec chars", *STAGES, "total"]
    if memory:
        exponents += [_fit(fitted, lambda r: max(r["peak_bytes"].values())), "", ""]
        headers += ["peak alloc", "kept after elaborate", "kept after all"]
    return table(headers, [*out, exponents])


def _whole_process_table(rows: list[dict[str, Any]], fitted: list[dict[str, Any]], torch_s: float) -> str:
    out = []
    for r in rows:
        per_command = (x for s in CLI_STAGES for x in (_cell(_cli_figure(s, 0)(r)), _cell(_cli_figure(s, 1)(r), mb)))
        out.append([f"{r['layers']:,}", *per_command, _cell(_cli_figure("analyze --json", 2)(r), mb),
                    _cell(_cli_figure("analyze --json", 0)(r), lambda t: f"{t / torch_s:.2f}×")])
    out.append(["exponent", *(x for s in CLI_STAGES for x in (_fit(fitted, _cli_figure(s, 0)),
                                                              _fit(fitted, _cli_figure(s, 1)))),
                _fit(fitted, _cli_figure("analyze --json", 2)), ""])
    headers = ["layers", *(x for s in CLI_STAGES for x in (s, "peak RSS")), "JSON size", "÷ import torch"]
    return table(headers, out)


def render(shape: GraphShape, rows: list[dict[str, Any]], fit_from: int, torch_s: float) -> str:
    fitted = [r for r in rows if r["layers"] >= fit_from]
    return (f"\n## {shape.name}: in process (medians; memory from one tracemalloc run)\n"
            + _in_process_table(rows, fitted, fit_from)
            + f"\n\n## {shape.name}: whole process (CLI, limits raised by flags)\n"
            + _whole_process_table(rows, fitted, torch_s))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000], metavar="N")
    parser.add_argument("--shapes", nargs="+", default=[s.name for s in SHAPES], choices=[s.name for s in SHAPES])
    parser.add_argument("--unrolled-max", type=int, default=10_000, help="largest n for unrolled text (default 10⁴)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size below 10⁵ (default 3)")
    parser.add_argument("--repeat-large", type=int, default=1, help="timed runs per size from 10⁵ on (default 1)")
    parser.add_argument("--fit-from", type=int, default=1_000, help="fit the exponent over sizes ≥ this (default 10³)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--torch-runs", type=int, default=3, help="runs of `import torch`, the yardstick (default 3)")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="skip a stage projected to take longer than this, in seconds (default 120)")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, n, path, repeat, memory, skip = args.worker
        print(json.dumps(worker(_shape(name), int(n), Path(path), int(repeat), memory == "1",
                                frozenset(skip.split(",")) - {""})))
        return 0

    print(header("scaling: 10² … 10⁵ layers", invocation("scaling.py", argv)))
    import_torch = [sys.executable, "-c", "import torch"]
    torch_s = median([checked(run_process(import_torch), import_torch).wall_s for _ in range(args.torch_runs)])
    print(f"python -c \"import torch\" in this run: {ms(torch_s)} (median of {args.torch_runs})", flush=True)
    with tempfile.TemporaryDirectory(prefix="archdsl-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "cache"
        env = os.environ | {"XDG_CACHE_HOME": str(cache)}
        for shape in (_shape(s) for s in args.shapes):
            rows: list[dict[str, Any]] = []
            for n in sorted(args.sizes):
                if shape.capped and n > args.unrolled_max:
                    continue
                spec = tmp / f"{shape.name.replace('-', '_')}_{n}.arch"
                spec.write_text(shape.text(n), encoding="utf-8")
                repeat = args.repeat_large if n >= 100_000 else args.repeat
                skip = projected_over_budget(rows, n, args.budget)
                cmd = _worker_command(shape, n, spec, repeat, not args.no_memory, skip)
                row = json.loads(checked(run_process(cmd, env), cmd).stdout)
                row["cli"] = cli_runs(spec, tmp, cache, skip)
                rows.append(row)
                print(f"{shape.name} n={n:,}: measured", file=sys.stderr, flush=True)
            if rows:
                print(render(shape, rows, args.fit_from, torch_s), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

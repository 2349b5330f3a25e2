"""Nightly fuzz run: `python benchmarks/fuzz.py --cases 20000 [--seed S] [--commands check,verify] [--progress N]`.

Splits the cases between grammar-generated specs (hypothesis) and mutations of every spec in
specs/ (plus truncations), writes each to a file and drives the command line with it as a user
would: every case through all five commands by default — `check`, `analyze --json`,
`compile -o x.py` (and the generated module constructed and run on the meta device, its output
shapes compared with the analysis), `diagram -o x.dot`,
`verify` — every 7th mutant with `--set PARAM=` a number at the edge of the float range. Prints the
counts: cases, commands, successes, diagnostics, tracebacks, internal errors (E9999), other exit
statuses, hangs (> 2 s CPU per command), diagnostics outside the input, modules built and modules
that do not construct, and the slowest command. Exit status 1 when any failure was found. With
`--progress N` it also prints the counts every N cases and each failure as soon as it is found, so a
run stopped early still says how far it got.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commands", default="check,analyze,compile,diagram,verify",
                        help="comma-separated commands each case runs (default: all five)")
    parser.add_argument("--progress", type=int, default=0, metavar="N",
                        help="print the counts every N cases, and each failure when found (default: at the end only)")
    args = parser.parse_args()
    os.environ.pop("ARCHDSL_NO_CACHE", None)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="archdsl-fuzz-cache-")

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from tests.fuzzing import (
        COMMANDS,
        Tally,
        build_on_meta,
        edge_setting,
        mutations,
        run_case,
        spec_strategy,
        torch_available,
        truncations,
        zoo_texts,
    )

    commands = tuple(c for c in args.commands.split(",") if c)
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown command(s) {', '.join(sorted(unknown))}; choose from {', '.join(COMMANDS)}")
    construct = build_on_meta if torch_available() else None
    start = time.perf_counter()
    tally = Tally()
    generated = args.cases // 2
    specs = len(zoo_texts())
    truncated = ["resnet.arch", "mobilenet_v2.arch", "common.arch", "shufflenet_v2.arch"]
    positions = max(1, args.cases // 20 // len(truncated))
    per_spec = max(1, (args.cases - generated - positions * len(truncated)) // specs)

    def run(text: str, networks: int = 2, extra: tuple[str, ...] = ()) -> None:
        known = len(tally.failures)
        run_case(text, tally, networks=networks, commands=commands, extra=extra, construct=construct)
        if args.progress:
            for failure in tally.failures[known:]:
                print(f"\nfailure in case {tally.cases}:\n{failure[:3000]}\n", flush=True)
            if tally.cases % args.progress == 0:
                print(f"[{time.perf_counter() - start:.0f} s] {tally.summary()}", flush=True)

    @hseed(args.seed)
    @settings(max_examples=generated, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(spec_strategy())
    def case(text: str) -> None:
        run(text)

    case()
    print(f"generated: {tally.summary()}", flush=True)
    for k, text in enumerate(mutations(per_spec, seed=args.seed)):
        run(text, networks=1, extra=tuple(edge_setting(text, k)))
    for text in truncations(truncated, positions):
        run(text, networks=1)
    print(f"total:     {tally.summary()}")
    print(f"internal errors (E9999): {tally.internal_errors}")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    for failure in tally.failures[:5]:
        print("\n" + failure[:3000])
    return 0 if tally.clean() else 1


if __name__ == "__main__":
    sys.exit(main())

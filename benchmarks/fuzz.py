"""Nightly fuzz run: `python benchmarks/fuzz.py --cases 20000 [--seed S]`.

Splits the cases between grammar-generated specs (hypothesis) and mutations of every spec in
specs/ (plus truncations), runs each through load → check → elaborate → analyze → PyTorch codegen,
and prints the counts: cases, successes, diagnostics, tracebacks, hangs (> 2 s), diagnostics
outside the input, and the slowest case. Exit status 1 when any failure was found.
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
    args = parser.parse_args()
    os.environ.pop("ARCHDSL_NO_CACHE", None)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="archdsl-fuzz-")

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from tests.fuzzing import Tally, mutations, run_case, spec_strategy, truncations, zoo_texts

    start = time.perf_counter()
    tally = Tally()
    generated = args.cases // 2
    specs = len(zoo_texts())
    truncated = ["resnet.arch", "mobilenet_v2.arch", "common.arch", "shufflenet_v2.arch"]
    positions = max(1, args.cases // 20 // len(truncated))
    per_spec = max(1, (args.cases - generated - positions * len(truncated)) // specs)

    @hseed(args.seed)
    @settings(max_examples=generated, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(spec_strategy())
    def case(text: str) -> None:
        run_case(text, tally)

    case()
    print(f"generated: {tally.summary()}", flush=True)
    for text in mutations(per_spec, seed=args.seed):
        run_case(text, tally, networks=1)
    for text in truncations(truncated, positions):
        run_case(text, tally, networks=1)
    print(f"total:     {tally.summary()}")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    for failure in tally.failures[:5]:
        print("\n" + failure[:3000])
    return 0 if tally.clean() else 1


if __name__ == "__main__":
    sys.exit(main())

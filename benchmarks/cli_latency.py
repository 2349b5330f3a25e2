"""Whole-process latency of `archdsl analyze NAME --json` against `python -c "import torch"`.

    python benchmarks/cli_latency.py [--repeat 10] [--networks resnet50 …] [--baseline DIR]

Each command runs as a fresh process, interleaved round by round after a warm-up round (which also
fills the OS file cache and the compiled-grammar cache, as any second run of the CLI finds them).
Prints the median, minimum and maximum wall time, CPU time and peak RSS, and the median of the
round-by-round ratios to `import torch`; then, from one `python -X importtime` run, the top-level
packages whose imports cost the CLI the most (where the fixed cost of a run goes).
The JSON each run prints must parse and carry the parameters and MACs the in-process API reports.
With ``--baseline DIR`` (another checkout of archdsl, with the ``archdsl/compiler`` and
``archdsl/specs`` links ``tools/typecheck.py`` makes) each network is also analyzed by that
checkout's CLI, interleaved with this one's, so that a change is measured before and after in one
run; both must print the same JSON, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    CLI,
    Disagreement,
    ProcessRun,
    checked,
    header,
    invocation,
    mb,
    median,
    ms,
    paired_ratio,
    ratio,
    run_process,
    table,
    whole_process,
)

IMPORT_TORCH = "import torch"


def import_costs(cmd: Sequence[str], top: int) -> list[tuple[str, float]]:
    """(top-level package, seconds of its own import work) for the `top` costliest, from -X importtime."""
    run = checked(run_process([cmd[0], "-X", "importtime", *cmd[1:]]), cmd)
    own: dict[str, float] = defaultdict(float)
    for line in run.stderr.decode(errors="replace").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            own[m.group(2).split(".")[0]] += int(m.group(1)) / 1e6
    return sorted(own.items(), key=lambda kv: -kv[1])[:top]


def baseline_cli(checkout: Path) -> list[str]:
    """The `archdsl` command of another checkout: its package first on the path."""
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r}); "
            "from archdsl.cli import run; sys.argv[0] = 'archdsl'; run()"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (default 1)")
    parser.add_argument("--networks", nargs="+", default=["resnet50"], metavar="NET",
                        help="bundled networks to analyze (default resnet50)")
    parser.add_argument("--imports", type=int, default=10, help="packages listed from -X importtime (default 10)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another archdsl checkout whose CLI runs alongside, for a before/after comparison")
    args = parser.parse_args(argv)
    print(header("CLI latency: analyze --json vs import torch",
                 invocation("cli_latency.py", argv), ["torch"]))

    import archdsl.api as api

    commands = {f"archdsl analyze {name} --json": [*CLI, "analyze", name, "--json"] for name in args.networks}
    if args.baseline:
        print(f"baseline {args.baseline.resolve()}")
        for name in args.networks:
            commands[f"baseline: analyze {name} --json"] = [*baseline_cli(args.baseline.resolve()), "analyze", name,
                                                           "--json"]
    commands[f'python -c "{IMPORT_TORCH}"'] = [sys.executable, "-c", IMPORT_TORCH]
    commands['python -c "pass"'] = [sys.executable, "-c", "pass"]
    runs = whole_process(commands, args.repeat, args.warmup)

    for name in args.networks:
        report = api.analyze(name)
        for run in runs[f"archdsl analyze {name} --json"]:
            data = json.loads(run.stdout)
            if (data["params"], data["macs"]) != (report.params, report.macs):
                raise Disagreement(f"the CLI reports {data['params']:,} params, {data['macs']:,} MACs for {name}; "
                                   f"the API {report.params:,}, {report.macs:,}")
        for run in runs.get(f"baseline: analyze {name} --json", []):
            if run.stdout != runs[f"archdsl analyze {name} --json"][0].stdout:
                raise Disagreement(f"the baseline's JSON for {name} differs from this checkout's")

    torch_walls = [r.wall_s for r in runs[f'python -c "{IMPORT_TORCH}"']]

    def row(label: str, rs: list[ProcessRun]) -> list[str]:
        walls = [r.wall_s for r in rs]
        return [label, ms(median(walls)), f"{ms(min(walls))} – {ms(max(walls))}", ms(median([r.cpu_s for r in rs])),
                mb(max(r.peak_rss_bytes for r in rs)), ratio(paired_ratio(walls, torch_walls))]

    print(f"\nmedians of {args.repeat} rounds after {args.warmup} warm-up round(s), commands interleaved\n")
    print(table(["command", "wall (median)", "min – max", "cpu", "peak RSS", "÷ import torch"],
                [row(label, rs) for label, rs in runs.items()]))
    print("\nthe JSON of every `analyze --json` run parsed and matched the API's params and MACs"
          + ("; the baseline's was the same, byte for byte" if args.baseline else ""))

    for name in args.networks:
        costs = import_costs([*CLI, "analyze", name, "--json"], args.imports)
        print(f"\nimports of `archdsl analyze {name} --json` (one -X importtime run; own time per top-level package):")
        print(table(["package", "import time"], [[pkg, ms(t)] for pkg, t in costs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

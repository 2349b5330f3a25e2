"""Where each side of the in-process comparison spends its time: archdsl (find and load the spec,
elaborate, run the passes and build the report) against FlopCounterMode on the meta device (build
the canonical model on meta, count one forward).

    python benchmarks/time_split.py [--networks resnet50 mobilenet_v2 efficientnet_b7] [--repeat 7]

Each stage is timed in every round, the two sides alternating (A B A B …) after --warmup rounds;
the table shows the median of each stage and of each side's total, and the total's share; the
counts must agree (parameters exactly, MACs exactly: FlopCounterMode's FLOPs ÷ 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Disagreement, header, invocation, median, ms, table

Stages = dict[str, float]


def _archdsl(name: str) -> tuple[Stages, tuple[int, int]]:
    import archdsl.api as api

    clock = time.perf_counter()
    stages: Stages = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage], clock = now - clock, now

    spec, _ = api.find(name)
    lap("find and load the spec")
    net = spec.network(name)
    lap("elaborate")
    report = net.analyze()
    lap("passes and report")
    return stages, (report.params, report.macs)


def _meta(build: Callable[[], Any], shape: tuple[int, ...]) -> tuple[Stages, tuple[int, int]]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    clock = time.perf_counter()
    with torch.device("meta"):
        model = build().eval()
        x = torch.empty(1, *shape)
    built = time.perf_counter()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    counted = time.perf_counter()
    params = sum(p.numel() for p in model.parameters())
    return {"build the model (meta)": built - clock, "count one forward": counted - built}, \
        (params, counter.get_total_flops() // 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["resnet50", "mobilenet_v2", "efficientnet_b7"], metavar="NET",
                        help="networks with a canonical implementation in tests/canonical.py")
    parser.add_argument("--repeat", type=int, default=7, help="counted rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted rounds first (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    print(header("in process: where the time goes, archdsl vs FlopCounterMode (meta)",
                 invocation("time_split.py", argv), ["torch", "torchvision", "timm"]))
    import torch

    import archdsl.api as api
    from tests.canonical import CANONICAL

    torch.set_num_threads(args.threads)
    rows: list[list[str]] = []
    for name in args.networks:
        canonical = next(c for c in CANONICAL if c.network == name)
        shape = tuple(next(iter(api.find(name)[0].network(name).input_shapes.values())))
        ours: list[Stages] = []
        theirs: list[Stages] = []
        for round_ in range(args.warmup + args.repeat):
            a, counts_a = _archdsl(name)
            b, counts_b = _meta(canonical.build, shape)
            if counts_a != counts_b:
                raise Disagreement(f"{name}: archdsl counts {counts_a}, FlopCounterMode (meta) {counts_b}")
            if round_ >= args.warmup:
                ours.append(a)
                theirs.append(b)
        total_ours = median([sum(s.values()) for s in ours])
        total_theirs = median([sum(s.values()) for s in theirs])
        for side, runs, total in (("archdsl", ours, total_ours), ("FlopCounterMode (meta)", theirs, total_theirs)):
            for stage in runs[0]:
                t = median([s[stage] for s in runs])
                rows.append([name, side, stage, ms(t), f"{t / total:.0%}"])
            rows.append([name, side, "total", ms(total), f"{total / total_ours:.1f}× archdsl's"])
    print(f"\nmedians of {args.repeat} rounds after {args.warmup} warm-up round(s), the two sides alternating\n")
    print(table(["network", "tool", "stage", "median", "share"], rows, [False, False, False, True, True]))
    print("\nall counts agree (parameters exactly; MACs exactly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

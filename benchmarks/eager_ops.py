"""What the generated modules and the canonical ones run in eager mode, aten op by aten op.

    python benchmarks/eager_ops.py [--networks resnet50 …] [--batches 1 8] [--modes forward …]

The eager counterpart of compiled_graphs.py, and for the same reason: a stopwatch on a loaded machine
cannot tell a 2 % difference, but two modules that dispatch the same aten ops, in the same order, on
tensors of the same shapes, do the same work. For each network the generated module (`archdsl.build`)
and the canonical one (tests/canonical.py), with the same weights, are called as generated_modules.py
times them — forward in eval and inference mode, then forward+backward in train mode, the random
number generator seeded alike before each — and every aten op that reaches the dispatcher is recorded
with the shapes of its tensor arguments. The verdict per call:

- identical: the same sequence of ops and shapes;
- same ops: the same ops and shapes in another order or with the operands swapped (`a * b` against
  `b * a`);
- differs: the ops that only one side runs are listed, by op and shape, with their counts.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import header, invocation, table
from benchmarks.generated_modules import add_call_arguments, build_pair

# One dispatched op: its overload and the shapes of its tensor arguments, in argument order.
Op = tuple[str, tuple[tuple[int, ...], ...]]


def trace(model: Any, x: Any, mode: str) -> list[Op]:
    """The aten ops one call of `model` dispatches: forward in inference mode, or forward+backward."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: list[Op] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            ops.append((str(func), tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))))
            return func(*args, **(kwargs or {}))

    model.train(mode != "forward")
    torch.manual_seed(0)  # stochastic layers draw the same numbers on both sides
    if mode == "forward":
        with torch.inference_mode(), Recorder():
            model(x)
    else:
        model.zero_grad(set_to_none=True)
        with Recorder():
            y = model(x)
            (y[0] if isinstance(y, tuple | list) else y).sum().backward()
    return ops


@dataclass(frozen=True)
class Verdict:
    """How one call's ops compare: the verdict and, where they differ, what only each side runs."""

    ours: int
    theirs: int
    verdict: str
    only_ours: Counter[Op]
    only_theirs: Counter[Op]


def compare(ours: list[Op], theirs: list[Op]) -> Verdict:
    if ours == theirs:
        return Verdict(len(ours), len(theirs), "identical", Counter(), Counter())

    def unordered(ops: list[Op]) -> Counter[Op]:
        return Counter((name, tuple(sorted(shapes))) for name, shapes in ops)

    mine, yours = unordered(ours), unordered(theirs)
    if mine == yours:
        return Verdict(len(ours), len(theirs), "same ops", Counter(), Counter())
    return Verdict(len(ours), len(theirs), "differs", mine - yours, yours - mine)


def _listed(ops: Counter[Op]) -> str:
    return "; ".join(f"{n}× {name}{list(shapes)}" for (name, shapes), n in sorted(ops.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_call_arguments(parser)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    print(header("eager mode: generated modules vs canonical implementations, aten op by aten op",
                 invocation("eager_ops.py", argv), ["torch", "torchvision", "timm"]))
    print("per call: aten ops dispatched (archdsl / canonical) and whether they are the identical sequence of ops "
          "and shapes, the same ops in another order or with operands swapped (same ops), or not (differs: "
          "the ops only one side runs are listed below)\n", flush=True)
    rows: list[list[object]] = []
    notes: list[str] = []
    for network in args.networks:
        generated, reference, shape = build_pair(network, args.input)
        for batch in args.batches:
            x = torch.randn(batch, *shape)
            for mode in args.modes:
                v = compare(trace(generated, x, mode), trace(reference, x, mode))
                rows.append([network, batch, mode, f"{v.ours} / {v.theirs}", v.verdict])
                if v.verdict == "differs":
                    notes.append(f"{network}, batch {batch}, {mode}:\n  only archdsl: {_listed(v.only_ours) or '-'}"
                                 f"\n  only canonical: {_listed(v.only_theirs) or '-'}")
    print(table(["network", "batch", "mode", "aten ops", "verdict"], rows, right=[False, True, False, True, False]))
    if notes:
        print("\n" + "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

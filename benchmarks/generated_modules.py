"""Latency of the PyTorch modules archdsl generates against the canonical implementations.

    python benchmarks/generated_modules.py [--repeat 10] [--batches 1 8] [--modes …] [--no-compile | --compile-only]

For each network (resnet50, mobilenet_v2, efficientnet_b0): the generated module (`archdsl.build`)
and the canonical one (tests/canonical.py) with the same weights (the canonical model's random
weights copied across), checked to agree (parameters exactly, outputs to 1e-4); then, per batch
size, forward (eval, inference mode) and forward+backward (train mode, `out.sum().backward()`),
eager and `torch.compile(dynamic=False)`, timed interleaved round by round after warm-up rounds
(and, compiled, after the call that compiles, which is not timed; no timed round may recompile; compile
times are not compared: the two modules compile to the same kernels, see compiled_graphs.py, and the
second finds the first's in inductor's cache).
On CPU in fp32; with a CUDA GPU also on it in fp32, bf16 and fp32 channels_last. Ratio: archdsl's
time over the canonical's, the median of round-by-round ratios (1.00 = parity).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Disagreement, header, invocation, median, ms, paired_ratio, table

NETWORKS = ["resnet50", "mobilenet_v2", "efficientnet_b0"]
MODES = ("forward", "forward+backward")


@dataclass(frozen=True)
class Variant:
    device: str
    dtype: str  # "float32" | "bfloat16"
    channels_last: bool = False

    @property
    def label(self) -> str:
        return self.dtype + (" channels_last" if self.channels_last else "")


def variants() -> list[Variant]:
    import torch

    out = [Variant("cpu", "float32")]
    if torch.cuda.is_available():
        out += [Variant("cuda", "float32"), Variant("cuda", "bfloat16"), Variant("cuda", "float32", True)]
    return out


def _first_output(out: Any) -> Any:
    return next(iter(out.values())) if isinstance(out, dict) else out


def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that pick the calls compared (networks, batch sizes, modes, input shape): this
    script's, compiled_graphs.py's and eager_ops.py's alike."""
    parser.add_argument("--networks", nargs="+", default=NETWORKS, metavar="NET")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], metavar="N")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--input", help="input shape for every network, e.g. 3x64x64 (smoke runs)")


def build_pair(network: str, input: str | None) -> tuple[Any, Any, tuple[int, ...]]:
    """(generated, canonical, input shape per sample), with equal weights, checked to agree."""
    import torch

    import archdsl.api as api
    from tests.canonical import CANONICAL

    canonical = next(c for c in CANONICAL if c.network == network)
    torch.manual_seed(0)
    reference = canonical.build().eval()
    net = api.find(network)[0].network(network, input=input)
    (shape,) = net.input_shapes.values()
    generated = api.build(net).eval()
    ours_params = sum(p.numel() for p in generated.parameters())
    theirs_params = sum(p.numel() for p in reference.parameters())
    if ours_params != theirs_params:
        raise Disagreement(f"{network}: the generated module has {ours_params:,} parameters, the canonical "
                           f"{theirs_params:,}")
    load_weights: Callable[[Any, Any], str] | None
    try:
        from archdsl.compiler.backends.weights import load_weights
    except ImportError:  # moved: the comparison then stands on parameter counts and shapes alone
        load_weights = None
    x = torch.randn(2, *shape)
    with torch.no_grad():
        if load_weights is not None:
            load_weights(generated, reference)
        got, expected = _first_output(generated(x)), reference(x)
    if got.shape != expected.shape or (load_weights is not None and not torch.allclose(got, expected, atol=1e-4,
                                                                                         rtol=1e-4)):
        raise Disagreement(f"{network}: the generated module's output differs from the canonical one's")
    return generated, reference, shape


def _timed_calls(model: Any, x: Any, mode: str, sync: Callable[[], None]) -> Callable[[], None]:
    import torch

    if mode == "forward":
        def forward() -> None:
            with torch.inference_mode():
                model(x)
            sync()

        return forward

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        _first_output(model(x)).float().sum().backward()
        sync()

    return forward_backward


@dataclass
class Row:
    network: str
    variant: Variant
    batch: int
    mode: str
    compiled: bool
    ours: list[float]
    theirs: list[float]
    ours_graphs: int = 0  # compiled: the graphs Dynamo captured on the call that compiled (graph breaks add some)
    theirs_graphs: int = 0


def _graphs_compiled() -> int:
    """Graphs TorchDynamo has handed to a backend so far in this process (each compile and recompile adds one)."""
    import torch._dynamo.utils

    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def _graphs_compiled_by(call: Callable[[], None]) -> int:
    before = _graphs_compiled()
    call()
    return _graphs_compiled() - before


def _alternating(calls: dict[str, Callable[[], None]], repeat: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call: `warmup` uncounted rounds, then `repeat`, the order reversed every other round (A B, B A,
    …) so that neither always runs on the caches the other left."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + repeat):
        order = list(calls.items()) if round_ % 2 == 0 else list(calls.items())[::-1]
        for name, call in order:
            start = time.perf_counter()
            call()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def measure(network: str, generated: Any, reference: Any, shape: tuple[int, ...], variant: Variant,
            batches: Sequence[int], modes: Sequence[str], compiled: bool, repeat: int, warmup: int) -> list[Row]:
    import torch

    dtype = getattr(torch, variant.dtype)
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    sync = torch.cuda.synchronize if variant.device == "cuda" else (lambda: None)
    pair: dict[str, Any] = {}
    for name, module in (("ours", generated), ("theirs", reference)):
        moved = copy.deepcopy(module).to(device=variant.device, dtype=dtype, memory_format=memory_format)
        # The same backend (inductor) and mode (default) for both; static shapes, so that each batch size gets
        # its own graph as it would in deployment, not a dynamic one that one module might get and the other not.
        pair[name] = torch.compile(moved, dynamic=False) if compiled else moved
    rows = []
    for batch in batches:
        x = torch.randn(batch, *shape, device=variant.device, dtype=dtype).contiguous(memory_format=memory_format)
        for mode in modes:
            for module in pair.values():
                module.train(mode != "forward")
            calls = {name: _timed_calls(module, x, mode, sync) for name, module in pair.items()}
            # The first call compiles this (shape, mode), and in training the backward too; not timed.
            graphs = {name: _graphs_compiled_by(call) for name, call in calls.items()} if compiled else {}
            compiled_before = _graphs_compiled()
            times = _alternating(calls, repeat, warmup)
            if _graphs_compiled() != compiled_before:
                raise Disagreement(f"{network} batch {batch} {mode}: recompiled while timed (a guard that fails from "
                                   "call to call): the rounds timed compilation")
            rows.append(Row(network, variant, batch, mode, compiled, times["ours"], times["theirs"],
                            graphs.get("ours", 0), graphs.get("theirs", 0)))
            print(f"{network} {variant.device} {variant.label} batch {batch} {mode} "
                  f"{'compiled' if compiled else 'eager'}: measured", file=sys.stderr, flush=True)
    return rows


def render(rows: list[Row]) -> str:
    out = []
    for r in rows:
        spread = statistics.pstdev(r.ours) / median(r.ours) if len(r.ours) > 1 else float("nan")
        out.append([r.network, r.variant.device, r.variant.label, r.batch, r.mode,
                    "compile" if r.compiled else "eager", ms(median(r.theirs)), ms(median(r.ours)),
                    f"{paired_ratio(r.ours, r.theirs):.3f}",
                    _quartiles([a / b for a, b in zip(r.ours, r.theirs, strict=True)]),
                    "—" if spread != spread else f"{spread:.0%}",
                    f"{r.ours_graphs} / {r.theirs_graphs}" if r.compiled else ""])
    headers = ["network", "device", "dtype", "batch", "mode", "", "canonical", "archdsl", "ratio", "ratio IQR",
               "archdsl spread", "graphs"]
    return table(headers, out, right=[False, False, False, True, False, False, True, True, True, True, True, True])


def _quartiles(ratios: Sequence[float]) -> str:
    """The middle half of the round-by-round ratios: how far one run's ratio can be trusted."""
    if len(ratios) < 4:
        return "—"
    ordered = sorted(ratios)
    return f"{ordered[len(ordered) // 4]:.3f}–{ordered[(3 * len(ordered)) // 4]:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_call_arguments(parser)
    parser.add_argument("--repeat", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted rounds first (default 2)")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--no-compile", action="store_true", help="eager rows only")
    kinds.add_argument("--compile-only", action="store_true", help="torch.compile rows only")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(header("generated modules vs canonical implementations",
                 invocation("generated_modules.py", argv), ["torch", "torchvision", "timm"]))
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU rows only)"
    print(f"torch threads {torch.get_num_threads()}; CUDA GPU: {gpu}")
    print(f"medians of {args.repeat} rounds after {args.warmup} warm-up round(s), the two modules alternating; "
          "ratio = archdsl ÷ canonical (median of round-by-round ratios, and their interquartile range); spread = "
          "stdev ÷ median; graphs (compiled) = graphs Dynamo captured on the call that compiled, archdsl / canonical "
          "(1 = no graph break); checked: no recompilation while timed\n", flush=True)
    rows: list[Row] = []
    for network in args.networks:
        generated, reference, shape = build_pair(network, args.input)
        for variant in variants():
            for compiled in (False,) if args.no_compile else (True,) if args.compile_only else (False, True):
                rows += measure(network, generated, reference, shape, variant, args.batches, args.modes, compiled,
                                args.repeat, args.warmup)
    print(render(rows))
    print("\nevery generated module has the canonical parameter count and, with its weights, the same outputs (1e-4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

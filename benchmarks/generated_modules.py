"""Latency of the PyTorch modules archdsl generates against the canonical implementations.

    python benchmarks/generated_modules.py [--repeat 10] [--batches 1 8] [--no-compile]

For each network (resnet50, mobilenet_v2, efficientnet_b0): the generated module (`archdsl.build`)
and the canonical one (tests/canonical.py) with the same weights (the canonical model's random
weights copied across), checked to agree (parameters exactly, outputs to 1e-4); then, per batch
size, forward (eval, inference mode) and forward+backward (train mode, `out.sum().backward()`),
eager and `torch.compile(dynamic=False)`, timed interleaved round by round after warm-up rounds
(and, compiled, after the call that compiles; compile times are not compared: the two modules
compile to largely the same kernels, and the second finds the first's in inductor's cache).
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


def measure(network: str, generated: Any, reference: Any, shape: tuple[int, ...], variant: Variant,
            batches: Sequence[int], compiled: bool, repeat: int, warmup: int) -> list[Row]:
    import torch

    dtype = getattr(torch, variant.dtype)
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    sync = torch.cuda.synchronize if variant.device == "cuda" else (lambda: None)
    pair: dict[str, Any] = {}
    for name, module in (("ours", generated), ("theirs", reference)):
        moved = copy.deepcopy(module).to(device=variant.device, dtype=dtype, memory_format=memory_format)
        pair[name] = torch.compile(moved, dynamic=False) if compiled else moved
    rows = []
    for batch in batches:
        x = torch.randn(batch, *shape, device=variant.device, dtype=dtype).contiguous(memory_format=memory_format)
        for mode in MODES:
            for module in pair.values():
                module.train(mode != "forward")
            calls = {name: _timed_calls(module, x, mode, sync) for name, module in pair.items()}
            if compiled:  # the first call compiles this (shape, mode)
                for call in calls.values():
                    call()
            times: dict[str, list[float]] = {name: [] for name in calls}
            for round_ in range(warmup + repeat):
                order = list(calls.items()) if round_ % 2 == 0 else list(calls.items())[::-1]
                for name, call in order:
                    start = time.perf_counter()
                    call()
                    if round_ >= warmup:
                        times[name].append(time.perf_counter() - start)
            rows.append(Row(network, variant, batch, mode, compiled, times["ours"], times["theirs"]))
            print(f"{network} {variant.device} {variant.label} batch {batch} {mode} "
                  f"{'compiled' if compiled else 'eager'}: measured", file=sys.stderr, flush=True)
    return rows


def render(rows: list[Row]) -> str:
    out = []
    for r in rows:
        spread = statistics.pstdev(r.ours) / median(r.ours) if len(r.ours) > 1 else float("nan")
        out.append([r.network, r.variant.device, r.variant.label, r.batch, r.mode,
                    "compile" if r.compiled else "eager", ms(median(r.theirs)), ms(median(r.ours)),
                    f"{paired_ratio(r.ours, r.theirs):.3f}", "—" if spread != spread else f"{spread:.0%}"])
    headers = ["network", "device", "dtype", "batch", "mode", "", "canonical", "archdsl", "ratio", "archdsl spread"]
    return table(headers, out, right=[False, False, False, True, False, False, True, True, True, True])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=NETWORKS, metavar="NET")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], metavar="N")
    parser.add_argument("--repeat", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted rounds first (default 2)")
    parser.add_argument("--input", help="input shape for every network, e.g. 3x64x64 (smoke runs)")
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")
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
          "ratio = archdsl ÷ canonical (median of round-by-round ratios); spread = stdev ÷ median\n", flush=True)
    rows: list[Row] = []
    for network in args.networks:
        generated, reference, shape = build_pair(network, args.input)
        for variant in variants():
            for compiled in (False,) if args.no_compile else (False, True):
                rows += measure(network, generated, reference, shape, variant, args.batches, compiled,
                                args.repeat, args.warmup)
    print(render(rows))
    print("\nevery generated module has the canonical parameter count and, with its weights, the same outputs (1e-4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

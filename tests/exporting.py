"""The export paths a generated module must survive, shared by tests/test_export.py and the sweep
that prints the whole zoo's table:

    python -m tests.exporting [NETWORK ...] [--compile-backend inductor]

Each network runs at its reduced CPU input (tests/small_input.py), batch 2, in eval mode, with its
tensors set by `exercise` so that every layer shapes the outputs (see there):
- `torch.export.export(strict=True)`: the exported program's output against eager;
- `torch.onnx.export(dynamo=True)` → `onnx.checker.check_model(full_check=True)` → an onnxruntime
  CPU session: its outputs against eager (the figure reported is the largest absolute difference);
- `torch.compile(fullgraph=True)`, which raises at a graph break (the tests also ask
  `torch._dynamo.explain` for none): outputs against eager.
Output differences are judged relative to the largest eager output (see ONNX_TOLERANCE), or to
eager's own rounding where that is larger (see ROUNDING_FACTOR).

With the spec's own initialization and fresh batch-norm statistics (mean 0, variance 1) a network
hardly tests its export: efficientnet's eval outputs are ~1e-14 (its fan-out init leaves every
depthwise branch tiny and the BNs do not rescale), a zero-initialized residual branch
(cspdarknet53) or a head drawn at std 0.01 under a prior bias of -4.6 (RetinaNet) adds next to
nothing, and identity statistics would not show a mean swapped for a variance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# Tolerances relative to the largest eager output magnitude (PyTorch's default initialization makes
# a deep network's outputs anything from 1e-9 to 1e3, so a fixed absolute bound means nothing).
# onnxruntime's CPU kernels (MLAS) and Inductor's fused kernels sum in another order than ATen's.
ONNX_TOLERANCE = 1e-5
COMPILE_TOLERANCE = 1e-4
# A network whose every layer shapes the outputs (see `exercise`) also carries every layer's
# rounding to them: float32 eager itself is up to 6e-5 × the outputs' scale away from the same module
# run in float64 (efficientdet_d0 at 64×64; batch norm amplifies rounding as it amplifies gradients).
# An export path computes in float32 too, in another order: it may differ from eager by a few times
# eager's own distance from float64 (measured on efficientnet_b0, efficientdet_d0, retinanet, yolov3,
# mobilenet_v3_large: 1.1–2.2× for onnxruntime and Inductor), not more.
ROUNDING_FACTOR = 5.0


def assert_close(got: list[Any], want: list[Any], tolerance: float,
                 rounding: Callable[[], float] | None = None) -> None:
    """Every output within `tolerance` × the largest magnitude among the eager outputs, or within
    ROUNDING_FACTOR × `rounding()` (eager's distance from float64, `float32_rounding`; asked only
    when the first bound is exceeded) if that is larger."""
    import torch

    bound = tolerance * scale(want)
    if rounding is not None and max_abs_diff(got, want) > bound:
        bound = max(bound, ROUNDING_FACTOR * rounding())
    torch.testing.assert_close(got, want, atol=bound, rtol=0)


def float32_rounding(module: Any, xs: tuple[Any, ...], eager: list[Any]) -> float:
    """The largest distance of the eager (float32) outputs from the same module's in float64."""
    import torch

    try:
        with torch.no_grad():
            exact = flat(module.double()(*(x.double() for x in xs)))
    finally:
        module.float()  # float32 → float64 → float32 is exact: the module is as it was
    assert len(exact) == len(eager)
    return max(float((g.double() - e).abs().max()) for g, e in zip(eager, exact, strict=True))


def scale(outputs: list[Any]) -> float:
    return max(float(y.abs().max()) for y in outputs)


def prepared(file: str, name: str) -> tuple[Any, tuple[Any, ...], list[Any]]:
    """The generated module in eval mode with its tensors set by `exercise`, a batch-2 input at the
    reduced size, and the eager outputs (flattened in the order the module returns them)."""
    import torch

    from archdsl.compiler.backends.torch_codegen import build_module

    from .small_input import buildable, small_input

    net = buildable(file, name, small_input(file, name))
    torch.manual_seed(0)
    module = build_module(net).eval()
    xs = tuple(torch.randn(2, *s) for s in net.input_shapes.values())
    exercise(module, xs)
    with torch.no_grad():
        eager = flat(module(*xs))
    return module, xs, eager


NORMS = ("BatchNorm1d", "BatchNorm2d", "FrozenBatchNorm2d")
CALIBRATION_BATCH = 8


def exercise(module: Any, xs: tuple[Any, ...], seed: int = 0) -> None:
    """Set the module's tensors so that every layer shapes its eval-mode outputs:
    - every weight of two or more dimensions N(0, 1/fan_in) (the parity tests' draw) and the bias of
      its layer N(0, 0.1²), so no branch starts at zero or at std 0.01 beside a large constant;
    - batch norms' scale U(0.5, 1.5) and shift N(0, 0.1²), and their running statistics measured on
      `xs` and more random inputs, CALIBRATION_BATCH in all (each norm's from its own input, in one
      eval pass where every norm upstream already normalizes; on a 1×1 map `xs`'s two samples alone
      leave next to no variance to measure, and efficientdet_d0's float32 outputs 4 % off its
      float64 ones), then moved per channel — mean by N(0, 0.1²) standard deviations, variance
      times U(0.5, 1.5) — so the outputs stay near unit scale however deep the network, and a mean,
      variance, scale or shift wired to the wrong place shows;
    - other one-dimensional parameters (SSD's L2 scale, EfficientDet's fusion weights) as they are."""
    import torch

    g = torch.Generator().manual_seed(seed)
    norms = [m for m in module.modules() if type(m).__name__ in NORMS]
    with torch.no_grad():
        for m in module.modules():
            weight = getattr(m, "weight", None)
            if type(m).__name__ in NORMS or not isinstance(weight, torch.nn.Parameter) or weight.dim() < 2:
                continue
            weight.copy_(torch.randn(weight.shape, generator=g) * weight[0].numel() ** -0.5)
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.nn.Parameter):
                bias.copy_(torch.randn(bias.shape, generator=g) * 0.1)
        for m in norms:
            if m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        measured: set[int] = set()

        def measure(m: Any, args: tuple[Any, ...]) -> None:
            if id(m) in measured:  # a norm applied twice keeps its first input's statistics
                return
            measured.add(id(m))
            x = args[0].transpose(0, 1).reshape(args[0].shape[1], -1).double()
            mean, var = x.mean(1), x.var(1, unbiased=False)
            # A channel barely varying (ReLU6 saturated, nearly dead) would be scaled up by
            # 1/sqrt(eps) and with it the rounding of the sums it came from: its variance is taken
            # as at least a tenth of the layer's mean.
            var = var.clamp(min=0.1 * float(var.mean()))
            shift = torch.randn(mean.shape, generator=g, dtype=torch.float64) * 0.1
            m.running_mean.copy_(mean + shift * var.sqrt())
            m.running_var.copy_(var * (torch.rand(var.shape, generator=g, dtype=torch.float64) + 0.5))

        hooks = [m.register_forward_pre_hook(measure) for m in norms]
        try:
            more = CALIBRATION_BATCH - len(xs[0])
            module(*(torch.cat([x, torch.randn(more, *x.shape[1:], generator=g)]) for x in xs))
        finally:
            for hook in hooks:
                hook.remove()


def flat(y: Any) -> list[Any]:
    """A module's outputs as a list: a tensor alone, a dict's values in order, a sequence's items."""
    if isinstance(y, dict):
        return list(y.values())
    if isinstance(y, (list, tuple)):
        return list(y)
    return [y]


def max_abs_diff(got: list[Any], want: list[Any]) -> float:
    import torch

    assert len(got) == len(want), f"{len(got)} outputs, eager has {len(want)}"
    return max(float((torch.as_tensor(g) - w).abs().max()) for g, w in zip(got, want, strict=True))


def exported(module: Any, xs: tuple[Any, ...]) -> list[Any]:
    """The outputs of the program `torch.export.export(strict=True)` captures."""
    import torch

    program = torch.export.export(module, xs, strict=True)
    with torch.no_grad():
        return flat(program.module()(*xs))


def onnx_outputs(module: Any, xs: tuple[Any, ...]) -> list[Any]:
    """The outputs onnxruntime computes from the model `torch.onnx.export(dynamo=True)` writes,
    after the checker has accepted it."""
    import onnx
    import onnxruntime
    import torch

    program = torch.onnx.export(module, xs, dynamo=True, verbose=False)
    assert program is not None
    model = program.model_proto
    onnx.checker.check_model(model, full_check=True)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert len(names) == len(xs), f"the ONNX model takes {len(names)} inputs, the module {len(xs)}"
    return [torch.from_numpy(o) for o in session.run(None, {n: x.numpy() for n, x in zip(names, xs, strict=True)})]


def graph_breaks(module: Any, xs: tuple[Any, ...]) -> list[str]:
    """Why dynamo breaks the graph, once per break (empty: one graph)."""
    import torch

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(module)(*xs)
    return [str(b.reason) for b in explanation.break_reasons]


def compiled(module: Any, xs: tuple[Any, ...], backend: str = "inductor") -> list[Any]:
    """The outputs of `torch.compile(fullgraph=True)`, which raises at a graph break."""
    import torch

    torch._dynamo.reset()
    fn = torch.compile(module, fullgraph=True, backend=backend)
    with torch.no_grad():
        return flat(fn(*xs))


@dataclass
class Row:
    file: str
    name: str
    input: str = ""
    scale: str = ""  # the largest eager output magnitude
    rounding: str = ""  # eager's distance from float64
    export: str = ""  # max abs diff, or the error
    onnx: str = ""
    compile: str = ""  # fullgraph=True: a graph break fails
    seconds: float = 0.0


def _attempt(fn: Any) -> str:
    try:
        return f"{fn():.1e}"
    except Exception as exc:  # the sweep reports every failure and goes on
        traceback.print_exc(file=sys.stderr)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"FAIL {type(exc).__name__}: {first[:160]}"


def sweep_one(file: str, name: str, backend: str) -> Row:
    start = time.monotonic()
    row = Row(file, name)
    module, xs, eager = prepared(file, name)
    row.input = "×".join(str(d) for d in xs[0].shape[1:])
    row.scale = f"{scale(eager):.1e}"
    row.rounding = _attempt(lambda: float32_rounding(module, xs, eager))
    row.export = _attempt(lambda: max_abs_diff(exported(module, xs), eager))
    row.onnx = _attempt(lambda: max_abs_diff(onnx_outputs(module, xs), eager))
    row.compile = _attempt(lambda: max_abs_diff(compiled(module, xs, backend), eager))
    row.seconds = round(time.monotonic() - start, 1)
    return row


def main() -> int:
    from .conftest import zoo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("networks", nargs="*", help="network names, in the order to run (default: the whole zoo)")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--jsonl", help="append one JSON object per network to this file")
    args = parser.parse_args()
    files = {name: file for file, name in zoo()}
    cases = [(files[n], n) for n in args.networks] if args.networks else zoo()
    print("| network | input | max abs output | eager f32 − f64 | export | onnx+ort max abs diff | compile fullgraph |")
    print("|---|---|---|---|---|---|---|")
    for file, name in cases:
        row = sweep_one(file, name, args.compile_backend)
        cells = [name, row.input, row.scale, row.rounding, row.export, row.onnx, row.compile]
        print("| " + " | ".join(cells) + " |", flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as out:
                out.write(json.dumps(asdict(row)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

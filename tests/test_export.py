"""Every zoo network's generated module goes through every export path a deployment uses:
`torch.export.export(strict=True)`, `torch.onnx.export(dynamo=True)` checked by onnx and run by
onnxruntime, and `torch.compile(fullgraph=True)` — each output compared with eager (the helpers
and the whole-zoo table: tests/exporting.py). A few small networks of different kinds run by
default; the whole zoo under `-m slow`."""

from __future__ import annotations

from typing import Any

import pytest

from . import exporting
from .conftest import zoo

torch = pytest.importorskip("torch")

# Small, and between them every kind of generated code: plain chains and residual adds (resnet18),
# depthwise convolutions, channel split, shuffle and concat (shufflenet_v2), a detector's upsample,
# route and several named outputs (yolov3_tiny). mobilenet_v2 (inverted residuals, ReLU6) runs under
# `-m slow` with the rest of the zoo: its three exports took 28 s of CI's 10-minute budget.
QUICK = {"resnet18", "shufflenet_v2_x0_5", "yolov3_tiny"}


def _cases(quick: set[str]) -> list[Any]:
    return [pytest.param(file, name, marks=() if name in quick else pytest.mark.slow, id=name)
            for file, name in zoo()]


@pytest.mark.parametrize(("file", "name"), _cases(QUICK))
def test_torch_export_strict(file: str, name: str) -> None:
    module, xs, eager = exporting.prepared(file, name)
    torch.testing.assert_close(exporting.exported(module, xs), eager, atol=0, rtol=0)


@pytest.mark.parametrize(("file", "name"), _cases(QUICK))
def test_onnx_matches_onnxruntime(file: str, name: str) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    module, xs, eager = exporting.prepared(file, name)
    exporting.assert_close(exporting.onnx_outputs(module, xs), eager, exporting.ONNX_TOLERANCE,
                           lambda: exporting.float32_rounding(module, xs, eager))


@pytest.mark.parametrize(("file", "name"), _cases(QUICK))
def test_compile_one_graph(file: str, name: str) -> None:
    """Dynamo captures the forward as one graph; AOTAutograd (the part of torch.compile before a
    code-generating backend) runs it to eager's result. Inductor itself: the slow test below."""
    module, xs, eager = exporting.prepared(file, name)
    assert exporting.graph_breaks(module, xs) == []
    torch.testing.assert_close(exporting.compiled(module, xs, backend="aot_eager"), eager, atol=0, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(("file", "name"), _cases(set()))
def test_compile_inductor(file: str, name: str) -> None:
    module, xs, eager = exporting.prepared(file, name)
    exporting.assert_close(exporting.compiled(module, xs), eager, exporting.COMPILE_TOLERANCE,
                           lambda: exporting.float32_rounding(module, xs, eager))


def test_exercise_makes_every_layer_count() -> None:
    """A residual branch that the spec's init zeroes and fresh BN statistics: after `exercise` the
    branch shapes the output (a BN statistic moved moves it), and outputs are of order one."""
    from archdsl import load_string
    from archdsl.compiler.backends.torch_codegen import build_module

    net = load_string("""
network n {
    input image: 8x16x16
    y = image -> conv(8, 3, bias=false) as conv -> bn as bn -> relu -> conv(8, 3) as conv2 -> bn as bn2
    init bn as bn2: weight=0, bias=0
    image + y -> output out
}""").network()
    torch.manual_seed(0)
    module = build_module(net).eval()
    xs = (torch.randn(2, 8, 16, 16),)
    exporting.exercise(module, xs)
    assert module.bn2.weight.min() >= 0.5 and not torch.equal(module.bn.running_var, torch.ones(8))
    with torch.no_grad():
        before = module(*xs) - xs[0]
        module.bn.running_mean += 0.5
        after = module(*xs) - xs[0]
    assert 0.3 < float(before.std()) < 3
    assert float((after - before).abs().max()) > 0.1

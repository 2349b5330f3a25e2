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
# inverted residuals with ReLU6 (mobilenet_v2), channel split, shuffle and concat (shufflenet_v2),
# a detector's upsample, route and several named outputs (yolov3_tiny).
QUICK = {"mobilenet_v2", "resnet18", "shufflenet_v2_x0_5", "yolov3_tiny"}


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
    rounding = exporting.float32_rounding(module, xs, eager)
    exporting.assert_close(exporting.onnx_outputs(module, xs), eager, exporting.ONNX_TOLERANCE, rounding)


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
    rounding = exporting.float32_rounding(module, xs, eager)
    exporting.assert_close(exporting.compiled(module, xs), eager, exporting.COMPILE_TOLERANCE, rounding)

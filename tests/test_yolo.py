"""YOLO is fully convolutional: a module generated once (at the cfg's 416) runs at darknet's other
sizes, 320 and 608, and computes there what a module generated at that size computes."""

from __future__ import annotations

import pytest

from .conftest import network

torch = pytest.importorskip("torch")

OTHER_SIDES = (320, 608)


def _shapes(ys: dict[str, object]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape[1:]) for k, v in ys.items()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("side", OTHER_SIDES)
def test_yolov3_generated_at_416_takes_other_sizes(side: int) -> None:
    """Shapes only (meta device): every output has the shape the analysis gives at that size."""
    from archdsl.compiler.backends.torch_codegen import build_module

    assert network("yolo.arch", "yolov3").input_shapes == {"image": (3, 416, 416)}
    with torch.device("meta"):
        module = build_module(network("yolo.arch", "yolov3")).eval()
        ys = module(torch.empty(1, 3, side, side))
    at_side = network("yolo.arch", "yolov3", (3, side, side))
    assert _shapes(ys) == {k: tuple(v) for k, v in at_side.output_shapes.items()}
    assert _shapes(ys)["stride32"] == (255, side // 32, side // 32)


@pytest.mark.parametrize("side", OTHER_SIDES)
@pytest.mark.parametrize("name", ["yolov3_tiny", pytest.param("yolov3", marks=pytest.mark.slow)])
def test_generated_once_computes_what_a_module_generated_at_that_size_does(name: str, side: int) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    torch.manual_seed(0)
    once = build_module(network("yolo.arch", name)).eval()
    for m in once.modules():  # non-trivial batch-norm statistics, so eval mode tests them too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    fresh = build_module(network("yolo.arch", name, (3, side, side))).eval()
    load_weights(fresh, once)
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        got, expected = once(x), fresh(x)
    assert _shapes(got) == _shapes(expected)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=1e-5, rtol=1e-5)

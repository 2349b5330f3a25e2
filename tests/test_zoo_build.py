"""Every network in specs/ builds from its generated source, and the built module agrees with the
analysis: output shapes, parameter count and FlopCounterMode MACs at the spec's own input size
(on the meta device, so even the largest networks cost no compute); a real CPU forward at a small
input; and, with a GPU, forward and backward in fp32 and bf16."""

from __future__ import annotations

import pytest

from .canonical import CANONICAL
from .conftest import zoo
from .small_input import buildable, small_input

torch = pytest.importorskip("torch")


def _outputs(y: object, names: list[str]) -> dict[str, object]:
    return y if isinstance(y, dict) else {names[0]: y}


@pytest.mark.parametrize(("file", "name"), zoo())
def test_builds_and_matches_analysis(file: str, name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from archdsl.compiler.backends.torch_codegen import build_module

    net = buildable(file, name)
    report = net.analyze()
    with torch.device("meta"):
        module = build_module(net)
    assert sum(p.numel() for p in module.parameters()) == report.params
    assert sum(b.numel() for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")) == report.buffers
    xs = [torch.empty(1, *s, device="meta") for s in net.input_shapes.values()]
    with FlopCounterMode(display=False) as counter:
        ys = _outputs(module.eval()(*xs), list(report.outputs))
    assert {k: tuple(v.shape[1:]) for k, v in ys.items()} == {k: tuple(v) for k, v in report.outputs.items()}
    assert counter.get_total_flops() // 2 == report.macs


# Networks with a canonical counterpart of the same function run on the CPU in test_parity already
# (the slow ones there only under `-m slow`, so here too).
NOT_CANONICAL = [case for case in zoo()
                 if case not in {(c.file, c.network) for c in CANONICAL if c.other_function is None and not c.slow}]


@pytest.mark.parametrize(("file", "name"), NOT_CANONICAL)
def test_cpu_forward_small(file: str, name: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = buildable(file, name, small_input(file, name))
    module = build_module(net).eval()
    with torch.no_grad():
        ys = _outputs(module(*[torch.randn(2, *s) for s in net.input_shapes.values()]), list(net.output_shapes))
    assert {k: tuple(v.shape[1:]) for k, v in ys.items()} == {k: tuple(v) for k, v in net.output_shapes.items()}
    assert all(torch.isfinite(v).all() for v in ys.values())


@pytest.mark.slow
@pytest.mark.parametrize(("file", "name"), zoo())
def test_cpu_forward_full_size(file: str, name: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = buildable(file, name)
    module = build_module(net).eval()
    with torch.no_grad():
        ys = _outputs(module(*[torch.randn(1, *s) for s in net.input_shapes.values()]), list(net.output_shapes))
    assert {k: tuple(v.shape[1:]) for k, v in ys.items()} == {k: tuple(v) for k, v in net.output_shapes.items()}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(("file", "name"), zoo())
def test_cuda_forward_backward(file: str, name: str, dtype: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = buildable(file, name)
    dt = getattr(torch, dtype)
    module = build_module(net).to("cuda", dt)
    if dtype == "bfloat16":
        module = module.to(memory_format=torch.channels_last)
    xs = [torch.randn(2, *s, device="cuda", dtype=dt) for s in net.input_shapes.values()]
    if dtype == "bfloat16":
        xs = [x.to(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs]
    ys = _outputs(module(*xs), list(net.output_shapes))
    assert {k: tuple(v.shape[1:]) for k, v in ys.items()} == {k: tuple(v) for k, v in net.output_shapes.items()}
    sum(v.float().sum() for v in ys.values()).backward()
    grads = [p.grad for p in module.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

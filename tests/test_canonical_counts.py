"""Every zoo network against its canonical implementation: parameters, MACs, output shape.

The reference numbers are measured live from the canonical model (torchvision/timm, built on the
`meta` device so nothing is computed): params = sum(p.numel()), MACs = FlopCounterMode total ÷ 2.
The published figures are torchvision's weights metadata (`num_params`, `_ops` in GMACs).
"""

from __future__ import annotations

import pytest

from .canonical import CANONICAL, Canonical
from .conftest import network

torch = pytest.importorskip("torch")


def _measure(c: Canonical, shape: tuple[int, ...]) -> tuple[int, int, list[list[int]]]:
    """Params, MACs per sample and the output shapes (a classifier's main output first). A model
    with auxiliary heads runs in training mode, where they run (the spec computes them as outputs),
    on two samples (batch norm over a 1×1 map needs more than one value per channel in training mode)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2 if c.aux_heads else 1
    with torch.device("meta"):
        model = c.build(shape).train(bool(c.aux_heads))
        x = torch.empty(batch, *shape)
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        outputs = c.outputs(model, x)  # training mode: (logits, aux…); a detector: its levels and heads
    return params, counter.get_total_flops() // 2 // batch, [list(y.shape[1:]) for y in outputs]


@pytest.mark.parametrize("c", [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in CANONICAL],
                         ids=lambda c: c.id)
def test_counts_equal_canonical(c: Canonical) -> None:
    net = network(c.file, c.network)
    report = net.analyze()
    (shape,) = net.input_shapes.values()
    params, macs, out_shapes = _measure(c, shape)
    assert report.params == params
    assert report.macs == macs
    if c.aux_heads:  # auxiliary heads are outputs after the main one
        main, *aux = report.outputs.values()
        assert len(aux) == len(c.aux_heads)
        assert out_shapes[0] == main
    else:
        assert out_shapes == list(report.outputs.values())


@pytest.mark.parametrize("c", [c for c in CANONICAL if c.weights], ids=lambda c: c.id)
def test_published_figures(c: Canonical) -> None:
    """torchvision's published metadata (Params and GFLOPS columns of its model table)."""
    meta = c.published()
    assert meta is not None
    report = network(c.file, c.network).analyze()
    assert report.params == meta["num_params"]
    # _ops is the eval forward, where auxiliary heads do not run.
    inference = report.macs - sum(x.macs for x in report.layers if x.name.split(".")[0] in
                                  {head for _, head in c.aux_heads.values()})
    assert round(inference / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-3)


def test_resnet50_published_by_hand() -> None:
    # torchvision ResNet50_Weights.IMAGENET1K_V1: num_params 25,557,032; _ops 4.089 (GFLOPS = GMACs)
    report = network("resnet.arch", "resnet50").analyze()
    assert report.params == 25_557_032
    assert round(report.macs / 1e9, 3) == 4.089

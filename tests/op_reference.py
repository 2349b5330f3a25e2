"""Comparing a tiny spec with a hand-built (or library) torch module, the way the zoo is compared with
torchvision: parameters exact, FlopCounterMode MACs (÷2) exact, output shapes, and outputs equal after
`load_weights` with random weights. Test helper only: it imports torch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module
from archdsl.compiler.backends.weights import load_weights


@dataclass(frozen=True)
class Compared:
    network: api.Network
    generated: nn.Module
    matched_by: str  # how load_weights matched the tensors: "name" or "order"


def spec_network(text: str, name: str | None = None) -> api.Network:
    return api.load_string(text, file="t.arch").network(name)


def _outputs(result: object) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    assert isinstance(result, tuple | list)
    return list(result)


def compare(text: str, reference: nn.Module, *, name: str | None = None, seed: int = 0,
            atol: float = 1e-5) -> Compared:
    """Check the spec's network against `reference`, which takes the network's inputs in order."""
    torch.manual_seed(seed)
    net = spec_network(text, name)
    report = net.analyze()
    reference = reference.eval()
    with torch.no_grad():  # random values, so that a parameter left at its init cannot hide a swap
        for p in reference.parameters():
            p.normal_(0, 0.5)
    assert report.params == sum(p.numel() for p in reference.parameters())

    counter = FlopCounterMode(display=False)  # counts are per sample: a batch of one
    with counter, torch.no_grad():
        reference(*[torch.randn(1, *shape) for shape in net.input_shapes.values()])
    assert report.macs == counter.get_total_flops() // 2

    inputs = [torch.randn(2, *shape) for shape in net.input_shapes.values()]
    with torch.no_grad():
        expected = _outputs(reference(*inputs))
    assert [tuple(t.shape[1:]) for t in expected] == list(net.output_shapes.values())

    generated = build_module(net).eval()
    how = load_weights(generated, reference)
    with torch.no_grad():
        got = _outputs(generated(*inputs))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=atol)
    return Compared(net, generated, how)

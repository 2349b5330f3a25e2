"""The round trip of `archdsl import`, shared by tests/test_import_*.py and benchmarks/import_coverage.py.

model → spec → `analyze` must give the model's parameter count (`sum(p.numel())`) and its
FlopCounterMode total ÷ 2 exactly; `compile` → the generated module must load the model's
state_dict by name with strict=True and compute the same outputs (1e-5) in eval mode, with random
weights and random BatchNorm statistics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Input sizes: the smallest that each model accepts, to keep CPU runs short. Models whose input is
# fixed by the architecture (a Linear after a flatten of spatial features) run at that size.
SMALL = (3, 64, 64)


@dataclass
class Case:
    """One model of the round trip: where it comes from and the input it runs at."""

    spec: str  # MODULE:FACTORY, as `archdsl import` takes it
    input: tuple[int, ...] = SMALL
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.replace("torchvision.models:", "tv:").replace("timm:", "timm:")

    def build(self) -> tuple[Any, dict[int, dict[str, Any]]]:
        from archdsl.compiler.importer import factory

        fn, _ = factory.resolve(self.spec)
        if self.kwargs:
            inner = fn

            def fn() -> Any:
                return inner(**self.kwargs)
        return factory.build(fn, self.spec)


@dataclass
class Outcome:
    case: Case
    text: str = ""
    params: tuple[int, int] = (0, 0)  # (model, spec)
    macs: tuple[int, int] = (0, 0)
    max_error: float = float("nan")
    seconds: float = 0.0
    lines: int = 0
    blocks: int = 0


def randomize(model: Any, seed: int = 0) -> None:
    """Random weights (N(0, 1/fan_in)) and random BatchNorm statistics and affine terms."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.copy_(torch.randn(p.shape, generator=g) * fan_in**-0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def round_trip(case: Case) -> Outcome:
    """Import, analyze, compile, load, compare; raises AssertionError (or ArchError) on a mismatch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import archdsl.api as api
    from archdsl.compiler.importer import import_module

    start = time.perf_counter()
    torch.manual_seed(0)
    model, ctor = case.build()
    name = case.spec.rpartition(":")[2]
    result = import_module(model, case.input, name, case.spec, ctor)
    out = Outcome(case, result.text)
    spec = api.load_string(result.text, file=f"{result.network}.arch")
    net = spec.network(result.network)
    report = net.analyze()
    randomize(model)
    model.eval()
    x = torch.randn(2, *case.input, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        expected = model(x[:1])
    out.params = (sum(p.numel() for p in model.parameters()), report.params)
    out.macs = (counter.get_total_flops() // 2, report.macs)
    assert out.params[0] == out.params[1], f"params: model {out.params[0]:,}, spec {out.params[1]:,}"
    assert out.macs[0] == out.macs[1], f"MACs: model {out.macs[0]:,}, spec {out.macs[1]:,}"
    with torch.device("meta"):
        gen = api.build(net)
    gen = gen.to_empty(device="cpu")
    missing_or_unexpected = gen.load_state_dict(model.state_dict(), strict=True)
    assert not missing_or_unexpected.missing_keys and not missing_or_unexpected.unexpected_keys
    gen.eval()
    with torch.no_grad():
        expected = model(x)
        got = gen(x)
    if isinstance(got, dict):
        got = next(iter(got.values()))
    assert got.shape == expected.shape, f"output shape: model {tuple(expected.shape)}, spec {tuple(got.shape)}"
    out.max_error = float((got - expected).abs().max())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    out.seconds = time.perf_counter() - start
    out.lines = len([line for line in result.text.splitlines() if line.strip() and not line.startswith("#")])
    out.blocks = sum(line.startswith("block ") for line in result.text.splitlines())
    return out

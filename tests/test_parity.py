"""Parity with the canonical implementations: the generated module, loaded with the torchvision/timm
model's (random) weights, computes the same function, has the same parameter count, and its
FlopCounterMode total ÷ 2 equals the analysis' MACs.

Networks run at a reduced input (3×64×64 where the spec allows it) to keep CI fast on two cores;
every canonical network of specs/ is covered.
"""

from __future__ import annotations

import pytest

from .canonical import CANONICAL, Canonical
from .conftest import SPECS, network, zoo
from .small_input import small_input

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

PRESENT = set(zoo())
# Known differences between a spec and its canonical model, reported to the zoo's authors.
# Networks whose spec knowingly computes something else than the canonical model: name → why.
SPEC_GAPS: dict[str, str] = {}
CASES = [pytest.param(c, marks=pytest.mark.xfail(reason=SPEC_GAPS[c.network], strict=False))
         if c.network in SPEC_GAPS else pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in CANONICAL
         if (c.file, c.network) in PRESENT and c.other_function is None]


def _randomize_norms(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine terms, so eval-mode parity tests them too."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        # BatchNorm and torchvision's FrozenBatchNorm2d (whose affine terms are buffers)
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) or type(m).__name__ == "FrozenBatchNorm2d":
            n = m.running_mean.numel()
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if getattr(m, "affine", True):
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def _random_canonical(case: Canonical, shape: tuple[int, ...]) -> torch.nn.Module:
    """The canonical model with random weights, built on the meta device and filled directly (its own
    init would cost more than the whole comparison): N(0, 1/fan_in) weights, small biases."""
    try:
        with torch.device("meta"):
            model = case.build(shape)
        model = model.to_empty(device="cpu")
    except Exception:  # a model that cannot be built on meta: its ordinary init is random too
        return case.build(shape)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.normal_(0.0, fan_in**-0.5, generator=g)
        for b in model.buffers():
            b.zero_()
    _randomize_norms(model)
    return model


def test_cases_cover_the_zoo() -> None:
    assert CASES, "no canonical network found in specs/"
    assert all((SPECS / getattr(c, "values", [c])[0].file).exists() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id if isinstance(c, Canonical) else c.values[0].id)
def test_parity(case: Canonical) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    torch.manual_seed(0)
    shape = small_input(case.file, case.network)
    net = network(case.file, case.network, shape)
    report = net.analyze()
    ref = _random_canonical(case, shape).eval()
    with torch.device("meta"):  # every tensor is overwritten by load_weights
        gen = build_module(net)
    gen = gen.to_empty(device="cpu").eval()
    assert sum(p.numel() for p in gen.parameters()) == sum(p.numel() for p in ref.parameters()) == report.params
    matched_by = load_weights(gen, case.state_dict(ref))
    # Every spec names each layer as its canonical model does, so the weights load by name, with the
    # same key set (load_weights is strict: no tensor left over on either side).
    assert matched_by == "name", "the spec's layer names differ from the canonical's"

    x = torch.randn(2, *shape)
    feeds: dict[str, torch.Tensor] = {}  # what each auxiliary head reads, captured in the eval forward
    for source, _ in case.aux_heads.values():
        ref.get_submodule(source).register_forward_hook(lambda _m, _i, out, s=source: feeds.__setitem__(s, out))
    with torch.no_grad():
        expected = case.outputs(ref, x)
        with FlopCounterMode(display=False) as counter:
            outputs = gen(x)
    # Every output the canonical model returns (a detector's levels and heads), in the spec's order;
    # auxiliary heads follow and are compared below.
    got = list(outputs.values()) if isinstance(outputs, dict) else [outputs]
    assert len(got) == len(expected) + len(case.aux_heads)
    for name, g, e in zip(report.outputs, got, expected, strict=False):
        assert tuple(g.shape[1:]) == tuple(report.outputs[name]) == tuple(e.shape[1:]), name
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
    assert counter.get_total_flops() // 2 == report.macs * x.shape[0]
    # Auxiliary heads run only in the canonical model's training mode: compare each on its input.
    for output, (source, head) in case.aux_heads.items():
        with torch.no_grad():
            torch.testing.assert_close(outputs[output], ref.get_submodule(head)(feeds[source]), atol=1e-5, rtol=1e-5)

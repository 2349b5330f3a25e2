"""EfficientNet trains as torchvision's: the same stochastic-depth schedule and the same random draws.

torchvision's EfficientNet (B0–B7 and V2) gives block k of all the table's blocks the drop
probability `stochastic_depth_prob * k / total_stage_blocks` (efficientnet.py, EfficientNet.__init__),
the spec `stochastic_depth_prob * j / blocks` (`repeat n as i, j of blocks`). Every probability here
is read from the torchvision model built live; the training-mode comparison runs both models under
the same seed, so it holds only if the generated DropPath draws its masks as torchvision's
StochasticDepth(mode="row") does, in the same order, with the same arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .canonical import CANONICAL, Canonical
from .conftest import network

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

SHAPE = (3, 64, 64)  # the schedule does not depend on the input size; small keeps the forward fast


def _case(name: str) -> Canonical:
    return next(c for c in CANONICAL if c.network == name)


EFFICIENTNETS = [c.network for c in CANONICAL if c.network.startswith("efficientnet_")]


def _torchvision_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """torchvision's MBConv and FusedMBConv blocks, in the order the network runs them."""
    from torchvision.models.efficientnet import FusedMBConv, MBConv

    return [m for m in model.modules() if isinstance(m, MBConv | FusedMBConv)]


def test_every_efficientnet_is_covered() -> None:
    assert {f"efficientnet_b{k}" for k in range(8)} | {f"efficientnet_v2_{k}" for k in "sml"} == set(EFFICIENTNETS)


@pytest.mark.parametrize("name", EFFICIENTNETS)  # under a second each: torchvision builds on meta
def test_each_block_drops_with_torchvisions_probability(name: str) -> None:
    """Every block of the spec (residual or not: torchvision keeps a StochasticDepth in each) has
    the `drop` of torchvision's block at the same place, as the same float."""
    case = _case(name)
    with torch.device("meta"):
        reference = case.build(SHAPE)
    expected = [block.stochastic_depth.p for block in _torchvision_blocks(reference)]
    ours = [dict(scope.number_values)["drop"] for scope in network(case.file, name, SHAPE).ir.scopes.values()
            if scope.block in ("mbconv", "fused_mbconv")]
    assert len(ours) == len(expected)
    assert ours == expected
    assert expected[0] == 0.0 and expected[-1] > 0.0  # the schedule is there to compare


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_v2_s"])
def test_training_forward_and_backward_equal_torchvisions(name: str) -> None:
    """Same weights, same seed, training mode: the same output and the same gradients, bit for bit,
    and each residual branch's DropPath holds torchvision's p."""
    from torchvision.ops import StochasticDepth

    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    from .test_parity import _random_canonical

    case = _case(name)
    reference = _random_canonical(case, SHAPE)
    generated = build_module(network(case.file, name, SHAPE))
    load_weights(generated, case.state_dict(reference))

    residual = [block.stochastic_depth for block in _torchvision_blocks(reference) if block.use_res_connect]
    drop_paths = [m for m in generated.modules() if type(m).__name__ == "DropPath"]
    assert all(isinstance(m, StochasticDepth) and m.mode == "row" for m in residual)
    assert [m.p for m in drop_paths] == [m.p for m in residual]
    assert sum(m.p > 0 for m in residual) >= 9  # masks are drawn: the comparison below tests them
    assert repr(drop_paths[-1]) == repr(residual[-1]).replace("StochasticDepth", "DropPath")

    reference.train()
    generated.train()
    x = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    expected = reference(x)
    torch.manual_seed(0)
    got = generated(x)
    assert torch.equal(got, expected)
    # Another seed drops other branches: the output depends on the draws.
    torch.manual_seed(1)
    assert not torch.equal(generated(x), got)

    expected.square().mean().backward()
    got.square().mean().backward()
    theirs = dict(reference.named_parameters())
    ours = list(generated.parameters())
    assert len(ours) == len(theirs)
    for (key, p), q in zip(theirs.items(), ours, strict=True):
        assert p.grad is not None and q.grad is not None
        assert q.shape == p.shape, key
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=lambda m, key=key: f"{key}: {m}")


def test_the_family_class_computes_the_schedule_as_torchvision(tmp_path: Path) -> None:
    """`archdsl compile specs/efficientnet.arch`: the one EfficientNet class counts its blocks as
    torchvision's does (`total_stage_blocks`, `stage_block_id`), and each of B0–B7 built from it
    holds torchvision's p at every residual branch."""
    from .test_codegen_family import _module

    module, source = _module("efficientnet.arch", tmp_path)
    assert "total_blocks = sum(math.ceil(n * depth) for t, k, s, c, n in stages)" in source
    assert "block_id += 1" in source
    with torch.device("meta"):
        for k in range(8):
            name = f"efficientnet_b{k}"
            ours, reference = getattr(module, name)(), _case(name).build()
            expected = [b.stochastic_depth.p for b in _torchvision_blocks(reference) if b.use_res_connect]
            assert [m.p for m in ours.modules() if type(m).__name__ == "DropPath"] == expected, name

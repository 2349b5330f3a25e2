"""EfficientDet's backbone trains as effdet's: the same stochastic-depth schedule and the same draws.

effdet builds the backbone with timm (`drop_path_rate=0.2`, effdet's backbone_args for every
tf_efficientdet_d*), whose EfficientNetBuilder gives block `total_block_idx` of all `block_count`
blocks — counted across the stages from 0, non-residual ones included — the rate
`drop_path_rate * total_block_idx / block_count` (_efficientnet_builder.py, `_make_block`), and
each block applies it only on its residual branch (`x = self.drop_path(x) + shortcut` when
has_skip, _efficientnet_blocks.py). Every probability here is read from the effdet model built
live; the training-mode comparison runs both models under the same seed, so it holds only if the
generated DropPath draws its masks as timm's `drop_path` does (`x.new_empty(shape).bernoulli_(keep)`,
`div_(keep)`, `x * mask`: torchvision's StochasticDepth's draws and arithmetic too), in the same order.
"""

from __future__ import annotations

from typing import Any

import pytest

from .canonical import CANONICAL, Canonical
from .conftest import network
from .small_input import small_input

torch = pytest.importorskip("torch")
pytest.importorskip("effdet")

EFFICIENTDETS = [c.network for c in CANONICAL if c.library == "effdet"]


def _case(name: str) -> Canonical:
    return next(c for c in CANONICAL if c.network == name)


def _timm_blocks(model: Any) -> list[Any]:
    """The backbone's blocks (timm DepthwiseSeparableConv and InvertedResidual), in the order they run."""
    return [m for stage in model.backbone.blocks for m in stage]


def _drop_prob(block: Any) -> float:
    """The rate timm gave the block: a rate of 0 builds an nn.Identity instead of a DropPath."""
    return float(getattr(block.drop_path, "drop_prob", 0.0))


def test_every_efficientdet_is_covered() -> None:
    assert {f"efficientdet_d{k}" for k in range(8)} | {"efficientdet_d7x"} == set(EFFICIENTDETS)


@pytest.mark.parametrize("name", EFFICIENTDETS)  # effdet builds on meta: under a few seconds each
def test_each_backbone_block_drops_with_effdets_probability(name: str) -> None:
    """Every block of the spec's backbone (residual or not: timm builds a DropPath in each whose rate
    is not 0) has the rate of effdet's block at the same place, as the same float; its residual
    branches, and only they, drop (the blocks without a skip ignore the rate, as timm's do)."""
    case = _case(name)
    shape = small_input(case.file, name)
    with torch.device("meta"):
        reference = case.build(shape)
    blocks = _timm_blocks(reference)
    ir = network(case.file, name, shape).ir
    ours = {".".join(path): dict(scope.number_values)["drop"] for path, scope in ir.scopes.items()
            if scope.block in ("tf_ds_conv", "tf_mbconv")}
    names = [f"backbone.blocks.{s}.{b}" for s, stage in enumerate(reference.backbone.blocks) for b in range(len(stage))]
    assert list(ours) == names
    assert list(ours.values()) == [_drop_prob(block) for block in blocks]
    assert _drop_prob(blocks[0]) == 0.0 and _drop_prob(blocks[-1]) > 0.0  # the schedule is there to compare

    dropping = {".".join(n.scope): n.attrs.p for n in ir.nodes("op") if n.op == "drop_path"}
    assert dropping == {path: _drop_prob(block) for path, block in zip(names, blocks, strict=True) if block.has_skip}


def test_efficientdet_d0_schedule_as_measured() -> None:
    """The rates effdet's tf_efficientdet_d0 holds at its 9 residual blocks, measured live
    (`[b.drop_path.drop_prob for stage in model.backbone.blocks for b in stage if b.has_skip]`):
    0.2 · k / 16 for the blocks k = 2, 4, 6, 7, 9, 10, 12, 13, 14 of its 16."""
    case = _case("efficientdet_d0")
    ir = network(case.file, case.network, small_input(case.file, case.network)).ir
    rates = [n.attrs.p for n in ir.nodes("op") if n.op == "drop_path"]
    assert rates == [0.025, 0.05, 0.07500000000000001, 0.08750000000000001, 0.1125, 0.125,
                     0.15000000000000002, 0.1625, 0.17500000000000002]


def test_training_forward_and_backward_equal_effdets() -> None:
    """Same weights, same seed, training mode (batch statistics, drop paths on): effdet's backbone
    features and outputs, bit for bit, and its gradients; each residual branch's DropPath holds
    timm's p. The backbone's C3–C5 are compared too: with random fusion weights some of the BiFPN's
    inputs weigh relu(w) = 0, so not every output reads every backbone level."""
    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    from .test_parity import _random_canonical

    case = _case("efficientdet_d0")
    shape = small_input(case.file, case.network)
    reference = _random_canonical(case, shape)
    generated = build_module(network(case.file, case.network, shape))
    assert load_weights(generated, case.state_dict(reference)) == "name"

    residual = [block.drop_path for block in _timm_blocks(reference) if block.has_skip]
    drop_paths = [m for m in generated.modules() if type(m).__name__ == "DropPath"]
    assert [m.p for m in drop_paths] == [m.drop_prob for m in residual]
    assert len(residual) == 9 and all(m.scale_by_keep for m in residual)  # d0's residual blocks; masks rescaled

    features: dict[str, list[Any]] = {}
    for key, model in (("theirs", reference), ("ours", generated)):
        model.backbone.register_forward_hook(lambda _m, _i, out, key=key: features.__setitem__(key, list(out)))
    reference.train()
    generated.train()
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    expected = case.outputs(reference, x)
    torch.manual_seed(0)
    got = list(generated(x).values())
    assert len(features["ours"]) == len(features["theirs"]) == 3
    for g, e in zip(features["ours"], features["theirs"], strict=True):
        assert torch.equal(g, e)
    assert len(got) == len(expected) == 10
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)
    # Another seed drops other branches: C4 and C5 depend on the draws, so the match above tests them.
    drawn = [f.detach() for f in features["ours"]]
    torch.manual_seed(1)
    with torch.no_grad():
        generated(x)
    assert not torch.equal(features["ours"][1], drawn[1]) and not torch.equal(features["ours"][2], drawn[2])

    sum(e.square().mean() for e in expected).backward()
    sum(g.square().mean() for g in got).backward()
    theirs = dict(reference.named_parameters())
    ours = dict(generated.named_parameters())
    assert len(ours) == len(theirs)
    for key, p in theirs.items():
        q = ours[case.rename(key) if case.rename else key]
        assert p.grad is not None and q.grad is not None, key
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=lambda m, key=key: f"{key}: {m}")

"""Weights through the public API: `archdsl.api.load_weights` and `archdsl.api.build(..., weights=)`,
by name and by order, and the error that names the first tensor that does not fit."""

from __future__ import annotations

import pytest

import archdsl
import archdsl.api as api

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")


def _same_function(a: torch.nn.Module, b: torch.nn.Module, side: int = 64) -> bool:
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return bool(torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5, rtol=1e-5))


def test_by_name_when_the_spec_keeps_torchvisions_names() -> None:
    torch.manual_seed(0)
    reference = tvm.resnet18()
    net = api.build("resnet18", input="3x64x64")
    assert not _same_function(net, reference)
    assert api.load_weights(net, reference) == "name"
    assert _same_function(net, reference)


def test_by_name_when_the_spec_appends_as_torchvision_does() -> None:
    """MobileNetV2's spec appends its layers to `features` and `conv` (`as features[]`), as
    torchvision's `layers.append`: the same names, so the weights load by name."""
    torch.manual_seed(0)
    reference = tvm.mobilenet_v2()
    net = api.build("mobilenet_v2", input="3x64x64")
    assert set(net.state_dict()) == set(reference.state_dict())
    assert api.load_weights(net, reference) == "name"
    assert _same_function(net, reference)


def test_by_order_when_the_names_differ() -> None:
    # Every zoo network has its canonical names, so the names are made to differ:
    # torchvision's resnet18 state dict with each key under another prefix, as a wrapper would save it.
    torch.manual_seed(0)
    reference = tvm.resnet18()
    renamed = {f"model.{k}": v for k, v in reference.state_dict().items()}
    net = api.build("resnet18", input="3x64x64")
    assert not set(net.state_dict()) & set(renamed)
    assert api.load_weights(net, renamed) == "order"
    assert _same_function(net, reference)


def test_build_takes_the_weights() -> None:
    torch.manual_seed(0)
    reference = tvm.resnet18()
    assert _same_function(api.build("resnet18", input="3x64x64", weights=reference), reference)
    assert archdsl.load_weights is api.load_weights


def test_a_misfit_is_named_with_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"^tensor #7: the generated module's `layer1\.0\.conv1\.weight` is 64×64×1×1 "
                                         r"but the source's `layer1\.0\.conv1\.weight` is 64×64×3×3"):
        api.load_weights(api.build("resnet50"), tvm.resnet18())
    deeper, shallower = tvm.resnet34().state_dict(), tvm.resnet18().state_dict()
    extra = [k for k in deeper if k not in shallower and not k.endswith("num_batches_tracked")]
    with pytest.raises(ValueError, match=rf"the source has {len(extra)} tensor\(s\) the generated module lacks, "
                                         rf"first `{extra[0]}`"):
        api.load_weights(api.build("resnet18"), tvm.resnet34())
    assert api.load_weights(api.build("resnet18"), tvm.resnet34(), strict=False) == "name"

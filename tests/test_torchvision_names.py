"""A zoo name that is also a torchvision builder's name means the network that builder returns:
`archdsl analyze inception_v3` has the parameters of `torchvision.models.inception_v3()`, measured
live (weights=None, built on the meta device). The one exception is documented in its spec and in
the README, and is checked here as stated."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from .conftest import network, zoo

# The bare calls warn that inception_v3's and googlenet's default initialisation will change.
pytestmark = pytest.mark.filterwarnings("ignore:The default weight initialization:FutureWarning")

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")

# name → (why, the torchvision call the name means instead, the zoo network that is the bare call)
EXCEPTIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "googlenet": ("googlenet()'s own default is aux_logits=False (its published weights and num_params, "
                  "6,624,904, have no auxiliary heads); only without weights does it fall through to the "
                  "GoogLeNet class's aux_logits=True", {"aux_logits": False}, "googlenet_aux"),
}

TORCHVISION_NAMED = sorted((file, name) for file, name in zoo() if name in set(tvm.list_models()))


def _torchvision_params(name: str, **kwargs: Any) -> int:
    builder = tvm.get_model_builder(name)
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None  # detection models: no download of an ImageNet backbone
    with torch.device("meta"):
        model = builder(weights=None, **kwargs)
    return sum(p.numel() for p in model.parameters())


def test_the_zoo_has_torchvision_names() -> None:
    assert {"resnet50", "inception_v3", "googlenet"} <= {name for _, name in TORCHVISION_NAMED}


@pytest.mark.parametrize(("file", "name"), TORCHVISION_NAMED, ids=[n for _, n in TORCHVISION_NAMED])
def test_name_means_the_torchvision_builders_network(file: str, name: str) -> None:
    ours = network(file, name).analyze().params
    if name not in EXCEPTIONS:
        assert ours == _torchvision_params(name)
        return
    _, kwargs, bare = EXCEPTIONS[name]
    assert ours == _torchvision_params(name, **kwargs)
    assert network(file, bare).analyze().params == _torchvision_params(name)


def test_inception_v3_includes_its_auxiliary_head() -> None:
    """The issue's case, against torchvision's published figure for inception_v3's weights."""
    published = tvm.Inception_V3_Weights.IMAGENET1K_V1.meta["num_params"]
    report = network("inception_v3.arch", "inception_v3").analyze()
    assert report.params == published
    assert set(report.outputs) == {"logits", "aux_logits"}
    assert network("inception_v3.arch", "inception_v3_noaux").analyze().params == _torchvision_params(
        "inception_v3", aux_logits=False)


def test_googlenet_is_its_published_network() -> None:
    assert network("googlenet.arch", "googlenet").analyze().params == \
        tvm.GoogLeNet_Weights.IMAGENET1K_V1.meta["num_params"]

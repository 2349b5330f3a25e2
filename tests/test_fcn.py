"""FCN (specs/fcn.arch) keeps its score aligned with its input at any size, as the reference Caffe nets
do (fcn.berkeleyvision.org README: "the 100 pixel input padding guarantees that the network output
can be aligned to the input for any input size"): the receptive-field pass finds every skip fusion
aligned and each score pixel centred on its own image pixel, and a module generated once runs at
other sizes with the input's size out."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.compiler.passes.receptive import ReceptiveFieldPass

from .conftest import SPECS, network
from .test_receptive import field

NETWORKS = ["fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16"]


def _fusions(net: api.Network) -> list[str]:
    return [n.name for n in net.ir.nodes("op") if n.op == "add"]


@pytest.mark.parametrize("name", NETWORKS)
def test_score_is_aligned_with_the_image(name: str) -> None:
    net = network("fcn.arch", name)
    assert net.output_shapes == {"score": (21, 500, 500)}
    f = field(net, "score")
    # Caffe's offsets (19; 5, 27; 5, 9, 31) put every score pixel's field centre on its own image
    # pixel: start 0, stride 1.
    assert f.start == (0, 0) and f.stride == (1, 1) and not f.misaligned
    fields = net.analysis[ReceptiveFieldPass]
    assert len(_fusions(net)) == NETWORKS.index(name)  # FCN-16s fuses pool4, FCN-8s pool4 and pool3
    assert all(not fields[add].primary.misaligned for add in _fusions(net))


@pytest.mark.parametrize(("name", "crop", "wrong"), [
    ("fcn8s_vgg16", "crop(upscore2, offset=5)", "crop(upscore2, offset=4)"),
    ("fcn8s_vgg16", "crop(upscore_pool4, offset=9)", "crop(upscore_pool4, offset=10)"),
    ("fcn16s_vgg16", "crop(upscore2, offset=5)", "crop(upscore2, offset=6)"),
])
def test_a_wrong_skip_offset_is_reported_misaligned(name: str, crop: str, wrong: str) -> None:
    source = (SPECS / "fcn.arch").read_text()
    assert source.count(crop) >= 1
    net = api.load_string(source.replace(crop, wrong), file="fcn.arch").network(name)
    net.analyze()
    fields = net.analysis[ReceptiveFieldPass]
    assert any(fields[add].primary.misaligned for add in _fusions(net))


def test_fcn8s_generated_once_scores_every_pixel_at_other_sizes() -> None:
    torch = pytest.importorskip("torch")
    from archdsl.compiler.backends.torch_codegen import build_module

    module = build_module(network("fcn.arch", "fcn8s_vgg16")).eval()  # generated at 500×500
    for h, w in [(64, 64), (97, 75)]:
        assert network("fcn.arch", "fcn8s_vgg16", (3, h, w)).output_shapes == {"score": (21, h, w)}
        with torch.no_grad():
            score = module(torch.randn(1, 3, h, w))
        assert tuple(score.shape) == (1, 21, h, w)

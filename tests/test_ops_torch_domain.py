"""Every op's every attribute at numbers on PyTorch's edges: the spec is refused where it writes
the value, or the generated module builds and runs a forward pass on the CPU. Never a module whose
constructor or forward fails on a value the spec was allowed to give.

A sweep like this found `softmax(7)` on a 3-d tensor and `deconv(…, output_pad=1)` at stride 1
accepted (torch checks both only when the layer runs), float attributes beyond float32 accepted
(LeakyReLU's slope, l2norm's scale and eps, layer_scale's initial value: "value cannot be converted
to type float without overflow"), and window sizes beyond 32 bits (a pool's stride of 10**12:
"value cannot be converted to type int without overflow").
"""

from __future__ import annotations

import warnings

import pytest

from archdsl import load_string
from archdsl.diagnostics import ArchError
from archdsl.ops import all_ops

torch = pytest.importorskip("torch")

# The attributes each op needs besides the one swept (given by keyword, so the swept one replaces
# its own), on a 4×8×8 input. An op added to the registry with attributes needs a line here
# (test_every_op_with_attributes_is_swept says so).
BASE: dict[str, dict[str, str]] = {
    "conv": {"out": "4", "kernel": "3"}, "deconv": {"out": "4", "kernel": "3"}, "dwconv": {"kernel": "3"},
    "pwconv": {"out": "4"}, "local": {"out": "4", "kernel": "3"}, "linear": {"out": "4", "dim": "0"},
    "maxpool": {"kernel": "2"}, "avgpool": {"kernel": "2"}, "l2pool": {"kernel": "2"},
    "adaptive_avgpool": {"size": "2"}, "adaptive_maxpool": {"size": "2"}, "bn": {}, "frozen_bn": {},
    "layernorm": {}, "l2norm": {}, "layer_scale": {}, "leaky": {}, "lrn": {}, "maxout": {"p": "2"},
    "dropout": {}, "drop_path": {"p": "0.1"}, "scale": {"factor": "2"}, "shuffle": {"groups": "2"},
    "reorg": {"stride": "2"}, "space_to_depth": {"block": "2"}, "pixel_unshuffle": {"block": "2"},
    "upsample": {"scale": "2"}, "softmax": {}, "split": {"sections": "2"}, "crop": {"offset": "1", "size": "[4, 4]"},
    "permute": {"dims": "[0, 2, 1]"}, "reshape": {"shape": "[4, 64]"}, "concat": {}, "fuse": {},
}
TWO_INPUTS = ("concat", "fuse")  # written as a call on two tensors; split as the concat of its parts

EDGES = ["0", "-1", "-0.0", "1e-320", "1e300", "-1e300", "2**70", "3.4e38", "1e39", "0.5", "1", "2", "7",
         "2**63 - 1", "10**12", "2**31", "true", "[1, 2]", "[0, 0]", "-1e20"]

OPS = sorted((op for op in all_ops() if op.Attrs.model_fields), key=lambda op: op.name)


def test_every_op_with_attributes_is_swept() -> None:
    assert sorted(op.name for op in OPS) == sorted(BASE)


def _refused_or_runs(op: str, attributes: dict[str, str]) -> bool:
    """Whether the network of one `op` layer with `attributes` built and ran (False: refused)."""
    from archdsl.compiler.backends.torch_codegen import build_module

    written = ", ".join(f"{k}={v}" for k, v in attributes.items())
    chain = f"{op}(image, image{', ' if written else ''}{written})" if op in TWO_INPUTS \
        else f"concat(split(image, {written}))" if op == "split" else f"image -> {op}({written})"
    try:
        net = load_string(f"network n {{\n    input image: 4x8x8\n    {chain} -> output y\n}}").network()
    except ArchError:
        return False  # refused where the spec says it
    report = net.analyze()
    if report.params > 10**7 or report.macs > 10**9:
        return False  # analyzed exactly; a module of that size is not built here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = build_module(net).eval()
        with torch.no_grad():
            module(torch.randn(1, 4, 8, 8))
    return True


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_attribute_at_the_edges_is_refused_or_builds_and_runs(op: type) -> None:
    assert _refused_or_runs(op.name, BASE[op.name]), "the sweep's base call is refused"
    for field in op.Attrs.model_fields:
        for value in EDGES:
            _refused_or_runs(op.name, {**BASE[op.name], field: value})

"""reshape/view, permute, crop and the three space-to-depth orders, against their sources:
torchvision's SSD head (view → permute → reshape), DCGAN's projection, Caffe's crop layer (FCN's
skip crops: test_fcn.py), darknet's reorg_cpu ported line by line, and ONNX's
reference SpaceToDepth (TensorFlow's order)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from archdsl.diagnostics import ArchError

from .test_receptive import agree, field

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from .op_reference import compare, spec_network  # noqa: E402

# ---------------------------------------------------------------------------------------------
# reshape, permute


class _SSDClassificationHead(nn.Module):
    """torchvision's SSDClassificationHead over two levels (its forward: view(N, -1, K, H, W),
    permute(0, 3, 4, 1, 2), reshape(N, -1, K), then cat over levels)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.detection.ssd import SSDClassificationHead

        self.head = SSDClassificationHead(in_channels=[8, 16], num_anchors=[4, 6], num_classes=5)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.head([a, b])  # type: ignore[no-any-return]


SSD_HEAD = """
network ssd_head(k=5) {
    input level0: 8x6x6
    input level1: 16x3x3
    a = level0 -> conv(4 * k, 3) as head.module_list.0 -> reshape(-1, k, 6, 6) -> permute(2, 3, 0, 1)
               -> reshape(-1, k)
    b = level1 -> conv(6 * k, 3) as head.module_list.1 -> view(-1, k, 3, 3) -> permute(2, 3, 0, 1)
               -> view(-1, k)
    concat(a, b) -> output cls_logits
}
"""


def test_ssd_head_concatenates_levels_like_torchvision() -> None:
    result = compare(SSD_HEAD, _SSDClassificationHead())
    assert result.matched_by == "name"
    # 6·6·4 + 3·3·6 = 198 boxes of 5 scores (SSD's 8732×91 at full size, Liu et al. 2016 Table 7)
    assert result.network.output_shapes == {"cls_logits": (198, 5)}
    shapes = {n.name: n.out_shapes[0] for n in result.network.ir.nodes("op")}
    assert shapes["reshape"] == (4, 5, 6, 6) and shapes["permute"] == (6, 6, 4, 5)


class _Projection(nn.Module):
    """DCGAN's first layer: z projected by a matrix multiplication and reshaped into a 4-D tensor
    (Radford et al. 2015, Fig. 1: 4×4×1024; here 64 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(100, 64 * 4 * 4, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.project(z).view(-1, 64, 4, 4)))


def test_dcgan_projection_reshapes_to_a_feature_map() -> None:
    spec = ("network g {\n    input z: [100]\n    z -> linear(64 * 4 * 4, bias=false) as project -> reshape(64, 4, 4)"
            " -> bn as bn -> relu -> output h\n}")
    result = compare(spec, _Projection())
    assert result.matched_by == "name"
    assert result.network.output_shapes == {"h": (64, 4, 4)}


def test_reshape_keeps_minus_one_in_the_generated_code() -> None:
    from archdsl.compiler.backends.torch_codegen import generate_source

    net = spec_network(SSD_HEAD)
    src = generate_source(net)
    # the temporary's name is the emitter's choice; the batch size read at run time and the -1 are the point
    assert re.search(r"\.reshape\((\w+)\.shape\[0\], -1, 5, 6, 6\)", src), src
    assert ".permute(0, 3, 4, 1, 2)" in src  # the batch dimension stays first


def test_reshape_and_permute_take_a_list_or_a_shape_literal() -> None:
    def out(call: str) -> tuple[int, ...]:
        net = spec_network(f"network t {{\n    input x: 8x4x4\n    x -> {call} -> output y\n}}")
        return net.output_shapes["y"]

    assert out("reshape(8, 16)") == out("reshape([8, 16])") == out("reshape(8x16)") == out("view(-1, 16)") == (8, 16)
    assert out("permute(1, 2, 0)") == out("permute([1, 2, 0])") == out("permute(-2, -1, 0)") == (4, 4, 8)


# ---------------------------------------------------------------------------------------------
# crop


class _CaffeCrop(nn.Module):
    """Caffe's CropLayer (BVLC/caffe @9b89154, src/caffe/layers/crop_layer.cpp) with axis: 2: every
    dimension from 2 on takes the size of bottom[1] and starts at `offset` in bottom[0]."""

    def __init__(self, offsets: tuple[int, int]) -> None:
        super().__init__()
        self.offsets = offsets

    def forward(self, data: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        out = data
        for axis, offset in zip((2, 3), self.offsets, strict=True):
            assert data.shape[axis] - offset >= like.shape[axis]  # Caffe's CHECK_GE
            out = out.narrow(axis, offset, like.shape[axis])
        return out


@pytest.mark.parametrize("offset", [(0, 0), (5, 5), (2, 7)])
def test_crop_is_caffes(offset: tuple[int, int]) -> None:
    spec = (f"network t {{\n    input x: 3x20x20\n    input like: 7x9x11\n"
            f"    crop(x, like, offset=[{offset[0]}, {offset[1]}]) -> output y\n}}")
    result = compare(spec, _CaffeCrop(offset))
    assert result.network.output_shapes == {"y": (3, 9, 11)}


def test_crop_to_a_size() -> None:
    net = spec_network("network t {\n    input x: 3x20x20\n    x -> crop(2, size=[9, 11]) -> output y\n}")
    x = torch.randn(1, 3, 20, 20)
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.testing.assert_close(build_module(net)(x), x[:, :, 2:11, 2:13], rtol=0, atol=0)


# FCN's crops on the full networks (specs/fcn.arch): tests/test_fcn.py.


def test_crop_reference_lends_only_its_size() -> None:
    # The second input of crop gives the window's size, not data: the field is the first input's,
    # moved by the offset (start + offset·jump), whatever the reference's own field.
    net = spec_network("network t {\n    input image: 1x64x64\n    a = image -> conv(1, 3, stride=2)\n"
                       "    b = image -> conv(1, 7, stride=4)\n    crop(a, b, offset=[3, 1]) -> output y\n}")
    f = field(net, "y")
    assert f.size == (3, 3) and f.stride == (2, 2) and f.start == (6, 2) and not f.misaligned


def test_crop_field_matches_the_empirical_support() -> None:
    net = spec_network("network t {\n    input image: 1x40x40\n"
                       "    image -> conv(2, 3, stride=2, pad=0) -> crop(3, size=[10, 10]) -> conv(2, 3)"
                       " -> output y\n}")
    agree(net, ["y"])


# ---------------------------------------------------------------------------------------------
# space to depth: darknet's reorg, TensorFlow's (ONNX) order, PyTorch's pixel_unshuffle


def darknet_reorg(x: np.ndarray, w: int, h: int, c: int, batch: int, stride: int, forward: int) -> np.ndarray:
    """reorg_cpu from darknet (pjreddie/darknet @f6afaab, src/blas.c), line by line."""
    out = np.zeros_like(x)
    out_c = c // (stride * stride)
    for b in range(batch):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2 = k % out_c
                    offset = k // out_c
                    w2 = i * stride + offset % stride
                    h2 = j * stride + offset // stride
                    out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * b))
                    if forward:
                        out[out_index] = x[in_index]
                    else:
                        out[in_index] = x[out_index]
    return out


def _run(spec_call: str, shape: tuple[int, int, int], x: torch.Tensor) -> torch.Tensor:
    from archdsl.compiler.backends.torch_codegen import build_module

    c, h, w = shape
    net = spec_network(f"network t {{\n    input x: {c}x{h}x{w}\n    x -> {spec_call} -> output y\n}}")
    return build_module(net)(x)  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", [(64, 26, 26), (8, 6, 10), (4, 2, 2)])
def test_reorg_is_darknets_order(shape: tuple[int, int, int]) -> None:
    # darknet's forward_reorg_layer (src/reorg_layer.c) calls
    # reorg_cpu(net.input, l.w, l.h, l.c, l.batch, l.stride, 0, l.output): the input's own sizes
    # and forward = 0; the output buffer is then read as (C·s²)×(H/s)×(W/s). (64×26×26 is YOLOv2's
    # passthrough: darknet prints `reorg /2 26 x 26 x 64 -> 13 x 13 x 256`.)
    c, h, w = shape
    batch = 2
    x = np.arange(batch * c * h * w, dtype=np.float32)
    expected = darknet_reorg(x, w, h, c, batch, 2, 0).reshape(batch, c * 4, h // 2, w // 2)
    got = _run("reorg(2)", shape, torch.from_numpy(x.reshape(batch, c, h, w)))
    assert np.array_equal(got.numpy(), expected)


def test_space_to_depth_is_tensorflows_and_onnxs_order() -> None:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)
    graph = helper.make_graph([node], "s2d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx_s2d = ReferenceEvaluator(helper.make_model(graph))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 6)).astype(np.float32)
    (expected,) = onnx_s2d.run(None, {"x": x})
    got = _run("space_to_depth(2)", (3, 8, 6), torch.from_numpy(x)).numpy()
    assert np.array_equal(got, expected)
    # tf.nn.space_to_depth's definition, written out: output depth (dy·b + dx)·C + c
    c = 3
    for dy in range(2):
        for dx in range(2):
            assert np.array_equal(got[:, (dy * 2 + dx) * c:(dy * 2 + dx + 1) * c], x[:, :, dy::2, dx::2])


def test_the_three_orders_differ_and_pixel_unshuffle_is_torchs() -> None:
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(_run("pixel_unshuffle(2)", (8, 4, 4), x), nn.PixelUnshuffle(2)(x), rtol=0, atol=0)
    outs = [_run(f"{op}(2)", (8, 4, 4), x) for op in ("reorg", "space_to_depth", "pixel_unshuffle")]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2]) and not torch.equal(outs[1], outs[2])


def test_reorg_field_is_global_because_darknet_reads_far_rows() -> None:
    # For YOLOv2's 64×26×26 some channel of output row 0 reads input row 25 (see darknet_reorg):
    # the field of an output row is the whole height, so the pass says global.
    x = np.arange(64 * 26 * 26)
    out = darknet_reorg(x, 26, 26, 64, 1, 2, 0).reshape(256, 13, 13)
    rows = {int(v) // 26 % 26 for v in out[:, 0, 0]}
    assert 25 in rows
    net = spec_network("network t {\n    input image: 64x26x26\n    image -> reorg -> output y\n}")
    assert field(net, "y").global_
    s2d = spec_network("network t {\n    input image: 64x26x26\n    image -> space_to_depth -> output y\n}")
    assert field(s2d, "y").size == (2, 2) and field(s2d, "y").stride == (2, 2)


def test_errors_are_diagnostics() -> None:
    for call, fragment in (("reorg(2)", "channels are not divisible"), ("permute(0, 2, 3, 1)", "batch dimension"),
                           ("reshape(7, -1)", "not a multiple of 7"), ("crop(3, size=[8, 8])", "does not fit")):
        with pytest.raises(ArchError) as exc:
            spec_network(f"network t {{\n    input x: 6x10x10\n    x -> {call} -> output y\n}}")
        diag = exc.value.diagnostics[0]
        assert diag.code == "E0305" and fragment in f"{diag.message} {diag.hint}", (call, diag)


def test_centred_crop_is_unets_copy_and_crop() -> None:
    # Ronneberger et al. 2015, Fig. 1: the first level's 568×568 map is cropped to 392×392 for the
    # last up-step, (568 − 392) / 2 = 88 on each side.
    net = spec_network("network t {\n    input x: 64x568x568\n    input up: 64x392x392\n"
                       "    crop(x, up, offset=center) -> output y\n}")
    assert net.output_shapes == {"y": (64, 392, 392)} and field(net, "y").start == (88, 88)
    small = "network t {\n    input x: 3x11x12\n    input like: 5x6x7\n    crop(x, like, center) -> output y\n}"
    result = compare(small, _CaffeCrop(((11 - 6) // 2, (12 - 7) // 2)))
    x = torch.randn(1, 3, 15, 16)  # the offset follows the inputs at run time
    torch.testing.assert_close(result.generated(x, torch.randn(1, 5, 6, 7)), x[:, :, 4:10, 4:11], rtol=0, atol=0)

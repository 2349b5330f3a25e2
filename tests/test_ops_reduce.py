"""maxout and l2pool (FaceNet's NN1 and NN2) against their sources: pylearn2's Maxout layer (the
maxout paper's own code) ported line by line, and torch's LPPool2d with p = 2 plus the L2 norm
written out over each zero-padded window."""

from __future__ import annotations

import pytest

from .test_receptive import agree, field

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from .op_reference import compare, spec_network  # noqa: E402


def pylearn2_maxout(z: torch.Tensor, pool_size: int) -> torch.Tensor:
    """Maxout.fprop of pylearn2 (lisa-lab/pylearn2 @af81e5c, pylearn2/models/maxout.py) with
    pool_stride = pool_size, over dim 1: unit g is the max of pieces g·k … g·k + k − 1."""
    detector_layer_dim = z.shape[1]
    last_start = detector_layer_dim - pool_size
    p = None
    for i in range(pool_size):
        cur = z[:, i:last_start + i + 1:pool_size]
        p = cur if p is None else torch.maximum(cur, p)
    assert p is not None
    return p


class _MaxoutFC(nn.Module):
    """FaceNet NN1's `fc maxout p=2` (Schroff et al. 2015, Table 1), narrowed: 2·32 pieces → 32 units."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4 * 3 * 3, 2 * 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pylearn2_maxout(self.fc(torch.flatten(x, 1)), 2)


def test_maxout_is_pylearn2s() -> None:
    spec = "network t {\n    input x: 4x3x3\n    x -> flatten -> linear(2 * 32) as fc -> maxout(2) -> output y\n}"
    result = compare(spec, _MaxoutFC())
    assert result.matched_by == "name"
    assert result.network.output_shapes == {"y": (32,)}


class _MaxoutConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pylearn2_maxout(self.conv(x), 3)


def test_maxout_over_feature_map_channels() -> None:
    spec = "network t {\n    input x: 3x5x5\n    x -> conv(12, 3) as conv -> maxout(3) -> output y\n}"
    result = compare(spec, _MaxoutConv())
    assert result.network.output_shapes == {"y": (4, 5, 5)}
    assert field(result.network, "y").size == (3, 3)  # per position: the conv's field


class _InceptionPoolBranch(nn.Module):
    """FaceNet NN2's pool branch `L2, 3×3, 1` then a 1×1 projection (Schroff et al. 2015, Table 2,
    inception (3b): pool proj 64p): an L2 pool that keeps the size, so zero padding 1."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.LPPool2d(2, kernel_size=3, stride=1)
        self.proj = nn.Conv2d(6, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(F.pad(x, (1, 1, 1, 1))))


def test_l2pool_is_lppool2d_with_zero_padding() -> None:
    spec = ("network t {\n    input x: 6x9x9\n"
            "    x -> l2pool(3, stride=1, pad=1) as pool -> conv(8, 1) as proj -> output y\n}")
    result = compare(spec, _InceptionPoolBranch())
    assert result.network.output_shapes == {"y": (8, 9, 9)}


@pytest.mark.parametrize(("call", "kernel", "stride", "pad", "ceil"), [
    ("l2pool(3, stride=1, pad=1)", 3, 1, 1, False),
    ("l2pool(3, stride=2)", 3, 2, 0, False),
    ("l2pool(2, ceil_mode=true)", 2, 2, 0, True),
])
def test_l2pool_is_the_l2_norm_of_each_window(call: str, kernel: int, stride: int, pad: int, ceil: bool) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = spec_network(f"network t {{\n    input x: 2x9x9\n    x -> {call} -> output y\n}}")
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    padded = F.pad(x, (pad,) * 4)
    windows = F.unfold(padded, kernel, stride=stride) if not ceil else None
    got = build_module(net).double()(x)
    assert tuple(got.shape[1:]) == net.output_shapes["y"]
    if windows is not None:  # sqrt(Σ x²) over every window, written out
        expected = windows.view(1, 2, kernel * kernel, -1).pow(2).sum(2).sqrt().view(got.shape)
        torch.testing.assert_close(got, expected)
    else:  # ceil_mode: the extra window is cut at the border (PyTorch's pooling rule)
        torch.testing.assert_close(got, nn.LPPool2d(2, kernel, stride, ceil_mode=True)(x))


def test_l2pool_field_matches_the_empirical_support() -> None:
    net = spec_network("network t {\n    input image: 1x32x32\n"
                       "    image -> conv(2, 3) -> l2pool(3, stride=2, pad=1) -> l2pool(2) -> output y\n}")
    f = field(net, "y")
    # conv 3 → r 3 (j 1); l2pool 3/2 → 3 + (3−1)·1 = 5 (j 2); l2pool 2/2 → 5 + (2−1)·2 = 7 (j 4)
    assert f.size == (7, 7) and f.stride == (4, 4)
    agree(net, ["y"])

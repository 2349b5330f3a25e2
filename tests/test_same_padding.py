"""TensorFlow's "same" padding (`pad=same`): where it depends on the input's size (stride 2, or an
even kernel) a generated module works it out from each input it is given (`pad_same`, in
`Conv2dSame` and `MaxPool2dSame`), as timm's layers of those names do, so that a module built for
one size pads any other as TensorFlow would; at stride 1 with an odd kernel it is torch's own
symmetric padding. A convolution is built through `conv2d_same`, which chooses between the two as
timm's `create_conv2d(padding="same")` does. Compared with timm's layers, which effdet builds
through `create_conv2d` and `create_pool2d`."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_source

from .canonical import CANONICAL
from .conftest import network

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _helpers() -> dict[str, object]:
    """The generated files' helpers, taken from the source of a network that uses them."""
    source = generate_source(api.load_string(SAME, "t.arch").network())
    namespace: dict[str, object] = {}
    exec(compile(source, "generated.py", "exec"), namespace)
    return namespace


SAME = """
network net {
    input image: 3x16x16
    image -> conv(4, 3, stride=2, pad=same) as down -> conv(4, 3, pad=same) as keep
          -> conv(4, 1, stride=2, pad=same) as point -> maxpool(3, stride=2, pad=same) as pool
          -> avgpool(3, stride=2, pad=same) as average -> output y
}
"""


def test_layers_padded_same_are_built_as_timm_builds_them() -> None:
    source = generate_source(api.load_string(SAME, "t.arch").network())
    assert "self.down = conv2d_same(3, 4, kernel_size=3, stride=2)\n" in source
    assert "self.keep = conv2d_same(4, 4, kernel_size=3)\n" in source  # stride 1, odd: static, chosen inside
    assert "self.point = nn.Conv2d(4, 4, kernel_size=1, stride=2)\n" in source  # a 1×1 window never pads
    assert "self.pool = MaxPool2dSame(kernel_size=3, stride=2)\n" in source
    assert "self.average = AvgPool2dSame(kernel_size=3, stride=2)\n" in source
    assert "F.pad" not in source.split("class Net")[1]  # the layers pad themselves


def test_a_file_holds_the_helpers_its_layers_use_and_those_they_use() -> None:
    source = generate_source(api.load_string("""
network net {
    input image: 3x16x16
    image -> conv(4, 3, stride=2, pad=same) -> output y
}""", "t.arch").network())
    assert [line.split("(")[0] for line in source.splitlines() if line.startswith(("def ", "class "))] == [
        "def pad_same", "class Conv2dSame", "def conv2d_same", "class Net"]  # each after those it uses


@pytest.mark.parametrize("size", [5, 8, 9, 16, 17])
@pytest.mark.parametrize(("kernel", "stride", "dilation"), [(3, 2, 1), (5, 2, 1), (2, 2, 1), (3, 1, 2), (4, 1, 1),
                                                            (1, 2, 1), (3, 1, 1), (5, 1, 1)])
def test_same_padding_is_timm_s(size: int, kernel: int, stride: int, dilation: int) -> None:
    timm_layers = pytest.importorskip("timm.layers")
    timm_pools = pytest.importorskip("timm.layers.pool2d_same")
    helpers = _helpers()
    torch.manual_seed(0)
    theirs = timm_layers.create_conv2d(3, 4, kernel, stride=stride, dilation=dilation, padding="same", bias=True)
    ours = helpers["conv2d_same"](3, 4, kernel, stride=stride, dilation=dilation)  # type: ignore[operator]
    # The same choice: torch's own layer where the padding is fixed, a padding one where it is not.
    assert (type(ours).__name__, ours.padding) == (type(theirs).__name__, theirs.padding)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, size, size + 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
        if dilation == 1:
            pool = helpers["MaxPool2dSame"](kernel, stride)  # type: ignore[operator]
            torch.testing.assert_close(pool(x), timm_pools.MaxPool2dSame(kernel, stride)(x))
            average = helpers["AvgPool2dSame"](kernel, stride)  # type: ignore[operator]
            torch.testing.assert_close(average(x), timm_pools.AvgPool2dSame(kernel, stride)(x))


def test_efficientdet_built_for_one_size_computes_effdet_s_at_another() -> None:
    """EfficientDet-D0 generated at 256 × 256 (every level even: each stride-2 layer pads 0, 1), run
    at 320 × 320, where the 5 × 5 level pads 1, 1 into P7 (3 × 3): the outputs are those of effdet's
    model configured for 320, with the same random weights (effdet pads with timm's Conv2dSame and
    MaxPool2dSame)."""
    pytest.importorskip("effdet")
    case = next(c for c in CANONICAL if c.network == "efficientdet_d0")
    net = network(case.file, case.network, (3, 256, 256))
    torch.manual_seed(0)
    ref = case.build((3, 320, 320)).eval()
    gen = build_module(net).eval()
    gen.load_state_dict({k: v for k, v in case.state_dict(ref).items()})
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        expected = case.outputs(ref, x)
        got = list(gen(x).values())
    assert [tuple(g.shape) for g in got] == [tuple(e.shape) for e in expected]
    assert expected[4].shape[-2:] == (3, 3)  # P7's class outputs: ceil(5 / 2)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)

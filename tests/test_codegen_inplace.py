"""The generated module overwrites a value in place where torchvision's models do — an activation
(`nn.ReLU(inplace=True)`) and a sum (`out += identity`) whose input dies there: made by a layer of
the same class or of a block inside it whose output may be overwritten (`Op.output_overwritable`:
conv, bn, linear, add, concat, and the activations whose gradient reads their input only, such as
SiLU), and read by nothing else, at every instance of the block — and nowhere else. In place or not,
the module computes exactly the same outputs and gradients: each is compared, bit for bit, with the
module generated with every in-place form turned off."""

from __future__ import annotations

import re
from unittest import mock

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import TorchCodegen, generate_source

from .small_input import buildable, small_input

torch = pytest.importorskip("torch")
nn = torch.nn

_NET = "{blocks}network toy {{\n    input image: 3x8x8\n{body}\n}}\n"

# (what it checks, network body, activations in place, activations in all, `+=` statements)
CASES = [
    ("after conv", "    image -> conv(4, 3) -> relu -> output y", 1, 1, 0),
    ("after bn, after add", "    a = image -> conv(4, 3, pad=1) -> bn -> relu\n"
     "    b = a + (a -> conv(4, 3, pad=1))\n    b -> relu -> output y", 2, 2, 1),
    ("after linear", "    image -> flatten -> linear(8) -> relu -> output y", 1, 1, 0),
    ("after concat", "    concat(image -> conv(4, 1), image -> conv(4, 1)) -> relu6 -> output y", 1, 1, 0),
    ("in place by its own module", "    image -> conv(4, 3) -> silu -> output y", 1, 1, 0),
    ("no in-place form", "    image -> conv(4, 3) -> sigmoid -> output y", 0, 1, 0),
    ("input read again", "    a = image -> conv(4, 3)\n    b = (a -> relu) + a\n    b -> output y", 0, 1, 0),
    ("input is an output too", "    a = image -> conv(4, 3)\n    a -> output y\n    a -> relu -> output z", 0, 1, 0),
    ("producer's gradient reads its output", "    image -> conv(4, 3) -> sigmoid -> relu -> output y", 0, 2, 0),
    ("network input", "    image -> relu -> conv(4, 3) -> output y", 0, 1, 0),
    ("shared module", "    act = shared relu\n"
     "    image -> conv(4, 3) -> act -> conv(4, 3) -> act -> output y", 0, 1, 0),
    # torchvision's FusedMBConv: `result += input` onto a SiLU, itself in place on the bn.
    ("the sum onto a silu", "    a = image -> conv(3, 3, pad=1) -> bn -> silu\n    b = image + a\n"
     "    b -> output y", 1, 1, 1),
    ("never onto a relu, whose gradient reads its output", "    a = image -> conv(3, 3, pad=1) -> relu\n"
     "    b = image + a\n    b -> output y", 1, 1, 0),
    ("the sum into the operand that dies", "    a = image -> conv(3, 3, pad=1) -> bn\n    b = image + a\n"
     "    b -> output y", 0, 0, 1),
    # A drop-path's output is its input itself at inference: overwritten only where that input may be.
    ("the sum through a drop path", "    a = image -> conv(3, 3, pad=1) -> bn -> drop_path(0.5)\n    b = image + a\n"
     "    b -> output y", 0, 0, 1),
    ("never through a drop path whose input is read again", "    a = image -> conv(3, 3, pad=1) -> bn\n"
     "    b = (a -> drop_path(0.5)) + a\n    b -> output y", 0, 0, 0),
    ("an activation through a drop path", "    image -> conv(4, 3) -> drop_path(0.5) -> relu -> output y", 1, 1, 0),
    ("never through a drop path of a network input", "    image -> drop_path(0.5) -> relu -> output y", 0, 1, 0),
    ("never into the operand it broadcasts", "    g = image -> avgpool(global) -> conv(4, 1)\n"
     "    b = g + (image -> conv(4, 3, pad=1) -> relu)\n    b -> output y", 1, 1, 0),
]

BLOCK_CASES = [
    # A block's input belongs to its caller: never overwritten, though the caller reads it no more.
    ("block input", "block act_conv(c) {\n    in -> relu -> conv(c, 3)\n}\n",
     "    image -> conv(4, 3) -> act_conv(4) -> output y", 0, 1, 0),
    # Made by a child block's batch norm (torchvision's Conv2dNormActivation then `nn.ReLU(inplace=True)`).
    ("made by a child block", "block cb(c) {\n    in -> conv(c, 3) -> bn\n}\n",
     "    image -> cb(4) -> relu -> output y", 1, 1, 0),
    ("residual block", "block res(c) {\n    y = in -> conv(c, 3, pad=1) -> bn -> relu -> conv(c, 3, pad=1) -> bn\n"
     "    in + y -> relu\n}\n", "    image -> conv(4, 1) -> res(4) -> res(4) -> output y", 4, 4, 1),
]


# EfficientNet's MBConv: a residual branch ending in a child block (torchvision's Conv2dNormActivation
# with activation_layer=None), then a drop path, summed into the branch (`result += input`).
_BRANCH = """block cba(c, act=relu) {
    in -> conv(c, 3, pad=1) as 0 -> bn as 1 -> if act != none { act as 2 }
}
block res(c, act=none) {
    y = in -> cba(c, act=act)
    (y -> drop_path(0.5)) + in
}
"""
BLOCK_CASES += [
    ("residual branch ending in a child block's bn", _BRANCH,
     "    image -> conv(4, 1) -> res(4) -> res(4) -> output y", 0, 0, 1),
    # One instance's branch ends in a ReLU, whose output its gradient reads: no instance of the
    # class sums in place, so that all read alike and share it.
    ("one instance's branch ends in a relu", _BRANCH,
     "    image -> conv(4, 1) -> res(4) -> res(4, act=relu) -> output y", 1, 1, 0),
]


def _source(blocks: str, body: str) -> str:
    return _NET.format(blocks=blocks, body=body)


def _activations(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if type(m).__module__.startswith("torch.nn.modules.activation")]


def _out_of_place(net: api.Network) -> nn.Module:
    """The module generated with every in-place form turned off."""
    with mock.patch.object(TorchCodegen, "_dies_here", lambda self, node, k: False):
        return api.build(net)


def _same_as_out_of_place(net: api.Network, module: nn.Module, inputs: list[torch.Tensor]) -> None:
    """Outputs and gradients of `module` equal those of the module generated out of place."""
    reference = _out_of_place(net)
    reference.load_state_dict(module.state_dict())
    assert not any(getattr(m, "inplace", False) for m in reference.modules())
    results = []
    for m in (module, reference):
        m.train()
        xs = [x.clone().requires_grad_() for x in inputs]
        torch.manual_seed(1)  # the same dropout masks
        y = m(*xs)
        ys = list(y.values()) if isinstance(y, dict) else [y]
        sum((t * torch.linspace(-1, 1, t.numel()).reshape(t.shape)).sum() for t in ys).backward()
        results.append(([t.detach() for t in ys], [x.grad for x in xs], [p.grad for p in m.parameters()],
                        list(m.state_dict().values())))  # batch norm's running statistics too
    (outs, in_grads, grads, state), (ref_outs, ref_in_grads, ref_grads, ref_state) = results
    for a, b in zip([*outs, *in_grads, *grads, *state], [*ref_outs, *ref_in_grads, *ref_grads, *ref_state],
                    strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("what", "blocks", "body", "in_place", "total", "sums"),
                         [(w, "", b, i, t, s) for w, b, i, t, s in CASES] + BLOCK_CASES,
                         ids=[c[0] for c in CASES + BLOCK_CASES])
def test_in_place_only_where_safe(what: str, blocks: str, body: str, in_place: int, total: int, sums: int) -> None:
    net = api.load_string(_source(blocks, body)).network()
    torch.manual_seed(0)
    module = api.build(net)
    acts = _activations(module)
    assert (sum(getattr(m, "inplace", False) for m in acts), len(acts)) == (in_place, total)
    assert len(re.findall(r"^\s+\w+ \+= \w+$", generate_source(net), re.M)) == sums
    _same_as_out_of_place(net, module, [torch.randn(2, 3, 8, 8)])


@pytest.mark.parametrize(("file", "name"), [("resnet.arch", "resnet18"), ("resnet.arch", "resnet50"),
                                            ("mobilenet_v3.arch", "mobilenet_v3_small"),
                                            ("shufflenet_v1.arch", "shufflenet_v1_g3"),
                                            ("squeezenet.arch", "squeezenet1_1")])
def test_zoo_in_place_changes_no_number(file: str, name: str) -> None:
    shape = small_input(file, name)
    net = buildable(file, name, shape)
    torch.manual_seed(0)
    module = api.build(net)
    assert any(getattr(m, "inplace", False) for m in _activations(module))
    _same_as_out_of_place(net, module, [torch.randn(2, *shape)])


def test_resnet_reads_like_torchvision() -> None:
    """torchvision's Bottleneck: `nn.ReLU(inplace=True)` and `out += identity`, one class still."""
    net = buildable("resnet.arch", "resnet50")
    source = generate_source(net)
    block = source[source.index("class Bottleneck("):source.index("class Resnet50(")]
    assert block.count("nn.ReLU(inplace=True)") == 3 and "nn.ReLU()" not in block
    assert re.search(r"^ {8}(\w+) \+= x\n {8}\1 = self\.relu_2\(\1\)$", block, re.M)


@pytest.mark.parametrize(("second", "sums"), [("none", 1), ("relu", 0)])
def test_instances_of_a_class_agree(second: str, sums: int) -> None:
    """Whether a sum overwrites a value made in a child block is decided for the block's instances
    together: both in place, or (one instance's branch ends in a ReLU) neither, and one class."""
    body = f"    image -> conv(4, 1) -> res(4) -> res(4, act={second}) -> output y"
    source = generate_source(api.load_string(_source(_BRANCH, body)).network())
    assert re.findall(r"^class (Res\w*)\(", source, re.M) == ["Res"]
    forward = source[source.index("class Res("):source.index("class Toy(")]
    assert len(re.findall(r"^ {8}cba \+= x$", forward, re.M)) == sums
    assert len(re.findall(r"^ {8}x = cba \+ x$", forward, re.M)) == 1 - sums

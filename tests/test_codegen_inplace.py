"""The generated module applies ReLU in place where torchvision does — when nothing else reads its
input and that input's producer allows it (`Op.output_overwritable`: conv, bn, add, linear) — and
nowhere else. In place or not, the module computes exactly the same outputs and gradients: each
module is compared, bit for bit, with itself with every ReLU made out of place."""

from __future__ import annotations

import copy

import pytest

import archdsl.api as api

from .small_input import buildable, small_input

torch = pytest.importorskip("torch")
nn = torch.nn

_NET = "network toy {{\n    input image: 3x8x8\n{body}\n}}\n"

# (what it checks, network body, ReLUs in place, ReLUs in all)
CASES = [
    ("after conv", "    image -> conv(4, 3) -> relu -> output y", 1, 1),
    ("after bn and after add", "    a = image -> conv(4, 3) -> bn -> relu\n"
     "    b = a + (a -> conv(4, 3))\n    b -> relu -> output y", 2, 2),
    ("after linear", "    image -> flatten -> linear(8) -> relu -> output y", 1, 1),
    ("input read again", "    a = image -> conv(4, 3)\n    b = (a -> relu) + a\n    b -> output y", 0, 1),
    ("input is an output too", "    a = image -> conv(4, 3)\n    a -> output y\n    a -> relu -> output z", 0, 1),
    ("producer's gradient reads its output", "    image -> conv(4, 3) -> sigmoid -> relu -> output y", 0, 1),
    ("network input", "    image -> relu -> conv(4, 3) -> output y", 0, 1),
    ("shared module", "    act = shared relu\n    image -> conv(4, 3) -> act -> conv(4, 3) -> act -> output y", 0, 1),
]


def _relus(module: nn.Module) -> list[nn.ReLU]:
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


def _same_with_and_without_in_place(module: nn.Module, inputs: list[torch.Tensor]) -> None:
    """Outputs and parameter gradients of `module` equal those of its copy without in-place ReLUs."""
    reference = copy.deepcopy(module)
    for relu in _relus(reference):
        relu.inplace = False
    results = []
    for m in (module, reference):
        m.train()
        xs = [x.clone().requires_grad_() for x in inputs]
        torch.manual_seed(1)  # the same dropout masks
        y = m(*xs)
        ys = list(y.values()) if isinstance(y, dict) else [y]
        sum((t * torch.linspace(-1, 1, t.numel()).reshape(t.shape)).sum() for t in ys).backward()
        results.append(([t.detach() for t in ys], [x.grad for x in xs], [p.grad for p in m.parameters()]))
    (outs, in_grads, grads), (ref_outs, ref_in_grads, ref_grads) = results
    for a, b in zip([*outs, *in_grads, *grads], [*ref_outs, *ref_in_grads, *ref_grads], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("what", "body", "in_place", "total"), CASES, ids=[c[0] for c in CASES])
def test_relu_in_place_only_where_safe(what: str, body: str, in_place: int, total: int) -> None:
    net = api.load_string(_NET.format(body=body)).network()
    torch.manual_seed(0)
    module = api.build(net)
    relus = _relus(module)
    assert (sum(r.inplace for r in relus), len(relus)) == (in_place, total)
    _same_with_and_without_in_place(module, [torch.randn(2, 3, 8, 8)])


@pytest.mark.parametrize(("file", "name"), [("resnet.arch", "resnet18"), ("shufflenet_v2.arch", "shufflenet_v2_x0_5"),
                                            ("squeezenet.arch", "squeezenet1_1")])
def test_zoo_in_place_relu_changes_no_number(file: str, name: str) -> None:
    shape = small_input(file, name)
    net = buildable(file, name, shape)
    torch.manual_seed(0)
    module = api.build(net)
    assert any(r.inplace for r in _relus(module))
    _same_with_and_without_in_place(module, [torch.randn(2, *shape)])

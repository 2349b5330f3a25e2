"""The smallest real extensions, one per extension point of docs/architecture.md: a new op (one
class in archdsl/ops/), a new analysis pass (one module in compiler/passes/) and a new backend (a
function of the IR and its description). Each is registered only for its test."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import archdsl.api as api
from archdsl.compiler.hierarchy import ScopeTree
from archdsl.compiler.passes import Analysis, Figure, Pass, registry
from archdsl.ir import IR
from archdsl.network import Compiled, CompiledNetwork
from archdsl.ops import Attrs, Geometry, Op, Shape, base, get_op
from archdsl.verify import verify_spec

# ---------------------------------------------------------------------------------------------
# A new op: what would be a module of archdsl/ops/ with this class in it.


class ToyAffineAttrs(Attrs):
    bias: bool = True


class ToyAffine(Op):
    """y = w·x (+ b), one weight (and bias) per channel: a depthwise 1×1 convolution."""

    name = "toy_affine"
    doc = "Per-channel scale and shift (test op)."
    Attrs = ToyAffineAttrs

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return int(ins[0][0] * (2 if a.bias else 1))

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return math.prod(outs[0])

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        return Geometry()  # 1×1: the field passes through

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str:
        c = ins[0][0]
        return f"nn.Conv2d({c}, {c}, 1, groups={c}, bias={a.bias})"


@pytest.fixture
def toy_op(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Op]]:
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_CANONICAL", dict(base._CANONICAL))
    yield base.register(ToyAffine)


TOY_NET = """
network toy {
    input image: 3x16x16
    image -> conv(8, 3) as c1 -> toy_affine as a -> conv(8, 3) as c2 -> output y
    expect a.params == 16 "8 channels × (weight + bias)"
    expect y.rf == 5 "two 3×3 convolutions around a 1×1"
}
"""


def test_a_new_op_is_analyzed_checked_and_compiled(toy_op: type[Op]) -> None:
    assert get_op("toy_affine") is ToyAffine
    spec = api.load_string(TOY_NET, file="toy.arch")
    report = spec.network().analyze()
    row = next(x for x in report.layers if x.name == "a")
    assert (row.op, row.output_shape, row.params, row.macs) == ("toy_affine", [8, 16, 16], 16, 8 * 16 * 16)
    assert all(c.ok for c in verify_spec(spec))
    torch = pytest.importorskip("torch")
    module = api.build(spec.network())
    assert sum(p.numel() for p in module.a.parameters()) == row.params  # torch counts what the op declares
    assert tuple(module(torch.randn(2, 3, 16, 16)).shape) == (2, 8, 16, 16)


def test_the_toy_op_is_gone_after_its_test() -> None:
    with pytest.raises(KeyError):
        get_op("toy_affine")


# ---------------------------------------------------------------------------------------------
# A new pass: what would be a module of compiler/passes/ with this class in it.


class DepthPass(Pass[int]):
    """Op nodes on the longest path from a network input to each node."""

    name = "toy_depth"

    def run(self, ir: IR, analysis: Analysis) -> dict[str, int]:
        depth: dict[str, int] = {}
        for node in ir:  # creation order is topological
            depth[node.name] = (node.kind == "op") + max((depth[p.node] for p in node.inputs), default=0)
        return depth

    @classmethod
    def figures(cls) -> tuple[Figure, ...]:
        return (Figure("depth", "op nodes on the longest path",
                       of_network=lambda ir, a: max(a[cls].values()),
                       of_nodes=lambda ir, a, target: a[cls][target.port.node]),)


@pytest.fixture
def toy_pass(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Pass[int]]]:
    monkeypatch.setattr(registry, "_PASSES", list(registry._PASSES))
    yield registry.register(DepthPass)


def test_a_new_pass_runs_and_its_figures_are_checkable(toy_pass: type[Pass[int]]) -> None:
    spec = api.load_string("""
network branches {
    input image: 3x8x8
    a = image -> conv(4, 3) as a1 -> relu as a2
    b = image -> conv(4, 1) as b1
    a + b -> relu as out -> output y
    expect depth == 4 "conv, relu, add, relu"
    expect b1.depth == 1
    expect out.depth == 4
}""", file="branches.arch")
    net = spec.network()
    assert net.analysis[DepthPass]["a2"] == 2
    checks = verify_spec(spec)
    assert [(c.quantity, c.computed, c.ok) for c in checks] == [
        ("depth", "4", True), ("b1.depth", "1", True), ("out.depth", "4", True)]


def test_a_figure_no_pass_registers_is_not_a_quantity() -> None:
    spec = api.load_string("network t { input x: 1x4x4 \n x -> relu as r -> output y \n expect depth == 1 }")
    (check,) = verify_spec(spec)
    assert not check.ok and check.diagnostic is not None and "depth" in check.diagnostic.message


# ---------------------------------------------------------------------------------------------
# A new backend: a function of a compiled network (the IR and its description), here an outline
# of the block hierarchy, built on the scope tree every backend shares.


def outline(net: CompiledNetwork) -> str:
    tree = ScopeTree.of_blocks(net.ir)
    lines = [f"{net.info.name} ({net.info.family})"]
    for node in net.ir.nodes("op"):
        depth = len(tree.chain(node.scope))
        lines.append("  " * (depth + 1) + f"{node.leaf}: {node.op_class.describe(node.attrs)}")
    return "\n".join(lines)


def test_a_new_backend_needs_only_the_ir_and_its_description() -> None:
    net = api.load_string("""
block unit(c) { in -> conv(c, 3) as conv -> relu as act }
network stack(width=4) {
    input image: 3x8x8
    image -> unit(width) as first -> unit(width) as second -> output y
}""", file="stack.arch").network()
    text = outline(Compiled(net.ir, net.info))
    assert text.splitlines() == [
        "stack (stack)",
        "    conv: conv 3×3, 4", "    act: relu",
        "    conv: conv 3×3, 4", "    act: relu",
    ]

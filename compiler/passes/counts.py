"""Parameters, buffers, MACs and other element-wise ops per node (conventions: analysis.md).

params: learnable tensors (what ``sum(p.numel() for p in m.parameters())`` counts; a shared
instance's weights once, at its first application, while its MACs count at every application);
buffers: BN running statistics; macs: conv/linear multiply-accumulates, the
``torch.utils.flop_counter`` total ÷ 2; other_ops: element-wise work outside ``macs``.
Inputs and outputs count zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archdsl.ir import IR, IRNode
from archdsl.ops import Shape

from .registry import Analysis, Figure, Pass, PerCall, register, summed, total


@dataclass(slots=True, unsafe_hash=True)
class Counts:
    """One node's counts (never changed once made: nodes making the same call share one)."""

    params: int
    buffers: int
    macs: int
    other_ops: int


NOTHING = Counts(0, 0, 0, 0)

_PER_CALL: PerCall[Counts] = PerCall()  # by (input shapes, output shapes, whether the node owns its weights)


def _counts(node: IRNode, ins: tuple[Shape, ...], own: bool) -> Counts:
    def make() -> Counts:
        op, attrs, outs, shapes = node.op_class, node.attrs, list(node.out_shapes), list(ins)
        return Counts(params=op.params(attrs, shapes) if own else 0, buffers=op.buffers(attrs, shapes) if own else 0,
                      macs=op.macs(attrs, shapes, outs), other_ops=op.other_ops(attrs, shapes, outs))

    return _PER_CALL.get(node, (ins, node.out_shapes, own), make)


@register
class CountPass(Pass[Counts]):
    name = "counts"
    network_fields = ("params", "buffers", "macs", "flops", "other_ops")
    layer_fields = ("params", "buffers", "macs")

    def run(self, ir: IR, analysis: Analysis) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        # Within one IR the key is made of identities: the IR keeps one tuple per distinct list of
        # shapes (in and out), and it and its nodes hold them and the attributes while this runs.
        here: dict[tuple[Any, ...], Counts] = {}
        in_shapes = ir.in_shapes_key
        for node in ir:
            if node.kind != "op":
                out[node.name] = NOTHING
                continue
            own = node.shares is None  # a shared instance's later applications reuse its first one's weights
            ins = in_shapes(node)
            key = (node.op, id(node.attrs), id(ins), id(node.out_shapes), own)
            counts = here.get(key)
            if counts is None:
                counts = here[key] = _counts(node, ins, own)
            out[node.name] = counts
        return out

    @classmethod
    def figures(cls) -> tuple[Figure, ...]:
        return (
            Figure("params", "learnable parameters", total(cls, "params", "op"), summed(cls, "params")),
            Figure("buffers", "buffers (batch-norm running statistics)", total(cls, "buffers", "op"),
                   summed(cls, "buffers")),
            Figure("macs", "multiply-accumulates", total(cls, "macs", "op"), summed(cls, "macs")),
            Figure("flops", "2 × MACs", lambda ir, a: 2 * total(cls, "macs", "op")(ir, a)),
            Figure("other_ops", "element-wise operations outside the MACs", total(cls, "other_ops", "op")),
        )

    @classmethod
    def network_report(cls, ir: IR, analysis: Analysis) -> dict[str, Any]:
        counts = analysis[cls].values()  # inputs and outputs count nothing: summing every node is summing the ops
        macs = sum(c.macs for c in counts)
        return {"params": sum(c.params for c in counts), "buffers": sum(c.buffers for c in counts), "macs": macs,
                "flops": 2 * macs, "other_ops": sum(c.other_ops for c in counts)}

    @classmethod
    def layer_report(cls, ir: IR, analysis: Analysis, node: IRNode) -> dict[str, Any]:
        c = analysis[cls][node.name]
        return {"params": c.params, "buffers": c.buffers, "macs": c.macs}

    @classmethod
    def layer_reports(cls, ir: IR, analysis: Analysis) -> Iterator[dict[str, Any]]:
        results = analysis[cls]
        reported: dict[int, tuple[dict[str, Any], Counts]] = {}  # by Counts (kept referenced: ids stay unique)
        for node in ir.nodes("op"):
            c = results[node.name]
            hit = reported.get(id(c))
            if hit is None:
                hit = reported[id(c)] = ({"params": c.params, "buffers": c.buffers, "macs": c.macs}, c)
            yield hit[0]


__all__ = ["CountPass", "Counts"]

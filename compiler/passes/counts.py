"""Parameters, buffers, MACs and other element-wise ops per node (conventions: analysis.md).

params: learnable tensors (what ``sum(p.numel() for p in m.parameters())`` counts; a shared
instance's weights once, at its first application, while its MACs count at every application);
buffers: BN running statistics; macs: conv/linear multiply-accumulates, the
``torch.utils.flop_counter`` total ÷ 2; other_ops: element-wise work outside ``macs``.
Inputs and outputs count zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archdsl.ir import IR, IRNode

from .registry import Analysis, Figure, Pass, register, summed, total


@dataclass(frozen=True, slots=True)
class Counts:
    params: int
    buffers: int
    macs: int
    other_ops: int


NOTHING = Counts(0, 0, 0, 0)


@register
class CountPass(Pass[Counts]):
    name = "counts"

    def run(self, ir: IR, analysis: Analysis) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        # Identical calls on identical shapes count the same: one Counts per distinct (op,
        # attributes, input shapes). Validated attributes are shared between identical calls, so
        # their identity is the key; the cache keeps them referenced, so no id is reused.
        known: dict[tuple[Any, ...], tuple[Counts, Any]] = {}
        for node in ir:
            if node.kind != "op":
                out[node.name] = NOTHING
                continue
            own = node.shares is None  # a shared instance's later applications reuse its first one's weights
            # The IR keeps one tuple per distinct list of shapes (in and out), so their identity is
            # a key too while the IR lives.
            key = (node.op, id(node.attrs), id(ir.in_shapes_key(node)), id(node.out_shapes), own)
            hit = known.get(key)
            if hit is None:
                op, outs, ins = node.op_class, list(node.out_shapes), ir.in_shapes(node)
                counts = Counts(params=op.params(node.attrs, ins) if own else 0,
                                buffers=op.buffers(node.attrs, ins) if own else 0,
                                macs=op.macs(node.attrs, ins, outs), other_ops=op.other_ops(node.attrs, ins, outs))
                hit = known[key] = (counts, node.attrs)
            out[node.name] = hit[0]
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
        counts = [analysis[cls][n.name] for n in ir.nodes("op")]
        macs = sum(c.macs for c in counts)
        return {"params": sum(c.params for c in counts), "buffers": sum(c.buffers for c in counts), "macs": macs,
                "flops": 2 * macs, "other_ops": sum(c.other_ops for c in counts)}

    @classmethod
    def layer_report(cls, ir: IR, analysis: Analysis, node: IRNode) -> dict[str, Any]:
        c = analysis[cls][node.name]
        return {"params": c.params, "buffers": c.buffers, "macs": c.macs}


__all__ = ["CountPass", "Counts"]

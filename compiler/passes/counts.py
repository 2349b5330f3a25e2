"""Parameters, buffers, MACs and other element-wise ops per node (conventions: analysis.md).

params: learnable tensors (what ``sum(p.numel() for p in m.parameters())`` counts);
buffers: BN running statistics; macs: conv/linear multiply-accumulates, the
``torch.utils.flop_counter`` total ÷ 2; other_ops: element-wise work outside ``macs``.
"""

from __future__ import annotations

from typing import ClassVar

from archdsl.ir import IR


class CountPass:
    name: ClassVar[str] = "counts"
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ("params", "buffers", "macs", "other_ops")

    def run(self, ir: IR) -> None:
        for node in ir:
            meta = ir.meta[node.name]
            if node.kind != "op":
                meta.update(params=0, buffers=0, macs=0, other_ops=0)
                continue
            op, ins, outs = node.op_class, ir.in_shapes(node), list(node.out_shapes)
            meta["params"] = op.params(node.attrs, ins)
            meta["buffers"] = op.buffers(node.attrs, ins)
            meta["macs"] = op.macs(node.attrs, ins, outs)
            meta["other_ops"] = op.other_ops(node.attrs, ins, outs)

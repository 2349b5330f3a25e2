"""Activation memory and memory access cost per node (conventions: analysis.md).

- ``activations``: elements of a node's outputs (inputs and ops; an output node only names a tensor
  and holds none). Every op's result counts as its own tensor — views (flatten) and in-place
  activations are not merged, so the figures are what a naive executor allocates.
- ``live``: elements held while the node executes, when the graph runs in topological order and a
  tensor is freed right after its last consumer. Network inputs are live from the start until
  their last consumer; network outputs stay live to the end. The peak over all nodes is the
  network's ``peak_activations`` (see :func:`summary`).
- ``mac``: memory access cost (Ma et al., ShuffleNet V2, §2), in elements: what the node reads and
  writes — every input element, every output element, and its parameters and buffers. For a 1×1
  convolution this is the paper's h·w·(c_in + c_out) + c_in·c_out; element-wise ops (ReLU, add:
  guideline G4) cost their inputs plus their output.

>>> import archdsl
>>> net = archdsl.load_string('''
... network tiny {
...     input image: 1x4x4
...     image -> relu -> relu -> output y
... }''').network()
>>> MemoryPass().run(net.ir)
>>> summary(net.ir)["peak_activations"]
32
"""

from __future__ import annotations

import math
from typing import ClassVar

from archdsl.ir import IR

# Bytes per element of the dtypes reports may be asked for.
DTYPE_BYTES: dict[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
}


def dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[dtype]


class MemoryPass:
    """Writes ``activations``, ``live`` and ``mac`` (elements) into every node's meta."""

    name: ClassVar[str] = "memory"
    requires: ClassVar[tuple[str, ...]] = ("params", "buffers")
    provides: ClassVar[tuple[str, ...]] = ("activations", "live", "mac")

    def run(self, ir: IR) -> None:
        nodes = ir.nodes()
        position = {n.name: i for i, n in enumerate(nodes)}
        size = {n.name: 0 if n.kind == "output" else sum(math.prod(s) for s in n.out_shapes) for n in nodes}
        # Where each tensor dies: after its last consumer; never if a network output reads it.
        last_use: dict[str, float] = {}
        for n in nodes:
            users = ir.consumers(n.name)
            if any(u.kind == "output" for u in users):
                last_use[n.name] = math.inf
            else:
                last_use[n.name] = max((position[u.name] for u in users), default=position[n.name])
        live = sum(size[n.name] for n in nodes if n.kind == "input")
        for i, n in enumerate(nodes):
            meta = ir.meta[n.name]
            meta["activations"] = size[n.name]
            if n.kind == "input":
                meta["live"] = live
                meta["mac"] = 0
                continue
            if n.kind == "op":
                live += size[n.name]
                ins = sum(math.prod(s) for s in ir.in_shapes(n))
                meta["mac"] = ins + size[n.name] + meta.get("params", 0) + meta.get("buffers", 0)
            else:
                meta["mac"] = 0
            meta["live"] = live  # inputs and outputs of this node are all held while it runs
            for producer in dict.fromkeys(p.node for p in n.inputs):
                if last_use[producer] == i:
                    live -= size[producer]
            if n.kind == "op" and last_use[n.name] == i:  # consumed by nobody: dropped at once
                live -= size[n.name]


def summary(ir: IR) -> dict[str, int]:
    """Network totals from the per-node meta: activations, peak_activations, mac (elements)."""
    nodes = ir.nodes()
    return {
        "activations": sum(ir.meta[n.name]["activations"] for n in nodes),
        "peak_activations": max((ir.meta[n.name]["live"] for n in nodes), default=0),
        "mac": sum(ir.meta[n.name]["mac"] for n in nodes),
    }


__all__ = ["DTYPE_BYTES", "MemoryPass", "dtype_bytes", "summary"]

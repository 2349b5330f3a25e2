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

Network figures: ``activations`` (summed), ``peak_activations`` (the largest ``live``), ``mac``
(summed), and the first two in bytes at float32 (``activation_bytes``, ``peak_activation_bytes``).

>>> import archdsl
>>> net = archdsl.load_string('''
... network tiny {
...     input image: 1x4x4
...     image -> relu -> relu -> output y
... }''').network()
>>> summary(net.ir, net.analysis)["peak_activations"]
32
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archdsl.ir import IR, IRNode
from archdsl.ops import Shape

from .counts import CountPass
from .registry import Analysis, Figure, Pass, register, summed, total

# Bytes per element of the dtypes reports may be asked for.
DTYPE_BYTES: dict[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
}
REPORT_DTYPE = "float32"


def dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[dtype]


@dataclass(slots=True, unsafe_hash=True)
class Memory:
    """Elements: a node's outputs, those live while it runs, and what it reads and writes (never
    changed once made)."""

    activations: int
    live: int
    mac: int


@register
class MemoryPass(Pass[Memory]):
    """``activations``, ``live`` and ``mac`` (elements) of every node."""

    name = "memory"
    requires = (CountPass,)
    network_fields = ("activations", "peak_activations", "mac")
    layer_fields = ("activations", "mac")

    def run(self, ir: IR, analysis: Analysis) -> dict[str, Memory]:
        counts = analysis[CountPass]
        nodes = ir.nodes()
        index = {n.name: i for i, n in enumerate(nodes)}
        # Each node's producers, by position, each once (a node may read one tensor twice).
        producers = [(index[n.inputs[0].node],) if len(n.inputs) == 1 else
                     tuple(dict.fromkeys([index[p.node] for p in n.inputs])) for n in nodes]
        # Elements per distinct list of shapes: the IR keeps one tuple of each (so identity is a key
        # while it lives), and one node's outputs are often the next one's inputs.
        known: dict[int, int] = {}

        def elements(shapes: tuple[Shape, ...]) -> int:
            n = known.get(id(shapes))
            if n is None:
                n = known[id(shapes)] = sum(math.prod(shape) for shape in shapes)
            return n

        size = [0 if n.kind == "output" else elements(n.out_shapes) for n in nodes]
        last_use = _last_uses(nodes, producers)
        results: list[Memory] = []
        live = sum(size[i] for i, n in enumerate(nodes) if n.kind == "input")
        in_shapes = ir.in_shapes_key
        for i, n in enumerate(nodes):
            kind = n.kind
            if kind == "input":
                results.append(Memory(size[i], live, 0))
                continue
            mac = 0
            if kind == "op":
                live += size[i]
                c = counts[n.name]
                mac = elements(in_shapes(n)) + size[i] + c.params + c.buffers
            results.append(Memory(size[i], live, mac))  # inputs and outputs of this node are all held while it runs
            # What is freed once it has run: the tensors it was the last to read, and its own if
            # nothing reads it (dropped at once).
            for producer in producers[i]:
                if last_use[producer] == i:
                    live -= size[producer]
            if kind == "op" and last_use[i] == i:
                live -= size[i]
        return dict(zip(index, results, strict=True))

    @classmethod
    def figures(cls) -> tuple[Figure, ...]:
        width = dtype_bytes(REPORT_DTYPE)
        return (
            Figure("activations", "elements of every node's output", total(cls, "activations"),
                   summed(cls, "activations")),
            Figure("peak_activations", "elements live at once (topological order, freed after last use)",
                   lambda ir, a: summary(ir, a)["peak_activations"]),
            Figure("activation_bytes", f"activations in bytes ({REPORT_DTYPE})",
                   lambda ir, a: summary(ir, a)["activations"] * width),
            Figure("peak_activation_bytes", f"peak activations in bytes ({REPORT_DTYPE})",
                   lambda ir, a: summary(ir, a)["peak_activations"] * width),
            Figure("mac", "memory access cost (ShuffleNet V2 §2), elements", total(cls, "mac"), summed(cls, "mac")),
        )

    @classmethod
    def network_report(cls, ir: IR, analysis: Analysis) -> dict[str, Any]:
        memory, width = summary(ir, analysis), dtype_bytes(REPORT_DTYPE)
        return {
            "activations": {"elements": memory["activations"], "bytes": memory["activations"] * width},
            "peak_activations": {"elements": memory["peak_activations"], "bytes": memory["peak_activations"] * width},
            "mac": memory["mac"],
        }

    @classmethod
    def layer_report(cls, ir: IR, analysis: Analysis, node: IRNode) -> dict[str, Any]:
        m = analysis[cls][node.name]
        return {"activations": m.activations, "mac": m.mac}

    @classmethod
    def layer_reports(cls, ir: IR, analysis: Analysis) -> Iterator[dict[str, Any]]:
        results = analysis[cls]
        for node in ir.nodes("op"):
            m = results[node.name]
            yield {"activations": m.activations, "mac": m.mac}


def _last_uses(nodes: list[IRNode], producers: list[tuple[int, ...]]) -> list[float]:
    """Where each node's tensor dies (by position): after its last consumer; never (inf) if a
    network output reads it; at once if nothing does."""
    last_use: list[float] = list(range(len(nodes)))
    for i, n in enumerate(nodes):
        if n.kind == "output":
            for j in producers[i]:
                last_use[j] = math.inf
            continue
        for j in producers[i]:
            if last_use[j] != math.inf:
                last_use[j] = i
    return last_use


def summary(ir: IR, analysis: Analysis) -> dict[str, int]:
    """Network totals of the pass's results: activations, peak_activations, mac (elements)."""
    results = analysis[MemoryPass].values()  # one per node
    return {
        "activations": sum(m.activations for m in results),
        "peak_activations": max((m.live for m in results), default=0),
        "mac": sum(m.mac for m in results),
    }


__all__ = ["DTYPE_BYTES", "Memory", "MemoryPass", "dtype_bytes", "summary"]

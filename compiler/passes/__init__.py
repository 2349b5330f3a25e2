"""Analysis passes. Each walks the IR in topological order, dispatches to the op's own rule and
writes its per-node result into ``ir.meta[node]``; none special-cases an op or a network.

Contract: ``requires`` names the meta keys a pass reads, ``provides`` those it writes; ``run``
leaves the IR's structure untouched.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from archdsl.ir import IR


class Pass(Protocol):
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    provides: ClassVar[tuple[str, ...]]

    def run(self, ir: IR) -> None: ...


def run_passes(ir: IR, passes: list[Pass]) -> None:
    done: set[str] = set()
    for p in passes:
        missing = [r for r in p.requires if r not in done]
        if missing:
            raise RuntimeError(f"pass {p.name} requires {missing}, not yet computed")
        p.run(ir)
        done.update(p.provides)

"""The block hierarchy of an IR: which scope encloses which, computed once for every backend.

The IR records every scope (a block instance, a labelled repeat, a stage-table row) by its path;
a path's parent is the deepest recorded scope that is a proper prefix of it (``layer1.0`` is inside
``layer1``, while ``features.3`` sits directly in the network when ``features`` is no scope).
The PyTorch backend nests classes along the tree of block scopes only
(:meth:`ScopeTree.of_blocks`); the diagram draws clusters along the tree of all scopes, and folds
runs of alike sibling scopes that feed only one another (:func:`signature`, :func:`feeds_only`:
repeat iterations) into one node.

>>> from archdsl.diagnostics import Span
>>> from archdsl.ir import ScopeInfo
>>> info = lambda *p: ScopeInfo(p, "block", "", None, Span.unknown())
>>> tree = ScopeTree({("a",): info("a"), ("a", "b", "c"): info("a", "b", "c")})
>>> tree.parent[("a", "b", "c")], tree.chain(("a", "b", "c", "d")), tree.max_level()
(('a',), [('a',), ('a', 'b', 'c')], 2)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from archdsl.ir import IR, ScopeInfo

Path = tuple[str, ...]


class ScopeTree:
    """Each scope's nearest enclosing scope (``()``: the network) and its nesting level (1 = top)."""

    def __init__(self, scopes: Mapping[Path, ScopeInfo]) -> None:
        self.info = scopes
        self.level: dict[Path, int] = {(): 0}
        self.parent: dict[Path, Path] = {}
        for path in sorted(scopes, key=len):
            up = self.enclosing(path[:-1])
            self.parent[path] = up
            self.level[path] = self.level[up] + 1

    @classmethod
    def of(cls, ir: IR) -> ScopeTree:
        """Every scope: blocks, repeats and stage rows."""
        return cls(ir.scopes)

    @classmethod
    def of_blocks(cls, ir: IR) -> ScopeTree:
        """Block instances only (a repeat or a stage row is no class of its own)."""
        return cls({path: info for path, info in ir.scopes.items() if info.kind == "block"})

    def enclosing(self, path: Path) -> Path:
        """The deepest scope that is `path` or a prefix of it (() if none)."""
        for k in range(len(path), 0, -1):
            if path[:k] in self.info:
                return path[:k]
        return ()

    def chain(self, path: Path) -> list[Path]:
        """Scopes from the top level down to the scope holding `path`."""
        out = []
        p = self.enclosing(path)
        while p:
            out.append(p)
            p = self.parent[p]
        return out[::-1]

    def max_level(self) -> int:
        return max(self.level.values())


def signature(info: ScopeInfo) -> tuple[str, str | None, str]:
    """What makes two scopes alike: their kind, block and title (`inverted_residual(c=24, stride=2)`)."""
    return (info.kind, info.block, info.title)


def feeds_only(ir: IR, a: Collection[str], b: Collection[str]) -> bool:
    """Whether, of two sets of IR nodes, everything entering `b` comes from `a` and everything leaving
    `a` goes to `b` (a chain link, as consecutive repeat iterations are)."""
    both = set(a) | set(b)
    return (all(p.node in both for name in b for p in ir.node(name).inputs)
            and all(c.name in both for name in a for c in ir.consumers(name)))

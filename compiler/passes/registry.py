"""The pass contract, the registry of passes, their typed results and the figures they expose.

A pass is one class in one module of this package, registered with :func:`register`. It walks the
IR in topological order, dispatches to each op's own rules, and returns one typed result per node
(a dataclass of its own, never changed once made); it never special-cases an op or a network and
never changes the IR. An :class:`Analysis` holds the results by pass — ``analysis[CountPass]["conv1"].params``
— and runs each pass when its results are first asked for, after those it ``requires`` (a report
asked for its parameter count never computes receptive fields); :func:`analyze` runs them all.

A pass also says what it contributes to the outside world:

- :meth:`Pass.figures`: named quantities that ``expect`` lines can check — of the whole network
  (``expect params == …``) and of a node, block or output (``expect layer4.rf == …``), with no
  change to the verifier;
- :meth:`Pass.network_report` and :meth:`Pass.layer_report` (:meth:`Pass.layer_reports` for every
  layer at once): the values of the report fields it owns (the report's schema declares the fields;
  the pass fills them), named in :attr:`Pass.network_fields` and :attr:`Pass.layer_fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from archdsl.ir import IR, IRNode, NodeKind, Port
from archdsl.network import CompiledNetwork

R = TypeVar("R")


class FigureError(Exception):
    """A figure that does not exist for the node asked about (e.g. no receptive field)."""


@dataclass(frozen=True)
class Target:
    """What an `expect` line names: the nodes a figure sums over (one node, or a block's), and the
    one tensor whose shape or receptive field it means (a node's output, a block's last)."""

    nodes: Sequence[str]
    port: Port


@dataclass(frozen=True)
class Figure:
    """A quantity `expect` can name. ``of_network`` gives the network's value; ``of_nodes`` the value
    for the :class:`Target` a name stands for (one node, or every node of a block, in order). A figure
    with ``call_form`` may also be written as a call: ``rf(X)`` for ``X.rf``."""

    name: str
    doc: str
    of_network: Callable[[IR, Analysis], Any] | None = None
    of_nodes: Callable[[IR, Analysis, Target], Any] | None = None
    call_form: bool = False


class Pass(Generic[R]):
    """Base of every analysis pass; ``R`` is the type of its per-node result."""

    name: ClassVar[str]
    requires: ClassVar[tuple[type[Pass[Any]], ...]] = ()
    # The report fields the pass fills (the keys of `network_report` and of `layer_report`): a
    # report's figures that no one asks for are left to compute until someone does.
    network_fields: ClassVar[tuple[str, ...]] = ()
    layer_fields: ClassVar[tuple[str, ...]] = ()

    def run(self, ir: IR, analysis: Analysis) -> dict[str, R]:
        """One result per node of `ir`, by node name; earlier passes' results are in `analysis`."""
        raise NotImplementedError

    @classmethod
    def figures(cls) -> tuple[Figure, ...]:
        return ()

    @classmethod
    def network_report(cls, ir: IR, analysis: Analysis) -> dict[str, Any]:
        """Values of the network report's fields this pass owns."""
        return {}

    @classmethod
    def layer_report(cls, ir: IR, analysis: Analysis, node: IRNode) -> Mapping[str, Any]:
        """Values of a layer row's fields this pass owns (`node` is an op node)."""
        return {}

    @classmethod
    def layer_reports(cls, ir: IR, analysis: Analysis) -> Iterator[Mapping[str, Any]]:
        """`layer_report` of every op node, in order. Callers only read what they get, so a pass may
        hand one mapping to every node whose values are the same (a conv's bn and relu have its
        receptive field), and walk its results as it likes."""
        for node in ir.nodes("op"):
            yield cls.layer_report(ir, analysis, node)


T = TypeVar("T")


class PerCall(Generic[T]):
    """A pass's values per distinct call — the op, its validated attributes and what else the value
    depends on (shapes) — across networks. Validated attributes are shared between identical calls
    (ops/base.py), so they are keyed by identity: each entry keeps its attributes referenced, so no
    id is reused while it lives. Cleared when full, like the attributes' own cache."""

    def __init__(self, limit: int = 1 << 14) -> None:
        self._known: dict[tuple[Any, ...], tuple[T, Any]] = {}
        self._limit = limit

    def get(self, node: IRNode, depends: tuple[Any, ...], make: Callable[[], T]) -> T:
        """The value for `node`'s call with `depends`, made by `make` the first time."""
        key = (node.op, id(node.attrs), *depends)
        hit = self._known.get(key)
        if hit is None:
            if len(self._known) >= self._limit:
                self._known.clear()
            hit = self._known[key] = (make(), node.attrs)
        return hit[0]


class Analysis:
    """The results of the passes over one IR, by pass: a registered pass runs when its results are
    first asked for (after the passes it requires), once."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self._results: dict[type[Pass[Any]], Mapping[str, Any]] = {}

    def __getitem__(self, kind: type[Pass[R]]) -> Mapping[str, R]:
        results = self._results.get(kind)
        if results is None:
            if kind not in passes():
                raise KeyError(f"pass {kind.name} has not run (it is not registered)")
            for required in kind.requires:
                self[required]
            results = self._results[kind] = kind().run(self.ir, self)
        return results

    def __contains__(self, kind: type[Pass[Any]]) -> bool:
        """Whether `kind` has run."""
        return kind in self._results

    def complete(self) -> Analysis:
        """Run every registered pass that has not run yet."""
        for kind in passes():
            self[kind]
        return self

    def add(self, kind: type[Pass[R]], results: Mapping[str, R]) -> None:
        missing = [r.name for r in kind.requires if r not in self._results]
        if missing:
            raise RuntimeError(f"pass {kind.name} requires {missing}, not yet run")
        self._results[kind] = results


class AnalyzedNetwork(CompiledNetwork, Protocol):
    """A compiled network together with its analysis (what reports and diagrams read)."""

    @property
    def analysis(self) -> Analysis: ...


# ---------------------------------------------------------------------------------------------
# The registry

_PASSES: list[type[Pass[Any]]] = []


def register(cls: type[Pass[R]]) -> type[Pass[R]]:
    """Class decorator adding a pass; a name registered twice is a bug."""
    if any(p.name == cls.name for p in _PASSES):
        raise RuntimeError(f"pass name {cls.name!r} registered twice")
    _PASSES.append(cls)
    return cls


def passes() -> list[type[Pass[Any]]]:
    """Every registered pass, each after the passes it requires (registration order otherwise)."""
    if _ORDER[0] is not _PASSES or _ORDER[1] != len(_PASSES):  # registered since (or the list replaced)
        _ORDER[:] = [_PASSES, len(_PASSES), _ordered(_PASSES)]
    return list(_ORDER[2])


_ORDER: list[Any] = [None, 0, []]  # the registry's list and length when last ordered, and the order


def _ordered(registered: list[type[Pass[Any]]]) -> list[type[Pass[Any]]]:
    ordered: list[type[Pass[Any]]] = []

    def visit(p: type[Pass[Any]], path: tuple[str, ...]) -> None:
        if p in ordered:
            return
        if p.name in path:
            raise RuntimeError(f"passes require each other in a cycle: {' → '.join((*path, p.name))}")
        for r in p.requires:
            visit(r, (*path, p.name))
        ordered.append(p)

    for p in registered:
        visit(p, ())
    return ordered


def analyze(ir: IR) -> Analysis:
    """Run every registered pass over `ir` (an :class:`Analysis` of its own runs each when first asked)."""
    return Analysis(ir).complete()


# ---------------------------------------------------------------------------------------------
# Figures: the registered passes' and the IR's own


def _shape(ir: IR, analysis: Analysis, target: Target) -> list[int]:
    return list(ir.node(target.port.node).out_shapes[target.port.index])


STRUCTURAL_FIGURES = (
    Figure("shape", "the output shape of a node, or of a block's last node", of_nodes=_shape, call_form=True),
)


def figures() -> Iterator[Figure]:
    """Every figure: the IR's own, then each pass's, in pass order."""
    yield from STRUCTURAL_FIGURES
    for p in passes():
        yield from p.figures()


def network_figures() -> dict[str, Figure]:
    return {f.name: f for f in figures() if f.of_network is not None}


def node_figures() -> dict[str, Figure]:
    return {f.name: f for f in figures() if f.of_nodes is not None}


def summed(kind: type[Pass[Any]], attribute: str) -> Callable[[IR, Analysis, Target], int]:
    """A node figure summing one integer field of `kind`'s results over the nodes asked about."""

    def figure(ir: IR, analysis: Analysis, target: Target) -> int:
        results = analysis[kind]
        return sum(int(getattr(results[n], attribute)) for n in target.nodes)

    return figure


def total(kind: type[Pass[Any]], attribute: str, node_kind: NodeKind | None = None) -> Callable[[IR, Analysis], int]:
    """A network figure summing one integer field of `kind`'s results over all nodes (of one kind)."""

    def figure(ir: IR, analysis: Analysis) -> int:
        results = analysis[kind]
        nodes = ir.nodes(node_kind)
        return sum(int(getattr(results[n.name], attribute)) for n in nodes)

    return figure


__all__ = [
    "Analysis", "AnalyzedNetwork", "Figure", "FigureError", "Pass", "Target", "analyze", "figures", "network_figures",
    "node_figures", "passes", "register", "summed", "total",
]

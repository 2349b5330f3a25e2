"""What the compiler is given: an elaborated network's IR and a small typed description of it.

Passes and backends take a :class:`CompiledNetwork` — anything with an ``ir`` and an ``info`` —
and never the API's ``Network``, so the compiler depends on the core alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .ir import IR


@dataclass(frozen=True)
class NetworkInfo:
    """Facts about a network that its graph does not hold."""

    name: str
    file: str  # the spec file it was elaborated from
    family: str  # the network definition it comes from (== name unless a variant)
    parameters: Mapping[str, object]  # resolved parameters, JSON-ready, in declaration order
    defaulted: frozenset[str] = frozenset()  # the parameters that took their definition's default


class CompiledNetwork(Protocol):
    """An elaborated network as the compiler sees it."""

    @property
    def ir(self) -> IR: ...

    @property
    def info(self) -> NetworkInfo: ...

    def input_sizes(self) -> str | None:
        """A sentence saying which input sizes the network's generated module serves, or None."""

    def variant(self, changes: Mapping[str, object]) -> CompiledNetwork | None:
        """The network elaborated again with some parameters changed (values, as `info.parameters`
        holds them), or None where it cannot be: what a parameter changes in the graph is seen so."""


@dataclass(frozen=True)
class Compiled:
    """The plain :class:`CompiledNetwork`: an IR and its description."""

    ir: IR
    info: NetworkInfo
    sizes: str | None = None

    def input_sizes(self) -> str | None:
        return self.sizes

    def variant(self, changes: Mapping[str, object]) -> CompiledNetwork | None:
        return None  # no spec to elaborate again

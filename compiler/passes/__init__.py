"""Analysis passes over the IR. Each module of this package (but :mod:`.registry`, which holds the
contract) declares one pass and registers it; importing the package imports them all, so adding a
pass is adding a module. See :mod:`.registry` for the contract.
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import (
    Analysis,
    AnalyzedNetwork,
    Figure,
    FigureError,
    Pass,
    Target,
    analyze,
    figures,
    network_figures,
    node_figures,
    passes,
    register,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "Analysis", "AnalyzedNetwork", "Figure", "FigureError", "Pass", "Target", "analyze", "figures", "network_figures",
    "node_figures", "passes", "register",
]

"""archdsl: a declarative language for convolutional network architectures, and its compiler.

>>> import archdsl
>>> archdsl.analyze("resnet50").params
25557032

The public API lives in :mod:`archdsl.api` and is re-exported here lazily, so that importing a
submodule (``archdsl.compiler``, ``archdsl.cli``) pays only for what it uses.
"""

from __future__ import annotations

from typing import Any

from .version import __version__ as __version__

__all__ = [
    "ArchError", "Network", "Report", "Spec", "analyze", "build", "compile_source", "find", "load", "load_string",
    "load_weights",
]


def __getattr__(name: str) -> Any:
    if name == "ArchError":
        from .diagnostics import ArchError

        return ArchError
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")

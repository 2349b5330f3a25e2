"""PyTorch → `.arch`: turn an existing ``nn.Module`` into the spec a person would have written.

Three steps, one module each: :mod:`.trace` runs ``torch.export`` and lowers every ATen node to an
archdsl op instance (a :class:`~.trace.Layer`), :mod:`.structure` rebuilds blocks from the module
hierarchy (one block per module class, differing constants lifted into parameters, stage runs as
``repeat``\\ s and stage tables), and :mod:`.emit` writes the text. :mod:`.factory` resolves
``package.module:factory`` and records constructor arguments, which name the lifted parameters.

Importing this package imports nothing heavy; torch is imported when a model is imported.
"""

from __future__ import annotations

from .driver import ImportResult, import_any, import_factory, import_module

__all__ = ["ImportResult", "import_any", "import_factory", "import_module"]

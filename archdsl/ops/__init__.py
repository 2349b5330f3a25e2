"""The op registry. Each op is declared once, in one of the modules of this package; importing the
package imports every module (but :mod:`.base`, which holds the contract), so adding an op module
needs no list edited here."""

import importlib
import pkgutil

from .base import (
    AttrError,
    Attrs,
    Geometry,
    Op,
    Shape,
    ShapeError,
    all_ops,
    fmt_shape,
    get_op,
    has_op,
    op_names,
    py_number,
    torch_sized_constructors,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "AttrError", "Attrs", "Geometry", "Op", "Shape", "ShapeError", "all_ops", "fmt_shape", "get_op",
    "has_op", "op_names", "py_number", "torch_sized_constructors",
]

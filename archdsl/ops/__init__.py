"""The op registry. Each op is declared once, in one of the modules imported here."""

from . import activation, conv, dense, merge, norm, pool, tensor  # noqa: F401  (registration)
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
)

__all__ = [
    "AttrError", "Attrs", "Geometry", "Op", "Shape", "ShapeError", "all_ops", "fmt_shape", "get_op",
    "has_op", "op_names",
]

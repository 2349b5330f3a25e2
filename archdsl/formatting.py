"""Numbers and shapes as people read them, for every report, table and diagram.

>>> human(25_557_032), human(4_089_184_256, digits=2, space=True)
('25.6M', '4.09 G')
"""

from __future__ import annotations

from collections.abc import Iterable

_SCALES = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))


def human(n: float, digits: int | None = None, space: bool = False) -> str:
    """`n` in thousands (K), millions (M), billions (G) or trillions (T): three significant digits
    by default, or `digits` decimals; `space` puts a space before the unit. Below 1 000: `n` as is."""
    for unit, scale in _SCALES:
        if abs(n) >= scale:
            value = f"{n / scale:.3g}" if digits is None else f"{n / scale:.{digits}f}"
            return f"{value}{' ' if space else ''}{unit}"
    return f"{n:g}"


def shape_text(shape: Iterable[int]) -> str:
    """`64×56×56`."""
    return "×".join(str(d) for d in shape)

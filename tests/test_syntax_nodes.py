"""The syntax tree's nodes behave as the frozen dataclasses they replace (archdsl/syntax.py, `_Frozen`):
per node class, against a frozen dataclass of the same fields, on the same values."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from archdsl import syntax
from archdsl.diagnostics import Span

NODES = sorted((c for c in vars(syntax).values() if inspect.isclass(c) and issubclass(c, syntax.Node)),
               key=lambda c: c.__name__)
SPAN = Span("g.arch", 3, 1, 3, 2)


def _twin(cls: type[syntax.Node]) -> Any:
    """A frozen dataclass with the node's name and fields (defaults included)."""
    fields = [(f, Any, dataclasses.field(default=cls._defaults[f])) if f in cls._defaults else (f, Any)
              for f in cls._fields]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True)


def _values(cls: type[syntax.Node], seed: int) -> list[Any]:
    """A value per field: the span, then hashable stand-ins (numbers, strings, nested tuples)."""
    others = [(seed, f"v{i}", (i, None)) if i % 2 else seed + i for i in range(1, len(cls._fields))]
    return [Span("f.arch", seed, 2, seed, 5), *others]


@pytest.mark.parametrize("cls", NODES, ids=[c.__name__ for c in NODES])
def test_a_node_is_a_frozen_dataclass_of_its_fields(cls: type[syntax.Node]) -> None:
    twin = _twin(cls)
    assert cls._fields[0] == "span" and cls._fields == tuple(f.name for f in dataclasses.fields(twin))
    a, b, c = cls(*_values(cls, 1)), cls(*_values(cls, 1)), cls(*_values(cls, 2))
    ta, tc = twin(*_values(cls, 1)), twin(*_values(cls, 2))
    assert repr(a) == repr(ta).replace(f"types.{cls.__name__}", cls.__name__) and repr(c) != repr(a)
    assert hash(a) == hash(ta) and hash(c) == hash(tc)
    assert a == b and a != c and a != ta  # equal to a node of its own class only, as a dataclass is
    assert cls(**dict(zip(cls._fields, _values(cls, 1), strict=True))) == a
    for f in cls._fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(a, f, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(a, f)
    assert pickle.loads(pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL)) == a
    assert copy.deepcopy(a) == a and copy.copy(a) == a
    assert a.with_(span=SPAN) == cls(SPAN, *_values(cls, 1)[1:]) and a.span != SPAN


def test_construction_checks_its_arguments_and_fills_defaults() -> None:
    call = syntax.Call(SPAN, "conv", SPAN, ())
    assert call.label is None and call == syntax.Call(SPAN, "conv", SPAN, (), None)
    with pytest.raises(TypeError, match="missing argument 'args'"):
        syntax.Call(SPAN, "conv", SPAN)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 5 arguments"):
        syntax.Call(SPAN, "conv", SPAN, (), None, 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated argument 'colour'"):
        syntax.Call(SPAN, "conv", SPAN, (), colour=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="repeated argument 'func'"):
        syntax.Call(SPAN, "conv", SPAN, (), func="x")  # type: ignore[misc]

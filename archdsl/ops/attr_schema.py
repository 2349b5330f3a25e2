"""Op attribute schemas: declared as annotated fields, checked without pydantic where the value is plain.

An op's attributes are a class of annotated fields with their defaults (``out: PositiveInt``,
``stride: Pair = (1, 1)``). pydantic defines what a field accepts: on first need each class becomes
a pydantic model of the same fields (``pydantic_model``), whose result or error is final. Most
values a spec gives need no conversion, though: an integer for an integer field, a list of two
positive integers for a pair. Those are checked here, field by field, and give the value pydantic
would give; anything else — a wrong value, one that pydantic's lax mode converts, a type this
module does not know — goes to the pydantic model. So analyzing a network whose attributes are
plain never imports pydantic (importing it and building the models is a third of the start-up of
``archdsl analyze``), and there is still one definition of what the language accepts.
"""

from __future__ import annotations

import contextlib
import copy
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt

if TYPE_CHECKING:
    from pydantic import BaseModel

# pydantic's constrained numbers, spelled as pydantic spells them (its own aliases would import it).
PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Probability = Annotated[float, Ge(0.0), Le(1.0)]
# The numbers PyTorch holds. A module keeps or passes some as float32 (LeakyReLU's slope, a
# parameter's initial value) and refuses one beyond it ("value cannot be converted to type float
# without overflow"); its integers are 64-bit; its pooling and transposed-convolution kernels hold a
# window's size, stride, padding and dilation as 32-bit ones ("… to type int without overflow").
FLOAT32_MAX = 3.4028234663852886e38
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
PositiveInt32 = Annotated[int, Gt(0), Le(INT32_MAX)]
NonNegativeInt32 = Annotated[int, Ge(0), Le(INT32_MAX)]
Float32 = Annotated[float, Ge(-FLOAT32_MAX), Le(FLOAT32_MAX)]
PositiveFloat32 = Annotated[float, Gt(0), Le(FLOAT32_MAX)]
NonNegativeFloat32 = Annotated[float, Ge(0), Le(FLOAT32_MAX)]

_BOUNDS = (Gt, Ge, Lt, Le)
_EXACT_FLOAT = 2**53  # an int up to this converts to a float exactly, as pydantic converts it


class Normalize:
    """``Annotated`` metadata: a function the given value passes through before it is checked (it
    becomes pydantic's ``BeforeValidator`` in the pydantic model)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


class Invalid(Exception):
    """Values the pydantic model refused: its first error, and the model (for the message)."""

    def __init__(self, error: Any, model: type[BaseModel]) -> None:
        super().__init__(str(error.get("msg", "")))
        self.error = error
        self.model = model


class _Undecided(Exception):
    """The value is not one this module vouches for: the pydantic model decides."""


_UNDECIDED = _Undecided()
Check = Callable[[Any], Any]


def _identity(v: Any) -> Any:
    return v


def _exact(kind: type) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not kind:
            raise _UNDECIDED
        return v
    return check


def _float(v: Any) -> Any:
    if type(v) is float:
        return v
    if isinstance(v, int) and not isinstance(v, bool) and -_EXACT_FLOAT <= v <= _EXACT_FLOAT:
        return float(v)
    raise _UNDECIDED


def _none(v: Any) -> Any:
    if v is not None:
        raise _UNDECIDED
    return v


def _int(v: Any) -> Any:
    if type(v) is int:
        return v
    if isinstance(v, int) and not isinstance(v, bool):  # a size read from a tensor (values.Dim)
        return int(v)  # as pydantic gives it
    raise _UNDECIDED


_PLAIN: dict[Any, Check] = {int: _int, bool: _exact(bool), str: _exact(str), float: _float,
                            type(None): _none, Any: _identity}


def _holds(bound: Any, v: Any) -> bool:
    if isinstance(bound, Gt):
        return bool(v > bound.gt)
    if isinstance(bound, Ge):
        return bool(v >= bound.ge)
    if isinstance(bound, Lt):
        return bool(v < bound.lt)
    return bool(v <= bound.le)


def _annotated(inner: Check, extra: list[Any]) -> Check | None:
    normalize = [m.func for m in extra if isinstance(m, Normalize)]
    bounds = [m for m in extra if isinstance(m, _BOUNDS)]
    if len(normalize) > 1 or len(normalize) + len(bounds) != len(extra):
        return None
    before = normalize[0] if normalize else _identity

    def check(v: Any) -> Any:
        try:
            v = before(v)
        except Exception:  # the pydantic model reports what the normalizing function refuses
            raise _UNDECIDED from None
        v = inner(v)
        for b in bounds:
            if not _holds(b, v):
                raise _UNDECIDED
        return v
    return check


def _union(members: list[Check]) -> Check:
    def check(v: Any) -> Any:
        results = []
        for m in members:
            with contextlib.suppress(_Undecided):
                results.append(m(v))
        if len(results) != 1:  # pydantic's smart union would weigh the matches; leave it the choice
            raise _UNDECIDED
        return results[0]
    return check


def _literal(values: tuple[Any, ...]) -> Check | None:
    if not all(type(a) in (str, int) for a in values):
        return None

    def check(v: Any) -> Any:
        if any(type(v) is type(a) and v == a for a in values):
            return v
        raise _UNDECIDED
    return check


def _sequence(kind: type, items: list[Check] | Check) -> Check:
    def check(v: Any) -> Any:
        # a list, or a tuple for a tuple (pydantic's lax mode also takes a list for a tuple)
        if type(v) is not list and (kind is list or type(v) is not tuple):
            raise _UNDECIDED
        if isinstance(items, list):
            if len(v) != len(items):
                raise _UNDECIDED
            return kind(c(x) for c, x in zip(items, v, strict=True))
        return kind(items(x) for x in v)
    return check


def _mapping(value: Check) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not dict or any(type(k) is not str for k in v):
            raise _UNDECIDED
        return {k: value(x) for k, x in v.items()}
    return check


def checker(tp: Any) -> Check | None:
    """A function giving what pydantic gives for the values of type `tp` it vouches for (raising
    `_Undecided` for the others), or None where every value of the type goes to pydantic."""
    if tp in _PLAIN:
        return _PLAIN[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        inner = checker(args[0])
        return None if inner is None else _annotated(inner, list(tp.__metadata__))
    if origin is Literal:
        return _literal(args)
    parts = [checker(a) for a in args if a is not Ellipsis]
    if None in parts:
        return None
    checks = typing.cast("list[Check]", parts)
    if origin in (Union, types.UnionType):
        return _union(checks)
    if origin is tuple:
        return _sequence(tuple, checks[0] if args[-1] is Ellipsis else checks)
    if origin is list:
        return _sequence(list, checks[0])
    if origin is dict and args[0] is str:
        return _mapping(checks[1])
    return None


def _for_pydantic(tp: Any) -> Any:
    """`tp` with each `Normalize` made pydantic's `BeforeValidator`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        from pydantic import BeforeValidator

        extra = [BeforeValidator(m.func) if isinstance(m, Normalize) else m for m in tp.__metadata__]
        return Annotated[(_for_pydantic(args[0]), *extra)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_for_pydantic(a) for a in args)]  # noqa: UP007 - built from a tuple
    if origin in (tuple, list, dict):
        return origin[tuple(a if a is Ellipsis else _for_pydantic(a) for a in args)]
    return tp


class AttrField:
    """One attribute of an op: its type, and its default unless it is required."""

    __slots__ = ("annotation", "check", "default", "name")

    def __init__(self, name: str, annotation: Any, default: Any) -> None:
        self.name = name
        self.annotation = annotation
        self.default = default
        self.check = checker(annotation)

    def is_required(self) -> bool:
        return self.default is _REQUIRED


_REQUIRED: Any = object()


class _AttrsType(type):
    @property
    def model_fields(cls) -> dict[str, AttrField]:
        """The fields in declaration order (a base class's first), under the name pydantic gives them;
        their annotations are read on first use, so start-up pays only for the ops a spec uses."""
        fields: dict[str, AttrField] | None = cls.__dict__.get("_fields")
        if fields is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            fields = {name: AttrField(name, tp, getattr(cls, name, _REQUIRED)) for name, tp in hints.items()
                      if get_origin(tp) is not ClassVar}
            cls._fields = fields
        return fields


class Attrs(metaclass=_AttrsType):
    """Base of every op's attribute schema: unknown attributes are errors, values are immutable."""

    _fields: ClassVar[dict[str, AttrField] | None] = None
    _pydantic: ClassVar[Any] = None  # type[pydantic.BaseModel] | None

    @classmethod
    def pydantic_model(cls) -> type[BaseModel]:
        """The pydantic model of these fields, built on first use."""
        model: type[BaseModel] | None = cls.__dict__.get("_pydantic")
        if model is None:
            from pydantic import ConfigDict, create_model

            fields: dict[str, Any] = {name: (_for_pydantic(f.annotation), ... if f.is_required() else f.default)
                                      for name, f in cls.model_fields.items()}
            model = create_model(cls.__name__, __config__=ConfigDict(extra="forbid", frozen=True),
                                 __module__=cls.__module__, **fields)
            cls._pydantic = model
        return model

    @classmethod
    def validate(cls, values: dict[str, Any]) -> Attrs:
        """The attributes, checked here where every value is plain, else by the pydantic model;
        :class:`Invalid` carries the first of its errors."""
        checked = cls._checked_here(values)
        if checked is None:
            checked = cls._validate_by_pydantic(values)
        attrs = object.__new__(cls)
        attrs.__dict__.update(checked)
        return attrs

    @classmethod
    def _checked_here(cls, values: dict[str, Any]) -> dict[str, Any] | None:
        """Every field's value, where each given one is plain and none is missing or unknown; else None."""
        fields = cls.model_fields
        if any(k not in fields for k in values):
            return None
        checked: dict[str, Any] = {}
        for name, f in fields.items():
            if name in values:
                if f.check is None:
                    return None
                try:
                    checked[name] = f.check(values[name])
                except _Undecided:
                    return None
            elif f.is_required():
                return None
            else:  # pydantic copies a mutable default, so that no two models share it
                checked[name] = copy.deepcopy(f.default) if type(f.default) in (list, dict, set) else f.default
        return checked

    @classmethod
    def _validate_by_pydantic(cls, values: dict[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        model = cls.pydantic_model()
        try:
            return dict(model.model_validate(values).__dict__)
        except ValidationError as exc:
            raise Invalid(exc.errors()[0], model) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[Attrs], values: dict[str, Any]) -> Attrs:
    attrs = object.__new__(cls)
    attrs.__dict__.update(values)
    return attrs

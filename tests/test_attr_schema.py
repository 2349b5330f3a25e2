"""Attributes checked without pydantic give exactly what pydantic gives (archdsl/ops/attr_schema.py).

Per op and attribute, over values of every kind a spec can write (and some it cannot): where the
plain-value check vouches for a value, its result must equal the pydantic model's, type for type;
where pydantic refuses a value, the check must not vouch for it.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

import pytest

from archdsl.ops import all_ops, get_op
from archdsl.ops.attr_schema import Attrs


class _Size(int):
    """An int subclass, as the sizes read from a tensor are (values.Dim)."""


# Values of every kind the evaluator produces (int, float, bool, str, None, lists of them, sizes read
# from tensors), at the edges the constraints draw (0, negatives, -0.0, 2**53 and beyond).
VALUES: list[Any] = [
    0, 1, 2, 3, -1, 7, 2**53, 2**53 + 1, 2**70, 0.0, -0.0, 0.5, 1.0, 2.5, -1.5, 1e-5, 1e308, True, False, None,
    "", "same", "valid", "global", "center", "fast", "nearest", "bilinear", "yes", "64",
    [], [1], [2, 3], [1, 2, 3], [1, 2, 3, 4], [0, 0], [0, 1, 2, 3], [-1, 2], [1.5, 2], [2.0, 2.0], [True, 1],
    ["a", 1], [[1]], [1, 2, 3, 4, 5], [-1, 91], (2, 3), {}, {"a": 1}, {"a": [1]},
    _Size(0), _Size(3), [_Size(4), _Size(4)], [_Size(2), 1],
]

CASES = [(op.name, f) for op in all_ops() for f in op.Attrs.model_fields]


def _typed(value: Any) -> Any:
    """`value` with the type of every part, so that 1 ≠ 1.0 ≠ True and (1, 2) ≠ [1, 2]."""
    if isinstance(value, list | tuple):
        return (type(value), tuple(_typed(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _typed(v)) for k, v in value.items()))
    if isinstance(value, float):
        return (float, value.hex())
    return (type(value), value)


def _candidates(attrs: type[Attrs], field: str) -> list[Any]:
    """VALUES, and the field's default and the literals its type names."""
    f = attrs.model_fields[field]
    extra = [] if f.is_required() else [f.default]

    def literals(tp: Any) -> None:
        if str(get_origin(tp)) == "typing.Literal":
            extra.extend(get_args(tp))
        for arg in get_args(tp):
            literals(arg)

    literals(f.annotation)
    return [*VALUES, *extra]


def _required(attrs: type[Attrs], field: str) -> dict[str, Any]:
    """Plain values for the other required attributes, found among VALUES."""
    given: dict[str, Any] = {}
    for name, f in attrs.model_fields.items():
        if name != field and f.is_required():
            assert f.check is not None, f"{attrs.__name__}.{name}: every required attribute takes plain values"
            given[name] = next(v for v in VALUES if _vouched(f.check, v))
    return given


def _vouched(check: Any, value: Any) -> bool:
    try:
        check(value)
    except Exception:
        return False
    return True


@pytest.mark.parametrize(("name", "field"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_plain_values_are_checked_as_pydantic_checks_them(name: str, field: str) -> None:
    from pydantic import ValidationError

    attrs = get_op(name).Attrs
    model = attrs.pydantic_model()
    vouched = 0
    for value in _candidates(attrs, field):
        given = {**_required(attrs, field), field: value}
        here = attrs._checked_here(given)
        try:
            expected = model.model_validate(given).__dict__
        except ValidationError:
            assert here is None, (given, here)
            continue
        if here is not None:
            vouched += 1
            assert _typed(here) == _typed(expected), (given, here, expected)
            assert list(here) == list(expected)
    assert attrs.model_fields[field].check is not None, "every attribute takes plain values without pydantic"
    assert vouched, "the check vouches for some value (its default, at least)"


def test_defaults_and_missing_attributes() -> None:
    conv = get_op("conv").Attrs
    assert conv._checked_here({"out": 8}) is None  # `kernel` missing: pydantic says so
    assert conv._checked_here({"out": 8, "kernel": 3, "colour": 1}) is None  # unknown: pydantic says so
    a = conv.validate({"out": 8, "kernel": 3})
    assert a.__dict__ == conv.pydantic_model().model_validate({"out": 8, "kernel": 3}).__dict__
    assert (a.out, a.kernel, a.stride, a.pad, a.bias) == (8, (3, 3), (1, 1), None, True)
    assert a == conv.validate({"out": 8, "kernel": [3, 3]}) and hash(a) == hash(conv.validate({"out": 8, "kernel": 3}))
    with pytest.raises(TypeError):
        a.out = 9  # type: ignore[misc]


def test_attributes_survive_pickling_and_copying() -> None:
    import copy
    import pickle

    a = get_op("conv").validate({"out": 8, "kernel": 3, "pad": "same"})
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a and copy.copy(a) == a
    assert repr(a) == ("ConvAttrs(out=8, kernel=(3, 3), stride=(1, 1), pad='same', dilation=(1, 1), groups=1, "
                       "bias=True)")

"""The analysis report's fields, declared once, and the report written as JSON without pydantic.

Each record of the report (the network, a layer, a receptive field, a memory figure, a block row) is
declared here as a plain class of annotated fields with their defaults. The pydantic models of the
API (`archdsl.report_models`: `Report`, `LayerReport`, …) are built on these classes — same fields,
same order, same defaults — and are imported only when a report object is asked for. `analyze --json`
needs none: `report_json` streams the text `Report.model_dump_json(indent=2)` gives, byte for byte,
from the same declaration and plain values, so the command never imports pydantic or its compiled
core (importing them was a third of the command's start-up).

The annotations name the pydantic models (`FieldReport`, `LayerReport`, …): pydantic resolves them
in `archdsl.report_models`, where the models are defined, when it first builds a model's schema.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring as _encode_str  # the C encoder, non-ASCII kept
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The names of the nested records' models. pydantic resolves them in archdsl.report_models (they
    # are not defined here at run time); to the type checker a nested record is its declaration
    # below, which its model subclasses (this module imports nothing of the models: they import it).
    from typing import Literal, TypeAlias

    FieldReport: TypeAlias = "FieldReportFields"
    MemoryFigure: TypeAlias = "MemoryFigureFields"
    LayerReport: TypeAlias = "LayerReportFields"
    Field: TypeAlias = "FieldReportFields | Literal['global'] | None"


# A mutable default (`[]`, `{}`) is a default, not class state: pydantic copies it into each model
# instance, and the JSON writer only reads it.


class FieldReportFields:
    """A receptive field per axis [h, w] (see compiler/passes/receptive.py): output i covers input
    coordinates start + i·stride ± (size − 1)/2 of `input`."""

    size: list[int | float]
    stride: list[int | float]
    start: list[int | float]
    input: str
    misaligned: bool = False


class MemoryFigureFields:
    elements: int
    bytes: int


class LayerReportFields:
    name: str
    op: str
    description: str
    output_shape: list[int]
    output_shapes: list[list[int]]
    params: int
    buffers: int
    macs: int
    scope: str
    receptive_field: Field = None
    activations: int = 0  # output elements
    mac: int = 0  # memory access cost (ShuffleNet V2 §2), elements
    shares: str | None = None  # a shared instance applied again: the layer whose weights it uses


class BlockReportFields:
    name: str
    title: str
    output_shape: list[int]
    output_shapes: list[list[int]] = []  # noqa: RUF012 (see above) every tensor the block hands on (a multi-output block's all)
    params: int
    buffers: int
    macs: int
    layers: int


class ReportFields:
    network: str
    file: str
    parameters: dict[str, Any]
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]
    params: int
    buffers: int
    macs: int
    flops: int
    other_ops: int
    layers: list[LayerReport]
    receptive_field: dict[str, Field] = {}  # noqa: RUF012 (see above) per output
    dtype: str = "float32"
    activations: MemoryFigure | None = None  # every node's output, summed
    peak_activations: MemoryFigure | None = None  # live at once, topological order, freed after last use
    mac: int = 0  # memory access cost (ShuffleNet V2 §2), elements
    scopes: dict[str, str] = {}  # noqa: RUF012 (see above) block path → what it is, e.g. "inverted_residual(c=24, stride=2, expand=6)"


# The fields whose value may be a nested record (a dict of its fields, ordered as its class declares).
_NESTED: dict[tuple[type, str], type] = {
    (LayerReportFields, "receptive_field"): FieldReportFields,
    (ReportFields, "activations"): MemoryFigureFields,
    (ReportFields, "peak_activations"): MemoryFigureFields,
}
_NESTED_BY_KEY: dict[tuple[type, str], type] = {  # a mapping of nested records (by output)
    (ReportFields, "receptive_field"): FieldReportFields,
}

REQUIRED: Any = object()  # the default of a field that has none


def declared_fields(record: type) -> list[tuple[str, Any]]:
    """The fields of a record class above, in declaration order, each with its default (or
    `REQUIRED`): what the pydantic model built on the class has."""
    fields = _FIELDS.get(record)
    if fields is None:
        fields = _FIELDS[record] = [(name, record.__dict__.get(name, REQUIRED)) for name in record.__annotations__]
    return fields


_FIELDS: dict[type, list[tuple[str, Any]]] = {}


def report_json(fields: dict[str, Any], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The report as JSON text, in pieces — what `Report(**fields, layers=rows).model_dump_json(indent=2)`
    returns, without building a model (a 10⁵-layer report would take gigabytes and seconds): `fields`
    are the report's values but its layers (nested records as dicts), `rows` each layer's values."""
    head = _ordered(ReportFields, {**fields, "layers": []})
    yield "{"
    for i, (name, value) in enumerate(head.items()):
        yield ("\n" if i == 0 else ",\n") + f"  {_encode_str(name)}: "
        if name != "layers":
            yield _json(value, "  ")
            continue
        empty = True
        for text in _json_layers(rows):
            yield ("[\n" if empty else ",\n") + text
            empty = False
        yield "[]" if empty else "\n  ]"
    yield "\n}"


def _ordered(record: type, values: dict[str, Any]) -> dict[str, Any]:
    """`values` in the record's field order, its defaults filled in, nested records' fields ordered too."""
    out: dict[str, Any] = {}
    for name, default in declared_fields(record):
        value = values.get(name, default)
        if value is REQUIRED:
            raise KeyError(f"{record.__name__}.{name} has no value and no default")
        nested = _NESTED.get((record, name))
        if nested is not None and isinstance(value, dict):
            value = _ordered(nested, value)
        else:
            nested = _NESTED_BY_KEY.get((record, name))
            if nested is not None:
                value = {k: _ordered(nested, v) if isinstance(v, dict) else v for k, v in value.items()}
        out[name] = value
    return out


# Layer rows: up to this many are written here, in Python; the rest by pydantic_core (the serializer
# `model_dump_json` uses), a chunk at a time. Importing pydantic_core costs as much as writing some
# thousand rows here, and the compiled writer is about three times faster per row: a small network's
# JSON never loads it, a large one's soon pays it back.
_ROWS_WRITTEN_HERE = 2048


def _json_layers(rows: Iterable[dict[str, Any]], chunk: int = 512) -> Iterator[str]:
    """The report's layers as they sit in its JSON (items of the list at nesting "    "), a chunk of
    rows at a time."""
    batch: list[dict[str, Any]] = []
    written = 0
    names = tuple(name for name, _ in declared_fields(LayerReportFields))
    nested = [(name, record, tuple(n for n, _ in declared_fields(record)))
              for (owner, name), record in _NESTED.items() if owner is LayerReportFields]
    for row in rows:
        # Rows made in the declared order, with every field and nested records complete (as
        # `api._layer_rows` makes them), are written as they are; others are put in order first.
        if tuple(row) != names:
            row = _ordered(LayerReportFields, row)
        else:
            for name, record, fields in nested:
                value = row[name]
                if type(value) is dict and tuple(value) != fields:
                    row = {**row, name: _ordered(record, value)}
        batch.append(row)
        if len(batch) == chunk:
            yield _json_items(batch, written)
            written += len(batch)
            batch = []
    if batch:
        yield _json_items(batch, written)


def _json_items(batch: list[dict[str, Any]], written: int) -> str:
    """Rows as items of the report's layer list, at nesting "    " (`written`: rows before them)."""
    if written + len(batch) <= _ROWS_WRITTEN_HERE:
        return _json_rows(batch)
    from pydantic_core import to_json

    # Written as the report's own list is, one level into an object, so the items come out at the
    # report's nesting: what lies between `{"l": [` and `]}` is the text.
    text = to_json({"l": batch}, indent=2).decode("utf-8")
    return text[len('{\n  "l": [\n'):-len("\n  ]\n}")]


def _json_rows(batch: list[dict[str, Any]]) -> str:
    """`_json` of each row, at nesting "    ", joined as list items; the rows have the declared
    fields of a layer, in order (as `_json_layers` hands them on). Neighbouring rows share values (a
    conv's bn and relu have its receptive field and shapes): a field's text is kept while the object repeats."""
    if not _ROW_KEYS:
        _ROW_KEYS.extend(("    {\n" if i == 0 else ",\n") + "      " + _encode_str(name) + ": "
                         for i, (name, _) in enumerate(declared_fields(LayerReportFields)))
    keys = _ROW_KEYS
    last: list[list[Any]] = [[None, ""] for _ in keys]  # per field: the last object written, its text
    items = []
    for row in batch:
        parts: list[str] = []
        for key, kept, value in zip(keys, last, row.values(), strict=True):
            kind = type(value)
            if kind is int:
                text = str(value)
            elif kind is str:
                text = _encode_str(value)
            elif value is None:
                text = "null"
            elif value is kept[0]:
                text = kept[1]
            else:
                text = _json(value, "      ")
                kept[0], kept[1] = value, text  # kept referenced, so the object is not another one later
            parts += (key, text)
        parts.append("\n    }")
        items.append("".join(parts))
    return ",\n".join(items)


_ROW_KEYS: list[str] = []  # each field's text before its value in a row


def _json(value: Any, indent: str) -> str:
    """`value` as pydantic's JSON with indent=2 writes it, at nesting `indent` (serde_json's pretty
    form: one item per line, `[]`/`{}` when empty)."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is bool or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if kind is int:
        return str(value)
    if kind is list or kind is tuple:
        return _json_list(value, indent)
    inner = indent + "  "
    if kind is dict:
        if not value:
            return "{}"
        items = [inner + _encode_key(k) + ": " + _json(v, inner) for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if kind is float:
        return _json_float(value)
    from pydantic_core import to_json  # anything else

    return to_json(value).decode("utf-8")


def _json_float(value: float) -> str:
    """A float as pydantic_core writes it: serde_json's form (ryu's shortest digits — Python's `repr`
    has the same — laid out as serde_json lays them out: `1e+16`, `1.5e-7`, `0.00001`, `100.0`); inf and
    nan as `null`, as `model_dump_json` writes them."""
    if value != value or value in (math.inf, -math.inf):
        return "null"
    text = repr(value)
    sign = "-" if text[0] == "-" else ""
    text = text.lstrip("-")
    if value == 0:
        return sign + "0.0"
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    if exponent:  # d.ddd × 10^e
        digits, point = whole + fraction, int(exponent) + 1
    elif whole != "0":
        digits, point = whole + fraction, len(whole)
    else:  # 0.000ddd
        digits = fraction.lstrip("0")
        point = len(digits) - len(fraction)
    digits = digits.rstrip("0") or "0"
    length = len(digits)  # the value is 0.digits × 10^point
    if length <= point <= 16:
        return sign + digits + "0" * (point - length) + ".0"
    if 0 < point <= 16:
        return sign + digits[:point] + "." + digits[point:]
    if -5 < point <= 0:
        return sign + "0." + "0" * -point + digits
    power = point - 1
    return sign + digits[0] + ("." + digits[1:] if length > 1 else "") + ("e+" if power > 0 else "e") + str(power)


def _json_list(value: list[Any] | tuple[Any, ...], indent: str) -> str:
    if not value:
        return "[]"
    inner = indent + "  "
    if all(type(v) is int for v in value):  # shapes: few distinct ones, on every layer
        key = (indent, tuple(value))
        text = _INT_LISTS.get(key)
        if text is None:
            text = "[\n" + inner + (",\n" + inner).join(map(str, value)) + "\n" + indent + "]"
            if len(_INT_LISTS) < 4096:
                _INT_LISTS[key] = text
        return text
    return "[\n" + ",\n".join([inner + _json(v, inner) for v in value]) + "\n" + indent + "]"


def _encode_key(key: Any) -> str:
    """A mapping key, encoded once: field names and output names repeat on every layer."""
    text = _KEYS.get(key)
    if text is None:
        text = _encode_str(str(key))
        if len(_KEYS) < 4096:
            _KEYS[key] = text
    return text


_KEYS: dict[Any, str] = {}
_INT_LISTS: dict[tuple[str, tuple[int, ...]], str] = {}

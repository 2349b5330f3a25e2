"""The report as pydantic models (`archdsl.api.Report` and its parts), for the Python API: each is
built on the plain declaration of its fields in `archdsl.report`, and serializes to JSON. Imported
on first use of a report object: `analyze --json` writes its JSON from the declaration alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

from .report import (
    REQUIRED,
    BlockReportFields,
    FieldReportFields,
    LayerReportFields,
    MemoryFigureFields,
    ReportFields,
    declared_fields,
)


class _ReportModel(BaseModel):
    # Schemas are built on first validation (the fields' annotations are resolved then, here).
    model_config = ConfigDict(defer_build=True)


class FieldReport(_ReportModel, FieldReportFields):
    __doc__ = FieldReportFields.__doc__


Field = FieldReport | Literal["global"] | None


class MemoryFigure(_ReportModel, MemoryFigureFields):
    pass


class LayerReport(_ReportModel, LayerReportFields):
    pass


class BlockReport(_ReportModel, BlockReportFields):
    pass


class Report(_ReportModel, ReportFields):
    # Each group of layers (a path prefix) → the shapes of the tensors read outside it, in order.
    _group_outputs: dict[str, list[list[int]]] = PrivateAttr(default_factory=dict)
    # Built lazily (see api.build_report): what fills `layers` and `_group_outputs` on first use.
    _pending: Callable[[], tuple[list[LayerReport], dict[str, list[list[int]]]]] | None = PrivateAttr(default=None)
    # The fields computed on first use (see api.build_report), by name: what gives their values
    # (a pass's network_report: them and the other fields of the same pass).
    _later: dict[str, Callable[[], dict[str, Any]]] | None = PrivateAttr(default=None)

    def __getattribute__(self, name: str) -> Any:
        # The layers and the later fields are made on first use — of themselves, or of anything
        # that reads every field (pydantic's serializers, `==`, copies and pickling all go through
        # `__dict__` or the private attributes) — so a report asked for its parameters and MACs
        # never builds a row, nor runs a pass it does not need.
        if name in _HOOKED:
            private = object.__getattribute__(self, "__pydantic_private__")
            if private is not None:
                later = private.get("_later")
                if later and (name in later or name in _READS_ALL):
                    _fill(self, private, {name: later[name]} if name in later else later)
                if (name == "layers" or name in _READS_ALL) and private.get("_pending") is not None:
                    build, private["_pending"] = private["_pending"], None
                    object.__getattribute__(self, "__dict__")["layers"], private["_group_outputs"] = build()
        return object.__getattribute__(self, name)

    def defer(self, layers: Callable[[], tuple[list[LayerReport], dict[str, list[list[int]]]]],
              later: dict[str, Callable[[], dict[str, Any]]]) -> None:
        """Leave the layers (and `_group_outputs`) to `layers`, and each field in `later` to its
        function, until first use (assigning the private attributes one by one would read them)."""
        private = object.__getattribute__(self, "__pydantic_private__")
        private["_pending"], private["_later"] = layers, later or None

    def blocks(self, depth: int) -> list[BlockReport]:
        """Layers aggregated to block paths of at most `depth` components, in execution order."""
        rows: dict[str, BlockReport] = {}
        for layer in self.layers:
            parts = layer.name.split(".")
            key = ".".join(parts[:depth])
            row = rows.get(key)
            if row is None:
                title = self.scopes.get(key, key) if len(parts) > depth else layer.description
                row = rows[key] = BlockReport(name=key, title=title,
                                              output_shape=layer.output_shape, params=0, buffers=0, macs=0, layers=0)
            row.params += layer.params
            row.buffers += layer.buffers
            row.macs += layer.macs
            row.layers += 1
            row.output_shape = layer.output_shape
            row.output_shapes = (self._group_outputs.get(key, layer.output_shapes) if len(parts) > depth
                                 else layer.output_shapes)
        return list(rows.values())

    def _repr_html_(self) -> str:  # Jupyter
        import html

        head = "<tr><th>layer</th><th>op</th><th>output</th><th>params</th><th>MACs</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(x.name)}</td><td>{html.escape(x.description)}</td>"
            f"<td>{'×'.join(map(str, x.output_shape))}</td><td>{x.params:,}</td><td>{x.macs:,}</td></tr>"
            for x in self.layers
        )
        return (f"<p><b>{html.escape(self.network)}</b>: {self.params:,} params, {self.macs:,} MACs</p>"
                f"<table>{head}{body}</table>")


def _fill(report: Report, private: dict[str, Any], wanted: dict[str, Callable[[], dict[str, Any]]]) -> None:
    """Compute the later fields in `wanted` and the others their passes give, validated as the model
    validates them, and marked set."""
    later, pending = private["_later"], private["_pending"]
    sources = list(dict.fromkeys(wanted.values()))
    values: dict[str, Any] = {}
    for source in sources:
        values.update(source())
    # While assigning (which reads `__dict__`), nothing is pending.
    private["_later"], private["_pending"] = None, None
    try:
        validator = object.__getattribute__(report, "__pydantic_validator__")
        for field, value in values.items():
            validator.validate_assignment(report, field, value)
    finally:
        private["_later"] = {k: v for k, v in later.items() if v not in sources} or None
        private["_pending"] = pending


# The names whose use reads every field; those the hook of `Report.__getattribute__` looks at.
_READS_ALL = frozenset({"__dict__", "__pydantic_private__", "__pydantic_fields_set__"})
_HOOKED = _READS_ALL | {"layers"} | {name for name, default in declared_fields(ReportFields) if default is not REQUIRED}

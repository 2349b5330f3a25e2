"""The report as pydantic models (`archdsl.api.Report` and its parts), for the Python API: each is
built on the plain declaration of its fields in `archdsl.report`, and serializes to JSON. Imported
on first use of a report object: `analyze --json` writes its JSON from the declaration alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

from .report import BlockReportFields, FieldReportFields, LayerReportFields, MemoryFigureFields, ReportFields


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

    def __getattribute__(self, name: str) -> Any:
        # The layers are built on first use — of `layers`, or of anything that reads every field
        # (pydantic's serializers, `==`, copies and pickling all go through `__dict__` or the
        # private attributes) — so a report asked only for its totals never builds a row.
        if name in _READS_LAYERS:
            private = object.__getattribute__(self, "__pydantic_private__")
            if private is not None and private.get("_pending") is not None:
                build, private["_pending"] = private["_pending"], None
                object.__getattribute__(self, "__dict__")["layers"], private["_group_outputs"] = build()
        return object.__getattribute__(self, name)

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


_READS_LAYERS = frozenset({"layers", "__dict__", "__pydantic_private__"})

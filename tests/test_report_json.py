"""The streamed JSON report (`Network.report_json`, what `analyze --json` writes) is, byte for byte,
what the pydantic model writes (`analyze().model_dump_json(indent=2)`), whatever the number of layers:
none, fewer than one chunk, and several chunks with a partial last one."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import archdsl.api as api
import archdsl.report as report
from archdsl.api import BlockReport, FieldReport, LayerReport, MemoryFigure, Report


def _chain(n: int) -> str:
    body = f"image -> repeat {n} {{ conv(4, 3) -> relu }} -> output y" if n else "image -> output y"
    return f"network chain {{\n    input image: 4x8x8\n    {body}\n}}\n"


@pytest.mark.parametrize("n", [0, 1, 256, 700])
def test_streamed_report_is_the_models_json(n: int) -> None:
    spec = api.load_string(_chain(n))
    assert "".join(spec.network().report_json()) == spec.network().analyze().model_dump_json(indent=2)


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "efficientnet_b0"])
def test_streamed_zoo_report_is_the_models_json(name: str) -> None:
    spec, _ = api.find(name)
    assert "".join(spec.network(name).report_json()) == spec.network(name).analyze().model_dump_json(indent=2)


@pytest.mark.parametrize("rows_written_here", [0, 512, 1000])
def test_rows_written_here_and_by_pydantic_core_are_the_same(rows_written_here: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to `_ROWS_WRITTEN_HERE` layer rows are written in Python, the rest by pydantic_core: all
    by one, all by the other, and the switch at a chunk boundary or inside a chunk give the same text."""
    monkeypatch.setattr(report, "_ROWS_WRITTEN_HERE", rows_written_here)
    spec = api.load_string(_chain(700))  # 1400 rows: three chunks of 512, a partial fourth
    assert "".join(spec.network().report_json()) == spec.network().analyze().model_dump_json(indent=2)


@pytest.mark.parametrize("model", [FieldReport, MemoryFigure, LayerReport, BlockReport, Report])
def test_each_model_has_the_declared_fields(model: type[BaseModel]) -> None:
    """The JSON writer reads the plain declaration (archdsl/report.py), the models are built on it:
    pydantic takes a plain base class's annotated fields, in their order, with their defaults."""
    (declaration,) = [c for c in model.__mro__ if c.__module__ == "archdsl.report"]
    built = [(name, report.REQUIRED if info.is_required() else info.get_default(call_default_factory=True))
             for name, info in model.model_fields.items()]
    assert built == report.declared_fields(declaration)


def test_floats_are_written_as_pydantic_writes_them() -> None:
    """Floats (a network's parameters, fractional receptive fields) are written without pydantic_core,
    in the form `model_dump_json` gives: serde_json's layout of the shortest digits; inf and nan null."""
    import math
    import random
    import struct

    class Holder(BaseModel):
        value: float

    rng = random.Random(0)
    values = [0.0, -0.0, 1.0, 0.5, 100.0, 1e15, 1e16, 1.5e16, 1e-4, 1e-5, 1.5e-5, 1e-7, 5e-324,
              1.7976931348623157e308, 0.1, 2 / 3, 1e22, math.inf, -math.inf, math.nan]
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(2000)]
    values += [10 ** rng.uniform(-30, 30) * rng.choice((1, -1)) for _ in range(2000)]
    for value in values:
        assert report._json(value, "") == Holder(value=value).model_dump_json()[len('{"value":'):-1], value

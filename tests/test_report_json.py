"""The streamed JSON report (`Network.report_json`, what `analyze --json` writes) is, byte for byte,
what the pydantic model writes (`analyze().model_dump_json(indent=2)`), whatever the number of layers:
none, fewer than one chunk, and several chunks with a partial last one."""

from __future__ import annotations

import pytest

import archdsl.api as api


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

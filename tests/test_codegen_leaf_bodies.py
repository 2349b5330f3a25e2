"""A block instance that holds no block instance has its class body made once per distinct body
(`TorchCodegen._leaf_key`: its layers, how they are wired and who reads them), not once per
instance: a residual stack of 10⁵ layers makes one. What is made once must be what making each
would give: the generated file with the memo equals the file generated with it switched off, for
networks whose instances differ in what only the wiring shows (a downsample branch, a residual
connection kept or left out, an output read by nothing) and for files of families."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import TorchCodegen, generate_family

from .conftest import SPECS

_STACK = """block residual(c, stride) {
    in + (in -> conv(c, 3, stride=stride, pad=1) -> relu -> conv(c, 3, pad=1))
}
block plain(c) {
    in -> conv(c, 3, pad=1) -> relu
}
block split(c) outputs(a, b) {
    a = in -> conv(c, 3, pad=1)
    b = a -> relu
}
network stack {
    input image: 8x16x16
    x = image -> repeat 3 { residual(8, 1) } -> plain(8)
    y = x -> plain(8)
    p, q = x + y -> split(8)
    r, s = q -> split(8)
    p + q + s -> repeat 2 { residual(8, 1) } -> plain(8) -> output out
}
"""


def _both(networks: list[object], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    made = generate_family(networks).text  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        m.setattr(TorchCodegen, "_leaf_key", lambda self, scope: None)
        each = generate_family(networks).text  # type: ignore[arg-type]
    return made, each


def test_a_stack_of_alike_blocks_is_made_once_and_reads_as_made_each(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    body = TorchCodegen._body

    def counted(self: TorchCodegen, scope: tuple[str, ...]) -> object:
        calls.append(len(scope))
        return body(self, scope)

    net = api.load_string(_STACK).network()
    with monkeypatch.context() as m:
        m.setattr(TorchCodegen, "_body", counted)
        generate_family([net])
    # Ten block instances; the three residual blocks of the first repeat are alike (one body),
    # and so are the two of the second; the two `split`s are not (the second's `a` is read by nothing).
    assert calls[0] == 0 and len(calls) - 1 <= 10 - 3
    made, each = _both([net], monkeypatch)
    assert made == each


@pytest.mark.parametrize("file", ["resnet.arch", "mobilenet_v2.arch", "efficientnet.arch", "yolo.arch"])
def test_zoo_files_read_as_made_each(file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = api.load(SPECS / file)
    networks = [spec.network(name) for name in spec.networks[:3]]
    made, each = _both(networks, monkeypatch)
    assert made == each

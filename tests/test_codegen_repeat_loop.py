"""A `repeat` whose passes are applied one after another is a loop in the generated forward
(`for layer in self.repeat: image = layer["conv"](image)`), as a person writes it, not one line per
pass; the module computes what the passes applied by hand, in order, compute."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import _loop_repeats

torch = pytest.importorskip("torch")

_NET = "network toy {{\n    input image: 4x8x8\n    image -> repeat {n} {{ {body} }} -> output y\n}}\n"

# (network body of one pass, passes, the loop's body as generated)
CASES = [
    ("conv(4, 3, pad=1)", 12, ['image = layer["conv"](image)']),
    ("conv(4, 3, pad=1) -> bn", 3, ['image = layer["conv"](image)', 'image = layer["bn"](image)']),
    ("conv(4, 1) -> bn -> conv(4, 3, pad=1)", 2, None),
]


@pytest.mark.parametrize(("body", "n", "loop_body"), CASES)
def test_repeat_is_a_loop_computing_the_passes_in_order(body: str, n: int, loop_body: list[str] | None) -> None:
    spec = api.load_string(_NET.format(n=n, body=body))
    source = api.compile_source(spec)
    forward = source[source.index("def forward"):].splitlines()
    assert forward[1].strip() == "for layer in self.repeat:"
    assert "self.repeat[" not in source.split("def forward")[-1]
    if loop_body is not None:
        assert [line.strip() for line in forward[2:2 + len(loop_body)]] == loop_body
    module = api.build(spec).eval()
    torch.manual_seed(0)
    for m in module.modules():  # random batch-norm statistics: a pass that is skipped or repeated shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 4, 8, 8)
    expected = x
    with torch.no_grad():
        assert len(module.repeat) == n
        for k in range(n):  # the passes by hand: each child's layers in the order the spec lists them
            for layer in module.repeat[k].values():
                expected = layer(expected)
        got = module(x)
    assert torch.equal(got if isinstance(got, torch.Tensor) else got[0], expected)


@pytest.mark.parametrize(("lines", "why"), [
    (["x = self.c[0](x)", "x = self.c[1](x)", "y = torch.relu(x)", "z = self.c[2](y)"],
     "a child the block does not call"),
    (["x = self.c[0](x)", "x = self.c[1](x, self.c[0])"], "pass 1 reads child 0"),
    (["x = self.c[0](x)", "x = self.c[1](y)"], "the passes differ"),
    (["x = self.c[0](x)", "return x"], "one pass"),
])
def test_no_loop_where_the_passes_differ(lines: list[str], why: str) -> None:
    # The first case's container has three children, the third called after the block: a loop over
    # the container would run it in the block too.
    assert _loop_repeats(lines) == lines, why


def test_loop_keeps_what_surrounds_it_and_a_fresh_name() -> None:
    lines = ["layer = self.stem(x)", "layer = self.c[0]['a'](layer)", "layer = torch.relu(layer)",
             "layer = self.c[1]['a'](layer)", "layer = torch.relu(layer)", "return layer"]
    assert _loop_repeats(lines) == ["layer = self.stem(x)", "for layer_1 in self.c:",
                                    "\tlayer = layer_1['a'](layer)", "\tlayer = torch.relu(layer)", "return layer"]


def test_loops_one_after_another_share_their_variable() -> None:
    # Each loop binds `layer` before its body reads it: EfficientNetV2's stages read as torchvision's.
    lines = ["x = self.a[0](x)", "x = self.a[1](x)", "x = self.b[0](x)", "x = self.b[1](x)", "return x"]
    assert _loop_repeats(lines) == ["for layer in self.a:", "\tx = layer(x)", "for layer in self.b:", "\tx = layer(x)",
                                    "return x"]

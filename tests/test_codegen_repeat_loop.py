"""A `repeat` whose passes are applied one after another is a loop in the generated forward
(`for layer in self.repeat: image = layer["conv"](image)`), as a person writes it, not one line per
pass; the module computes what the passes applied by hand, in order, compute."""

from __future__ import annotations

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen.class_body import _ClassBody, _loop_passes
from archdsl.diagnostics import Span

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


def _forward(lines: list[str], children: int = 2, inner: tuple[str, ...] = ()) -> list[str]:
    """`lines` of a class whose container `c` holds `children` numbered children (each a ModuleDict
    of `inner`, or a module), `\x01j` read as child j's reference (`\x01j.a`: its module `a`), after
    _loop_passes: the loop is made from these references, as data, not from the text."""
    body = _ClassBody(frozenset())
    for name in ("x", "y", "layer"):
        body.names.reserve(name)
    refs: dict[str, str] = {}
    for j in range(children):
        for rel in ([(str(j), a) for a in inner] or [(str(j),)]):
            refs[".".join(rel)] = body.add_module(("c", *rel), "nn.Identity()", Span.unknown())
    stem = body.add_module(("stem",), "nn.Identity()", Span.unknown())
    for line in lines:
        for key in sorted(refs, key=len, reverse=True):
            line = line.replace(f"\x01{key}", refs[key])
        body.lines.append(line.replace("\x01stem", stem))
    _loop_passes(body)
    return [body.resolve(line) for line in body.lines]


@pytest.mark.parametrize(("lines", "children", "why"), [
    (["a0 = \x010(x)", "a1 = \x011(a0)", "y = torch.relu(a1)", "z = \x012(y)", "return z"], 3,
     "a child called after another statement: no run of equal passes"),
    (["a0 = \x010(x)", "a1 = \x011(a0, \x010)", "return a1"], 2, "pass 1 reads child 0"),
    (["a0 = \x010(x)", "a1 = \x011(y)", "return a1"], 2, "the passes differ"),
    (["a0 = \x010(x)", "a1 = \x011(a0)", "return a0, a1"], 2, "a value of the first pass read after the run"),
    (["a0 = \x010(x)", "a1 = \x011(a0)", "a2 = \x012(a0)", "return a2"], 3, "pass 2 reads pass 0"),
])
def test_no_loop_where_the_passes_differ(lines: list[str], children: int, why: str) -> None:
    # The first case's container has three children, the third called after the block: a loop over
    # the container would run it in the block too.
    forward = _forward(lines, children)
    assert not any(line.startswith("for ") for line in forward), why


def test_loop_keeps_what_surrounds_it_and_a_fresh_name() -> None:
    # `layer` is a name of the forward: the loop's variable is another.
    lines = ["s = \x01stem(x)", "a0 = \x010.a(s)", "r0 = torch.relu(a0)", "a1 = \x011.a(r0)", "r1 = torch.relu(a1)",
             "return r1"]
    assert _forward(lines, inner=("a",)) == [
        "s = self.stem(x)", "for layer_2 in self.c:", '\ts = layer_2["a"](s)', "\ts = torch.relu(s)", "return s"]


def test_a_value_read_after_the_first_pass_is_copied_into_the_loop() -> None:
    # x is read after the run: the passes hand their values on in a variable of their own.
    lines = ["a0 = \x010(x)", "a1 = \x011(a0)", "return a1 + x"]
    assert _forward(lines) == ["x_2 = x", "for layer_2 in self.c:", "\tx_2 = layer_2(x_2)", "return x_2 + x"]


def test_loops_one_after_another_share_their_variable() -> None:
    body = _ClassBody(frozenset())
    a = [body.add_module(("a", str(j)), "nn.Identity()", Span.unknown()) for j in range(2)]
    b = [body.add_module(("b", str(j)), "nn.Identity()", Span.unknown()) for j in range(2)]
    body.lines = [f"a0 = {a[0]}(x)", f"a1 = {a[1]}(a0)", f"b0 = {b[0]}(a1)", f"b1 = {b[1]}(b0)", "return b1"]
    _loop_passes(body)
    assert [body.resolve(line) for line in body.lines] == [
        "for layer in self.a:", "\tx = layer(x)", "for layer in self.b:", "\tx = layer(x)", "return x"]


def test_a_repeat_whose_input_is_read_again_is_a_loop_computing_the_passes() -> None:
    spec = api.load_string("network toy {\n    input image: 4x8x8\n    y = image -> repeat 3 { conv(4, 3, pad=1) }\n"
                           "    y + image -> output out\n}\n")
    source = api.compile_source(spec)
    assert "for layer in self.repeat:" in source
    module = api.build(spec).eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        expected = x
        for k in range(3):
            expected = module.repeat[k]["conv"](expected)
        got = module(x)
    assert torch.equal(got if isinstance(got, torch.Tensor) else got[0], expected + x)


def test_passes_of_several_outputs_are_a_loop_over_cells() -> None:
    # Each child takes the one before's two outputs swapped (EfficientDet's BiFPN layers): the loop's
    # variables are the first pass's outputs without the child's index, bound to the first inputs.
    lines = ["c_0_p, c_0_q = \x010(x, y)", "c_1_p, c_1_q = \x011(c_0_q, c_0_p)", "c_2_p, c_2_q = \x012(c_1_q, c_1_p)",
             "return c_2_p + c_2_q"]
    assert _forward(lines, 3) == ["q, p = x, y", "for c in self.c:", "\tp, q = c(q, p)", "return p + q"]


def test_no_loop_over_cells_reading_anything_else() -> None:
    lines = ["c_0_p, c_0_q = \x010(x, y)", "c_1_p, c_1_q = \x011(c_0_q, y)", "return c_1_p + c_1_q"]
    assert not any(line.startswith("for ") for line in _forward(lines, 2))

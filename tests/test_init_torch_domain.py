"""Every `init` scheme, on every tensor of every kind of layer, with numbers at PyTorch's edges: the
spec is refused at the argument (E0542), or the generated module builds on the CPU, where
torch.nn.init runs for real. Never a module that fails in its constructor.

A sweep like this found that kaiming, xavier and variance_scaling were accepted on one-dimensional
tensors (a BN weight, a bias), where torch cannot compute a fan ("Fan in and fan out can not be
computed for tensor with fewer than 2 dimensions"), that `bilinear` was accepted on a bias, and that a
negative xavier gain was accepted (normal_ and uniform_ refuse what it gives).
"""

from __future__ import annotations

import pytest

from archdsl import load_string
from archdsl.diagnostics import ArchError
from archdsl.ops import all_ops
from archdsl.weight_init import SCHEMES

torch = pytest.importorskip("torch")

# One layer of each kind `init` sets, and a label per kind (a layer norm on a branch of its own).
NETWORK = """network n {{
    input image: 2x4x4
    image -> conv(2, 1) as conv -> bn as bn -> deconv(2, 2, stride=2) as up -> flatten -> linear(3) as fc
    image -> layernorm as ln -> output z
    {statement}
}}"""

TENSORS = sorted({(op.init_kind, tensor) for op in all_ops() if op.init_kind for tensor in op.init_tensors})

# The values each word argument takes that change what the scheme reads (a fan-in or a fan-out).
MODES = {"kaiming_normal": ["mode=fan_in", "mode=fan_out"], "kaiming_uniform": ["mode=fan_in", "mode=fan_out"],
         "variance_scaling": ["mode=fan_in", "mode=fan_out", "mode=fan_avg", "distribution=uniform",
                              "distribution=normal"],
         "constant": ["1"]}

# Numbers at the edges of what torch takes: beyond 64-bit integers, beyond float32, negative, tiny.
EDGES = ["0", "-1", "-0.0", "1e-320", "-1e20", "2**63 - 1", "2**70", "3.4e38", "-3.4e38", "1e39", "1e300"]


def _refused_or_built(statement: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    try:
        net = load_string(NETWORK.format(statement=statement)).network()
    except ArchError as refused:
        assert [d.code for d in refused.diagnostics] == ["E0542"], refused.diagnostics
        return
    build_module(net)  # runs the init statements on real float32 tensors


@pytest.mark.parametrize(("kind", "tensor"), TENSORS, ids=[f"{k}.{t}" for k, t in TENSORS])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_on_every_tensor_is_refused_or_builds(scheme: str, kind: str, tensor: str) -> None:
    for arguments in MODES.get(scheme, [""]):
        _refused_or_built(f"init {kind}: {tensor}={scheme}({arguments})" if arguments
                          else f"init {kind}: {tensor}={scheme}")


def test_a_scheme_that_reads_a_fan_sets_only_a_tensor_of_two_dimensions() -> None:
    with pytest.raises(ArchError) as caught:
        load_string(NETWORK.format(statement="init bn: weight=kaiming_normal(mode=fan_out), bias=0")).network()
    (d,) = caught.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E0542", 5, 14)
    assert d.message == "`kaiming_normal` reads a fan, and a bn layer's `weight` has one dimension"
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):  # what torch says of it
        torch.nn.init.kaiming_normal_(torch.nn.BatchNorm2d(2).weight, mode="fan_out")


NUMBERS = [(scheme, param.name) for scheme, d in sorted(SCHEMES.items()) for param in d.params if not param.words]


@pytest.mark.filterwarnings("ignore:mean is more than 2 std")  # trunc_normal far off its bounds: torch says so
@pytest.mark.parametrize(("scheme", "param"), NUMBERS, ids=[f"{s}.{p}" for s, p in NUMBERS])
def test_every_number_of_every_scheme_at_the_edges_is_refused_or_builds(scheme: str, param: str) -> None:
    for value in EDGES:
        for kind in ("conv", "linear"):
            _refused_or_built(f"init {kind}: {scheme}({param}={value})")


@pytest.mark.parametrize("op", [op for op in all_ops() if op.init_kind], ids=lambda op: op.name)
def test_an_ops_matrices_are_among_its_tensors(op: type) -> None:
    assert set(op.init_matrices) <= set(op.init_tensors)

"""The seed documents' checkable claims about factorized and grouped convolutions, checked through the
analysis (parameters, MACs and receptive fields as `archdsl analyze` reports them), on the zoo's
networks where they contain the structure and on minimal networks where they do not.

Seeds: /work/shared/seeds/ 001 (ShuffleNet), 002 (GoogLeNet, MobileNet), 003 (Inception line)."""

from __future__ import annotations

from fractions import Fraction

import pytest

import archdsl.api as api
from archdsl.api import FieldReport, LayerReport, Report

from .conftest import network


def _analyze(body: str, input: str = "64x28x28") -> Report:
    """A one-input network `x -> body`."""
    return api.load_string(f"network n {{\n    input x: {input}\n    x -> {body} -> output y\n}}\n",
                           file="claim.arch").network("n").analyze()


def _layer(report: Report, name: str) -> LayerReport:
    return next(x for x in report.layers if x.name == name)


def _size(field: object) -> list[int | float]:
    assert isinstance(field, FieldReport)
    return field.size


def _field_is(layer: LayerReport, size: list[int]) -> bool:
    return isinstance(layer.receptive_field, FieldReport) and layer.receptive_field.size == size


def _scope_macs(report: Report, scope: str) -> int:
    return sum(x.macs for x in report.layers if x.name.startswith(scope + "."))


# ── Seed 003: "两层3*3的卷积的感受野和一层5*5的卷积核的感受野相同" ─────────────────────────────────


@pytest.mark.parametrize("c", [1, 64, 100])
def test_two_3x3_see_what_one_5x5_sees_with_18_25_of_its_weights(c: int) -> None:
    two = _analyze(f"conv({c}, 3, bias=false) -> conv({c}, 3, bias=false)", f"{c}x28x28")
    one = _analyze(f"conv({c}, 5, bias=false)", f"{c}x28x28")
    assert _size(two.receptive_field["y"]) == _size(one.receptive_field["y"]) == [5, 5]
    assert Fraction(two.params, one.params) == Fraction(18, 25)  # 2·3·3·c² / 5·5·c²
    assert Fraction(two.macs, one.macs) == Fraction(18, 25)


def test_inception_v2_block_double_3x3_branch_has_the_5x5_field() -> None:
    """In the zoo: the v2 module's double-3×3 branch sees 5×5, as the v1 module's 5×5 branch."""
    v2 = network("inception_v3_modules.arch", "inception_v2_block_net").analyze()
    v1 = network("googlenet.arch", "inception_v1_block_net").analyze()
    double = [x for x in v2.layers if x.op == "conv" and _field_is(x, [5, 5])]
    assert len(double) == 1 and double[0].description.startswith("conv 3×3")
    assert _size(_layer(v1, "inception_v1_block.branch5x5").receptive_field) == [5, 5]


# ── Seed 003: "一个3*3的卷积核的感受野和一个1*3的卷积核+一个3*1的卷积核相同" ─────────────────────────


def test_1x3_then_3x1_sees_what_3x3_sees() -> None:
    factored = _analyze("conv(64, 1x3) -> conv(64, 3x1)")
    full = _analyze("conv(64, 3)")
    assert _size(factored.receptive_field["y"]) == _size(full.receptive_field["y"]) == [3, 3]


@pytest.mark.parametrize(("c", "ratio"), [(1, "1.25"), (100, "1.497")])
def test_3x3_has_the_seed_s_ratio_of_weights_to_1x3_plus_3x1(c: int, ratio: str) -> None:
    """Seed 003, with one channel and biases: "前者是后者的1.25倍"; with 100 channels: "1.497倍"."""
    factored = _analyze(f"conv({c}, 1x3) -> conv({c}, 3x1)", f"{c}x28x28")
    full = _analyze(f"conv({c}, 3)", f"{c}x28x28")
    assert round(full.params / factored.params, len(ratio) - 2) == float(ratio)


def test_inception_v3_block_b_factorizes_7x7_with_the_7x7_field() -> None:
    """Seed 003's last step, n = 7 in the zoo's Inception-B: 1×7 then 7×1 sees 7×7."""
    report = network("inception_v3_modules.arch", "inception_v3_block_b_net").analyze()
    sevens = [x for x in report.layers if x.op == "conv" and _field_is(x, [7, 7])]
    assert sevens and all("7×1" in x.description or "1×7" in x.description for x in sevens)


# ── Seed 002: inception (3a) without its 1×1 reductions ───────────────────────────────────────────


def _conv_weights(report: Report, names: list[str]) -> int:
    """Weights of the named convs: their parameters less one bias per output channel."""
    total = 0
    for name in names:
        layer = _layer(report, name)
        total += layer.params - layer.output_shape[0]
    return total


def test_inception_3a_reductions_cut_the_weights_as_seed_002_computes() -> None:
    """Seed 002: with reductions 1×1×192×64 + (1×1×192×96 + 3×3×96×128) + (1×1×192×16 + 5×5×16×32);
    without 1×1×192×64 + 3×3×192×128 + 5×5×192×32 — "参数量将增加到原来网络的三倍". The seed's own
    formulas give 2.46×, which it rounds up to three."""
    naive = network("googlenet.arch", "inception_naive_net").analyze()
    v1 = network("googlenet.arch", "inception_v1_block_net").analyze()
    without = _conv_weights(naive, ["inception_naive.branch1x1", "inception_naive.branch3x3",
                                    "inception_naive.branch5x5"])
    with_ = _conv_weights(v1, ["inception_v1_block.branch1x1", "inception_v1_block.branch3x3_reduce",
                               "inception_v1_block.branch3x3", "inception_v1_block.branch5x5_reduce",
                               "inception_v1_block.branch5x5"])
    assert without == 1 * 1 * 192 * 64 + 3 * 3 * 192 * 128 + 5 * 5 * 192 * 32
    assert with_ == 1 * 1 * 192 * 64 + (1 * 1 * 192 * 96 + 3 * 3 * 96 * 128) + (1 * 1 * 192 * 16 + 5 * 5 * 16 * 32)
    assert round(without / with_, 2) == 2.46


def test_inception_v1_module_has_less_than_half_the_naive_module_s_parameters() -> None:
    """Seed 003, from the naive module to v1 at inception (3a): "参数少了一半" (counting everything:
    biases and the pooling projection too)."""
    naive = network("googlenet.arch", "inception_naive_net").analyze()
    v1 = network("googlenet.arch", "inception_v1_block_net").analyze()
    assert v1.params < naive.params / 2


# ── Seed 001 / Zhang et al. 2018 §3.2: unit costs for input c×h×w and bottleneck width m ────────────


@pytest.mark.parametrize("name", ["shufflenet_v1_g1", "shufflenet_v1_g2", "shufflenet_v1_g3", "shufflenet_v1_g4",
                                  "shufflenet_v1_g8", "shufflenet_v1_g3_x2_0"])
def test_shufflenet_unit_costs_hw_2cm_over_g_plus_9m(name: str) -> None:
    """"our ShuffleNet unit requires only hw(2cm/g + 9m) FLOPs": every stride-1 unit (Stage 2 to 4).
    FLOPs there are multiply-adds (Table 1's caption)."""
    report = network("shufflenet_v1.arch", name).analyze()
    groups = report.parameters["groups"]
    units = sorted({x.scope for x in report.layers if x.scope.count(".") == 1 and not x.scope.endswith(".0")})
    assert len(units) == 3 + 7 + 3
    for unit in units:
        gconv2 = _layer(report, unit + ".gconv2")
        c, h, w = gconv2.output_shape
        m = c // 4
        assert _scope_macs(report, unit) == h * w * (2 * c * m // groups + 9 * m), unit


@pytest.mark.parametrize(("name", "unit", "groups"), [("resnet50", "layer3.1", 1),
                                                      ("resnext50_32x4d", "layer3.1", 32)])
def test_resnet_and_resnext_units_cost_what_shufflenet_s_paper_says(name: str, unit: str, groups: int) -> None:
    """Same paragraph: "ResNet unit requires hw(2cm + 9m²) FLOPs and ResNeXt has hw(2cm + 9m²/g)";
    here on the zoo's bottlenecks (c = 1024 in and out, 14×14)."""
    report = network("resnet.arch", name).analyze()
    c, h, w = _layer(report, unit + ".conv3").output_shape
    m = _layer(report, unit + ".conv1").output_shape[0]
    assert _scope_macs(report, unit) == h * w * (2 * c * m + 9 * m * m // groups)


# ── Seed 002: depthwise separable convolution costs 1/N + 1/D_K² of a standard one ─────────────────


@pytest.mark.parametrize(("m", "n", "k"), [(32, 64, 3), (512, 512, 3), (96, 24, 5)])
def test_depthwise_separable_costs_1_over_n_plus_1_over_k_squared(m: int, n: int, k: int) -> None:
    """Seed 002 (MobileNet §3.1): D_K·D_K·M·D_F·D_F + M·N·D_F·D_F over D_K·D_K·M·N·D_F·D_F."""
    separable = _analyze(f"conv({m}, {k}, groups={m}, bias=false) -> conv({n}, 1, bias=false)", f"{m}x28x28")
    standard = _analyze(f"conv({n}, {k}, bias=false)", f"{m}x28x28")
    assert Fraction(separable.macs, standard.macs) == Fraction(1, n) + Fraction(1, k * k)

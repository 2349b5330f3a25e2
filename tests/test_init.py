"""Initialization: the spec's `init` statements start a generated module as its canonical
implementation starts, and each scheme of the registry does what its definition says.

The zoo comparison builds the canonical model and the generated module with fixed seeds and compares
every parameter tensor right after construction: a constant one (BN weights and biases, zeroed
biases, `zero_init_residual`) must be equal exactly; a random one must agree in mean and standard
deviation within sampling error. Both sides draw n independent values from one distribution of
standard deviation σ (estimated by the canonical tensor's sample std): a sample mean has standard
error σ/√n, so two means differ by σ·√(2/n) at one standard error; a sample standard deviation has
standard error ≈ σ/√(2n) (normal data; less for uniform data, whose kurtosis is lower), so two
differ by σ/√n. The bound is Z = 6 standard errors: with a few thousand comparisons the chance that
a correct initialization fails one is below 1e-5 (and the seeds are fixed, so a result never changes).
A tensor of fewer than MIN_N values says too little for that: it is checked for the scheme's
support instead (a non-constant tensor, within 6σ of the canonical mean).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace

import pytest

from archdsl import load, load_string
from archdsl.diagnostics import ArchError
from archdsl.weight_init import SCHEMES

from .canonical import CANONICAL, Canonical
from .conftest import SPECS, zoo

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from .ports import dcgan, nin, shufflenet_v1, slimming  # noqa: E402

Z = 6.0
MIN_N = 100

PRESENT = set(zoo())
# torchvision's and timm's classifiers (timm's darknet53 is another network than the spec's, darknet's own).
TORCHVISION = [c for c in CANONICAL if c.library == "torchvision" and "." not in c.constructor
               and (c.file, c.network) in PRESENT]
TIMM = [c for c in CANONICAL if c.library == "timm" and c.other_function is None and (c.file, c.network) in PRESENT]
# torchvision's detection models and backbones, built without weights (weights_backbone=None), and
# effdet's EfficientDets (pretrained_backbone=False): every part starts as its own constructor starts
# it (ResNet's, VGG's or timm's EfficientNet's init in the backbone, FPN's or BiFPN's, the heads').
DETECTION = [c for c in CANONICAL if (c.file, c.network) in PRESENT
             and (c.library == "effdet" or (c.library == "torchvision" and "." in c.constructor))]
# Small enough for the default run (each builds in about a second on two cores); the rest run under -m slow.
FAST = {"resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0", "shufflenet_v2_x0_5",
        "resnet50_fpn"}
CASES = [c if c.network in FAST else pytest.param(c, marks=pytest.mark.slow) for c in TORCHVISION + TIMM + DETECTION]


def _canonical(case: Canonical, **kwargs: object) -> torch.nn.Module:
    args = {**case.kwargs, **kwargs}
    if "init_weights" in args:  # the tests' table turns it off for speed; the builders' default is on
        args["init_weights"] = True
    torch.manual_seed(0)
    model: torch.nn.Module = replace(case, kwargs=args).build()
    return model


def _generated(case: Canonical, params: dict[str, object] | None = None, strip: bool = False) -> torch.nn.Module:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = load(SPECS / case.file).network(case.network, params)
    if strip:  # the spec without its `init` statements: PyTorch's defaults
        net.ir.inits = []
    torch.manual_seed(1)
    return build_module(net)


def _pairs(ref: torch.nn.Module, gen: torch.nn.Module, left_out: str | None = None,
           rename: Callable[[str], str] | None = None) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, canonical tensor, generated tensor) for every parameter: by name where the names agree
    (the canonical ones after `rename`, as tests/canonical.py gives it), else in registration order,
    as archdsl.compiler.backends.weights pairs them. `left_out`: the suffix of the canonical
    parameters the spec leaves out."""
    theirs = {(rename or str)(k): v for k, v in ref.named_parameters()
              if left_out is None or not k.endswith(left_out)}
    ours = dict(gen.named_parameters())
    if set(ours) <= set(theirs):
        assert set(ours) == set(theirs)
        pairs = [(k, theirs[k], v) for k, v in ours.items()]
    else:
        assert len(ours) == len(theirs)
        pairs = [(k, t, v) for (k, v), t in zip(ours.items(), theirs.values(), strict=True)]
    for k, t, v in pairs:
        assert t.shape == v.shape, k
    return [(k, t.detach(), v.detach()) for k, t, v in pairs]


def _mismatches(ref: torch.nn.Module, gen: torch.nn.Module, left_out: str | None = None,
                rename: Callable[[str], str] | None = None) -> list[str]:
    out = []
    for name, theirs, ours in _pairs(ref, gen, left_out, rename):
        if bool(theirs.min() == theirs.max()):  # a constant: exactly
            if not torch.equal(theirs, ours):
                out.append(f"{name}: constant {theirs.flatten()[0].item()}, generated not")
            continue
        n, sigma = theirs.numel(), theirs.std().item()
        mean_gap, std_gap = abs(ours.mean().item() - theirs.mean().item()), abs(ours.std().item() - sigma)
        if n < MIN_N:
            if bool(ours.min() == ours.max()) or (ours - theirs.mean()).abs().max().item() > Z * sigma:
                out.append(f"{name}: {n} values outside the canonical scheme's range")
        elif mean_gap > Z * sigma * math.sqrt(2 / n) or std_gap > Z * sigma / math.sqrt(n):
            out.append(f"{name}: mean {ours.mean().item():.4g} std {ours.std().item():.4g}, "
                       f"canonical {theirs.mean().item():.4g} {sigma:.4g} (n={n})")
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.network)
def test_weights_start_as_the_canonical_models(case: Canonical) -> None:
    assert _mismatches(_canonical(case), _generated(case), rename=case.rename) == []


# The reference implementations that exist only as source (tests/ports/), each with the
# initialization its upstream runs: (file, network, builder).
PORTS: list[tuple[str, str, Callable[[], torch.nn.Module]]] = [
    ("dcgan.arch", "dcgan_generator", lambda: dcgan.Generator().apply(dcgan.weights_init)),
    ("dcgan.arch", "dcgan_discriminator", lambda: dcgan.Discriminator().apply(dcgan.weights_init)),
    ("nin.arch", "nin_cifar10", lambda: nin.caffe_fillers(nin.nin_cifar10(), nin.CIFAR10_WEIGHT_STD)),
    ("nin.arch", "nin_imagenet", lambda: nin.caffe_fillers(nin.nin_imagenet(), nin.IMAGENET_WEIGHT_STD)),
    ("slimming.arch", "vgg19_cifar", lambda: slimming.vgg("cifar10", depth=19)),
    ("slimming.arch", "resnet164_cifar", lambda: slimming.resnet(164, "cifar10")),
    ("slimming.arch", "densenet40_cifar_pytorch", lambda: slimming.densenet(40, dataset="cifar10")),
    # megvii's layers in the paper's order (the shuffle moved, shufflenet_v1.arch): their parameters pair up
    *(("shufflenet_v1.arch", name, lambda g=g, s=s: shufflenet_v1.ShuffleNetV1(model_size=s, group=g))
      for name, g, s in [("shufflenet_v1_g3", 3, "1.0x"), ("shufflenet_v1_g8_x0_5", 8, "0.5x")]),
]
FAST_PORTS = {"dcgan_generator"}


@pytest.mark.parametrize(("file", "network_name", "build"),
                         [p if p[1] in FAST_PORTS else pytest.param(*p, marks=pytest.mark.slow) for p in PORTS],
                         ids=[p[1] for p in PORTS])
def test_weights_start_as_the_reference_ports(file: str, network_name: str,
                                               build: Callable[[], torch.nn.Module]) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.manual_seed(0)
    ref = build()
    torch.manual_seed(1)
    gen = build_module(load(SPECS / file).network(network_name))
    # The slimming authors' channel-selection masks (ones), which slimming.arch leaves out.
    assert _mismatches(ref, gen, left_out="select.indexes") == []


# darknet's networks: no Python model to build. Its make_*_layer functions draw each weight from the
# layer's fan-in (c/groups·size·size for a [convolutional], `inputs` for a [connected]): pjreddie's
# convolutions sqrt(2/fan_in)·rand_normal() (src/convolutional_layer.c @f6afaab), AlexeyAB's
# sqrt(2/fan_in)·rand_uniform(-1, 1) (@59596d7), both darknets' [connected] layers
# sqrt(2/inputs)·rand_uniform(-1, 1); biases 0, BN scales 1. The 2015 darknet of yolov1_paper
# (@8c5364f5) draws its convolutions uniform too, and sets a [connected] layer's biases to its scale
# (`uniform+scale_bias`). The generated module's tensors are checked against those formulas, as the
# schemes are below.
DARKNET = [("darknet.arch", "darknet19", "normal"), ("darknet.arch", "darknet53", "normal"),
           ("yolo.arch", "yolov1", "normal"), ("yolo.arch", "yolov2", "normal"), ("yolo.arch", "yolov3", "normal"),
           ("yolo.arch", "yolov3_tiny", "normal"), ("yolo.arch", "yolov4", "uniform"),
           ("yolo.arch", "yolov1_paper", "uniform+scale_bias")]
FAST_DARKNET = {"yolov3_tiny"}


@pytest.mark.parametrize(("file", "network_name", "conv_draw"),
                         [c if c[1] in FAST_DARKNET else pytest.param(*c, marks=pytest.mark.slow) for c in DARKNET],
                         ids=[c[1] for c in DARKNET])
def test_weights_start_as_darknet_draws_them(file: str, network_name: str, conv_draw: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.manual_seed(1)
    module = build_module(load(SPECS / file).network(network_name))
    checked = 0
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert bool((m.weight == 1).all()) and not m.bias.any()
        elif isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            w = m.weight.detach()
            scale = math.sqrt(2 / w[0].numel())
            if conv_draw == "normal" and isinstance(m, torch.nn.Conv2d):
                _normal(w, 0, scale)
            else:
                _uniform(w, -scale, scale)
            if conv_draw.endswith("+scale_bias") and isinstance(m, torch.nn.Linear):
                assert torch.allclose(m.bias, torch.full_like(m.bias, scale), rtol=1e-6, atol=0)
            else:
                assert m.bias is None or not m.bias.any()
            checked += 1
    assert checked > 0


def _upsample_filt(size: int) -> torch.Tensor:
    """fcn.berkeleyvision.org @1305c73 surgery.py, upsample_filt, in torch."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    return (1 - (og[:, None] - center).abs() / factor) * (1 - (og[None, :] - center).abs() / factor)


@pytest.mark.slow
@pytest.mark.parametrize("network_name", ["fcn32s_vgg16", "fcn8s_vgg16"])
def test_fcn_starts_as_its_solver_leaves_it(network_name: str) -> None:
    """solve.py's surgery.interp sets every `up…` deconvolution's kernel from each channel to itself
    to upsample_filt(k), zero across channels; the score layers keep Caffe's constant 0."""
    from archdsl.compiler.backends.torch_codegen import build_module

    module = build_module(load(SPECS / "fcn.arch").network(network_name))
    ups = {k: m for k, m in module.named_modules() if isinstance(m, torch.nn.ConvTranspose2d)}
    scores = {k: m for k, m in module.named_modules() if k.split(".")[-1].startswith("score_")}
    assert ups and scores
    for m in ups.values():
        w = m.weight.detach()
        eye = torch.eye(w.size(0), dtype=torch.bool)
        assert torch.allclose(w[eye], _upsample_filt(w.size(-1)).float().expand(w.size(0), -1, -1))
        assert not w[~eye].any()
    for m in scores.values():
        assert not m.weight.any() and not m.bias.any()


def test_the_comparison_sees_pytorch_defaults() -> None:
    """Without its `init` statements, resnet18 starts with PyTorch's defaults, which the comparison
    must catch: conv1's std is 1/sqrt(3·147) = 0.048 there, sqrt(2/(64·49)) = 0.025 in torchvision."""
    case = next(c for c in TORCHVISION if c.network == "resnet18")
    found = _mismatches(_canonical(case), _generated(case, strip=True))
    assert any(m.startswith("conv1.weight:") for m in found)


@pytest.mark.parametrize("network_name", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_zero_init_residual(network_name: str) -> None:
    """torchvision's ResNet(zero_init_residual=True) zeroes the last BN weight of each residual branch
    (bn2 of BasicBlock, bn3 of Bottleneck); the spec's parameter of the same name does the same."""
    case = next(c for c in TORCHVISION if c.network == network_name)
    ref = _canonical(case, zero_init_residual=True)
    gen = _generated(case, {"zero_init_residual": True})
    assert _mismatches(ref, gen) == []
    last = "bn3" if network_name == "resnet50" else "bn2"
    zeroed = [k for k, v in gen.named_parameters() if k.endswith(f"{last}.weight") and not v.any()]
    assert len(zeroed) == sum(1 for k, _ in ref.named_parameters() if k.endswith(f"{last}.weight")) > 0


# ---------------------------------------------------------------------------------------------
# Each scheme on one large conv (64 → 64, 3×3: n = 36,864; fan_in = fan_out = 576; with 4 groups n = 9,216), against the
# formulas of torch.nn.init's documentation (Kaiming, Xavier, normal, uniform, trunc_normal,
# constant) and TensorFlow's VarianceScaling documentation (variance_scaling).

FAN = 64 * 9


def _conv_weight(scheme: str) -> torch.Tensor:
    groups = 4 if "per_group" in scheme else 1
    spec = load_string(f"""
network n {{
    input image: 64x8x8
    init conv: {scheme}, bias=0
    image -> conv(64, 3, groups={groups}) as conv
}}""")
    from archdsl.compiler.backends.torch_codegen import build_module

    torch.manual_seed(0)
    module = build_module(spec.network())
    assert not module.conv.bias.any()
    return module.conv.weight.detach()


def _normal(w: torch.Tensor, mean: float, std: float) -> None:
    n = w.numel()
    assert abs(w.mean().item() - mean) < Z * std / math.sqrt(n)
    assert abs(w.std().item() - std) < Z * std / math.sqrt(2 * n)


def _uniform(w: torch.Tensor, a: float, b: float) -> None:
    rounding = 1e-6 * (b - a)  # the bounds as float32 holds them
    assert a - rounding <= w.min().item() and w.max().item() <= b + rounding
    _normal(w, (a + b) / 2, (b - a) / math.sqrt(12))  # mean and std of U(a, b)


GAIN_RELU = math.sqrt(2)  # torch.nn.init.calculate_gain("relu"), and "leaky_relu" with a = 0
SCHEME_CASES = {
    "kaiming_normal": [("kaiming_normal(mode=fan_out, nonlinearity=relu)",
                        lambda w: _normal(w, 0, GAIN_RELU / math.sqrt(FAN))),
                       ("kaiming_normal(a=1, nonlinearity=leaky_relu)",  # gain sqrt(2 / (1 + a²)) = 1
                        lambda w: _normal(w, 0, 1 / math.sqrt(FAN)))],
    "kaiming_uniform": [("kaiming_uniform", lambda w: _uniform(w, -GAIN_RELU * math.sqrt(3 / FAN),
                                                              GAIN_RELU * math.sqrt(3 / FAN)))],
    "xavier_normal": [("xavier_normal(gain=2)", lambda w: _normal(w, 0, 2 * math.sqrt(2 / (FAN + FAN))))],
    "xavier_uniform": [("xavier_uniform", lambda w: _uniform(w, -math.sqrt(6 / (FAN + FAN)),
                                                            math.sqrt(6 / (FAN + FAN))))],
    "normal": [("normal(mean=0.5, std=0.1)", lambda w: _normal(w, 0.5, 0.1))],
    "uniform": [("uniform(a=-0.3, b=0.1)", lambda w: _uniform(w, -0.3, 0.1))],
    # Cut at ±0.5 of a unit normal: every value inside (torch's bounds are absolute).
    "trunc_normal": [("trunc_normal(std=1, a=-0.5, b=0.5)",
                      lambda w: _check(w.min().item() >= -0.5 and w.max().item() <= 0.5 and w.std().item() > 0.25))],
    "constant": [("constant(0.25)", lambda w: _check(bool((w == 0.25).all()))),
                 ("-1.5", lambda w: _check(bool((w == -1.5).all())))],
    "zeros": [("zeros", lambda w: _check(not w.any()))],
    "ones": [("ones", lambda w: _check(bool((w == 1).all())))],
    "variance_scaling": [
        # TensorFlow: uniform within ±sqrt(3·scale/n); normal with std sqrt(scale/n); truncated normal
        # with std sqrt(scale/n) after cutting at two standard deviations of the normal drawn.
        ("variance_scaling(scale=1/3, mode=fan_out, distribution=uniform)",
         lambda w: _uniform(w, -1 / math.sqrt(FAN), 1 / math.sqrt(FAN))),
        ("variance_scaling(scale=2, distribution=normal)", lambda w: _normal(w, 0, math.sqrt(2 / FAN))),
        ("variance_scaling(mode=fan_avg)", lambda w: _truncated(w, math.sqrt(1 / FAN))),
    ],
    # fcn.berkeleyvision.org surgery.upsample_filt(3): factor 2, center 1 → [0.5, 1, 0.5] per axis,
    # each channel's kernel to itself, zero across channels
    "bilinear": [("bilinear", lambda w: _check(
        torch.equal(w[5, 5], torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]))
        and float(w.abs().sum()) == 64 * 4.0))],
    "variance_scaling(mode=fan_out_per_group)": [
        # timm's fix_group_fanout: a conv of 4 groups has a fan-out of 64 / 4 · 9 = 144
        ("variance_scaling(scale=2, mode=fan_out_per_group, distribution=normal)",
         lambda w: _normal(w, 0, math.sqrt(2 / 144))),
        # effdet's _glorot_uniform(w, groups=4): fan-in 16 · 9 = 144 (a group's inputs), fan-out 144,
        # bound sqrt(3 / 144)
        ("variance_scaling(mode=fan_avg_per_group, distribution=uniform)",
         lambda w: _uniform(w, -math.sqrt(3 / 144), math.sqrt(3 / 144))),
    ],
}


def _check(ok: bool) -> None:
    assert ok


def _truncated(w: torch.Tensor, std: float) -> None:
    drawn = std / 0.87962566103423978  # TensorFlow's constant: the std of a unit normal cut at ±2
    assert w.abs().max().item() <= 2 * drawn
    _normal(w, 0, std)


def test_every_scheme_is_tested() -> None:
    assert {k.split("(")[0] for k in SCHEME_CASES} == set(SCHEMES)


@pytest.mark.parametrize(("scheme", "check"), [c for cases in SCHEME_CASES.values() for c in cases],
                         ids=[s for cases in SCHEME_CASES.values() for s, _ in cases])
def test_scheme(scheme: str, check: object) -> None:
    assert callable(check)
    check(_conv_weight(scheme))


# Arguments torch.nn.init refuses where the module is built, each with the call that refuses it
# (run here): archdsl refuses them at the spec's argument instead.
OUT_OF_DOMAIN: list[tuple[str, Callable[[torch.Tensor], object]]] = [
    ("normal(std=-1)", lambda t: torch.nn.init.normal_(t, std=-1.0)),  # "normal expects std >= 0.0"
    ("trunc_normal(std=0)", lambda t: torch.nn.init.trunc_normal_(t, std=0.0)),  # divides by std
    ("trunc_normal(a=1, b=0)", lambda t: torch.nn.init.trunc_normal_(t, a=1.0, b=0.0)),
    ("uniform(a=2)", lambda t: torch.nn.init.uniform_(t, a=2.0, b=1.0)),  # "[from, to) range"
    # the truncated normal the backend writes for it, its std sqrt(scale / fan) / 0.8796…
    ("variance_scaling(scale=0)", lambda t: torch.nn.init.trunc_normal_(t, std=0.0, a=-0.0, b=0.0)),
    # numbers beyond what torch sets a float32 tensor with (a fuzzer's mutation of fpn.arch's
    # `init bn: weight=1` into `weight=2**70` built a module whose construction failed)
    ("2**70", lambda t: torch.nn.init.constant_(t, 2**70)),  # "int too big to convert"
    ("constant(-1e300)", lambda t: torch.nn.init.constant_(t, -1e300)),  # "cannot be converted to type float"
    ("uniform(a=-3e38, b=3e38)", lambda t: torch.nn.init.uniform_(t, a=-3e38, b=3e38)),  # "to-from <= max"
    ("uniform(b=1e39)", lambda t: torch.nn.init.uniform_(t, a=0.0, b=1e39)),  # "to is out of bounds"
    ("kaiming_normal(a=1e300)", lambda t: torch.nn.init.kaiming_normal_(t, a=1e300)),  # a**2 overflows
    # the bound on a 1×1 layer of one channel in and out (the largest a conv gives it), gain·√3
    ("xavier_uniform(gain=1e38)", lambda t: torch.nn.init.xavier_uniform_(t[:1, :1], gain=1e38)),
]


@pytest.mark.parametrize(("scheme", "torch_call"), OUT_OF_DOMAIN, ids=[s for s, _ in OUT_OF_DOMAIN])
def test_an_argument_torch_refuses_is_refused_in_the_spec(scheme: str,
                                                          torch_call: Callable[[torch.Tensor], object]) -> None:
    with pytest.raises((RuntimeError, ZeroDivisionError, OverflowError)):
        torch_call(torch.empty(8, 8))
    with pytest.raises(ArchError) as caught:
        load_string(f"network n {{\n    input image: 3x8x8\n    image -> conv(4, 3) as conv\n"
                    f"    init conv: {scheme}\n}}").network()
    assert [d.code for d in caught.value.diagnostics] == ["E0542"]
    assert caught.value.diagnostics[0].span.line == 4


def test_an_integer_beyond_64_bits_is_refused_wherever_a_number_is_taken() -> None:
    """torch reads an integer argument as a 64-bit one where it fills a tensor (the constant above);
    normal_ would round `2**64` to a float, but one rule for every number says what the spec means:
    the hint gives the float to write."""
    with pytest.raises(ArchError) as caught:
        load_string("network n {\n    input image: 3x8x8\n    image -> conv(4, 3) as conv\n"
                    "    init conv: normal(mean=2**64)\n}").network()
    (d,) = caught.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E0542", 4, 28)
    assert "64-bit" in d.message and d.hint == "write it as a float: `1.8446744073709552e+19`"


def test_the_numbers_at_torchs_limits_build() -> None:
    """What the refusals above leave is what torch takes: float32's largest constant, the largest
    64-bit integer, a uniform range as wide as float32 allows, xavier_uniform's largest gain on the
    1×1 layer of one channel that makes its bound the largest."""
    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.ops.attr_schema import FLOAT32_MAX
    from archdsl.weight_init import SCHEMES

    gain = SCHEMES["xavier_uniform"].params[0].most
    net = load_string(f"network n {{\n    input image: 1x4x4\n    image -> conv(1, 1) as conv -> bn as bn"
                      f" -> flatten -> linear(2) as fc\n    init conv: xavier_uniform(gain={gain!r}), bias=2**63 - 1\n"
                      f"    init bn: weight={FLOAT32_MAX!r}, bias=-{FLOAT32_MAX!r}\n"
                      f"    init linear: uniform(a=-{FLOAT32_MAX / 2!r}, b={FLOAT32_MAX / 2!r}), bias=0\n}}").network()
    module = build_module(net)
    assert module.bn.weight[0].item() == FLOAT32_MAX and module.conv.bias.item() == float(2**63 - 1)
    assert module.fc.weight.abs().max().item() <= FLOAT32_MAX / 2


# ---------------------------------------------------------------------------------------------
# The rules' semantics


def _inits(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each layer's final scheme per tensor, as the rules resolve (no torch)."""
    net = load_string(text).network()
    final: dict[str, dict[str, str]] = {}
    for rule in net.ir.inits:
        for name in rule.nodes:
            node = net.ir.node(name)
            for tensor, scheme, _ in rule.schemes:
                if tensor in node.op_class.init_parameters(node.attrs):
                    final.setdefault(name, {})[tensor] = scheme.text()
    return {k: sorted(v.items()) for k, v in final.items()}


BLOCK = """
block unit(c, zero=false) {
    y = in -> conv(c, 3, bias=false) as conv -> bn as bn
    if zero { init bn as bn: weight=0 }
    init conv: normal(std=0.5)
    in + y
}
network n(zero=false) {
    input image: 8x8x8
    init conv: kaiming_normal(mode=fan_out), bias=zeros
    image -> unit(8, zero=zero) as a -> unit(8) as b -> conv(4, 1) as head
    init bn: weight=1, bias=0
}
"""


def test_a_block_overrides_the_network_and_a_later_rule_an_earlier() -> None:
    got = _inits(BLOCK.replace("network n(zero=false)", "network n(zero=true)"))
    assert got["a.conv"] == [("weight", "normal(std=0.5)")]  # the block's rule wins
    assert got["a.bn"] == [("bias", "constant(value=0)"), ("weight", "constant(value=0)")]
    assert got["b.bn"] == [("bias", "constant(value=0)"), ("weight", "constant(value=1)")]
    assert got["head"] == [("bias", "zeros"), ("weight", "kaiming_normal(mode=fan_out)")]


def test_generated_code_reads_like_torchvision() -> None:
    from archdsl.compiler.backends.torch_codegen import generate_source

    src = generate_source(load_string(BLOCK.replace("network n(zero=false)", "network n(zero=true)")).network())
    assert "        for m in self.modules():\n            if isinstance(m, nn.Conv2d):\n" \
           '                nn.init.kaiming_normal_(m.weight, mode="fan_out")\n' \
           "                if m.bias is not None:\n                    nn.init.zeros_(m.bias)\n" in src
    assert "nn.init.constant_(self.a.bn.weight, 0)" in src  # one instance of `unit` zeroes: no loop over Unit


OWN = """
block pair(c) {
    in -> conv(c, 3, pad=1) as a -> relu -> conv(c, 3, pad=1, bias=false) as b
    init conv: normal(std=0.5), bias=zeros
}
block head(c) {
    in -> conv(c, 3, pad=1) as a -> relu -> conv(c, 1) as b
}
network n {
    input image: 8x8x8
    image -> pair(8) as p -> pair(8) as q -> head(8) as h -> conv(4, 1) as out
    init conv as h: normal(std=0.25), bias=zeros
    init conv as h.b: bias=1
}
"""


def test_a_block_rule_no_other_crosses_is_its_class_own_and_a_labelled_part_one_loop() -> None:
    from archdsl.compiler.backends.torch_codegen import build_module, generate_source

    net = load_string(OWN).network()
    src = generate_source(net)
    pair = src[src.index("class Pair("):src.index("class Head(")]
    assert "        # Initialization: the init statement of block pair.\n" \
           "        for m in self.modules():\n            if isinstance(m, nn.Conv2d):\n" in pair  # as timm's blocks
    network = src[src.index("class N("):]
    assert "isinstance(m, Pair)" not in network and "get_submodule" not in network
    assert "        for m in self.h.modules():\n            if isinstance(m, nn.Conv2d):\n" in network
    assert network.index("self.h.modules()") < network.index("nn.init.constant_(self.h.b.bias, 1)")
    torch.manual_seed(0)
    module = build_module(net)
    assert module.h.b.bias.eq(1).all() and module.h.a.bias.eq(0).all() and module.p.a.bias.eq(0).all()
    assert abs(float(module.q.b.weight.detach().std()) - 0.5) < 0.05  # 576 draws: standard error 0.015
    assert abs(float(module.h.a.weight.detach().std()) - 0.25) < 0.03
    # A block rule that another rule crosses stays in the network, where the order of the two holds.
    crossed = generate_source(load_string(OWN.replace("init conv as h:", "init conv:")).network())
    assert "isinstance(m, Pair)" in crossed and "Initialization: the init statement of block" not in crossed


# A block whose second statement sets again some layers its first set (torchvision's SSD backbone:
# VGG's kaiming_normal on every convolution, then _xavier_init on the extra layers).
TWICE = """
block pair(c) {
    in -> conv(c, 3, pad=1) as a -> relu -> conv(c, 3, pad=1) as b
    init conv: normal(std=0.5), bias=zeros
    init conv as b: weight=0.25
}
network n {
    input image: 8x8x8
    image -> pair(8) as p -> pair(8) as q -> conv(4, 1) as out
}
"""


def test_a_block_statements_that_set_the_same_layers_are_its_class_own_in_their_order() -> None:
    from archdsl.compiler.backends.torch_codegen import build_module, generate_source

    net = load_string(TWICE).network()
    src = generate_source(net)
    pair = src[src.index("class Pair("):src.index("class N(")]
    assert "        # Initialization: the init statements of block pair.\n" in pair
    assert pair.index("nn.init.normal_(m.weight, std=0.5)") < pair.index("nn.init.constant_(self.b.weight, 0.25)")
    assert "nn.init" not in src[src.index("class N("):]
    torch.manual_seed(0)
    module = build_module(net)
    for unit in (module.p, module.q):  # the later statement wins where both set a tensor
        assert unit.b.weight.eq(0.25).all() and unit.b.bias.eq(0).all() and unit.a.bias.eq(0).all()
        assert abs(float(unit.a.weight.detach().std()) - 0.5) < 0.05  # 576 draws: standard error 0.015
    # A network rule that crosses them keeps all three in the network, in their order.
    crossed = generate_source(load_string(TWICE.replace("-> conv(4, 1) as out", "-> conv(4, 1) as out\n"
                                                        "    init conv as p.a: normal(std=2.0)")).network())
    assert "Initialization: the init statements of block" not in crossed


def test_a_number_instances_differ_in_is_computed_by_the_block_class() -> None:
    # ShuffleNet V1's units draw each convolution with std 1 / (its input channels per group),
    # megvii's _initialize_weights: normal_(m.weight, 0, 1.0 / m.weight.shape[1]). The unit's
    # classes compute it from their arguments, so a unit built with other widths draws as megvii's does.
    from archdsl.compiler.backends.torch_codegen import generate_source

    src = generate_source(load(SPECS / "shufflenet_v1.arch").network("shufflenet_v1_g3"))
    assert "get_submodule" not in src[src.index("class ShufflenetV1G3("):]  # no layer set one by one
    module: dict[str, object] = {}
    exec(compile(src, "generated.py", "exec"), module)
    torch.manual_seed(0)
    unit = module["ShufflenetUnit"](480, 480, 3)  # type: ignore[operator]  # a stride-1 unit of Stage 3
    for conv in (unit.gconv1, unit.gconv2):
        expected = 1 / conv.weight.shape[1]
        assert abs(float(conv.weight.detach().std()) - expected) < 0.05 * expected, (conv, expected)


# Two instances of a block whose init statement reads what the block's class does not take (`d`
# builds no layer): the class cannot compute it, and the network sets each layer with its number.
UNTAKEN = """
block unit(c, d) {
    in -> conv(c, 1) as a
    init conv as a: normal(std=1 / d)
}
network n {
    input image: 8x8x8
    image -> unit(8, 4) as p -> unit(16, 64) as q
}
"""


def test_a_number_the_class_cannot_compute_stays_with_the_network() -> None:
    from archdsl.compiler.backends.torch_codegen import build_module, generate_source

    net = load_string(UNTAKEN).network()
    src = generate_source(net)
    assert "Initialization" not in src[:src.index("class N(")]
    torch.manual_seed(0)
    module = build_module(net)
    assert abs(float(module.p.a.weight.detach().std()) - 0.25) < 0.05  # 64 draws: standard error 0.022
    assert abs(float(module.q.a.weight.detach().std()) - 1 / 64) < 0.002  # 256 draws: 0.0007


def test_analysis_ignores_initialization() -> None:
    plain = load_string(re.sub(r"^\s*(if zero \{ )?init .*$", "", BLOCK, flags=re.MULTILINE)).network()
    assert not plain.ir.inits
    declared = load_string(BLOCK).network()
    assert plain.analyze().model_dump() == declared.analyze().model_dump()


@pytest.mark.parametrize(("statement", "code"), [
    ("init relu: zeros", "E0540"),
    ("init dwconv: zeros", "E0540"),
    ("init conv: kaiming(mode=fan_out)", "E0541"),
    ("init conv: true", "E0541"),
    ("init conv: normal(sd=1)", "E0542"),
    ("init conv: kaiming_normal(mode=fanout)", "E0542"),
    ("init conv: normal(std=fan_out)", "E0401"),
    ("init conv: constant", "E0542"),
    ("init conv: zeros(1)", "E0542"),
    ("init conv: gamma=1", "E0544"),
    ("init conv: zeros, weight=ones", "E0544"),
    ("init conv as nothing: zeros", "E0543"),
    ("init bn as head: zeros", "E0543"),
    ("init conv as head: zeros, bias=0", "E0544"),
    ("init linear: variance_scaling(mode=fan_out_per_group)", "E0542"),
    ("init bn: variance_scaling(mode=fan_avg_per_group)", "E0542"),
    ("init linear: bilinear", "E0542"),
])
def test_diagnostics(statement: str, code: str) -> None:
    text = f"network n {{\n    input image: 3x8x8\n    image -> conv(4, 3, bias=false) as head\n    {statement}\n}}"
    with pytest.raises(ArchError) as exc:
        load_string(text).network()
    d = exc.value.diagnostics[0]
    assert (d.code, d.span.line) == (code, 4), d
    assert d.hint


def test_a_constant_is_any_expression() -> None:
    """A function of the language gives a number (RetinaNet's prior bias, darknet's bias = scale)."""
    got = _inits("network n {\n input image: 3x8x8\n image -> conv(4, 3) as head\n"
                 " init conv: normal(std=sqrt(1 / 4)), bias=-log((1 - 0.01) / 0.01)\n}")
    assert got["head"] == [("bias", f"constant(value={-math.log(99)})"), ("weight", "normal(std=0.5)")]


def test_rules_run_in_order_of_depth() -> None:
    rules = load_string(BLOCK).network().ir.inits
    assert [r.depth for r in rules] == sorted(r.depth for r in rules)


def test_an_alias_names_its_op() -> None:
    net = load_string("network n {\n input image: 3x8x8\n image -> conv(4, 3) -> batchnorm -> flatten -> fc(3)\n"
                      " init batchnorm: weight=0\n init fc: zeros\n}").network()
    assert [(r.kind, r.nodes) for r in net.ir.inits] == [("bn", ("bn",)), ("linear", ("linear",))]

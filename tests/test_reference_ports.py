"""Specs against reference implementations that only exist as source files (tests/ports/): the same
checks as test_parity for the torchvision/timm zoo — parameter count, FlopCounterMode MACs ÷ 2,
output shape, and outputs equal to 1e-5 after `load_weights` with random weights and random BN
statistics copied across (at a reduced input where the spec allows one, as test_parity)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .conftest import network
from .small_input import small_input

torch = pytest.importorskip("torch")

from .ports import dcgan, nin, shufflenet_v1, slimming  # noqa: E402

# The slimming authors' channel-selection masks: nn.Parameters of ones that pick the channels a
# pruned model keeps. Unpruned they select every channel; the specs leave them out (slimming.arch).
MASK = "select.indexes"


@dataclass(frozen=True)
class Port:
    file: str
    network: str
    build: Callable[[], torch.nn.Module]
    # Why the outputs are not compared, where they cannot be (None: they are).
    outputs_differ: str | None = None

    @property
    def id(self) -> str:
        return self.network


MEGVII = ("megvii's units shuffle after the depthwise conv and by the inverse permutation of the "
          "paper's (shufflenet_v1.arch), so equal weights give different outputs; counts are layout-free")

PORTS = [
    Port("nin.arch", "nin_cifar10", nin.nin_cifar10),
    Port("nin.arch", "nin_imagenet", nin.nin_imagenet),
    Port("dcgan.arch", "dcgan_generator", dcgan.Generator),
    Port("dcgan.arch", "dcgan_discriminator", dcgan.Discriminator),
    Port("slimming.arch", "vgg19_cifar", lambda: slimming.vgg("cifar10", depth=19)),
    Port("slimming.arch", "vgg19_cifar100", lambda: slimming.vgg("cifar100", depth=19)),
    Port("slimming.arch", "resnet164_cifar", lambda: slimming.resnet(164, "cifar10")),
    Port("slimming.arch", "resnet164_cifar100", lambda: slimming.resnet(164, "cifar100")),
    Port("slimming.arch", "densenet40_cifar_pytorch", lambda: slimming.densenet(40, dataset="cifar10")),
    *(Port("resnet.arch", f"resnet{depth}_v1", lambda depth=depth: _resnet_v1(f"resnet{depth}"))
      for depth in (50, 101, 152)),
    *(Port("shufflenet_v1.arch", name, lambda g=g, s=s: shufflenet_v1.ShuffleNetV1(model_size=s, group=g), MEGVII)
      for name, g, s in [("shufflenet_v1_g3", 3, "1.0x"), ("shufflenet_v1_g8", 8, "1.0x"),
                         ("shufflenet_v1_g3_x0_5", 3, "0.5x"), ("shufflenet_v1_g3_x1_5", 3, "1.5x"),
                         ("shufflenet_v1_g3_x2_0", 3, "2.0x"), ("shufflenet_v1_g8_x0_5", 8, "0.5x"),
                         ("shufflenet_v1_g8_x1_5", 8, "1.5x"), ("shufflenet_v1_g8_x2_0", 8, "2.0x")]),
]


def _resnet_v1(name: str) -> torch.nn.Module:
    """torchvision's ResNet with each stage's stride moved from the first bottleneck's 3×3 to its
    first 1×1, where the paper's Caffe models have it (res3a_branch2a, res4a_branch2a, res5a_branch2a
    with stride 2: KaimingHe/deep-residual-networks @a7026cb, prototxt/ResNet-*-deploy.prototxt)."""
    import torchvision.models as tvm

    model: torch.nn.Module = getattr(tvm, name)(weights=None)
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return model


def _random(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The model built on the meta device (its own initialisation costs more than the comparison),
    then every tensor filled: N(0, 1/fan_in) weights, non-trivial BN statistics, masks all ones."""
    with torch.device("meta"):
        model = build()
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(MASK):
                p.fill_(1.0)
                continue
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.normal_(0.0, fan_in**-0.5, generator=g)
        for b in model.buffers():
            b.zero_()
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def _macs(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = model(x)
    return counter.get_total_flops() // 2 // x.shape[0], y


def test_every_port_names_a_zoo_network() -> None:
    from .conftest import zoo

    assert {(p.file, p.network) for p in PORTS} <= set(zoo())


@pytest.mark.parametrize("port", PORTS, ids=lambda p: p.id)
def test_counts_equal_reference(port: Port) -> None:
    """Parameters (less the masks) and MACs at the spec's input size, on the meta device — except
    for models with masks, whose forward reads the mask's values (numpy)."""
    net = network(port.file, port.network)
    report = net.analyze()
    with torch.device("meta"):
        ref = port.build().eval()
    device = "meta" if not any(n.endswith(MASK) for n, _ in ref.named_parameters()) else "cpu"
    with torch.device(device):
        ref = port.build().eval()
        (shape,) = net.input_shapes.values()
        macs, y = _macs(ref, torch.empty(1, *shape))
    params = sum(p.numel() for n, p in ref.named_parameters() if not n.endswith(MASK))
    assert report.params == params
    assert report.macs == macs
    (out,) = report.outputs.values()
    assert y.numel() == torch.Size(out).numel()


# resnet101_v1 and resnet152_v1 repeat resnet50_v1's bottleneck: their outputs run with `-m slow`.
SLOW = {"resnet101_v1", "resnet152_v1"}


@pytest.mark.parametrize("port", [pytest.param(p, marks=pytest.mark.slow) if p.network in SLOW else p
                                  for p in PORTS if p.outputs_differ is None], ids=lambda p: p.id)
def test_outputs_equal_reference(port: Port) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module
    from archdsl.compiler.backends.weights import load_weights

    torch.manual_seed(0)
    shape = small_input(port.file, port.network)
    net = network(port.file, port.network, shape)
    ref = _random(port.build).eval()
    with torch.device("meta"):  # every tensor is overwritten by load_weights
        gen = build_module(net)
    gen = gen.to_empty(device="cpu").eval()
    load_weights(gen, {k: v for k, v in ref.state_dict().items() if not k.endswith(MASK)})
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = ref(x)
        got = gen(x)
    (out,) = net.output_shapes.values()
    assert tuple(got.shape[1:]) == tuple(out)
    # pytorch/examples' discriminator returns its N×1×1×1 scores as a vector of N; the spec as N×1.
    torch.testing.assert_close(got, expected.reshape(got.shape), atol=1e-5, rtol=1e-5)


def test_slimming_masks_are_the_readme_difference() -> None:
    """slimming.arch says the README's 1.71M / 1.07M count the masks (8 080 / 9 360 entries) that
    Table 1's 1.70M / 1.02M leave out; measured on the authors' models."""
    for build, masks in [(lambda: slimming.resnet(164, "cifar10"), 8_080),
                         (lambda: slimming.densenet(40, dataset="cifar10"), 9_360)]:
        with torch.device("meta"):
            model = build()
        assert sum(p.numel() for n, p in model.named_parameters() if n.endswith(MASK)) == masks

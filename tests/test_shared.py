"""Shared instances: one set of weights applied at several places, against the detectors that do
it — torchvision's RetinaNet head (one class and one box subnet over P3–P7) and effdet's HeadNet
(convolutions shared across levels, a batch norm per level). Parameters are counted once and MACs
at every application, both measured live on the reference; the generated module holds one
submodule called at every level, loads the reference's weights by name and computes its outputs.
"""

from __future__ import annotations

from typing import Any

import pytest

import archdsl.api as api
from archdsl.diagnostics import ArchError

torch = pytest.importorskip("torch")
from archdsl.compiler.backends.torch_codegen import build_module, generate_source  # noqa: E402
from archdsl.compiler.backends.weights import load_weights  # noqa: E402

RETINA_HEAD = """
# RetinaNet's heads (Lin et al. 2017, Fig. 3): a class subnet and a box subnet, four 3×3
# convolutions of 256 and a 3×3 prediction each, shared by every pyramid level P3–P7.
block retina_subnet(out, last) {
    in -> repeat 4 { conv(256, 3) as 0 -> relu as 1 } as conv -> conv(out, 3) as {last}
}

network retina_head(classes=91, anchors=9, size=128) {
    input p3: [256, size // 8, size // 8]
    input p4: [256, size // 16, size // 16]
    input p5: [256, size // 32, size // 32]
    input p6: [256, size // 64, size // 64]
    input p7: [256, size // 128, size // 128]
    cls = shared retina_subnet(anchors * classes, last="cls_logits") as head.classification_head
    box = shared retina_subnet(anchors * 4, last="bbox_reg") as head.regression_head
    output cls3 = p3 -> cls
    output cls4 = p4 -> cls
    output cls5 = p5 -> cls
    output cls6 = p6 -> cls
    output cls7 = p7 -> cls
    output box3 = p3 -> box
    output box4 = p4 -> box
    output box5 = p5 -> box
    output box6 = p6 -> box
    output box7 = p7 -> box
}
"""
LEVELS = (3, 4, 5, 6, 7)


def _randomize(module: Any, seed: int = 0) -> None:
    """Random weights and random batch-norm statistics, so that a wrong mapping shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                values = torch.rand(t.shape, generator=gen) + 0.5 if "running_var" in name else \
                    torch.randn(t.shape, generator=gen) * 0.1
                t.copy_(values)


def _macs(module: Any, *args: Any) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*args)
    return int(counter.get_total_flops()) // 2


@pytest.fixture(scope="module")
def retina() -> tuple[api.Network, Any]:
    from torchvision.models.detection import retinanet_resnet50_fpn

    reference = retinanet_resnet50_fpn(weights=None, weights_backbone=None).head.eval()
    _randomize(reference)
    return api.load_string(RETINA_HEAD, "retina.arch").network(), reference


def _features(net: api.Network) -> list[Any]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(2, *net.input_shapes[f"p{k}"], generator=gen) for k in LEVELS]


def test_retina_head_params_once_macs_at_every_level(retina: tuple[api.Network, Any]) -> None:
    net, reference = retina
    report = net.analyze()
    assert report.params == sum(p.numel() for p in reference.parameters())  # the two subnets, once
    single = [torch.zeros(1, *s) for s in net.input_shapes.values()]
    assert report.macs == _macs(reference, single)  # both subnets at each of the five levels
    layers = {x.name: x for x in report.layers}
    last = layers["head.classification_head@5.cls_logits"]  # P7's prediction: MACs, no weights of its own
    assert (last.params, last.shares) == (0, "head.classification_head.cls_logits") and last.macs > 0


def test_retina_head_loads_torchvision_weights_by_name(retina: tuple[api.Network, Any]) -> None:
    net, reference = retina
    module = build_module(net).eval()
    source = {f"head.{k}": v for k, v in reference.state_dict().items()}
    assert set(module.state_dict()) == set(source)  # one submodule per subnet, not one per level
    assert load_weights(module, source) == "name"
    features = _features(net)
    with torch.no_grad():
        ours = module(*features)
        theirs = reference(features)
    # torchvision concatenates the levels as N × (H·W·A) × K; take each level's part.
    for what, key, k in (("cls", "cls_logits", 91), ("box", "bbox_regression", 4)):
        start = 0
        for level, f in zip(LEVELS, features, strict=True):
            n, _, h, w = f.shape
            mine = ours[f"{what}{level}"].view(n, -1, k, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, k)
            part = theirs[key][:, start:start + mine.shape[1]]
            start += mine.shape[1]
            torch.testing.assert_close(mine, part, rtol=1e-5, atol=1e-5)
        assert start == theirs[key].shape[1]


def test_retina_head_source_calls_one_module_per_level(retina: tuple[api.Network, Any]) -> None:
    net, _ = retina
    src = generate_source(net)
    assert src.count('self.head["classification_head"](') == 5
    assert src.count("class RetinaSubnet(") == 1


# ---------------------------------------------------------------------------------------------
# effdet: convolutions shared across levels, one batch norm per level and repeat

EFFDET_HEAD = """
# effdet's SeparableConv2d without norm and activation: a depthwise 3×3, then a pointwise 1×1.
block separable(c, bias=false) {
    in -> conv(in.channels, 3, groups=in.channels, bias=false) as conv_dw -> conv(c, 1, bias=bias) as conv_pw
}

# effdet HeadNet: `conv_rep[i]` is one convolution for every level, `bn_rep[i][level]` a batch norm
# per level (the original repeat-first order), then the shared prediction.
block head_net(width, repeats, out) inputs(p3, p4, p5) outputs(o3, o4, o5) {
    levels = [p3, p4, p5]
    results = []
    repeat len(levels) as level {
        x = levels[level]
        repeat repeats as i {
            x = x -> shared separable(width) as conv_rep.{i}
                  -> bn(eps=1e-3, momentum=0.01) as bn_rep.{i}.{level}.bn -> silu
        }
        results = results + [x -> shared separable(out, bias=true) as predict]
    }
    o3, o4, o5 = results
}

network class_net(width=16, repeats=2, classes=5, anchors=9) {
    input p3: [width, 16, 16]
    input p4: [width, 8, 8]
    input p5: [width, 4, 4]
    o3, o4, o5 = head_net(p3, p4, p5, width=width, repeats=repeats, out=classes * anchors) as class_net
    output c3 = o3
    output c4 = o4
    output c5 = o5
}
"""


def test_effdet_head_net() -> None:
    pytest.importorskip("effdet")
    from effdet.config import get_efficientdet_config
    from effdet.efficientdet import HeadNet

    config = get_efficientdet_config("efficientdet_d0")
    config.update(fpn_channels=16, box_class_repeats=2, num_levels=3)
    reference = HeadNet(config, num_outputs=5).eval()
    _randomize(reference, seed=2)
    net = api.load_string(EFFDET_HEAD, "effdet_head.arch").network()
    features = [torch.randn(2, *s, generator=torch.Generator().manual_seed(3)) for s in net.input_shapes.values()]

    report = net.analyze()
    assert report.params == sum(p.numel() for p in reference.parameters())
    assert report.buffers == sum(b.numel() for n, b in reference.named_buffers() if "num_batches" not in n)
    assert report.macs == _macs(reference, [f[:1] for f in features])

    module = build_module(net).eval()
    source = {f"class_net.{k}": v for k, v in reference.state_dict().items()}
    assert set(module.state_dict()) == set(source)
    assert load_weights(module, source) == "name"
    with torch.no_grad():
        ours = module(*features)
        theirs = reference(features)
    for name, expected in zip(("c3", "c4", "c5"), theirs, strict=True):
        torch.testing.assert_close(ours[name], expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# the construct's rules


def _net(body: str, blocks: str = "") -> api.Network:
    src = f"{blocks}\nnetwork t {{\n    input a: 8x8x8\n    input b: 4x4x4\n{body}\n}}\n"
    return api.load_string(src, "t.arch").network()


def _error(body: str, blocks: str = "") -> str:
    with pytest.raises(ArchError) as info:
        _net(body, blocks)
    d = info.value.diagnostics[0]
    return f"{d.code} {d.message}"


def test_a_shared_op_counts_its_weights_once() -> None:
    n = _net("    c = shared conv(8, 3) as c\n    output x = a -> c\n    output y = a -> c -> c")
    assert [x.name for x in n.ir.nodes("op")] == ["c", "c@2", "c@3"]
    counts = n.analyze()
    assert counts.params == 8 * 8 * 9 + 8 and counts.macs == 3 * 8 * 8 * 9 * 8 * 8


def test_a_shared_call_in_a_loop_is_one_instance() -> None:
    n = _net("    x = a\n    repeat 3 { x = x -> shared conv(8, 3) -> relu }\n    output y = x")
    assert [x.name for x in n.ir.nodes("op") if x.op == "conv"] == ["conv", "conv@2", "conv@3"]


def test_shared_instance_on_other_channels_is_refused() -> None:
    assert _error("    c = shared conv(8, 3)\n    output x = a -> c\n    output y = b -> c").startswith(
        "E0537 the shared instance `conv` gets 4 channels here, but its weights take 8")


def test_one_label_two_different_instances_is_refused() -> None:
    message = _error("    output x = a -> shared conv(8, 3) as c\n    output y = a -> shared conv(8, 1) as c")
    assert message.startswith("E0534 `c` is already a shared instance of `conv(8, 3)`")


def test_shared_instance_takes_only_tensors() -> None:
    assert _error("    c = shared conv(8, 3)\n    output x = c(a, 4)").startswith(
        "E0535 the shared instance `conv` takes only input tensors")


def test_shared_instance_applied_inside_another_block_is_refused() -> None:
    blocks = "block apply(f) { in -> f }"
    assert _error("    c = shared conv(8, 3)\n    output x = a -> apply(f=c)", blocks).startswith(
        "E0536 the shared instance `conv` is applied inside block `apply`")

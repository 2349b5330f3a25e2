"""Canonical implementations of the zoo's networks: how to build each one in torchvision/timm.

One table, shared by every test that compares a spec with its reference (counts, parity).
Each entry: spec file, network, a builder returning the reference nn.Module, and the torchvision
weights enum whose metadata publishes num_params and _ops (GMACs), where one exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Canonical:
    file: str
    network: str
    library: str  # "torchvision" | "timm" | "effdet"
    # torchvision: a name in torchvision.models, or a dotted path below it
    # ("detection.backbone_utils.resnet_fpn_backbone"); timm and effdet: the model name.
    constructor: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # torchvision weights enum, e.g. "ResNet50_Weights"
    # Why the reference computes another function although its layers and counts are the spec's
    # (compared for params, MACs and output shape only, not in the output parity test).
    other_function: str | None = None
    # Auxiliary heads, which the canonical model runs only in training mode: the spec's output →
    # (the module whose output feeds the head, the head module), e.g. "aux_logits" →
    # ("Mixed_6e", "AuxLogits"). The spec names each head's scope as the canonical module.
    aux_heads: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Detectors: what of the canonical model the spec computes, given the model and a batch — the
    # raw feature maps and head outputs, before box decoding and post-processing (the model's own
    # forward when None).
    raw_outputs: Callable[[Any, Any], Any] | None = None
    # The canonical state_dict key → the spec's, where the two name a tensor differently (why: at the
    # entry).
    rename: Callable[[str], str] | None = None
    # Slow to build or run on two cores: compared under `-m slow` only.
    slow: bool = False

    def build(self, input: tuple[int, ...] | None = None) -> Any:
        """The canonical model; `input` (C×H×W) for models built for one input size (effdet)."""
        if self.library == "torchvision":
            import torchvision.models as tvm

            fn: Any = tvm
            for part in self.constructor.split("."):
                fn = getattr(fn, part)
            return fn(weights=None, **self.kwargs)
        if self.library == "effdet":
            return _effdet_model(self.constructor, input)
        import timm

        return timm.create_model(self.constructor, pretrained=False, **self.kwargs)

    def state_dict(self, model: Any) -> dict[str, Any]:
        """The canonical model's tensors under the spec's names."""
        rename = self.rename or (lambda k: k)
        return {rename(k): v for k, v in model.state_dict().items()}

    def outputs(self, model: Any, x: Any) -> list[Any]:
        """The canonical model's outputs on `x`, in the order the spec declares them."""
        out = self.raw_outputs(model, x) if self.raw_outputs is not None else model(x)
        if isinstance(out, dict):
            return list(out.values())
        return list(out) if isinstance(out, tuple | list) else [out]

    def published(self) -> dict[str, Any] | None:
        """torchvision's weights metadata (`num_params`, `_ops` in GMACs, crop size)."""
        if self.weights is None:
            return None
        import torchvision.models as tvm

        enum = getattr(tvm, self.weights)
        return dict(enum.IMAGENET1K_V1.meta)

    @property
    def id(self) -> str:
        return self.network


def _tv(file: str, network: str, weights: str | None, constructor: str | None = None,
        aux_heads: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> Canonical:
    return Canonical(file, network, "torchvision", constructor or network, kwargs, weights, aux_heads=aux_heads or {})


def _tvdet(file: str, network: str, constructor: str, raw_outputs: Callable[[Any, Any], Any] | None = None,
           **kwargs: Any) -> Canonical:
    return Canonical(file, network, "torchvision", constructor, kwargs, raw_outputs=raw_outputs)


def ssd_heads(model: Any, x: Any) -> Any:
    """torchvision SSD's and RetinaNet's raw head outputs (SSD: {bbox_regression, cls_logits};
    RetinaNet: {cls_logits, bbox_regression}) on the backbone's levels — their forward would resize,
    decode and suppress."""
    return model.head(list(model.backbone(x).values()))


def _effdet_model(name: str, input: tuple[int, ...] | None) -> Any:
    """effdet's EfficientDet (without its pretrained backbone). effdet sizes its resampling from the
    configured image size, so the model is built for `input`."""
    from effdet import EfficientDet, get_efficientdet_config

    config = get_efficientdet_config(name)
    if input is not None:
        config.image_size = (input[1], input[2])
    return EfficientDet(config, pretrained_backbone=False)


def effdet_levels(model: Any, x: Any) -> list[Any]:
    """EfficientDet's raw outputs, class then box per level (its forward returns the two lists)."""
    classes, boxes = model(x)
    return [*classes, *boxes]


def _effdet_keys(key: str) -> str:
    """effdet's FpnCombine holds its fusion weights (`edge_weights`) next to its input resampling
    (`resample.N`); the spec's fuse is a layer of its own, `combine.fuse`."""
    return re.sub(r"\.combine\.edge_weights$", ".combine.fuse.edge_weights", key)


def _effdet(network: str, constructor: str, slow: bool = False) -> Canonical:
    return Canonical("efficientdet.arch", network, "effdet", constructor, raw_outputs=effdet_levels,
                     rename=_effdet_keys, slow=slow)


GOOGLENET_AUX = {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")}


CANONICAL: list[Canonical] = [
    _tv("alexnet.arch", "alexnet", "AlexNet_Weights"),
    *(_tv("vgg.arch", n, f"{n.upper().replace('_BN', '_BN')}_Weights")
      for n in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")),
    *(_tv("resnet.arch", n, f"ResNet{n[6:]}_Weights")
      for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")),
    _tv("googlenet.arch", "googlenet", "GoogLeNet_Weights", aux_logits=False, init_weights=True),
    _tv("googlenet.arch", "googlenet_aux", None, "googlenet", GOOGLENET_AUX, aux_logits=True, init_weights=True),
    _tv("mobilenet_v2.arch", "mobilenet_v2", "MobileNet_V2_Weights"),
    *(_tv("shufflenet_v2.arch", n, f"ShuffleNet_V2_X{n[-3:].upper()}_Weights")
      for n in ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0")),
    *(_tv("efficientnet.arch", f"efficientnet_b{k}", f"EfficientNet_B{k}_Weights") for k in range(8)),
    _tv("resnet.arch", "resnext50_32x4d", "ResNeXt50_32X4D_Weights"),
    _tv("resnet.arch", "resnext101_32x8d", "ResNeXt101_32X8D_Weights"),
    _tv("resnet.arch", "resnext101_64x4d", "ResNeXt101_64X4D_Weights"),
    _tv("squeezenet.arch", "squeezenet1_0", "SqueezeNet1_0_Weights"),
    _tv("squeezenet.arch", "squeezenet1_1", "SqueezeNet1_1_Weights"),
    _tv("mobilenet_v3.arch", "mobilenet_v3_large", "MobileNet_V3_Large_Weights"),
    _tv("mobilenet_v3.arch", "mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
    # inception_v3() keeps AuxLogits by default, and Inception_V3_Weights' num_params counts it.
    _tv("inception_v3.arch", "inception_v3", "Inception_V3_Weights",
        aux_heads={"aux_logits": ("Mixed_6e", "AuxLogits")}, init_weights=False),
    _tv("inception_v3.arch", "inception_v3_noaux", None, "inception_v3", aux_logits=False, init_weights=False),
    *(_tv("efficientnet_v2.arch", f"efficientnet_v2_{k}", f"EfficientNet_V2_{k.upper()}_Weights") for k in "sml"),
    Canonical("mobilenet_v1.arch", "mobilenet_v1", "timm", "mobilenetv1_100"),
    Canonical("mobilenet_v1.arch", "mobilenet_v1_125", "timm", "mobilenetv1_125"),
    Canonical("inception_v4.arch", "inception_v4", "timm", "inception_v4"),
    Canonical("inception_v4.arch", "inception_resnet_v2", "timm", "inception_resnet_v2"),
    Canonical("darknet.arch", "cspdarknet53", "timm", "cspdarknet53"),
    # backbone_name and weights=None as keywords (the function takes no positional arguments).
    *(_effdet(f"efficientdet_d{k}", f"tf_efficientdet_d{k}", slow=k >= 5) for k in range(8)),
    _effdet("efficientdet_d7x", "tf_efficientdet_d7x", slow=True),
    _tvdet("ssd.arch", "ssd300_vgg16", "detection.ssd300_vgg16", ssd_heads, weights_backbone=None),
    _tvdet("fpn.arch", "retinanet_resnet50_fpn", "detection.retinanet_resnet50_fpn", ssd_heads, weights_backbone=None),
    _tvdet("fpn.arch", "resnet50_fpn", "detection.backbone_utils.resnet_fpn_backbone", backbone_name="resnet50"),
    Canonical("darknet.arch", "darknet53", "timm", "darknet53",
              other_function="timm's leaky slope is PyTorch's 0.01 (darknet's 0.1) and its classifier ends without "
                             "softmax"),
]

"""The models `archdsl import` is tried on: every classification model of torchvision and a sample of
timm's CNNs, each at the smallest input it runs at (CPU time), and the ones known not to import,
with the reason (the importer's own diagnostic says it; a test checks that it does).

Used by tests/test_import_models.py and benchmarks/import_coverage.py.
"""

from __future__ import annotations

from .torch_roundtrip import Case

TORCHVISION = [
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121", "densenet161",
    "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
    "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_16gf",
    "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf",
    "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s", "swin_t",
    "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2", "wide_resnet50_2",
]  # torchvision.models.list_models(module=torchvision.models), 0.29: a test checks this list is complete

TIMM = [
    "resnet10t", "resnet14t", "resnet18", "resnet18d", "resnet26", "resnet26d", "resnet34", "resnet34d", "resnet50",
    "resnet50d", "resnet101", "seresnet50", "seresnext26d_32x4d", "resnext50_32x4d", "wide_resnet50_2",
    "ecaresnet26t", "skresnet18", "res2net50_26w_4s", "resnest14d", "regnetx_002", "regnety_002", "regnetz_005",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_lite0", "tf_efficientnet_b0", "tf_efficientnet_lite0",
    "tf_efficientnetv2_b0", "efficientnetv2_rw_t", "mobilenetv2_100", "mobilenetv2_050", "mobilenetv3_large_100",
    "mobilenetv3_small_100", "tf_mobilenetv3_small_100", "mobilenetv1_100", "mixnet_s", "mixnet_m", "tf_mixnet_s",
    "mnasnet_100", "semnasnet_100", "fbnetc_100", "spnasnet_100", "lcnet_050", "lcnet_100", "tinynet_a", "tinynet_e",
    "ghostnet_100", "hardcorenas_a", "dla34", "dla46_c", "densenet121", "vgg11", "repvgg_a0", "cspresnet50",
    "cspdarknet53", "darknet53", "dpn68", "rexnet_100", "hrnet_w18_small", "selecsls42b", "xception41",
    "inception_v3", "inception_v4", "inception_resnet_v2", "gernet_s", "resnetrs50", "nf_resnet26", "convnext_atto",
    "mobileone_s0", "fastvit_t8", "efficientvit_b0", "ghostnetv2_100", "mobilenetv4_conv_small",
]

# Inputs other than 3×64×64: models whose architecture needs more (or a fixed size).
INPUTS: dict[str, tuple[int, ...]] = {
    "torchvision.models:inception_v3": (3, 96, 96),
    "timm:inception_v3": (3, 96, 96),
    "timm:inception_v4": (3, 96, 96),
    "timm:inception_resnet_v2": (3, 96, 96),
    "timm:xception41": (3, 96, 96),
    **{f"torchvision.models:{n}": (3, 224, 224) for n in TORCHVISION if n.startswith(("vit_", "swin", "maxvit"))},
}
# Constructor arguments: auxiliary heads run only in training, so their weights are not in an eval trace.
KWARGS: dict[str, dict[str, object]] = {
    "torchvision.models:googlenet": {"aux_logits": False, "init_weights": False},
    "torchvision.models:inception_v3": {"aux_logits": False, "init_weights": False},
}


def case(spec: str) -> Case:
    return Case(spec, INPUTS.get(spec, (3, 64, 64)), KWARGS.get(spec, {}))


ALL = [case(f"torchvision.models:{n}") for n in TORCHVISION] + [case(f"timm:{n}") for n in TIMM]

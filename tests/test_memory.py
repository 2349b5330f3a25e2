"""Memory pass: activations, peak live memory and memory access cost against a hand calculation."""

from __future__ import annotations

import archdsl.api as api
from archdsl.compiler.passes.memory import MemoryPass

from .conftest import network

# A small branched network on a 1×8×8 input (64 elements), in creation (topological) order:
#   image  1×8×8   =  64
#   a      4×8×8   = 256   conv(4, 3)          reads image
#   b      4×8×8   = 256   conv(4, 1)          reads image   (image's last consumer: freed after b)
#   s      4×8×8   = 256   add(a, b)           (a and b freed after s)
#   p      4×4×4   =  64   maxpool(2)          (s freed after p)
#   y      output of p: stays live
BRANCHED = """
network branched {
    input image: 1x8x8
    a = image -> conv(4, 3) as a
    b = image -> conv(4, 1) as b
    a -> add(b) as s -> maxpool(2) as p -> output y
}
"""


def test_hand_calculation_on_a_branched_network() -> None:
    net = api.load_string(BRANCHED, file="branched.arch").network()
    report = net.analyze()
    # activations: 64 + 256 + 256 + 256 + 64 = 896 elements
    assert report.activations.elements == 896 and report.activations.bytes == 896 * 4
    # live while each node runs (inputs and outputs held):
    #   a: image + a = 320;  b: image + a + b = 576 (then image freed → 512);
    #   s: a + b + s = 768 (then a, b freed → 256);  p: s + p = 320 (then s freed → 64)
    live = {x.name: net.analysis[MemoryPass][x.name].live for x in net.ir.nodes("op")}
    assert live == {"a": 320, "b": 576, "s": 768, "p": 320}
    assert report.peak_activations.elements == 768 and report.peak_activations.bytes == 768 * 4
    # memory access cost = inputs read + outputs written + params (ShuffleNet V2 §2):
    #   a: 64 + 256 + (4·1·3·3 + 4) = 360;  b: 64 + 256 + (4 + 4) = 328;
    #   s: 256 + 256 + 256 = 768;  p: 256 + 64 = 320;  total 1776
    mac = {x.name: x.mac for x in report.layers}
    assert mac == {"a": 360, "b": 328, "s": 768, "p": 320}
    assert report.mac == 1776


def test_outputs_stay_live_and_unused_tensors_are_dropped() -> None:
    net = api.load_string("""
network two {
    input image: 1x4x4
    x = image -> relu as r1
    x -> output first
    x -> relu as r2 -> relu as r3 -> output second
}""").network()
    net.analyze()
    live = {x.name: net.analysis[MemoryPass][x.name].live for x in net.ir.nodes("op")}
    # r1 is an output: it is never freed. image (16) dies after r1.
    #   r1: 16 + 16 = 32 → 16;  r2: 16 + 16 = 32;  r3: 16 + 16 + 16 = 48 (r2 freed after)
    assert live == {"r1": 32, "r2": 32, "r3": 48}


def test_1x1_conv_mac_is_the_shufflenet_formula() -> None:
    # G1 of ShuffleNet V2: a 1×1 conv costs h·w·(c1 + c2) + c1·c2 (no bias).
    net = api.load_string("network c {\n input image: 16x10x10\n image -> conv(32, 1, bias=false) as c\n}").network()
    layer = net.analyze().layers[0]
    assert layer.mac == 10 * 10 * (16 + 32) + 16 * 32


def test_resnet50_reports_peak_activation_memory() -> None:
    report = network("resnet.arch", "resnet50").analyze()
    # The peak is in layer1.0: the shortcut's BN output, the main path's BN output and their sum,
    # three 256×56×56 tensors, are live at once.
    assert report.peak_activations.elements == 3 * 256 * 56 * 56
    assert report.peak_activations.bytes == 4 * 3 * 256 * 56 * 56
    assert report.activations.elements > report.peak_activations.elements

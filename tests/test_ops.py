"""Per-op unit tests, parametrized over the op registry.

Every registered op must have an example here (adding an op without one fails `test_every_op_has_an_example`).
Each example is checked against PyTorch itself: the op's torch builder, run on the example input, must
give the inferred output shapes, `params` must equal the module's parameter count, and `macs` must
equal torch.utils.flop_counter's total ÷ 2 (measured live).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from archdsl.ops import ShapeError, all_ops, get_op

# op name → list of (attributes, input shapes)
EXAMPLES: dict[str, list[tuple[dict[str, Any], list[tuple[int, ...]]]]] = {
    "conv": [({"out": 8, "kernel": 3}, [(4, 9, 9)]),
             ({"out": 6, "kernel": [1, 7], "stride": 2, "groups": 2, "bias": False}, [(4, 10, 11)]),
             ({"out": 4, "kernel": 3, "dilation": 2, "pad": [0, 1, 2, 3]}, [(2, 12, 12)]),
             ({"out": 4, "kernel": 3, "stride": 2, "pad": "same"}, [(2, 10, 10)])],
    "dwconv": [({"kernel": 5, "stride": 2}, [(6, 15, 15)]), ({"kernel": 3, "multiplier": 2}, [(3, 8, 8)])],
    "pwconv": [({"out": 12}, [(6, 5, 5)]), ({"out": 12, "groups": 3, "bias": True}, [(6, 5, 5)])],
    "deconv": [({"out": 4, "kernel": 4, "stride": 2, "pad": 1}, [(6, 7, 7)]),
               ({"out": 4, "kernel": 3, "stride": 2, "pad": 1, "output_pad": 1, "groups": 2}, [(6, 5, 5)])],
    "local": [({"out": 4, "kernel": 3}, [(2, 6, 6)]),
              ({"out": 3, "kernel": 2, "stride": 2, "bias": False}, [(2, 6, 6)])],
    "linear": [({"out": 7}, [(12,)]), ({"out": 3, "bias": False}, [(5,)]), ({"out": 5}, [(4, 6)]),
               ({"out": 5, "dim": 0}, [(6, 3, 4)]), ({"out": 5, "dim": -1}, [(6, 3, 4)]),
               ({"out": 4, "dim": 1, "bias": False}, [(3, 5, 2)])],
    "bn": [({}, [(6, 4, 4)]), ({"eps": 0.001}, [(10,)])],
    "frozen_bn": [({}, [(6, 4, 4)]), ({"eps": 0.001}, [(5, 3, 3)])],
    "lrn": [({"size": 5}, [(8, 4, 4)])],
    "relu": [({}, [(3, 4, 4)])], "relu6": [({}, [(3, 4, 4)])], "sigmoid": [({}, [(3, 4, 4)])],
    "tanh": [({}, [(3, 4, 4)])], "silu": [({}, [(3, 4, 4)])], "hswish": [({}, [(3, 4, 4)])],
    "hsigmoid": [({}, [(3, 4, 4)])], "mish": [({}, [(3, 4, 4)])], "gelu": [({}, [(3, 4, 4)])],
    "leaky": [({"slope": 0.1}, [(3, 4, 4)])], "softmax": [({}, [(10,)])],
    "maxpool": [({"kernel": 3, "stride": 2, "pad": 1}, [(3, 9, 9)]),
                ({"kernel": 3, "stride": 2, "ceil_mode": True}, [(3, 10, 10)]),
                ({"kernel": "global"}, [(3, 5, 7)])],
    "avgpool": [({"kernel": 2}, [(3, 8, 8)]), ({"kernel": "global"}, [(3, 5, 7)]),
                ({"kernel": 3, "stride": 1, "pad": 1, "count_include_pad": False}, [(3, 5, 5)])],
    "adaptive_avgpool": [({"size": [6, 6]}, [(4, 13, 13)])],
    "adaptive_maxpool": [({"size": [2, 3]}, [(4, 8, 9)])],
    "flatten": [({}, [(3, 4, 5)])], "dropout": [({"p": 0.3}, [(3, 4, 4)])],
    "drop_path": [({"p": 0.2}, [(3, 4, 4)])], "identity": [({}, [(3, 4, 4)])],
    "upsample": [({"scale": 2}, [(3, 4, 5)]), ({"size": [7, 9], "mode": "bilinear"}, [(3, 4, 5)])],
    "space_to_depth": [({"block": 2}, [(3, 8, 6)])], "pixel_unshuffle": [({"block": 3}, [(2, 6, 9)])],
    "reorg": [({"stride": 2}, [(8, 4, 6)])],
    "reshape": [({"shape": [-1, 4]}, [(2, 4, 4)]), ({"shape": [8, 2, 3]}, [(48,)])],
    "permute": [({"dims": [1, 2, 0]}, [(2, 3, 4)]), ({"dims": [-1, 0]}, [(5, 6)])],
    "crop": [({"offset": [1, 2]}, [(3, 8, 8), (5, 4, 5)]), ({"offset": 2, "size": [3, 4]}, [(3, 8, 8)]),
             ({"offset": "center"}, [(3, 9, 8), (1, 4, 5)]), ({"offset": "center", "size": [5, 2]}, [(3, 9, 8)])],
    "l2norm": [({"scale": 20.0}, [(6, 4, 4)]), ({}, [(10,)]), ({"eps": 1e-6}, [(3, 4, 4)])],
    "layernorm": [({}, [(6, 4, 4)]), ({"dim": -1, "eps": 1e-6}, [(4, 5, 6)]), ({}, [(10,)]),
                  ({"dim": 1, "affine": False}, [(3, 4, 5)])],
    "layer_scale": [({"init": 1e-6}, [(6, 4, 4)]), ({"init": 0.5}, [(7,)])],
    "maxout": [({"p": 2}, [(8,)]), ({"p": 3}, [(6, 4, 4)])],
    "l2pool": [({"kernel": 3, "stride": 1, "pad": 1}, [(3, 7, 7)]), ({"kernel": 2, "ceil_mode": True}, [(3, 7, 7)]),
               ({"kernel": "global"}, [(3, 5, 6)]), ({"kernel": 3, "stride": 2, "pad": "same"}, [(2, 8, 8)])],
    "shuffle": [({"groups": 2}, [(6, 3, 3)])],
    "split": [({"sections": 2}, [(6, 3, 3)]), ({"sections": [2, 4]}, [(6, 3, 3)])],
    "concat": [({}, [(2, 4, 4), (3, 4, 4)])],
    "add": [({}, [(3, 4, 4), (3, 4, 4)])],
    "mul": [({}, [(3, 4, 4), (3, 1, 1)])],
    "fuse": [({}, [(3, 4, 4), (3, 4, 4), (3, 4, 4)]), ({"mode": "sum"}, [(3, 4, 4), (3, 4, 4)])],
    "scale": [({"factor": 0.17}, [(3, 4, 4)])],
}

CASES = [(name, attrs, ins) for name, examples in EXAMPLES.items() for attrs, ins in examples]

def test_every_op_has_an_example() -> None:
    assert sorted(op.name for op in all_ops()) == sorted(EXAMPLES)

@pytest.mark.parametrize("op_name", sorted(EXAMPLES))
def test_declaration_is_complete(op_name: str) -> None:
    op = get_op(op_name)
    assert op.doc, "every op documents itself (archdsl ops)"
    assert set(op.positional) <= set(op.Attrs.model_fields)
    for alias in op.aliases:
        assert get_op(alias) is op

@pytest.mark.parametrize(("op_name", "attrs", "ins"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_free_attributes_change_no_shape(op_name: str, attrs: dict[str, Any], ins: list[tuple[int, ...]]) -> None:
    """`Op.shape_free` lets block templates replay calls that differ in these attributes only
    (archdsl.templates.holes): another value must leave the output shapes, parameters and MACs alone."""
    op = get_op(op_name)
    assert op.shape_free <= set(op.Attrs.model_fields)
    a = op.validate(attrs)
    outs = op.infer(a, ins)
    for name in sorted(op.shape_free):
        for value in (0.0, 0.25, 0.5):
            other = op.validate({**attrs, name: value + 1e-3})
            assert op.infer(other, ins) == outs
            assert (op.params(other, ins), op.macs(other, ins, outs)) == (op.params(a, ins), op.macs(a, ins, outs))


@pytest.mark.parametrize(("op_name", "attrs", "ins"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rules_match_pytorch(op_name: str, attrs: dict[str, Any], ins: list[tuple[int, ...]]) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    op = get_op(op_name)
    a = op.validate(attrs)
    outs = op.infer(a, ins)
    assert all(all(d > 0 for d in s) for s in outs)
    scope: dict[str, Any] = {"torch": torch, "nn": nn, "F": F}
    exec(op.torch_helper, scope)  # the helper class some ops need (e.g. LocallyConnected2d)
    init = op.torch_init(a, ins)
    module = eval(init, scope) if init else None
    args = [f"x{i}" for i in range(len(ins))]
    expr = op.torch_forward(a, ins, args, "module" if module is not None else None)
    tensors = {f"x{i}": torch.randn(1, *s) for i, s in enumerate(ins)}
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    buffers = sum(b.numel() for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")) \
        if module is not None else 0
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        if module is not None:
            module.eval()
        result = eval(expr, {**scope, **tensors, "module": module})
    results = list(result) if isinstance(result, tuple | list) else [result]
    assert [tuple(r.shape[1:]) for r in results] == outs
    assert op.params(a, ins) == params
    assert op.buffers(a, ins) == buffers
    assert op.macs(a, ins, outs) == counter.get_total_flops() // 2

def test_conv_output_size_formula() -> None:
    # floor((W + 2P − d(K−1) − 1)/S) + 1: 224, K=7, S=2, P=3 → 112 (ResNet conv1, He et al. Table 1)
    conv = get_op("conv")
    a = conv.validate({"out": 64, "kernel": 7, "stride": 2, "pad": 3})
    assert conv.infer(a, [(3, 224, 224)]) == [(64, 112, 112)]

def test_same_padding_is_tensorflow_rule() -> None:
    # TF "SAME": out = ceil(in / stride) whatever the kernel (tf.nn.conv2d documentation)
    conv = get_op("conv")
    for size in (7, 8, 9, 10):
        a = conv.validate({"out": 1, "kernel": 3, "stride": 2, "pad": "same"})
        assert conv.infer(a, [(1, size, size)])[0][1:] == (math.ceil(size / 2),) * 2

def test_ceil_mode_drops_window_starting_in_padding() -> None:
    # PyTorch pooling rule: ceil((5 + 2·1 − 2)/2) + 1 = 4, but the last window would start at 6 ≥ 5 + 1 → 3
    pool = get_op("maxpool")
    a = pool.validate({"kernel": 2, "stride": 2, "pad": 1, "ceil_mode": True})
    assert pool.infer(a, [(1, 5, 5)]) == [(1, 3, 3)]

@pytest.mark.parametrize(("op_name", "attrs", "ins"), [
    ("conv", {"out": 8, "kernel": 3, "groups": 3}, [(4, 8, 8)]),
    ("conv", {"out": 8, "kernel": 11, "pad": 0}, [(4, 8, 8)]),
    ("concat", {}, [(2, 4, 4), (3, 5, 4)]),
    ("add", {}, [(3, 4, 4), (4, 4, 4)]),
    ("split", {"sections": 4}, [(6, 3, 3)]),
    ("fuse", {}, [(3, 4, 4), (3, 2, 2)]),
    ("linear", {"out": 3}, [(3, 4, 4)]),
    ("linear", {"out": 3}, [(16, 1, 1)]),  # once silently 16×1×3: a C×1×1 map must be flattened or say dim=0
    ("linear", {"out": 3, "dim": 3}, [(3, 4, 4)]),
    ("maxout", {"p": 2}, [(5,)]),
    ("crop", {"offset": 3, "size": [6, 6]}, [(2, 8, 8)]),
    ("crop", {"size": [2, 2]}, [(2, 8, 8), (2, 4, 4)]),
    ("crop", {}, [(2, 8, 8)]),
    ("reshape", {"shape": [-1, 7]}, [(3, 4, 4)]),
    ("reshape", {"shape": [4, 4]}, [(3, 4, 4)]),
    ("permute", {"dims": [0, 2, 3, 1]}, [(3, 4, 4)]),
    ("permute", {"dims": [0, 0, 1]}, [(3, 4, 4)]),
    ("reorg", {"stride": 2}, [(6, 4, 4)]),
    ("space_to_depth", {"block": 2}, [(4, 5, 4)]),
    ("layernorm", {"dim": 3}, [(3, 4, 4)]),
])
def test_shape_errors(op_name: str, attrs: dict[str, Any], ins: list[tuple[int, ...]]) -> None:
    op = get_op(op_name)
    with pytest.raises(ShapeError):
        op.infer(op.validate(attrs), ins)

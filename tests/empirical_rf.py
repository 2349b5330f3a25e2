"""The empirical receptive field (analysis.md): run the generated PyTorch module with every weight a
positive constant, biases 0, BN and activations as identity and max-pooling as average pooling, and
read the support of ∂out[centre]/∂input. With nothing able to cancel, a nonzero gradient marks
exactly the input pixels the output depends on, so the support's extent is the receptive field.

Weights are 1/fan-in rather than 1 so that deep networks stay far from overflow (the support does
not depend on the constant). Test helper only: it imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archdsl.api import Network
from archdsl.compiler.backends.torch_codegen import build_module
from archdsl.compiler.passes.receptive import ReceptiveFieldPass
from archdsl.ir import output_name

_IDENTITY = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.GELU,
             nn.LeakyReLU, nn.Softmax, nn.LocalResponseNorm, nn.Dropout)


def _replacement(m: nn.Module) -> nn.Module | None:
    if isinstance(m, _IDENTITY):
        return nn.Identity()
    if isinstance(m, nn.MaxPool2d):
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(m.output_size)
    return None


def linearized(net: Network) -> nn.Module:
    """The network's generated module, made linear with positive weights (float64, eval mode)."""
    module = build_module(net).double().eval()
    for name, child in list(module.named_modules()):
        new = _replacement(child)
        if new is not None and name:
            parent_name, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(parent_name) if parent_name else module, leaf, new)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
            bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
            for pname, p in m.named_parameters(recurse=False):
                if pname == "bias":
                    p.zero_()
                else:  # a positive constant: 1 for BN's scale, 1/fan-in for weights
                    p.fill_(1.0 if bn or p.dim() < 2 else 1.0 / p[0].numel())
    return module


Extent = tuple[tuple[int, int], tuple[int, int], tuple[int, int], str]


def empirical_extents(net: Network, nodes: list[str], module: nn.Module | None = None) -> dict[str, Extent]:
    """For each node (an op node with a submodule, or an output name): ((lo_h, hi_h), (lo_w, hi_w),
    (i_h, i_w), input) — the rows and columns of `input` the centre output element (i_h, i_w) depends
    on, summed over channels; `input` is the first declared input the node depends on, the input of
    the pass's primary field. One forward pass serves every node."""
    module = module or linearized(net)
    captured: dict[str, Any] = {}
    handles = [module.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o))
               for n in nodes if n not in net.output_shapes]
    inputs = [torch.ones((1, *s), dtype=torch.float64, requires_grad=True) for s in net.input_shapes.values()]
    names = list(net.input_shapes)
    out = module(*inputs)
    for h in handles:
        h.remove()
    result = {}
    for node in nodes:
        if node in captured:
            y = captured[node]
        elif isinstance(out, dict):
            y = out[node]
        else:
            y = out
        if isinstance(y, tuple | list):
            y = y[0]
        if y.dim() == 4:
            ih, iw = (y.shape[2] - 1) // 2, (y.shape[3] - 1) // 2
            picked = y[0, :, ih, iw]
        else:
            ih, iw = 0, 0
            picked = y[0].flatten()
        # Distinct positive weights: a plain sum of an L2-normalized vector of equal entries (FaceNet's
        # embedding) has a zero gradient, whatever it depends on; a weighted one does not.
        target = (picked * torch.linspace(1.0, 2.0, picked.numel(), dtype=picked.dtype)).sum()
        grads = torch.autograd.grad(target, inputs, retain_graph=True, allow_unused=True)
        reached = next(i for i, g in enumerate(grads) if g is not None and bool(g.any()))
        support = grads[reached][0].abs().sum(dim=0) > 0
        rows = torch.nonzero(support.any(dim=1)).flatten()
        cols = torch.nonzero(support.any(dim=0)).flatten()
        result[node] = ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())), (ih, iw),
                        names[reached])
    return result


def static_extent(net: Network, node: str, index: tuple[int, int],
                  input: str | None = None) -> tuple[tuple[tuple[float, float], ...], bool]:
    """The pass's extent for the same element, clipped to the input image, and whether it needed no
    clipping. NOTE: only an unclipped extent must equal the empirical one: near the border a dilated
    or strided path can have all of its outermost taps in the padding, so the real support starts
    further in than the clipped extent (the field is an upper bound there, Araujo et al. 2019)."""
    net.analyze()
    ir = net.ir
    name = node
    for out in ir.outputs():
        if output_name(out) == node:
            name = out.name
    fields = net.analysis[ReceptiveFieldPass][name]
    input = input or next(iter(net.input_shapes))
    field = fields.by_input[input]
    assert field is fields.primary, (node, input)  # the first input the gradient reaches is the primary one
    shape = net.input_shapes[input]
    out, inside = [], True
    for axis in range(2):
        lo, hi = field.extent(axis, index[axis] if not field.global_ else 0)
        inside = inside and lo >= 0 and hi <= shape[axis + 1] - 1
        out.append((max(lo, 0), min(hi, shape[axis + 1] - 1)))
    return tuple(out), inside

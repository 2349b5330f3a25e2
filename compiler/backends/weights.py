"""Weights from canonical models: map a state dict (or a module's) onto a generated module.

By name where every tensor of the generated module has a namesake in the source (specs that mirror
torchvision's names, like ResNet), else by order and shape (registration order, which the specs
keep equal to the canonical implementation's). Either way, every tensor must fit: the first one
that does not is named in the error, with both shapes.

>>> import torch
>>> dst, src = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
>>> load_weights(dst, src)
'name'
>>> bool(torch.equal(dst.weight, src.weight))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

_COUNTER = "num_batches_tracked"


class WeightMappingError(ValueError):
    """A source tensor that cannot be mapped onto the generated module."""


def _shape(t: Any) -> str:
    return "×".join(str(d) for d in t.shape) if t.dim() else "scalar"


def load_weights(module: nn.Module, source: nn.Module | Mapping[str, torch.Tensor], strict: bool = True) -> str:
    """Copy `source`'s parameters and buffers into `module`; returns how they were matched
    ("name" or "order"). Raises :class:`WeightMappingError` naming the first tensor that does not fit.

    BatchNorm's `num_batches_tracked` counters are copied when both sides have them and skipped
    when either lacks them. With `strict`, a source with tensors left over is an error too.
    """
    src = dict(source.state_dict() if isinstance(source, nn.Module) else source)
    dst = module.state_dict()
    if not any(k.endswith(_COUNTER) for k in src):
        dst = {k: v for k, v in dst.items() if not k.endswith(_COUNTER)}
    if all(k in src for k in dst):
        how, (mapped, extra) = "name", _by_name(src, dst)
    else:
        how, (mapped, extra) = "order", _by_order(src, dst)
    if strict and extra:
        raise WeightMappingError(
            f"the source has {len(extra)} tensor(s) the generated module lacks, first `{extra[0]}`")
    with torch.no_grad():
        missing, unexpected = module.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.endswith(_COUNTER)]
    if missing or unexpected:  # pragma: no cover - mapped keys come from the module itself
        raise WeightMappingError(f"could not load `{(missing or unexpected)[0]}`")
    return how


Tensors = Mapping[str, torch.Tensor]


def _by_name(src: Tensors, dst: Tensors) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(source tensor for each destination key, source keys left over) when every name matches."""
    mapped: dict[str, torch.Tensor] = {}
    for k, t in dst.items():
        if src[k].shape != t.shape:
            raise WeightMappingError(f"`{k}`: the generated module has {_shape(t)}, the source {_shape(src[k])}")
        mapped[k] = src[k]
    return mapped, [k for k in src if k not in dst and not k.endswith(_COUNTER)]


def _by_order(src: Tensors, dst: Tensors) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The same, pairing tensors in registration order (counters dropped unless both sides have them)."""
    if not any(k.endswith(_COUNTER) for k in dst):
        src = {k: v for k, v in src.items() if not k.endswith(_COUNTER)}
    src_items = list(src.items())
    mapped: dict[str, torch.Tensor] = {}
    for i, (k, t) in enumerate(dst.items()):
        if i >= len(src_items):
            raise WeightMappingError(
                f"`{k}` ({_shape(t)}, tensor #{i + 1} of the generated module) has no counterpart: the source "
                f"has only {len(src_items)} tensors")
        sk, st = src_items[i]
        if st.shape != t.shape:
            raise WeightMappingError(
                f"tensor #{i + 1}: the generated module's `{k}` is {_shape(t)} but the source's `{sk}` is "
                f"{_shape(st)} (matching by order, since the names differ)")
        mapped[k] = st
    return mapped, [k for k, _ in src_items[len(dst):]]

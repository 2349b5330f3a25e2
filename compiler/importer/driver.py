"""The importer's entry points: a module (or a factory) and an input shape in, spec text out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archdsl.diagnostics import ArchError, Diagnostic, Span

from . import factory
from .emit import emit
from .structure import build_structure
from .trace import Shape, check_state_coverage, trace


@dataclass
class ImportResult:
    """The spec text, the network's name in it, and what the importer wants the user to know."""

    text: str
    network: str
    params: int  # the model's parameter count
    outputs: list[Shape]  # the model's output shapes (batch excluded)
    notes: list[str] = field(default_factory=list)


def network_name(hint: str) -> str:
    n = re.sub(r"[^A-Za-z0-9_]", "_", hint).strip("_").lower() or "model"
    return n if n[0].isalpha() else "net_" + n


def import_module(model: Any, input_shape: Shape, name: str | None = None, source: str | None = None,
                  ctor_args: dict[int, dict[str, Any]] | None = None) -> ImportResult:
    """The `.arch` text of `model` traced at `input_shape` (batch excluded). Raises ArchError with
    one diagnostic per construct that has no archdsl equivalent."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    net = network_name(name or type(model).__name__)  # a class name lowercased: GoogLeNet → googlenet
    was_training = model.training
    model.eval()
    try:
        traced = trace(model, tuple(input_shape), net)
    finally:
        model.train(was_training)
    if len(traced.outputs) != 1:
        raise ArchError(Diagnostic("E1207", f"`{net}` returns {len(traced.outputs)} tensors; `archdsl import` "
                                   "takes models with one output", Span.unknown(f"<{net}>"),
                                   "wrap the model so that forward returns the one output to describe"))
    unused = check_state_coverage(traced, net)
    if unused:
        raise ArchError(unused)
    structure = build_structure(traced, net, ctor_args or {}, net)
    shape = "x".join(str(d) for d in input_shape)
    header = [f"{net}: imported from {source or type(model).__module__ + '.' + type(model).__qualname__} by "
              f"`archdsl import` (torch.export at {shape}).",
              "Blocks are the model's module classes; labels are its state_dict names, so its weights load by name."]
    text = emit(structure, header, tuple(input_shape))
    params = sum(p.numel() for p in model.parameters())
    return ImportResult(text, net, params, [traced.shapes[v] for v in traced.outputs], structure.notes)


def import_factory(spec: str, input_shape: Shape) -> ImportResult:
    """Build the model `spec` names (`torchvision.models:resnet50`, `timm:efficientnet_b0`,
    `file.py:build`) with its constructor arguments recorded, and import it."""
    fn, attr = factory.resolve(spec)
    model, args = factory.build(fn, spec)
    return import_module(model, input_shape, attr, spec, args)


def import_any(model: Any, input_shape: Shape, name: str | None = None) -> ImportResult:
    """`model` as an nn.Module, a zero-argument factory, or a MODULE:FACTORY string."""
    from torch import nn

    if isinstance(model, str):
        return import_factory(model, input_shape)
    if isinstance(model, nn.Module):
        return import_module(model, input_shape, name)
    if callable(model):
        label = getattr(model, "__name__", "")
        built, args = factory.build(model, label or type(model).__name__)
        named = name or (label if label.isidentifier() else None)  # not "<lambda>": the model's class then
        return import_module(built, input_shape, named, None, args)
    raise TypeError(f"expected an nn.Module, a factory or MODULE:FACTORY, got {type(model).__name__}")

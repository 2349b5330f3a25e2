"""Which input sizes a generated module serves, for its docstring.

A module compiled from a spec at one input size runs at another when the spec, elaborated at that
size, makes the same layers — the same code (:func:`module_signature`). Sizes taken from tensors
(`upsample(x, lateral)`, `crop(x, like)`) stay free; a `linear` after `flatten`, a fixed
`upsample(size=…)` or a pooling window fitted to one size do not. This tries the spec at other
sizes: for a step of 1, 2, 4, … up to the largest power of two dividing H and W, at H and W grown by
an odd multiple of the step, at least SPREAD; the first step that gives the same code is the one the
module accepts; when none does, the module serves the declared size (and any that rounds to the same
maps all the way down) and the sentence names the layer (or the error) that ties it there. Why such
a size: one a single step away can round to the same feature maps all the way down (SSD300's six
maps are the same at 301 as at 300), which hides a layer fitted to one map's size; growing by SPREAD
or more changes every map down to that stride. And an odd multiple of the step is not a multiple of
twice the step, so a network that needs twice the step fails the try (EfficientDet's 128, at a step
of 64).
"""

from __future__ import annotations

from collections.abc import Callable

from archdsl.compiler.backends.torch_codegen import module_signature

from .diagnostics import ArchError
from .ir import IR
from .ops import Shape

MAX_STEP = 256  # a network's total stride rarely exceeds this (EfficientDet-D7x's P8: 256)
SPREAD = 64  # a try grows H and W by at least this much


def size_statement(ir: IR, elaborate: Callable[[Shape], IR]) -> str | None:
    """One sentence about the sizes the network's module serves; None without a spatial input.
    `elaborate(shape)` elaborates the same network with its (first) input of that shape."""
    inputs = ir.inputs()
    if not any(len(n.out_shapes[0]) == 3 for n in inputs):
        return None
    if len(inputs) > 1:
        return "Inputs: the declared sizes (with several inputs, no other size was tried)."
    name, (c, h, w) = inputs[0].name, inputs[0].out_shapes[0]
    signature = module_signature(ir)
    step, limit = 1, _largest_power_of_two(h, w)
    tried = _Tries(elaborate)
    while step <= limit:
        # One size per step: a second one could only lengthen the list of sizes tried, never change
        # the answer, and each try elaborates the whole network again.
        grown = _grown(step)
        if tried.at((c, h + grown, w + grown)) == signature:
            which = "any H and W" if step == 1 else f"H and W multiples of {step}"
            return (f"Input {name}: {c} x H x W for {which}: the same layers as at {h} x {w} (tried at "
                    f"{h + grown} x {w + grown}), as long as every layer keeps an output.")
        step *= 2
    # The reason is seen at the last size tried (the loop's elaboration there is reused).
    grown = _grown(limit)
    # Not "only": a size that rounds to the same maps down the network (33 for a CIFAR net's 32) makes
    # the same layers, and the module takes it.
    return (f"Input {name}: {c} x {h} x {w}, or a size that makes the same layers: "
            f"{_why_fixed(signature, tried, (c, h + grown, w + grown))}.")


class _Tries:
    """The network's signature at a size, or the error that stopped it there; the last size tried
    is remembered, so that the reason a module is fixed is read from the loop's last try."""

    def __init__(self, elaborate: Callable[[Shape], IR]) -> None:
        self.elaborate = elaborate
        self.last: tuple[Shape, tuple[object, ...] | ArchError] | None = None

    def at(self, shape: Shape) -> tuple[object, ...] | ArchError:
        if self.last is None or self.last[0] != shape:
            try:
                found: tuple[object, ...] | ArchError = module_signature(self.elaborate(shape))
            except ArchError as exc:
                found = exc
            self.last = (shape, found)
        return self.last[1]


def _why_fixed(signature: tuple[object, ...], tried: _Tries, shape: Shape) -> str:
    """What ties the module to its size, seen at `shape`: the first layer made differently there."""
    at = f"{shape[1]} x {shape[2]}"
    other = tried.at(shape)
    if isinstance(other, ArchError):
        return f"at {at} the spec does not elaborate ({other.diagnostics[0].message})"
    mine_nodes, their_nodes = signature[0], other[0]
    assert isinstance(mine_nodes, tuple) and isinstance(their_nodes, tuple)
    for mine, theirs in zip(mine_nodes, their_nodes, strict=False):
        if mine != theirs:
            return f"`{mine[0]}` ({mine[1]}) is made for this size"
    return f"at {at} the spec makes other layers"


def _grown(step: int) -> int:
    """How much a try at this step adds to H and W: an odd multiple of the step, at least SPREAD."""
    return step * (max(1, SPREAD // step) | 1)


def _largest_power_of_two(*sizes: int) -> int:
    step = 1
    while step * 2 <= MAX_STEP and all(s % (step * 2) == 0 for s in sizes):
        step *= 2
    return step


__all__ = ["size_statement"]

"""Receptive fields per node and per axis (h, w), after Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks" (Distill, 2019).

For every node the pass records, per network input reaching it, a :class:`Field`: its ``size`` r,
``stride`` (jump) j and ``start`` — the input coordinate of the centre of the first output's field —
so that output i covers ``[start + i·j − (r−1)/2, start + i·j + (r−1)/2]`` (before clipping to the
image). Each op declares its own transfer rule (``Op.geometry``: effective kernel k, stride s,
padding before p, or ``global_``); the pass never looks at op names:

    r_out = r_in + (k − 1)·j_in      j_out = j_in·s      start_out = start_in + ((k − 1)/2 − p)·j_in

A stride below 1 (upsampling, transposed convolution) divides the jump. A ``global_`` op (global
pooling, flatten of a spatial map, linear over a vector) sees every position of its input map: its
field is the union of their fields — the rule above with k = the map's extent, s = 1, p = 0 — and
it is reported as ``"global"`` from there on. Merges (add, mul, concat, fuse) take the union of the
paths' fields: the smallest interval holding all of them; paths whose centres (or jumps) disagree
set ``misaligned``. Fields are exact for integer jumps; after upsampling they are upper bounds.

>>> import archdsl
>>> net = archdsl.load_string('''
... network two3x3 {
...     input image: 1x32x32
...     image -> conv(1, 3) -> conv(1, 3) -> output y
... }''').network()
>>> net.analysis[ReceptiveFieldPass]["y"].primary.size
(5, 5)

NOTE: a network with several spatial inputs gets one field per input (:attr:`Fields.by_input`);
:attr:`Fields.primary` is the field with respect to the first declared input that reaches the
node. An input that is not C×H×W (a latent vector) has no spatial extent: everything computed from
it is ``global``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from archdsl.ir import IR, IRNode, Port, output_name
from archdsl.ops import Geometry, Shape

from .registry import Analysis, Figure, FigureError, Pass, PerCall, Target, register

Pair = tuple[float, float]

# Above this, a jump or a start might not be exact as a float: `Field.apply` computes starts in
# floats, so the shortcuts in integers (`_Window.move`, `union`) are taken only below it.
_EXACT = 1 << 40


def _clean(x: float) -> float:
    """Integral floats become ints (so reports read `196`, not `196.0`); others keep 6 decimals."""
    if type(x) is int:  # the common case, and already clean
        return x
    r = round(x)
    if abs(x - r) < 1e-9:
        return int(r)
    return round(x, 6)


def _pair(a: Pair) -> tuple[float, float]:
    return (_clean(a[0]), _clean(a[1]))


@dataclass(slots=True, unsafe_hash=True)
class Field:
    """The receptive field of a node's outputs with respect to one network input, per axis (h, w);
    never changed once made (nodes share them).

    >>> f = Field.identity().apply((3, 3), (2, 2), (1, 1))
    >>> f.size, f.stride, f.start
    ((3, 3), (2, 2), (0, 0))
    >>> f.extent(0, 1)          # output 1 along h covers input rows 1..3
    (1, 3)
    """

    size: Pair
    stride: Pair
    start: Pair
    global_: bool = False
    misaligned: bool = False

    @staticmethod
    def identity() -> Field:
        return Field((1, 1), (1, 1), (0, 0))

    def apply(self, kernel: Pair, stride: Pair, pad: Pair) -> Field:
        if self.global_:
            return self
        (r0, r1), (j0, j1), (c0, c1) = self.size, self.stride, self.start
        size = (_clean(r0 + (kernel[0] - 1) * j0), _clean(r1 + (kernel[1] - 1) * j1))
        start = (_clean(c0 + ((kernel[0] - 1) / 2 - pad[0]) * j0), _clean(c1 + ((kernel[1] - 1) / 2 - pad[1]) * j1))
        return Field(size, (_clean(j0 * stride[0]), _clean(j1 * stride[1])), start, False, self.misaligned)

    def globalize(self, in_shape: Shape) -> Field:
        """The field of an op that reads every position of its C×H×W input."""
        if self.global_:
            return self
        f = self.apply((in_shape[1], in_shape[2]), (1, 1), (0, 0)) if len(in_shape) == 3 else self
        return replace(f, global_=True)

    def extent(self, axis: int, index: int = 0) -> tuple[float, float]:
        """Input coordinates [lo, hi] covered by output `index` along `axis` (not clipped)."""
        centre = self.start[axis] + index * self.stride[axis]
        half = (self.size[axis] - 1) / 2
        return (_clean(centre - half), _clean(centre + half))

    def to_json(self) -> dict[str, object]:
        return {"size": list(self.size), "stride": list(self.stride), "start": list(self.start),
                "misaligned": self.misaligned}


def union(fields: list[Field]) -> Field:
    """The smallest field holding every path's field (Araujo et al. §"multi-path"): extents united
    per axis; differing centres or jumps mark the result `misaligned`."""
    first = fields[0]
    if len(fields) == 1:
        return first
    if all(f == first for f in fields) and all(type(x) is int for x in (*first.size, *first.start, *first.stride)):
        return first  # a field united with itself (integral, so exactly): the same field
    if all(_exact(f) and f.size[0] % 2 and f.size[1] % 2 for f in fields):
        return _union_integral(fields)
    return _union_general(fields)


def _union_general(fields: list[Field]) -> Field:
    """`union` by the rule as stated: extents united per axis, through `Field.extent`."""
    size, start, stride = [], [], []
    misaligned = any(f.misaligned for f in fields)
    for axis in range(2):
        lo = min(f.extent(axis)[0] for f in fields)
        hi = max(f.extent(axis)[1] for f in fields)
        size.append(_clean(hi - lo + 1))
        start.append(_clean((lo + hi) / 2))
        jumps = {f.stride[axis] for f in fields}
        stride.append(max(jumps))
        centres = {f.start[axis] for f in fields}
        misaligned = misaligned or len(jumps) > 1 or len(centres) > 1
    return Field((size[0], size[1]), (stride[0], stride[1]), (start[0], start[1]),
                 global_=any(f.global_ for f in fields), misaligned=misaligned)


def _union_integral(fields: list[Field]) -> Field:
    """`union` of fields of exact integers with odd sizes, whose extents are integers: the same rule
    in integers, both axes in one walk."""
    first = fields[0]
    (r0, r1), (jump0, jump1), (c0, c1) = first.size, first.stride, first.start
    lo0, hi0, lo1, hi1 = c0 - (r0 - 1) // 2, c0 + (r0 - 1) // 2, c1 - (r1 - 1) // 2, c1 + (r1 - 1) // 2
    misaligned, global_ = first.misaligned, first.global_
    for f in fields[1:]:
        (r0, r1), (j0, j1), (c0, c1) = f.size, f.stride, f.start
        lo0, hi0 = min(lo0, c0 - (r0 - 1) // 2), max(hi0, c0 + (r0 - 1) // 2)
        lo1, hi1 = min(lo1, c1 - (r1 - 1) // 2), max(hi1, c1 + (r1 - 1) // 2)
        # A jump or a centre that is not the first path's: the paths disagree.
        misaligned = misaligned or f.misaligned or f.stride != first.stride or f.start != first.start
        jump0, jump1, global_ = max(jump0, j0), max(jump1, j1), global_ or f.global_
    return Field((hi0 - lo0 + 1, hi1 - lo1 + 1), (jump0, jump1), (_clean((lo0 + hi0) / 2), _clean((lo1 + hi1) / 2)),
                 global_=global_, misaligned=misaligned)


def _exact(f: Field) -> bool:
    """Whether every number of `f` is an integer small enough to be exact as a float too."""
    (r0, r1), (j0, j1), (c0, c1) = f.size, f.stride, f.start
    return (type(r0) is int and type(r1) is int and type(j0) is int and type(j1) is int and type(c0) is int
            and type(c1) is int and -_EXACT < c0 < _EXACT and -_EXACT < c1 < _EXACT and -_EXACT < j0 < _EXACT
            and -_EXACT < j1 < _EXACT and r0 < _EXACT and r1 < _EXACT)


@dataclass(slots=True, eq=True)
class Fields:
    """A node's receptive fields: one per network input reaching it, and the one reported — of its
    first output; ``others`` holds those of its later outputs where they differ (a spatial split).
    Never changed once made: a node that moves no window shares its input's."""

    by_input: Mapping[str, Field]
    primary: Field | None  # w.r.t. the first declared input that reaches the node
    others: tuple[Fields, ...] = ()

    def output(self, index: int) -> Fields:
        """The fields of output `index` of the node."""
        return self.others[index - 1] if index and self.others else self


class _Window:
    """An op's geometry as the pass applies it: the transfer rule's constants per axis, and whether
    a field of integers moves by integers (the common case: odd kernels, integer strides)."""

    __slots__ = ("geometry", "identity", "integral", "k0", "k1", "o0", "o1", "s0", "s1")

    def __init__(self, g: Geometry) -> None:
        self.geometry = g
        (k0, k1), (s0, s1), (p0, p1) = g.kernel, g.stride, g.pad
        self.identity = not g.global_ and not g.shifts and g.kernel == (1, 1) and g.stride == (1, 1) and g.pad == (0, 0)
        # r_out = r + k·j, start_out = start + o·j, j_out = j·s (k, o: the rule's k − 1 and (k − 1)/2 − p)
        self.k0, self.k1 = _clean(k0 - 1), _clean(k1 - 1)
        self.o0, self.o1 = _clean((k0 - 1) / 2 - p0), _clean((k1 - 1) / 2 - p1)
        self.s0, self.s1 = s0, s1
        self.integral = not g.global_ and not g.shifts and all(
            type(x) is int for x in (self.k0, self.k1, self.o0, self.o1, s0, s1)) and abs(self.o0) < 4096 > abs(self.o1)

    def move(self, f: Field) -> Field:
        """`f.apply(kernel, stride, pad)`: in integers where that gives the same numbers (no float on
        the way, every value far below 2⁵³), else by the general rule."""
        if self.integral and not f.global_ and _exact(f):
            (r0, r1), (j0, j1), (c0, c1) = f.size, f.stride, f.start
            return Field((r0 + self.k0 * j0, r1 + self.k1 * j1), (j0 * self.s0, j1 * self.s1),
                         (c0 + self.o0 * j0, c1 + self.o1 * j1), False, f.misaligned)
        g = self.geometry
        return f.apply(g.kernel, g.stride, g.pad)


_WINDOWS: PerCall[_Window] = PerCall()  # by input shapes


def _window(node: IRNode, ins: tuple[Shape, ...]) -> _Window:
    return _WINDOWS.get(node, (ins,), lambda: _Window(node.op_class.geometry(node.attrs, list(ins))))


def _primary(inputs: list[str], by_input: Mapping[str, Field]) -> Field | None:
    """The field w.r.t. the first of the network's `inputs` (by name, in declaration order) that has one."""
    for name in inputs:
        f = by_input.get(name)
        if f is not None:
            return f
    return None


@register
class ReceptiveFieldPass(Pass[Fields]):
    name = "receptive_field"
    network_fields = ("receptive_field",)
    layer_fields = ("receptive_field",)

    def run(self, ir: IR, analysis: Analysis) -> dict[str, Fields]:
        order = [n.name for n in ir.inputs()]
        out: dict[str, Fields] = {}
        # Within one IR, windows by identity: the IR keeps one tuple per distinct list of input shapes.
        windows: dict[tuple[Any, ...], _Window] = {}
        in_shapes = ir.in_shapes_key
        for node in ir:
            if node.kind == "input":
                f = Field.identity()
                by_input = {node.name: f if len(node.out_shapes[0]) == 3 else replace(f, global_=True)}
                out[node.name] = Fields(by_input, _primary(order, by_input))
                continue
            w: _Window | None = None
            if node.kind == "op":
                ins = in_shapes(node)
                key = (node.op, id(node.attrs), id(ins))
                w = windows.get(key) or windows.setdefault(key, _window(node, ins))
            inputs = node.inputs
            if len(inputs) == 1:
                previous = out[inputs[0].node].output(inputs[0].index)
                if w is None or w.identity:  # a node that moves no window shares its input's fields
                    out[node.name] = previous if not previous.others else Fields(previous.by_input, previous.primary)
                    continue
                if w.integral:
                    moved = {k: w.move(f) for k, f in previous.by_input.items()}
                    out[node.name] = Fields(moved, _primary(order, moved))
                    continue
                merged = previous.by_input
            else:
                merged = self._merged(inputs, w, out)
            first, *others = self._moved(merged, w, in_shapes(node) if w is not None else ())
            out[node.name] = Fields(first, _primary(order, first), tuple(Fields(f, _primary(order, f)) for f in others))
        return out

    @staticmethod
    def _merged(inputs: tuple[Port, ...], w: _Window | None, done: Mapping[str, Fields]) -> Mapping[str, Field]:
        """The fields of the paths into a node (those that carry data), united per network input."""
        ports = list(dict.fromkeys(inputs[:w.geometry.data_inputs if w is not None else None]))
        if len(ports) == 1:  # one path: its fields, unchanged (shared, never modified)
            return done[ports[0].node].output(ports[0].index).by_input
        paths: dict[str, list[Field]] = {}
        for port in ports:
            for key, f in done[port.node].output(port.index).by_input.items():
                paths.setdefault(key, []).append(f)
        return {key: union(fs) for key, fs in paths.items()}

    @staticmethod
    def _moved(merged: Mapping[str, Field], w: _Window | None, ins: tuple[Shape, ...]) -> list[Mapping[str, Field]]:
        """The fields of output 0, then of each later output when they differ."""
        if w is None or w.identity:
            return [merged]
        g = w.geometry
        if g.global_:
            return [{k: f.globalize(ins[0]) for k, f in merged.items()}]
        if g.shifts:  # outputs starting at different places (a spatial split): one field each
            return [{k: f.apply(g.kernel, g.stride, (g.pad[0] - dh, g.pad[1] - dw)) for k, f in merged.items()}
                    for dh, dw in g.shifts]
        return [{k: w.move(f) for k, f in merged.items()}]

    @classmethod
    def figures(cls) -> tuple[Figure, ...]:
        return (
            Figure("rf", "receptive-field size (a number when square, else [h, w]; `global`)",
                   of_nodes=_field_figure(cls, "size"), call_form=True),
            Figure("rf_stride", "receptive-field stride (jump)", of_nodes=_field_figure(cls, "stride"), call_form=True),
            Figure("rf_start", "centre of the first output's field", of_nodes=_field_figure(cls, "start"),
                   call_form=True),
        )

    @classmethod
    def network_report(cls, ir: IR, analysis: Analysis) -> dict[str, Any]:
        results, order = analysis[cls], [n.name for n in ir.inputs()]
        return {"receptive_field": {output_name(n): _report(order, results[n.name]) for n in ir.outputs()}}

    @classmethod
    def layer_report(cls, ir: IR, analysis: Analysis, node: IRNode) -> dict[str, Any]:
        return {"receptive_field": field_report(ir, analysis[cls][node.name])}

    @classmethod
    def layer_reports(cls, ir: IR, analysis: Analysis) -> Iterator[dict[str, Any]]:
        results, order = analysis[cls], [n.name for n in ir.inputs()]
        # Nodes that move no window share their input's Fields (a conv's bn and relu follow it): the
        # entry of the last Fields reported is handed on while the Fields repeat (only the last, so a
        # huge network's report holds no entry per layer).
        last: Fields | None = None
        entry: dict[str, Any] = {}
        for node in ir.nodes("op"):
            fields = results[node.name]
            if fields is not last:
                last, entry = fields, {"receptive_field": _report(order, fields)}
            yield entry


def field_report(ir: IR, fields: Fields) -> dict[str, Any] | str | None:
    """The field w.r.t. the first network input reaching the node, as reported: its size, stride and
    start per axis, that input's name and whether paths disagree; or "global"; or None."""
    return _report([n.name for n in ir.inputs()], fields)


def _report(inputs: list[str], fields: Fields) -> dict[str, Any] | str | None:
    """`field_report`, the network's inputs given by name in declaration order."""
    by_input = fields.by_input
    for name in inputs:
        f = by_input.get(name)
        if f is not None:
            if f.global_:
                return "global"
            return {"size": list(f.size), "stride": list(f.stride), "start": list(f.start), "input": name,
                    "misaligned": f.misaligned}
    return None


def _field_figure(kind: type[ReceptiveFieldPass], what: str) -> Any:
    def figure(ir: IR, analysis: Analysis, target: Target) -> Any:
        port = target.port
        f = analysis[kind][port.node].output(port.index).primary
        if f is None:
            raise FigureError(f"`{port.node}` has no receptive field")
        if f.global_:
            return "global"
        pair: Pair = getattr(f, what)
        return pair[0] if pair[0] == pair[1] else list(pair)

    return figure


def describe(field: Field | None) -> str:
    """`196×196 /16 @7.5` style text for tables; `global` for whole-input fields."""
    if field is None:
        return "—"
    if field.global_:
        return "global"
    size = f"{field.size[0]}" if field.size[0] == field.size[1] else f"{field.size[0]}×{field.size[1]}"
    jump = f"{field.stride[0]}" if field.stride[0] == field.stride[1] else f"{field.stride[0]}×{field.stride[1]}"
    return f"{size} /{jump}" + (" (misaligned)" if field.misaligned else "")


__all__ = ["Field", "Fields", "ReceptiveFieldPass", "describe", "field_report", "union"]

"""Tracing: a PyTorch module → a flat list of archdsl op instances, each with its module path.

Why ``torch.export`` rather than ``torch.fx.symbolic_trace``: both keep the module hierarchy (every
export node carries ``nn_module_stack``, the chain of module calls it ran inside, functional ops
included), but export runs the module on real shapes, so Python control flow over sizes is
specialized instead of failing: timm's TF-"same" convolutions compute their padding from
``x.shape`` and cannot be symbolically traced (of 16 torchvision and timm models tried both ways,
fx failed on tf_efficientnet_b0, export on none). Export also
lowers the many spellings of one operation (``nn.ReLU``, ``F.relu``, ``x.relu_()``) to one ATen op,
so the table below maps ~40 ATen ops instead of three times as many modules, functions and methods.
The price is a few patterns to recognize again (channel shuffle as view/transpose/view, a flatten
as a view), handled in :class:`Lowering`.

Every ATen node becomes at most one :class:`Layer` (a registry op with its attributes) or an alias
of its input (``contiguous``, ``clone``, an identity slice); anything else is a diagnostic naming
the module path and the op, at the line of Python that called it. Each layer is checked against its
op's own shape rule and parameter count before it is kept (:meth:`Lowering._check`), and an in-place
write that another tensor would see is refused, so a spec never silently computes something else.
"""

from __future__ import annotations

import linecache
import math
import operator
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archdsl.diagnostics import SOURCES, ArchError, Diagnostic, Span
from archdsl.ops import AttrError, ShapeError, get_op

if TYPE_CHECKING:
    from torch import fx, nn

Shape = tuple[int, ...]
BATCH = 2  # traced batch size: 2, so a view's batch dimension cannot be mistaken for a size-1 one


@dataclass(frozen=True, order=True)
class Val:
    """One tensor of the traced graph: output `index` of node `node`."""

    node: str
    index: int = 0


@dataclass(frozen=True)
class Param:
    """A parameter or buffer, by its state_dict key."""

    fqn: str

    @property
    def module(self) -> str:
        return self.fqn.rpartition(".")[0]


@dataclass(frozen=True)
class StackEntry:
    """One module call enclosing a node: its path, which call of it (0, 1, …) and its class."""

    path: str
    call: int
    cls: type


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    text: str


@dataclass
class Layer:
    """One archdsl op instance."""

    index: int
    op: str
    attrs: dict[str, Any]
    inputs: list[Val]
    outputs: list[Val]
    out_shapes: list[Shape]
    state: str | None  # the module path holding this op's parameters/buffers (its label), or None
    stack: tuple[StackEntry, ...]  # enclosing module calls, outermost first, the root excluded
    frames: tuple[Frame, ...]
    source: str  # the ATen op it came from, for messages
    bare: bool = False  # `state` is the key of a bare parameter (layer scale's gamma), not a module


@dataclass
class Traced:
    root: nn.Module
    layers: list[Layer]
    inputs: list[tuple[Val, Shape]]
    outputs: list[Val]
    shapes: dict[Val, Shape]
    used_state: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# diagnostics


def frames_of(node: fx.Node) -> tuple[Frame, ...]:
    """The Python frames of a node's stack trace, outermost first."""
    trace = node.meta.get("stack_trace") or ""
    out = []
    for m in re.finditer(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', trace):
        out.append(Frame(m.group(1), int(m.group(2)), m.group(3).strip()))
    return tuple(out)


_TORCH_DIR = None


def _torch_dir() -> str:
    global _TORCH_DIR
    if _TORCH_DIR is None:
        import torch

        _TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
    return _TORCH_DIR


def user_span(frames: Iterable[Frame], fallback: str) -> Span:
    """The span of the innermost frame outside torch itself (the model's own code), with the file's
    text registered so the diagnostic quotes the line."""
    chosen = None
    for f in frames:
        if not os.path.abspath(f.file).startswith(_torch_dir() + os.sep):
            chosen = f
    if chosen is None:
        return Span.unknown(fallback)
    shown = os.path.relpath(chosen.file)  # relative to the working directory where that is shorter
    shown = chosen.file if shown.startswith("..") else shown
    lines = linecache.getlines(chosen.file)
    if lines:
        SOURCES.add(shown, "".join(lines))
        text = lines[chosen.line - 1] if chosen.line <= len(lines) else ""
        col = len(text) - len(text.lstrip()) + 1
        return Span(shown, chosen.line, col, chosen.line, len(text.rstrip()) + 1)
    return Span(shown, chosen.line, 1, chosen.line, 1)


class Unmappable(Exception):
    """Raised by a lowering rule: this node has no archdsl equivalent (the message says why)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# ---------------------------------------------------------------------------------------------
# export


def export(model: nn.Module, input_shape: Shape, model_name: str) -> Any:
    """torch.export at a batch of BATCH; torch's own logging and warnings are silenced (a failure is
    reported once, as a diagnostic)."""
    import logging
    import warnings

    import torch

    x = torch.randn(BATCH, *input_shape)
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(model, (x,), strict=False)
    except Exception as exc:  # torch's own message says what in the model could not be traced
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ArchError(Diagnostic(
            "E1201", f"torch.export cannot trace `{model_name}` at {'x'.join(map(str, input_shape))}: "
            f"{type(exc).__name__}: {first[:300]}", Span.unknown(f"<{model_name}>"),
            "archdsl imports what torch.export can trace at a fixed input shape; check that the model "
            "runs on an input of --input's shape")) from None
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------
# lowering ATen → archdsl


@dataclass
class Args:
    """A node's arguments by schema name, with tensors as Val and parameters as Param."""

    node: fx.Node
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def x(self) -> Val:
        """The tensor operated on (ATen calls it `self` or `input`)."""
        v = self.values["self"] if "self" in self.values else self.values["input"]
        return v  # type: ignore[no-any-return]


Rule = Callable[["Lowering", Args], "Lowered | Val | None"]


@dataclass
class Lowered:
    op: str
    attrs: dict[str, Any]
    inputs: list[Val]
    state: str | None = None
    params: tuple[Param, ...] = ()
    bare: bool = False  # the state is one parameter (its key), held directly by the owning module


RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn

    return deco


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = list(v)
    return (int(v[0]), int(v[0])) if len(v) == 1 else (int(v[0]), int(v[1]))


def _state_of(params: Iterable[Param | None]) -> str | None:
    owners = {p.module for p in params if p is not None}
    if len(owners) > 1:
        raise Unmappable(f"uses the parameters of several modules ({', '.join(sorted(owners))})")
    return owners.pop() if owners else None


def _param(lw: Lowering, a: Args, key: str, what: str) -> Param | None:
    v = a.get(key)
    if v is None:
        return None
    if isinstance(v, Param):
        return v
    raise Unmappable(f"its {what} is computed in forward, not a parameter",
                     "archdsl's ops hold plain weights; weight standardization and other weight "
                     "transforms have no spec equivalent")


@rule("aten.conv2d", "aten.convolution", "aten._convolution", "aten.conv_transpose2d")
def _conv(lw: Lowering, a: Args) -> Lowered:
    weight = _param(lw, a, "weight", "weight")
    bias = _param(lw, a, "bias", "bias")
    if weight is None:
        raise Unmappable("has no weight")
    wshape = lw.param_shape(weight)
    if len(wshape) != 4:
        raise Unmappable(f"is a {len(wshape) - 2}-D convolution; archdsl's convolutions are 2-D")
    transposed = bool(a.get("transposed", False)) or str(a.node.target).startswith("aten.conv_transpose2d")
    x = a.x
    stride, dilation = _pair(a.get("stride", 1)), _pair(a.get("dilation", 1))
    groups = int(a.get("groups", 1))
    padding = a.get("padding", 0)
    state = _state_of([weight, bias])
    if transposed:
        output_pad = _pair(a.get("output_padding", 0))
        attrs: dict[str, Any] = {"out": wshape[1] * groups, "kernel": (wshape[2], wshape[3]), "stride": stride,
                                 "pad": _pair(padding), "output_pad": output_pad, "dilation": dilation,
                                 "groups": groups, "bias": bias is not None}
        return Lowered("deconv", attrs, [x], state, (weight,) if bias is None else (weight, bias))
    if isinstance(padding, str):
        if padding == "valid":
            pads: tuple[int, ...] = (0, 0, 0, 0)
        else:  # PyTorch's padding="same" (stride 1): total d·(k−1), the odd pixel after
            pads = ()
            for i in range(2):
                total = dilation[i] * (wshape[2 + i] - 1)
                pads += (total // 2, total - total // 2)
    else:
        ph, pw = _pair(padding)
        pads = (ph, ph, pw, pw)
    x, extra = lw.fold_pad(x)
    pads = tuple(p + e for p, e in zip(pads, extra, strict=True))
    attrs = {"out": wshape[0], "kernel": (wshape[2], wshape[3]), "stride": stride, "pad": pads,
             "dilation": dilation, "groups": groups, "bias": bias is not None}
    return Lowered("conv", attrs, [x], state, (weight,) if bias is None else (weight, bias))


@rule("aten.linear")
def _linear(lw: Lowering, a: Args) -> Lowered:
    weight = _param(lw, a, "weight", "weight")
    bias = _param(lw, a, "bias", "bias")
    if weight is None:
        raise Unmappable("has no weight")
    x = a.x
    attrs: dict[str, Any] = {"out": lw.param_shape(weight)[0], "bias": bias is not None}
    if len(lw.shape(x)) > 1:
        attrs["dim"] = -1  # torch's Linear maps the last dimension (after a permute: the channels)
    return Lowered("linear", attrs, [x],
                   _state_of([weight, bias]), (weight,) if bias is None else (weight, bias))


@rule("aten.batch_norm", "aten._native_batch_norm_legit_no_training", "aten.native_batch_norm")
def _batch_norm(lw: Lowering, a: Args) -> Lowered:
    weight, bias = _param(lw, a, "weight", "weight"), _param(lw, a, "bias", "bias")
    mean, var = _param(lw, a, "running_mean", "running mean"), _param(lw, a, "running_var", "running variance")
    if mean is None or var is None:
        raise Unmappable("normalizes with batch statistics (track_running_stats=False)",
                         "archdsl's bn keeps running statistics")
    if (weight is None) != (bias is None):
        raise Unmappable("has a weight without a bias (or a bias without a weight)")
    if a.get("training", False):
        raise Unmappable("runs in training mode")
    x = a.x
    if len(lw.shape(x)) not in (1, 3):
        raise Unmappable(f"normalizes a {len(lw.shape(x)) + 1}-D tensor; archdsl's bn is 1-D or 2-D")
    if a.get("momentum") is None:
        raise Unmappable("keeps a cumulative average (momentum=None); archdsl's bn has a momentum")
    attrs = {"eps": float(a["eps"]), "momentum": float(a["momentum"]), "affine": weight is not None}
    params = tuple(p for p in (weight, bias, mean, var) if p is not None)
    return Lowered("bn", attrs, [x], _state_of(params), params)


def _simple(op: str) -> Rule:
    def lower(lw: Lowering, a: Args) -> Lowered:
        return Lowered(op, {}, [a.x])

    return lower


for _aten, _op in (("relu", "relu"), ("relu6", "relu6"), ("sigmoid", "sigmoid"), ("tanh", "tanh"),
                   ("silu", "silu"), ("hardswish", "hswish"), ("hardsigmoid", "hsigmoid"), ("mish", "mish")):
    RULES[f"aten.{_aten}"] = RULES[f"aten.{_aten}_"] = _simple(_op)


@rule("aten.hardtanh", "aten.hardtanh_")
def _hardtanh(lw: Lowering, a: Args) -> Lowered:
    if (float(a.get("min_val", -1.0)), float(a.get("max_val", 1.0))) != (0.0, 6.0):
        raise Unmappable(f"clamps to [{a.get('min_val')}, {a.get('max_val')}]; only [0, 6] (relu6) is an op")
    return Lowered("relu6", {}, [a.x])


@rule("aten.gelu", "aten.gelu_")
def _gelu(lw: Lowering, a: Args) -> Lowered:
    if a.get("approximate", "none") != "none":
        raise Unmappable(f"uses the `{a.get('approximate')}` approximation; archdsl's gelu is the exact one")
    return Lowered("gelu", {}, [a.x])


@rule("aten.leaky_relu", "aten.leaky_relu_")
def _leaky(lw: Lowering, a: Args) -> Lowered:
    return Lowered("leaky", {"slope": float(a.get("negative_slope", 0.01))}, [a.x])


@rule("aten.softmax", "aten._softmax")
def _softmax(lw: Lowering, a: Args) -> Lowered:
    x = a.x
    return Lowered("softmax", {"dim": lw.sample_dim(x, int(a["dim"]))}, [x])


def _pool_attrs(lw: Lowering, a: Args, kind: str) -> dict[str, Any]:
    kernel = _pair(a["kernel_size"])
    stride = _pair(a["stride"]) if a.get("stride") else kernel
    ph, pw = _pair(a.get("padding", 0))
    attrs: dict[str, Any] = {"kernel": kernel, "stride": stride, "pad": (ph, ph, pw, pw),
                             "ceil_mode": bool(a.get("ceil_mode", False))}
    if kind == "avgpool":
        if a.get("divisor_override") is not None:
            raise Unmappable("overrides the divisor")
        attrs["count_include_pad"] = bool(a.get("count_include_pad", True))
    elif _pair(a.get("dilation", 1)) != (1, 1):
        raise Unmappable("is a dilated max pool")
    return attrs


@rule("aten.max_pool2d", "aten.max_pool2d_with_indices")
def _maxpool(lw: Lowering, a: Args) -> Lowered:
    x, pad = lw.fold_pad(a.x, value=-math.inf)
    attrs = _pool_attrs(lw, a, "maxpool")
    attrs["pad"] = tuple(p + e for p, e in zip(attrs["pad"], pad, strict=True))
    return Lowered("maxpool", attrs, [x])


@rule("aten.avg_pool2d")
def _avgpool(lw: Lowering, a: Args) -> Lowered:
    return Lowered("avgpool", _pool_attrs(lw, a, "avgpool"), [a.x])


def _adaptive(op: str, pool: str) -> Rule:
    def lower(lw: Lowering, a: Args) -> Lowered:
        size = _pair(a["output_size"])
        x = a.x
        if size == (1, 1):
            return Lowered(pool, {"kernel": "global"}, [x])
        return Lowered(op, {"size": size}, [x])

    return lower


RULES["aten.adaptive_avg_pool2d"] = RULES["aten._adaptive_avg_pool2d"] = _adaptive("adaptive_avgpool", "avgpool")
RULES["aten.adaptive_max_pool2d"] = _adaptive("adaptive_maxpool", "maxpool")


@rule("aten.mean", "aten.amax")
def _reduce(lw: Lowering, a: Args) -> Lowered | None:
    x = a.x
    shape = lw.shape(x)
    dims = a.get("dim") or []
    spatial = sorted(lw.sample_dim(x, int(d)) for d in dims)
    if len(shape) != 3 or spatial != [1, 2]:
        raise Unmappable(f"reduces dimensions {list(dims)} of a {'×'.join(map(str, shape))} tensor; only a "
                         "global spatial pool is an op")
    pool = "avgpool" if str(a.node.target).startswith("aten.mean") else "maxpool"
    lowered = Lowered(pool, {"kernel": "global"}, [x])
    if a.get("keepdim", False):
        return lowered
    lw.then_flatten = True
    return lowered


@rule("aten.flatten")
def _flatten(lw: Lowering, a: Args) -> Lowered | Val:
    x = a.x
    rank = len(lw.shape(x)) + 1
    start, end = int(a.get("start_dim", 0)) % rank, int(a.get("end_dim", -1)) % rank
    if start == end:
        return x
    if (start, end) != (1, rank - 1):
        raise Unmappable(f"flattens dimensions {start}..{end}; archdsl's flatten keeps only the batch dimension")
    return Lowered("flatten", {}, [x])


@rule("aten.view", "aten.reshape", "aten._unsafe_view")
def _view(lw: Lowering, a: Args) -> Lowered | Val:
    x = a.x
    before, after = lw.shape(x), lw.node_shape(a.node)
    if after == before:
        return x
    if after == (math.prod(before),):
        return Lowered("flatten", {}, [x])
    shuffle = lw.match_shuffle(a.node)
    if shuffle is not None:
        return shuffle
    if not after:
        raise Unmappable(f"reshapes {'×'.join(map(str, before))} into the batch dimension")
    return Lowered("reshape", {"shape": list(after)}, [x])


@rule("aten.unsqueeze", "aten.squeeze")
def _squeeze(lw: Lowering, a: Args) -> Lowered | Val:
    x = a.x
    before, after = lw.shape(x), lw.node_shape(a.node)
    if after == before:
        return x
    if not after or len(lw.node_shapes(a.node)) != 1:
        raise Unmappable("changes the batch dimension")
    return Lowered("reshape", {"shape": list(after)}, [x])


@rule("aten.permute", "aten.transpose")
def _permute(lw: Lowering, a: Args) -> Lowered | Val:
    x = a.x
    rank = len(lw.shape(x)) + 1
    if str(a.node.target).startswith("aten.transpose"):
        d0, d1 = int(a["dim0"]) % rank, int(a["dim1"]) % rank
        order = list(range(rank))
        order[d0], order[d1] = order[d1], order[d0]
    else:
        order = [int(d) % rank for d in a["dims"]]
    if order[0] != 0:
        raise Unmappable("moves the batch dimension")
    if order == sorted(order):
        return x
    return Lowered("permute", {"dims": [d - 1 for d in order[1:]]}, [x])


@rule("aten.layer_norm")
def _layer_norm(lw: Lowering, a: Args) -> Lowered:
    x = a.x
    shape = list(a["normalized_shape"])
    if len(shape) != 1 or not lw.shape(x) or shape[0] != lw.shape(x)[-1]:
        raise Unmappable(f"normalizes over {shape}; archdsl's layernorm normalizes one dimension")
    weight, bias = _param(lw, a, "weight", "weight"), _param(lw, a, "bias", "bias")
    if (weight is None) != (bias is None):
        raise Unmappable("has a weight without a bias (or a bias without a weight)")
    params = tuple(p for p in (weight, bias) if p is not None)
    attrs = {"dim": -1, "eps": float(a.get("eps", 1e-5)), "affine": weight is not None}
    return Lowered("layernorm", attrs, [x], _state_of(params), params)


@rule("aten.cat", "aten.concat")
def _cat(lw: Lowering, a: Args) -> Lowered | Val:
    """A concat whose leading inputs were concatenated before (DenseNet concatenates every earlier
    output again in each layer) reuses that result: concat(a, b, c) = concat(concat(a, b), c) exactly,
    and the spec reads as a running concatenation."""
    xs = list(a["tensors"])
    if len(xs) == 1:
        return xs[0]  # type: ignore[no-any-return]
    dim = lw.sample_dim(xs[0], int(a.get("dim", 0)))
    for n in range(len(xs) - 1, 1, -1):
        earlier = lw.concats.get((tuple(xs[:n]), dim))
        if earlier is not None:
            xs = [earlier, *xs[n:]]
            break
    lw.pending_concat = (tuple(a["tensors"]), dim)
    return Lowered("concat", {"dim": dim}, xs)


def _binary(op: str, scalar_op: Callable[[float], float] | None) -> Rule:
    def lower(lw: Lowering, a: Args) -> Lowered | Val:
        x, y = a.x, a["other"]
        if a.get("alpha", 1) != 1:
            raise Unmappable("scales its second operand (alpha)")
        if isinstance(x, Val) and isinstance(y, Val):
            if len(lw.shape(x)) != len(lw.shape(y)):
                raise Unmappable("broadcasts operands of different ranks")
            return Lowered(op, {}, [x, y])
        tensor, other = (x, y) if isinstance(x, Val) else (y, x)
        if op == "mul" and isinstance(tensor, Val) and isinstance(other, Param):
            return _layer_scale(lw, tensor, other)
        return _with_constant(op, scalar_op, a, tensor, other)

    return lower


def _with_constant(op: str, scalar_op: Callable[[float], float] | None, a: Args, tensor: Any,
                   scalar: Any) -> Lowered | Val:
    """A tensor and a number: `x + 0` is x (MobileOne's branch sum starts from 0), `x * s` and `x / s`
    a `scale`; anything else has no op."""
    params = [v.fqn for v in (tensor, scalar) if isinstance(v, Param)]
    if params:
        raise Unmappable(f"computes with the parameter `{params[0]}` in forward",
                         "archdsl's ops hold plain weights; weight standardization and other weight "
                         "transforms have no spec equivalent")
    if not isinstance(tensor, Val) or not isinstance(scalar, int | float):
        raise Unmappable("computes on constants only")
    if op == "add" and scalar == 0:
        return tensor
    if scalar_op is None:
        raise Unmappable(f"adds the constant {scalar!r} to a tensor; only tensors are added (numbers multiply, "
                         "as `scale`)")
    if str(a.node.target).startswith("aten.div") and tensor is not a.x:
        raise Unmappable("divides a constant by a tensor")
    factor = scalar_op(float(scalar))
    return tensor if factor == 1.0 else Lowered("scale", {"factor": factor}, [tensor])


def _layer_scale(lw: Lowering, x: Val, gamma: Param) -> Lowered:
    """x times a parameter that scales each channel: ConvNeXt's layer scale, held as a bare parameter
    (`gamma`, torchvision's `layer_scale`) of the module that owns it."""
    shape = lw.param_view_shape(gamma)
    full = (1,) * (len(lw.shape(x)) + 1 - len(shape)) + shape
    channels = lw.shape(x)[0] if lw.shape(x) else 0
    if len(full) != len(lw.shape(x)) + 1 or full[1] != channels or math.prod(full) != channels:
        raise Unmappable(f"multiplies by the parameter `{gamma.fqn}` ({'×'.join(map(str, shape))}), which does not "
                         "scale each channel", "a per-channel scale is archdsl's layer_scale")
    held = tuple(lw.state[gamma.fqn].shape)
    ranks = {(channels,): 1, (channels, 1, 1): 3}  # timm's gamma, torchvision's C×1×1 layer_scale
    if held not in ranks or ranks[held] not in (1, len(lw.shape(x))):
        raise Unmappable(f"multiplies by the parameter `{gamma.fqn}` of shape {'×'.join(map(str, held))}; "
                         f"archdsl's layer_scale holds {channels} or {channels}×1×1 values, so the state_dict "
                         "key would not load", "a layer scale kept as a C-vector (timm's gamma) or C×1×1 "
                         "(torchvision's) imports")
    values = lw.state[gamma.fqn].detach().flatten()
    init = float(f"{float(values[0]):.7g}") if bool((values == values[0]).all()) else 1.0
    attrs: dict[str, Any] = {"init": init} if ranks[held] == 1 else {"init": init, "rank": ranks[held]}
    return Lowered("layer_scale", attrs, [x], gamma.fqn, (gamma,), bare=True)


RULES["aten.add"] = RULES["aten.add_"] = _binary("add", None)
RULES["aten.mul"] = RULES["aten.mul_"] = _binary("mul", lambda s: s)
RULES["aten.div"] = RULES["aten.div_"] = _binary("div", lambda s: 1.0 / s)


@rule("aten.chunk", "aten.split", "aten.split_with_sizes", "aten.tensor_split")
def _split(lw: Lowering, a: Args) -> Lowered:
    x = a.x
    dim = lw.sample_dim(x, int(a.get("dim", 0)))
    sizes = [s[dim] for s in lw.node_shapes(a.node)]
    if len(set(sizes)) == 1:
        return Lowered("split", {"sections": len(sizes), "dim": dim}, [x])
    return Lowered("split", {"sections": sizes, "dim": dim}, [x])


@rule("aten.slice")
def _slice(lw: Lowering, a: Args) -> Lowered | Val:
    """A slice of channels is one part of a split (the other parts unused, or read by the
    complementary slice, which then reuses the same split)."""
    x = a.x
    shape = lw.shape(x)
    dim = lw.sample_dim(x, int(a.get("dim", 0)))
    size = shape[dim] if dim >= 0 else 0
    start, end, step = a.get("start"), a.get("end"), int(a.get("step", 1))
    start = 0 if start is None else int(start)
    end = size if end is None else min(int(end), size)
    if dim == -1:  # the batch dimension: a full slice is the tensor itself
        if (start, step) == (0, 1) and end >= BATCH:
            return x
        raise Unmappable("slices the batch dimension")
    if (start, end, step) == (0, size, 1):
        return x
    if step != 1 or not 0 <= start < end <= size:
        raise Unmappable(f"takes elements {start}:{end}:{step} of dimension {dim}")
    sections = [n for n in (start, end - start, size - end) if n]
    part = 0 if start == 0 else 1
    earlier = lw.splits.get((x, tuple(sections), dim))
    if earlier is not None:  # x[:, :c] and x[:, c:] are the two parts of one split
        return earlier[part]
    lw.pick = part
    return Lowered("split", {"sections": sections, "dim": dim}, [x])


@rule("aten.dropout", "aten.dropout_", "aten.feature_dropout", "aten.feature_dropout_")
def _dropout(lw: Lowering, a: Args) -> Lowered:
    return Lowered("dropout", {"p": float(a.get("p", 0.5))}, [a.x])


@rule("aten.alias", "aten.clone", "aten.contiguous", "aten.detach", "aten.lift_fresh_copy", "aten.identity")
def _alias(lw: Lowering, a: Args) -> Val:
    return a.x


@rule("aten.upsample_nearest2d", "aten.upsample_bilinear2d")
def _upsample(lw: Lowering, a: Args) -> Lowered:
    x = a.x
    mode = "bilinear" if "bilinear" in str(a.node.target) else "nearest"
    _, h, w = lw.shape(x)
    _, oh, ow = lw.node_shape(a.node)
    attrs: dict[str, Any] = {"mode": mode}
    if oh % h == 0 and oh // h == ow // w and ow % w == 0 and a.get("output_size") is None:
        attrs["scale"] = oh // h
    else:
        attrs["size"] = (oh, ow)
    if mode == "bilinear" and a.get("align_corners"):
        attrs["align_corners"] = True
    return Lowered("upsample", attrs, [x])


@rule("aten.pixel_unshuffle")
def _unshuffle(lw: Lowering, a: Args) -> Lowered:
    return Lowered("pixel_unshuffle", {"block": int(a["downscale_factor"])}, [a.x])


@rule("aten.channel_shuffle", "aten.native_channel_shuffle")
def _channel_shuffle(lw: Lowering, a: Args) -> Lowered:
    return Lowered("shuffle", {"groups": int(a["groups"])}, [a.x])


_FOLDS_PAD = ("aten.conv2d.", "aten.convolution.", "aten._convolution.", "aten.max_pool2d.",
              "aten.max_pool2d_with_indices.")


@rule("aten.pad", "aten.constant_pad_nd")
def _pad(lw: Lowering, a: Args) -> Val | None:
    """Explicit padding (TF "same" in timm's Conv2dSame/MaxPool2dSame) becomes its consumer's `pad`:
    the node is left for the convolution or max pool that reads it (see Lowering.fold_pad)."""
    users = list(a.node.users)
    if len(users) == 1 and str(users[0].target).startswith(_FOLDS_PAD):
        lw.shapes[Val(a.node.name)] = lw.node_shape(a.node)
        lw.deferred_pads.add(a.node.name)
        return None
    raise Unmappable("pads a tensor that no convolution or max pool consumes directly")


_PARAM_VIEWS = ("aten.view.", "aten.reshape.", "aten._unsafe_view.", "aten.unsqueeze.", "aten.alias.")
# ATen ops whose result shares storage with their input: an in-place write into one changes the other.
_VIEWS = ("aten.slice.", "aten.select.", "aten.view.", "aten.alias.", "aten.narrow.", "aten.as_strided.",
          "aten.transpose.", "aten.permute.", "aten.unsqueeze.", "aten.squeeze.", "aten.expand.", "aten.t.",
          "aten.split.", "aten.chunk.", "aten.unflatten.", "aten.flatten.", "aten.reshape.", "aten.diagonal.",
          "aten.split_with_sizes.", "aten.unbind.", "aten.movedim.", "aten.view_as.")
IGNORED = {"aten.sym_size", "aten._assert_async", "aten._assert_scalar", "aten.sym_constrain_range_for_size",
           "aten._assert_tensor_metadata", "aten.sym_numel"}


class Lowering:
    """Walks an exported graph in order and lowers each node (see the module docstring)."""

    def __init__(self, ep: Any, model: nn.Module, model_name: str) -> None:
        self.ep = ep
        self.graph: fx.Graph = ep.graph
        self.model = model
        self.model_name = model_name
        sig = ep.graph_signature
        self.params: dict[str, Param] = {}
        for spec in sig.input_specs:
            if spec.target is not None and spec.kind.name in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                self.params[spec.arg.name] = Param(spec.target)
        self.state = dict(model.state_dict(keep_vars=True))
        self.parameter_names = {n for n, _ in model.named_parameters()}
        self.param_views: dict[Param, tuple[int, ...]] = {}
        self.alias: dict[Val, Val] = {}
        self.deferred_pads: set[str] = set()
        self.shuffled: set[fx.Node] = set()
        self.shuffle_ends: dict[fx.Node, Val] = {}
        self.shape_node: fx.Node | None = None  # where a matched pattern (a channel shuffle) ends
        self.concats: dict[tuple[tuple[Val, ...], int], Val] = {}
        self.splits: dict[tuple[Val, tuple[int, ...], int], list[Val]] = {}
        self.layers: list[Layer] = []
        self.shapes: dict[Val, Shape] = {}
        self.problems: list[Diagnostic] = []
        self.failed: set[str] = set()
        self.seen_problems: dict[tuple[Any, str], tuple[int, int]] = {}
        self.then_flatten = False
        self.pick = 0
        self.used_state: set[str] = set()

    # --- helpers for rules
    def val(self, node: fx.Node, index: int = 0) -> Val:
        v = Val(node.name, index)
        return self.alias.get(v, v)

    def shape(self, v: Val) -> Shape:
        if isinstance(v, Param):
            raise Unmappable(f"operates on the parameter `{v.fqn}` itself",
                             "a parameter used as an activation (a layer scale, a position embedding) has no op")
        if not isinstance(v, Val):
            raise Unmappable(f"operates on a constant ({type(v).__name__})")
        return self.shapes[v]

    def node_shapes(self, node: fx.Node) -> list[Shape]:
        meta = node.meta.get("val")
        metas = list(meta) if isinstance(meta, list | tuple) else [meta]
        return [tuple(int(d) for d in m.shape[1:]) for m in metas if m is not None]

    def node_shape(self, node: fx.Node) -> Shape:
        return self.node_shapes(node)[0]

    def param_shape(self, p: Param) -> Shape:
        return tuple(self.state[p.fqn].shape) if p.fqn in self.state else ()

    def sample_dim(self, x: Val, dim: int) -> int:
        """A full-tensor dimension as a per-sample one (the batch dimension is -1)."""
        rank = len(self.shape(x)) + 1
        return dim % rank - 1

    def fold_pad(self, x: Val, value: float = 0.0) -> tuple[Val, tuple[int, int, int, int]]:
        """If `x` is a constant pad used only here, consume it: (its input, its (t, b, l, r))."""
        if x.node not in self.deferred_pads:
            return x, (0, 0, 0, 0)
        node = self.graph_nodes[x.node]
        args = self.args(node)
        pad = list(args["pad"])
        fill = float(args.get("value", 0.0) or 0.0)
        mode = args.get("mode", "constant")
        if mode != "constant" or len(pad) != 4 or min(pad) < 0 or fill != value:  # conv: zeros, max pool: −∞
            raise Unmappable(f"reads its input padded by {pad} ({mode}, value {fill}); its own padding "
                             f"would be {'zeros' if value == 0 else '-inf'}")
        left, right, top, bottom = (int(p) for p in pad)
        return args["self"], (top, bottom, left, right)

    def match_shuffle(self, node: fx.Node) -> Lowered | None:
        """view(N, g, C/g, H, W) → transpose(1, 2) → [contiguous] → view(N, C, H, W): shuffle(g)."""
        if node in self.shuffled:
            return None
        first = self.node_shape(node)
        users = list(node.users)
        if len(first) != 4 or len(users) != 1 or not str(users[0].target).startswith("aten.transpose"):
            return None
        t = users[0]
        if sorted(int(d) % 5 for d in t.args[1:3] if isinstance(d, int)) != [1, 2]:
            return None
        nxt = list(t.users)
        between = []
        if len(nxt) == 1 and str(nxt[0].target).startswith(("aten.contiguous", "aten.clone")):
            between = nxt
            nxt = list(nxt[0].users)
        if len(nxt) != 1 or not str(nxt[0].target).startswith(("aten.view", "aten.reshape", "aten._unsafe_view")):
            return None
        last = nxt[0]
        x = self.args(node)["self"]
        if self.node_shape(last) != self.shape(x):
            return None
        self.shuffled.update({t, last, *between})
        self.shuffle_ends[last] = Val(node.name)
        self.shape_node = last
        return Lowered("shuffle", {"groups": first[0]}, [x])

    # --- the walk
    def args(self, node: fx.Node) -> Args:
        schema = getattr(node.target, "_schema", None)
        values: dict[str, Any] = {}
        if schema is None:
            return Args(node, {f"arg{i}": self._conv(a) for i, a in enumerate(node.args)})
        for i, arg in enumerate(schema.arguments):
            if i < len(node.args):
                values[arg.name] = self._conv(node.args[i])
            elif arg.name in node.kwargs:
                values[arg.name] = self._conv(node.kwargs[arg.name])
            elif arg.has_default_value():
                values[arg.name] = arg.default_value
        return Args(node, values)

    def _conv(self, a: Any) -> Any:
        from torch import fx

        if isinstance(a, fx.Node):
            if a.name in self.params:
                return self.params[a.name]
            if a.op == "get_attr":
                return Param(str(a.target))
            return self.val(a)
        if isinstance(a, list | tuple):
            return [self._conv(x) for x in a]
        return a

    def run(self) -> Traced:
        self.graph_nodes = {n.name: n for n in self.graph.nodes}
        self.position = {n: i for i, n in enumerate(self.graph.nodes)}
        inputs: list[tuple[Val, Shape]] = []
        outputs: list[Val] = []
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if node.name not in self.params:
                    v = Val(node.name)
                    self.shapes[v] = self.node_shape(node)
                    inputs.append((v, self.shapes[v]))
                continue
            if node.op == "output":
                outs = node.args[0]
                for o in outs if isinstance(outs, list | tuple) else [outs]:
                    outputs.append(self.val(o))
                continue
            if node.op != "call_function":
                continue
            self._lower_node(node)
        if self.problems:
            raise ArchError(self.problems)
        return Traced(self.model, self.layers, inputs, outputs, self.shapes, self.used_state)

    def param_view_shape(self, p: Param) -> tuple[int, ...]:
        return self.param_views.get(p, tuple(self.state[p.fqn].shape))

    def _lower_node(self, node: fx.Node) -> None:
        first = node.args[0] if node.args else None
        if str(node.target).startswith(_PARAM_VIEWS) and isinstance(first, type(node)) and first.name in self.params:
            # a view of a parameter (`self.gamma.reshape(1, -1, 1, 1)`) stands for the parameter
            param = self.params[first.name]
            self.params[node.name] = param
            self.param_views[param] = tuple(int(d) for d in node.meta["val"].shape)
            return
        if node.target is operator.getitem:
            src, index = node.args[0], node.args[1]
            assert isinstance(index, int)
            if isinstance(src, type(node)):
                base = self.val(src)
                self.alias[Val(node.name)] = self.alias.get(Val(src.name, index), Val(base.node, index))
            return
        name = str(node.target).rsplit(".", 1)[0] if "." in str(node.target) else str(node.target)
        if name in IGNORED:
            return
        if node in self.shuffled:
            if node in self.shuffle_ends:
                self.alias[Val(node.name)] = self.shuffle_ends[node]
            return
        if name.endswith("_") and isinstance(first, type(node)) and self._writes_into_shared_view(node, first):
            self._problem(node, self._stack(node), f"`{name}` writes in place into a view (`{first.target}`) "
                          "of another tensor", "write the result to a new tensor (x = x + y, not x[:, :c] += y)")
            return
        out = self._lower_call(node, name)
        if out is None:  # reported, left to its consumer (a folded pad), or reading a failed node
            return
        self.alias[Val(node.name)] = out
        if name.endswith("_") and isinstance(first, type(node)):
            # An in-place op changes its input: later readers of that tensor read the result.
            self.alias[Val(first.name)] = out

    def _writes_into_shared_view(self, node: fx.Node, target: fx.Node) -> bool:
        """Whether in-place `node` writes into storage that a tensor other than `target` shares and
        that is read afterwards (the base of a view, or a view taken earlier): that reader would see
        the write, which a dataflow spec cannot say. Readers of `target` itself read the result."""
        after = self.position[node]
        shared: set[fx.Node] = set()
        base = target
        while str(base.target).startswith(_VIEWS) and base.args and isinstance(base.args[0], type(node)):
            base = base.args[0]
            shared.add(base)
        stack = [target, *shared]
        while stack:  # views taken (before the write) of anything sharing the storage
            for u in stack.pop().users:
                if u not in shared and u is not target and str(u.target).startswith(_VIEWS) \
                        and self.position.get(u, after) < after:
                    shared.add(u)
                    stack.append(u)
        return any(self.position.get(u, -1) > after for c in shared for u in c.users)

    def _lower_call(self, node: fx.Node, name: str) -> Val | None:
        """Lower one call; returns the value the node stands for, None when it could not be lowered."""
        fn = RULES.get(name)
        stack = self._stack(node)
        if fn is None:
            self._problem(node, stack, f"`{name}` has no archdsl op",
                          "the op table is in compiler/importer/trace.py; an op the language lacks is "
                          "added to archdsl/ops first")
            return None
        self.then_flatten = False
        self.pick = 0
        self.pending_concat: tuple[tuple[Val, ...], int] | None = None
        self.shape_node = None
        args = self.args(node)
        unknown = [v for v in _flat(args.values.values()) if isinstance(v, Val) and v not in self.shapes]
        if unknown:
            self.failed.add(node.name)
            if not all(v.node in self.failed for v in unknown):  # else: a node already reported
                self._problem(node, stack, f"`{name}` reads an output that archdsl's ops do not compute "
                              "(a max pool's indices)", None)
            return None
        try:
            result = fn(self, args)
        except Unmappable as exc:
            self._problem(node, stack, f"`{name}` {exc.message}", exc.hint)
            return None
        if isinstance(result, Param):  # e.g. an alias of a parameter, used as an activation
            self._problem(node, stack, f"`{name}` operates on the parameter `{result.fqn}` itself",
                          "a parameter used as an activation (a position embedding, a bias table) has no op")
            return None
        if result is None or isinstance(result, Val):
            return result
        if any(not isinstance(v, Val) for v in result.inputs):
            self._problem(node, stack, f"`{name}` takes a parameter or constant where archdsl's "
                          f"`{result.op}` takes an activation", None)
            return None
        problem = self._check(node, result)
        if problem is not None:
            self._problem(node, stack, f"`{name}` {problem}", "this is a bug in archdsl import; please report it")
            return None
        return self._add_layer(node, name, result, stack)

    def _check(self, node: fx.Node, result: Lowered) -> str | None:
        """The archdsl op must compute torch's output shape and hold its parameters, or the spec would
        silently describe another network; what it says otherwise, or None."""
        op = get_op(result.op)
        ins = [self.shape(v) for v in result.inputs]
        try:
            attrs = op.validate(result.attrs)
            shapes = op.infer(attrs, ins)
        except (AttrError, ShapeError) as exc:
            return f"maps to `{result.op}`, which refuses it: {exc.message}"
        shaped = self.shape_node or node  # a matched pattern (a channel shuffle) ends at another node
        expected = self.node_shapes(shaped)[:len(shapes)] if result.op != "split" else None
        if expected is not None and not self.then_flatten and list(shapes) != expected:
            return f"maps to `{result.op}` computing {shapes[0]}, where torch computes {expected[0]}"
        held = sum(self.state[p.fqn].numel() for p in result.params if p.fqn in self.parameter_names)
        if op.params(attrs, ins) != held:
            return f"maps to `{result.op}` with {op.params(attrs, ins):,} parameters, where torch has {held:,}"
        return None

    def _add_layer(self, node: fx.Node, name: str, result: Lowered, stack: tuple[StackEntry, ...]) -> Val:
        """Append the layer (and the flatten a keepdim=False mean implies); the node's value."""
        # extra ATen outputs (a max pool's indices) are not computed
        shapes = self.node_shapes(self.shape_node or node)[:1]
        if result.op == "split":
            secs, dim, x = result.attrs["sections"], result.attrs["dim"], result.inputs[0]
            sizes = secs if isinstance(secs, list) else [self.shape(x)[dim] // secs] * secs
            shapes = [tuple(n if i == dim else d for i, d in enumerate(self.shape(x))) for n in sizes]
        if self.then_flatten:
            shapes = [(*shapes[0], 1, 1)]
        out_name = f"{node.name}__pre" if self.then_flatten or name == "aten.slice" else node.name
        outs = [Val(out_name, i) for i in range(len(shapes))]
        self.shapes.update(zip(outs, shapes, strict=True))
        frames = frames_of(node)
        self.used_state.update(p.fqn for p in result.params)
        self.layers.append(Layer(len(self.layers), result.op, result.attrs, list(result.inputs), outs,
                                 shapes, result.state, stack, frames, name, result.bare))
        if self.pending_concat is not None:
            self.concats[self.pending_concat] = outs[0]
        if name == "aten.slice":
            secs = result.attrs["sections"]
            self.splits[(result.inputs[0], tuple(secs), result.attrs["dim"])] = outs
            return outs[self.pick]
        if not self.then_flatten:
            return outs[0]
        flat = Val(node.name)
        self.shapes[flat] = self.node_shape(node)
        self.layers.append(Layer(len(self.layers), "flatten", {}, [outs[0]], [flat], [self.shapes[flat]], None,
                                 stack, frames, name))
        return flat

    def _stack(self, node: fx.Node) -> tuple[StackEntry, ...]:
        entries = []
        for key, (path, _cls) in (node.meta.get("nn_module_stack") or {}).items():
            if not path:
                continue
            m = re.search(r"@(\d+)$", key)
            try:
                module = self.model.get_submodule(path)
            except AttributeError:
                continue
            entries.append(StackEntry(path, int(m.group(1)) if m else 0, type(module)))
        return tuple(entries)

    def _problem(self, node: fx.Node, stack: tuple[StackEntry, ...], message: str, hint: str | None) -> None:
        """Record a diagnostic; the same problem in further instances of a module class is counted
        on the first one instead of repeated. Nodes reading this one are skipped silently."""
        self.failed.add(node.name)
        where = f"`{stack[-1].path}` ({stack[-1].cls.__name__})" if stack else "the top-level forward"
        kind = (stack[-1].cls if stack else None, re.sub(r"\d+", "#", message))
        if kind in self.seen_problems:
            index, count = self.seen_problems[kind]
            self.seen_problems[kind] = (index, count + 1)
            first = self.problems[index]
            cls = stack[-1].cls.__name__ if stack else "the model"
            self.problems[index] = Diagnostic(first.code, first.message, first.span, first.hint, first.severity,
                                              (f"the same in {count} more instance(s) of {cls}",))
            return
        span = user_span(frames_of(node), f"<{self.model_name}>")
        if span.line > 1 and any(p.span == span and p.hint == hint for p in self.problems):
            return  # one line of Python, one problem (`y[:, :4] += z` is an add_ and a copy_)
        self.seen_problems[kind] = (len(self.problems), 1)
        self.problems.append(Diagnostic("E1202", f"cannot import {where}: {message}", span, hint))


def _flat(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        out.extend(_flat(v) if isinstance(v, list | tuple) else [v])
    return out


def trace(model: nn.Module, input_shape: Shape, model_name: str) -> Traced:
    """Export `model` at `input_shape` (batch excluded) and lower it (see the module docstring)."""
    ep = export(model, input_shape, model_name)
    return Lowering(ep, model, model_name).run()


def check_state_coverage(traced: Traced, model_name: str) -> list[Diagnostic]:
    """Parameters and buffers the forward never touches: the spec cannot hold them."""
    unused = [k for k, _ in traced.root.named_parameters() if k not in traced.used_state]
    unused += [k for k, _ in traced.root.named_buffers() if k not in traced.used_state
               and not k.endswith("num_batches_tracked")]
    if not unused:
        return []
    modules = sorted({k.rpartition(".")[0] for k in unused})
    shown = ", ".join(f"`{m}`" for m in modules[:5]) + (f" and {len(modules) - 5} more" if len(modules) > 5 else "")
    return [Diagnostic("E1203", f"{len(unused)} parameter(s)/buffer(s) of `{model_name}` are never used by its "
                       f"forward in eval mode: {shown}", Span.unknown(f"<{model_name}>"),
                       "the spec holds what forward computes; build the model without the unused part "
                       "(e.g. aux_logits=False) so its state_dict matches")]

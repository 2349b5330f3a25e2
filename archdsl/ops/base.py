"""The op contract and the registry.

An op is one class: its attribute schema (annotated fields, which pydantic defines; see
:mod:`.attr_schema`), how many inputs it takes, its shape
rule, parameter/buffer/MAC counts, its receptive-field geometry and its torch builder, side by
side. Passes and backends dispatch to these methods and never special-case an op by name.

>>> from archdsl.ops import get_op
>>> conv = get_op("conv")
>>> a = conv.validate({"out": 64, "kernel": 3})
>>> conv.infer(a, [(3, 224, 224)])
[(64, 224, 224)]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from ..formatting import shape_text
from .attr_messages import attribute_message, beyond_int64_message, ints_in
from .attr_schema import INT64_MAX, INT64_MIN, Invalid, NonNegativeInt32, Normalize, PositiveInt32
from .attr_schema import Attrs as Attrs  # the contract: each op names its schema, a subclass

Shape = tuple[int, ...]
Category = Literal["layer", "activation", "merge", "split", "reshape", "pool", "norm", "regularizer"]


class ShapeError(Exception):
    """Raised by a shape rule; the elaborator turns it into a diagnostic at the call's span."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class AttrError(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _to_pair(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, list | tuple) and len(v) == 1:
        return (v[0], v[0])
    if isinstance(v, list):
        return tuple(v)
    return v


def _to_nonneg_pair(v: Any) -> Any:
    """As `_to_pair`; its own name tells attribute messages that 0 is allowed."""
    return _to_pair(v)


def _to_padding(v: Any) -> Any:
    if isinstance(v, (str | type(None), bool)):
        return v
    if isinstance(v, int):
        return (v, v, v, v)
    if isinstance(v, list | tuple):
        if len(v) == 1:
            return (v[0],) * 4
        if len(v) == 2:  # (h, w): symmetric per axis
            return (v[0], v[0], v[1], v[1])
        return tuple(v)
    return v


# A window's size, stride, padding or dilation: 32-bit integers, as torch's kernels hold them.
Pair = Annotated[tuple[PositiveInt32, PositiveInt32], Normalize(_to_pair)]
NonNegPair = Annotated[tuple[NonNegativeInt32, NonNegativeInt32], Normalize(_to_nonneg_pair)]
# (top, bottom, left, right); "same" is TF-style (possibly asymmetric), None is "half" padding.
Pads = tuple[NonNegativeInt32, NonNegativeInt32, NonNegativeInt32, NonNegativeInt32]
Padding = Annotated[Pads | Literal["same", "valid"] | None, Normalize(_to_padding)]


class NoAttrs(Attrs):
    pass


AttrsModel = Attrs  # the base class, for annotations inside `Op`, whose `Attrs` is each op's own schema


@dataclass(frozen=True)
class Geometry:
    """How an op moves a spatial window, per axis (h, w), for the receptive-field pass.

    ``kernel`` is the effective extent d·(k−1)+1, ``pad`` the padding before the first element
    (negative: the output starts further in, as after a crop); ``stride`` below 1 means upsampling
    (the jump is divided). ``global_`` marks ops whose output sees the whole input (global pooling,
    flatten).
    """

    kernel: tuple[float, float] = (1, 1)
    stride: tuple[float, float] = (1, 1)
    pad: tuple[float, float] = (0, 0)
    global_: bool = False
    # How many leading inputs carry data into the output; the others only lend their shape (crop's
    # reference tensor), so their fields do not reach the output. None: all of them.
    data_inputs: int | None = None
    # Per output, where its first element lies in the input beyond output 0's (h, w): a spatial
    # split's later parts start further in. Empty: every output starts where output 0 does.
    shifts: tuple[tuple[float, float], ...] = ()


IDENTITY_GEOMETRY = Geometry()
GLOBAL_GEOMETRY = Geometry(global_=True)


def _refuse_coercions(op: str, given: dict[str, Any], attrs: Attrs) -> None:
    """pydantic's lax mode reads "yes" as true, "64" as 64 and true as 1; a spec must say what it means."""
    for key, value in given.items():
        result = getattr(attrs, key, None)
        from_string = isinstance(value, str) and not isinstance(result, str)
        bool_changed = isinstance(value, bool) != isinstance(result, bool) and not isinstance(result, tuple | None)
        if not (from_string or bool_changed):
            continue
        want = "true or false" if isinstance(result, bool) else "a number"
        shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
        raise AttrError(key, f"`{op}`: bad value {shown} for `{key}`: expected {want}")


# PyTorch's integers are 64-bit: an attribute beyond them is analyzed exactly but builds no module
# (`conv2d(): argument 'stride' failed to unpack`), so the spec is refused where it says it.
def _refuse_beyond_int64(op: str, given: dict[str, Any]) -> None:
    """A given integer, alone or in a list, that PyTorch cannot hold is refused, as written."""
    for key, value in given.items():
        if any(not INT64_MIN <= v <= INT64_MAX for v in ints_in(value)):
            raise AttrError(key, beyond_int64_message(op, key, value))


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an attribute value that tells apart what validation tells apart
    (True from 1, 1.0 from 1, -0.0 from 0.0, a list from a string); None for a value it does not know."""
    kind = type(value)
    if kind is float:  # by its bits: -0.0 == 0.0, yet the two are different attributes
        return (kind, value.hex())
    if kind in (int, bool, str, type(None)):
        return (kind, value)
    if kind is list or kind is tuple:
        items = tuple(_frozen(v) for v in value)
        return None if None in items else (kind, items)
    if isinstance(value, int):  # a size read from a tensor (values.Dim): validated as the plain int
        return (int, int(value))
    return None


def _call_key(op: type[Op], values: dict[str, Any]) -> tuple[Any, ...] | None:
    key: list[Any] = [op]
    for name, value in values.items():
        frozen = _frozen(value)
        if frozen is None:
            return None
        key.append((name, frozen))
    return tuple(key)


# Validated attributes by call (op, attribute names and values); cleared when full, so a long
# session that elaborates many different networks keeps a bounded cache.
_VALIDATED: dict[tuple[Any, ...], AttrsModel] = {}
_VALIDATED_MAX = 1 << 14


class Op:
    """Base of every op. Subclasses set the class attributes and override what applies."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    doc: ClassVar[str] = ""
    category: ClassVar[Category] = "layer"
    Attrs: ClassVar[type[Attrs]] = NoAttrs
    positional: ClassVar[tuple[str, ...]] = ()  # attributes that may be given without a name
    # True: the one positional attribute is a list whose items may also be given one by one, as in
    # torch (`reshape(-1, 91)` is `reshape([-1, 91])`).
    variadic: ClassVar[bool] = False
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # The attribute a second input tensor may stand for, its size read from that tensor: written
    # `size=[ref.h, ref.w]`, the size becomes that input, so the generated module follows `ref`'s
    # size at run time (upsample, crop).
    size_from_tensor: ClassVar[str | None] = None
    # Attributes that never change the op's output shapes (a probability, a norm's epsilon): a block
    # parameter that only they read may differ between calls that replay one template (templates.holes).
    shape_free: ClassVar[frozenset[str]] = frozenset()

    # --- attributes
    @classmethod
    def validate(cls, values: dict[str, Any]) -> AttrsModel:
        """The attributes of a call, validated. A network repeats the same call many times (a
        10⁵-layer `repeat`, B7's identical MBConvs), so each distinct call is validated once: the
        result is immutable and shared by every node that makes the same call."""
        key = _call_key(cls, values)
        if key is None:
            return cls._validate(values)
        attrs = _VALIDATED.get(key)
        if attrs is None:
            if len(_VALIDATED) >= _VALIDATED_MAX:
                _VALIDATED.clear()
            attrs = _VALIDATED[key] = cls._validate(values)
        return attrs

    @classmethod
    def _validate(cls, values: dict[str, Any]) -> AttrsModel:
        try:
            attrs = cls.Attrs.validate(values)
        except Invalid as exc:
            err = exc.error
            field = str(err["loc"][0]) if err["loc"] else None
            error = (err.get("ctx") or {}).get("error")
            message = attribute_message(cls.name, field, err.get("type", ""), values, exc.model,
                                        str(error) if error is not None else None)
            raise AttrError(field, message) from None
        _refuse_coercions(cls.name, values, attrs)
        _refuse_beyond_int64(cls.name, values)
        return attrs

    @classmethod
    def num_outputs(cls, a: Any) -> int:
        return 1

    # --- analysis
    @classmethod
    def infer(cls, a: Any, ins: list[Shape]) -> list[Shape]:
        return [ins[0]]

    @classmethod
    def params(cls, a: Any, ins: list[Shape]) -> int:
        return 0

    @classmethod
    def buffers(cls, a: Any, ins: list[Shape]) -> int:
        return 0

    @classmethod
    def macs(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        """Multiply-accumulates counted the torch.utils.flop_counter way (÷2): conv/linear only."""
        return 0

    @classmethod
    def other_ops(cls, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        """Element-wise work not in `macs` (one op per output element by default)."""
        return sum(math.prod(s) for s in outs)

    @classmethod
    def geometry(cls, a: Any, ins: list[Shape]) -> Geometry:
        return IDENTITY_GEOMETRY

    @classmethod
    def describe(cls, a: Any) -> str:
        """A short label for tables and diagrams, e.g. `conv 3×3/2, 64`."""
        return cls.name

    # --- initialization: what an `init` statement may set
    # The kind an `init` statement names this op's layers by: `init conv: …` sets every conv, dwconv
    # and pwconv (each is torch's nn.Conv2d). None: the op has nothing an `init` statement sets.
    init_kind: ClassVar[str | None] = None
    # Every parameter tensor a layer of the op may have (`init_parameters` gives one layer's).
    init_tensors: ClassVar[tuple[str, ...]] = ()
    # Those of them with two or more dimensions (a kernel, a weight matrix): the only ones that have
    # a fan-in and a fan-out, which kaiming, xavier, variance_scaling and bilinear read.
    init_matrices: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def init_parameters(cls, a: Any) -> tuple[str, ...]:
        """The parameter tensors of one layer that an `init` statement may set, by the names its torch
        module gives them (`weight`, `bias`); the first is the one an unnamed scheme sets."""
        return ()

    # --- torch backend (source text; the op never imports torch itself)
    # Source of the helper classes and functions that `torch_init` builds or `torch_forward` calls,
    # one or more top-level definitions (each emitted once into a generated file that uses it,
    # with the definitions it uses in turn; they may use `torch`, `nn` and `F` only).
    torch_helper: ClassVar[str] = ""
    # The keyword arguments `torch_init` leaves out when they hold their constructor's default, with
    # that default's source, in the order `torch_init` writes them (last): the code generator writes
    # them out where instances of one class differ in them (`groups=groups`, a depthwise conv).
    torch_defaults: ClassVar[tuple[tuple[str, str], ...]] = ()
    # The constructors `torch_init` calls whose 2-d sizes (`kernel_size`, `stride`, `padding`) take one
    # number for two equal ones, as torch's own layers do: the generated code writes such a size once
    # (`kernel_size=3`), as torchvision does.
    torch_sized: ClassVar[tuple[str, ...]] = ()
    # True: the op's output is a new tensor (never a view of an input) that its gradient does not
    # read, so the one op that reads it may overwrite it in place (bn → `nn.ReLU(inplace=True)`,
    # `out += identity`), as torchvision's models do: autograd's results stay exactly the same.
    output_overwritable: ClassVar[bool] = False
    # True: the op's output is its one input itself (drop-path at inference or p = 0) or a new tensor
    # its gradient does not read (`x * mask`): it may be overwritten where its input could be
    # (torchvision's `result = self.stochastic_depth(result); result += input`).
    output_overwritable_as_input: ClassVar[bool] = False

    @classmethod
    def torch_init(cls, a: Any, ins: list[Shape]) -> str | None:
        """Constructor source of the nn.Module holding this op's state, or None for a function."""
        return None

    @classmethod
    def torch_class(cls, a: Any, ins: list[Shape]) -> str | None:
        """The torch class every module `torch_init` builds is an instance of (`nn.Conv2d`), which the
        `isinstance` tests of a generated init loop name; None where there is none. By default the
        class `torch_init` calls, where it calls one of torch's."""
        match = re.match(r"(nn\.\w+)\(", cls.torch_init(a, ins) or "")
        return match[1] if match else None

    @classmethod
    def torch_init_in_place(cls, a: Any, ins: list[Shape]) -> str | None:
        """Constructor source of the same module writing its result into its one input
        (`nn.ReLU(inplace=True)`), or None where torch has no such form. The code generator uses it
        where that input dies here (see `output_overwritable`)."""
        return None

    @classmethod
    def torch_forward_in_place(cls, a: Any, ins: list[Shape], args: list[str], k: int) -> str | None:
        """A statement computing the op into its k-th input's tensor (`a += b`), bit for bit what
        `torch_forward` computes, or None where there is no such form. The code generator uses it
        where that input dies here and has the output's shape."""
        return None

    @classmethod
    def torch_forward(cls, a: Any, ins: list[Shape], args: list[str], module: str | None) -> str:
        """Forward expression, given the input expressions and the submodule reference."""
        if module is None:
            raise NotImplementedError(f"{cls.name} has neither a module nor a functional form")
        return f"{module}({', '.join(args)})"

    @classmethod
    def torch_parameter(cls, a: Any, ins: list[Shape]) -> str | None:
        """Source of one `nn.Parameter` holding all of the op's state, for ops whose canonical
        implementations keep it as a bare parameter of the enclosing module (torchvision SSD's
        `scale_weight`, timm ConvNeXt's `gamma`), or None. Where the node sits directly in its
        block or network, the generated class holds this parameter under the node's name — so a
        label gives the canonical state_dict key — and `torch_forward_parameter` uses it; inside a
        group of layers (`a.b`, a labelled repeat) the `torch_init` module is used instead."""
        return None

    @classmethod
    def torch_forward_parameter(cls, a: Any, ins: list[Shape], args: list[str], param: str) -> str:
        """Forward expression when the state is the bare parameter `param` (see `torch_parameter`)."""
        raise NotImplementedError(f"{cls.name} declares no bare parameter")


# ---------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, type[Op]] = {}
_CANONICAL: dict[str, type[Op]] = {}
_SIZED: frozenset[str] = frozenset()  # every op's `torch_sized`


def register(cls: type[Op]) -> type[Op]:
    """Class decorator adding an op (and its aliases); a name registered twice is a bug."""
    for name in (cls.name, *cls.aliases):
        if name in _REGISTRY:
            raise RuntimeError(f"op name {name!r} registered twice")
        _REGISTRY[name] = cls
    _CANONICAL[cls.name] = cls
    global _SIZED
    _SIZED = _SIZED | frozenset(cls.torch_sized)
    return cls


def get_op(name: str) -> type[Op]:
    return _REGISTRY[name]


def has_op(name: str) -> bool:
    return name in _REGISTRY


def op_names() -> list[str]:
    """Every callable name, aliases included, sorted."""
    return sorted(_REGISTRY)


def torch_sized_constructors() -> frozenset[str]:
    """The constructors whose 2-d sizes take one number for two equal ones (`Op.torch_sized`), of
    every op registered so far."""
    return _SIZED


def all_ops() -> list[type[Op]]:
    """Each op once (canonical names), sorted by name."""
    return [_CANONICAL[n] for n in sorted(_CANONICAL)]


# ---------------------------------------------------------------------------------------------
# Helpers shared by op declarations


def need_rank(op: str, shape: Shape, rank: int, what: str = "C×H×W") -> None:
    if len(shape) != rank:
        hint = "flatten comes before linear; convolutions and pools need C×H×W" if rank == 3 else None
        if len(shape) == rank + 1 and shape[0] == 1:  # torch's `view(-1, 1024, 4, 4)` written as is
            hint = (f"shapes here exclude the batch dimension: the leading 1 looks like one; "
                    f"make the tensor {fmt_shape(shape[1:])}")
        raise ShapeError(f"`{op}` expects a {what} tensor, got {fmt_shape(shape)}", hint)


def checked_dim(op: str, dim: int, shape: Shape, hint: str | None = None) -> int:
    """`dim` of `shape` (negative: from the end) as an index, or a ShapeError where it is none (torch
    checks a dim only when the layer runs)."""
    if not -len(shape) <= dim < len(shape):
        raise ShapeError(f"`{op}`: dim {dim} is out of range for {fmt_shape(shape)}", hint)
    return dim % len(shape)


def py_number(v: float) -> str:
    """A number as Python source in generated code: exact, and valid wherever an expression is.

    A float is written by ``repr``, the shortest text that reads back as the same float, so
    ``-0.0``, ``5e-324`` and ``1.7976931348623157e+308`` survive the round trip bit for bit. An
    integer is written in decimal, or in hexadecimal beyond 4000 digits (Python refuses decimal
    literals of more than 4300). A float that is not finite has no literal (``inf`` in a generated
    file is a NameError when the module is built); the evaluator never lets one reach an
    attribute, so meeting one here is a bug, and code generation stops with ValueError.

    >>> py_number(0.1), py_number(-0.0), py_number(5e-324), py_number(2**64)
    ('0.1', '-0.0', '5e-324', '18446744073709551616')
    """
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"not a number: {v!r}")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} has no Python literal")
        return repr(v)
    return hex(v) if v.bit_length() > 13_000 else str(v)  # 2**13000 has 3914 digits


def fmt_shape(shape: Shape) -> str:
    """`64×56×56`; `scalar` for the empty shape."""
    return shape_text(shape) if shape else "scalar"


def fmt_pair(p: tuple[int, int], sep: str = "×") -> str:
    return f"{p[0]}{sep}{p[1]}"


def window_out(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1, ceil: bool = False,
               pad_before: int = 0) -> int:
    """Output length of a sliding window: floor((W + P − d(K−1) − 1)/S) + 1 (PyTorch's ceil rule too)."""
    span = size + pad_total - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    # PyTorch: the last window must start inside the input or the left padding.
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def resolve_padding(pad: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                    hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right). None is "half" padding d(k−1)//2 on both sides;
    "same" is TensorFlow's rule (out = ceil(in / stride), the odd pixel at the bottom/right)."""
    if pad is None:
        ph = dilation[0] * (kernel[0] - 1) // 2
        pw = dilation[1] * (kernel[1] - 1) // 2
        return (ph, ph, pw, pw)
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        out: list[int] = []
        for i in range(2):
            k_eff = dilation[i] * (kernel[i] - 1) + 1
            total = max((math.ceil(hw[i] / stride[i]) - 1) * stride[i] + k_eff - hw[i], 0)
            out += [total // 2, total - total // 2]
        return (out[0], out[1], out[2], out[3])
    return pad  # type: ignore[no-any-return]


def pads_with_input(pad: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> bool:
    """Whether TensorFlow's "same" padding `pad` depends on the input's size: anything but stride 1
    and an odd effective kernel (the rule of timm's `is_static_pad`), where the kernel covers more
    than one pixel (a 1×1 window never pads, at any stride). A generated module then works it out
    from each input, as timm's and effdet's `Conv2dSame` and `MaxPool2dSame` do: one built for the
    declared size pads an input of another size as TensorFlow would."""
    return pad == "same" and same_pads_at_all(kernel, dilation) and (
        stride != (1, 1) or any(d * (k - 1) % 2 for k, d in zip(kernel, dilation, strict=True)))


def same_pads_at_all(kernel: tuple[int, int], dilation: tuple[int, int]) -> bool:
    """Whether "same" padding can pad a window at all: one wider than a pixel in some dimension."""
    return any(d * (k - 1) > 0 for k, d in zip(kernel, dilation, strict=True))


# What a generated module pads with by TensorFlow's "same" rule (`pad=same`; the helper of the ops
# that build such layers): each definition is written into a file that uses it, with those it uses.
# A convolution is built through `conv2d_same`, as effdet builds it through timm's `create_conv2d`:
# one call of a block then serves the instances where the padding is fixed (stride 1) and those
# where it is not, as one class (EfficientDet's MBConv blocks, strided or not).
SAME_PADDING_HELPER = '''
def pad_same(x: torch.Tensor, layer: nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d, value: float = 0.0) -> torch.Tensor:
    """`x` padded for `layer` by TensorFlow's "same" rule at its own size: the output is ceil(size /
    stride), the odd pixel at the bottom and right (timm's pad_same)."""
    pads: list[int] = []
    for i in (-1, -2):  # F.pad's order: the last dimension first
        size = x.shape[i]
        k, s, d = (v if isinstance(v, int) else v[i] for v in
                   (layer.kernel_size, layer.stride, getattr(layer, "dilation", 1)))
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class Conv2dSame(nn.Conv2d):
    """A convolution padded by TensorFlow's "same" rule for each input's size (timm's Conv2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self))


def conv2d_same(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1, groups: int = 1,
                bias: bool = True) -> nn.Conv2d:
    """A convolution with TensorFlow's "same" padding (timm's create_conv2d(padding="same")): torch's
    own padding where it does not depend on the input's size (stride 1, an odd kernel), else Conv2dSame."""
    k, s, d = (v if isinstance(v, tuple) else (v, v) for v in (kernel_size, stride, dilation))
    if s == (1, 1) and all(di * (ki - 1) % 2 == 0 for ki, di in zip(k, d, strict=True)):
        padding = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, groups=groups,
                         bias=bias)
    return Conv2dSame(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups,
                      bias=bias)


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling padded by TensorFlow's "same" rule for each input's size (timm's MaxPool2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self, value=float("-inf")))


class AvgPool2dSame(nn.AvgPool2d):
    """Average pooling padded with zeros by TensorFlow's "same" rule for each input's size, the zeros
    counted (timm's AvgPool2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self))
'''


def spatial_out(op: str, hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                pads: tuple[int, int, int, int], dilation: tuple[int, int] = (1, 1),
                ceil: bool = False) -> tuple[int, int]:
    h = window_out(hw[0], kernel[0], stride[0], pads[0] + pads[1], dilation[0], ceil, pads[0])
    w = window_out(hw[1], kernel[1], stride[1], pads[2] + pads[3], dilation[1], ceil, pads[2])
    if h <= 0 or w <= 0:
        raise ShapeError(
            f"`{op}` window {fmt_pair(kernel)} does not fit the {hw[0]}×{hw[1]} input "
            f"(output would be {max(h, 0)}×{max(w, 0)})",
            "use a larger input (--input), padding, or fewer downsampling steps",
        )
    return h, w


def pos_int(name: str, v: int) -> None:
    if v <= 0:
        raise AttrError(name, f"`{name}` must be positive, got {v}")

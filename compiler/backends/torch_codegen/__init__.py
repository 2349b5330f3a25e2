"""PyTorch code generation: one elaborated network → one standalone Python file that imports only torch.

The generated file holds the helper classes the network's ops need (declared once, on the op), one
``nn.Module`` class per block definition and structure, and one class for the network. A block's
instances share a class when their code differs only in constants (integers, floats, booleans, the
class of an argument-free module like an activation), which become its constructor arguments, named
after the block's parameters (``Bottleneck(in_channels, c, stride, downsample)``); a submodule that
only some instances build and apply in place is built under a flag, and so is the tail of the
forward that only some run (a residual connection, ``MBConv``'s ``if self.residual:``); instances that
took the two branches of an ``if`` the block's body tests are one class with that ``if``, in the
constructor and the forward (ShuffleNet's unit: ``if self.stride != 1:``, as torchvision's). Submodules
mirror the spec's node paths, so the state_dict key of every op node is its IR name plus
``.weight``/``.bias``/… (``layer1.0.conv1.weight``, exactly as torchvision; an op whose state is one
bare parameter, like SSD's ``scale_weight``, is that key itself). Each ``forward`` reads like
hand-written code: a container whose modules run one after another is called once
(``x = self.layer1(x)``), and a value takes over the name of an input that dies where it is made;
as in torchvision's models, a value that dies where it is read is overwritten there
(``nn.ReLU(inplace=True)`` after a batch norm, ``out += identity``: see ``TorchCodegen._dies_here``).

>>> import archdsl
>>> net = archdsl.load_string('''
... network tiny {
...     input image: 3x8x8
...     image -> conv(4, 3) as conv1 -> relu -> output y
... }''').network()
>>> src = generate_source(net)
>>> "self.conv1 = nn.Conv2d(3, 4, kernel_size=3, padding=1)" in src
True

The package, each module importing only those after it: ``generator`` (``TorchCodegen``, the walk
and the file) → ``family`` (a family's network class written from the spec) → ``classes`` (a block
class) → ``structures`` (what instances share a class, optional parts), ``parameters`` (what a constant is
written from), ``forward_numbers``, ``class_body`` (a class's tree and forward, its loops) →
``constants`` (statements as templates) and ``expressions`` (spec expressions as Python) → ``text``
(lines of Python read and rewritten).

NOTE: nothing from a spec reaches the source unchecked. Submodule names are ASCII letters, digits
and ``_`` (not leading), never an ``nn.Module`` API name, else the compiler stops with a diagnostic
at the label; those that are no Python attribute (``0``, ``class``) are registered with
``add_module`` and read with ``getattr``, as torch's own containers do; local variables and class names come from a
:class:`Namespace`, which only ever hands out safe identifiers; strings are written with ``ascii()``;
comments and docstrings keep a small safe alphabet. The ops' own ``torch_init``/``torch_forward``
texts are built from validated attributes (numbers, booleans and ``Literal`` strings) only, every
float through :func:`archdsl.ops.py_number` (exact, finite, or code generation stops).
"""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, Any

from archdsl.diagnostics import ArchError, Diagnostic, Span, error
from archdsl.ir import IR

from ...hierarchy import ScopeTree
from ..python_source import RESERVED_ATTRS, Namespace, check_attribute, py_str, safe_comment
from .class_body import GeneratedSource
from .generator import TorchCodegen, module_signature
from .text import parts

if TYPE_CHECKING:
    from torch import nn

    from archdsl.network import CompiledNetwork


def module_name_problems(ir: IR) -> list[Diagnostic]:
    """What code generation would refuse about submodule names, found without generating (`archdsl
    check` runs it, so that check and compile agree): every part of the path of each layer that holds
    a module and of each block instance, and a layer whose path is also a group's."""
    blocks = ScopeTree.of_blocks(ir)
    entries: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[bool, Span]] = {}  # (class, path) → (layer?, span)
    for node in ir.nodes("op"):
        op, ins = node.op_class, ir.in_shapes(node)
        if node.shares is None and (op.torch_init(node.attrs, ins) or op.torch_parameter(node.attrs, ins)):
            owner = blocks.enclosing(node.scope)
            entries[(owner, tuple(node.name.split("."))[len(parts(owner)):])] = (True, node.span)
    for path, info in ir.scopes.items():
        if info.kind == "block" and info.shares is None:
            entries[(blocks.parent[path], parts(path)[len(parts(blocks.parent[path])):])] = (False, info.span)
    problems: dict[tuple[Span, str], Diagnostic] = {}
    for (owner, rel), (_, span) in entries.items():
        try:
            for part in rel:
                check_attribute(part, span)
            for k in range(1, len(rel)):
                if entries.get((owner, rel[:k]), (False, span))[0]:
                    what = ".".join(rel[:k])
                    raise error("E0702", f"`{safe_comment(what)}` names both a layer and a group of layers", span,
                                "give the layer or the group another name with `as NAME`")
        except ArchError as exc:
            d = exc.diagnostics[0]
            problems.setdefault((d.span, d.message), d)
    return list(problems.values())


def generate(network: CompiledNetwork) -> GeneratedSource:
    """The generated file as a value object (text, network class name, helpers used)."""
    return TorchCodegen(network).generate()


def generate_family(networks: list[CompiledNetwork]) -> GeneratedSource:
    """One module for the networks of a file: block classes once, family classes, a function per network."""
    first, *others = [TorchCodegen(n) for n in networks]
    return first.generate_family(others)


def generate_source(network: CompiledNetwork) -> str:
    """The text of the standalone PyTorch file for `network`."""
    return generate(network).text


def build_module(network: CompiledNetwork) -> nn.Module:
    """An instance of the network class, built by executing exactly the text `generate_source`
    returns (registered with linecache, so tracebacks and inspect show the generated lines)."""
    gen = generate(network)
    filename = f"<archdsl:{network.info.name}>"
    linecache.cache[filename] = (len(gen.text), None, gen.text.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"__name__": f"archdsl_generated.{gen.class_name}"}
    exec(compile(gen.text, filename, "exec"), namespace)
    module: nn.Module = namespace[gen.class_name]()
    return module


__all__ = [  # the Python-source helpers tests and other backends reach through here
    "RESERVED_ATTRS", "GeneratedSource", "Namespace", "TorchCodegen", "build_module", "generate", "generate_family",
    "generate_source",
    "module_name_problems", "module_signature",
    "py_str", "safe_comment",
]

"""Blocks from the module hierarchy: one ``block`` per module class, constants lifted into parameters.

1. **Instances.** Every call of a module that can be a block (not a torch.nn layer, not a plain
   container, no parameters of its own but bare ones like a layer scale's gamma, one output,
   submodule names the generated code can use, more than a wrapper of one or two stateless ops) is
   an :class:`Instance`; its body lists the ops it runs itself and the calls of its child instances,
   in execution order. A module that cannot be a block is inlined into its parent (its ops keep
   their full names as labels, `downsample.0`).
2. **Unification.** The instances of one class are merged into one template: items are matched by
   key (a stateful op by its label, a call by its label, a stateless op by the submodule it runs in
   and its occurrence), an item missing from some instances becomes conditional (on a flag, or on an
   integer argument: `stride != 1`), an
   activation that varies becomes an op-valued parameter, and every constant that differs between
   instances becomes a parameter. Flags and parameters are named after the module's constructor
   arguments or attributes where their values match (`downsample`, `use_res_connect`, `planes * 4`,
   `in.channels`); a structural difference that nothing in the module explains splits the class
   into variants (`dense_block`, `dense_block_2`) instead of inventing a name.
3. **Calls.** A block's parameter values per instance become the arguments of its calls in the
   parent, where they are lifted again.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archdsl.diagnostics import ArchError, Diagnostic, Span
from archdsl.ops import get_op

from .trace import Frame, Layer, Shape, StackEntry, Traced, Val, user_span
from .values import (
    REQUIRED,
    Expr,
    OpRef,
    default_of,
    equals,
    floordiv,
    is_valid_value,
    literal,
    name,
    negate,
    normalize,
    op_of_class,
    reserved_names,
    times,
)

Key = tuple[Any, ...]
NO_DEFAULT: Any = object()

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


@dataclass(frozen=True)
class Ref:
    """A value a body item reads: output `index` of the item `key`, or (key None) input `index`."""

    key: Key | None
    index: int = 0


@dataclass
class Item:
    key: Key
    kind: str  # "op" | "call"
    op: str  # the op ("" for a call)
    attrs: dict[str, Any]  # normalized op attributes; for a call, the child block's argument values
    inputs: list[Ref]
    n_out: int
    label: str | None
    child: Instance | None = None
    var: str | None = None  # the Python variable the model's source assigns this value to
    layer: Layer | None = None


@dataclass(eq=False)
class Instance:
    path: str
    call: int
    module: Any
    cls: type
    parent: Instance | None
    members: list[Layer | Instance] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    inputs: list[Val] = field(default_factory=list)
    outputs: list[Val] = field(default_factory=list)
    in_shapes: list[Shape] = field(default_factory=list)
    output_refs: list[Ref] = field(default_factory=list)
    block: BlockDef | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def rel(self, path: str) -> str:
        return path[len(self.path) + 1:] if self.path else path

    def inside(self, path: str) -> bool:
        return not self.path or path.startswith(self.path + ".")


@dataclass
class BlockParam:
    name: str
    default: Any
    values: list[Any]  # per instance of the block
    source: str  # "ctor", "attr", "new"


@dataclass
class TItem:
    """One statement of a block template (or of the network body)."""

    key: Key
    kind: str
    op: str  # op name; for an op-valued item the parameter's name; "" for a call
    block: BlockDef | None
    args: list[tuple[str | None, Expr]]  # (attribute or parameter name, None when positional; value)
    inputs: list[Ref]
    n_out: int
    label: str | None
    cond: Expr | None = None
    passthrough: int = 0
    var: str | None = None
    op_valued: bool = False


@dataclass(eq=False)
class BlockDef:
    name: str
    cls: type
    params: list[BlockParam]
    items: list[TItem]
    output: Ref
    n_inputs: int
    instances: list[Instance]


@dataclass
class Structure:
    root: Instance
    network: BlockDef  # the root's body, with literal arguments only
    blocks: list[BlockDef]  # children before parents
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# 1. instances


def _is_torch_layer(cls: type) -> bool:
    return cls.__module__.startswith("torch.")


def _is_container(cls: type) -> bool:
    return cls.__module__.startswith("torch.nn.") and cls.__name__ in _CONTAINERS


def label_ok(rel: str) -> bool:
    """Whether a path relative to a block can be its label: every part a name the generated module can
    give a submodule (python_source.check_attribute, which the code generator applies to labels)."""
    from archdsl.compiler.backends.python_source import check_attribute

    try:
        for part in rel.split("."):
            check_attribute(part, Span.unknown())
    except ArchError:
        return False
    return True


class InstanceBuilder:
    def __init__(self, traced: Traced, model_name: str) -> None:
        self.traced = traced
        self.model_name = model_name
        self.producer: dict[Val, Layer] = {}
        for layer in traced.layers:
            for v in layer.outputs:
                self.producer[v] = layer
        self.consumers: dict[Val, list[Layer]] = defaultdict(list)
        for layer in traced.layers:
            for v in layer.inputs:
                self.consumers[v].append(layer)
        self.network_outputs = set(traced.outputs)
        self._class_lines: dict[type, tuple[str, int, int] | None] = {}

    def candidates(self) -> set[str]:
        """Module paths that may be blocks, before looking at their bodies: not torch's own layers or
        containers, and holding no parameter of their own except bare ones (a layer scale's gamma,
        which the generated class holds the same way)."""
        bare = {layer.state for layer in self.traced.layers if layer.bare}
        out = set()
        for layer in self.traced.layers:
            for e in layer.stack:
                if _is_torch_layer(e.cls) or _is_container(e.cls):
                    continue
                module = self.traced.root.get_submodule(e.path)
                own = [f"{e.path}.{n}" for n, _ in [*module.named_parameters(recurse=False),
                                                    *module.named_buffers(recurse=False)]]
                if all(k in bare for k in own):
                    out.add(e.path)
        return out

    def build(self) -> Instance:
        blockish = self.candidates()
        for _ in range(100):
            root = self._tree(blockish)
            bad = self._not_blocks(root)
            if not bad:
                self._bodies(root)
                return root
            blockish -= bad
        raise AssertionError("block selection did not settle")  # pragma: no cover

    def _tree(self, blockish: set[str]) -> Instance:
        root = Instance("", 0, self.traced.root, type(self.traced.root), None)
        found: dict[tuple[str, int], Instance] = {}
        for layer in self.traced.layers:
            parent = root
            for e in layer.stack:
                if e.path not in blockish:
                    continue
                inst = found.get((e.path, e.call))
                if inst is None:
                    module = self.traced.root.get_submodule(e.path)
                    inst = found[(e.path, e.call)] = Instance(e.path, e.call, module, e.cls, parent)
                    parent.members.append(inst)
                parent = inst
            parent.members.append(layer)
        self._boundaries(root)
        if self._hoist_concats(root):
            self._boundaries(root)
        return root

    def _hoist_concats(self, inst: Instance) -> bool:
        """An instance that starts by concatenating all its inputs (DenseNet's layers, which take the
        list of every earlier output) takes the concatenation instead: the concat moves to the parent,
        so the instances agree on one input whatever their position."""
        moved = False
        for k in range(len(inst.members) - 1, -1, -1):
            m = inst.members[k]
            if not isinstance(m, Instance):
                continue
            moved |= self._hoist_concats(m)
            first = m.members[0] if m.members else None
            if (len(m.inputs) > 1 and isinstance(first, Layer) and first.op == "concat"
                    and sorted(first.inputs) == sorted(m.inputs)):
                m.members.pop(0)
                inst.members.insert(k, first)
                moved = True
        return moved

    def _subtree_layers(self, inst: Instance) -> list[Layer]:
        out: list[Layer] = []
        for m in inst.members:
            out.extend(self._subtree_layers(m) if isinstance(m, Instance) else [m])
        return out

    def _boundaries(self, inst: Instance) -> set[int]:
        """Fill inputs/outputs of `inst` and its descendants; returns the layer indices inside."""
        inside: set[int] = set()
        for m in inst.members:
            inside |= self._boundaries(m) if isinstance(m, Instance) else {m.index}
        layers = sorted((self.traced.layers[i] for i in inside), key=lambda x: x.index)
        produced = {v for layer in layers for v in layer.outputs}
        ins: dict[Val, None] = {}
        for layer in layers:
            for v in layer.inputs:
                if v not in produced:
                    ins.setdefault(v)
        outs = []
        for layer in layers:
            for v in layer.outputs:
                if v in self.network_outputs or any(c.index not in inside for c in self.consumers.get(v, [])):
                    outs.append(v)
        if inst.path:
            inst.inputs, inst.outputs = list(ins), outs
        else:
            inst.inputs = [v for v, _ in self.traced.inputs]
            inst.outputs = list(self.traced.outputs)
        inst.in_shapes = [self.traced.shapes[v] for v in inst.inputs]
        return inside

    def _not_blocks(self, inst: Instance) -> set[str]:
        bad: set[str] = set()
        for m in inst.members:
            if isinstance(m, Instance):
                bad |= self._not_blocks(m)
        if not inst.path:
            return bad
        layers = self._subtree_layers(inst)
        # A wrapper of a stateless op or two (timm's Sigmoid, SelectAdaptivePool2d) reads better inline.
        trivial = len(layers) <= 2 and all(x.state is None for x in layers)
        ok = len(inst.outputs) == 1 and len(inst.inputs) >= 1 and bool(inst.members) and not trivial
        for m in inst.members:
            label = self._member_label(inst, m)
            if label is not None and (not inst.inside(self._member_path(m)) or not label_ok(label)):
                ok = False
        if not ok:
            bad.add(inst.path)
        return bad

    @staticmethod
    def _member_path(m: Layer | Instance) -> str:
        return m.path if isinstance(m, Instance) else (m.state or "")

    def _member_label(self, inst: Instance, m: Layer | Instance) -> str | None:
        path = self._member_path(m)
        if not path:
            return None
        return inst.rel(path) if inst.inside(path) else path

    # --- bodies
    def _bodies(self, inst: Instance) -> None:
        """Items of every instance: keys, labels, inputs as refs."""
        by_val: dict[Val, Ref] = {}
        for j, v in enumerate(inst.inputs):
            by_val[v] = Ref(None, j)
        occurrences: Counter[tuple[Any, ...]] = Counter()
        labels_seen: set[str] = set()
        for m in inst.members:
            if isinstance(m, Instance):
                self._bodies(m)
                label = inst.rel(m.path)
                self._check_label(inst, label, labels_seen, m.members[0])
                key: Key = ("c", label)
                inputs = [by_val[v] for v in m.inputs]
                item = Item(key, "call", "", {}, inputs, len(m.outputs), label, child=m,
                            var=self._var(inst, self._first_layer(m)))
                for i, v in enumerate(m.outputs):
                    by_val[v] = Ref(key, i)
            else:
                inner = [e for e in m.stack if inst.inside(e.path) and e.path != inst.path]
                if m.state is not None:
                    if not inst.inside(m.state):
                        self._fail(m, f"uses the parameters of `{m.state}`, which is outside `{inst.path}`",
                                   "modules that share or borrow weights have no spec equivalent yet")
                    label = inst.rel(m.state)
                    self._check_label(inst, label, labels_seen, m)
                    if m.bare and "." in label:
                        self._fail(m, f"the parameter `{m.state}` is held by a module that cannot be a block "
                                   "here, so the spec could not keep its name", "see the module's other messages")
                    key = ("s", label)
                else:
                    label = None
                    deepest = inner[-1] if inner else None
                    rel = inst.rel(deepest.path) if deepest else ""
                    category = get_op(m.op).category
                    family = "act" if category == "activation" and not m.attrs else m.op
                    base = ("f", rel, deepest.call if deepest else 0, family)
                    key = (*base, occurrences[base])
                    occurrences[base] += 1
                attrs = normalize(m.op, m.attrs, self.traced.shapes[m.inputs[0]]) if m.inputs else dict(m.attrs)
                item = Item(key, "op", m.op, attrs, [by_val[v] for v in m.inputs], len(m.outputs), label,
                            var=self._var(inst, m), layer=m)
                for i, v in enumerate(m.outputs):
                    by_val[v] = Ref(key, i)
            inst.items.append(item)
        inst.output_refs = [by_val[v] for v in inst.outputs]

    def _first_layer(self, inst: Instance) -> Layer:
        m = inst.members[0]
        return self._first_layer(m) if isinstance(m, Instance) else m

    def _check_label(self, inst: Instance, label: str, seen: set[str], layer: Layer | Instance) -> None:
        if label in seen:
            first = layer if isinstance(layer, Layer) else self._first_layer(layer)
            self._fail(first, f"runs `{(inst.path + '.' if inst.path else '') + label}` twice",
                       "a module whose weights are applied twice (weight sharing) has no spec equivalent yet")
        seen.add(label)
        if not label_ok(label):
            first = layer if isinstance(layer, Layer) else self._first_layer(layer)
            full = (inst.path + "." if inst.path else "") + label
            self._fail(first, f"the submodule name `{full}` cannot be a spec label (its state_dict keys would "
                       "change)", "labels are identifiers (digits only inside containers) and not names "
                       "nn.Module uses itself; rename the submodule")

    def _fail(self, layer: Layer, message: str, hint: str) -> None:
        raise ArchError(Diagnostic("E1204", f"cannot import `{self.model_name}`: {message}",
                                   user_span(layer.frames, f"<{self.model_name}>"), hint))

    def _var(self, inst: Instance, layer: Layer) -> str | None:
        """The variable the owner's source assigns this value to (`out = self.conv1(x)` → out)."""
        where = self._class_source(inst.cls)
        if where is None:
            return None
        file, first, last = where
        chosen: Frame | None = None
        for f in layer.frames:
            if f.file == file and first <= f.line <= last:
                chosen = f
        if chosen is None:
            return None
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+|\*)?=(?!=)", chosen.text)
        return m.group(1) if m else None

    def _class_source(self, cls: type) -> tuple[str, int, int] | None:
        if cls not in self._class_lines:
            try:
                lines, start = inspect.getsourcelines(cls)
                file = inspect.getsourcefile(cls)
                self._class_lines[cls] = (file, start, start + len(lines)) if file else None
            except (OSError, TypeError):
                self._class_lines[cls] = None
        return self._class_lines[cls]


# ---------------------------------------------------------------------------------------------
# 2. unification


def _merge_order(seqs: list[list[Key]]) -> list[Key] | None:
    """One order of all keys consistent with every instance's order (None if there is none)."""
    rank: dict[Key, tuple[int, int]] = {}
    succ: dict[Key, set[Key]] = defaultdict(set)
    indeg: Counter[Key] = Counter()
    for s, seq in enumerate(seqs):
        for p, k in enumerate(seq):
            rank.setdefault(k, (s, p))
            indeg[k] += 0
        for a, b in itertools.pairwise(seq):
            if b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
    ready = sorted((k for k in rank if indeg[k] == 0), key=rank.__getitem__)
    out: list[Key] = []
    while ready:
        k = ready.pop(0)
        out.append(k)
        for b in succ[k]:
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
        ready.sort(key=rank.__getitem__)
    return out if len(out) == len(rank) else None


def _truthy(v: Any) -> bool | None:
    if v is None or v is False:
        return False
    if v is True:
        return True
    if hasattr(v, "forward") and hasattr(v, "parameters"):  # a module
        return True
    return None


@dataclass
class Source:
    name: str
    kind: str  # "in", "ctor", "attr", "param"
    values: list[Any]
    default: Any = NO_DEFAULT
    order: int = 0


class Unifier:
    """Unifies the instances of one block (see the module docstring); `run()` returns None when
    their structures differ in a way nothing in the module explains."""

    def __init__(self, instances: list[Instance], ctor_args: dict[int, dict[str, Any]], taken: set[str]) -> None:
        self.insts = instances
        self.n = len(instances)
        self.ctor = [ctor_args.get(id(inst.module)) for inst in instances]
        self.params: list[BlockParam] = []
        self.taken = set(taken)
        self._sources: list[Source] | None = None

    # --- sources of parameter values
    def sources(self) -> list[Source]:
        if self._sources is not None:
            return self._sources
        out: list[Source] = []
        if all(len(i.in_shapes) == 1 and len(i.in_shapes[0]) == 3 for i in self.insts):
            out.append(Source("in.channels", "in", [i.in_shapes[0][0] for i in self.insts]))
        sig = _signature(self.insts[0].cls)
        recorded = [c for c in self.ctor if c is not None]
        if len(recorded) == self.n:
            names = [k for k in recorded[0] if all(k in c for c in recorded)]
            for order, k in enumerate(names):
                values = [c[k] for c in recorded]
                default = sig.get(k, NO_DEFAULT)
                out.append(Source(k, "ctor", values, default, order))
        # Attributes and submodule slots alike (`self.downsample = None` is a plain attribute,
        # `self.downsample = nn.Sequential(...)` a submodule).
        attrs = [{**{k: v for k, v in vars(i.module).items() if not k.startswith("_") and k != "training"},
                  **i.module._modules} for i in self.insts]
        for k in attrs[0]:
            if all(k in a for a in attrs) and not any(s.name == k for s in out):
                out.append(Source(k, "attr", [a[k] for a in attrs]))
        self._sources = out
        return out

    def _existing(self, src: Source, values: list[Any]) -> str | None:
        """The parameter already standing for `src`: its name, holding the same values (a parameter
        of that name with other values is another one, and `src` gets a name of its own)."""
        for p in self.params:
            if p.name == _safe(src.name) and p.values == values:
                return p.name
        return None

    def _param_for(self, src: Source, values: list[Any]) -> str:
        """The block parameter standing for `src` (created on first use)."""
        existing = self._existing(src, values)
        if existing is not None:
            return existing
        pname = self._new_name(src.name)
        default = src.default if is_valid_value(src.default) else NO_DEFAULT
        if isinstance(values[0], bool) and src.default is None:
            default = False
        if isinstance(values[0], OpRef):
            default = op_of_class(src.default) or NO_DEFAULT
        self.params.append(BlockParam(pname, default, values, src.kind))
        self.taken.add(pname)
        return pname

    def lift(self, vec: dict[int, Any], hint: str, kernel_like: bool = False, default: Any = NO_DEFAULT) -> Expr:
        """An expression equal to vec[i] in every instance i where it is defined: a literal, an
        existing parameter, `in.channels`, a constructor argument or attribute (or a small multiple of
        one), else a new parameter named after `hint`, with `default` (the attribute's own) when that
        is one of its values."""
        values = list(vec.values())
        if all(v == values[0] and type(v) is type(values[0]) for v in values):
            return self._constant(vec, values[0], kernel_like)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        found = self._exact(vec, ints)
        if found is None and ints:
            found = next((e for src in self.sources() if (e := self._arith(src, vec)) is not None), None)
        if found is not None:
            return found
        pname = self._new_name(hint, keep_sources=True)
        if default is not NO_DEFAULT and not any(v == default and type(v) is type(default) for v in values):
            default = NO_DEFAULT
        self.params.append(BlockParam(pname, default, [vec.get(i, values[0]) for i in range(self.n)], "new"))
        return name(pname)

    def _constant(self, vec: dict[int, Any], value: Any, kernel_like: bool) -> Expr:
        """A value the same wherever it is defined: a literal, except in an optional item, where an
        integer parameter that agrees wherever the item is present is clearer (`stride=stride` in a
        shortcut that exists only when striding)."""
        if len(vec) < self.n and type(value) is int:
            for p in self.params:
                expr = self._arith(Source(p.name, "param", p.values), vec)
                if expr is not None:
                    return expr
        return literal(value, kernel_like)

    def _exact(self, vec: dict[int, Any], ints: bool) -> Expr | None:
        """A source or parameter equal to vec wherever it is defined."""
        as_op = isinstance(next(iter(vec.values())), OpRef)
        for src in self.sources():
            if src.kind == "in" and not ints:
                continue
            sv: list[Any] = [op_of_class(v) if as_op else v for v in src.values]
            if all(sv[i] == v and type(sv[i]) is type(v) for i, v in vec.items()) and all(map(is_valid_value, sv)):
                return name(src.name) if src.kind == "in" else name(self._param_for(src, sv))
        for p in self.params:
            if all(p.values[i] == v and type(p.values[i]) is type(v) for i, v in vec.items()):
                return name(p.name)
        return None

    @staticmethod
    def _numbers(src: Source) -> list[int] | None:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in src.values):
            return list(src.values)
        return None

    def _ref(self, src: Source, values: list[Any]) -> Expr:
        return name(src.name) if src.kind in ("in", "param") else name(self._param_for(src, values))

    def _arith(self, src: Source, vec: dict[int, Any]) -> Expr | None:
        """`src`, `src * k` or `src // k` (k small) equal to vec wherever it is defined."""
        sv = self._numbers(src)
        if sv is None:
            return None

        def fits(f: Callable[[int], int]) -> bool:
            return all(f(sv[i]) == v for i, v in vec.items())

        if fits(lambda x: x):
            return self._ref(src, sv)
        for k in (2, 3, 4, 6, 8):
            if fits(lambda x, k=k: x * k):  # type: ignore[misc]
                return times(self._ref(src, sv), k)
            if fits(lambda x, k=k: x // k) and all(x % k == 0 for x in sv):  # type: ignore[misc]
                return floordiv(self._ref(src, sv), k)
        return None

    def flag(self, present: list[bool]) -> Expr | None:
        """A condition true exactly in the instances where an item is present, from the module: a
        boolean or optional-submodule argument (`downsample`), or an integer one compared with the
        value it has wherever the item is absent (`stride != 1`)."""
        for p in self.params:
            if p.values == present:
                return name(p.name)
        return self._bool_flag(present) or self._int_flag(present)

    def _bool_flag(self, present: list[bool]) -> Expr | None:
        for src in self.sources():
            truth = [_truthy(v) for v in src.values]
            if src.kind == "in" or any(t is None for t in truth):
                continue
            if truth == present:
                return name(self._flag_param(src, present))
            if [not t for t in truth] == present:
                return negate(name(self._flag_param(src, [not t for t in present])))
        return None

    def _int_flag(self, present: list[bool]) -> Expr | None:
        for src in [*self.sources(), *(Source(p.name, "param", p.values) for p in self.params)]:
            numbers = self._numbers(src)
            if numbers is None:
                continue
            absent = {v for v, here in zip(numbers, present, strict=True) if not here}
            inside = {v for v, here in zip(numbers, present, strict=True) if here}
            if absent & inside:
                continue
            if len(absent) == 1:
                return equals(self._ref(src, numbers), literal(absent.pop()), "!=")
            if len(inside) == 1:
                return equals(self._ref(src, numbers), literal(inside.pop()))
        return None

    def _flag_param(self, src: Source, values: list[bool]) -> str:
        existing = self._existing(src, values)
        if existing is not None:
            return existing
        pname = self._new_name(src.name)
        default: Any = NO_DEFAULT
        if src.kind == "ctor" and src.default is not NO_DEFAULT:
            truth = _truthy(src.default)
            default = truth if truth is not None and values == [_truthy(v) for v in src.values] else NO_DEFAULT
        self.params.append(BlockParam(pname, default, values, src.kind))
        self.taken.add(pname)
        return pname

    def _new_name(self, hint: str, keep_sources: bool = False) -> str:
        """A parameter name from `hint` that no parameter, block or word of the language has; with
        `keep_sources`, nor a constructor argument or attribute (they may be wanted later)."""
        base = _safe(hint)
        kept = {_safe(src.name) for src in self.sources()} if keep_sources else set()
        n, k = base, 2
        while n in self.taken or n in reserved_names() or n in kept or any(p.name == n for p in self.params):
            n, k = f"{base}_{k}", k + 1
        self.taken.add(n)
        return n

    # --- the merge
    def run(self) -> tuple[list[TItem], Ref, list[BlockParam]] | None:
        """(template items, output, parameters), or None when the instances do not unify."""
        order = _merge_order([[it.key for it in inst.items] for inst in self.insts])
        if order is None:
            return None
        self.order = order
        self.by_key: dict[Key, dict[int, Item]] = defaultdict(dict)
        for i, inst in enumerate(self.insts):
            for it in inst.items:
                self.by_key[it.key][i] = it
        self.present = {k: set(self.by_key[k]) for k in order}
        self.canon: dict[Key, list[Ref]] = {}
        self.passthrough: dict[Key, int] = {}
        if not all(self._agree(list(self.by_key[k].values())) for k in order):
            return None
        for k in order:
            slots = [self._settle({i: it.inputs[j] for i, it in self.by_key[k].items()})
                     for j in range(len(next(iter(self.by_key[k].values())).inputs))]
            if any(t is None for t in slots):
                return None
            self.canon[k] = slots  # type: ignore[assignment]
        output = self._settle({i: inst.output_refs[0] for i, inst in enumerate(self.insts)})
        if output is None:
            return None
        titems = [self._template_item(k) for k in order]
        if any(t is None for t in titems):
            return None
        return titems, output, self.params  # type: ignore[return-value]

    def _agree(self, items: list[Item]) -> bool:
        """Whether the items under one key can be one statement: same kind, arity and op (or all
        plain activations), the same child block; a multi-output item is never optional."""
        first = items[0]
        if any(it.kind != first.kind or it.n_out != first.n_out or len(it.inputs) != len(first.inputs)
               for it in items):
            return False
        if first.n_out > 1 and len(items) < self.n:
            return False  # `a, b = …` cannot be skipped
        if first.kind == "call":
            return all(it.child is not None and first.child is not None and it.child.block is first.child.block
                       for it in items)
        return all(it.op == first.op for it in items) or all(
            get_op(it.op).category == "activation" and not it.attrs for it in items)

    # --- inputs: one ref per slot; an instance without an optional producer reads through it
    def _resolve(self, ref: Ref, i: int) -> Ref | None:
        """What `ref` stands for in instance i, skipping items i does not have."""
        for _ in range(len(self.order) + 1):
            if ref.key is None or i in self.present[ref.key]:
                return ref
            p = self.passthrough.get(ref.key, 0 if len(self.canon[ref.key]) == 1 else None)
            if p is None:
                return None
            ref = self.canon[ref.key][p]
        return None

    def _settle(self, refs: dict[int, Ref]) -> Ref | None:
        """The one ref that, read through absent items, gives every instance's own ref."""
        def rank(r: Ref) -> tuple[int, str]:
            return (len(self.present[r.key]) if r.key else self.n + 1, str(r))

        for t in sorted(set(refs.values()), key=rank):
            if self._explains(t, refs):
                return t
        return None

    def _explains(self, t: Ref, refs: dict[int, Ref]) -> bool:
        need = {i: r for i, r in refs.items() if r != t}
        if not need:
            return True
        if t.key is None or any(i in self.present[t.key] for i in need):
            return False
        settled = t.key in self.passthrough
        for p in [self.passthrough[t.key]] if settled else list(range(len(self.canon[t.key]))):
            self.passthrough[t.key] = p
            if all(self._resolve(t, i) == r for i, r in need.items()):
                return True
        if not settled:
            del self.passthrough[t.key]
        return False

    # --- statements
    def _template_item(self, k: Key) -> TItem | None:
        at = self.by_key[k]
        rep = next(iter(at.values()))
        pres = [i in at for i in range(self.n)]
        op_valued = rep.kind == "op" and (len({it.op for it in at.values()}) > 1 or (
            not all(pres) and get_op(rep.op).category == "activation" and not rep.attrs))
        cond: Expr | None = None
        op = rep.op
        if op_valued:
            vec = {i: (OpRef(at[i].op) if i in at else None) for i in range(self.n)}
            hint = rep.key[1].rsplit(".", 1)[-1] if rep.key[0] == "f" and rep.key[1] else "act"
            expr = self.lift(vec, hint if hint and hint not in reserved_names() else "act")
            op = expr.text
            if not all(pres):
                cond = equals(expr, literal(None), "!=")
        elif not all(pres):
            cond = self.flag(pres)
            if cond is None:
                return None
        return TItem(k, rep.kind, op, rep.child.block if rep.child else None, self._args(rep, at), self.canon[k],
                     rep.n_out, rep.label, cond, self.passthrough.get(k, 0), rep.var, op_valued)

    def _args(self, rep: Item, items: dict[int, Item]) -> list[tuple[str | None, Expr]]:
        """Arguments of a call or op, lifted; those equal to their default dropped; the leading
        required ones positional (an op's `positional` attributes, a block's first required parameter)."""
        out: list[tuple[str | None, Expr]] = []
        leaf = (rep.label or "").rsplit(".", 1)[-1]
        if rep.kind == "call":
            block = rep.child.block  # type: ignore[union-attr]
            assert block is not None
            for k, p in enumerate(block.params):
                vec = {i: it.child.args[p.name] for i, it in items.items()}  # type: ignore[union-attr]
                expr = self.lift(vec, p.name, default=p.default)
                if p.default is not NO_DEFAULT and expr.text == literal(p.default).text:
                    continue
                out.append((None if k == 0 and p.default is NO_DEFAULT else p.name, expr))
            return out
        op = get_op(rep.op)
        fields = op.Attrs.model_fields
        # Required attributes go by position (conv's out and kernel); an op with none takes its first
        # attribute by position (`dropout(0.2)`); the rest by name (`maxpool(3, stride=2)`).
        positional = [a for a in op.positional if fields[a].is_required()] or list(op.positional[:1])
        for a in op.Attrs.model_fields:
            if not any(a in it.attrs for it in items.values()):
                continue
            vec = {i: it.attrs[a] for i, it in items.items() if a in it.attrs}
            default = default_of(rep.op, a)
            expr = self.lift(vec, _hint(a, leaf), kernel_like=a == "kernel",
                             default=NO_DEFAULT if default is REQUIRED else default)
            if default is not REQUIRED and expr.text == literal(default, a == "kernel").text:
                if a in positional:
                    positional = positional[:positional.index(a)]
                continue
            out.append((None if a in positional else a, expr))
        return out


_ATTR_HINTS = {"out": "channels", "p": "drop_rate", "sections": "sections"}


def _hint(attr: str, leaf: str) -> str:
    del leaf
    return _ATTR_HINTS.get(attr, attr)


def _safe(n: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", n).strip("_") or "p"
    if s[0].isdigit():
        s = "p" + s
    if s in reserved_names():
        s += "_"
    return s


def _signature(cls: type) -> dict[str, Any]:
    try:
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


# ---------------------------------------------------------------------------------------------
# 3. blocks, bottom-up


def _snake(n: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", n)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return re.sub(r"_+", "_", s.lower()).strip("_") or "block"


def _walk(inst: Instance) -> list[Instance]:
    out = []
    for it in inst.items:
        if it.child is not None:
            out.extend(_walk(it.child))
    out.append(inst)
    return out


Unified = tuple[list[TItem], Ref, list[BlockParam]]


def build_structure(traced: Traced, model_name: str, ctor_args: dict[int, dict[str, Any]],
                    network_name: str) -> Structure:
    """Instances, then blocks unit by unit (children before parents), then the network."""
    root = InstanceBuilder(traced, model_name).build()
    taken = set(reserved_names()) | {network_name}
    blocks: list[BlockDef] = []
    notes: list[str] = []
    for members in _units([i for i in _walk(root) if i is not root]):
        groups = _group(members, ctor_args, taken)
        if len(groups) > 1:
            notes.append(f"{members[0].cls.__name__}: {len(groups)} blocks, its instances differ in structure")
        blocks += _define(members[0].cls, groups, taken)
    result = Unifier([root], {}, taken).run()  # one instance: every argument is a literal
    assert result is not None
    titems, output, _ = result
    network = BlockDef(network_name, root.cls, [], titems, output, len(root.inputs), [root])
    return Structure(root, network, blocks, notes)


def _units(instances: list[Instance]) -> list[list[Instance]]:
    """Instances grouped by class — by (class, height) for a class that contains itself — with every
    group after the groups of its instances' children."""
    height: dict[int, int] = {}

    def h(inst: Instance) -> int:
        if id(inst) not in height:
            height[id(inst)] = 1 + max((h(it.child) for it in inst.items if it.child), default=-1)
        return height[id(inst)]

    child_classes: dict[type, set[type]] = defaultdict(set)
    for inst in instances:
        child_classes[inst.cls].update(it.child.cls for it in inst.items if it.child)
    recursive = {c for c in child_classes if _reaches(c, c, child_classes)}

    def unit(inst: Instance) -> Any:
        return (inst.cls, h(inst)) if inst.cls in recursive else inst.cls

    units: dict[Any, list[Instance]] = {}
    for inst in instances:  # post-order: children first
        units.setdefault(unit(inst), []).append(inst)
    return [members for _, members in _units_in_order(units, unit)]


def _group(members: list[Instance], ctor_args: dict[int, dict[str, Any]],
           taken: set[str]) -> list[tuple[list[Instance], Unified]]:
    """Instances in groups that unify, each joining the first group it unifies with."""
    groups: list[tuple[list[Instance], Unified]] = []
    for inst in members:
        for k, (insts, _) in enumerate(groups):
            result = Unifier([*insts, inst], ctor_args, taken).run()
            if result is not None:
                groups[k] = ([*insts, inst], result)
                break
        else:
            result = Unifier([inst], ctor_args, taken).run()
            assert result is not None, "a single instance always unifies"
            groups.append(([inst], result))
    return groups


def _define(cls: type, groups: list[tuple[list[Instance], Unified]], taken: set[str]) -> list[BlockDef]:
    """One block per group, named after the class (`dense_block`, `dense_block_2`, …); each instance
    learns its block and its arguments."""
    base = _snake(cls.__name__)
    if base in taken:
        base += "_block"
    out = []
    for k, (insts, (titems, output, params)) in enumerate(groups):
        bname = base if k == 0 else f"{base}_{k + 1}"
        while bname in taken:
            bname += "_"
        taken.add(bname)
        ordered = [p for p in params if p.default is NO_DEFAULT] + [p for p in params if p.default is not NO_DEFAULT]
        block = BlockDef(bname, cls, ordered, titems, output, len(insts[0].inputs), insts)
        out.append(block)
        for i, inst in enumerate(insts):
            inst.block = block
            inst.args = {p.name: p.values[i] for p in ordered}
    return out


def _reaches(a: type, target: type, graph: dict[type, set[type]]) -> bool:
    seen: set[type] = set()
    stack = list(graph.get(a, ()))
    while stack:
        c = stack.pop()
        if c is target:
            return True
        if c not in seen:
            seen.add(c)
            stack.extend(graph.get(c, ()))
    return False


def _units_in_order(units: dict[Any, list[Instance]],
                    unit: Callable[[Instance], Any]) -> list[tuple[Any, list[Instance]]]:
    """Units with every unit after the units of its instances' children (a topological order)."""
    deps: dict[Any, set[Any]] = {u: set() for u in units}
    for u, insts in units.items():
        for inst in insts:
            for it in inst.items:
                if it.child is not None and unit(it.child) != u:
                    deps[u].add(unit(it.child))
    out: list[tuple[Any, list[Instance]]] = []
    done: set[Any] = set()
    order = list(units)

    def visit(u: Any, stack: set[Any]) -> None:
        if u in done or u in stack:
            return
        stack.add(u)
        for d in sorted(deps[u], key=order.index):
            visit(d, stack)
        stack.discard(u)
        done.add(u)
        out.append((u, units[u]))

    for u in order:
        visit(u, set())
    return out


def stack_path(stack: tuple[StackEntry, ...]) -> str:
    return stack[-1].path if stack else ""

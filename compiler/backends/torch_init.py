"""The spec's `init` statements as PyTorch code, run at the end of the network's ``__init__``.

A rule of the network body over a whole kind becomes torchvision's loop (``for m in self.modules():
if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight, …)``); a rule written in a block, the
same loop over that block's class (``if isinstance(m, Bottleneck): nn.init.constant_(m.bn3.weight,
0)``, torchvision's ``zero_init_residual``); a rule under a label that sets every layer of its kinds
there, a loop over that part (``for m in self.class_net.modules(): if isinstance(m, nn.Conv2d):``);
anything else, one statement per layer. The rules come in the order they apply
(archdsl.weight_init), and the code keeps that order wherever two rules set the same tensor, so the
module starts exactly as the rules say. A block's rule that no other rule crosses (it sets tensors no
other rule sets) is the block class's own: :func:`class_init_statements` writes it at the end of
that class's ``__init__``, as timm's and effdet's modules initialize themselves, and
:func:`init_statements` leaves it out of the network's. A number its instances differ in is the
expression the spec writes for it (ShuffleNet's ``normal(std=1 / (in.channels // first_groups))``),
which the class computes from its own parameters (:class:`Written`).

Statements are returned unwrapped, nesting marked by leading tabs, as the class emitter takes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import networkx as nx

from archdsl.ir import IR
from archdsl.syntax import Node
from archdsl.weight_init import ArgValue, InitRule, Scheme

from .python_source import is_attribute, py_str, safe_comment

Path = tuple[str, ...]


def _parts(scope: Path) -> Path:
    return tuple(p for comp in scope for p in comp.split("."))


def _access(base: str, parts: Path) -> str:
    """`base.a.b`, or `base.get_submodule("a.0")` where a part is no attribute name."""
    if not parts:
        return base
    if all(is_attribute(p) for p in parts):
        return ".".join([base, *parts])
    return f"{base}.get_submodule({py_str('.'.join(parts))})"


def _isinstance(var: str, classes: list[str]) -> str:
    return f"isinstance({var}, {classes[0] if len(classes) == 1 else '(' + ', '.join(classes) + ')'})"


class _Emitter:
    def __init__(self, ir: IR, class_of: Mapping[Path, str]) -> None:
        self.ir = ir
        self.class_of = class_of
        self.layers = {n.name: n for n in ir.nodes("op") if n.shares is None}
        self.module_class = {name: c for name, n in self.layers.items()
                             if (c := n.op_class.torch_class(n.attrs, ir.in_shapes(n))) is not None}

    def tensors(self, name: str) -> tuple[str, ...]:
        node = self.layers[name]
        return node.op_class.init_parameters(node.attrs)

    def apply(self, rule: InitRule, names: list[str], target: str, depth: int) -> list[str]:
        """Statements setting `target` (a module expression) as `rule` says; `names` are the layers it
        stands for, which decide whether a tensor needs an `is not None` guard (`bias=false` layers)."""
        tabs = "\t" * depth
        out: list[str] = []
        for tensor, scheme, _span in rule.schemes:
            having = [n for n in names if tensor in self.tensors(n)]
            if not having:
                continue
            lines = scheme.torch_lines(target, tensor)
            if len(having) < len(names):
                out.append(f"{tabs}if {target}.{tensor} is not None:")
                out += [f"{tabs}\t{line}" for line in lines]
            else:
                out += [f"{tabs}{line}" for line in lines]
        return out

    def kinds_under(self, rule: InitRule, prefix: Path) -> list[str] | None:
        """The module classes of a rule's layers when they are every layer of those classes under
        `prefix` (node-name parts), which is no layer itself and holds more than one; else None."""
        names = set(rule.nodes)
        classes = sorted({self.module_class.get(n, "") for n in names})
        if "" in classes or len(names) < 2 or ".".join(prefix) in self.layers:
            return None
        under = {n for n, c in self.module_class.items()
                 if c in classes and tuple(n.split("."))[:len(prefix)] == prefix}
        return classes if under == names else None

    def subtree_loop(self, group: list[InitRule], base: Path = ()) -> list[str] | None:
        """The targets of one statement, each a part where it sets every layer of its kinds: one loop
        over those parts' modules (`for m in self.class_net.modules()`), from the module at `base`
        (the network's, or a block instance's whose class runs it: there a target may be the whole
        instance)."""
        first = group[0]
        if any(r.instance[:len(base)] != base or (r.label is None and not base) or _schemes(r) != _schemes(first)
               for r in group) or (not base and any(r.instance for r in group)):
            return None
        found = [self.kinds_under(r, r.prefix) for r in group]
        if any(f is None for f in found):
            return None
        classes = sorted({c for f in found for c in f or []})
        parts = [_access("self", r.prefix[len(_parts(base)):]) + ".modules()" for r in group]
        modules = parts[0] if len(parts) == 1 else "[" + ", ".join("*" + p for p in parts) + "]"
        names = [n for r in group for n in r.nodes]
        return [f"for m in {modules}:", f"\tif {_isinstance('m', classes)}:", *self.apply(first, names, "m", 2)]

    def hosted(self, groups: list[list[InitRule]], crossed: set[tuple[str, str]]) -> ClassInit | None:
        """A block's statements that set the same tensors (`groups`: each target's rules, one per
        instance, in the order they apply) as statements of the block's classes, and those classes:
        where the classes have no other instances, each instance's layers alike, every instance
        applies them in that order, and no other rule sets a tensor they set (`crossed`; else the
        order of the rules matters, which the network keeps). A number the instances differ in is
        the expression the spec writes for it, computed by the class (see _symbolic)."""
        classes = sorted({self.class_of.get(r.instance, "") for group in groups for r in group})
        if "" in classes or any(self.block_loop(group, symbolic=True) is None for group in groups):
            return None
        if any(key in crossed for group in groups for r in group for key in _tensors(r)) or not self.in_order(groups):
            return None
        written: list[Written] = []
        symbolic = [_symbolic(group, written) for group in groups]  # each target's rule, in that order
        if any(rule is None for rule in symbolic):
            return None
        lines: list[str] = []
        statements = _by_statement([rule for rule in symbolic if rule is not None])
        for firsts in statements:
            loop = self.subtree_loop(firsts, firsts[0].instance)
            if loop is not None:
                lines += loop
                continue
            for first in firsts:
                base = len(_parts(first.instance))
                for n in first.nodes:
                    lines += self.apply(first, [n], _access("self", tuple(n.split("."))[base:]), 0)
        block = groups[0][0].block or "block"
        kind = "statement" if len(statements) == 1 else "statements"
        lines = [_UNQUOTE.sub(r"\1", line) for line in lines]  # a mark was passed to the scheme as a word
        return ClassInit(classes, ["# " + safe_comment(f"Initialization: the init {kind} of block {block}."), *lines],
                         written)

    def in_order(self, groups: list[list[InitRule]]) -> bool:
        """Whether every instance applies its rules of `groups` in the groups' order."""
        at = {id(r): k for k, group in enumerate(groups) for r in group}
        applied: dict[Path, list[int]] = {}
        for r in self.ir.inits:
            if id(r) in at:
                applied.setdefault(r.instance, []).append(at[id(r)])
        return all(order == sorted(order) for order in applied.values())

    def whole_kind(self, rule: InitRule) -> list[str] | None:
        """The module classes a network-wide rule sets, when its layers are every module of them."""
        if rule.instance or rule.label is not None or _parts(rule.scope):
            return None
        classes = sorted({self.module_class.get(n, "") for n in rule.nodes})
        if "" in classes or {n for n, c in self.module_class.items() if c in classes} != set(rule.nodes):
            return None
        return classes

    def block_loop(self, group: list[InitRule], symbolic: bool = False) -> list[str] | None:
        """One statement run in every instance of some block classes: a loop over those classes;
        None where the instances differ in their layers, or in the schemes' numbers (unless
        `symbolic`: the caller writes those as the spec does, see _symbolic)."""
        first = group[0]
        classes = sorted({self.class_of.get(r.instance, "") for r in group})
        instances = {r.instance for r in group}
        if "" in classes or len(instances) != len(group):
            return None
        if {i for i, c in self.class_of.items() if c in classes} != instances:
            return None
        def relative(r: InitRule) -> list[tuple[Path, tuple[str, ...]]]:
            base = len(_parts(r.instance))
            return [(tuple(n.split("."))[base:], self.tensors(n)) for n in r.nodes]
        shape = relative(first)
        if any(relative(r) != shape for r in group):
            return None
        if not symbolic and any(_schemes(r) != _schemes(first) for r in group):
            return None
        body: list[str] = []
        for rel, _tensors in shape:
            body += self.apply(first, [".".join((*_parts(first.instance), *rel))], _access("m", rel), 2)
        return ["for m in self.modules():", f"\tif {_isinstance('m', classes)}:", *body]

    def block_groups(self) -> list[list[list[int]]]:
        """The rules of each target of a block statement (one per instance), by index, joined where
        targets of one block set the same tensor (SSD's backbone: every convolution, then its extra
        layers again): what a block class may run as one."""
        rules = self.ir.inits
        targets: list[list[int]] = []
        seen: set[int] = set()
        for k, rule in enumerate(rules):
            if k not in seen and rule.instance and rule.nodes:
                target = [j for j in range(k, len(rules))
                          if rules[j].instance and rules[j].nodes and _same_statement(rules[j], rule)]
                seen.update(target)
                targets.append(target)
        joined = nx.utils.UnionFind(range(len(targets)))
        setters: dict[tuple[str, str], int] = {}
        for t, target in enumerate(targets):
            for key in (key for j in target for key in _tensors(rules[j])):
                other = setters.setdefault(key, t)
                if rules[targets[other][0]].block == rules[target[0]].block:
                    joined.union(other, t)
        return sorted(([targets[t] for t in sorted(part)] for part in joined.to_sets()), key=lambda u: u[0][0])

    def class_statements(self) -> dict[str, tuple[list[int], ClassInit]]:
        """Each block class that holds statements of its own (see hosted): their rules and code."""
        rules = self.ir.inits
        units = self.block_groups()
        unit_of = {j: u for u, unit in enumerate(units) for target in unit for j in target}
        touched: dict[tuple[str, str], set[int]] = {}  # a tensor → the units that set it (-1: no unit)
        for k, rule in enumerate(rules):
            for key in _tensors(rule):
                touched.setdefault(key, set()).add(unit_of.get(k, -1))
        found: dict[str, tuple[list[int], ClassInit]] = {}
        for u, unit in enumerate(units):
            crossed = {key for key, owners in touched.items() if owners != {u}}
            made = self.hosted([[rules[j] for j in target] for target in unit], crossed)
            if made is None:
                continue
            for name in made.classes:
                # Its own instances' rules: a class that does not take its statements leaves them to the network.
                mine = [j for target in unit for j in target if self.class_of[rules[j].instance] == name]
                before = found.get(name)  # statements setting other tensors than those before: either order holds
                found[name] = (mine, made) if before is None else (before[0] + mine, before[1].then(made))
        return found

    def run(self, hosted: frozenset[str] = frozenset()) -> list[str]:
        rules = self.ir.inits
        regroup = _regroup(rules)
        skipped = {j for name, (group, _) in self.class_statements().items() if name in hosted for j in group}
        lines: list[str] = []
        # The open `for m in self.modules()` loop: per branch, its classes, rule and layers.
        loop: list[tuple[list[str], InitRule, list[str]]] = []

        def close() -> list[str]:
            code = _loop([(classes, self.apply(r, nodes, "m", 2)) for classes, r, nodes in loop])
            loop.clear()
            return code

        done: set[int] = set(skipped)
        for k, rule in enumerate(rules):
            if k in done or not rule.nodes:
                continue
            classes = self.whole_kind(rule)
            if classes is not None:
                if loop and loop[-1][1].statement == rule.statement:  # `init conv, linear: …`: one branch
                    last_classes, _, nodes = loop.pop()
                    classes, names = sorted({*last_classes, *classes}), [*nodes, *rule.nodes]
                else:
                    names = list(rule.nodes)
                if any(set(classes) & set(c) for c, _, _ in loop):
                    lines += close()
                loop.append((classes, rule, names))
                continue
            lines += close()
            group = [k]
            code = None
            if rule.instance and regroup:
                group = [j for j in range(k, len(rules))
                         if rules[j].instance and rules[j].nodes and _same_statement(rules[j], rule)]
                code = self.block_loop([rules[j] for j in group])
            if code is None and not rule.instance:
                group = [j for j in range(k, len(rules)) if j not in done and rules[j].nodes
                         and rules[j].statement == rule.statement and not rules[j].instance]
                group = group[:next((i for i, j in enumerate(group) if j != k + i), len(group))]
                code = self.subtree_loop([rules[j] for j in group])
            if code is None:
                group, code = [k], self.explicit(rule)
            done.update(group)
            lines += code
        return lines + close()

    def explicit(self, rule: InitRule) -> list[str]:
        out: list[str] = []
        for name in rule.nodes:
            out += self.apply(rule, [name], _access("self", tuple(name.split("."))), 0)
        return out


def _tensors(rule: InitRule) -> list[tuple[str, str]]:
    """The tensors a rule sets: (layer, tensor name)."""
    return [(n, t) for n in rule.nodes for t, _s, _ in rule.schemes]


def _by_statement(rules: list[InitRule]) -> list[list[InitRule]]:
    """Consecutive targets' rules of one statement together."""
    out: list[list[InitRule]] = []
    for rule in rules:
        if out and out[-1][0].statement == rule.statement:
            out[-1].append(rule)
        else:
            out.append([rule])
    return out


def _same_statement(a: InitRule, b: InitRule) -> bool:
    return (a.span, a.kind, a.label) == (b.span, b.kind, b.label)


def _loop(items: list[tuple[list[str], list[str]]]) -> list[str]:
    """torchvision's loop: `for m in self.modules(): if isinstance(m, …): … elif …`."""
    if not items:
        return []
    lines = ["for m in self.modules():"]
    for k, (classes, body) in enumerate(items):
        lines.append(f"\t{'if' if k == 0 else 'elif'} {_isinstance('m', classes)}:")
        lines.extend(body)
    return lines


def _schemes(rule: InitRule) -> tuple[tuple[str, Scheme], ...]:
    return tuple((t, s) for t, s, _ in rule.schemes)


@dataclass(frozen=True)
class Written:
    """A number of a class's own init statement that its instances differ in: the expression the
    spec wrote for it, and its value in each instance (by path). The statement holds `\x02k\x02` in
    its place, k its index in ClassInit.written, for the class to write the expression."""

    expression: Node
    values: Mapping[Path, ArgValue]


@dataclass(frozen=True)
class ClassInit:
    """The init statements of a block's classes (`classes`), run at the end of each one's constructor."""

    classes: list[str]
    lines: list[str]
    written: list[Written] = field(default_factory=list)

    def then(self, other: ClassInit) -> ClassInit:
        """These statements, then `other`'s, under one heading."""
        shift = len(self.written)
        later = [MARK.sub(lambda m: _mark(int(m[1]) + shift), line) for line in other.lines[1:]]
        heading = re.sub(r"init statement of", "init statements of", self.lines[0])
        return ClassInit(self.classes, [heading, *self.lines[1:], *later], [*self.written, *other.written])


def _symbolic(group: list[InitRule], written: list[Written]) -> InitRule | None:
    """The first rule of a statement's group (one per instance), each number the instances differ in
    replaced by a mark of the expression the spec wrote for it (appended to `written`); None where
    such a number has no expression, or goes into more than the text of the call (a scheme that
    computes with it: variance_scaling)."""
    first = group[0]
    if any([(t, s.name, [n for n, _ in s.given]) for t, s, _ in r.schemes]
           != [(t, s.name, [n for n, _ in s.given]) for t, s, _ in first.schemes] for r in group):
        return None
    schemes = []
    for k, (tensor, scheme, span) in enumerate(first.schemes):
        given: list[tuple[str, ArgValue]] = []
        for name, value in scheme.given:
            values = {r.instance: dict(r.schemes[k][1].given)[name] for r in group}
            expression = dict(scheme.written).get(name)
            if len({(type(v), v) for v in values.values()}) == 1:
                given.append((name, value))
            elif expression is None or isinstance(value, str) or scheme.name in _COMPUTING:
                return None
            else:
                written.append(Written(expression, values))
                given.append((name, _mark(len(written) - 1)))
        schemes.append((tensor, Scheme(scheme.name, tuple(given), scheme.written), span))
    return replace(first, schemes=tuple(schemes))


_COMPUTING = frozenset({"variance_scaling"})  # schemes whose code computes with a number, not just writes it


def _mark(k: int) -> str:
    """The mark of ClassInit.written[k] in a statement."""
    return f"\x02{k}\x02"


MARK = re.compile("\x02(\\d+)\x02")  # a mark, its index the group
_UNQUOTE = re.compile('"(\x02\\d+\x02)"')


def init_statements(ir: IR, class_of: Mapping[Path, str], file: str,
                    hosted: frozenset[str] = frozenset()) -> list[str]:
    """The statements that initialize the network's weights as its `init` rules say (none without
    rules: PyTorch's defaults stay). `class_of` maps each block instance to its generated class;
    the statements of the classes in `hosted` are theirs (see class_init_statements), not these."""
    lines = _Emitter(ir, class_of).run(hosted) if ir.inits else []
    return ["# " + safe_comment(f"Initialization: the init statements of {file}."), *lines] if lines else []


def class_init_statements(ir: IR, class_of: Mapping[Path, str]) -> dict[str, ClassInit]:
    """The block classes that may hold their block's `init` statement themselves, with its code (run
    at the end of the class's ``__init__``): a statement of the block's that sets, in every instance
    of the class, tensors no other rule sets. The caller keeps a class's where every network of the
    file that has the class gives it the same code, and passes those classes to init_statements."""
    if not ir.inits:
        return {}
    return {name: made for name, (_, made) in _Emitter(ir, class_of).class_statements().items()}


def _regroup(rules: list[InitRule]) -> bool:
    """Whether a block statement's rules (one per instance) may be emitted together where the first
    one stands: unless two block statements set one tensor (then their order matters)."""
    touched: dict[tuple[str, str], set[tuple[object, ...]]] = {}
    for r in rules:
        if r.instance:
            for n in r.nodes:
                for t, _s, _ in r.schemes:
                    touched.setdefault((n, t), set()).add((r.span, r.kind, r.label))
    return all(len(v) == 1 for v in touched.values())


__all__ = ["MARK", "ClassInit", "Written", "class_init_statements", "init_statements"]

"""The spec's `init` statements as PyTorch code, run at the end of the network's ``__init__``.

A rule of the network body over a whole kind becomes torchvision's loop (``for m in self.modules():
if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight, …)``); a rule written in a block, the
same loop over that block's class (``if isinstance(m, Bottleneck): nn.init.constant_(m.bn3.weight,
0)``, torchvision's ``zero_init_residual``); anything else, one statement per layer. The rules come
in the order they apply (archdsl.weight_init), and the code keeps that order wherever two rules set
the same tensor, so the module starts exactly as the rules say.

Statements are returned unwrapped, nesting marked by leading tabs, as the class emitter takes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from archdsl.ir import IR, IRNode
from archdsl.weight_init import InitRule, Scheme

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


def _torch_class(ir: IR, node: IRNode) -> str | None:
    text = node.op_class.torch_init(node.attrs, ir.in_shapes(node)) or ""
    match = re.match(r"(nn\.\w+)\(", text)
    return match.group(1) if match else None


def _isinstance(var: str, classes: list[str]) -> str:
    return f"isinstance({var}, {classes[0] if len(classes) == 1 else '(' + ', '.join(classes) + ')'})"


class _Emitter:
    def __init__(self, ir: IR, class_of: Mapping[Path, str]) -> None:
        self.ir = ir
        self.class_of = class_of
        self.layers = {n.name: n for n in ir.nodes("op") if n.shares is None}
        self.module_class = {name: c for name, n in self.layers.items() if (c := _torch_class(ir, n)) is not None}

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

    def whole_kind(self, rule: InitRule) -> list[str] | None:
        """The module classes a network-wide rule sets, when its layers are every module of them."""
        if rule.instance or rule.label is not None or _parts(rule.scope):
            return None
        classes = sorted({self.module_class.get(n, "") for n in rule.nodes})
        if "" in classes or {n for n, c in self.module_class.items() if c in classes} != set(rule.nodes):
            return None
        return classes

    def block_loop(self, group: list[InitRule]) -> list[str] | None:
        """One statement run in every instance of some block classes: a loop over those classes."""
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
        if any(relative(r) != shape or _schemes(r) != _schemes(first) for r in group):
            return None
        body: list[str] = []
        for rel, _tensors in shape:
            body += self.apply(first, [".".join((*_parts(first.instance), *rel))], _access("m", rel), 2)
        return ["for m in self.modules():", f"\tif {_isinstance('m', classes)}:", *body]

    def run(self) -> list[str]:
        rules = self.ir.inits
        regroup = _regroup(rules)
        lines: list[str] = []
        # The open `for m in self.modules()` loop: per branch, its classes, rule and layers.
        loop: list[tuple[list[str], InitRule, list[str]]] = []

        def close() -> list[str]:
            code = _loop([(classes, self.apply(r, nodes, "m", 2)) for classes, r, nodes in loop])
            loop.clear()
            return code

        done: set[int] = set()
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


def init_statements(ir: IR, class_of: Mapping[Path, str], file: str) -> list[str]:
    """The statements that initialize the network's weights as its `init` rules say (none without
    rules: PyTorch's defaults stay). `class_of` maps each block instance to its generated class."""
    if not ir.inits:
        return []
    return ["# " + safe_comment(f"Initialization: the init statements of {file}."), *_Emitter(ir, class_of).run()]


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


__all__ = ["init_statements"]

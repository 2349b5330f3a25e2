"""Matching the `init` rules of an elaborated network with its layers (archdsl.weight_init declares
the rules and schemes; this module needs the IR, which holds the result)."""

from __future__ import annotations

from dataclasses import replace

from .diagnostics import Diagnostic, Span, did_you_mean
from .ir import IR, IRNode
from .weight_init import InitRule, split_path


def _under(name: str, prefix: tuple[str, ...]) -> bool:
    """Whether the layer `name` lies under the path `prefix` (its first components are the prefix's)."""
    if not prefix:
        return True
    path = ".".join(prefix)
    return name == path or name.startswith(path + ".")


def resolve(ir: IR, rules: list[InitRule]) -> tuple[list[InitRule], list[Diagnostic]]:
    """Each rule with the layers it sets, in the order they apply (outer bodies first); and the
    problems: a target that matches no layer of its kind, a tensor no matched layer has."""
    problems: list[Diagnostic] = []
    ordered = sorted(rules, key=lambda r: r.depth)  # stable: within a depth, the order they ran
    kinds: dict[str | None, str | None] = {}  # each op's init kind
    layers = [n for n in ir.nodes("op")
              if (kinds[n.op] if n.op in kinds else kinds.setdefault(n.op, n.op_class.init_kind)) is not None]
    out: list[InitRule] = []
    reported: set[tuple[Span, str]] = set()

    def problem(d: Diagnostic) -> None:
        if (d.span, d.message) not in reported:
            reported.add((d.span, d.message))
            problems.append(d)

    for rule in ordered:
        prefix = rule.prefix
        if prefix:  # _under, with the prefix's text made once per rule
            path = ".".join(prefix)
            below = path + "."
            matched = [n for n in layers
                       if kinds[n.op] == rule.kind and (n.name == path or n.name.startswith(below))]
        else:
            matched = [n for n in layers if kinds[n.op] == rule.kind]
        own = [n for n in matched if n.shares is None]  # a shared instance's later application has no weights
        out.append(_with_nodes(rule, tuple(n.name for n in own)))
        # A kind's rule is torchvision's `isinstance` loop: it sets what is there (`if m.bias is not
        # None`). A label names layers that must be there.
        if rule.label is None:
            continue
        if not matched:
            problem(_no_match(ir, rule))
            continue
        for tensor, _scheme, span in rule.schemes:
            if own and not any(tensor in _tensors(n) for n in own):
                names = sorted({t for n in own for t in _tensors(n)})
                where = f"`{'.'.join(rule.label)}`"
                problem(Diagnostic("E0544", f"{where} has no `{tensor}`", span,
                                   f"it has: {', '.join(names) or 'no parameters'}"
                                   + (" (a bias only with bias=true)" if tensor == "bias" else "")))
    return out, problems


def _with_nodes(rule: InitRule, nodes: tuple[str, ...]) -> InitRule:
    return replace(rule, nodes=nodes)


def _tensors(node: IRNode) -> tuple[str, ...]:
    return node.op_class.init_parameters(node.attrs)


def _no_match(ir: IR, rule: InitRule) -> Diagnostic:
    label = ".".join(rule.label or ())
    there = [n for n in ir.nodes("op") if _under(n.name, rule.prefix)]
    if there:
        ops = sorted({n.op or "" for n in there})
        return Diagnostic("E0543", f"`{label}` holds no {rule.kind} layer", rule.span, f"it holds: {', '.join(ops)}")
    base, size = len(split_path(rule.scope)), len(rule.label or ())
    names = sorted({".".join(n.name.split(".")[base:base + size])
                    for n in ir.nodes("op") if _under(n.name, split_path(rule.scope))})
    return Diagnostic("E0543", f"no layer is labelled `{label}` here", rule.span,
                      did_you_mean(label, names) or "a label is read in the body the statement is written in")


__all__ = ["resolve"]

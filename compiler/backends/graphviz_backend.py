"""Graphviz diagrams of a network: DOT text from the IR, and SVG/PNG/PDF through the `dot` binary.

Blocks are drawn as clusters; below ``depth`` a block collapses into one node labelled with its call
as written (``inverted_residual(c=24, stride=2, expand=6)``), its parameters and MACs, and a run of
identical consecutive blocks that feed one another collapses further into one node with a count
(``×3``). Op nodes show the op's short description (``conv 3×3/2, 64``) and are shaped and coloured
by the op's category, so merges and splits stand out; edges carry tensor shapes (``64×56×56``).

>>> import archdsl
>>> net = archdsl.load_string('''
... network tiny {
...     input image: 3x8x8
...     image -> conv(4, 3) as conv1 -> relu -> output y
... }''').network()
>>> dot = to_dot(net)
>>> '"conv 3×3, 4"' in dot and 'label="4×8×8"' in dot
True

NOTE: the DOT text is written here, not through ``graphviz.Digraph``, so that every id is synthetic
(``n12``, ``cluster_3``: never a spec name, whose colons graphviz would read as ports) and every label
is a *quoted* string built by :func:`quote` — quoted strings are never HTML-like labels, and
backslashes and quotes in user text are escaped. Output is a pure function of the IR (creation order
everywhere), so it is byte-stable. The graphviz package is imported only to run ``dot``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from archdsl.diagnostics import Span, error
from archdsl.formatting import human, shape_text
from archdsl.ir import IR, IRNode, output_name

from ..hierarchy import ScopeTree, feeds_only, signature
from ..passes import Analysis, AnalyzedNetwork
from ..passes.counts import CountPass

FORMATS = ("svg", "png", "pdf", "dot")
# The default depth is the deepest whose drawing has at most this many nodes (at least depth 1).
NODE_BUDGET = 220
INSTALL_HINT = ("install graphviz's `dot` binary (Debian/Ubuntu: `apt-get install graphviz`, macOS: "
                "`brew install graphviz`, conda: `conda install graphviz`), or write `-o FILE.dot`")

_FONT = "Helvetica"  # graphviz knows its metrics, so labels fit their boxes
# category → node attributes; merges and splits get their own shapes and warm colours.
_STYLE: dict[str, dict[str, str]] = {
    "layer": {"shape": "box", "style": "filled", "fillcolor": "#dbe9f6"},
    "norm": {"shape": "box", "style": "filled", "fillcolor": "#eeeeee"},
    "activation": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff2cc"},
    "pool": {"shape": "box", "style": "filled", "fillcolor": "#d9ead3"},
    "merge": {"shape": "invtrapezium", "style": "filled", "fillcolor": "#f9cb9c", "color": "#b45f06"},
    "split": {"shape": "trapezium", "style": "filled", "fillcolor": "#ead1dc", "color": "#741b47"},
    "reshape": {"shape": "box", "style": "dashed"},
    "regularizer": {"shape": "box", "style": "dashed", "fontcolor": "#666666"},
    "input": {"shape": "invhouse", "style": "filled,bold", "fillcolor": "#ffffff", "color": "#38761d"},
    "output": {"shape": "house", "style": "filled,bold", "fillcolor": "#fce5cd", "color": "#990000"},
    "block": {"shape": "box3d", "style": "filled", "fillcolor": "#e6e0f8", "margin": "0.15,0.1"},
}


def quote(text: str) -> str:
    """A DOT quoted string holding `text` literally (never HTML-like, no escape sequences)."""
    text = " ".join(text.splitlines())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def label(*lines: str, left: bool = False) -> str:
    """A quoted multi-line label: each line escaped, joined by DOT's centred (or left) line break."""
    if left:
        return "".join(quote(line)[1:-1] + "\\l" for line in lines if line).join('""')
    return "\\n".join(quote(line)[1:-1] for line in lines if line).join('""')


# ---------------------------------------------------------------------------------------------
# The drawing: which units (op nodes, collapsed blocks, runs of blocks) sit in which clusters


@dataclass
class Unit:
    """One drawn node: an IR node, or one collapsed scope, or a run of identical collapsed scopes."""

    kind: Literal["node", "scope"]
    keys: list[Any]  # IR node names (kind "node") or scope paths (kind "scope")
    parent: tuple[str, ...]  # the cluster it sits in (() is the top level)
    nodes: list[str] = field(default_factory=list)  # the IR nodes it stands for
    id: str = ""


@dataclass
class Layout:
    """The result of collapsing an IR to a depth: units, clusters and deduplicated edges."""

    units: list[Unit]
    clusters: list[tuple[str, ...]]  # scope paths drawn as clusters, in order of first use
    edges: list[tuple[str, str, str]]  # (unit id, unit id, shape label)

    @property
    def node_count(self) -> int:
        return len(self.units)


def layout(ir: IR, depth: int | None) -> Layout:
    """Collapse every scope at nesting level `depth` (None: none) into one unit, then runs of them."""
    scopes = ScopeTree.of(ir)
    units: list[Unit] = []
    unit_of: dict[str, Unit] = {}
    by_scope: dict[tuple[str, ...], Unit] = {}
    for node in ir.nodes():
        chain = scopes.chain(node.scope)
        if depth is not None and len(chain) >= depth:
            path = chain[depth - 1]
            unit = by_scope.get(path)
            if unit is None:
                unit = by_scope[path] = Unit("scope", [path], chain[depth - 2] if depth > 1 else ())
                units.append(unit)
        else:
            unit = Unit("node", [node.name], chain[-1] if chain else ())
            units.append(unit)
        unit.nodes.append(node.name)
        unit_of[node.name] = unit
    units = _merge_runs(ir, units, unit_of)

    for i, unit in enumerate(units):
        unit.id = f"n{i}"
    edges: dict[tuple[str, str, str], None] = {}
    for src, dst, _port, shape in ir.edges():
        a, b = unit_of[src], unit_of[dst]
        if a is not b:
            edges[(a.id, b.id, shape_text(shape))] = None
    clusters: dict[tuple[str, ...], None] = {}
    for unit in units:
        for path in scopes.chain(unit.parent):
            clusters[path] = None
    return Layout(units, list(clusters), list(edges))


def _merge_runs(ir: IR, units: list[Unit], unit_of: dict[str, Unit]) -> list[Unit]:
    """Fold consecutive sibling scope units with the same block and title into one, when each one
    feeds only the next and the next is fed only by it (a chain, as repeat iterations are)."""
    out: list[Unit] = []
    tail: list[str] = []  # the nodes of out[-1]'s last member (a unit from `layout` has one member)
    for unit in units:
        last = out[-1] if out else None
        if (last is not None and _signature(ir, unit) is not None and _signature(ir, unit) == _signature(ir, last)
                and unit.parent == last.parent and feeds_only(ir, tail, unit.nodes)):
            last.keys.extend(unit.keys)
            last.nodes.extend(unit.nodes)
            for name in unit.nodes:
                unit_of[name] = last
            tail = unit.nodes
            continue
        out.append(unit)
        tail = list(unit.nodes)
    return out


def _signature(ir: IR, u: Unit) -> tuple[str, str | None, str] | None:
    """What makes scope units look alike (None for an op node): see :func:`hierarchy.signature`."""
    return signature(ir.scopes[u.keys[0]]) if u.kind == "scope" else None


def default_depth(ir: IR) -> int | None:
    """The deepest depth whose drawing has at most NODE_BUDGET nodes (None: nothing collapsed)."""
    deepest = ScopeTree.of(ir).max_level()
    if len(ir) <= NODE_BUDGET or deepest == 0:
        return None
    for depth in range(deepest, 0, -1):
        if layout(ir, depth).node_count <= NODE_BUDGET:
            return depth
    return 1


# ---------------------------------------------------------------------------------------------
# DOT text


def to_dot(net: AnalyzedNetwork, depth: int | None = None, direction: str = "TB") -> str:
    """The DOT source of `net`'s diagram; `depth` None picks :func:`default_depth`, 0 draws every op.
    Blocks are labelled with the params and MACs of `net.analysis` (the caller's analysis)."""
    ir = net.ir
    if depth is None:
        depth = default_depth(ir) or 0
    if direction not in ("TB", "LR"):
        raise error("E1101", f"unknown diagram direction `{direction}`", Span.unknown("<--direction>"),
                    "use TB (top to bottom) or LR (left to right)")
    lay = layout(ir, depth or None)
    scopes = ScopeTree.of(ir)
    totals = _totals(ir, net.analysis)

    lines = [
        f"digraph {quote(net.info.name)} {{",
        f"  graph [rankdir={direction}, newrank=true, fontname={quote(_FONT)}, fontsize=12, labelloc=t,"
        f" nodesep=0.25, ranksep=0.3, label={label(_graph_title(net.info.name, totals))}];",
        f"  node [fontname={quote(_FONT)}, fontsize=10, margin=\"0.12,0.04\", height=0.3];",
        f"  edge [fontname={quote(_FONT)}, fontsize=8, color=\"#555555\", arrowsize=0.6];",
    ]
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in lay.clusters:
        children.setdefault(scopes.parent[path], []).append(path)
    members: dict[tuple[str, ...], list[Unit]] = {}
    for unit in lay.units:
        members.setdefault(unit.parent, []).append(unit)
    cluster_id = {path: f"cluster_{i}" for i, path in enumerate(lay.clusters)}

    def emit(parent: tuple[str, ...], indent: str) -> None:
        for unit in members.get(parent, []):
            lines.append(f"{indent}{unit.id} [{_node_attrs(ir, scopes, unit, totals)}];")
        for path in children.get(parent, []):
            info = ir.scopes[path]
            params, macs = _sum(totals, _nodes_under(ir, path))
            title = f"{'.'.join(path)}: {info.title}" if info.title else ".".join(path)
            lines.append(f"{indent}subgraph {cluster_id[path]} {{")
            lines.append(f"{indent}  graph [label={label(title, _counts(params, macs), left=True)},"
                         f" labeljust=l, style=\"rounded\", color=\"#999999\", fontsize=10];")
            emit(path, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    for a, b, shape in lay.edges:
        lines.append(f"  {a} -> {b} [label={quote(shape)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graph_title(name: str, totals: dict[str, tuple[int, int]]) -> str:
    params = sum(p for p, _ in totals.values())
    macs = sum(m for _, m in totals.values())
    return f"{name}  ({_counts(params, macs)})"


def _counts(params: int, macs: int) -> str:
    return f"{human(params)} params · {human(macs)} MACs"


def _totals(ir: IR, analysis: Analysis) -> dict[str, tuple[int, int]]:
    counts = analysis[CountPass]
    return {n.name: (counts[n.name].params, counts[n.name].macs) for n in ir.nodes("op")}


def _sum(totals: dict[str, tuple[int, int]], names: Iterable[str]) -> tuple[int, int]:
    pairs = [totals[n] for n in names if n in totals]
    return sum(p for p, _ in pairs), sum(m for _, m in pairs)


def _nodes_under(ir: IR, path: tuple[str, ...]) -> list[str]:
    return [n.name for n in ir.nodes() if n.scope[: len(path)] == path]


def _node_attrs(ir: IR, scopes: ScopeTree, unit: Unit, totals: dict[str, tuple[int, int]]) -> str:
    if unit.kind == "scope":
        style = _STYLE["block"]
        text = _block_label(ir, scopes, unit, totals)
        tip = ", ".join(".".join(p) for p in unit.keys)
    else:
        node = ir.node(unit.keys[0])
        style, text = _op_style(ir, node)
        tip = node.name
    attrs = [f"label={text}", *(f"{k}={quote(v)}" for k, v in style.items()), f"tooltip={quote(tip)}"]
    return ", ".join(attrs)


def _op_style(ir: IR, node: IRNode) -> tuple[dict[str, str], str]:
    if node.kind == "input":
        return _STYLE["input"], label(node.name, shape_text(node.out_shapes[0]))
    if node.kind == "output":
        name = output_name(node)
        return _STYLE["output"], label(name, shape_text(node.out_shapes[0]))
    op = node.op_class
    return _STYLE.get(op.category, _STYLE["layer"]), label(op.describe(node.attrs))


def _block_label(ir: IR, scopes: ScopeTree, unit: Unit, totals: dict[str, tuple[int, int]]) -> str:
    first: tuple[str, ...] = unit.keys[0]
    info = ir.scopes[first]
    params, macs = _sum(totals, unit.nodes)
    count = len(unit.keys)
    where = ".".join(first) if count == 1 else f"{'.'.join(first)} … {'.'.join(unit.keys[-1])}"
    if info.kind == "block":
        head = [f"{info.title} ×{count}" if count > 1 else info.title, where]
    else:  # a collapsed stage or repeat: where and what it is, then its blocks, runs counted
        head = [(f"{where}: {info.title}" if info.title else where) + (f" ×{count}" if count > 1 else "")]
        inner = [ir.scopes[p] for p in ir.scopes if scopes.parent[p] == first]
        runs: list[list[Any]] = []
        for sub in inner:
            if runs and runs[-1][0] == sub.title:
                runs[-1][1] += 1
            else:
                runs.append([sub.title, 1])
        head += [f"{title} ×{n}" if n > 1 else title for title, n in runs[:6]]
        if len(runs) > 6:
            head.append(f"… {len(runs) - 6} more")
    return label(*head, _counts(params, macs))


# ---------------------------------------------------------------------------------------------
# Rendering


def render(dot_source: str, fmt: str) -> bytes:
    """Run `dot -T<fmt>` on the source. Raises an ArchError with an install hint when `dot` is missing."""
    if fmt == "dot":
        return dot_source.encode("utf-8")
    if fmt not in FORMATS:
        raise error("E1102", f"unknown diagram format `{fmt}`", Span.unknown("<-o>"),
                    f"write one of: {', '.join('.' + f for f in FORMATS)}")
    import subprocess

    import graphviz

    try:
        return bytes(graphviz.pipe("dot", fmt, dot_source.encode("utf-8"), quiet=True))
    except graphviz.ExecutableNotFound:
        raise error("E1103", "cannot render the diagram: graphviz's `dot` program is not installed (not on PATH)",
                    Span.unknown("<dot>"), INSTALL_HINT) from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise error("E1104", f"graphviz `dot` failed: {detail[-1] if detail else exc}", Span.unknown("<dot>"),
                    "write `-o FILE.dot` to inspect the graph source") from None


def diagram(net: AnalyzedNetwork, fmt: str = "svg", depth: int | None = None, direction: str = "TB") -> bytes:
    """The rendered diagram of `net` in `fmt` (svg, png, pdf or dot)."""
    return render(to_dot(net, depth, direction), fmt)

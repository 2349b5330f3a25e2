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
    """Fold consecutive sibling scope units alike (:func:`_alike`) into one, when each one feeds only
    the next and the next is fed only by it (a chain, as repeat iterations are)."""
    out: list[Unit] = []
    tail: list[str] = []  # the nodes of out[-1]'s last member (a unit from `layout` has one member)
    for unit in units:
        last = out[-1] if out else None
        if (last is not None and unit.kind == last.kind == "scope" and unit.parent == last.parent
                and _alike(ir, (last.keys[-1], tail), (unit.keys[0], unit.nodes)) and feeds_only(ir, tail, unit.nodes)):
            last.keys.extend(unit.keys)
            last.nodes.extend(unit.nodes)
            for name in unit.nodes:
                unit_of[name] = last
            tail = unit.nodes
            continue
        out.append(unit)
        tail = list(unit.nodes)
    return out


def _alike(ir: IR, a: tuple[tuple[str, ...], list[str]], b: tuple[tuple[str, ...], list[str]]) -> bool:
    """Whether two scopes (each a path and its IR nodes) are drawn as one run: the same signature
    (:func:`hierarchy.signature`), or the same kind and block whose calls differ only in arguments
    that change no layer's kind, description, name or shape — EfficientNet's blocks, each with its own
    stochastic-depth `drop` — which the run's label then shows as ranges (:func:`_run_title`)."""
    x, y = ir.scopes[a[0]], ir.scopes[b[0]]
    if signature(x) == signature(y):
        return True
    return (x.kind, x.block) == (y.kind, y.block) and _layers(ir, a[0], a[1]) == _layers(ir, b[0], b[1])


def _layers(ir: IR, path: tuple[str, ...], nodes: list[str]) -> list[tuple[object, ...]]:
    """What a drawn scope's layers are: each one's name under the scope, kind, description and shapes."""
    out: list[tuple[object, ...]] = []
    for name in nodes:
        node = ir.node(name)
        what = node.op_class.describe(node.attrs) if node.kind == "op" else node.kind
        out.append((node.scope[len(path):], name.rsplit(".", 1)[-1], what, node.out_shapes))
    return out


def _run_title(titles: list[str]) -> str:
    """One label for a run of calls: the call, each argument that varies along the run as `first…last`
    (`mbconv(c=80, drop=0.0625…0.0875)`)."""
    first, last = titles[0], titles[-1]
    if all(t == first for t in titles):
        return first
    head, a, b = first.split("(", 1)[0], _call_arguments(first), _call_arguments(last)
    if head != last.split("(", 1)[0] or a is None or b is None or len(a) != len(b):
        return f"{first} … {last}"
    parts = [x if x == y else f"{x}…{y.split('=', 1)[-1]}" for x, y in zip(a, b, strict=True)]
    return f"{head}({', '.join(parts)})"


def _call_arguments(title: str) -> list[str] | None:
    """The arguments of a call's text `f(a=1, b=[2, 3])`, split at its top-level commas (None if it is
    no call)."""
    if "(" not in title or not title.endswith(")"):
        return None
    inner, depth, parts, start = title[title.index("(") + 1:-1], 0, [], 0
    for i, ch in enumerate(inner):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


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
        title = _run_title([ir.scopes[k].title for k in unit.keys])
        head = [f"{title} ×{count}" if count > 1 else title, where]
    else:  # a collapsed stage or repeat: where and what it is, then its blocks, runs counted
        head = [(f"{where}: {info.title}" if info.title else where) + (f" ×{count}" if count > 1 else "")]
        runs: list[tuple[list[tuple[str, ...]], list[str]]] = []  # each run's scopes and their titles
        for path in (p for p in ir.scopes if scopes.parent[p] == first):
            last = runs[-1][0][-1] if runs else None
            if last is not None and (signature(ir.scopes[last]) == signature(ir.scopes[path]) or _alike(
                    ir, (last, _nodes_under(ir, last)), (path, _nodes_under(ir, path)))):
                runs[-1][0].append(path)
                runs[-1][1].append(ir.scopes[path].title)
            else:
                runs.append(([path], [ir.scopes[path].title]))
        head += [f"{_run_title(t)} ×{len(t)}" if len(t) > 1 else t[0] for _, t in runs[:6]]
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

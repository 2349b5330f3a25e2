"""The IR: a flat dataflow graph of op instances, behind a small typed facade over networkx.

Three node kinds, checked here and nowhere else: ``input`` (a network input), ``op`` (an instance of
a registry op) and ``output`` (a named network output). Blocks are elaborated away; every node
keeps its hierarchical path (``layer3.2.conv1``) and the span it came from, and the IR records each
block instance's scope (for per-block aggregation and collapsible diagrams).

Edges run from producer to consumer, keyed by the consumer's input index, and carry the tensor
shape. NOTE: the networkx ``MultiDiGraph`` is materialized on first use of a graph
query (:meth:`IR.graph`): importing networkx costs ~0.2 s, more than a whole ResNet-50 analysis,
so the node table (each node lists its input ports) is the primary store and the graph is
derived from it. Node order is creation order, which is topological by construction; every listing the IR
gives is in that order, so everything derived from it is deterministic. The IR holds structure
only: what passes compute about it lives in their own typed results (``archdsl.compiler.passes``).

>>> ir = IR("tiny")
>>> x = ir.add_node(IRNode("image", "input", None, None, (), ((3, 8, 8),), (), Span.unknown()))
>>> ir.nodes()[0].name
'image'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Literal

from .diagnostics import Span
from .ops import Attrs, Op, Shape, get_op

if TYPE_CHECKING:
    import networkx as nx

    from .syntax import Node
    from .weight_init import InitRule

NodeKind = Literal["input", "op", "output"]
ScopeKind = Literal["block", "repeat", "stage"]
NODE_KINDS: tuple[NodeKind, ...] = ("input", "op", "output")


# Port, IRNode and Tensor (archdsl.values) are made once per layer or more, so they are not
# `frozen`: a frozen dataclass's __init__ sets each field through object.__setattr__, three to four
# times the cost of a plain one. They hash and compare by value all the same (`unsafe_hash`), and
# nothing changes them once made (the IR replaces an equal shape tuple by its shared copy, no more).
@dataclass(order=True, slots=True, unsafe_hash=True)
class Port:
    """One output of a node: ``Port("layer1.0.relu", 0)``."""

    node: str
    index: int = 0


@dataclass(slots=True, unsafe_hash=True)
class IRNode:
    """One node. Slots, and shapes shared between nodes (:meth:`IR.add_node` interns them), keep a
    node to a few hundred bytes: a 10⁵-layer network is held in tens of megabytes."""

    name: str
    kind: NodeKind
    op: str | None  # canonical registry name for kind "op"
    attrs: Attrs | None
    inputs: tuple[Port, ...]
    out_shapes: tuple[Shape, ...]
    scope: tuple[str, ...]  # the block path holding this node
    span: Span
    output_name: str | None = None  # kind "output": the name the spec declares (the node's may carry a suffix)
    shares: str | None = None  # a shared instance's later application: the node whose weights this one uses

    @property
    def op_class(self) -> type[Op]:
        if self.op is None:
            raise TypeError(f"{self.kind} node {self.name!r} has no op")
        return get_op(self.op)

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def output_name(node: IRNode) -> str:
    """The name a network output is declared with (its node's name may carry a suffix)."""
    return node.output_name or node.name


@dataclass(unsafe_hash=True)
class ScopeInfo:  # not frozen, for speed (one or two per block call): see Port
    """A block instance (or a repeat/stage grouping) that nodes are nested in."""

    path: tuple[str, ...]
    kind: ScopeKind
    title: str  # e.g. "inverted_residual(c=24, stride=2, expand=6)"
    block: str | None
    span: Span
    shares: tuple[str, ...] | None = None  # a shared block instance's later application: its first one
    # A block instance's numeric (int, float and bool) parameters and locals by name (parameters
    # first, in declaration order): what the PyTorch backend names a constructor argument after.
    number_values: tuple[tuple[str, int | float], ...] = ()
    # The block's locals defined by one expression at the top of its body (`width = int(c * …)`),
    # by name: what lets generated code compute a size from the block's parameters.
    local_definitions: tuple[tuple[str, Node], ...] = ()
    # What a generated class computes from the spec (the PyTorch backend's symbolic code): a block
    # instance's parameter names in declaration order, the arguments of the call that made it as
    # written (name or None for a positional one, and its expression; empty where a partial layer
    # value supplied some), and the conditions its body tested with their outcome (`if hidden !=
    # in.channels`); a stage-table row's table (the `stages` step) and the row's number from 1.
    params: tuple[str, ...] = ()
    arguments: tuple[tuple[str | None, Node], ...] = ()
    conditions: tuple[tuple[Node, bool], ...] = ()
    # The block's parameters whose default is a literal number or boolean (`stride=1`), with it: the
    # PyTorch backend gives the constructor argument named after one the same default.
    defaults: tuple[tuple[str, bool | int | float], ...] = ()
    table: Node | None = None
    row: int = 0
    # A block instance's lists that `as L[]` appended to directly under it (`block`, `conv`): the
    # PyTorch backend builds each as torchvision does, `layers.append(…)` then `nn.Sequential(*layers)`.
    lists: tuple[str, ...] = ()
    # A block instance's declared outputs (`outputs(c3, c4, c5)`) made inside it: each name with the
    # node (its name relative to the instance's path) and output index that computes it, so that the
    # PyTorch backend names what a call returns as the spec does (`c3, c4, c5 = self.backbone(x)`).
    outputs: tuple[tuple[str, str, int], ...] = ()

    def moved(self, path: tuple[str, ...]) -> ScopeInfo:
        """The same scope at `path` (a block template's scope in a new instance). As
        `dataclasses.replace`, without its per-field work: the instance's `__dict__` copied whole,
        every field but the path as it is."""
        moved = object.__new__(ScopeInfo)
        fields = moved.__dict__
        fields.update(self.__dict__)
        fields["path"] = path
        return moved


def _link(consumers: dict[str, list[str]], name: str, inputs: tuple[Port, ...]) -> None:
    """A new node `name` in the table of consumers: none yet of its own, and listed once under each
    node it reads."""
    consumers[name] = []
    if len(inputs) == 1:
        consumers[inputs[0].node].append(name)
    else:
        for producer in dict.fromkeys([p.node for p in inputs]):
            consumers[producer].append(name)


@dataclass
class IR:
    """The typed facade; passes use these accessors, never the networkx graph directly."""

    network: str
    _graph: nx.MultiDiGraph | None = field(default=None, repr=False)
    _consumers: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _by_kind: dict[str, list[IRNode]] = field(default_factory=lambda: {k: [] for k in NODE_KINDS}, repr=False)
    _nodes: dict[str, IRNode] = field(default_factory=dict, repr=False)
    _in_shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict, repr=False)
    _shapes: dict[tuple[Shape, ...], tuple[Shape, ...]] = field(default_factory=dict, repr=False)
    scopes: dict[tuple[str, ...], ScopeInfo] = field(default_factory=dict)
    # The entries an unlabelled stage table's rows appended to a list outside them (MobileNetV2's
    # `features.1` … `features.17`, rows that are no scopes): entry path → (the table, its row from 1).
    list_rows: dict[tuple[str, ...], tuple[Node, int]] = field(default_factory=dict)
    # The spec's `init` rules, in the order they apply, each with the layers it sets (archdsl.weight_init).
    inits: list[InitRule] = field(default_factory=list)
    # The arguments as written (name or None, and the expression) of each op call, by the call's span
    # (the span of the layers it makes; a block call's are its instances' ScopeInfo.arguments): what
    # the PyTorch backend writes a family's layer from (`conv(divisible(32 * width, 8), 3)`) and tells
    # a block's parameters of equal value apart by (`conv(e3x3, 3)`).
    arguments: dict[Span, tuple[tuple[str | None, Node], ...]] = field(default_factory=dict)
    # Every variable of the network's body that holds a tensor when the body ends (the first where
    # several hold one), with the node and output index of that tensor: what the PyTorch backend
    # names the network's forward values after (`p5 = self.neck32(c5)`). Blocks name their
    # declared outputs alone (ScopeInfo.outputs): a class shared by instances that differ in parts
    # is matched by its forward's names.
    values: tuple[tuple[str, str, int], ...] = ()

    def add_node(self, node: IRNode, in_shapes: tuple[Shape, ...] | None = None) -> IRNode:
        """The constructor path for nodes (:meth:`add_copies` is the same for a block template's
        copies, in bulk). Inputs must already exist (so order is topological); names are unique (the
        elaborator's namer guarantees it). `in_shapes`: the inputs' shapes, where the caller has them
        checked already."""
        name = node.name
        if node.kind not in NODE_KINDS:
            raise ValueError(f"unknown node kind {node.kind!r}")
        nodes = self._nodes
        if name in nodes:
            raise ValueError(f"duplicate node name {name!r}")
        if in_shapes is None:
            in_shapes = self._input_shapes(node)
        known = self._shapes
        in_shapes = known.setdefault(in_shapes, in_shapes)  # like output shapes: one copy of each
        shapes = known.setdefault(node.out_shapes, node.out_shapes)
        if shapes is not node.out_shapes:  # an equal tuple seen before: keep one copy
            node.out_shapes = shapes
        nodes[name] = node
        self._in_shapes[name] = in_shapes
        self._by_kind[node.kind].append(node)
        _link(self._consumers, name, node.inputs)
        self._graph = None
        return node

    def add_copies(self, nodes: list[IRNode], in_shapes: tuple[tuple[Shape, ...], ...]) -> None:
        """Op nodes copied from a block template (archdsl.templates), in order: as :meth:`add_node`
        with each node's input shapes given (`in_shapes`), in one call. Their shapes are this IR's own
        copies already (the template was recorded in this elaboration), so none is interned again."""
        table, kept, ops, consumers = self._nodes, self._in_shapes, self._by_kind["op"], self._consumers
        for node, shapes in zip(nodes, in_shapes, strict=True):
            name = node.name
            if name in table:
                raise ValueError(f"duplicate node name {name!r}")
            table[name] = node
            kept[name] = shapes
            ops.append(node)
            _link(consumers, name, node.inputs)
        self._graph = None

    def _input_shapes(self, node: IRNode) -> tuple[Shape, ...]:
        ins: list[Shape] = []
        for port in node.inputs:
            src = self._nodes[port.node].out_shapes
            if port.index >= len(src):
                raise ValueError(f"{node.name}: input {port} out of range")
            ins.append(src[port.index])
        return tuple(ins)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx view (read-only by convention): nodes by name, edges keyed by input index
        with ``src_port`` and ``shape`` data."""
        if self._graph is None:
            import networkx as nx

            g = nx.MultiDiGraph(network=self.network)
            g.add_nodes_from(self._nodes)
            for node in self._nodes.values():
                for k, port in enumerate(node.inputs):
                    shape = self._nodes[port.node].out_shapes[port.index]
                    g.add_edge(port.node, node.name, key=k, src_port=port.index, shape=shape)
            self._graph = g
        return self._graph

    def node(self, name: str) -> IRNode:
        return self._nodes[name]

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[IRNode]:
        return iter(self._nodes.values())

    def nodes(self, kind: NodeKind | None = None) -> list[IRNode]:
        """Nodes in creation (topological) order, optionally of one kind."""
        return list(self._nodes.values()) if kind is None else list(self._by_kind[kind])

    def last_nodes(self, count: int) -> list[IRNode]:
        """The last `count` nodes made, in creation order (without walking the others)."""
        found = list(islice(reversed(self._nodes.values()), count)) if count > 0 else []
        found.reverse()
        return found

    def inputs(self) -> list[IRNode]:
        return self.nodes("input")

    def outputs(self) -> list[IRNode]:
        return self.nodes("output")

    def input_shapes(self) -> dict[str, Shape]:
        """Each network input's shape, by name, in declaration order."""
        return {n.name: n.out_shapes[0] for n in self.inputs()}

    def output_shapes(self) -> dict[str, Shape]:
        """Each network output's shape, by its declared name, in declaration order."""
        return {output_name(n): n.out_shapes[0] for n in self.outputs()}

    def in_shapes(self, node: IRNode) -> list[Shape]:
        """The shapes of the node's inputs, in order (kept since the node was added: every pass
        asks for them)."""
        return list(self._in_shapes[node.name])

    def in_shapes_key(self, node: IRNode) -> tuple[Shape, ...]:
        """The shapes of the node's inputs as the IR keeps them: one tuple for all nodes whose inputs
        have the same shapes (so a pass may key a cache on it)."""
        return self._in_shapes[node.name]

    def in_shapes_keys(self, nodes: list[IRNode]) -> list[tuple[Shape, ...]]:
        """:meth:`in_shapes_key` of each node."""
        kept = self._in_shapes
        return [kept[node.name] for node in nodes]

    def consumers(self, name: str) -> list[IRNode]:
        """Distinct consumers of any output of `name`, in creation order."""
        return [self._nodes[c] for c in self._consumers[name]]

    def edges(self) -> list[tuple[str, str, int, Shape]]:
        """(producer, consumer, producer port, shape) for every edge, in consumer order."""
        out = []
        for node in self._nodes.values():
            for port in node.inputs:
                out.append((port.node, node.name, port.index, self._nodes[port.node].out_shapes[port.index]))
        return out

    def topological_order(self) -> list[str]:
        """Deterministic topological order recomputed from the graph (creation order breaks ties)."""
        rank = {name: i for i, name in enumerate(self._nodes)}
        import networkx as nx

        return list(nx.lexicographical_topological_sort(self.graph, key=rank.__getitem__))

    def scope_of(self, name: str) -> ScopeInfo | None:
        return self.scopes.get(self._nodes[name].scope)

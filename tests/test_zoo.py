"""Properties every network in specs/ must have (parametrized over the whole zoo)."""

from __future__ import annotations

import json

import pytest

import archdsl.api as api

from .conftest import SPECS, zoo

ZOO = zoo()


def test_zoo_is_not_empty() -> None:
    assert len(ZOO) >= 20


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.arch")), ids=lambda p: p.name)
def test_spec_checks_clean(path: object) -> None:
    assert api.load(path).check() == []  # type: ignore[arg-type]


@pytest.mark.parametrize(("file", "name"), ZOO, ids=[n for _, n in ZOO])
def test_analysis_is_consistent_and_deterministic(file: str, name: str) -> None:
    first = api.load(SPECS / file).network(name).analyze()
    again = api.load(SPECS / file).network(name).analyze()
    assert first.model_dump_json() == again.model_dump_json()
    assert first.params == sum(x.params for x in first.layers) > 0
    assert first.flops == 2 * first.macs
    assert first.outputs and first.inputs
    names = [x.name for x in first.layers]
    assert len(names) == len(set(names))
    json.loads(first.model_dump_json())


@pytest.mark.parametrize(("file", "name"), ZOO, ids=[n for _, n in ZOO])
def test_ir_is_topological_and_typed(file: str, name: str) -> None:
    ir = api.load(SPECS / file).network(name).ir
    order = [n.name for n in ir.nodes()]
    assert ir.topological_order() == order
    seen: set[str] = set()
    for node in ir.nodes():
        assert node.kind in ("input", "op", "output")
        assert all(p.node in seen for p in node.inputs)
        seen.add(node.name)
        if node.kind == "op":
            assert ir.in_shapes(node) and node.out_shapes
    graph = ir.graph  # the networkx view agrees with the node table: one edge per input, keyed by index
    assert graph.number_of_edges() == sum(len(n.inputs) for n in ir.nodes())
    for node in ir.nodes():
        for k, port in enumerate(node.inputs):
            edge = graph.edges[port.node, node.name, k]
            assert edge["shape"] == ir.node(port.node).out_shapes[port.index] and edge["src_port"] == port.index

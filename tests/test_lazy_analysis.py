"""Passes run when their results are first asked for, and a report computes the figures of the
passes that own only defaulted fields (receptive fields, memory) when they are first read: what is
computed is what an eager report holds, and what reads every field (serializing, `==`, copies,
pickling, `model_fields_set`) sees it all."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest

import archdsl.api as api
from archdsl.api import _layer_rows, _report_fields
from archdsl.compiler.passes import Analysis, Pass, passes
from archdsl.compiler.passes.counts import CountPass
from archdsl.compiler.passes.memory import MemoryPass
from archdsl.compiler.passes.receptive import ReceptiveFieldPass

SPEC = """
network branches {
    input image: 3x16x16
    a = image -> conv(4, 3) -> bn -> relu
    b = image -> conv(4, 1, stride=1)
    a + b -> maxpool(2) -> output y
}"""


def _network() -> api.Network:
    return api.load_string(SPEC, file="branches.arch").network()


def _ran(net: api.Network) -> list[str]:
    return [kind.name for kind in (CountPass, ReceptiveFieldPass, MemoryPass) if kind in net.analysis]


def test_a_pass_runs_when_asked_for_after_what_it_requires() -> None:
    net = _network()
    analysis = Analysis(net.ir)
    assert CountPass not in analysis
    memory = analysis[MemoryPass]
    assert CountPass in analysis and ReceptiveFieldPass not in analysis
    assert analysis[MemoryPass] is memory  # once


def test_parameters_and_macs_run_the_count_pass_alone() -> None:
    net = _network()
    report = net.analyze()
    # By hand: conv 3×3 (3 → 4, bias) 112 + bn 8 + conv 1×1 16; MACs k²·C_in·C_out·H·W at 16×16.
    assert (report.params, report.macs) == (4 * 3 * 9 + 4 + 8 + 4 * 3 + 4, 4 * 3 * 9 * 256 + 4 * 3 * 256)
    assert _ran(net) == ["counts"]
    report.receptive_field  # noqa: B018
    assert _ran(net) == ["counts", "receptive_field"]


READS: dict[str, Callable[[Any], Any]] = {
    "model_dump": lambda r: r.model_dump(),
    "json": lambda r: r.model_dump_json(indent=2),
    "fields set": lambda r: sorted(r.model_fields_set),
    "copy": lambda r: copy.deepcopy(r).model_dump(),
    "pickle": lambda r: pickle.loads(pickle.dumps(r)).model_dump(),
    "layers": lambda r: [x.model_dump() for x in r.layers],
    "mac": lambda r: r.mac,
    "peak_activations": lambda r: r.peak_activations,
}


@pytest.mark.parametrize("read", READS, ids=list(READS))
def test_later_figures_are_the_eager_ones(read: str) -> None:
    net = _network()  # a report made with every figure and row at once
    eager = api.Report(**_report_fields(net), layers=[api.LayerReport(**row) for row in _layer_rows(net)])
    eager_values = {name: getattr(eager, name) for name in type(eager).model_fields}
    lazy = _network().analyze()
    assert READS[read](lazy) == READS[read](eager)
    assert {name: getattr(lazy, name) for name in type(lazy).model_fields} == eager_values
    assert lazy == eager and "".join(_network().report_json()) == eager.model_dump_json(indent=2)


@pytest.mark.parametrize("kind", passes(), ids=[kind.name for kind in passes()])
def test_each_pass_names_the_report_fields_it_fills(kind: type[Pass[Any]]) -> None:
    """A report leaves a pass's figures for later by the names the pass declares: they must be what
    it gives, for the network and for every layer (each layer's mapping, at once or one by one)."""
    net = _network()
    ir, analysis = net.ir, net.analysis
    assert sorted(kind.network_report(ir, analysis)) == sorted(kind.network_fields)
    at_once = list(kind.layer_reports(ir, analysis))
    one_by_one = [kind.layer_report(ir, analysis, node) for node in ir.nodes("op")]
    assert at_once == one_by_one and all(sorted(row) == sorted(kind.layer_fields) for row in at_once)

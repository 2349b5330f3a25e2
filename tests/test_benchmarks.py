"""Smoke runs of every script in benchmarks/: each runs end to end at a tiny size and prints its
table, and the agreement it asserts (archdsl's parameters and MACs against the other tools', the
generated modules' against the canonical ones) holds. Times are printed, never asserted: this
machine's speed says nothing about the code. The full-size runs and their results are in
benchmarks/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import (
    analyze_vs_peers,
    cli_latency,
    compiled_graphs,
    eager_ops,
    generated_modules,
    scaling,
    time_split,
)
from benchmarks.common import fit_exponent, table

pytest.importorskip("torch")
pytestmark = pytest.mark.bench


@pytest.fixture(autouse=True)
def _private_parse_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the CLI runs inherit it


def _printed(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out
    print(out)  # shown with -s or on failure
    return out


def test_analyze_vs_peers(capsys: pytest.CaptureFixture[str]) -> None:
    # One peer (always installed with torch), one network at a small input: the table, the counts
    # asserted equal in process and in fresh processes, the whole-process column.
    code = analyze_vs_peers.main(["--networks", "mobilenet_v2", "--input", "3x64x64", "--tools",
                                  "FlopCounterMode (meta)", "--repeat", "1", "--whole-repeat", "1", "--warmup", "0"])
    out = _printed(capsys)
    assert code == 0
    assert re.search(r"mobilenet_v2\s+archdsl\s+spec\s+3,504,872\s", out)
    assert re.search(r"mobilenet_v2\s+FlopCounterMode \(meta\)\s+canonical\s+3,504,872\s+[\d,]+\s+exact\s", out)
    assert "all numbers agree" in out


@pytest.mark.parametrize("target", analyze_vs_peers.NETWORKS, ids=lambda t: t.network)
def test_every_network_compared_is_counted_alike_by_its_peer(target: analyze_vs_peers.Target) -> None:
    # The comparison's premise, for every network of its list at its own input: FlopCounterMode
    # counts what archdsl does. (`inception_v3` with its auxiliary head did not: the peers' eval-mode
    # forward never runs the head.) On the meta device: no weights, no arithmetic.
    meta = next(p for p in analyze_vs_peers.PEERS if p.name == "FlopCounterMode (meta)")
    rows = analyze_vs_peers.measure(target, [meta], 1, 0, 0)
    if isinstance(rows, str) and "not in the zoo yet" in rows:
        pytest.skip(rows)
    assert not isinstance(rows, str), rows
    assert [row.agrees for row in rows] == ["—", "exact"]


def test_time_split(capsys: pytest.CaptureFixture[str]) -> None:
    # One network, one round: each side's stages and total, the counts asserted equal.
    code = time_split.main(["--networks", "mobilenet_v2", "--repeat", "1", "--warmup", "0"])
    out = _printed(capsys)
    assert code == 0
    assert re.search(r"mobilenet_v2\s+archdsl\s+elaborate\s", out)
    assert re.search(r"mobilenet_v2\s+FlopCounterMode \(meta\)\s+count one forward\s", out)
    assert "all counts agree" in out


def test_analyze_vs_peers_lists_networks_the_zoo_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    target = analyze_vs_peers.Target("no_such_network")
    assert "skipped, not in the zoo yet" in str(analyze_vs_peers.measure(target, [], 1, 1, 0))


def test_peers_count_the_generated_module_without_a_canonical_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import archdsl.api as api
    import tests.canonical

    monkeypatch.setattr(tests.canonical, "CANONICAL", [])
    shape = (3, 64, 64)
    model, build = analyze_vs_peers.model_builder("mobilenet_v2", shape)
    assert model == "generated"
    report = api.analyze("mobilenet_v2", input=shape)
    meta = next(p for p in analyze_vs_peers.PEERS if p.name == "FlopCounterMode (meta)")
    assert meta.count(build, shape) == (report.params, report.macs)


def test_cli_latency(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_latency.main(["--repeat", "1", "--warmup", "0", "--networks", "mobilenet_v2", "--imports", "3"])
    out = _printed(capsys)
    assert code == 0
    assert re.search(r"archdsl analyze mobilenet_v2 --json\s+[\d.,]+ m?s", out)
    assert 'python -c "import torch"' in out and "imports of" in out


def test_scaling(capsys: pytest.CaptureFixture[str]) -> None:
    code = scaling.main(["--sizes", "10", "40", "--shapes", "chain", "--repeat", "1", "--fit-from", "10",
                         "--torch-runs", "1"])
    out = _printed(capsys)
    assert code == 0
    assert "## chain: in process" in out and "## chain: whole process" in out
    assert re.search(r"^40\s", out, re.MULTILINE)  # a chain of 40 convolutions: 40 layers
    assert "exponent" in out


@pytest.mark.parametrize("shape", scaling.SHAPES, ids=lambda s: s.name)
def test_scaling_specs_have_the_size_they_claim(shape: scaling.GraphShape) -> None:
    import archdsl.api as api

    report = api.load_string(shape.text(100), f"{shape.name}.arch").network().analyze()
    assert 100 <= len(report.layers) <= 103  # n layers, plus the merge of a wide graph


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread (a loaded CI machine makes two spin against each other), restored after."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_generated_modules(capsys: pytest.CaptureFixture[str]) -> None:
    code = generated_modules.main(["--networks", "mobilenet_v2", "--input", "3x64x64", "--batches", "1",
                                   "--repeat", "1", "--warmup", "0", "--no-compile", "--threads", "1"])
    out = _printed(capsys)
    assert code == 0
    assert re.search(r"mobilenet_v2\s+cpu\s+float32\s+1\s+forward\s+eager", out)
    assert re.search(r"mobilenet_v2\s+cpu\s+float32\s+1\s+forward\+backward\s+eager", out)


@pytest.mark.slow
def test_generated_modules_compiled(capsys: pytest.CaptureFixture[str]) -> None:
    code = generated_modules.main(["--networks", "mobilenet_v2", "--input", "3x64x64", "--batches", "1",
                                   "--repeat", "1", "--warmup", "0"])
    assert code == 0
    assert re.search(r"forward\s+compile", _printed(capsys))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_compiled_graphs_match_the_canonical_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """The generated mobilenet_v2 compiles to what torchvision's compiles to: same ops, same kernels."""
    code = compiled_graphs.main(["--networks", "mobilenet_v2", "--input", "3x64x64", "--batches", "1",
                                 "--modes", "forward"])
    out = _printed(capsys)
    assert code == 0
    row = re.search(r"mobilenet_v2\s+1\s+forward\s+1 / 1\s+inference\s+(\d+) / (\d+)\s+(\d+) / (\d+).*  (\S.*)$",
                    out, re.M)
    assert row is not None, out
    assert row[1] == row[2] and row[3] == row[4], out
    assert row[5] in ("identical", "same statements"), out


def test_fitted_exponent() -> None:
    assert fit_exponent([10, 100, 1000], [3.0, 30.0, 300.0]) == pytest.approx(1.0)
    assert fit_exponent([10, 100, 1000], [1.0, 100.0, 10000.0]) == pytest.approx(2.0)


def test_table_aligns_columns() -> None:
    lines = table(["name", "value"], [["a", "1"], ["bbb", "22"]]).splitlines()
    assert lines == ["name  value", "────  ─────", "a         1", "bbb      22"]


@pytest.mark.usefixtures("one_thread")
def test_eager_ops_of_resnet50_are_torchvisions(capsys: pytest.CaptureFixture[str]) -> None:
    """The generated resnet50 dispatches exactly the aten ops torchvision's does, in eager mode: the
    same sequence of ops on tensors of the same shapes, forward and forward+backward."""
    code = eager_ops.main(["--networks", "resnet50", "--input", "3x64x64", "--batches", "1"])
    out = _printed(capsys)
    assert code == 0
    rows = re.findall(r"^resnet50\s+1\s+(forward|forward\+backward)\s+(\d+) / (\d+)\s+(\S+)$", out, re.M)
    assert [r[0] for r in rows] == ["forward", "forward+backward"], out
    assert all(r[1] == r[2] and r[3] == "identical" for r in rows), out


def test_eager_ops_verdicts() -> None:
    conv, add, add_ = ("aten.conv", ((1, 2),)), ("aten.add", ((1,), (2,))), ("aten.add_", ((1,), (2,)))
    assert eager_ops.compare([conv, add], [conv, add]).verdict == "identical"
    assert eager_ops.compare([add, conv], [conv, ("aten.add", ((2,), (1,)))]).verdict == "same ops"
    v = eager_ops.compare([conv, add_], [conv, add])
    assert (v.verdict, dict(v.only_ours), dict(v.only_theirs)) == ("differs", {add_: 1}, {add: 1})

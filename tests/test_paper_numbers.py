"""Every `expect` line of every network in specs/ holds: CI fails the day a spec or a pass drifts
from a published number (`archdsl verify specs/`)."""

from __future__ import annotations

import time

import pytest

import archdsl.api as api
from archdsl.cli import main
from archdsl.verify import verify_network

from .conftest import SPECS, zoo


@pytest.mark.parametrize(("file", "name"), zoo())
def test_expectations_hold(file: str, name: str) -> None:
    checks = verify_network(api.load(SPECS / file), name)
    failed = [f"{c.file}:{c.line}: {c.quantity} is {c.computed}, expected {c.op} {c.expected} ({c.source})"
              for c in checks if not c.ok]
    assert not failed, "\n".join(failed)


def test_verify_specs_dir_exits_0_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    code = main(["verify", str(SPECS)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "FAILED" not in out
    assert time.perf_counter() - t0 < 60  # no torch: the whole zoo takes seconds


@pytest.mark.parametrize(("file", "name"), zoo())
def test_every_network_states_params_and_macs(file: str, name: str) -> None:
    """Each network carries `expect` lines for its parameters and MACs (from its canonical
    implementation, a paper, or a hand count written out in the spec)."""
    from archdsl.syntax import Attribute, Name

    stated = {t.id if isinstance(t, Name) else t.name for e in api.load(SPECS / file).network(name).expects
              if isinstance(t := e.stmt.target, Name | Attribute)}
    assert {"params", "macs"} <= stated

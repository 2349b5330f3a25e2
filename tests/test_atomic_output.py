"""Every file archdsl writes appears whole or not at all: with a bad spec, `compile -o`,
`diagram -o` and `analyze -o` leave no file, and an existing file keeps its bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from archdsl.cli import main

BAD = "network t {\n    input x: 3x8x8\n    x -> conv(4, 3) -> rleu\n}\n"
GOOD = "network t {\n    input x: 3x8x8\n    x -> conv(4, 3) -> relu -> output y\n}\n"

COMMANDS = [
    ("compile", "out.py", []),
    ("diagram", "out.svg", []),
    ("diagram", "out.dot", []),
    ("analyze", "out.json", ["--json"]),
]


@pytest.mark.parametrize(("command", "target", "extra"), COMMANDS, ids=[c[1] for c in COMMANDS])
def test_bad_spec_writes_nothing(tmp_path: Path, command: str, target: str, extra: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.arch"
    spec.write_text(BAD)
    out = tmp_path / target
    assert main([command, str(spec), "-o", str(out), *extra]) == 1
    assert "rleu" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch"]

    out.write_bytes(b"previous contents")
    assert main([command, str(spec), "-o", str(out), *extra]) == 1
    assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch", target]


@pytest.mark.parametrize(("command", "target", "extra"), COMMANDS, ids=[c[1] for c in COMMANDS])
def test_good_spec_replaces_file(tmp_path: Path, command: str, target: str, extra: list[str]) -> None:
    if command == "compile":
        pytest.importorskip("torch")
    spec = tmp_path / "good.arch"
    spec.write_text(GOOD)
    out = tmp_path / target
    out.write_bytes(b"previous contents")
    assert main([command, str(spec), "-o", str(out), *extra]) == 0
    assert out.read_bytes() != b"previous contents" and out.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.arch", target]

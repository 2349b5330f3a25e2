"""The distribution works outside the repository: a non-editable wheel ships the grammar, the
compiler (as archdsl.compiler) and the zoo (as archdsl.specs), and a user's spec imports zoo blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp.glob("archdsl-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "archdsl/grammar.lark" in names
        assert "archdsl/compiler/passes/counts.py" in names
        assert "archdsl/specs/resnet.arch" in names and "archdsl/specs/common.arch" in names
        assert not any(n.startswith("compiler/") for n in names), "no top-level `compiler` package"
        zf.extractall(site)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "archdsl.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_installed_package_is_used(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run([sys.executable, "-c", "import archdsl.compiler, archdsl; print(archdsl.__file__)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(installed))


def test_list_and_analyze_bundled(installed: Path, tmp_path: Path) -> None:
    listing = _run(installed, tmp_path, "list")
    assert listing.returncode == 0, listing.stderr
    assert "resnet50" in listing.stdout and "efficientnet_b7" in listing.stdout
    result = _run(installed, tmp_path, "analyze", "resnet50")
    assert result.returncode == 0, result.stderr
    assert "25,557,032" in result.stdout


def test_user_spec_imports_zoo_blocks(installed: Path, tmp_path: Path) -> None:
    spec = tmp_path / "mine.arch"
    spec.write_text("import resnet\nnetwork mine { input x: 3x64x64\n x -> bottleneck(16) -> conv_bn_act(8, 3) }\n")
    result = _run(installed, tmp_path, "analyze", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    assert '"mine"' in result.stdout

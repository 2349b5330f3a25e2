"""An editable install works wherever Python runs from — including the clone's parent directory,
where the clone itself (named `archdsl`, as `git clone` names it) is a directory `archdsl` on
`sys.path`. Python takes such a directory for a namespace package; before the build backend's
repair (tools/build_backend.py) that shadowed the installed package and `archdsl.api` failed with
FileNotFoundError for grammar.lark.

The test copies the project as a fresh clone would have it into tmp/archdsl, installs it in
editable mode into a throwaway virtual environment (no network: --no-deps, and the build runs with
this environment's setuptools), and runs a script from tmp/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

# What a clone holds that the build needs (the archdsl/compiler and archdsl/specs symlinks of a
# development checkout are git-ignored: a clone has none).
PROJECT = ("pyproject.toml", "MANIFEST.in", "README.md", "tools", "archdsl", "compiler", "specs")

SCRIPT = """\
import archdsl
import archdsl.api as api
import archdsl.compiler

spec = api.load_string('''
network tiny {
    input image: 3x32x32
    image -> conv(8, 3) -> relu -> avgpool(global) -> flatten -> linear(10) -> output logits
}''')
print(archdsl.__file__)
print(api.__file__)
print(archdsl.compiler.__path__[0])
print(spec.network("tiny").analyze().params)
"""


def _clone(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or os.path.islink(Path(folder, n))}

    dest.mkdir()
    for name in PROJECT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def parent_of_clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the directory holding the clone `archdsl`, the venv's python), the clone installed -e."""
    tmp = tmp_path_factory.mktemp("editable")
    _clone(tmp / "archdsl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, capture_output=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-e", str(tmp / "archdsl")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return tmp, python


def test_api_from_the_clones_parent_directory(parent_of_clone: tuple[Path, Path]) -> None:
    tmp, python = parent_of_clone
    (tmp / "script.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "script.py"], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    package, api, compiler, params = done.stdout.splitlines()
    clone = tmp / "archdsl"
    assert Path(package) == clone / "archdsl" / "__init__.py"  # the package, not the clone's root
    assert Path(api) == clone / "archdsl" / "api.py"
    assert Path(compiler) == clone / "compiler"
    # conv 3→8, 3×3 with bias: 8·27 + 8 = 224; linear 8→10 with bias: 90
    assert int(params) == 224 + 90


def test_a_checkout_on_the_path_still_wins(parent_of_clone: tuple[Path, Path]) -> None:
    """The repair changes nothing where a regular package is found first: PYTHONPATH and a checkout
    in the current directory are used, as with any install."""
    _, python = parent_of_clone
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), "-c", "import archdsl; print(archdsl.__file__)"], cwd=ROOT.parent, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    assert Path(done.stdout.strip()) == ROOT / "archdsl" / "__init__.py"

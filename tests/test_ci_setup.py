"""CI does exactly what the README's set-up says, nothing before it and nothing else: `.ci/run` is
run with `apt-get` and `python` replaced by stubs that log their arguments, and the log must be the
commands of the README's set-up block, in order."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

# Logs its own name and arguments, one invocation per line.
STUB = """#!/bin/sh
printf "%s" "$(basename "$0")" >> "$CI_LOG"
for a in "$@"; do printf " %s" "$a" >> "$CI_LOG"; done
echo >> "$CI_LOG"
"""


def readme_setup() -> list[list[str]]:
    """The README's set-up commands, as argument lists (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert block is not None, "the README's set-up is a ```sh block under '## Set up'"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def test_the_setup_installs_what_the_tests_need() -> None:
    commands = [" ".join(c) for c in readme_setup()]
    assert commands[-1] == "python -m pytest -q -n 2"
    assert 'python -m pip install -e .[dev]' in commands
    assert any(c.startswith("apt-get install") and "graphviz" in c for c in commands)
    assert any(re.match(r"python -m pip install torch==[\d.]+ torchvision==[\d.]+$", c) for c in commands)


@pytest.mark.skipif(shutil.which("bash") is None or os.name == "nt", reason="needs a POSIX shell")
def test_ci_runs_exactly_the_readme_setup(tmp_path: Path) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("apt-get", "python", "sudo", "pip", "pip3"):
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    log = tmp_path / "log"
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "CI_LOG": str(log)}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ran = [line.split(" ") for line in log.read_text().splitlines()]
    assert ran == readme_setup()

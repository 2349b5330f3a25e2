"""The README cannot drift: every command of its ```console blocks and every statement of its
```pycon blocks is run, in order, from a scratch copy of a fresh clone's files, and prints exactly
what the README shows (see tests/readme.py). After a deliberate change of an output, run
`python tools/update_readme.py` and review the diff."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from .readme import README, ROOT, Step, run_all, steps

TEXT = README.read_text(encoding="utf-8")
STEPS = steps(TEXT)


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    """What each step printed, by README line."""
    return {step.line: got for step, got in run_all(TEXT, tmp_path_factory.mktemp("readme"))}


def _missing(step: Step) -> str | None:
    """What a step needs that this machine lacks: graphviz to render, torch for PyTorch."""
    if re.search(r"\barchdsl diagram\b", step.source) and ".dot" not in step.source and shutil.which("dot") is None:
        return "graphviz's dot is not installed"
    if re.search(r"\btorch", step.source + step.expected) and importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    return None


def test_the_readme_has_runnable_examples() -> None:
    kinds = {s.kind for s in STEPS}
    assert kinds == {"console", "pycon"}
    assert sum(s.source.startswith("archdsl ") for s in STEPS) >= 10


def test_every_shown_command_is_run() -> None:
    """A `$ ` or `>>> ` line outside a console/pycon block would be documentation nobody checks."""
    run = {s.line for s in STEPS}
    shown = {i + 1 for i, line in enumerate(TEXT.split("\n")) if line.startswith(("$ ", ">>> "))}
    assert shown - run == set()


def test_examples_are_committed_files() -> None:
    """Files the commands read exist in the repository, as in a fresh clone."""
    for step in STEPS:
        for path in re.findall(r"\b((?:examples|specs)/[\w.*/-]+\.arch)\b", step.source):
            assert list(ROOT.glob(path)), f"README line {step.line}: {path} is not in the repository"


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_step_prints_what_the_readme_shows(step: Step, printed: dict[int, str]) -> None:
    reason = _missing(step)
    if reason:
        pytest.skip(reason)
    assert printed[step.line] == step.expected, (
        f"README.md:{step.line}: `{step.source}` prints something else; if the change is deliberate, run "
        f"`python tools/update_readme.py` and review the diff")


def test_update_rewrites_only_outputs(tmp_path: Path) -> None:
    """The update script's rewrite puts each output under its step and touches nothing else."""
    from .readme import updated

    text = "intro\n```console\n$ echo a\nold\nlines\n$ true\n```\n```pycon\n>>> 1 +\\\n... 1\n3\n```\nend\n"
    (echo, true, add) = steps(text)
    assert (echo.expected, true.expected, add.source) == ("old\nlines\n", "", "1 +\\\n1")
    new = updated(text, [(echo, "a\n"), (true, ""), (add, "2\n")])
    assert new == "intro\n```console\n$ echo a\na\n$ true\n```\n```pycon\n>>> 1 +\\\n... 1\n2\n```\nend\n"

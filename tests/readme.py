"""The README's examples, run as a user runs them: the machinery behind tests/test_readme.py and
tools/update_readme.py.

Two kinds of fenced block are run; every other block is only read:

- ```` ```console ````: a shell session. Each line starting with ``$ `` is a command, run with bash;
  the lines after it, up to the next ``$ `` line or the fence, are exactly what it prints — stdout
  and stderr together, as a terminal shows them.
- ```` ```pycon ````: a Python session. ``>>> `` starts a statement and ``... `` continues it; the
  lines after it are exactly what the interactive interpreter prints (an exception as
  ``Traceback (most recent call last):``, ``  ...`` and its last line).

Everything runs in order in one scratch directory holding copies of the repository's `specs/`,
`examples/` and `docs/`, so later commands see the files earlier ones wrote, and commands refer
to files as a user in a fresh clone would. `archdsl` and `python` there are this interpreter, with
the package under test.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COPIED = ("specs", "examples", "docs")  # what the commands read, as in a fresh clone
PROMPTS = {"console": "$ ", "pycon": ">>> "}


@dataclass
class Step:
    """One command or statement of a block, and what the README says it prints."""

    kind: str  # "console" or "pycon"
    line: int  # 1-based line of the README where the step starts
    source: str  # the command (console) or the statement, `>>> `/`... ` prompts removed (pycon)
    expected: str  # the lines after it, newline-terminated ("" when it prints nothing)
    first: int  # 0-based README line index of the first output line
    end: int  # 0-based index one past the last output line

    @property
    def id(self) -> str:
        head = self.source.splitlines()[0]
        return f"L{self.line}:{head[:60]}"


def steps(text: str) -> list[Step]:
    """Every step of every console and pycon block, in README order."""
    lines = text.split("\n")
    out: list[Step] = []
    kind: str | None = None
    for i, line in enumerate(lines):
        if kind is None:
            if line.strip() in ("```console", "```pycon"):
                kind = line.strip()[3:]
            continue
        if line.strip() == "```":
            kind = None
            continue
        if line.startswith(PROMPTS[kind]):
            source = line[len(PROMPTS[kind]):]
            out.append(Step(kind, i + 1, source, "", i + 1, i + 1))
        elif kind == "pycon" and (line.startswith("... ") or line == "...") and out and out[-1].first == i:
            out[-1].source += "\n" + line[4:]
            out[-1].first = out[-1].end = i + 1
        elif out:
            out[-1].expected += line + "\n"
            out[-1].end = i + 1
    return out


def scratch(dest: Path) -> Path:
    """A working directory like a fresh clone's, and a bin/ with `archdsl` and `python` in it."""
    work = dest / "work"
    work.mkdir(parents=True)
    for name in COPIED:
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    bin_dir = dest / "bin"
    bin_dir.mkdir()
    for name, code in (("archdsl", "from archdsl.cli import run; run()"), ("python", None)):
        shim = bin_dir / name
        args = f'-c "{code}" ' if code else ""
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}"$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return work


def environment(work: Path) -> dict[str, str]:
    bin_dir = work.parent / "bin"
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",  # stdout and stderr in the order they are written, as in a terminal
            "COLUMNS": "120", "LC_ALL": "C.UTF-8"}


def run_console(command: str, work: Path) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=work, env=environment(work), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    return done.stdout


class Session:
    """The interactive interpreter's behaviour, statement by statement, in one namespace."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__"}

    def run(self, source: str, work: Path) -> str:
        buffer = io.StringIO()
        cwd = os.getcwd()
        os.chdir(work)
        try:
            with contextlib.redirect_stdout(buffer):
                try:
                    exec(compile(source + "\n", "<readme>", "single"), self.namespace)
                except Exception as exc:
                    message = str(exc)
                    name = type(exc).__qualname__
                    if type(exc).__module__ not in ("builtins", "__main__"):
                        name = f"{type(exc).__module__}.{name}"
                    buffer.write("Traceback (most recent call last):\n  ...\n"
                                 + (f"{name}: {message}\n" if message else f"{name}\n"))
        finally:
            os.chdir(cwd)
        return buffer.getvalue()


def run_all(text: str, dest: Path) -> list[tuple[Step, str]]:
    """Every step, run in order in a fresh scratch directory under `dest`: (step, what it printed)."""
    work = scratch(dest)
    session = Session()
    results = []
    for step in steps(text):
        got = run_console(step.source, work) if step.kind == "console" else session.run(step.source, work)
        results.append((step, got))
    return results


def updated(text: str, results: list[tuple[Step, str]]) -> str:
    """The README with every step's output replaced by what it printed."""
    lines = text.split("\n")
    for step, got in reversed(results):
        lines[step.first:step.end] = got.removesuffix("\n").split("\n") if got else []
    return "\n".join(lines)


def main() -> int:
    import tempfile

    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="archdsl-readme-") as tmp:
        results = run_all(text, Path(tmp))
    new = updated(text, results)
    changed = [step.id for step, got in results if got != step.expected]
    if new != text:
        README.write_text(new, encoding="utf-8")
    print(f"{len(results)} README step(s) run; {len(changed)} output(s) rewritten" +
          "".join(f"\n  {c}" for c in changed))
    return 0

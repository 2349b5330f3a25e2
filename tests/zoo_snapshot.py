"""Snapshot of everything the zoo produces, to prove a refactoring changes no figure and no byte of
generated code.

    python tests/zoo_snapshot.py dump OUT_DIR         # write the snapshot of this checkout
    python tests/zoo_snapshot.py compare DIR_A DIR_B  # exit 1 and list the files that differ

For every network of every file in specs/ the snapshot holds the outputs of the command line as a
user runs it: ``analyze --json``, ``analyze --layers``, ``compile -o -`` (the PyTorch source) and
``diagram -o -`` (DOT); per file ``verify --json``; and ``list --json`` and ``ops`` once. Commands
run in-process through ``archdsl.cli.main`` (only its public entry point), so the script works on any
version of the package that has the same CLI.
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def _run(argv: list[str]) -> str:
    from archdsl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return f"exit {code}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def dump(target: Path) -> int:
    import archdsl.api as api

    target.mkdir(parents=True, exist_ok=True)
    written = 0

    def put(name: str, argv: list[str]) -> None:
        nonlocal written
        (target / name).write_text(_run(argv), encoding="utf-8")
        written += 1

    put("list.txt", ["list", "--json"])
    put("ops.txt", ["ops"])
    for path in sorted(SPECS.glob("*.arch")):
        spec = str(path.relative_to(ROOT))
        put(f"{path.stem}.verify.txt", ["verify", "--json", spec])
        for net in api.load(path).networks:
            stem = f"{path.stem}.{net}"
            put(f"{stem}.analyze.json.txt", ["analyze", "--json", spec, "--net", net])
            put(f"{stem}.analyze.layers.txt", ["analyze", "--layers", spec, "--net", net])
            put(f"{stem}.compile.py.txt", ["compile", spec, "--net", net, "-o", "-"])
            put(f"{stem}.diagram.dot.txt", ["diagram", spec, "--net", net, "-o", "-"])
    print(f"{written} files in {target}")
    return 0


def compare(a: Path, b: Path) -> int:
    names_a = {p.name for p in a.iterdir()}
    names_b = {p.name for p in b.iterdir()}
    only = sorted(names_a ^ names_b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, sorted(names_a & names_b), shallow=False)
    for name in only:
        print(f"only in {a if name in names_a else b}: {name}")
    for name in [*mismatch, *errors]:
        print(f"differs: {name}")
    same = len(names_a & names_b) - len(mismatch) - len(errors)
    print(f"{same} identical, {len(mismatch) + len(errors)} differ, {len(only)} missing on one side")
    return 1 if only or mismatch or errors else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "dump":
        return dump(Path(argv[1]))
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))

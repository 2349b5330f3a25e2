"""The build backend: setuptools, with one repair to its editable install.

setuptools installs this project in editable mode (``pip install -e .``) through an import hook
appended to ``sys.meta_path``, because the distribution maps ``compiler/`` and ``specs/`` into the
package (``archdsl.compiler``, ``archdsl.specs``). Python's own path finder runs first, and it takes
any directory named ``archdsl`` on ``sys.path`` as a namespace package. So a script run from the
clone's parent directory — where the clone itself is the directory ``archdsl`` — imported the
repository root as ``archdsl``: ``archdsl/__init__.py`` never ran and ``grammar.lark`` was looked
for in the wrong place.

An installed (non-editable) package does not have this problem: a regular package anywhere on
``sys.path`` beats a namespace directory earlier on it. The editable wheel built here restores that
rule: a small finder placed first answers for the project's top-level package — a regular package
found on ``sys.path`` (a checkout on ``PYTHONPATH``, another install) is used as before; a bare
directory of that name is not, and the editable mapping is used instead. Everything else is
setuptools' ``build_meta``, unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools' own)

_HOOK_LINE = re.compile(r"^import (__editable___\w+_finder); \1\.install\(\)\s*$")

_GUARD = '''\
"""Editable install of {packages}: the project's package, wherever Python runs from.

Placed first on sys.meta_path; see tools/build_backend.py in the project for why.
"""

import sys
from importlib.machinery import PathFinder

import {hook} as _hook

PACKAGES = {packages!r}
_EDITABLE = []


class RegularPackageFirst:
    """A regular package on sys.path wins, as with an ordinary install; a bare directory of the
    same name (a namespace portion, e.g. the clone seen from its parent directory) does not."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname not in PACKAGES:
            return None
        found = PathFinder.find_spec(fullname, path)
        if found is not None and found.has_location:
            return found
        for finder in _EDITABLE:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return found


def install():  # idempotent: site may process the same .pth twice
    if RegularPackageFirst in sys.meta_path:
        return
    before = list(sys.meta_path)
    _hook.install()
    _EDITABLE[:] = [f for f in sys.meta_path if f not in before]
    sys.meta_path.insert(0, RegularPackageFirst)
'''


def _record_entry(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _packages(files: dict[str, bytes]) -> tuple[str, ...]:
    top = next((data for name, data in files.items() if name.endswith(".dist-info/top_level.txt")), b"")
    return tuple(line.strip() for line in top.decode().splitlines() if line.strip())


def _repair(wheel: Path) -> None:
    """Route the wheel's `.pth` through the guard module; leave any other kind of editable wheel
    (a static path entry, a link tree) as setuptools built it."""
    with zipfile.ZipFile(wheel) as zf:
        files = {info.filename: zf.read(info) for info in zf.infolist()}
    pth = [n for n, data in files.items() if n.endswith(".pth") and "/" not in n and _HOOK_LINE.match(data.decode())]
    packages = _packages(files)
    if len(pth) != 1 or not packages:
        return
    match = _HOOK_LINE.match(files[pth[0]].decode())
    assert match is not None
    hook = match.group(1)
    guard = f"{hook}_guard"
    files[f"{guard}.py"] = _GUARD.format(hook=hook, packages=packages).encode()
    files[pth[0]] = f"import {guard}; {guard}.install()\n".encode()
    (record,) = [n for n in files if n.endswith(".dist-info/RECORD")]
    lines = [_record_entry(n, data) for n, data in files.items() if n != record]
    files[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    tmp.replace(wheel)


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    name: str = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    _repair(Path(wheel_directory) / name)
    return name

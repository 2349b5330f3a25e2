"""mypy --strict on the package, as it is installed (configuration: pyproject.toml).

The distribution maps the top-level ``compiler/`` and ``specs/`` into the package (``archdsl.compiler``,
``archdsl.specs``), which mypy cannot follow; a development checkout links them into ``archdsl/``
(git ignores the links). This script makes the links when they are missing, then runs mypy with
any arguments given, and exits with its status.

    python tools/typecheck.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    for sub in ("compiler", "specs"):
        link = ROOT / "archdsl" / sub
        if not link.exists() and not link.is_symlink():
            link.symlink_to(Path("..") / sub, target_is_directory=True)
    return subprocess.call([sys.executable, "-m", "mypy", *sys.argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())

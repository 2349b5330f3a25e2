"""Rewrite the outputs of the README's examples: `python tools/update_readme.py`.

Runs every ```console and ```pycon block of README.md as tests/test_readme.py does (see
tests/readme.py) and writes what each step printed under it. Run it after a change that alters an
output, then review the diff: the README must still say what it means.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.readme import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`archdsl import`: a PyTorch model in, its `.arch` spec out.

``archdsl import torchvision.models:resnet50`` prints the spec; ``-o resnet50.arch`` writes it
(atomically); ``--input 3x160x160`` traces at another input shape (default 3×224×224). MODULE_SPEC
is ``package.module:factory``, ``timm:NAME`` or ``path/to/file.py:callable``; the factory is called
without arguments. Torch is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .diagnostics import Span, error


def cmd_import(args: argparse.Namespace) -> int:
    from .api import from_torch
    from .fileio import write_atomic

    text = from_torch(args.spec, args.input or "3x224x224", limits=args.limits)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(args.output, text)
    except OSError as exc:
        raise error("E0607", f"cannot write {ascii(os.fspath(args.output))[:200]}: {exc.strerror}",
                    Span.unknown(args.spec), "choose another file with -o FILE") from None
    blocks = sum(line.startswith("block ") for line in text.splitlines())
    print(f"wrote {args.output}: {blocks} block(s), {len(text.splitlines())} lines")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="write the .arch spec of a PyTorch model (torch.export, round-trip checked)")
    p.add_argument("spec", metavar="MODULE_SPEC",
                   help="package.module:factory, timm:NAME or file.py:callable (called without arguments)")
    p.add_argument("--input", help="input shape to trace at (default 3x224x224)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the spec to FILE (default: stdout)")
    p.set_defaults(func=cmd_import)


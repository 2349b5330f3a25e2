"""`archdsl diagram`: draw a network with graphviz.

``archdsl diagram specs/googlenet.arch -o googlenet.svg`` writes the diagram; the format follows the
extension of ``-o`` (``.svg``, ``.png``, ``.pdf`` or ``.dot``; default ``NETWORK.svg``, ``-o -``
prints DOT). A file of several networks draws the first unless ``--net`` names one. ``--depth N``
draws each block at nesting level N (1: the top-level blocks) as one node labelled with its call,
params and MACs (``--depth 0`` draws every op; the default is the deepest level that stays
legible); ``--direction LR`` lays it out left to right. Writing ``.dot`` needs no graphviz binary;
the other formats need ``dot`` and say how to install it when it is missing. The file is written
atomically: on any error, no file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .cli_common import add_net_args, build_network, each_spec
from .diagnostics import Span, error


def cmd_diagram(args: argparse.Namespace) -> int:
    return max(_diagram(one) for one in each_spec(args))


def _diagram(args: argparse.Namespace) -> int:
    from archdsl.compiler.backends.graphviz_backend import FORMATS, render, to_dot

    from .fileio import write_atomic

    target = args.output
    fmt = "dot" if target == "-" else (Path(target).suffix.lower().lstrip(".") if target else "svg")
    if fmt not in FORMATS:
        raise error("E1102", f"cannot tell the diagram format from `{target}`", Span.unknown("<-o>"),
                    f"end the file name with one of: {', '.join('.' + f for f in FORMATS)}")
    if not args.net:
        from .api import find

        spec, found = find(args.spec, args.limits)
        if not found and len(spec.networks) > 1:  # a file of variants: draw the first, say so
            args.net = spec.networks[0]
            print(f"note: {args.spec} defines {len(spec.networks)} networks; drawing `{args.net}` "
                  f"(choose with --net: {', '.join(spec.networks)})", file=sys.stderr)
    net = build_network(args)
    data = render(to_dot(net, args.depth, args.direction), fmt)
    if target == "-":
        sys.stdout.write(data.decode("utf-8"))
        return 0
    path = write_atomic(target or f"{net.name}.{fmt}", data)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _depth(text: str) -> int:
    if text == "all":
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a block depth (0, 1, 2, … or `all`), got {text!r}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("diagram", help="draw a network (SVG, PNG, PDF or DOT) with graphviz")
    add_net_args(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file; the extension picks the format: .svg (default NETWORK.svg), .png, .pdf, "
                        ".dot; `-` prints DOT")
    p.add_argument("--depth", type=_depth, metavar="N",
                   help="draw each block at nesting level N (1: top-level blocks) as one node; 0 or `all` "
                        "draws every op (default: the deepest level that stays legible)")
    p.add_argument("--direction", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right")
    p.set_defaults(func=cmd_diagram)

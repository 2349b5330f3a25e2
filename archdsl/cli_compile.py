"""`archdsl compile`: write a network as one standalone PyTorch file.

``archdsl compile specs/mobilenet_v2.arch`` writes ``mobilenet_v2.py`` in the current directory;
``-o FILE`` names the file, ``-o -`` prints to stdout, ``--all`` writes every network of the file
(into ``-o DIR`` if given). A file of several networks without ``--net`` gives one module for the
whole file, named after it (``resnet.py``): its block classes once, a class per family of networks
and a function per network (``resnet.resnet50()``), as torchvision's model files are written.
Every source is generated before anything is written, and each file is written atomically: on any
error, no file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .cli_common import add_net_args, each_spec, parse_set
from .diagnostics import Span, error


def cmd_compile(args: argparse.Namespace) -> int:
    from .fileio import write_atomic

    jobs = [job for one in each_spec(args) for job in _generate(one)]
    if args.output == "-":
        if len(jobs) > 1:
            raise error("E0606", f"-o - prints one network, but {len(jobs)} were asked for",
                        Span.unknown("<command line>"), "give one spec (and --net), or write files")
        sys.stdout.write(jobs[0][2].text)
        return 0
    for spec_path, name, gen, path in jobs:
        try:
            write_atomic(path, gen.text)
        except OSError as exc:
            raise error("E0607", f"cannot write {ascii(os.fspath(path))[:200]}: {exc.strerror}",
                        Span.unknown(spec_path), "choose another file with -o FILE") from None
        if name is None:
            noun = "classes" if ", " in gen.class_name else "class"
            print(f"wrote {os.fspath(path)}: {noun} {gen.class_name} (a function per network)")
        else:
            print(f"wrote {os.fspath(path)}: class {gen.class_name} (network {name})")
    return 0


def _generate(args: argparse.Namespace) -> list[tuple[str, str | None, Any, Path]]:
    """(spec, network — None for a whole file's module, generated source, file to write) for one
    SPEC_OR_NAME: every source is generated before anything is written, so on any error no file is."""
    from archdsl.compiler.backends.torch_codegen import generate, generate_family

    from .api import find

    spec, found = find(args.spec, args.limits)
    params = dict(parse_set(s) for s in args.set)
    if args.all:
        if args.net:
            raise error("E0606", "--all and --net exclude each other", Span.unknown("<command line>"),
                        "drop --net to compile every network, or --all to compile one")
        if args.output == "-":
            raise error("E0606", "--all writes one file per network; it cannot print to stdout",
                        Span.unknown("<command line>"), "use -o DIR, or --net NAME with -o -")
        names = spec.networks
    elif found is None and args.net is None and (len(spec.networks) > 1 or (
            len(spec.networks) == 1 and not (params or args.input))):
        # The whole file, one module. A file of one network given --set or --input compiles it so set.
        if params or args.input:
            raise error("E0606", "--set and --input change one network, but the whole file was asked for",
                        Span.unknown("<command line>"), "name the network with --net")
        path = Path(args.output) if args.output and args.output != "-" else Path(f"{Path(spec.file).stem}.py")
        return [(args.spec, None, generate_family([spec.network(name) for name in spec.networks]), path)]
    else:
        names = [spec.resolve_name(args.net or found)]
    jobs: list[tuple[str, str | None, Any, Path]] = []
    for name in names:
        if args.all:
            path = Path(args.output or ".") / f"{name}.py"
        else:
            path = Path(args.output) if args.output and args.output != "-" else Path(f"{name}.py")
        jobs.append((args.spec, name, generate(spec.network(name, params, args.input)), path))
    return jobs


def register(sub: Any) -> None:
    p = sub.add_parser("compile", help="write a network (or a file's networks) as a standalone PyTorch module")
    add_net_args(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: NETWORK.py here, or SPEC.py for a file of several networks without "
                        "--net); `-` prints to stdout; a directory with --all")
    p.add_argument("--all", action="store_true", help="compile every network in the file, one file each")
    p.set_defaults(func=cmd_compile)

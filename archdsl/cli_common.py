"""What every `archdsl` command shares: argument groups, the network a command works on, tables,
and printing diagnostics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .diagnostics import ArchError, Diagnostic, Span, render
from .limits import LIMITS, Limits

if TYPE_CHECKING:
    from .api import Network


def table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["─" * w for w in widths]), *(line(r) for r in rows)])


def short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:37] + "..."


def emit(problems: list[Diagnostic], args: argparse.Namespace) -> None:
    """Diagnostics to stderr: rendered with their source lines, or as JSON under --json."""
    if not problems:
        return
    if getattr(args, "json", False):
        print(json.dumps({"diagnostics": [d.to_json() for d in problems]}, indent=2), file=sys.stderr)
        return
    for d in problems:
        print(render(d), file=sys.stderr)
        print(file=sys.stderr)
    n = sum(d.severity == "error" for d in problems)
    print(f"error: {n} problem(s) found", file=sys.stderr)


def parse_set(text: str) -> tuple[str, str]:
    """`--set key=value` → (key, value text)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise ArchError(Diagnostic("E0605", f"bad --set `{text}`", Span.unknown("<--set>"), "write --set name=value"))
    return key.strip(), value


def build_network(args: argparse.Namespace) -> Network:
    """The network named by SPEC_OR_NAME, --net, --set and --input."""
    from .api import find

    spec, found = find(args.spec, args.limits)
    params = dict(parse_set(s) for s in args.set)
    return spec.network(args.net or found, params, args.input)


def each_spec(args: argparse.Namespace) -> list[argparse.Namespace]:
    """`analyze`, `compile` and `diagram` take several SPEC_OR_NAMEs: the arguments once per spec,
    in order. `-o FILE` names one file, so several specs need `-o -` or none (or --all's directory)."""
    specs: list[str] = args.spec
    output = getattr(args, "output", None)
    if len(specs) > 1 and output not in (None, "-") and args.command != "analyze" and not getattr(args, "all", False):
        raise ArchError(Diagnostic("E0606", f"-o {output} names one file, but {len(specs)} specs were given",
                                   Span.unknown("<command line>"),
                                   "leave out -o (each network gets a file named after it), or give one spec"))
    return [argparse.Namespace(**{**vars(args), "spec": spec}) for spec in specs]


def first_spec(args: argparse.Namespace) -> str:
    """Where to pin a problem that has no position of its own: the (first) spec on the command line."""
    given = getattr(args, "spec", None) or getattr(args, "specs", None) or getattr(args, "targets", None)
    return str(given if isinstance(given, str) else given[0] if given else "<input>")


def add_net_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="+", metavar="SPEC_OR_NAME", help=".arch files, or bundled networks' names")
    p.add_argument("--net", help="the network to use when the file holds several")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a network parameter")
    p.add_argument("--input", help="input shape, e.g. 3x320x320")


def add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits")
    for name in Limits.__dataclass_fields__:
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(LIMITS, name), dest=name,
                       help=f"default {getattr(LIMITS, name):,}")


def limits_of(args: argparse.Namespace) -> Limits:
    return Limits(**{k: getattr(args, k) for k in Limits.__dataclass_fields__ if hasattr(args, k)})

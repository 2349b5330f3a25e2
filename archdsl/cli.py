"""The `archdsl` command line.

Exit codes: 0 clean, 1 problems found (diagnostics, failed expectations), 2 usage or internal
error. Results go to stdout, diagnostics to stderr (as JSON under --json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from .diagnostics import ArchError, Diagnostic, Span, render
from .limits import LIMITS, Limits


def human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["─" * w for w in widths]), *(line(r) for r in rows)])


# ---------------------------------------------------------------------------------------------
# commands


def cmd_check(args: argparse.Namespace) -> int:
    from .api import load, spec_files

    problems: list[Diagnostic] = []
    files = [f for target in args.specs for f in spec_files(target)]
    for path in files:
        try:
            problems.extend(load(path, args.limits).check())
        except ArchError as exc:
            problems.extend(exc.diagnostics)
    _emit(problems, args)
    if not problems and not args.json:
        print(f"ok: {len(files)} file(s) checked")
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    from .api import load, spec_files
    from .loader import zoo_dir, zoo_files

    files = spec_files(args.target) if args.target else zoo_files()
    rows: list[dict[str, Any]] = []
    for path in files:
        spec = load(path, args.limits)
        shown = os.path.relpath(path, zoo_dir()) if not args.target else str(path)
        for name in spec.namespace.own_networks:
            rows.append({"network": name, "file": shown, "parameters": spec.network_parameters(name),
                         "kind": "family" if spec.is_template(name) else "network"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    body = [[r["network"] + (" (family)" if r["kind"] == "family" else ""), r["file"],
             ", ".join(k if v is None else f"{k}={_short(v)}" for k, v in r["parameters"].items())] for r in rows]
    print(table(body, ["network", "file", "parameters"], set()))
    return 0


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:37] + "..."


def _build(args: argparse.Namespace) -> Any:
    from .api import find

    spec, found = find(args.spec, args.limits)
    params = dict(_parse_set(s) for s in args.set)
    return spec.network(args.net or found, params, args.input)


def _parse_set(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise ArchError(Diagnostic("E0605", f"bad --set `{text}`", Span.unknown("<--set>"), "write --set name=value"))
    return key.strip(), value


def cmd_analyze(args: argparse.Namespace) -> int:
    net = _build(args)
    report = net.analyze()
    lines: list[str] = []
    if args.json:
        lines.append(report.model_dump_json(indent=2))
    else:
        _summary(report, args, lines.append)
    text = "\n".join(lines) + "\n"
    if args.output and args.output != "-":
        from .fileio import write_atomic

        write_atomic(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _summary(report: Any, args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    """The readable summary, line by line."""
    emit(f"{report.network}  ({report.file})")
    if report.parameters:
        emit("  parameters: " + ", ".join(f"{k}={_short(v)}" for k, v in report.parameters.items()))
    for name, shape in report.inputs.items():
        emit(f"  input   {name:<10} {fmt_shape(shape)}")
    for name, shape in report.outputs.items():
        emit(f"  output  {name:<10} {fmt_shape(shape)}")
    emit(f"  params   {report.params:>15,}   ({human(report.params)})")
    emit(f"  buffers  {report.buffers:>15,}")
    emit(f"  MACs     {report.macs:>15,}   ({human(report.macs)}; FLOPs = 2 × MACs = {human(report.flops)})")
    emit(f"  layers   {len(report.layers):>15,}")
    if report.peak_activations is not None and report.activations is not None:
        peak, total = report.peak_activations, report.activations
        emit(f"  peak mem {peak.elements:>15,}   (activations live at once; {human(peak.bytes)}B as {report.dtype}, "
              f"all activations {human(total.bytes)}B)")
        emit(f"  mem acc  {report.mac:>15,}   (memory access cost, ShuffleNet V2 §2: elements read and written)")
    for name, rf in report.receptive_field.items():
        emit(f"  field   {name:<10} {_field(rf)}")
    if args.depth is not None:
        rows = [[b.name, b.title, fmt_shape(b.output_shape), f"{b.params:,}", f"{b.macs:,}"]
                for b in report.blocks(args.depth)]
        emit("")
        emit(table(rows, ["block", "what", "output", "params", "MACs"], {3, 4}))
    elif args.layers:
        rows = [[x.name, x.description, fmt_shape(x.output_shape), f"{x.params:,}", f"{x.macs:,}",
                 _field(x.receptive_field, short=True)] for x in report.layers]
        emit("")
        emit(table(rows, ["layer", "op", "output", "params", "MACs", "field"], {3, 4}))


def _field(rf: Any, short: bool = False) -> str:
    """A receptive field for people: `427×427, stride 32, start (0, 0)`, or `global`."""
    if rf is None or isinstance(rf, str):
        return rf or "—"

    def pair(p: list[Any], sep: str = "×") -> str:
        return str(p[0]) if p[0] == p[1] and sep != "×" else f"{p[0]}{sep}{p[1]}"

    text = f"{pair(rf.size)} /{pair(rf.stride, ', ')}"
    if not short:
        text = f"{pair(rf.size)}, stride {pair(rf.stride, ', ')}, start {pair(rf.start, ', ')}"
    return text + (" (misaligned paths)" if rf.misaligned else "")


def cmd_ops(args: argparse.Namespace) -> int:
    from .ops import all_ops

    for op in all_ops():
        aliases = f" (also {', '.join(op.aliases)})" if op.aliases else ""
        print(f"{op.name}{aliases}: {op.doc}")
    return 0


# ---------------------------------------------------------------------------------------------
# plumbing


def _emit(problems: list[Diagnostic], args: argparse.Namespace) -> None:
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


def _add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits")
    for name in Limits.__dataclass_fields__:
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(LIMITS, name), dest=name,
                       help=f"default {getattr(LIMITS, name):,}")


def _add_net(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC_OR_NAME", help="a .arch file, or a bundled network's name")
    p.add_argument("--net", help="the network to use when the file holds several")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a network parameter")
    p.add_argument("--input", help="input shape, e.g. 3x320x320")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archdsl", description="Analyze, compile and draw .arch network specs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="parse and validate specs; report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("list", help="networks in a file or directory (default: the bundled zoo)")
    p.add_argument("target", nargs="?", metavar="SPEC_OR_DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("analyze", help="shapes, parameters and MACs of a network")
    _add_net(p)
    p.add_argument("--layers", action="store_true", help="per-layer table")
    p.add_argument("--depth", type=int, help="per-block table, blocks collapsed below this depth")
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("ops", help="the ops the language knows")
    p.set_defaults(func=cmd_ops)

    for extra in _EXTENSIONS:
        extra(sub, _add_net)
    for sp in sub.choices.values():
        _add_limits(sp)
    return parser


# Later commands (compile, verify, diagram) register themselves here, each from its own module.
_EXTENSIONS: list[Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]] = []
from . import (  # noqa: E402  (each registers its command)
    cli_compile,  # noqa: F401
    cli_diagram,  # noqa: F401
    verify,  # noqa: F401
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    args.limits = Limits(**{k: getattr(args, k) for k in Limits.__dataclass_fields__ if hasattr(args, k)})
    try:
        return int(args.func(args))
    except ArchError as exc:
        _emit(exc.diagnostics, args)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError:
        _emit([Diagnostic("E0003", "input nested too deeply", Span.unknown(getattr(args, "spec", "<input>")),
                          "flatten deeply nested expressions or blocks")], args)
        return 1
    except Exception as exc:  # not the user's fault: say so, never a raw traceback
        if os.environ.get("ARCHDSL_DEBUG"):
            traceback.print_exc()
        where = getattr(args, "spec", None) or (args.specs[0] if getattr(args, "specs", None) else "<input>")
        print(render(Diagnostic("E9999", f"internal error: {type(exc).__name__}: {exc}", Span.unknown(str(where)),
                                "this is a bug in archdsl; please report it with the spec "
                                "(ARCHDSL_DEBUG=1 shows the traceback)")), file=sys.stderr)
        return 2


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()


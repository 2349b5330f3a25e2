"""The `archdsl` command line.

Exit codes: 0 clean, 1 problems found (diagnostics, failed expectations), 2 usage or internal
error. Results go to stdout, diagnostics to stderr (as JSON under --json).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import cli_compile, cli_diagram, cli_import, cli_verify
from .cli_common import add_limits, add_net_args, build_network, each_spec, emit, first_spec, limits_of, short, table
from .diagnostics import ArchError, Diagnostic, Span, render
from .formatting import human
from .formatting import shape_text as fmt_shape


def _human(n: float) -> str:
    return human(n, digits=2, space=True)  # the summary's style: `25.56 M`


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
    emit(problems, args)
    if not problems and not args.json:
        print(f"ok: {len(files)} file(s) checked")
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    from .api import load, spec_files
    from .loader import zoo_dir, zoo_files

    files = list(dict.fromkeys(f for t in args.targets for f in spec_files(t))) if args.targets else zoo_files()
    rows: list[dict[str, Any]] = []
    for path in files:
        spec = load(path, args.limits)
        shown = os.path.relpath(path, zoo_dir()) if not args.targets else str(path)
        for name in spec.namespace.own_networks:
            rows.append({"network": name, "file": shown, "parameters": spec.network_parameters(name),
                         "kind": "family" if spec.is_template(name) else "network"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    body = [[r["network"] + (" (family)" if r["kind"] == "family" else ""), r["file"],
             ", ".join(k if v is None else f"{k}={short(v)}" for k, v in r["parameters"].items())] for r in rows]
    print(table(body, ["network", "file", "parameters"], set()))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    networks = [build_network(one) for one in each_spec(args)]
    for net in networks:  # every problem is found before anything is written
        net.analysis.complete()
    chunks = _json_reports(networks) if args.json else iter([_summaries(networks, args)])
    if args.output and args.output != "-":
        from .fileio import write_atomic

        write_atomic(args.output, chunks)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        for chunk in chunks:
            sys.stdout.write(chunk)
    return 0


def _json_reports(networks: list[Any]) -> Iterator[str]:
    """The reports' JSON (one object, or a list of them), streamed layer by layer."""
    several = len(networks) > 1
    for i, net in enumerate(networks):
        yield ("[\n" if i == 0 else ",\n") if several else ""
        yield from net.report_json()
    yield "\n]\n" if several else "\n"


def _summaries(networks: list[Any], args: argparse.Namespace) -> str:
    lines: list[str] = []
    for i, net in enumerate(networks):
        lines += [""] if i else []
        _summary(net.analyze(), args, lines.append)
    return "\n".join(lines) + "\n"


def _summary(report: Any, args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    """The readable summary, line by line."""
    emit(f"{report.network}  ({report.file})")
    if report.parameters:
        emit("  parameters: " + ", ".join(f"{k}={short(v)}" for k, v in report.parameters.items()))
    for name, shape in report.inputs.items():
        emit(f"  input   {name:<10} {fmt_shape(shape)}")
    for name, shape in report.outputs.items():
        emit(f"  output  {name:<10} {fmt_shape(shape)}")
    emit(f"  params   {report.params:>15,}   ({_human(report.params)})")
    emit(f"  buffers  {report.buffers:>15,}")
    emit(f"  MACs     {report.macs:>15,}   ({_human(report.macs)}; FLOPs = 2 × MACs = {_human(report.flops)})")
    emit(f"  layers   {len(report.layers):>15,}")
    if report.peak_activations is not None and report.activations is not None:
        peak, total = report.peak_activations, report.activations
        emit(f"  peak mem {peak.elements:>15,}   (activations live at once; {_human(peak.bytes)}B as {report.dtype}, "
              f"all activations {_human(total.bytes)}B)")
        emit(f"  mem acc  {report.mac:>15,}   (memory access cost, ShuffleNet V2 §2: elements read and written)")
    for name, rf in report.receptive_field.items():
        emit(f"  field   {name:<10} {_field(rf)}")
    if args.depth is not None:
        rows = [[b.name, b.title, _shapes(b.output_shapes or [b.output_shape]), f"{b.params:,}", f"{b.macs:,}"]
                for b in report.blocks(args.depth)]
        emit("")
        emit(table(rows, ["block", "what", "output", "params", "MACs"], {3, 4}))
    elif args.layers:
        rows = [[x.name, x.description, _shapes(x.output_shapes), "shared" if x.shares else f"{x.params:,}",
                 f"{x.macs:,}", _field(x.receptive_field, short=True)] for x in report.layers]
        emit("")
        emit(table(rows, ["layer", "op", "output", "params", "MACs", "field"], {3, 4}))


def _shapes(shapes: list[list[int]]) -> str:
    """`64×56×56`, or every output of a multi-output layer or block: `4×8×8, 12×8×8`."""
    return ", ".join(fmt_shape(s) for s in shapes)


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
# the command list


def _register_check(sub: Any) -> None:
    p = sub.add_parser("check", help="parse and validate specs; report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def _register_list(sub: Any) -> None:
    p = sub.add_parser("list", help="networks in files or directories (default: the bundled zoo)")
    p.add_argument("targets", nargs="*", metavar="SPEC_OR_DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)


def _register_analyze(sub: Any) -> None:
    p = sub.add_parser("analyze", help="shapes, parameters and MACs of networks")
    add_net_args(p)
    p.add_argument("--layers", action="store_true", help="per-layer table")
    p.add_argument("--depth", type=int, help="per-block table, blocks collapsed below this depth")
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    p.set_defaults(func=cmd_analyze)


def _register_ops(sub: Any) -> None:
    p = sub.add_parser("ops", help="the ops the language knows")
    p.set_defaults(func=cmd_ops)


# Every command, in the order `archdsl --help` lists them; each registers its own subparser.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    _register_check, _register_list, _register_analyze, _register_ops,
    cli_compile.register, cli_diagram.register, cli_verify.register, cli_import.register,
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archdsl", description="Analyze, compile and draw .arch network specs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(sub)
    for sp in sub.choices.values():
        add_limits(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    args.limits = limits_of(args)
    try:
        return int(args.func(args))
    except ArchError as exc:
        emit(exc.diagnostics, args)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError:
        emit([Diagnostic("E0003", "input nested too deeply", Span.unknown(first_spec(args)),
                          "flatten deeply nested expressions or blocks")], args)
        return 1
    except Exception as exc:  # not the user's fault: say so, never a raw traceback
        if os.environ.get("ARCHDSL_DEBUG"):
            import traceback

            traceback.print_exc()
        print(render(Diagnostic("E9999", f"internal error: {type(exc).__name__}: {exc}", Span.unknown(first_spec(args)),
                                "this is a bug in archdsl; please report it with the spec "
                                "(ARCHDSL_DEBUG=1 shows the traceback)")), file=sys.stderr)
        return 2


def run() -> None:
    # A command builds one network's objects and exits; they form no garbage cycles to speak of,
    # and the cyclic collector's default cadence (every 700 allocations) costs about a fifth of
    # the time of a 10⁵-layer network. Collect rarely; the process is short-lived.
    gc.set_threshold(100_000, 50, 100)
    sys.exit(main())


if __name__ == "__main__":
    run()


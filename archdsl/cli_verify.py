"""`archdsl verify`: check every `expect` line against the analysis (default: the bundled zoo)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .cli_common import emit, table
from .diagnostics import ArchError, Diagnostic

if TYPE_CHECKING:
    from .verify import Check


def cmd_verify(args: argparse.Namespace) -> int:
    from .api import load, spec_files
    from .loader import zoo_files
    from .verify import verify_spec

    files = [f for t in args.specs for f in spec_files(t)] if args.specs else zoo_files()
    checks: list[Check] = []
    problems: list[Diagnostic] = []
    for path in dict.fromkeys(files):
        try:
            spec = load(path, args.limits)
        except ArchError as exc:
            problems.extend(exc.diagnostics)
            continue
        names = [args.net] if args.net else None
        if args.net and args.net not in spec.networks:
            continue
        checks.extend(verify_spec(spec, names))
    for c in checks:
        if not c.ok and c.diagnostic is not None:
            problems.extend((c.diagnostic, *c.more))
    failed = sum(not c.ok for c in checks)
    if args.json:
        print(json.dumps({"checks": [c.to_json() for c in checks], "passed": len(checks) - failed,
                          "failed": failed}, indent=2))
    elif checks or not problems:  # a file that cannot be read is its error alone, not "0 of 0 hold"
        rows = _rows(checks)
        if rows:
            print(table(rows, ["network", "quantity", "expected", "computed", "deviation", "source", ""],
                        {3, 4}))
        nets = len({c.network for c in checks})
        print(f"\n{len(checks) - failed} of {len(checks)} expectation(s) hold in {nets} network(s)"
              + (f"; {failed} FAILED" if failed else ""))
    emit(problems, args)
    return 1 if failed or problems else 0


def _rows(checks: list[Check]) -> list[list[str]]:
    return [[c.network, c.quantity, f"{c.op} {c.expected}".strip(), c.computed, c.deviation, c.source,
             "ok" if c.ok else "FAIL"] for c in checks]


def register(sub: Any) -> None:
    p = sub.add_parser("verify", help="check every `expect` line against the analysis (default: the bundled zoo)")
    p.add_argument("specs", nargs="*", metavar="SPEC_OR_DIR")
    p.add_argument("--net", help="only this network")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

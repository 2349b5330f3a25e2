"""Which models `archdsl import` covers: every torchvision classification model and a sample of timm
CNNs through the full round trip (tests/torch_roundtrip.py), one row each, with the reason for
every model not covered (the importer's diagnostic, or the check that failed).

    python benchmarks/import_coverage.py [--only tv|timm] [-k SUBSTRING] [--markdown]

A model is covered when import → analyze gives its parameter count and FlopCounterMode MACs exactly
and the compiled spec loads its state_dict by name (strict) and matches its outputs to 1e-5.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def reason(exc: BaseException) -> str:
    from archdsl.diagnostics import ArchError

    if isinstance(exc, ArchError):
        d = exc.diagnostics[0]
        more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        return f"[{d.code}] {d.message}{more}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["tv", "timm"])
    parser.add_argument("-k", default="", help="only models whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    from tests.import_models import ALL
    from tests.torch_roundtrip import round_trip

    cases = [c for c in ALL if args.k in c.spec and (args.only is None or c.spec.startswith(
        "timm:" if args.only == "timm" else "torchvision"))]
    rows: list[tuple[str, str, str, str, str]] = []
    covered = 0
    for c in cases:
        start = time.perf_counter()
        try:
            out = round_trip(c)
            covered += 1
            rows.append((c.spec, "x".join(map(str, c.input)), "covered",
                         f"{out.params[0]:,} params, {out.macs[0]:,} MACs, {out.blocks} blocks, {out.lines} lines", ""))
        except Exception as exc:  # the reason is the row
            rows.append((c.spec, "x".join(map(str, c.input)), "not covered", "", reason(exc)))
        print(f"{rows[-1][2]:>11}  {c.spec}  ({time.perf_counter() - start:.1f} s)  {rows[-1][4][:150]}",
              file=sys.stderr, flush=True)
        gc.collect()
    if args.markdown:
        print("| model | input | result | figures / reason |")
        print("|---|---|---|---|")
        for spec, shape, status, figures, why in rows:
            print(f"| `{spec}` | {shape} | {status} | {figures or why} |")
    else:
        width = max(len(r[0]) for r in rows)
        for spec, shape, status, figures, why in rows:
            print(f"{spec:<{width}}  {shape:<9}  {status:<11}  {figures or why}")
    print(f"\n{covered} of {len(rows)} models covered")
    return 0


if __name__ == "__main__":
    sys.exit(main())

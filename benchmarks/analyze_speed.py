"""How fast is static analysis, against what it replaces: building the torchvision model and
counting with torch.utils.flop_counter (the reference), measured in the same run.

    python benchmarks/analyze_speed.py [--repeat 5]

Prints, per network, archdsl's parse+elaborate+analyze time, the reference time, and the ratio.
Also times the CLI cold start (`archdsl analyze specs/resnet.arch --net resnet50`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETWORKS = [("resnet.arch", "resnet50"), ("mobilenet_v2.arch", "mobilenet_v2"),
            ("efficientnet.arch", "efficientnet_b0"), ("vgg.arch", "vgg16"), ("googlenet.arch", "googlenet")]


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch
    import torchvision.models as tvm
    from torch.utils.flop_counter import FlopCounterMode

    import archdsl.api as api
    from tests.canonical import CANONICAL

    by_name = {c.network: c for c in CANONICAL}
    print(f"{'network':<18} {'archdsl':>10} {'torch ref':>10} {'ratio':>8}")
    for file, name in NETWORKS:
        def ours(file: str = file, name: str = name) -> None:
            api.load(ROOT / "specs" / file).network(name).analyze()

        def reference(name: str = name) -> None:
            model = by_name[name].build().eval()
            with FlopCounterMode(display=False), torch.no_grad():
                model(torch.randn(1, 3, 224, 224))

        a, r = best(ours, args.repeat), best(reference, max(1, args.repeat // 2))
        print(f"{name:<18} {a * 1e3:>8.1f}ms {r * 1e3:>8.1f}ms {r / a:>7.1f}×")
    del tvm

    cold = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archdsl.cli", "analyze", str(ROOT / "specs/resnet.arch"),
                        "--net", "resnet50"], check=True, capture_output=True)
        cold.append(time.perf_counter() - t0)
    bare = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
    print(f"CLI cold start, analyze resnet50: median {statistics.median(cold) * 1e3:.0f} ms "
          f"(bare interpreter {statistics.median(bare) * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()

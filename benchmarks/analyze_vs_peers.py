"""Static analysis against the tools people reach for today to count a CNN's parameters and MACs.

    python benchmarks/analyze_vs_peers.py [--repeat 5] [--whole-repeat 3] [--networks resnet50 …]

For every network of NETWORKS that the zoo defines, and every tool that is installed, prints side
by side: the parameters and MACs the tool reports, whether they agree with archdsl's (asserted: the
run fails on a disagreement), the median in-process time after a warm-up (interleaved rounds), and
the median whole-process time and peak memory of a fresh process doing the same from nothing
(`archdsl analyze NAME --json` for archdsl).

The peers count the canonical implementation (tests/canonical.py) where there is one, else the
module archdsl generates (`archdsl.build`; the `model` column says which): the speed comparison
holds either way, the agreement is then between archdsl's analysis and its own generated code.
A peer that cannot count a model (a tracer refusing its outputs, say) is named and left out.

What each contender does, timed from nothing to the two numbers:
- archdsl: `archdsl.analyze(name, input=…)`: load and parse the spec, elaborate, run the passes.
- FlopCounterMode (meta): build the model on the meta device (no weights allocated or
  initialized, no arithmetic: its fastest fair use) and run it under torch.utils.flop_counter.
- FlopCounterMode (cpu): the same on CPU with real tensors (weights initialized, a real forward).
- fvcore: FlopCountAnalysis (traces with torch.jit), MACs of its conv/linear/matmul handles.
- ptflops (aten backend): its dispatch-level counter; it adds one op per bias element.
- torchinfo: summary(); its mult-adds add bias and normalization parameters.
Peers are optional imports (`pip install fvcore ptflops torchinfo`): a missing one is listed, not run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    CLI,
    Disagreement,
    checked,
    header,
    interleaved,
    invocation,
    mb,
    median,
    ms,
    paired_ratio,
    ratio,
    run_process,
    table,
)


@dataclass(frozen=True)
class Target:
    network: str  # a zoo network; rows whose network is not in the zoo yet are skipped
    input: str | None = None  # as `--input` takes it; None: the spec's default


# The networks compared; a network appears in the table as soon as the zoo defines it. Inception v3
# without its auxiliary head: the peers count an eval-mode forward, which never runs the head
# (torchvision's InceptionAux runs in training only), while the zoo's `inception_v3` analyzes it as
# the output it is (27.16 M parameters, as Inception_V3_Weights counts them).
NETWORKS = [
    Target("resnet50"),
    Target("mobilenet_v2"),
    Target("inception_v3_noaux"),
    Target("efficientnet_b7", "3x600x600"),
    Target("yolov3", "3x416x416"),
]

Shape = tuple[int, ...]
Counts = tuple[int, int]  # (params, MACs)


# ---------------------------------------------------------------------------------------------
# The peers: each builds the model and counts, as its documentation shows


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # importable when installed
    count: Callable[[Callable[[], Any], Shape], Counts]  # (model builder, input shape per sample) → counts
    same_convention: bool  # MACs exactly archdsl's (conv + linear multiply-accumulates)
    convention: str

    def installed(self) -> bool:
        import importlib.util

        return importlib.util.find_spec(self.module) is not None


def _flop_counter(device: str) -> Callable[[Any, Shape], Counts]:
    def count(build: Callable[[], Any], shape: Shape) -> Counts:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with torch.device(device):
            model = build().eval()
            x = torch.empty(1, *shape) if device == "meta" else torch.randn(1, *shape)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2

    return count


_FVCORE_MAC_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


def _fvcore(build: Callable[[], Any], shape: Shape) -> Counts:
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count  # type: ignore[import-untyped,import-not-found,unused-ignore]

    model = build().eval()
    analysis = FlopCountAnalysis(model, torch.randn(1, *shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()  # fvcore counts one "flop" per multiply-accumulate
    return parameter_count(model)[""], sum(by_op.get(op, 0) for op in _FVCORE_MAC_OPS)


def _ptflops(build: Callable[[], Any], shape: Shape) -> Counts:
    from ptflops import get_model_complexity_info  # type: ignore[import-untyped,import-not-found,unused-ignore]

    model = build().eval()
    macs, params = get_model_complexity_info(model, shape, as_strings=False, print_per_layer_stat=False,
                                             backend="aten")
    return int(params), int(macs)


def _torchinfo(build: Callable[[], Any], shape: Shape) -> Counts:
    import torchinfo

    model = build().eval()
    stats = torchinfo.summary(model, input_size=(1, *shape), verbose=0)
    return int(stats.total_params), int(stats.total_mult_adds)


PEERS = [
    Peer("FlopCounterMode (meta)", "torch", _flop_counter("meta"), True, "flops ÷ 2"),
    Peer("FlopCounterMode (cpu)", "torch", _flop_counter("cpu"), True, "flops ÷ 2"),
    Peer("fvcore", "fvcore", _fvcore, True, "conv + linear handles"),
    Peer("ptflops (aten)", "ptflops", _ptflops, False, "+ bias adds"),
    Peer("torchinfo", "torchinfo", _torchinfo, False, "+ bias and norm params"),
]
PEER_PACKAGES = ["torch", "torchvision", "timm", "fvcore", "ptflops", "torchinfo"]
# A peer whose MACs follow another convention must still land this close, and never below.
CONVENTION_TOLERANCE = 1e-3


def model_builder(network: str, shape: Shape) -> tuple[str, Callable[[], Any]]:
    """("canonical" or "generated", a function building the model the peers count)."""
    from tests.canonical import CANONICAL

    canonical = next((c for c in CANONICAL if c.network == network), None)
    if canonical is not None:
        return "canonical", canonical.build

    def generated() -> Any:
        import archdsl.api as api

        return api.build(network, input=shape)

    return "generated", generated


def _peer(name: str) -> Peer:
    return next(p for p in PEERS if p.name == name)


# ---------------------------------------------------------------------------------------------
# One contender in a fresh process (`--worker`): what the whole-process column times


def worker(peer_name: str, network: str, shape: Shape) -> None:
    warnings.filterwarnings("ignore")
    params, macs = _peer(peer_name).count(model_builder(network, shape)[1], shape)
    print(json.dumps({"params": params, "macs": macs}))


def _worker_command(peer: Peer, network: str, shape: Shape) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", peer.name, network,
            "x".join(map(str, shape))]


def _cli_command(target: Target) -> list[str]:
    return [*CLI, "analyze", target.network, "--json", *(["--input", target.input] if target.input else [])]


# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    network: str
    tool: str
    model: str  # what the tool counted: "spec" (archdsl), "canonical" or "generated"
    counts: Counts
    agrees: str
    inproc: list[float]
    whole: list[float]
    peak_rss: float


def _agreement(peer: Peer, ours: Counts, theirs: Counts, network: str) -> str:
    """'exact', or the MAC difference for a peer of another convention; raises when they disagree."""
    if theirs[0] != ours[0]:
        raise Disagreement(f"{network}: {peer.name} counts {theirs[0]:,} parameters, archdsl {ours[0]:,}")
    diff = theirs[1] - ours[1]
    if peer.same_convention:
        if diff != 0:
            raise Disagreement(f"{network}: {peer.name} counts {theirs[1]:,} MACs, archdsl {ours[1]:,}")
        return "exact"
    if not 0 <= diff <= CONVENTION_TOLERANCE * ours[1]:
        raise Disagreement(f"{network}: {peer.name} counts {theirs[1]:,} MACs ({peer.convention}), archdsl "
                           f"{ours[1]:,}: more than {CONVENTION_TOLERANCE:.1%} apart")
    return f"params; MACs +{diff / ours[1]:.4%} ({peer.convention})"


def _in_process(contenders: dict[str, Callable[[], Counts]], repeat: int, warmup: int
                ) -> tuple[dict[str, list[float]], dict[str, Counts], dict[str, str]]:
    """(times, counts, failures): a peer that raises is recorded in `failures` and not timed."""
    counts: dict[str, Counts] = {}
    failures: dict[str, str] = {}

    def call(name: str, fn: Callable[[], Counts]) -> Callable[[], None]:
        def run() -> None:
            if name in failures:
                return
            try:
                counts[name] = fn()
            except Exception as exc:
                if name == "archdsl":
                    raise
                failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]

        return run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = interleaved({name: call(name, fn) for name, fn in contenders.items()}, repeat, warmup)
    return times, counts, failures


def _whole_process(commands: dict[str, list[str]], counts: dict[str, Counts], network: str, repeat: int,
                   warmup: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """(wall times, peak RSS) of each command as a fresh process; each must print the counts it
    gave in process."""
    whole: dict[str, list[float]] = {name: [] for name in commands}
    peak: dict[str, int] = dict.fromkeys(commands, 0)
    for round_ in range(warmup + repeat):
        for name, cmd in commands.items():
            run = checked(run_process(cmd), cmd)
            data = json.loads(run.stdout)
            if (data["params"], data["macs"]) != counts[name]:
                raise Disagreement(f"{network}: {name} gives {data['params']:,} params, {data['macs']:,} MACs in a "
                                   f"fresh process, {counts[name]} in this one")
            if round_ >= warmup:
                whole[name].append(run.wall_s)
                peak[name] = max(peak[name], run.peak_rss_bytes)
    return whole, peak


def measure(target: Target, peers: Sequence[Peer], repeat: int, whole_repeat: int, warmup: int) -> list[Row] | str:
    """The rows of one network, or why it was skipped."""
    import archdsl.api as api
    from archdsl.diagnostics import ArchError

    try:
        spec, _ = api.find(target.network)
    except ArchError as exc:
        return f"{target.network}: skipped, not in the zoo yet ({exc.diagnostics[0].message})"
    try:
        net = spec.network(target.network, input=target.input)
    except ArchError as exc:
        return f"{target.network}: skipped, not analyzable at this input ({exc.diagnostics[0].message})"
    (shape,) = net.input_shapes.values()
    model, build = model_builder(target.network, shape)

    def ours() -> Counts:
        report = api.analyze(target.network, input=target.input)
        return report.params, report.macs

    contenders = {"archdsl": ours} | {p.name: functools.partial(p.count, build, shape) for p in peers}
    inproc, counts, failures = _in_process(contenders, repeat, warmup)
    for name, why in failures.items():
        print(f"{target.network}: {name} cannot count the {model} model ({why})", flush=True)
    peers = [p for p in peers if p.name not in failures]
    commands = {"archdsl": _cli_command(target)} | {p.name: _worker_command(p, target.network, shape) for p in peers}
    whole, peak = _whole_process(commands, counts, target.network, whole_repeat, warmup)

    rows = [Row(target.network, "archdsl", "spec", counts["archdsl"], "—", inproc["archdsl"], whole["archdsl"],
                peak["archdsl"])]
    for peer in peers:
        try:
            agrees = _agreement(peer, counts["archdsl"], counts[peer.name], target.network)
        except Disagreement as exc:  # shown in its row and failing the run, after the other rows
            agrees = f"NO: {exc}"
        rows.append(Row(target.network, peer.name, model, counts[peer.name], agrees, inproc[peer.name],
                        whole[peer.name], peak[peer.name]))
    return rows


def render(rows: list[Row]) -> str:
    base = {r.network: r for r in rows if r.tool == "archdsl"}
    out = []
    for r in rows:
        ours = base[r.network]
        out.append([
            r.network, r.tool, r.model, f"{r.counts[0]:,}", f"{r.counts[1]:,}", r.agrees,
            ms(median(r.inproc)), ratio(paired_ratio(r.inproc, ours.inproc)) if r is not ours else "1",
            ms(median(r.whole)), ratio(paired_ratio(r.whole, ours.whole)) if r is not ours else "1", mb(r.peak_rss),
        ])
    headers = ["network", "tool", "model", "params", "MACs", "agrees with archdsl", "in-process", "× archdsl",
               "whole process", "× archdsl", "peak RSS"]
    return table(headers, out, right=[False, False, False, True, True, False, True, True, True, True, True])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="counted in-process rounds (default 5)")
    parser.add_argument("--whole-repeat", type=int, default=3, help="counted whole-process rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds before each (default 1)")
    parser.add_argument("--networks", nargs="+", metavar="NET", help="a subset of: "
                        + ", ".join(t.network for t in NETWORKS))
    parser.add_argument("--input", help="input shape for every network, e.g. 3x64x64 (smoke runs)")
    parser.add_argument("--tools", nargs="+", metavar="TOOL", help="a subset of the peers (by name)")
    parser.add_argument("--threads", type=int, help="torch threads, here and in the whole-process runs "
                        "(default: torch's choice; 1 is steadier on a loaded machine)")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "NETWORK", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the whole-process runs inherit it
    if args.worker:
        tool, network, shape = args.worker
        worker(tool, network, tuple(int(d) for d in shape.split("x")))
        return 0

    print(header("static analysis vs counting tools", invocation("analyze_vs_peers.py", argv),
                 PEER_PACKAGES))
    wanted = [p for p in PEERS if args.tools is None or p.name in args.tools]
    peers = [p for p in wanted if p.installed()]
    if missing := [p.name for p in wanted if not p.installed()]:
        print(f"not installed (skipped): {', '.join(missing)}")
    targets = [t for t in NETWORKS if args.networks is None or t.network in args.networks]
    if args.input:
        targets = [Target(t.network, args.input) for t in targets]
    print(f"medians of {args.repeat} in-process and {args.whole_repeat} whole-process runs after {args.warmup} "
          "warm-up round(s); × archdsl: the tool's time over archdsl's, median of round-by-round ratios\n",
          flush=True)
    rows: list[Row] = []
    for target in targets:
        result = measure(target, peers, args.repeat, args.whole_repeat, args.warmup)
        if isinstance(result, str):
            print(result, flush=True)
        else:
            rows += result
            print(f"{target.network}: measured", flush=True)
    if not rows:
        return 1
    print()
    print(render(rows))
    if disagreements := [r for r in rows if r.agrees.startswith("NO")]:
        print(f"\nFAILED: {len(disagreements)} tool(s) disagree with archdsl (rows marked NO)")
        return 1
    print("\nall numbers agree (parameters exactly; MACs exactly, or within "
          f"{CONVENTION_TOLERANCE:.1%} above where a tool's convention adds terms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

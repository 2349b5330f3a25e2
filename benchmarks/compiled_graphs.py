"""What `torch.compile` makes of the generated modules and of the canonical ones, compared op by op.

    python benchmarks/compiled_graphs.py [--networks resnet50 …] [--batches 1 8] [--modes forward …]

Timing cannot tell a 2 % difference on a loaded machine; this can, deterministically. For each network,
the generated module (`archdsl.build`) and the canonical one (tests/canonical.py), with the same weights,
are compiled by the same backend (inductor, default mode, `dynamic=False`, as generated_modules.py times
them) and called in the same sequence (per batch size: forward in eval and inference mode, then
forward+backward in train mode). For each call, and each module, it records what inductor received
and what it wrote:

- the graphs TorchDynamo captured (a graph break or a recompile adds one) and why it recompiled;
- every aten graph inductor compiled (inference, or forward and backward): its ops, per op;
- inductor's output code for each: the fused C++ kernels, the calls to library kernels (convolution,
  matmul, …), the buffers allocated — and whether the code is the same text once names are left out.

Identical output code means the same kernels called in the same order on tensors of the same shapes:
the same work, whatever a stopwatch says on a busy machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Disagreement, header, invocation, table
from benchmarks.generated_modules import add_call_arguments, build_pair


@dataclass
class Compiled:
    """What one aten graph became: its ops and inductor's code for it."""

    kind: str  # "inference" | "forward" | "backward"
    aten: Counter[str]
    code: str = ""

    @property
    def kernels(self) -> int:
        """Inductor's own (fused C++ or Triton) kernels defined in the code."""
        return len(re.findall(r"^\w+ = async_compile\.\w+\(", self.code, re.M))

    @property
    def library_calls(self) -> Counter[str]:
        """Calls out to library kernels (convolution, mm, …) in the code's `call`."""
        calls = re.findall(r"\b(extern_kernels\.\w+|torch\.ops\.\w+\.\w+(?:\.\w+)?)\(", _call_body(self.code))
        return Counter(calls)

    @property
    def buffers(self) -> int:
        """Buffers the code allocates."""
        return len(re.findall(r"\bempty_strided_\w+\(", self.code))

    @property
    def normalized(self) -> str:
        """The code without what only names differ in: comments (source line and module path) and hashes."""
        lines = []
        for line in self.code.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            line = re.sub(r"#.*$", "", line).rstrip()
            lines.append(re.sub(r"\b[0-9a-z]{40,}\b", "<hash>", line))
        return "\n".join(lines)

    @property
    def statements(self) -> Counter[str]:
        """The code's statements with the names of temporaries and pointers left out, counted: equal when two
        codes make the same loads, operations and stores, written in another order (a + b against b + a)."""
        anonymous = re.sub(r"\b(?!cpp_fused|triton_)[A-Za-z_]+\d+(_\d+)?\b", "_", self.normalized)
        return Counter(line.strip() for line in anonymous.splitlines())


def _call_body(code: str) -> str:
    start = code.find("\ndef call(")
    return code[start:] if start >= 0 else code


@dataclass
class Step:
    """One call of the compiled module: a batch size and a mode."""

    batch: int
    mode: str
    dynamo_graphs: int = 0  # graphs Dynamo captured during this call (0: the cached ones were used)
    recompile_reasons: list[str] = field(default_factory=list)
    graphs: list[Compiled] = field(default_factory=list)


def capture(model: Any, shape: tuple[int, ...], batches: Sequence[int], modes: Sequence[str]) -> list[Step]:
    """Compile `model` as generated_modules.py does and record, call by call, what inductor was given and wrote."""
    import torch
    from torch._inductor.compile_fx import compile_fx, compile_fx_inner
    from torch._inductor.graph import GraphLowering

    torch._dynamo.reset()
    steps: list[Step] = []  # the hooks below record into the last, the call under way
    pending: list[Compiled] = []

    def inner(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], **kwargs: Any) -> Any:
        kind = "inference" if kwargs.get("is_inference") else ("backward" if kwargs.get("is_backward") else "forward")
        ops = Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        compiled = Compiled(kind, ops)
        pending.append(compiled)
        steps[-1].graphs.append(compiled)
        return compile_fx_inner(gm, example_inputs, **kwargs)

    def backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
        steps[-1].dynamo_graphs += 1
        return compile_fx(gm, example_inputs, inner_compile=inner)

    def save_output_code(code: str) -> None:
        pending.pop(0).code = code

    compiled_model: Callable[..., Any] = torch.compile(model, backend=backend, dynamic=False)
    reasons_of = torch._dynamo.convert_frame.get_and_maybe_log_recompilation_reasons  # type: ignore[attr-defined]
    with mock.patch.object(GraphLowering, "save_output_code", save_output_code), \
            torch._inductor.config.patch(fx_graph_cache=False), \
            mock.patch.object(torch._dynamo.convert_frame, "get_and_maybe_log_recompilation_reasons",
                              _noting(steps, reasons_of)):
        for batch in batches:
            x = torch.randn(batch, *shape)
            for mode in modes:
                steps.append(Step(batch, mode))
                model.train(mode != "forward")
                if mode == "forward":
                    with torch.inference_mode():
                        compiled_model(x)
                else:
                    model.zero_grad(set_to_none=True)
                    out = compiled_model(x)
                    (next(iter(out.values())) if isinstance(out, dict) else out).sum().backward()
    return steps


def _noting(steps: list[Step], reasons_of: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """Dynamo's function that says why the cached graphs did not fit, recording what it says."""

    def noted(*args: Any, **kwargs: Any) -> list[str]:
        reasons = reasons_of(*args, **kwargs)
        steps[-1].recompile_reasons += [r.splitlines()[0] for r in reasons]
        return reasons

    return noted


def _ops_diff(ours: Counter[str], theirs: Counter[str]) -> str:
    keys = sorted(set(ours) | set(theirs))
    diff = [f"{k} {ours[k]} vs {theirs[k]}" for k in keys if ours[k] != theirs[k]]
    return "; ".join(diff) if diff else "same ops, same counts"


def compare(network: str, ours: list[Step], theirs: list[Step]) -> tuple[list[list[object]], list[str]]:
    rows: list[list[object]] = []
    notes: list[str] = []
    for a, b in zip(ours, theirs, strict=True):
        kinds_a, kinds_b = [g.kind for g in a.graphs], [g.kind for g in b.graphs]
        if kinds_a != kinds_b:
            notes.append(f"{network} batch {a.batch} {a.mode}: graphs {kinds_a} vs {kinds_b}")
        for ga, gb in zip(a.graphs, b.graphs, strict=False):  # a difference in number is noted above
            same = ("identical" if ga.normalized == gb.normalized
                    else "same statements" if ga.statements == gb.statements else "DIFFERENT")
            rows.append([network, a.batch, a.mode, f"{a.dynamo_graphs} / {b.dynamo_graphs}", ga.kind,
                         f"{sum(ga.aten.values())} / {sum(gb.aten.values())}",
                         f"{ga.kernels} / {gb.kernels}",
                         f"{sum(ga.library_calls.values())} / {sum(gb.library_calls.values())}",
                         f"{ga.buffers} / {gb.buffers}", same])
            if ga.aten != gb.aten:
                notes.append(f"{network} batch {a.batch} {a.mode} {ga.kind} aten ops (ours vs theirs): "
                             + _ops_diff(ga.aten, gb.aten))
            if ga.library_calls != gb.library_calls:
                notes.append(f"{network} batch {a.batch} {a.mode} {ga.kind} library calls (ours vs theirs): "
                             + _ops_diff(ga.library_calls, gb.library_calls))
        # The input's name differs (the spec's `image`, torchvision's `x`); anything else is a difference.
        reasons_a = [re.sub(r"tensor '\w+'", "tensor (input)", r.strip()) for r in a.recompile_reasons]
        reasons_b = [re.sub(r"tensor '\w+'", "tensor (input)", r.strip()) for r in b.recompile_reasons]
        if reasons_a != reasons_b:
            notes.append(f"{network} batch {a.batch} {a.mode}: recompiled because {reasons_a} (archdsl) vs "
                         f"{reasons_b} (canonical)")
        elif reasons_a:
            notes.append(f"{network} batch {a.batch} {a.mode}: both recompiled, because {'; '.join(reasons_a)}")
    return rows, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_call_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--dump", type=Path, help="write each graph's output code under this folder")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    print(header("torch.compile: generated modules vs canonical implementations, graph by graph",
                 invocation("compiled_graphs.py", argv), ["torch", "torchvision", "timm"]))
    print("per call: Dynamo graphs captured (archdsl / canonical; 0 = the compiled code was reused), then per aten "
          "graph inductor compiled: aten ops, inductor kernels, library calls, buffers allocated (archdsl / "
          "canonical), and whether the output code is the same text bar comments and hashes (identical), or the "
          "same statements in another order once temporaries and buffers are unnamed (same statements)\n", flush=True)
    rows: list[list[object]] = []
    notes: list[str] = []
    for network in args.networks:
        generated, reference, shape = build_pair(network, args.input)
        ours = capture(generated, shape, args.batches, args.modes)
        print(f"{network}: archdsl compiled", file=sys.stderr, flush=True)
        theirs = capture(reference, shape, args.batches, args.modes)
        print(f"{network}: canonical compiled", file=sys.stderr, flush=True)
        if args.dump:
            for who, steps in (("archdsl", ours), ("canonical", theirs)):
                for s in steps:
                    for i, g in enumerate(s.graphs):
                        path = args.dump / network / who / f"b{s.batch}_{s.mode.replace('+', '_')}_{i}_{g.kind}.py"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(g.code)
        r, n = compare(network, ours, theirs)
        rows += r
        notes += n
    headers = ["network", "batch", "mode", "dynamo graphs", "aten graph", "aten ops", "kernels", "library calls",
               "buffers", "output code"]
    print(table(headers, rows, right=[False, True, False, True, False, True, True, True, True, False]))
    if notes:
        print("\n" + "\n".join(notes))
    if any(not row[1] for row in rows):
        raise Disagreement("no graph captured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

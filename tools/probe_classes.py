"""Build every generated block class with one integer argument changed, and run it.

A generated class is parameterized by its block's parameters, so it must stay right for arguments
the zoo never passes: a class that reads `in_channels` where the spec reads `2 * c`, or keeps a
stride of 2 that every instance happened to have, builds the zoo's networks exactly and breaks
for anything else. This script finds such classes: for each network's module (or, with
`--family`, each zoo file's family module), it records every block class's arguments and input in
one forward on the meta device, then builds each class again with one integer argument doubled,
and again with it 8 larger (the input's channels follow `in_channels`), or one flag negated, and
runs it.

What it prints are candidates to read, not verdicts: a class may refuse other arguments rightly,
as its spec does (a residual sum needs as many channels out as in, an even kernel changes the
size a sum needs, a reshape needs a divisor, a class without `in_channels` takes what its width
says).

    python tools/probe_classes.py [--family] [NAME ...]   # NAME: part of a network's or file's name
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _jobs(family: bool, only: Sequence[str]) -> list[tuple[str, Any, str]]:
    """(network name, network, the source of its module) for each network to probe."""
    sys.path.insert(0, str(ROOT))
    from archdsl.compiler.backends.torch_codegen import generate_family, generate_source
    from archdsl.network import CompiledNetwork
    from tests.conftest import network, zoo

    jobs: list[tuple[str, Any, str]] = []
    files: dict[str, list[str]] = {}
    for file, name in zoo():
        if not only or any(o in (file if family else name) for o in only):
            files.setdefault(file, []).append(name)
    for file, names in files.items():
        nets: list[CompiledNetwork] = [network(file, name) for name in names]
        if family:
            source = generate_family(nets).text
            jobs += [(net.ir.network, net, source) for net in nets]
        else:
            jobs += [(net.ir.network, net, generate_source(net)) for net in nets]
    return jobs


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """A constructor that keeps its arguments on the module, for the probe to build it again."""
    @functools.wraps(init)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        object.__setattr__(self, "_probe_arguments", (args, kwargs))
    return recorded


def probe(name: str, net: Any, source: str, family: bool) -> list[str]:
    """The candidates of one network's module (see the module's docstring)."""
    import torch

    module = types.ModuleType("generated")
    exec(compile(source, "generated.py", "exec"), module.__dict__)
    classes = {k: v for k, v in vars(module).items()
               if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == "generated"}
    for cls in classes.values():
        cls.__init__ = _recording(cls.__init__)  # type: ignore[method-assign]
    build = getattr(module, name, None) if family else next(
        (c for c in classes.values() if (c.__doc__ or "").startswith(f"The network {name}")), None)
    if build is None:
        return [f"{name}: no class or function builds it"]
    with torch.device("meta"):
        model = build().eval()
    seen: dict[type, tuple[tuple[Any, ...], dict[str, Any], tuple[int, ...]]] = {}

    def record(m: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        if m is not model and type(m).__name__ in classes and len(inputs) == 1 and isinstance(inputs[0], torch.Tensor):
            args, kwargs = m.__dict__["_probe_arguments"]
            seen.setdefault(type(m), (args, kwargs, tuple(inputs[0].shape)))

    for m in model.modules():
        m.register_forward_pre_hook(record)
    with torch.no_grad():
        model(*(torch.empty(1, *shape, device="meta") for shape in net.ir.input_shapes().values()))
    found: list[str] = []
    for cls, (args, kwargs, shape) in sorted(seen.items(), key=lambda item: item[0].__name__):
        given = {**dict(zip(inspect.signature(cls).parameters, args, strict=False)), **kwargs}
        for param, value in given.items():
            failure = _changed(cls, given, param, shape) if type(value) in (int, bool) else None
            if failure is not None:
                found.append(f"{name}: {failure}")
    return found


def _changed(cls: type, given: dict[str, Any], param: str, shape: tuple[int, ...]) -> str | None:
    """How `cls` fails with `param` doubled, or 8 larger, or negated (a flag); None where it runs
    every way (or refuses the arguments as it is built)."""
    import torch

    value = given[param]
    for changed in ([not value] if type(value) is bool else [value * 2, value + 8] if value >= 2 else []):
        arguments = {**given, param: changed}
        size = (shape[0], changed, *shape[2:]) if param == "in_channels" else shape
        try:
            with torch.device("meta"):
                block = cls(**arguments).eval()
        except Exception:  # refused as it is built: the class says why
            continue
        try:
            with torch.no_grad():
                block(torch.empty(*size, device="meta"))
        except Exception as e:  # any failure is a candidate
            written = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
            return f"{cls.__name__}({written}) on {list(size)}: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="store_true", help="probe each zoo file's family module")
    parser.add_argument("names", nargs="*", help="only networks (files, with --family) whose name holds one")
    args = parser.parse_args(argv)
    count = 0
    for name, net, source in _jobs(args.family, args.names):
        for line in probe(name, net, source, args.family):
            print(line, flush=True)
            count += 1
    print(f"{count} candidate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

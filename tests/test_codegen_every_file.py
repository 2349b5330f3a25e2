"""`archdsl compile FILE` without --net, for every spec file in specs/ that has networks: the module
for the whole file (block classes once, a class per family, a function per network) is valid
Python, ruff-clean, byte-identical from run to run, and each network's function builds what
`--net NAME` compiles — the same state_dict names and shapes and, with the weights copied across,
the same outputs to 1e-6.

The files are discovered, not listed, so a new spec is covered the day it is added. Most are
marked slow; the default run keeps a few small ones (see DEFAULT_RUN).
"""

from __future__ import annotations

import ast
import functools
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import archdsl.api as api
from archdsl.compiler.backends.torch_codegen import build_module, generate_family, generate_source
from archdsl.diagnostics import ArchError

from .conftest import ROOT, SPECS, network, zoo
from .small_input import small_input
from .test_codegen_family import _random  # random weights and BN statistics, one recipe for both files

torch = pytest.importorskip("torch")

# The default run keeps three small files, each a few seconds of CPU (user time above a run that
# selects no test: dcgan 3.5 s, nin 3.2 s, inception_v3_modules 4.5 s, measured with
# `/usr/bin/time python -m pytest -q -p no:cacheprovider tests/test_codegen_every_file.py -k FILE`).
# The others run under `-m slow`: up to minutes a file (efficientdet.arch: 10 networks, 14 s a
# generation, D7x run at 1536x1536); a new spec file is slow until measured.
DEFAULT_RUN = frozenset({"dcgan.arch", "nin.arch", "inception_v3_modules.arch"})


def _files() -> list[str]:
    """Every spec file that defines a network (a file of blocks alone has nothing to compile)."""
    return sorted({file for file, _ in zoo()})


def _cost(file: str) -> list[pytest.MarkDecorator]:
    return [] if file in DEFAULT_RUN else [pytest.mark.slow]


FILES = [pytest.param(file, marks=_cost(file)) for file in _files()]
NETWORKS = [pytest.param(file, name, marks=_cost(file)) for file, name in zoo()]


@functools.cache
def _source(file: str) -> str:
    return generate_family([network(file, name) for f, name in zoo() if f == file]).text


@functools.cache
def _module(file: str) -> ModuleType:
    module = ModuleType(f"family_{Path(file).stem}")
    exec(compile(_source(file), f"<{file}>", "exec"), module.__dict__)
    return module


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(t.shape) for k, t in model.state_dict().items()}


@pytest.mark.parametrize("file", FILES)
def test_whole_file_module(file: str, tmp_path: Path) -> None:
    source = _source(file)
    ast.parse(source)
    fresh = api.load(SPECS / file)  # elaborated again, not the cached networks
    assert generate_family([fresh.network(name) for name in fresh.networks]).text.encode() == source.encode()
    if shutil.which("ruff") is not None:
        (tmp_path / file.replace(".arch", ".py")).write_text(source)
        for config in (["--config", str(ROOT / "pyproject.toml")], ["--isolated"]):
            res = subprocess.run(["ruff", "check", "--no-cache", *config, str(tmp_path)],
                                 capture_output=True, text=True)
            assert res.returncode == 0, res.stdout + res.stderr
    module = _module(file)
    for name in fresh.networks:
        with torch.device("meta"):  # shapes only: no initialization to pay for
            ours = getattr(module, name)()
            alone = build_module(network(file, name))  # what `--net NAME` compiles
        assert _shapes(ours) == _shapes(alone), name
        assert list(ours.state_dict()) == list(alone.state_dict()), name  # the same order too


def _code(source: str) -> str:
    """A generated module's code without its comments and docstrings (which name the input size)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def _inputs(file: str, name: str) -> dict[str, tuple[int, ...]]:
    """The network's inputs: a single image input reduced (small_input) where nothing in the code
    `--net` compiles depends on its size (a reshape to the grid size does), else the spec's own."""
    full = network(file, name).input_shapes
    if len(full) == 1 and (small := small_input(file, name)) != next(iter(full.values())):
        try:
            reduced = network(file, name, small)
        except ArchError:
            return full
        if _code(generate_source(reduced)) == _code(generate_source(network(file, name))):
            return {next(iter(full)): small}
    return full


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _tensors(out[k])]
    return [t for item in out for t in _tensors(item)]


@pytest.mark.parametrize(("file", "name"), NETWORKS)
def test_function_computes_what_net_compiles(file: str, name: str) -> None:
    """Both modules at a small input, the --net one's random weights loaded into the function's by
    name (strict): every output agrees to 1e-6."""
    torch.manual_seed(0)
    ours = getattr(_module(file), name)().eval()
    inputs = _inputs(file, name)
    reduced = inputs != network(file, name).input_shapes
    alone = _random(build_module(network(file, name, next(iter(inputs.values())) if reduced else None)))
    ours.load_state_dict(alone.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(1, *shape, generator=g) for shape in inputs.values()]
    with torch.no_grad():
        want, got = _tensors(alone(*x)), _tensors(ours(*x))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-6, rtol=0), (a - b).abs().max().item()


LIST_PARAMETER = """
# A family whose stage widths are a list parameter (a test)
network net(widths=[8, 16], classes=10) {
    input image: 3x16x16
    image -> conv(widths[0], 3, pad=1) as conv1 -> relu -> conv(widths[1], 3, stride=2) as conv2 -> relu
        -> avgpool(global) -> flatten -> linear(classes) as fc -> output logits
}
network net_wide = net(widths=[16, 32])
"""


def test_a_list_parameter_left_at_its_default_is_an_argument() -> None:
    """A list-valued parameter that a network leaves at the spec's default (SSD's feature sizes,
    YOLO's anchors, this family's widths) is passed by each function, never a keyword default;
    each function's module computes what --net compiles."""
    file = api.load_string(LIST_PARAMETER)
    source = generate_family([file.network(name) for name in file.networks]).text
    assert "def __init__(self, widths: list[int], classes: int = 10) -> None:" in source
    assert "    return Net(widths=[8, 16], **kwargs)" in source
    assert "    return Net(widths=[16, 32], **kwargs)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "<family>", "exec"), namespace)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for name in file.networks:
        alone = build_module(file.network(name)).eval()
        ours = namespace[name]().eval()
        ours.load_state_dict(alone.state_dict(), strict=True)
        with torch.no_grad():
            assert torch.equal(ours(x), alone(x)), name

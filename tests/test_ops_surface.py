"""What a user sees of every op, parametrized over the registry: its line in `archdsl ops`, its box
in diagrams, its code in generated modules, and attribute errors in the language's own words."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from archdsl.cli import main
from archdsl.compiler.backends.graphviz_backend import _STYLE, to_dot
from archdsl.ops import AttrError, all_ops, get_op

from .conftest import ROOT
from .op_reference import spec_network

OPS = [op.name for op in all_ops()]


@pytest.mark.parametrize("name", OPS)
def test_archdsl_ops_lists_it(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    op = get_op(name)
    aliases = f" (also {', '.join(op.aliases)})" if op.aliases else ""
    assert f"{name}{aliases}: {op.doc}" in lines


# One small network that uses each op added for detection, segmentation and face networks.
EVERY_NEW_OP = """
network every_op {
    input image: 16x12x12
    input z: [100]
    a = image -> l2norm(20) as l2norm -> layernorm as ln -> linear(32, dim=0) as fc -> layer_scale(1e-6) as ls
              -> maxout(2)
    b = a -> l2pool(3, stride=1, pad=1) -> crop(2, size=[8, 8])
    c = crop(a, b, offset=[1, 3])
    concat(b, c) -> permute(1, 2, 0) -> reshape(-1, 8) -> output heads
    z -> linear(1024) as project -> view(16, 8, 8) -> reorg -> space_to_depth(2) -> pixel_unshuffle
      -> reshape(-1) -> output code
    z -> l2norm -> output embedding
}
"""
NEW_OPS = ["l2norm", "layernorm", "linear", "layer_scale", "maxout", "l2pool", "crop", "permute", "reshape",
           "reorg", "space_to_depth", "pixel_unshuffle"]


def test_each_new_op_draws_with_its_category_and_label() -> None:
    net = spec_network(EVERY_NEW_OP)
    dot = to_dot(net, depth=None)
    for node in net.ir.nodes("op"):
        op = node.op_class
        fill = _STYLE.get(op.category, _STYLE["layer"]).get("fillcolor")
        line = next(x for x in dot.splitlines() if f'label="{op.describe(node.attrs)}' in x)
        assert fill is None or fill in line, (node.name, line)
    assert {n.op for n in net.ir.nodes("op")} >= set(NEW_OPS)


def test_each_new_op_compiles_runs_and_is_lint_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from archdsl.compiler.backends.torch_codegen import build_module, generate_source

    net = spec_network(EVERY_NEW_OP)
    src = generate_source(net)
    assert src == generate_source(spec_network(EVERY_NEW_OP))  # deterministic
    module = build_module(net).eval()
    out = module(torch.randn(2, 16, 12, 12), torch.randn(2, 100))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == net.output_shapes
    # Bare parameters where the op sits directly in the class, named by the node (torchvision's and
    # timm's way); no helper class is emitted for them.
    names = dict(module.named_parameters())
    assert names["l2norm"].shape == (16,) and names["ls"].shape == (32,)
    assert "class L2Norm" not in src and "class LayerScale" not in src and "class Reorg" in src
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    path = tmp_path / "every_op.py"
    path.write_text(src)
    res = subprocess.run(["ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# --- attribute errors: every attribute of every op, given a value of the wrong kind

_PYDANTIC_WORDS = re.compile(r"Input should|validation|Tuple|Field required|valid (integer|number|tuple)|"
                             r"literal|constrained|\(\d+, \d+", re.IGNORECASE)


# Values no attribute accepts in that form: a nested list, an unknown word, a too-long list.
WRONG: list[Any] = [[[1]], "nonsense", [1, 2, 3, 4, 5]]
# Valid values for the required attributes, so that the error is the one about the field under test.
REQUIRED = {"out": 2, "kernel": 3, "size": 2, "factor": 0.5, "groups": 2, "p": 2, "sections": 2, "shape": [4],
            "dims": [0]}


CASES = [(op.name, f) for op in all_ops() for f in op.Attrs.model_fields]


@pytest.mark.parametrize(("name", "field"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_bad_attribute_values_are_explained_in_the_languages_words(name: str, field: str) -> None:
    op = get_op(name)
    for value in WRONG:
        given = {k: REQUIRED[k] for k, v in op.Attrs.model_fields.items() if v.is_required()}
        given[field] = value
        try:
            op.validate(given)
        except AttrError as exc:
            assert exc.field == field, exc.message
            assert exc.message.startswith(f"`{name}`: bad value "), exc.message
            assert " expected " in exc.message or ": every dimension" in exc.message, exc.message
            assert not _PYDANTIC_WORDS.search(exc.message), exc.message
        else:  # only attributes that take lists of any length accept the long list
            assert isinstance(value, list) and len(value) == 5, (name, field, value)


def test_the_value_is_shown_as_written() -> None:
    with pytest.raises(AttrError) as exc:
        get_op("conv").validate({"out": 8, "kernel": [1, 2, 3]})
    # once: "bad value (1, 2, 3) for `kernel`: Tuple should have at most 2 items after validation, not 3"
    assert exc.value.message == "`conv`: bad value [1, 2, 3] for `kernel`: expected a positive integer or [h, w]"
    with pytest.raises(AttrError) as exc:
        get_op("conv").validate({"out": 8, "kernel": 3, "pad": [1, 2, 3]})
    # once: "`conv` needs the attribute `pad`"
    assert exc.value.field == "pad" and "[top, bottom, left, right], same or valid" in exc.value.message

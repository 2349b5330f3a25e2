"""PyTorch code generation: determinism, lint-clean output, hostile names, the CLI and load_weights."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.cli import main
from archdsl.compiler.backends.torch_codegen import (
    RESERVED_ATTRS,
    Namespace,
    build_module,
    generate_family,
    generate_source,
    py_str,
    safe_comment,
)
from archdsl.diagnostics import ArchError
from archdsl.ops import py_number

from .conftest import ROOT, SPECS, network, zoo
from .small_input import buildable

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("file", "name"), [
    # EfficientDet's larger models take seconds each to generate; D0 stands for them by default.
    pytest.param(f, n, marks=pytest.mark.slow) if f == "efficientdet.arch" and n != "efficientdet_d0" else (f, n)
    for f, n in zoo()])
def test_deterministic(file: str, name: str) -> None:
    first = generate_source(buildable(file, name))
    again = generate_source(api.load(SPECS / file).network(name))
    assert first.encode() == again.encode()
    ast.parse(first)


def test_ruff_clean(tmp_path: Path) -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    for file, name in zoo():
        try:
            net = network(file, name)
        except ArchError:
            continue  # a family without defaults
        (tmp_path / f"{name}.py").write_text(generate_source(net))
    for config in (["--config", str(ROOT / "pyproject.toml")], ["--isolated"]):
        res = subprocess.run(["ruff", "check", "--no-cache", *config, str(tmp_path)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_long_returned_tuple_is_wrapped() -> None:
    """A multi-output block returning five long names (a BiFPN layer) gets black's parentheses."""
    from archdsl.compiler.backends.python_source import WIDTH, wrap

    names = [f"fnode_{i}_after_combine_output" for i in range(5)]
    lines = wrap(f"return {', '.join(names)}", "        ")
    assert all(len(line) <= WIDTH and "noqa" not in line for line in lines)
    (ret,) = ast.parse("\n".join(line[8:] for line in lines)).body
    assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple)
    assert [t.id for t in ret.value.elts] == names  # type: ignore[attr-defined]


def test_long_unpacking_targets_are_wrapped() -> None:
    """A multi-output block's results with long names (YOLOv4's backbone taps) still fit the line."""
    from archdsl.compiler.backends.python_source import WIDTH, wrap

    targets = [f"backbone_stages_{i}_conv_transition_mish" for i in (2, 3, 4)]
    lines = wrap(f"{', '.join(targets)} = self.backbone(image)", "        ")
    assert all(len(line) <= WIDTH for line in lines)
    tree = ast.parse("\n".join(line[8:] for line in lines))
    (assign,) = tree.body
    assert isinstance(assign, ast.Assign) and isinstance(assign.targets[0], ast.Tuple)
    assert [t.id for t in assign.targets[0].elts] == targets  # type: ignore[attr-defined]


def test_a_wrapped_parenthesized_expression_stays_an_expression() -> None:
    """`2 / (a * b)` broken inside its parentheses keeps no trailing comma (which would make it a
    tuple: EfficientDet's fan-out of a grouped conv, `std=math.sqrt(2 / (…))`); a call's and a
    one-item tuple's items keep theirs."""
    from archdsl.compiler.backends.python_source import wrap

    conv = "m.get_submodule('blocks.0.0.conv_dw')"
    long = f"{conv}.weight.size(0) // {conv}.groups * {conv}.weight[0][0].numel()"
    for line, expected in [(f"x = f(y, std=math.sqrt(2 / ({long})))", ast.Call),
                           (f"x = f(({long},))", ast.Call)]:
        lines = wrap(line, "        ")
        assert len(lines) > 1
        source = "\n".join(ln[8:] for ln in lines)
        assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(line)), source
        assert isinstance(ast.parse(source).body[0].value, expected)  # type: ignore[attr-defined]


def test_reserved_attrs_cover_torch() -> None:
    from torch import nn

    public = {n for c in (nn.Module, nn.Sequential, nn.ModuleDict) for n in dir(c) if not n.startswith("_")}
    public |= {n for n in vars(nn.Module()) if not n.startswith("_")}
    assert public <= RESERVED_ATTRS


def test_standalone_import(tmp_path: Path) -> None:
    """The compiled file needs torch only."""
    code = generate_source(network("mobilenet_v2.arch", "mobilenet_v2"))
    (tmp_path / "mobilenet_v2.py").write_text(code)
    probe = ("import sys, torch, mobilenet_v2; m = mobilenet_v2.MobilenetV2().eval(); "
             "y = m(torch.randn(1, 3, 64, 64)); assert y.shape == (1, 1000); "
             "assert not [k for k in sys.modules if k.startswith('archdsl')]")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_state_dict_mirrors_node_names() -> None:
    net = network("resnet.arch", "resnet18")
    keys = set(build_module(net).state_dict())
    for node in net.ir.nodes("op"):
        if node.op in ("conv", "bn", "linear"):
            assert f"{node.name}.weight" in keys


# ---------------------------------------------------------------------------------------------
# hostile names

HOSTILE_LABELS = ["__import__", "os", "exec", "self", "class", "import", "def", "forward", "training", "keys",
                  "torch", "nn", "F", "super", "lambda", "match", "_", "_modules", "x" * 10_000, "None", "True",
                  "block1-0", "a-b-c"]


def _tiny(label: str = "conv1", net: str = "tiny", inp: str = "image") -> str:
    return f"""
network {net} {{
    input {inp}: 3x8x8
    {inp} -> conv(4, 3) as {label} -> relu as {label}_act -> avgpool(global) -> flatten -> linear(2) as head
          -> output logits
}}"""


def _compiles_safely(text: str) -> None:
    """Either a clean diagnostic, or code that parses, builds and runs."""
    try:
        net = api.load_string(text).network()
    except ArchError as exc:
        assert exc.diagnostics and exc.diagnostics[0].code.startswith("E")
        return
    try:
        src = generate_source(net)
    except ArchError as exc:
        assert exc.diagnostics[0].code == "E0701"
        assert len(str(exc)) < 1000
        return
    tree = ast.parse(src)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    assert imported <= {"torch", "nn", "torch.nn.functional"}
    assert all(n.module == "torch" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    module = build_module(net)
    assert module(torch.randn(2, 3, 8, 8)).shape == (2, 2)
    names = {n.name for n in net.ir.nodes("op") if n.op == "conv"}
    assert {k.removesuffix(".weight") for k in module.state_dict() if k.endswith(".weight")} >= names


@pytest.mark.parametrize("label", HOSTILE_LABELS, ids=lambda s: s[:12])
def test_hostile_labels(label: str) -> None:
    _compiles_safely(_tiny(label=label))


@pytest.mark.parametrize("name", ["torch", "nn", "F", "self", "exec", "os", "Tiny", "class", "x" * 5000])
def test_hostile_network_and_input_names(name: str) -> None:
    _compiles_safely(_tiny(net=name))
    _compiles_safely(_tiny(inp=name))


@pytest.mark.parametrize("label", ["ѕelf", "со nv", "a'b", 'a"b', "a\nb", "a.b", "1x"])
def test_unparseable_labels_are_diagnostics(label: str) -> None:
    _compiles_safely(_tiny(label=label))


def test_dashed_label_names_the_submodule() -> None:
    """`as block1-0` (torchvision's RegNet names) is the submodule `block1-0`: the state_dict key."""
    module = build_module(api.load_string(_tiny(label="block1-0")).network())
    assert "block1-0.weight" in module.state_dict()
    assert module(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def test_reserved_label_is_a_clean_diagnostic() -> None:
    net = api.load_string(_tiny(label="forward")).network()
    with pytest.raises(ArchError) as exc:
        generate_source(net)
    d = exc.value.diagnostics[0]
    assert d.code == "E0701" and "forward" in d.message and d.span.line > 1


@pytest.mark.parametrize("text", ["a\nb", "x'\"\\", "ѕelf", "\x00\u202e", "x" * 10_000])
def test_escaping_helpers(text: str) -> None:
    assert ast.literal_eval(py_str(text)) == text
    assert py_str(text).isascii()
    comment = safe_comment(text)
    assert "\n" not in comment and '"' not in comment and "\\" not in comment and len(comment) <= 100


EDGE_FLOATS = [0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324, 2.2250738585072014e-308, 0.1, 1 / 3, 1e16,
               1.7976931348623157e308, -1.7976931348623157e308]
EDGE_INTS = [0, -1, 2**53 + 1, 2**1023, 10**4299, -(10**4300), 2**20_000]


@pytest.mark.parametrize("value", EDGE_FLOATS + EDGE_INTS, ids=lambda v: f"{v:.3g}" if isinstance(v, float)
                         else f"int{v.bit_length()}")
def test_py_number_round_trips(value: float) -> None:
    text = py_number(value)
    back = eval(compile(text, "<literal>", "eval"), {"__builtins__": {}})
    assert type(back) is type(value)
    if isinstance(value, float):
        assert back.hex() == value.hex()  # bit for bit, the sign of zero included
    else:
        assert back == value
    ast.parse(f"f(x * {text}, k={text}, t=({text},))")  # valid wherever the ops put a number


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_py_number_refuses_what_has_no_literal(value: float) -> None:
    with pytest.raises(ValueError, match="no Python literal"):
        py_number(value)


@pytest.mark.parametrize("text", ["5e-324", "1e-300", "1.7976931348623157e308", "0.0", "-0.0", "0.1"])
def test_numbers_reach_the_built_module_exactly(text: str) -> None:
    """A number in the spec is the same float, bit for bit, in the module `compile` writes. LeakyReLU
    takes its slope as a float32 when it runs ("value cannot be converted to type float without
    overflow" beyond it), so a slope beyond float32 is refused at the spec instead."""
    in_float32 = abs(float(text)) <= 3.4028234663852886e38
    slope = text if in_float32 else "0.1"
    spec = (f"network edge {{\n    input image: 3x4x4\n"
            f"    image -> leaky({slope}) -> bn(momentum={text}) -> lrn(alpha={text}) -> output y\n}}")
    module = build_module(api.load_string(spec).network())
    want = float(text).hex()
    assert module.leaky.negative_slope.hex() == float(slope).hex()
    assert module.bn.momentum.hex() == want
    assert module.lrn.alpha.hex() == want
    if not in_float32:
        with pytest.raises(ArchError, match=r"for `slope`: expected a number from 0 to 3\.40282e"):
            api.load_string(spec.replace("leaky(0.1)", f"leaky({text})")).network()


def test_namespace() -> None:
    ns = Namespace({"Bottleneck"})
    got = [ns.create(c) for c in ["torch", "relu", "relu", "0.conv", "class", "__import__", "ѕelf", "Bottleneck",
                                  "x" * 10_000, ""]]
    assert len(set(got)) == len(got)
    for name in got:
        assert name.isidentifier() and name.isascii() and not name.startswith("_") and len(name) <= 100
    assert got[:5] == ["torch_2", "relu", "relu_2", "v_0_conv", "class_2"]
    # names ruff refuses as ambiguous (E741), like Inception-v4's reduction_a(k, l, m, n)
    assert [Namespace().create(c) for c in ("l", "O", "I", "k")] == ["l_2", "O_2", "I_2", "k"]


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_compile_default_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A network named compiles to NETWORK.py; a spec file, to the file's module, SPEC.py."""
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "mobilenet_v2"]) == 0
    assert "mobilenet_v2.py" in capsys.readouterr().out
    assert (tmp_path / "mobilenet_v2.py").read_text() == generate_source(network("mobilenet_v2.arch", "mobilenet_v2"))
    assert main(["compile", str(SPECS / "mobilenet_v2.arch")]) == 0
    assert "mobilenet_v2.py" in capsys.readouterr().out
    assert (tmp_path / "mobilenet_v2.py").read_text() == generate_family(
        [network("mobilenet_v2.arch", "mobilenet_v2")]).text


def test_cli_compile_stdout_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "resnet18", "--set", "classes=10", "--input", "3x32x32", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert "classes = 10" in out and "nn.Linear(512, 10)" in out and "3x32x32" in out
    assert list(tmp_path.iterdir()) == []


def test_cli_compile_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(SPECS / "alexnet.arch"), "--all", "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{n}.py" for n in
                                                                   sorted(api.load(SPECS / "alexnet.arch").networks)]


def test_cli_compile_error_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "bad.arch"
    spec.write_text(_tiny(label="forward"))
    assert main(["compile", str(spec)]) == 1
    assert main(["compile", str(spec), "-o", "out.py"]) == 1
    assert "E0701" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch"]
    # --set changes one network, but without --net the whole file was asked for
    assert main(["compile", str(SPECS / "resnet.arch"), "--set", "classes=10"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch"]


# ---------------------------------------------------------------------------------------------
# load_weights


def test_load_weights_names_the_first_misfit() -> None:
    from archdsl.compiler.backends.weights import WeightMappingError, load_weights

    small = build_module(api.load(SPECS / "resnet.arch").network("resnet18", input=(3, 32, 32)))
    other = build_module(api.load(SPECS / "resnet.arch").network("resnet18", params={"classes": 10},
                                                                   input=(3, 32, 32)))
    with pytest.raises(WeightMappingError, match=r"`fc\.weight`.*1000×512.*10×512"):
        load_weights(small, other)
    sd = {k: v for k, v in other.state_dict().items() if not k.startswith("fc.")}
    with pytest.raises(WeightMappingError, match="no counterpart"):
        load_weights(small, {f"renamed.{k}": v for k, v in sd.items()})
    assert load_weights(other, small.state_dict() | {k: v for k, v in other.state_dict().items()
                                                      if k.startswith("fc.")}) == "name"


def test_long_generator_argument_is_wrapped_as_black_does() -> None:
    """A run of equal layers in a family's stage (`*(conv for _ in range(1, 3))`) too long for a line
    breaks before its `for`, and takes no trailing comma (`(x for _ in y,)` is a syntax error)."""
    from archdsl.compiler.backends.python_source import WIDTH, wrap

    conv = "nn.Conv2d(1024, 2048, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)"
    lines = wrap(f"self.layer = nn.Sequential(nn.ReLU(), *({conv} for _ in range(1, 3)))", " " * 8)
    ast.parse("\n".join(line[8:] for line in lines))
    assert all(len(line) <= WIDTH and "noqa" not in line for line in lines)
    assert [line.strip() for line in lines[2:6]] == ["*(", conv, "for _ in range(1, 3)", "),"]

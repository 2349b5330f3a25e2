"""`archdsl import` on small models (tests/import_toys.py): the round trip, the spec's shape, the
diagnostics, the command line and `api.from_torch`. Fast: no torchvision or timm model is built."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from archdsl.diagnostics import ArchError, render

from .torch_roundtrip import Case, round_trip

torch = pytest.importorskip("torch")

TOYS = Path(__file__).resolve().parent / "import_toys.py"


def toy(name: str) -> str:
    return f"{TOYS}:{name}"


@functools.cache
def imported(name: str) -> str:
    from archdsl.compiler.importer import import_factory

    return import_factory(toy(name), (3, 32, 32)).text


@pytest.mark.parametrize("name", ["toy_resnet", "mixed", "dashed_stages"])
def test_round_trip(name: str) -> None:
    out = round_trip(Case(toy(name), (3, 32, 32)))
    assert out.params[0] == out.params[1] and out.macs[0] == out.macs[1]


def test_toy_resnet_reads_like_a_resnet_spec() -> None:
    """One block for the one block class, its parameters named after the constructor's arguments
    (`planes`, `stride`, `downsample`), the stages as a stage table, labels equal to state_dict keys."""
    text = imported("toy_resnet")
    body = text[text.index("block "):]
    assert body == """\
block basic(planes, stride=1, downsample=false) {
    out = in -> conv(planes, 3, stride=stride, bias=false) as conv1 -> bn as bn1 -> relu
             -> conv(planes, 3, bias=false) as conv2 -> bn as bn2
    identity_ = in -> if downsample {
                          conv(planes, 1, stride=stride, bias=false) as downsample.0 -> bn as downsample.1
                      }
    out + identity_ -> relu
}

network toy_resnet {
    input image: 3x32x32
    image -> conv(16, 3, bias=false) as conv1 -> bn as bn1 -> relu
          -> stages(n, planes, stride, downsample) as layer {
                 2, 16, 1, false
                 2, 32, 2,  true
                 2, 64, 2,  true
             } repeat n as i: basic(planes, stride=(i == 0 ? stride : 1), downsample=(i == 0 and downsample))
          -> avgpool(global) -> flatten -> linear(10) as fc -> output logits
}
"""


def test_dashed_module_names_are_labels_and_runs_repeat() -> None:
    """RegNet's `block1-0`, `block1-1`, … are the labels (state_dict keys); a run of them is a repeat
    labelled by its index, `as block1.block1-{i}`."""
    text = imported("dashed_stages")
    assert "repeat 3 as i { conv_unit(8, stride=1) } as block1.block1-{i}" in text
    assert "conv_unit(16, stride=2) as block2.block2-0" in text


def test_output_is_deterministic() -> None:
    from archdsl.compiler.importer import import_factory

    assert import_factory(toy("toy_resnet"), (3, 32, 32)).text == imported("toy_resnet")


def test_without_constructor_arguments_names_come_from_attributes() -> None:
    """An already built module (no constructor recorded): flags still come from its submodule slots."""
    import archdsl.api as api

    from .import_toys import ToyResNet

    text = api.from_torch(ToyResNet(), "3x32x32")
    assert "block basic(" in text and "if downsample {" in text
    net = api.load_string(text).network("toyresnet")
    assert net.analyze().params == sum(p.numel() for p in ToyResNet().parameters())


def test_unmappable_op_names_module_and_op_at_its_line() -> None:
    from archdsl.compiler.importer import import_factory

    with pytest.raises(ArchError) as info:
        import_factory(toy("unmappable"), (3, 16, 16))
    (d,) = info.value.diagnostics
    assert d.code == "E1202"
    assert "`body` (Cumulative)" in d.message and "`aten.cumsum`" in d.message
    line = next(i for i, text in enumerate(TOYS.read_text().splitlines(), 1) if "torch.cumsum(" in text)
    assert (Path(d.span.file).resolve(), d.span.line) == (TOYS, line)
    assert "torch.cumsum(self.conv(x), dim=1)" in render(d)


def test_an_in_place_write_into_a_view_is_refused() -> None:
    """`y[:, :4] += z` changes y too; an add on a split would silently compute something else."""
    from archdsl.compiler.importer import import_factory

    with pytest.raises(ArchError) as info:
        import_factory(toy("view_write"), (3, 8, 8))
    (d,) = info.value.diagnostics
    assert "writes in place into a view" in d.message and d.span.line > 1


def test_export_failure_is_a_diagnostic() -> None:
    from archdsl.compiler.importer import import_factory

    with pytest.raises(ArchError) as info:
        import_factory(toy("toy_resnet"), (3, 8))  # a 2-D input: Conv2d needs C×H×W
    assert info.value.diagnostics[0].code == "E1201"
    assert "torch.export cannot trace `toy_resnet` at 3x8" in info.value.diagnostics[0].message


def test_parameters_forward_never_uses_are_reported() -> None:
    from torch import nn

    from archdsl.compiler.importer import import_module

    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.spare = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    with pytest.raises(ArchError) as info:
        import_module(WithSpare(), (3, 8, 8))
    d = info.value.diagnostics[0]
    assert d.code == "E1203" and "`spare`" in d.message


@pytest.mark.parametrize(("spec", "message"), [
    ("no_colon", "is not MODULE:FACTORY"),
    ("archdsl_no_such_module:build", "importing `archdsl_no_such_module` failed: ModuleNotFoundError"),
    ("math:no_such_function", "`math` has no callable `no_such_function`"),
    ("missing/file.py:build", "no file `missing/file.py`"),
    ("math:pi", "`math` has no callable `pi`"),
    ("math:floor", "building the model failed: TypeError"),
])
def test_bad_module_spec(spec: str, message: str) -> None:
    from archdsl.compiler.importer import import_factory

    with pytest.raises(ArchError) as info:
        import_factory(spec, (3, 8, 8))
    assert info.value.diagnostics[0].code == "E1205"
    assert message in info.value.diagnostics[0].message


def test_cli_writes_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archdsl.cli import main

    out = tmp_path / "toy.arch"
    assert main(["import", toy("toy_resnet"), "--input", "3x32x32", "-o", str(out)]) == 0
    assert re.fullmatch(r"wrote .*toy\.arch: 1 block\(s\), \d+ lines\n", capsys.readouterr().out)
    assert out.read_text() == imported("toy_resnet")


def test_cli_reports_unmappable_models(capsys: pytest.CaptureFixture[str]) -> None:
    from archdsl.cli import main

    assert main(["import", toy("unmappable"), "--input", "3x16x16"]) == 1
    err = capsys.readouterr().err
    assert "error[E1202]: cannot import `body` (Cumulative): `aten.cumsum` has no archdsl op" in err
    assert re.search(r"--> \S*tests/import_toys\.py:\d+:\d+", err) and "Traceback" not in err
    assert main(["import", toy("toy_resnet"), "--input", "3xx"]) == 1  # checked before anything is built
    assert "bad input shape `3xx`" in capsys.readouterr().err


def test_cli_limits_apply_to_the_imported_spec(capsys: pytest.CaptureFixture[str]) -> None:
    from archdsl.cli import main

    assert main(["import", toy("toy_resnet"), "--input", "3x32x32", "--max-nodes", "5"]) == 1
    assert "error[E0518]: the network exceeds 5 nodes" in capsys.readouterr().err

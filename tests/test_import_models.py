"""`archdsl import` on real models: every torchvision classification model and a sample of timm CNNs
(tests/import_models.py) through the round trip of tests/torch_roundtrip.py — parameters and
FlopCounterMode MACs exact, the compiled spec loading the model's state_dict by name (strict) and
matching its outputs to 1e-5. A model known not to import must fail with the importer's diagnostic
(never a traceback), whose reason is written next to it. Most run under `-m slow`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from archdsl.diagnostics import ArchError

from .import_models import ALL, TORCHVISION
from .torch_roundtrip import Case, round_trip

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parent.parent

# The default run's share: small models, a few CPU seconds each, one per importer feature: fire
# modules' concat, stage tables (resnet18), inverted residuals (mobilenet_v2), channel split and
# shuffle (shufflenet), dashed submodule names (regnet), SE and hard-swish through timm's TF padding.
FAST = {"torchvision.models:squeezenet1_1", "torchvision.models:resnet18", "torchvision.models:mobilenet_v2",
        "torchvision.models:shufflenet_v2_x0_5", "torchvision.models:regnet_x_400mf",
        "timm:tf_mobilenetv3_small_100"}

# Models that do not import, and the words of the diagnostic that says why (benchmarks/import_coverage.py
# prints the full table).
NOT_COVERED: dict[str, str] = {
    **{f"torchvision.models:{n}": "has no archdsl op" for n in TORCHVISION if n.startswith(("vit_", "swin", "maxvit"))},
    "timm:ecaresnet26t": "(Conv1d): `aten.conv1d` has no archdsl op",  # ECA's gate
    "timm:skresnet18": "(SelectiveKernelAttn): `aten.sum` has no archdsl op",
    "timm:resnest14d": "(SplitAttn): `aten.sum` has no archdsl op",
    "timm:nf_resnet26": "(ScaledStdConv2d)",  # weight standardization: the weight is computed in forward
    "timm:fastvit_t8": "`aten.sub` has no archdsl op",
    "timm:efficientvit_b0": "(LiteMLA)",
}


def _params() -> list[object]:
    out = []
    for c in ALL:
        marks = [] if c.spec in FAST else [pytest.mark.slow]
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_import_round_trip(case: Case) -> None:
    if case.spec not in NOT_COVERED:
        out = round_trip(case)
        assert out.params[0] == out.params[1] and out.macs[0] == out.macs[1]
        return
    with pytest.raises(ArchError) as info:
        round_trip(case)
    assert all(re.fullmatch(r"E12\d\d", d.code) for d in info.value.diagnostics), info.value
    assert any(NOT_COVERED[case.spec] in d.message for d in info.value.diagnostics), info.value


def test_the_torchvision_list_is_complete() -> None:
    import torchvision

    assert sorted(TORCHVISION) == sorted(torchvision.models.list_models(module=torchvision.models))
    assert len(ALL) >= 100


def _code(text: str) -> list[str]:
    """Lines of spec code: comments, blank lines and `expect` lines left out."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"#.*", "", line).rstrip()
        if line.strip() and not line.strip().startswith("expect "):
            lines.append(line)
    return lines


def test_imported_resnet50_is_as_short_as_the_hand_written_spec() -> None:
    """At most twice specs/resnet.arch's ResNet part (its blocks, family and variants, without
    comments and expectations), and one block per module class: Bottleneck."""
    from archdsl.compiler.importer import import_factory

    hand = (ROOT / "specs" / "resnet.arch").read_text()
    hand_part = _code(hand[:hand.index("# ResNeXt (Xie")])
    text = import_factory("torchvision.models:resnet50", (3, 224, 224)).text
    imported = _code(text)
    assert sum(map(len, imported)) <= 2 * sum(map(len, hand_part))
    assert len(imported) <= 2 * len(hand_part)
    assert re.findall(r"^block (\w+)\(", text, re.M) == ["bottleneck"]
    assert "stages(" in text and "repeat n as i: bottleneck(" in text


def test_one_block_per_module_class_where_instances_agree() -> None:
    """Every block of an imported model stands for one module class; a class gets further blocks
    only when its instances differ in structure (the importer says so in its notes)."""
    from archdsl.compiler.importer import import_factory

    result = import_factory("torchvision.models:squeezenet1_1", (3, 64, 64))
    assert re.findall(r"^block (\w+)\(", result.text, re.M) == ["fire"]
    assert result.notes == []


def test_the_importer_imports_neither_the_api_nor_the_cli() -> None:
    """The importer sits in the compiler layer: it may use the core (ops, diagnostics), never the
    layers above it."""
    for path in sorted((ROOT / "compiler" / "importer").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                assert not n.startswith(("archdsl.api", "archdsl.cli")), f"{path.name} imports {n}"

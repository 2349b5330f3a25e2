"""The command line, as a user runs it: exit codes, JSON shapes, overrides, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archdsl.cli import main

from .conftest import SPECS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(SPECS / "resnet.arch"), "--net", "resnet50", "--json")
    assert code == 0
    report = json.loads(out)
    for key in ("network", "inputs", "outputs", "params", "buffers", "macs", "flops", "layers"):
        assert key in report
    assert report["inputs"] == {"image": [3, 224, 224]}
    assert report["outputs"] == {"logits": [1000]}
    assert report["flops"] == 2 * report["macs"]
    layer = report["layers"][0]
    assert {"name", "op", "output_shape", "params", "macs"} <= set(layer)
    assert layer["name"] == "conv1" and layer["output_shape"] == [64, 112, 112]


def test_analyze_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(SPECS / "mobilenet_v2.arch"), "--layers")
    assert code == 0 and "features.2.conv.0.0" in out  # torchvision's name: stage 2's first expansion conv
    for depth, first in (("1", ["features", "avgpool"]), ("2", ["features.0", "features.1", "features.2"])):
        code, out, _ = run(capsys, "analyze", str(SPECS / "mobilenet_v2.arch"), "--depth", depth)
        assert code == 0
        lines = out.splitlines()
        rows = [line.split()[0] for line in lines[lines.index(next(x for x in lines if x.startswith("───"))) + 1:]]
        assert rows[:len(first)] == first


def test_file_with_one_network_needs_no_net(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "analyze", str(SPECS / "alexnet.arch"))[0] == 0
    code, _, err = run(capsys, "analyze", str(SPECS / "resnet.arch"))
    assert code == 1 and "choose one with --net" in err


def test_bundled_network_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", "resnet50", "--json")
    assert code == 0 and json.loads(out)["params"] == 25_557_032


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0
    by_name = {r["network"]: r for r in rows}
    assert {"resnet50", "vgg16_bn", "efficientnet_b7", "shufflenet_v2_x0_5", "googlenet"} <= set(by_name)
    assert by_name["resnet50"]["file"] == "resnet.arch"
    assert by_name["resnet50"]["parameters"]["layers"] == [3, 4, 6, 3]
    assert by_name["resnet50"]["parameters"]["block"] == "bottleneck"


def test_check_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "check", str(SPECS))[0] == 0
    bad = tmp_path / "bad.arch"
    bad.write_text("network t {\n    input x: 3x8x8\n    x -> conv(4, 3) -> relu(7)\n}\n")
    code, _, err = run(capsys, "check", str(bad))
    assert code == 1
    assert f"{bad}:3:29" in err and "^" in err and "takes no attributes" in err


def test_set_and_input_match_torchvision_at_those_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """--set width=1.4 --input 3x320x320 changes params/MACs exactly as torchvision's EfficientNet
    built with width_mult=1.4 (torchvision efficientnet.py `_efficientnet_conf`), measured live."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    code, out, _ = run(capsys, "analyze", str(SPECS / "efficientnet.arch"), "--net", "efficientnet_b0",
                       "--set", "width=1.4", "--set", "depth=1.2", "--input", "3x320x320", "--json")
    assert code == 0
    report = json.loads(out)
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=1.4, depth_mult=1.2)
    with torch.device("meta"):
        model = EfficientNet(setting, 0.2, last_channel=last).eval()
        x = torch.empty(1, 3, 320, 320)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    assert report["params"] == sum(p.numel() for p in model.parameters())
    assert report["macs"] == counter.get_total_flops() // 2
    assert report["inputs"]["image"] == [3, 320, 320]


def test_bad_set_is_a_diagnostic(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", "resnet50", "--set", "widht=2")
    assert code == 1 and "did you mean `width_per_group`?" not in err and "no parameter `widht`" in err


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_analysis_does_not_import_torch() -> None:
    result = _fresh(
        "import sys\n"
        "from archdsl.cli import main\n"
        f"assert main(['analyze', {str(SPECS / 'resnet.arch')!r}, '--net', 'resnet50', '--layers']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'graphviz' not in sys.modules\n"
    )
    assert result.returncode == 0, result.stderr


# What `analyze --json` never needs (issue 17: its start-up is most of its time): the torch and
# graphviz backends, networkx, Lark once the parse cache holds the file, the other commands'
# implementations, and a pydantic validator (the first one built runs pydantic's plugin loader;
# plain attribute values are checked without one).
# pydantic: `--json` streams the report from the plain declaration of its fields (archdsl/report.py);
# the models, pydantic and its compiled core (a third of the command's start-up) are not needed.
NOT_IMPORTED_BY_ANALYZE = ("torch", "graphviz", "networkx", "lark", "archdsl.lark_boundary", "archdsl.verify",
                           "archdsl.compiler.backends", "archdsl.compiler.importer", "archdsl.sizes",
                           "pydantic", "pydantic_core", "archdsl.report_models")


def test_analyze_json_imports_only_what_it_needs() -> None:
    code = ("import sys\n"
            "from archdsl.cli import main\n"
            "assert main(['analyze', 'resnet50', 'mobilenet_v2', '--json', '-o', '-']) == 0\n"
            f"print(sorted(m for m in {NOT_IMPORTED_BY_ANALYZE!r} if m in sys.modules), file=sys.stderr)\n")
    assert _fresh(code).returncode == 0  # the first run may fill the parse cache
    result = _fresh(code)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "[]", result.stderr


def test_analyze_starts_quickly() -> None:
    """Hang guard only (10× the 0.5 s target, which benchmarks/startup.py measures)."""
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "archdsl.cli", "analyze", str(SPECS / "resnet.arch"),
                             "--net", "resnet50"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - t0 < 5.0

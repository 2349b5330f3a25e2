"""Every command that reads specs takes several (`archdsl list specs/inception*.arch`), runs over
them in the order given, and says so when an option only makes sense for one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from archdsl.cli import main

from .conftest import ROOT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths as a user types them: specs/…


def test_list_takes_several_files(capsys: pytest.CaptureFixture[str], in_repo: None) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("inception*.arch"))  # the shell's glob
    assert len(files) >= 2
    code, out, _ = run(capsys, "list", *files, "--json")
    assert code == 0
    rows = json.loads(out)
    order = [files.index(r["file"]) for r in rows]
    assert order == sorted(order) and set(order) == set(range(len(files)))  # every file, in the order given
    for file in files:
        code, one, _ = run(capsys, "list", file, "--json")
        assert [r for r in rows if r["file"] == file] == json.loads(one)


def test_check_and_verify_take_several(capsys: pytest.CaptureFixture[str], in_repo: None) -> None:
    code, out, _ = run(capsys, "check", "specs/alexnet.arch", "specs/vgg.arch")
    assert (code, out) == (0, "ok: 2 file(s) checked\n")
    code, out, _ = run(capsys, "verify", "specs/alexnet.arch", "specs/squeezenet.arch", "--json")
    assert code == 0
    assert {c["network"] for c in json.loads(out)["checks"]} == {"alexnet", "squeezenet1_0", "squeezenet1_1"}


def test_analyze_several(capsys: pytest.CaptureFixture[str], in_repo: None) -> None:
    single = [run(capsys, "analyze", name) for name in ("resnet18", "specs/alexnet.arch")]
    code, out, _ = run(capsys, "analyze", "resnet18", "specs/alexnet.arch")
    assert code == 0
    assert out == single[0][1] + "\n" + single[1][1]  # the summaries, one blank line apart
    assert out.splitlines()[0] == "resnet18  (specs/resnet.arch)"  # a bundled network: the zoo's path, not absolute
    code, out, _ = run(capsys, "analyze", "resnet18", "specs/alexnet.arch", "--json")
    assert code == 0
    reports = json.loads(out)
    assert [r["network"] for r in reports] == ["resnet18", "alexnet"]
    assert reports[0] == json.loads(run(capsys, "analyze", "resnet18", "--json")[1])


def test_compile_several(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "compile", "resnet18", str(ROOT / "specs" / "alexnet.arch"))
    assert code == 0
    assert out == ("wrote resnet18.py: class Resnet18 (network resnet18)\n"
                   "wrote alexnet.py: class AlexNet (a function per network)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet.py", "resnet18.py"]


def test_one_output_file_for_several_specs_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command, target in (("compile", "both.py"), ("diagram", "both.dot")):
        code, _, err = run(capsys, command, "resnet18", "alexnet", "-o", target)
        assert code == 1
        assert err.startswith(f"error[E0606]: -o {target} names one file, but 2 specs were given\n")
    code, _, err = run(capsys, "compile", "resnet18", "alexnet", "-o", "-")
    assert code == 1 and err.startswith("error[E0606]: -o - prints one network, but 2 were asked for\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_diagram_several(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "diagram", "resnet18", "alexnet", "--depth", "1")
    assert code == 0
    assert err == "wrote resnet18.svg\nwrote alexnet.svg\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet.svg", "resnet18.svg"]


def test_verify_of_a_missing_file_is_its_read_error_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "verify", "missing.arch")
    assert (code, out) == (1, "")
    assert err == ("error[E0005]: cannot read `missing.arch`: No such file or directory\n"
                   "  --> missing.arch:1:1\n"
                   "   = help: check the path (imports are relative to the importing file)\n"
                   "\n"
                   "error: 1 problem(s) found\n")

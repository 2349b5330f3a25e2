"""The parse cache never serves an AST that the current front end would not build, and survives
damaged entries; the grammar's keywords are the language's one keyword list."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lark import v_args

from archdsl import lark_boundary, parser, vocabulary
from archdsl.syntax import Num

from .conftest import ROOT

TEXT = "network t { input x: 3x8x8 \n x -> conv(4, 3) }"


def _conv_width(module: object) -> object:
    """The first argument of the spec's conv call, as the AST holds it."""
    chain = module.items[0].body.stmts[1].expr  # type: ignore[attr-defined]
    return chain.steps[0].args[0].value.value


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ARCHDSL_NO_CACHE", raising=False)
    return tmp_path / "archdsl"


def test_a_changed_front_end_is_not_served_the_old_ast(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _conv_width(parser.parse(TEXT, "c.arch")) == 4
    assert len(list(cache_dir.glob("*.pickle"))) == 1
    # A new transformer (numbers read differently) shipped with a new version marker: what an
    # upgrade of archdsl looks like to the cache.
    number = lark_boundary.ToAst.number
    monkeypatch.setattr(lark_boundary.ToAst, "number",
                        v_args(meta=True)(lambda self, meta, ch: Num(number(self, meta, ch).span, 40)))
    monkeypatch.setattr(parser, "AST_FORMAT", parser.AST_FORMAT + 1)
    parser.front_end_fingerprint.cache_clear()
    try:
        assert _conv_width(parser.parse(TEXT, "c.arch")) == 40
        assert len(list(cache_dir.glob("*.pickle"))) == 2
    finally:
        parser.front_end_fingerprint.cache_clear()


def test_an_edited_transformer_file_changes_the_key(tmp_path: Path, cache_dir: Path) -> None:
    """An upgraded install: the same cache directory, a front end whose transformer source differs."""
    assert _conv_width(parser.parse(TEXT, "c.arch")) == 4
    copy = tmp_path / "upgraded" / "archdsl"
    shutil.copytree(ROOT / "archdsl", copy, ignore=shutil.ignore_patterns("compiler", "specs", "__pycache__"))
    source = (copy / "lark_boundary.py").read_text(encoding="utf-8")
    edited = source.replace("return Num(self._sp(meta), self._literal(",
                            "return Num(self._sp(meta), 10 * self._literal(")
    assert edited != source
    (copy / "lark_boundary.py").write_text(edited, encoding="utf-8")
    script = ("import sys; from archdsl.parser import parse; "
              f"m = parse({TEXT!r}, 'c.arch'); print(m.items[0].body.stmts[1].expr.steps[0].args[0].value.value)")
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "XDG_CACHE_HOME": str(cache_dir.parent)}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "40"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_key", "not_a_module"])
def test_a_damaged_entry_is_ignored_and_rewritten(cache_dir: Path, damage: str) -> None:
    fresh = parser.parse(TEXT, "c.arch", use_cache=False)
    parser.parse(TEXT, "c.arch")
    (entry,) = cache_dir.glob("*.pickle")
    good = entry.read_bytes()
    entry.write_bytes({
        "garbage": b"\x00not a pickle",
        "truncated": good[: len(good) // 2],
        "other_key": pickle.dumps(("0" * 64, parser.parse("network u { input y: 1x2x2 \n y }", "c.arch"))),
        "not_a_module": pickle.dumps((entry.stem, {"items": []})),
    }[damage])
    assert parser.parse(TEXT, "c.arch") == fresh
    key, module = pickle.loads(entry.read_bytes())
    assert key == entry.stem and module == fresh


def test_grammar_keywords_are_the_vocabulary() -> None:
    grammar = (ROOT / "archdsl" / "grammar.lark").read_text(encoding="utf-8")
    literals = set(re.findall(r'"([a-z]+)"', grammar))
    assert literals == set(vocabulary.KEYWORDS)


def test_every_front_end_file_is_in_the_fingerprint() -> None:
    """Every module `parse` loads to build an AST is hashed into the key (a new one must be added)."""
    script = ("import sys; from archdsl.parser import parse; parse('network t { input x: 3x8x8 \\n x }', "
              "'t.arch', use_cache=False); print(' '.join(sorted(m for m in sys.modules if m.startswith('archdsl'))))")
    env = {**os.environ, "ARCHDSL_NO_CACHE": "1"}
    loaded = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    files = {f"{m.split('.', 1)[1]}.py" for m in loaded if "." in m}
    assert files - {"fileio.py", "limits.py"} <= set(parser.FRONT_END_FILES), files

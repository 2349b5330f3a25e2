"""Syntax highlighting: the Pygments lexer (found through its entry point) and the TextMate grammar."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name, Number

from archdsl.functions import BUILTINS
from archdsl.lexer import BUILTINS as LEXER_BUILTINS
from archdsl.lexer import KEYWORDS, OPS, ArchLexer
from archdsl.lexer import SYMBOLS as LEXER_SYMBOLS
from archdsl.ops import all_ops
from archdsl.vocabulary import SYMBOLS

from .conftest import ROOT, SPECS

ARCH_FILES = sorted(SPECS.glob("*.arch")) + sorted((ROOT / "tests" / "data").glob("*.arch"))
GRAMMAR = ROOT / "editors" / "arch.tmLanguage.json"


@pytest.mark.parametrize("path", ARCH_FILES, ids=lambda p: p.name)
def test_every_spec_highlights_without_error_tokens(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tokens = list(ArchLexer().get_tokens(text))
    errors = [value for kind, value in tokens if kind in Error]
    assert not errors, f"{path.name}: Error tokens {errors[:5]}"
    assert "".join(value for _, value in tokens) == (text if text.endswith("\n") else text + "\n")


def test_lexer_is_registered_through_its_entry_point() -> None:
    assert isinstance(get_lexer_by_name("arch"), ArchLexer)
    assert isinstance(get_lexer_for_filename("resnet.arch"), ArchLexer)


@pytest.mark.skipif(shutil.which("pygmentize") is None, reason="pygmentize not on PATH")
def test_pygmentize_command() -> None:
    out = subprocess.run(["pygmentize", "-l", "arch", "-f", "html", str(SPECS / "resnet.arch")],
                         capture_output=True, text=True, check=True).stdout
    assert '<span class="err">' not in out
    assert '<span class="kd">network</span>' in out


def test_token_kinds() -> None:
    text = ('network n { input image: 3x224x224\n image -> conv(64, 7) as c1 -> output y\n'
            ' expect macs ~= 4.1G +- 3% "x" }')
    kinds = {value: kind for kind, value in ArchLexer().get_tokens(text)}
    assert kinds["n"] in Name.Class and kinds["3x224x224"] in Number and kinds["4.1G"] in Number
    assert kinds["conv"] in Name.Builtin and kinds["as"] in Keyword and kinds["expect"] in Keyword
    assert kinds["3%"] in Number
    assert any(kind in Error for kind, _ in ArchLexer().get_tokens("x = $"))  # real mistakes still show


def test_lexer_lists_every_op_builtin_and_symbol() -> None:
    names = {n for op in all_ops() for n in (op.name, *op.aliases)}
    assert names <= set(OPS), f"add to archdsl/lexer.py OPS: {sorted(names - set(OPS))}"
    assert set(BUILTINS) == set(LEXER_BUILTINS)
    assert set(SYMBOLS) - {"sum"} <= set(LEXER_SYMBOLS)


def test_textmate_grammar_is_valid_and_in_step() -> None:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    assert grammar["scopeName"] == "source.arch" and grammar["fileTypes"] == ["arch"]
    patterns = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("match", "begin", "end"):
                if key in node:
                    patterns.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(grammar)
    for p in patterns:
        re.compile(p)  # the grammar uses the common subset of Oniguruma and Python regexes
    for include in re.findall(r'"include": "#(\w+)"', GRAMMAR.read_text()):
        assert include in grammar["repository"]
    text = json.dumps(grammar)
    for word in (*KEYWORDS, *OPS, *LEXER_BUILTINS):
        assert re.search(rf"[(|]{word}[|)]", text), word

"""The examples in the package's docstrings run and show what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

from .test_layers import MODULES

WITH_EXAMPLES = sorted(name for name, path in MODULES.items() if ">>> " in path.read_text(encoding="utf-8"))


def test_examples_are_found() -> None:
    assert {"archdsl.evaluate", "archdsl.compiler.passes.memory", "archdsl.compiler.hierarchy"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result

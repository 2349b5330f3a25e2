"""The reserved words and bare symbols of the `.arch` language, listed once.

The grammar (``grammar.lark``) spells the keywords as literals; a test checks that the literals and
these lists agree. The parser uses them to explain `conv = ...` ("a keyword cannot be a name"), the
evaluator to read bare symbols (`pad=same`), the Pygments lexer to colour them. This module imports
nothing, so the lexer stays light.
"""

from __future__ import annotations

# Words that start a definition.
DECLARATION_KEYWORDS = ("block", "network")
# Words that start or shape a statement or a step.
STATEMENT_KEYWORDS = ("import", "input", "output", "inputs", "outputs", "expect", "repeat", "as", "if", "else",
                      "stages", "shared", "init", "of")
CONSTANT_KEYWORDS = ("true", "false", "none")
OPERATOR_KEYWORDS = ("and", "or", "not")
KEYWORDS = frozenset(DECLARATION_KEYWORDS + STATEMENT_KEYWORDS + CONSTANT_KEYWORDS + OPERATOR_KEYWORDS)

# Bare names that read as words in a spec: `pad=same`, `avgpool(global)`, `mode=bilinear`.
SYMBOLS = ("same", "valid", "global", "nearest", "bilinear", "fast", "softmax_weights", "sum", "center")

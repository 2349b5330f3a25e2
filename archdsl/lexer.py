"""A Pygments lexer for `.arch` specs, so `pygmentize -l arch` and documentation tools highlight them.

Registered through the ``pygments.lexers`` entry point (``arch = "archdsl.lexer:ArchLexer"``). The
token rules mirror ``grammar.lark``: keywords, stage tables, shape literals (``3x224x224``), SI
numbers (``4.1G``), ``->`` chains, ``as`` labels; op names and builtins are highlighted as builtins.

>>> from pygments.token import Error
>>> tokens = list(ArchLexer().get_tokens("image -> conv(64, 7, stride=2) as conv1  # stem"))
>>> any(t is Error for t, _ in tokens)
False

NOTE: the op list is written out here rather than read from the registry, so highlighting never
imports pydantic or the ops; a test checks that every registered op (and alias) is listed.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from . import vocabulary

OPS = (
    "adaptive_avgpool", "adaptive_maxpool", "add", "avgpool", "batchnorm", "bn", "cat", "channel_shuffle",
    "concat", "conv", "conv_transpose", "crop", "deconv", "drop_path", "dropout", "dwconv", "fc", "flatten",
    "frozen_bn", "fuse", "gelu", "hardsigmoid", "hardswish", "hsigmoid", "hswish", "identity", "l2norm", "l2pool",
    "layer_scale", "layernorm", "leaky", "leaky_relu", "linear", "local", "locally_connected", "lrn", "maxout",
    "maxpool", "mish", "mul", "permute", "pixel_unshuffle", "pwconv", "relu", "relu6", "reorg", "reshape",
    "scale", "shuffle", "sigmoid", "silu", "softmax", "space_to_depth", "split", "stochastic_depth", "swish",
    "tanh", "upsample", "view",
)
BUILTINS = (
    "min", "max", "round", "ceil", "floor", "int", "float", "abs", "sqrt", "log", "exp", "divisible", "len", "sum",
    "cumsum",
)
# Bare symbols (`sum` is highlighted as the builtin it also is) and keywords: the language's own lists.
SYMBOLS = tuple(s for s in vocabulary.SYMBOLS if s not in BUILTINS)
KEYWORDS = vocabulary.STATEMENT_KEYWORDS


class ArchLexer(RegexLexer):  # type: ignore[misc]  # pygments publishes no types
    """Lexer for archdsl `.arch` network specs."""

    name = "archdsl"
    aliases: ClassVar[list[str]] = ["arch", "archdsl"]
    filenames: ClassVar[list[str]] = ["*.arch"]
    mimetypes: ClassVar[list[str]] = ["text/x-archdsl"]
    url = "https://github.com/archdsl/archdsl"

    _ident = r"[A-Za-z_][A-Za-z_0-9]*"
    _end = r"(?![A-Za-z_0-9])"

    tokens: ClassVar[dict[str, list]] = {  # type: ignore[type-arg]
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"([^"\\\n]|\\.)*"', String.Double),
            (rf"(block)(\s+)({_ident})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(network)(\s+)({_ident})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(vocabulary.CONSTANT_KEYWORDS, suffix=r"\b"), Keyword.Constant),
            (words(vocabulary.OPERATOR_KEYWORDS, suffix=r"\b"), Operator.Word),
            (r"in\b", Name.Builtin.Pseudo),
            (r"\d+(\.\d+)?%", Number),
            (rf"\d+(x\d+)+{_end}", Number),  # shape literal 3x224x224
            (rf"\d[\d_]*(\.\d+)?([eE][+-]?\d+)?[KMGTB]?{_end}", Number),
            (r"->|~=|\+-|±|==|!=|<=|>=|\*\*|//|[-+*/%<>?]", Operator),
            (rf"(\.)(\s*)({_ident})", bygroups(Punctuation, Whitespace, Name.Attribute)),
            (r"[()\[\]{},:=.]", Punctuation),
            (words(OPS + BUILTINS, suffix=_end), Name.Builtin),
            (words(SYMBOLS, suffix=_end), Name.Constant),
            (_ident, Name),
        ],
    }

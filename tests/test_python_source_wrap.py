"""`wrap` (black-style line breaking of generated statements) finds a statement's brackets in one
pass; it must break every line exactly as scanning each bracket group anew at every level does
(the way it worked before, kept for lines whose last character is quoted)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.compiler.backends import python_source as ps


def _rescanning(line: str, indent: str, suffix: str = "", width: int = ps.WIDTH) -> list[str]:
    """`wrap` with every group's items found by scanning them again, level by level."""
    if len(indent) + len(line) + len(suffix) <= width:
        return [indent + line + suffix]
    return ps._wrap_scanned(line, indent, suffix, width, again=_rescanning)


_LEAVES = ["a", "x1", "12", "'s,)'", '"q(\\"x"', "m for _ in range(3)", " for ", "kernel_size=(3, 3)", "", "'"]
_BRACKETS = [("(", ")"), ("[", "]"), ("{", "}"), ("f(", ")"), ("nn.Sequential(", ")"), ("*(", ")"), ("(", "]")]


def _group(brackets: tuple[str, str], items: list[str], sep: str, tail: str, after: str) -> str:
    return brackets[0] + sep.join(items) + (tail if items else "") + brackets[1] + after


def _nested() -> st.SearchStrategy[str]:
    def group(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.builds(_group, st.sampled_from(_BRACKETS), st.lists(children, max_size=5),
                         st.sampled_from([", ", ",", " , "]), st.sampled_from(["", ",", ", "]),
                         st.sampled_from(["", "", "(z)", " for q in w", ")"]))
    return st.recursive(st.sampled_from(_LEAVES), group, max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(head=st.sampled_from(["", "x = ", "a, b = ", "return ", "self.layer = "]), body=_nested(),
       width=st.integers(5, 60), indent=st.sampled_from(["", "    ", "        "]),
       suffix=st.sampled_from(["", ",", " -> None:"]))
def test_wrap_breaks_as_rescanning_does(head: str, body: str, width: int, indent: str, suffix: str) -> None:
    line = head + body
    assert ps.wrap(line, indent, suffix, width) == _rescanning(line, indent, suffix, width)


@settings(max_examples=300, deadline=None)
@given(line=st.text(alphabet="ab ,()[]{}\"'\\f", max_size=60), width=st.integers(3, 40))
def test_wrap_breaks_any_text_as_rescanning_does(line: str, width: int) -> None:
    """Unbalanced brackets and unclosed quotes (never generated) included."""
    assert ps.wrap(line, "  ", ",", width) == _rescanning(line, "  ", ",", width)


def test_a_deeply_nested_constructor_is_broken_at_every_level() -> None:
    conv = "nn.Conv2d(16, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    line = "self.repeat = nn.Sequential(" + ", ".join(
        f'nn.Sequential(nn.ModuleDict({{"conv": {conv}, "conv_1": {conv}}}))' for _ in range(50)) + ")"
    lines = ps.wrap(line, "        ")
    assert lines == _rescanning(line, "        ")
    assert max(len(x) for x in lines) <= ps.WIDTH and len(lines) == 2 + 50 * 8  # 4 levels opened and closed


def test_a_compound_statement_header_is_broken_inside_its_group_before_the_colon() -> None:
    # black's form of a long `for` header; before, the line was left whole, marked as too long for the linter
    line = "for m in [" + ", ".join(f'*self.get_submodule("extra.{k}").modules()' for k in range(5)) + "]:"
    lines = ps.wrap(line, "")
    assert lines[0] == "for m in [" and lines[-1] == "]:" and len(lines) == 7
    assert max(len(x) for x in lines) <= ps.WIDTH
    compile("\n".join([*lines, "    pass"]), "wrapped", "exec")

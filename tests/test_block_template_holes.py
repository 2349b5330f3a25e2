"""Block templates with holes (archdsl.templates.holes): a parameter the body reads only in the
arguments of op calls — EfficientNet's stochastic-depth `drop`, different at every block — does not
stop a later call from replaying the template, whose layers then take this call's attributes. The IR
is exactly the one elaboration without templates gives, every diagnostic too; a parameter read
anywhere else keeps the call from being replayed."""

from __future__ import annotations

from typing import Any

import pytest

import archdsl.api as api
from archdsl.templates import holes

from .test_block_templates import _both, _picture, _replays, _without_templates

DROP = """
block unit(c, drop=0.0) {
    y = in -> conv(c, 3, pad=1) as conv -> bn -> relu
    in + (y -> drop_path(drop))
}
"""


def _calls(*args: str) -> str:
    chain = " -> ".join(f"unit({a})" for a in args)
    return DROP + f"network t {{ input x: 4x8x8 \n x -> {chain} }}"


def test_calls_that_differ_in_a_hole_replay_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    src = _calls("4, drop=0.0", "4, drop=0.1", "4, drop=0.2", "4, drop=0.1")
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without  # every layer's attributes, every scope's title and numbers
    assert _replays(monkeypatch, src) == 3
    nodes, scopes, _ = with_templates
    assert [n[3].p for n in nodes if n[2] == "drop_path"] == [0.0, 0.1, 0.2, 0.1]
    assert [info.title for _, info in scopes if info.block == "unit"][1:3] == ["unit(c=4, drop=0.1)",
                                                                               "unit(c=4, drop=0.2)"]


def test_a_norm_s_epsilon_is_a_hole(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block unit(e) { in -> conv(4, 3, pad=1) -> bn(eps=e) -> relu }
    network t { input x: 4x8x8 \n x -> unit(1e-5) -> unit(1e-3) -> unit(1e-3) }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    assert _replays(monkeypatch, src) == 2
    assert [n[3].eps for n in with_templates[0] if n[2] == "bn"] == [1e-5, 1e-3, 1e-3]


@pytest.mark.parametrize("body", [
    "in -> conv(c, 3, pad=1)",         # output channels
    "in -> conv(4, c, pad=same)",      # a kernel size, even where the shapes stay (`pad=same`)
    "in -> maxpool(2, stride=c)",      # a stride
])
def test_a_parameter_setting_a_shape_attribute_is_no_hole(monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Only the attributes an op declares free of its output shapes (`Op.shape_free`) make holes: a
    call that differs in anything else is elaborated (and replays its own template when repeated)."""
    src = f"""block unit(c) {{ {body} }}
    network t {{ input x: 4x8x8 \n x -> unit(1) -> unit(1) }}"""
    spec = api.load_string(src, "t.arch")
    block, namespace = spec.namespace.blocks["unit"]
    assert holes(block, namespace.blocks) is None
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without


def test_a_bad_value_in_a_hole_is_reported_as_without(monkeypatch: pytest.MonkeyPatch) -> None:
    src = _calls("4, drop=0.1", "4, drop=0.2", "4, drop=1.5")
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    (code, where, message, notes) = with_templates[0]
    assert (code, where) == ("E0303", "t.arch:4:26")  # `drop` in the block's body
    assert "1.5" in message and notes == ("in block `unit`, called at t.arch:7:49",)


@pytest.mark.parametrize(("body", "why"), [
    ("if drop > 0 { in -> drop_path(drop) } else { in }", "read in a condition"),
    ("p = drop\n in -> drop_path(p)", "read in a definition"),
    ("in -> drop_path(drop) as d{int(drop * 10)}", "read in a label"),
    ("drop = 0.5\n in -> drop_path(drop)", "assigned in the body"),
    ("in -> inner(drop)", "passed to a block"),
    ("w = 2\n in -> drop_path(drop / w)", "read with a name that is no hole"),
    ("in -> drop_path(drop) as drop", "a name the body gives a layer"),
])
def test_a_parameter_read_elsewhere_is_no_hole(monkeypatch: pytest.MonkeyPatch, body: str, why: str) -> None:
    src = f"""block inner(p) {{ in -> drop_path(p) }}
    block unit(drop, c=4) {{ {body} }}
    network t {{ input x: 4x8x8 \n x -> unit(0.1) -> unit(0.2) -> unit(0.3) }}"""
    spec = api.load_string(src, "t.arch")
    block, namespace = spec.namespace.blocks["unit"]
    found = holes(block, namespace.blocks)
    assert found is None or "drop" not in found.params, why
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    assert _replays(monkeypatch, src) == 0


def test_a_call_named_like_a_block_is_no_op_call() -> None:
    # `relu` here is the file's block, whose parameter could reach anything
    src = """block relu(p) { in -> drop_path(p) }
    block unit(drop) { in -> relu(drop) }
    network t { input x: 4x8x8 \n x -> unit(0.1) }"""
    spec = api.load_string(src, "t.arch")
    block, namespace = spec.namespace.blocks["unit"]
    assert holes(block, namespace.blocks) is None


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_v2_s", "efficientdet_d0"])
def test_stochastic_depth_networks_are_the_same_with_templates(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Every MBConv block of these drops its branch with its own probability: with holes, most of
    them replay a template, and the IR is the one elaboration without templates gives."""
    spec, _ = api.find(name)
    with_templates = _picture(spec.network(name))
    _without_templates(monkeypatch)
    without: Any = _picture(spec.network(name))
    assert with_templates == without


def test_holes_are_worked_out_once_per_definition_across_loads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """Every load of a file makes a namespace of its own around the same cached definitions: a
    second `find` of a bundled network finds every block's holes already worked out."""
    from archdsl import templates

    monkeypatch.delenv("ARCHDSL_NO_CACHE", raising=False)  # the definitions come from the parse cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):  # parsed and cached, then read from the cache: the entry later loads share
        api.find("efficientnet_b0")[0].network("efficientnet_b0")
    worked_out: list[str] = []
    original = templates._holes

    def counting(block: Any, blocks: dict[str, Any]) -> Any:
        worked_out.append(block.name)
        return original(block, blocks)

    monkeypatch.setattr(templates, "_holes", counting)
    spec, _ = api.find("efficientnet_b0")
    spec.network("efficientnet_b0")
    assert worked_out == []


def test_holes_follow_the_block_names_an_import_brings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same (cached) definition means another thing once an imported file names a block like
    the op it calls: its holes are worked out again for the new names."""
    monkeypatch.delenv("ARCHDSL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "a.arch").write_text('import "b.arch"\nblock unit(drop) { in -> drop_path(drop) }\n')
    (tmp_path / "b.arch").write_text("block other(c) { in -> conv(c, 1) }\n")
    api.load(tmp_path / "a.arch")  # parsed, and put in the parse cache, whose entry later loads share
    block, namespace = api.load(tmp_path / "a.arch").namespace.blocks["unit"]
    found = holes(block, namespace.blocks)
    assert found is not None and found.params == {"drop"}
    (tmp_path / "b.arch").write_text("block drop_path(p) { in -> relu }\n")
    again, namespace = api.load(tmp_path / "a.arch").namespace.blocks["unit"]
    assert again is block  # the parse cache's definition, shared
    assert holes(block, namespace.blocks) is None

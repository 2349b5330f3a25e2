"""Block calls elaborated once and instantiated again (archdsl.templates): an identical later call
gives exactly the IR that elaborating it would, a call that differs in anything that matters is
elaborated, and every diagnostic — in a later call with other arguments, a label taken twice, a
limit reached inside a repeated call — is the one elaboration without templates gives."""

from __future__ import annotations

from typing import Any

import pytest

import archdsl.api as api
import archdsl.elaborate as elaborate
from archdsl.diagnostics import ArchError, Diagnostic
from archdsl.limits import LIMITS, Limits
from archdsl.loader import zoo_files


def _without_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elaborate, "call_key", lambda *args: None)


def _picture(net: api.Network) -> tuple[Any, ...]:
    """Everything elaboration decides: every node field, every scope, the names used."""
    ir = net.ir
    nodes = [(n.name, n.kind, n.op, n.attrs, n.inputs, n.out_shapes, n.scope, n.span, n.output_name, n.shares)
             for n in ir]
    return nodes, list(ir.scopes.items()), "".join(net.report_json())


def _both(monkeypatch: pytest.MonkeyPatch, src: str, name: str | None = None,
          limits: Limits = LIMITS) -> tuple[Any, Any]:
    """What elaborating `src` gives (a picture, or the diagnostics) with templates and without."""
    results = []
    for memo in (True, False):
        with monkeypatch.context() as m:
            if not memo:
                _without_templates(m)
            try:
                results.append(_picture(api.load_string(src, "t.arch", limits).network(name)))
            except ArchError as exc:
                results.append([_text(d) for d in exc.diagnostics])
    return results[0], results[1]


def _text(d: Diagnostic) -> tuple[str, str, str, tuple[str, ...]]:
    return (d.code, d.span.where(), d.message, d.notes)


def _replays(monkeypatch: pytest.MonkeyPatch, src: str) -> int:
    count = 0
    instantiate = elaborate.Elaborator._instantiate

    def counting(self: elaborate.Elaborator, *args: Any) -> Any:
        nonlocal count
        count += 1
        return instantiate(self, *args)

    monkeypatch.setattr(elaborate.Elaborator, "_instantiate", counting)
    api.load_string(src, "t.arch").network()
    return count


RES = """
block res(c, stride=1) {
    y = in -> conv(c, 3, stride=stride, bias=false) as conv1 -> bn -> relu -> conv(c, 3, bias=false) -> bn
    if stride == 1 and in.channels == c { relu(y + in) } else { relu(y + (in -> conv(c, 1, stride=stride) as down)) }
}
"""


def test_identical_calls_are_instantiated_and_give_the_same_ir(monkeypatch: pytest.MonkeyPatch) -> None:
    src = RES + """network t { input x: 3x16x16
        x -> stages(c, s, n) as layer {
            8, 1, 3
            16, 2, 3
        } repeat n as i: res(c, stride=(i == 0 ? s : 1))
    }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    # layer1.0 and layer2.0 change the shape, layer1.1 and layer2.1 are recorded, layer1.2 and layer2.2 replayed
    assert _replays(monkeypatch, src) == 2


@pytest.mark.parametrize("call", ["res(8)", "res(8.0)", "res(8, stride=true)", "res(c=8)"])
def test_values_equal_in_python_but_different_in_a_spec_are_different_calls(monkeypatch: pytest.MonkeyPatch,
                                                                            call: str) -> None:
    src = RES + f"network t {{ input x: 8x8x8 \n x -> res(8) -> {call} -> res(8) }}"
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without


def test_the_same_tensor_twice_is_not_two_tensors_of_its_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block two(a, b) { a + b }
    network t { input x: 4x8x8 \n y = x -> relu \n p = two(x, x) \n q = two(x, y) \n p + q }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without


def test_an_error_in_a_later_call_with_other_arguments_points_at_that_call(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block unit(c, k) { in -> conv(c, k) -> relu }
    network t { input x: 4x8x8
        x -> unit(4, 3) -> unit(4, 3) -> unit(4, 0) -> unit(4, 3)
    }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    (code, where, _, notes) = with_templates[0]
    assert code == "E0303"  # a kernel of 0
    assert where == "t.arch:1:34"  # `k` in the block body
    assert notes == ("in block `unit`, called at t.arch:3:42",)  # the third call, after two identical ones


def test_a_label_taken_twice_is_found_in_an_instantiated_call(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block unit(c) { in -> conv(c, 3) -> relu }
    network t { input x: 4x8x8 \n y = x -> unit(4) as u \n y -> unit(4) as u }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    assert with_templates[0][0] == "E0404"


def test_a_path_made_by_a_dotted_label_is_not_instantiated_into(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block unit(c) { in -> conv(c, 3) as conv -> relu }
    network t { input x: 4x8x8 \n y = x -> unit(4) as a \n z = y -> conv(4, 1) as b.conv \n z -> unit(4) as b }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    assert with_templates[0][0] == "E0404"


@pytest.mark.parametrize("limit", [
    {"max_nodes": 9}, {"max_nodes": 10}, {"max_steps": 120}, {"max_steps": 200}, {"max_call_depth": 2},
])
def test_a_limit_reached_in_an_instantiated_call_is_reported_as_without(monkeypatch: pytest.MonkeyPatch,
                                                                       limit: dict[str, int]) -> None:
    src = """block inner(c) { in -> conv(c, 3) -> relu }
    block outer(c) { in -> inner(c) -> inner(c) }
    network t { input x: 4x8x8 \n x -> outer(4) -> outer(4) -> outer(4) }"""
    limits = Limits(**{**vars(LIMITS), **limit})
    with_templates, without = _both(monkeypatch, src, limits=limits)
    assert with_templates == without


def test_calls_that_make_shared_instances_or_set_init_are_elaborated(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """block head(c) { s = shared conv(c, 1) \n (in -> s) + (in -> s) }
    block unit(c) { init conv: kaiming_normal(mode=fan_out) \n in -> conv(c, 3) }
    network t { input x: 4x8x8 \n x -> head(4) -> head(4) -> unit(4) -> unit(4) }"""
    with_templates, without = _both(monkeypatch, src)
    assert with_templates == without
    assert _replays(monkeypatch, src) == 0


@pytest.mark.parametrize("path", zoo_files()[:6], ids=lambda p: p.stem)
def test_zoo_networks_are_the_same_with_templates(monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
    spec = api.load(path)
    for name in spec.networks:
        with monkeypatch.context() as m:
            with_templates = _picture(spec.network(name))
            _without_templates(m)
            assert with_templates == _picture(spec.network(name)), name

"""Fuzzing in CI, within a fixed budget and deterministic: grammar-generated specs (hypothesis,
derandomized), mutations of every spec in specs/, and numbers at the edges of the float range, each
driven through the command line as a user would (see tests/fuzzing.py). Each case must end in
success or in diagnostics that all lie inside the input, within 2 s per command; no traceback, no
internal error (E9999), and every module `compile` writes must construct and, run on meta tensors,
give the output shapes the analysis gave. Here the cases take the
five commands in turn (case k runs the k-th, modulo five) to keep the run as short as the API-only
fuzz it replaced; benchmarks/fuzz.py runs all five on every case, nightly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzzing import (
    COMMANDS,
    EDGE_NUMBERS,
    Tally,
    build_on_meta,
    edge_setting,
    mutations,
    run_case,
    spec_strategy,
    torch_available,
    truncations,
    workspace,
)

GENERATED = 150
MUTANTS_PER_SPEC = 5  # x 26 spec files; benchmarks/fuzz.py runs 20 000 cases nightly
TRUNCATED = (["resnet.arch", "mobilenet_v2.arch", "common.arch"], 40)
CONSTRUCT = build_on_meta if torch_available() else None


@pytest.fixture(autouse=True)
def _private_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Imports (common.arch) stay cached; thousands of mutants do not fill the user's cache.
    monkeypatch.delenv("ARCHDSL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "work").mkdir()
    workspace(tmp_path / "work")


def _in_turn(tally: Tally) -> tuple[str]:
    return (COMMANDS[tally.cases % len(COMMANDS)],)


def _assert_clean(tally: Tally) -> None:
    print(tally.summary())  # shown with -s / -rP
    assert tally.internal_errors == 0, tally.summary() + "\n\n" + "\n\n".join(tally.failures[:3])
    assert tally.clean(), tally.summary() + "\n\n" + "\n\n".join(tally.failures[:3])


def test_generated_specs() -> None:
    tally = Tally()

    @settings(max_examples=GENERATED, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec_strategy())
    def case(text: str) -> None:
        run_case(text, tally, commands=_in_turn(tally), construct=CONSTRUCT)

    case()
    _assert_clean(tally)
    assert tally.cases >= GENERATED * 0.9
    assert tally.successes > 0 and tally.diagnostics > 0
    assert CONSTRUCT is None or tally.modules_built > 0


def test_mutated_zoo() -> None:
    tally = Tally()
    for k, text in enumerate(mutations(MUTANTS_PER_SPEC, seed=0)):
        run_case(text, tally, networks=1, commands=_in_turn(tally), extra=edge_setting(text, k), construct=CONSTRUCT)
    files, positions = TRUNCATED
    for text in truncations(files, positions):
        run_case(text, tally, networks=1, commands=_in_turn(tally), construct=CONSTRUCT)
    _assert_clean(tally)
    assert tally.cases >= 14 * MUTANTS_PER_SPEC
    assert CONSTRUCT is None or tally.modules_built > 0


# Where a number goes in a spec: an attribute (float, integer, pair), an arithmetic operand, a
# repeat count, an input dimension, an expected value and its tolerance, a network parameter.
EDGE_TEMPLATES = [
    "image -> conv(8, 3) -> leaky({n}) -> output y",
    "image -> conv(8, 3) -> upsample({n}) -> output y",
    "image -> conv(8, 3) -> bn(momentum={n}) -> scale({n}) -> output y",
    "image -> conv(8, 3, stride={n}) -> dropout({n}) -> output y",
    "image -> conv(8, {n}) -> linear({n}) -> output y",
    "k = ({n}) * 2 + 1\n    image -> conv(8, 3) -> lrn(alpha=k) -> output y",
    "image -> repeat {n}: relu -> output y",
    "image -> conv(8, 3) -> output y\n    expect params ~= {n} +- 1%",
    "image -> conv(8, 3) -> output y\n    expect params == 224 +- {n}",
]


@pytest.mark.parametrize("template", EDGE_TEMPLATES)
def test_edge_numbers_through_every_command(template: str) -> None:
    tally = Tally()
    for number in EDGE_NUMBERS:
        body = template.format(n=number)
        run_case(f"network t(w=2) {{\n    input image: 3x8x8\n    {body}\n}}\n", tally, construct=CONSTRUCT)
        run_case(f"network t(w=2) {{\n    input image: 3x8x8\n    {body.replace(number, 'w')}\n}}\n", tally,
                 extra=["--set", f"w={number}"], construct=CONSTRUCT)
    _assert_clean(tally)
    assert tally.cases == 2 * len(EDGE_NUMBERS)

"""Fuzzing in CI, within a fixed budget and deterministic: grammar-generated specs (hypothesis,
derandomized) and mutations of every spec in specs/. Each case must end in success or in
diagnostics that all lie inside the input, within 2 s; no traceback. See tests/fuzzing.py, and
benchmarks/fuzz.py for the long nightly run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzzing import Tally, mutations, run_case, spec_strategy, truncations

GENERATED = 1200
MUTANTS_PER_SPEC = 50  # x 14 specs
TRUNCATED = (["resnet.arch", "mobilenet_v2.arch", "common.arch"], 40)


@pytest.fixture(autouse=True)
def _private_parse_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Imports (common.arch) stay cached; thousands of mutants do not fill the user's cache.
    monkeypatch.delenv("ARCHDSL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def _assert_clean(tally: Tally) -> None:
    assert tally.clean(), tally.summary() + "\n\n" + "\n\n".join(tally.failures[:3])


def test_generated_specs() -> None:
    tally = Tally()

    @settings(max_examples=GENERATED, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec_strategy())
    def case(text: str) -> None:
        run_case(text, tally)

    case()
    _assert_clean(tally)
    assert tally.cases >= GENERATED * 0.9
    assert tally.successes > 0 and tally.diagnostics > 0


def test_mutated_zoo() -> None:
    tally = Tally()
    for text in mutations(MUTANTS_PER_SPEC, seed=0):
        run_case(text, tally, networks=1)
    files, positions = TRUNCATED
    for text in truncations(files, positions):
        run_case(text, tally, networks=1)
    _assert_clean(tally)
    assert tally.cases >= 14 * MUTANTS_PER_SPEC

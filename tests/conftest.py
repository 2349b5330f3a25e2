"""Shared fixtures: the zoo, parametrized over every network in specs/."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import archdsl.api as api

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@functools.cache
def zoo() -> list[tuple[str, str]]:
    """(spec file name, network) for every network defined in specs/."""
    out = []
    for path in sorted(SPECS.glob("*.arch")):
        for name in api.load(path).networks:
            out.append((path.name, name))
    return out


@functools.cache
def network(file: str, name: str, input: tuple[int, ...] | None = None) -> api.Network:
    return api.load(SPECS / file).network(name, input=input)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running tests")
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU; skipped without one")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip = pytest.mark.skip(reason="no CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)

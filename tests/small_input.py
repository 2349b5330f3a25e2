"""The reduced input a network runs at in CPU tests: the smallest square from a short ladder that
its spec accepts (networks with many downsampling steps need more than 64×64)."""

from __future__ import annotations

import functools

import pytest

from archdsl.api import Network
from archdsl.diagnostics import ArchError

from .conftest import network


def buildable(file: str, name: str, input: tuple[int, ...] | None = None) -> Network:
    """The elaborated network, or a skip for a family whose parameters have no defaults."""
    try:
        return network(file, name, input)
    except ArchError as exc:
        if "has no default" in str(exc):
            pytest.skip(f"{name} is a family without defaults")
        raise

LADDER = (64, 96, 128, 160, 224, 299)


@functools.cache
def small_input(file: str, name: str) -> tuple[int, ...]:
    full = next(iter(buildable(file, name).input_shapes.values()))
    for side in LADDER:
        if side >= max(full[1:], default=0):
            break
        shape = (full[0], side, side)
        try:
            network(file, name, shape)
        except ArchError:
            continue
        return shape
    return full

"""Shared fixtures: real processes on loopback, stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seaway.testing.processes import Processes


@pytest.fixture
def processes() -> Iterator[Processes]:
    p = Processes()
    try:
        yield p
    finally:
        p.stop_all()

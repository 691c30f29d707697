"""Fixtures for the lab: skip without root and namespaces; every lab removed after its test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.lab.lab import host_leftovers, remove_leftovers


@pytest.fixture
def lab_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory for one lab; after the test, nothing of the lab may be left."""
    state_dir = tmp_path / "lab"
    try:
        yield state_dir
    finally:
        left = host_leftovers()
        remove_leftovers(state_dir)
        assert not left, f"the lab left things behind: {left}"

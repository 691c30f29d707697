"""Fixtures: a fresh network namespace per test (root and nft), removed afterwards."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def netns() -> Iterator[str]:
    """A new namespace ``seaway-nft-test-XXXX`` with loopback and a veth ``eth0`` up."""
    name = f"seaway-nft-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        for cmd in (
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"],
            ["ip", "-n", name, "link", "set", "eth0", "up"],
            ["ip", "-n", name, "link", "set", "eth1", "up"],
            ["ip", "-n", name, "addr", "add", "198.18.0.99/24", "dev", "eth0"],
        ):
            subprocess.run(cmd, check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=10)

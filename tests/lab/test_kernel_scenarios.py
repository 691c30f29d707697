"""The kernel-path scenarios with real packets in network namespaces (root; CI runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.lab.namespaces import ip_available
from seaway.lab.scenarios import dsr_client_ip, idle_reset
from seaway.lab.spec import load_lab

WHY_NOT = ip_available()
pytestmark = [
    pytest.mark.skipif(bool(WHY_NOT), reason=f"lab tests need root, `ip netns` and nft: {WHY_NOT}"),
    pytest.mark.root,
]


@pytest.mark.timeout(120)
async def test_idle_reset(lab_state_dir: Path) -> None:
    result = await idle_reset.run(load_lab(None), lab_state_dir, lambda _: None)
    assert result.ok, result.failed_checks()
    for selection in ("random", "modulo"):
        assert result.numbers[selection]["idle_staying_reset"] > 0
        assert result.numbers[selection]["rst_packets"] > 0
    assert result.numbers["maglev"]["idle_staying_reset"] <= 1
    assert all(result.numbers[s]["keepalive_failed"] == 0 for s in idle_reset.SELECTIONS)


@pytest.mark.timeout(90)
async def test_dsr_client_ip(lab_state_dir: Path) -> None:
    result = await dsr_client_ip.run(load_lab(None), lab_state_dir, lambda _: None)
    assert result.ok, result.failed_checks()
    assert result.numbers["lb_conntrack_client"] == 0
    assert result.numbers["forwarded"] >= dsr_client_ip.REQUESTS

"""[kernel-rolling-update] with real packets through seaway's nftables rules (root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.lab.namespaces import ip_available
from seaway.lab.scenarios import kernel_rolling_update
from seaway.lab.spec import load_lab

WHY_NOT = ip_available()
pytestmark = [
    pytest.mark.skipif(bool(WHY_NOT), reason=f"lab tests need root, `ip netns` and nft: {WHY_NOT}"),
    pytest.mark.root,
]


@pytest.mark.timeout(120)
async def test_kernel_rolling_update(lab_state_dir: Path) -> None:
    lines: list[str] = []
    result = await kernel_rolling_update.run(load_lab(None), lab_state_dir, lines.append)
    assert result.ok, (result.failed_checks(), lines)
    numbers = result.numbers
    assert numbers["failed"] == 0
    assert numbers["replaced"] == 3
    # 40 requests/s for a rollout of three pods (each at least preStop 3 s): many requests.
    assert numbers["requests"] > 100
    assert numbers["dnat_flows"] >= numbers["requests"]
    # The new pods served too: the update really happened under the load.
    assert len(numbers["served_by"]) > 3

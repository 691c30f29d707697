"""[kernel-vs-proxy] in the lab: all three load balancers ran and gave figures (root).

No speed is asserted: the machine is shared and the figures are noisy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seaway.lab.namespaces import ip_available
from seaway.lab.scenarios import kernel_vs_proxy
from seaway.lab.spec import load_lab

WHY_NOT = ip_available()
pytestmark = [
    pytest.mark.skipif(bool(WHY_NOT), reason=f"lab tests need root, `ip netns` and nft: {WHY_NOT}"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
    pytest.mark.root,
]


@pytest.mark.timeout(120)
async def test_kernel_vs_proxy(lab_state_dir: Path) -> None:
    lines: list[str] = []
    result = await kernel_vs_proxy.run(load_lab(None), lab_state_dir, lines.append)
    assert result.ok, (result.failed_checks(), lines)
    table = result.numbers["table"]
    assert set(table) == {"kernel (nftables)", "seaway L4 proxy", "HAProxy mode tcp"}
    for row in table.values():
        assert row["runs"] == kernel_vs_proxy.ROUNDS
        assert row["requests_per_second"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert any("requests/s relative to HAProxy" in line for line in lines)

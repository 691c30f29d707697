"""Each scenario with real packets in network namespaces (root; CI runs them as root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.lab.namespaces import ip_available
from seaway.lab.scenarios import keepalive_spread, node_drain, packet_life, rolling_update
from seaway.lab.spec import load_lab

WHY_NOT = ip_available()
needs_namespaces = pytest.mark.skipif(
    bool(WHY_NOT), reason=f"lab tests need root, `ip netns` and nft: {WHY_NOT}"
)

pytestmark = [needs_namespaces, pytest.mark.root]


def _say(lines: list[str]):  # type: ignore[no-untyped-def]
    return lines.append


async def test_packet_life(lab_state_dir: Path) -> None:
    lines: list[str] = []
    result = await packet_life.run(load_lab(None), lab_state_dir, _say(lines))
    assert result.ok, result.failed_checks()
    text = "\n".join(lines)
    assert "pod saw 203.0.113.5 (the client)" in text  # Local keeps the client's address
    assert "node-c (no local pod): traffic dropped" in text
    assert "pod saw 198.18.0.13 (node-c)" in text  # Cluster: source NAT to the node


async def test_rolling_update(lab_state_dir: Path) -> None:
    result = await rolling_update.run(load_lab(None), lab_state_dir, lambda _: None)
    assert result.ok, result.failed_checks()
    assert result.numbers["right"]["failed"] == 0
    assert result.numbers["right"]["requests"] > 100
    assert result.numbers["wrong"]["failed"] > 0
    assert result.numbers["wrong"]["unexplained"] == 0


async def test_node_drain(lab_state_dir: Path) -> None:
    result = await node_drain.run(load_lab(None), lab_state_dir, lambda _: None)
    assert result.ok, result.failed_checks()
    assert result.numbers["failed"] == 0
    assert result.numbers["through_drained_node_after_taint"] == 0


async def test_keepalive_spread(lab_state_dir: Path) -> None:
    result = await keepalive_spread.run(load_lab(None), lab_state_dir, lambda _: None)
    assert result.ok, result.failed_checks()
    assert result.numbers["new_pod_requests"] == 0
    assert sum(result.numbers["per_pod"].values()) == 2 * 6 * 10
    # The L7 route (an Ingress the lab wrote, served by seaway) spreads the same
    # keep-alive clients' requests over every pod, the one added later included.
    ratios = result.numbers["max_over_mean"]
    assert ratios["l7_before"] < 1.2 and ratios["l7_after"] < 1.2
    assert ratios["l4_after"] >= 1.2
    assert len(result.numbers["l7"]["after"]) == 4
    assert result.numbers["l7_new_pod_requests"] > 0

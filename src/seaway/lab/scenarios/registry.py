"""The scenarios ``seaway lab run`` knows, by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from seaway.lab.scenarios import (
    dsr_client_ip,
    idle_reset,
    keepalive_spread,
    kernel_rolling_update,
    kernel_vs_proxy,
    node_drain,
    packet_life,
    rolling_update,
)
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec

Scenario = Callable[[LabSpec, Path, Say], Awaitable[ScenarioResult]]

SCENARIOS: dict[str, tuple[Scenario, str]] = {
    packet_life.NAME: (
        packet_life.run,
        "life of a packet with externalTrafficPolicy Cluster and Local",
    ),
    rolling_update.NAME: (
        rolling_update.run,
        "rolling update under load, lifecycle timeline wrong then right",
    ),
    node_drain.NAME: (node_drain.run, "node tainted, drained and removed under load"),
    keepalive_spread.NAME: (
        keepalive_spread.run,
        "keep-alive clients against an L4 Service and an L7 route: spread over pods",
    ),
    idle_reset.NAME: (
        idle_reset.run,
        "kernel path: idle connections and a backend change, by selection (RST count)",
    ),
    dsr_client_ip.NAME: (
        dsr_client_ip.run,
        "kernel path: policy Local with direct server return keeps the client address",
    ),
    kernel_rolling_update.NAME: (
        kernel_rolling_update.run,
        "kernel path: rolling update under load with the timeline right, zero failures",
    ),
    kernel_vs_proxy.NAME: (
        kernel_vs_proxy.run,
        "throughput and latency: kernel path vs seaway's L4 proxy vs HAProxy (mode tcp)",
    ),
}

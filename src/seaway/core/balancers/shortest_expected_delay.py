"""IPVS ``sed``: shortest expected delay, as ``net/netfilter/ipvs/ip_vs_sed.c`` schedules.

The expected delay of a server is ``(activeconns + 1) / weight``: the time to serve
everything it holds plus the new connection, if it serves in parallel at a rate
proportional to its weight. Inactive connections are ignored. As in ``wlc``, the
kernel compares cross products and switches only on a strictly smaller delay, so ties
go to the earlier server.
"""

from __future__ import annotations

from collections.abc import Set
from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer
from seaway.core.config import Backend


class ShortestExpectedDelayBalancer(ConnectionCountingBalancer):
    """Picks the backend with the smallest ``(active + 1) / weight``."""

    name: ClassVar[str] = "sed"

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        active = self.counts.by_key.get
        least: Backend | None = None
        least_overhead = 0
        for backend, key in self._entries:
            if avoid and backend in avoid:
                continue
            overhead = active(key, 0) + 1  # ip_vs_sed_dest_overhead
            if least is None or least_overhead * backend.weight > overhead * least.weight:
                least = backend
                least_overhead = overhead
        return least

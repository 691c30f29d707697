"""IPVS ``nq``: never queue, as ``net/netfilter/ipvs/ip_vs_nq.c`` schedules.

Walking the servers in order, the first one with no active connection is taken at
once (nothing would queue behind it); when every server is busy, the choice is ``sed``'s:
the smallest ``(activeconns + 1) / weight``, ties to the earlier server.
"""

from __future__ import annotations

from collections.abc import Set
from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer
from seaway.core.config import Backend


class NeverQueueBalancer(ConnectionCountingBalancer):
    """Picks the first idle backend, else the smallest expected delay."""

    name: ClassVar[str] = "nq"

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
            connections = active(key, 0)
            if connections == 0:
                return backend
            overhead = connections + 1  # ip_vs_nq_dest_overhead
            if least is None or least_overhead * backend.weight > overhead * least.weight:
                least = backend
                least_overhead = overhead
        return least

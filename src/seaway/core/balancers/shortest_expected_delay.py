"""IPVS ``sed``: shortest expected delay, as ``net/netfilter/ipvs/ip_vs_sed.c`` schedules.

The expected delay of a server is ``(activeconns + 1) / weight``: the time to serve
everything it holds plus the new connection, if it serves in parallel at a rate
proportional to its weight. Inactive connections are ignored. As in ``wlc``, the
kernel compares cross products and switches only on a strictly smaller delay, so ties
go to the earlier server.
"""

from __future__ import annotations

from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer


class ShortestExpectedDelayBalancer(ConnectionCountingBalancer):
    """Picks the backend with the smallest ``(active + 1) / weight``."""

    name: ClassVar[str] = "sed"
    queued_cost = 1  # ip_vs_sed_dest_overhead: activeconns + 1

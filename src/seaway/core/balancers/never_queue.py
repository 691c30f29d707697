"""IPVS ``nq``: never queue, as ``net/netfilter/ipvs/ip_vs_nq.c`` schedules.

Walking the servers in order, the first one with no active connection is taken at
once (nothing would queue behind it); when every server is busy, the choice is ``sed``'s:
the smallest ``(activeconns + 1) / weight``, ties to the earlier server.
"""

from __future__ import annotations

from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer


class NeverQueueBalancer(ConnectionCountingBalancer):
    """Picks the first idle backend, else the smallest expected delay."""

    name: ClassVar[str] = "nq"
    queued_cost = 1  # ip_vs_nq_dest_overhead: activeconns + 1
    idle_wins = True

"""IPVS ``lc``: least connection, as ``net/netfilter/ipvs/ip_vs_lc.c`` schedules.

The load of a server is its connection overhead, ``activeconns * 256 + inactconns``
(``ip_vs_dest_conn_overhead`` in ``include/net/ip_vs.h``: an active connection is
taken to cost 256 times an inactive one). Weights only matter as "0 = quiesced".
The first server with the smallest overhead wins (strict ``<`` while walking the list).
"""

from __future__ import annotations

from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer

# ip_vs_dest_conn_overhead: activeconns << 8, i.e. an active connection weighs 256.
ACTIVE_CONNECTION_COST = 256


class LeastConnectionBalancer(ConnectionCountingBalancer):
    """Picks the backend with the fewest open connections (first one on ties)."""

    name: ClassVar[str] = "lc"
    # ip_vs_dest_conn_overhead; inactconns is always 0 in seaway (see connection_counts).
    active_cost = ACTIVE_CONNECTION_COST
    weighted = False  # weights only matter as "0 = quiesced"

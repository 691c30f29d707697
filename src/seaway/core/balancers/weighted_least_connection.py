"""IPVS ``wlc``: weighted least connection, as ``net/netfilter/ipvs/ip_vs_wlc.c`` schedules.

The chosen server minimises ``overhead / weight`` with ``overhead = activeconns * 256 +
inactconns``. The kernel has no floats, so it compares cross products: it starts from
the first available server and switches to a later one only when
``least_overhead * weight > overhead * least_weight`` (strictly), so ties go to the
earlier server. (``wlc`` is ipvsadm's default scheduler; kube-proxy's IPVS mode
defaults to ``rr`` unless ``--ipvs-scheduler`` names another.)
"""

from __future__ import annotations

from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer
from seaway.core.balancers.least_connection import ACTIVE_CONNECTION_COST


class WeightedLeastConnectionBalancer(ConnectionCountingBalancer):
    """Picks the backend with the smallest connection overhead per unit of weight."""

    name: ClassVar[str] = "wlc"
    active_cost = ACTIVE_CONNECTION_COST  # ip_vs_dest_conn_overhead

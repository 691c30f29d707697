"""IPVS ``wlc``: weighted least connection, as ``net/netfilter/ipvs/ip_vs_wlc.c`` schedules.

The chosen server minimises ``overhead / weight`` with ``overhead = activeconns * 256 +
inactconns``. The kernel has no floats, so it compares cross products: it starts from
the first available server and switches to a later one only when
``least_overhead * weight > overhead * least_weight`` (strictly), so ties go to the
earlier server. (``wlc`` is ipvsadm's default scheduler; kube-proxy's IPVS mode
defaults to ``rr`` unless ``--ipvs-scheduler`` names another.)
"""

from __future__ import annotations

from collections.abc import Set
from typing import ClassVar

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer
from seaway.core.balancers.least_connection import ACTIVE_CONNECTION_COST
from seaway.core.config import Backend


class WeightedLeastConnectionBalancer(ConnectionCountingBalancer):
    """Picks the backend with the smallest connection overhead per unit of weight."""

    name: ClassVar[str] = "wlc"

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
            overhead = active(key, 0) * ACTIVE_CONNECTION_COST
            if least is None or least_overhead * backend.weight > overhead * least.weight:
                least = backend
                least_overhead = overhead
        return least

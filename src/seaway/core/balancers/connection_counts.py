"""Open connections per backend, counted from ``started``/``ended``, for the IPVS schedulers.

The Linux IPVS least-connection family (``net/netfilter/ipvs/ip_vs_lc.c``,
``ip_vs_wlc.c``, ``ip_vs_sed.c``, ``ip_vs_nq.c``) reads each real server's
``activeconns`` (TCP connections in ESTABLISHED) and ``inactconns`` (every other
connection entry: SYN_RECV, FIN_WAIT, TIME_WAIT, and all UDP entries). seaway's proxy
holds a connection from ``started`` to ``ended`` and forgets it when it closes, so all
of its connections are active and ``inactconns`` is always 0 here.
"""

from __future__ import annotations

from collections.abc import Sequence

from seaway.core.balancers.base import CONNECTION_COUNTS, Balancer
from seaway.core.config import Backend


class ConnectionCounts:
    """Active connections per backend key (a key is absent when its count is 0).

    Counts are kept by key, across ``update``: a backend whose weight changed keeps
    its connections, and a backend that left the set while connections were still
    open is counted down as they end (and counted right if it comes back).
    """

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        # Read by the balancers' scans (``by_key.get(key, 0)``); changed only here.
        self.by_key: dict[str, int] = {}

    def started(self, backend: Backend) -> None:
        key = backend.key
        self.by_key[key] = self.by_key.get(key, 0) + 1

    def ended(self, backend: Backend) -> None:
        key = backend.key
        count = self.by_key.get(key, 0)
        # An unmatched ended() (a caller bug) must not drive a count below zero.
        if count <= 1:
            self.by_key.pop(key, None)
        else:
            self.by_key[key] = count - 1

    def active(self, backend: Backend) -> int:
        return self.by_key.get(backend.key, 0)

    def __len__(self) -> int:
        return len(self.by_key)


class ConnectionCountingBalancer(Balancer):
    """Base of the balancers that choose by open connections (IPVS lc, wlc, sed, nq).

    Backends keep the order they were given in (IPVS walks its destination list in
    the order the destinations were added, and breaks ties by that order); weight 0
    means quiesced: no new connections, as in IPVS.
    """

    needs = frozenset({CONNECTION_COUNTS})

    def __init__(self, backends: Sequence[Backend]) -> None:
        self.counts = ConnectionCounts()
        self._backends: tuple[Backend, ...] = ()
        self._entries: tuple[tuple[Backend, str], ...] = ()
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        # Keys computed once per update, not once per backend per pick.
        self._entries = tuple((b, b.key) for b in self._backends)

    def started(self, backend: Backend) -> None:
        self.counts.started(backend)

    def ended(self, backend: Backend) -> None:
        self.counts.ended(backend)

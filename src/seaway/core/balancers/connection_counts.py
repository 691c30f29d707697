"""Open connections per backend, counted from ``started``/``ended``, for the IPVS schedulers.

The Linux IPVS least-connection family (``net/netfilter/ipvs/ip_vs_lc.c``,
``ip_vs_wlc.c``, ``ip_vs_sed.c``, ``ip_vs_nq.c``) reads each real server's
``activeconns`` (TCP connections in ESTABLISHED) and ``inactconns`` (every other
connection entry: SYN_RECV, FIN_WAIT, TIME_WAIT, and all UDP entries). seaway's proxy
holds a connection from ``started`` to ``ended`` and forgets it when it closes, so all
of its connections are active and ``inactconns`` is always 0 here. The workers of
``seaway run --workers N`` count in a shared store and balance on the sum, as the
kernel's one table of connections would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import CONNECTION_COUNTS, Balancer
from seaway.core.config import Backend
from seaway.core.sharing import MAX_CACHED_KEYS, SharedCounts, shared_key


class ConnectionCounts:
    """Active connections per backend key (a key is absent when its count is 0).

    Counts are kept by key, across ``update``: a backend whose weight changed keeps
    its connections, and a backend that left the set while connections were still
    open is counted down as they end (and counted right if it comes back).

    ``by_key`` holds this process's connections. Alone, a process balances on them;
    after ``share`` (one of several workers) every change also goes to this worker's
    row of the shared counts, and ``count_of``/``active`` answer with the sum over
    every worker. The balancers' scans read ``count_of(key, 0)``.
    """

    __slots__ = ("_keys", "_prefix", "_shared", "by_key", "count_of")

    def __init__(self) -> None:
        # Changed only here; read through ``count_of`` while counting alone.
        self.by_key: dict[str, int] = {}
        # ``by_key.get`` itself while counting alone: the scans pay no extra call.
        self.count_of: Callable[[str, int], int] = self.by_key.get
        self._shared: SharedCounts | None = None
        self._prefix = ""
        self._keys: dict[str, int] = {}

    def share(self, shared: SharedCounts, prefix: str) -> None:
        """Count in ``shared`` too, under ``shared_key(prefix, backend key)``, and
        answer with the counts of every worker from now on."""
        self._shared = shared
        self._prefix = prefix
        self._keys = {}
        self.count_of = shared.reader(self._key)

    def release(self) -> None:
        """Stop counting in the shared store and drop this worker's counts there (the
        balancer is replaced by one that does not count: nobody would count down)."""
        shared = self._shared
        if shared is None:
            return
        for key in self._keys.values():
            shared.reset(key)
        self._shared = None
        self._keys = {}
        self.count_of = self.by_key.get

    def _key(self, backend_key: str) -> int:
        key = self._keys.get(backend_key)
        if key is None:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            key = self._keys[backend_key] = shared_key(self._prefix, backend_key)
        return key

    def started(self, backend: Backend) -> None:
        key = backend.key
        self.by_key[key] = self.by_key.get(key, 0) + 1
        if self._shared is not None:
            self._shared.increment(self._key(key))

    def ended(self, backend: Backend) -> None:
        key = backend.key
        count = self.by_key.get(key, 0)
        # An unmatched ended() (a caller bug) must not drive a count below zero.
        if count <= 1:
            self.by_key.pop(key, None)
        else:
            self.by_key[key] = count - 1
        # Counted down even when ``by_key`` had nothing: a rebuilt balancer ends the
        # connections its predecessor started, and this worker's row still holds
        # them (the row never goes below zero either).
        if self._shared is not None:
            self._shared.decrement(self._key(key))

    def active(self, backend: Backend) -> int:
        """The count the balancer balances on: this process's, or every worker's."""
        return self.count_of(backend.key, 0)

    def __len__(self) -> int:
        return len(self.by_key)


class ConnectionCountingBalancer(Balancer):
    """Base of the balancers that choose by open connections (IPVS lc, wlc, sed, nq).

    Backends keep the order they were given in (IPVS walks its destination list in
    the order the destinations were added, and breaks ties by that order); weight 0
    means quiesced: no new connections, as in IPVS.

    The four schedulers differ only in how a server's load is counted, which their
    class attributes say: ``overhead = connections * active_cost + queued_cost``,
    compared per unit of weight when ``weighted``. Like the kernel, the scan compares
    cross products (no division) and switches only to a strictly smaller load, so
    ties go to the earlier server; with ``idle_wins`` the first server without a
    connection is taken at once.
    """

    needs = frozenset({CONNECTION_COUNTS})
    active_cost: ClassVar[int] = 1
    queued_cost: ClassVar[int] = 0
    weighted: ClassVar[bool] = True
    idle_wins: ClassVar[bool] = False

    counts: ConnectionCounts

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

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        active = self.counts.count_of
        active_cost, queued_cost = self.active_cost, self.queued_cost
        weighted, idle_wins = self.weighted, self.idle_wins
        least: Backend | None = None
        least_overhead = least_weight = 0
        for backend, key in self._entries:
            if avoid and backend in avoid:
                continue
            connections = active(key, 0)
            if idle_wins and connections == 0:
                return backend
            overhead = connections * active_cost + queued_cost
            weight = backend.weight if weighted else 1
            if least is None or least_overhead * weight > overhead * least_weight:
                least, least_overhead, least_weight = backend, overhead, weight
        return least

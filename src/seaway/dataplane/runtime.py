"""DataPlaneRuntime: the state every data plane's runtime shares.

Counters by backend and by listener, and the way traffic outcomes reach the health
state (outlier detection). The L4 proxy and the L7 proxy each extend it with what
only they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping

from seaway.accesslog import AccessLog
from seaway.core.config import BackendSet
from seaway.core.health import EventKind, HealthEvent
from seaway.dataplane.base import BackendCounters, Counters, ListenerCounters


class DataPlaneRuntime:
    """Counters, access log and health reports of one data plane (owned by the plane)."""

    __slots__ = ("access_log", "counters", "loop", "on_health_event")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.counters = Counters()
        # Where finished connections or requests are logged (seaway.accesslog), if anywhere.
        self.access_log: AccessLog | None = None
        # Where traffic outcomes go (outlier detection), if anywhere.
        self.on_health_event: Callable[[HealthEvent], None] | None = None

    def report(self, set_key: str, backend_key: str, kind: EventKind) -> None:
        """Tell the owner of the health state how a connection or request went."""
        sink = self.on_health_event
        if sink is not None:
            sink(HealthEvent(set_key, backend_key, kind, self.loop.time()))

    def backend_counters(self, set_key: str, backend_key: str) -> BackendCounters:
        key = (set_key, backend_key)
        counters = self.counters.backends.get(key)
        if counters is None:
            counters = self.counters.backends[key] = BackendCounters()
        return counters

    def listener_counters(self, listener_key: str) -> ListenerCounters:
        counters = self.counters.listeners.get(listener_key)
        if counters is None:
            counters = self.counters.listeners[listener_key] = ListenerCounters()
        return counters

    def prune(self, listener_keys: Collection[str], backend_sets: Mapping[str, BackendSet]) -> None:
        """Forget counters of listeners and backends that are gone and idle."""
        counters = self.counters
        for key in [k for k, c in counters.listeners.items() if c.active == 0]:
            if key not in listener_keys:
                del counters.listeners[key]
        for set_key, backend_key in [k for k, c in counters.backends.items() if c.active == 0]:
            spec = backend_sets.get(set_key)
            if spec is None or all(b.key != backend_key for b in spec.backends):
                del counters.backends[(set_key, backend_key)]


# How often a draining data plane looks whether its last connection ended.
DRAIN_POLL_SECONDS = 0.05


async def wait_until_drained(open_count: Callable[[], int], limit: float | None) -> int:
    """Wait until ``open_count()`` is 0 or ``limit`` s passed (None: no limit); what is left.

    Connections end in protocol callbacks; polling is simpler than a notifier there.
    """
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while open_count():
        if deadline is not None and loop.time() >= deadline:
            break
        await asyncio.sleep(DRAIN_POLL_SECONDS)
    return open_count()

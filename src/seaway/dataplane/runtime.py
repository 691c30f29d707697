"""DataPlaneRuntime: the state every data plane's runtime shares.

Counters by backend and by listener, and the way traffic outcomes reach the health
state (outlier detection). The L4 proxy and the L7 proxy each extend it with what
only they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from seaway.accesslog import AccessLog
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

"""ProxyRuntime: what every listener and connection of one proxy data plane shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from seaway.accesslog import AccessLog
from seaway.core.health import EventKind, HealthEvent
from seaway.dataplane.base import BackendCounters, Counters, ListenerCounters
from seaway.dataplane.proxy.live_set import LiveBackendSet
from seaway.model.objects import SeawaySettings


class Closable(Protocol):
    """A live connection the plane must be able to close on shutdown."""

    def abort(self) -> None: ...


class ProxyRuntime:
    """Shared, mutable state of one ``ProxyDataPlane``.

    The plane owns it and replaces ``settings`` and the entries of ``sets`` on each
    apply; listeners and connections read them at the moment they need them, so a
    change takes effect for the next connection without touching open ones.
    """

    __slots__ = (
        "access_log",
        "connections",
        "counters",
        "loop",
        "on_health_event",
        "sets",
        "settings",
        "tasks",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.settings = SeawaySettings()
        self.sets: dict[str, LiveBackendSet] = {}
        self.counters = Counters()
        # Every open TCP connection, whichever listener accepted it (listeners may be
        # gone while their connections carry on).
        self.connections: set[Closable] = set()
        # Connect tasks; each is owned by its connection, and by the plane on close.
        self.tasks: set[asyncio.Task[None]] = set()
        # Where finished connections are logged (seaway.accesslog), if anywhere.
        self.access_log: AccessLog | None = None
        # Where connect successes and failures go (outlier detection), if anywhere.
        self.on_health_event: Callable[[HealthEvent], None] | None = None

    def report(self, set_key: str, backend_key: str, kind: EventKind) -> None:
        """Tell the owner of the health state how a connection to a backend went."""
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

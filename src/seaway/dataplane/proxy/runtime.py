"""ProxyRuntime: what every listener and connection of one proxy data plane shares."""

from __future__ import annotations

import asyncio
from typing import Protocol

from seaway.core.live_set import LiveBackendSet
from seaway.dataplane.runtime import DataPlaneRuntime
from seaway.model.objects import SeawaySettings


class Closable(Protocol):
    """A live connection the plane must be able to close on shutdown."""

    def abort(self) -> None: ...


class ProxyRuntime(DataPlaneRuntime):
    """Shared, mutable state of one ``ProxyDataPlane``.

    The plane owns it and replaces ``settings`` and the entries of ``sets`` on each
    apply; listeners and connections read them at the moment they need them, so a
    change takes effect for the next connection without touching open ones.
    """

    __slots__ = ("connections", "sets", "settings", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.settings = SeawaySettings()
        self.sets: dict[str, LiveBackendSet] = {}
        # Every open TCP connection, whichever listener accepted it (listeners may be
        # gone while their connections carry on).
        self.connections: set[Closable] = set()
        # Connect tasks; each is owned by its connection, and by the plane on close.
        self.tasks: set[asyncio.Task[None]] = set()

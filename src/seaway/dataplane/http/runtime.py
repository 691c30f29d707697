"""HttpRuntime: what every listener, client connection and exchange of one HTTP data plane
shares, and the weighted choice among a route's backends."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, cast

from seaway.core.live_set import LiveBackendSet
from seaway.core.route_weights import SmoothWeights
from seaway.core.routes import RouteAction, RouteBackend
from seaway.dataplane.http.headers import Network, parse_networks
from seaway.dataplane.runtime import DataPlaneRuntime
from seaway.model.objects import SeawaySettings

if TYPE_CHECKING:
    from seaway.dataplane.http.downstream import ClientConnection
    from seaway.dataplane.http.h2_downstream import H2ClientConnection
    from seaway.dataplane.http.h2_upstream import H2UpstreamPool
    from seaway.dataplane.http.upstream import UpstreamPool

# Write buffer limits of every transport: above HIGH_WATER the other side stops
# reading, below LOW_WATER it reads again (the L4 proxy's values).
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# Request body bytes held per client connection while no backend takes them yet
# (connecting, or pipelined requests waiting their turn); past it reading stops.
MAX_BUFFERED_BODY = 1024 * 1024


class HttpRuntime(DataPlaneRuntime):
    """Shared, mutable state of one ``HttpDataPlane`` (owned by it).

    The plane replaces ``settings`` and updates ``sets`` in place on each apply;
    connections read them when a request starts, so changes apply to the next request
    without touching open connections.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, rng: random.Random) -> None:
        super().__init__(loop)
        self.rng = rng
        self.settings = SeawaySettings()
        self.trusted: tuple[Network, ...] = ()
        self.sets: dict[str, LiveBackendSet] = {}
        self.connections: set[ClientConnection | H2ClientConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._weights: dict[int, tuple[RouteAction, SmoothWeights]] = {}
        self._sequence = 0
        self.pool: UpstreamPool | None = None
        self.h2_pool: H2UpstreamPool | None = None
        self.wanted_keys: set[str] = set()

    def client_connected(
        self,
        connection: ClientConnection | H2ClientConnection,
        transport: asyncio.BaseTransport,
        listener_key: str,
    ) -> tuple[str, int]:
        """A client connection begins (either HTTP version): tracked and counted; its
        transport's buffer limits set. Returns the client's address ("", 0 if gone)."""
        cast(asyncio.Transport, transport).set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.connections.add(connection)
        counters = self.listener_counters(listener_key)
        counters.active += 1
        counters.total += 1
        peer = transport.get_extra_info("peername")
        return (str(peer[0]), int(peer[1])) if peer else ("", 0)

    def client_disconnected(
        self, connection: ClientConnection | H2ClientConnection, listener_key: str
    ) -> None:
        """A client connection ended: no longer tracked or counted as active."""
        self.connections.discard(connection)
        self.listener_counters(listener_key).active -= 1

    def apply_settings(self, settings: SeawaySettings) -> None:
        self.settings = settings
        self.trusted = parse_networks(settings.http.trusted_proxies)

    def next_sequence(self) -> int:
        """A per-request number, so that hash-based algorithms spread requests too."""
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        return self._sequence

    def pick_route_backend(self, action: RouteAction) -> RouteBackend | None:
        """The next of the action's weighted backends (None when it has none)."""
        if len(action.backends) == 1:
            return action.backends[0]
        entry = self._weights.get(id(action))
        if entry is None or entry[0] is not action:
            entry = self._weights[id(action)] = (action, SmoothWeights(action.backends))
        return entry[1].pick()

    def forget_weights(self) -> None:
        """Drop weighted-choice state (after the route tables changed)."""
        self._weights.clear()

    def refresh_wanted(self) -> None:
        """Recompute which backends some set holds (after the sets changed)."""
        self.wanted_keys = {b.key for live in self.sets.values() for b in live.spec.backends}

    def wanted(self, backend_key: str) -> bool:
        """Whether some backend set still holds this backend (pooled connections may stay)."""
        return backend_key in self.wanted_keys

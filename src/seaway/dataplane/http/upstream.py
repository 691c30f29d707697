"""Connections to backends and their pool.

An ``UpstreamConnection`` parses responses with httptools (llhttp) and hands their
events to the ``Exchange`` it serves; between exchanges it waits in the
``UpstreamPool``, which keeps idle connections per backend (newest first, closed after
an idle timeout), bounds the connections per backend, and never keeps one to a backend
that left every backend set.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from seaway.core.config import Backend
from seaway.dataplane.http.lazy_timer import LazyTimer
from seaway.dataplane.http.runtime import HIGH_WATER, LOW_WATER, HttpRuntime

if TYPE_CHECKING:
    from seaway.dataplane.http.exchange import Exchange

log = logging.getLogger(__name__)


class Corkable(Protocol):
    """Where a response goes: it can hold its writes until the end of a backend read."""

    def cork(self) -> None: ...

    def uncork(self) -> None: ...


class PoolExhausted(Exception):
    """Every allowed connection to the backend is busy and none freed up in time."""


class Waiters:
    """Requests waiting for room on a backend's connections, oldest first (per backend
    key); each pool keeps one. ``wake`` lets the oldest still waiting go on."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[str, collections.deque[asyncio.Future[None]]] = {}

    async def wait(self, key: str, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Wait until woken; PoolExhausted when ``deadline`` (loop time) passes first."""
        waiter: asyncio.Future[None] = loop.create_future()
        self._queues.setdefault(key, collections.deque()).append(waiter)
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                await waiter
        except TimeoutError:
            raise PoolExhausted(key) from None
        finally:
            with contextlib.suppress(ValueError):
                self._queues[key].remove(waiter)

    def wake(self, key: str) -> None:
        queue = self._queues.get(key)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _StopParsing(Exception):
    """Raised in a parser callback to stop at the end of a HEAD response's head."""


class UpstreamConnection(asyncio.Protocol):
    """One connection to one backend; serves one exchange at a time (owned by the pool)."""

    def __init__(self, pool: UpstreamPool, backend: Backend) -> None:
        self.pool = pool
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.closed = False
        self.reusable = True
        self.tunnel = False
        # Closes the connection after the pool's idle timeout; re-armed on every release
        # without scheduling a new timer each time.
        self.idle_timer = LazyTimer(pool.runtime.loop, self.close)
        # The backend's time to answer a request; armed once per request, so lazily too.
        self.response_timer = LazyTimer(pool.runtime.loop, self._response_timed_out)
        self._on_response_timeout: Callable[[], None] | None = None
        # The client side of the exchange served: corked while a backend read is parsed,
        # so that a response head and the body bytes of the same read leave in one send.
        self._writer: Corkable | None = None
        self._headers: list[tuple[str, str]] = []
        self._informational = False
        self._head_only = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            # Bytes from an idle backend (RFC 9112 section 9.3.1: nothing may come
            # before a request): the connection cannot be trusted any more.
            self.close()
            return
        if self.tunnel:
            exchange.tunnel_from_upstream(data)
            return
        writer = self._writer
        if writer is not None:
            writer.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = int(upgrade.args[0])
            exchange.upstream_upgraded(data[offset:])
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _StopParsing):
                log.error("bug while forwarding a response", exc_info=exc.__context__)
                self.reusable = False
                exchange.upstream_failed("the backend's response could not be forwarded")
        except httptools.HttpParserError as exc:
            self.reusable = False
            exchange.upstream_failed(f"invalid response from the backend ({exc})")
        finally:
            if writer is not None:
                writer.uncork()

    def eof_received(self) -> bool:
        self.reusable = False
        if self.exchange is not None:
            if self.tunnel:
                self.exchange.tunnel_upstream_eof()
                return True  # keep our sending side open: the client may still talk
            self.exchange.upstream_closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self.idle_timer.cancel()
        self.response_timer.cancel()
        self._on_response_timeout = None
        self.pool.forget(self)
        if self.exchange is not None:
            self.exchange.upstream_closed()

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_write_blocked(True)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_write_blocked(False)

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._informational = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = int(self.parser.get_status_code())
        exchange = self.exchange
        assert exchange is not None
        if 100 <= status < 200 and status != 101:
            # Interim responses (100 Continue, 103 Early Hints) are not passed on: the
            # proxy answered Expect itself (RFC 9110 section 15.2).
            self._informational = True
            return
        keep_alive = bool(self.parser.should_keep_alive())
        if not keep_alive:
            self.reusable = False
        exchange.response_head(status, self._headers, self.parser.get_http_version())
        if self._head_only:
            # A response to HEAD has no content whatever its framing fields say
            # (RFC 9110 section 9.3.2); llhttp cannot be told, so parsing stops here
            # and the connection is not reused.
            self.reusable = False
            exchange.response_done()
            raise _StopParsing

    def on_body(self, body: bytes) -> None:
        if not self._informational and self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.exchange is not None:
            self.exchange.response_done()

    # -- used by the exchange and the pool ---------------------------------------------

    def start(self, exchange: Exchange, *, head_only: bool, writer: Corkable | None = None) -> None:
        """Serve ``exchange`` (a new response is expected); ``writer``, if given, is
        corked around each read of the response."""
        self._cancel_idle_timer()
        self.exchange = exchange
        self._head_only = head_only
        self._writer = writer

    def expect_response(self, delay: float, on_timeout: Callable[[], None]) -> None:
        """Call ``on_timeout`` unless ``response_arrived`` comes within ``delay`` seconds."""
        self._on_response_timeout = on_timeout
        self.response_timer.set(delay)

    def response_arrived(self) -> None:
        """No longer waiting for a response (it came, or the exchange ended)."""
        if self._on_response_timeout is not None:
            self._on_response_timeout = None
            self.response_timer.clear()

    def _response_timed_out(self) -> None:
        callback, self._on_response_timeout = self._on_response_timeout, None
        if callback is not None:
            callback()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def write_eof(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        self.exchange = None
        self._writer = None
        self.response_arrived()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        self.exchange = None
        self._writer = None
        self.response_arrived()
        if self.transport is not None:
            self.transport.abort()

    def _cancel_idle_timer(self) -> None:
        self.idle_timer.clear()


class UpstreamPool:
    """Idle connections per backend, and the bound on connections per backend."""

    def __init__(self, runtime: HttpRuntime) -> None:
        self.runtime = runtime
        self.idle: dict[str, list[UpstreamConnection]] = {}
        self.open: dict[str, int] = {}
        self._all: set[UpstreamConnection] = set()
        self._waiters = Waiters()

    async def acquire(self, backend: Backend) -> tuple[UpstreamConnection, bool]:
        """A connection to ``backend`` and whether it was reused.

        Raises OSError or TimeoutError when connecting fails, PoolExhausted when the
        per-backend limit stays reached for the connect timeout.
        """
        key = backend.key
        settings = self.runtime.settings
        loop = self.runtime.loop
        deadline = loop.time() + settings.connect_timeout_seconds
        while True:
            reused = self.take_idle(backend)
            if reused is not None:
                return reused, True
            if self.open.get(key, 0) < settings.http.max_connections_per_backend:
                break
            await self._waiters.wait(key, loop, deadline)
        self.open[key] = self.open.get(key, 0) + 1
        try:
            async with asyncio.timeout(max(0.001, deadline - loop.time())):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self, backend), backend.address, backend.port
                )
        except BaseException:
            self._closed(key)
            raise
        self._all.add(conn)
        return conn, False

    def take_idle(self, backend: Backend) -> UpstreamConnection | None:
        """The newest idle connection to ``backend`` that is still open, or None."""
        idle = self.idle.get(backend.key)
        while idle:
            conn = idle.pop()
            if conn.usable():
                conn._cancel_idle_timer()
                return conn
        return None

    def release(self, conn: UpstreamConnection) -> None:
        """Take ``conn`` back after an exchange: keep it idle if it can serve another."""
        conn.exchange = None
        conn._writer = None
        conn.response_arrived()
        key = conn.backend.key
        if not conn.reusable or not conn.usable() or not self.runtime.wanted(key):
            conn.close()
            return
        self.idle.setdefault(key, []).append(conn)
        conn.idle_timer.set(self.runtime.settings.http.upstream_idle_timeout_seconds)
        self._waiters.wake(key)

    def forget(self, conn: UpstreamConnection) -> None:
        """``conn`` is closed: it no longer counts against its backend's limit."""
        if conn not in self._all:
            return
        self._all.discard(conn)
        key = conn.backend.key
        idle = self.idle.get(key)
        if idle is not None and conn in idle:
            idle.remove(conn)
        self._closed(key)

    def _closed(self, key: str) -> None:
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)
            if not self.idle.get(key):
                self.idle.pop(key, None)
        self._waiters.wake(key)

    def prune(self) -> None:
        """Close idle connections to backends that left every set."""
        for key in [k for k in self.idle if not self.runtime.wanted(k)]:
            for conn in list(self.idle.get(key, ())):
                conn.close()

    def idle_count(self, key: str | None = None) -> int:
        if key is not None:
            return len(self.idle.get(key, ()))
        return sum(len(v) for v in self.idle.values())

    def close_all(self) -> None:
        for conn in list(self._all):
            conn.abort()

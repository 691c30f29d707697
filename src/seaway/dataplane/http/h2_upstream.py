"""HTTP/2 to backends (h2c, prior knowledge): pooled connections carrying many streams.

An ``H2UpstreamPool`` keeps, per backend, the connections it opened; a new stream goes
on the first connection with room under the backend's SETTINGS_MAX_CONCURRENT_STREAMS,
else on a new connection (at most ``max_connections_per_backend``). The backend is
chosen per stream by the exchange, so one client connection's streams spread over
every backend. A connection to a backend that left every set takes no new stream and
closes when its last stream ends; an idle connection closes after the idle timeout.

Flow control on the response: the data of a stream is acknowledged (WINDOW_UPDATE) only
once its exchange forwarded it and the client side is not blocked, so a slow client
holds back only its own stream's backend, never reading more than one window ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from seaway.core.config import Backend
from seaway.dataplane.http.h2_flow import Fields, SendQueue, flush
from seaway.dataplane.http.runtime import HIGH_WATER, LOW_WATER, HttpRuntime
from seaway.dataplane.http.upstream import Waiters

log = logging.getLogger(__name__)

# Receive windows toward backends: 1 MiB per stream, 16 MiB per connection (RFC 9113
# section 6.9.2 lets a receiver raise them), so that a fast backend is not throttled
# by the 64 KiB defaults while each stream stays bounded by its own window.
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
# Request data queued for one stream beyond its send window before the exchange stops
# acknowledging (reading) the client's data.
SEND_BUFFER_LIMIT = 64 * 1024
# Streams per connection until the backend's SETTINGS say otherwise (RFC 9113
# section 6.5.2 recommends servers allow at least 100).
DEFAULT_MAX_STREAMS = 100


class StreamSink(Protocol):
    """What an ``H2UpstreamStream`` reports to the exchange it serves."""

    def response_head(self, status: int, fields: list[tuple[str, str]], version: str) -> None: ...
    def response_body(self, data: bytes) -> None: ...
    def response_trailers(self, fields: list[tuple[str, str]]) -> None: ...
    def response_done(self) -> None: ...
    def upstream_failed(self, message: str) -> None: ...
    def upstream_refused(self) -> None: ...
    def upstream_write_blocked(self, blocked: bool) -> None: ...


def _text(fields: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields]


class H2UpstreamStream:
    """One request/response on an ``H2UpstreamConnection`` (owned by its exchange)."""

    def __init__(self, conn: H2UpstreamConnection, stream_id: int, sink: StreamSink) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.sink: StreamSink | None = sink
        self.queue = SendQueue()
        self.blocked = False
        self.paused = False
        self.unacked = 0
        self.ended_with_head = False  # the response was one HEADERS frame (trailers-only)
        self.response_complete = False
        self.closed = False

    # -- used by the exchange --------------------------------------------------------

    def send_head(self, fields: list[tuple[str, str]], *, end_stream: bool) -> None:
        encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in fields]
        self.conn.send_headers(self, encoded, end_stream=end_stream)
        if end_stream:
            self.queue.ended = self.queue.finished = True

    def send_body(self, data: bytes) -> None:
        self.queue.push(data)
        self.conn.flush_stream(self)

    def end_body(self, trailers: list[tuple[str, str]] | None = None) -> None:
        encoded = None
        if trailers:
            encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in trailers]
        self.queue.end(encoded)
        self.conn.flush_stream(self)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
        if self.unacked:
            amount, self.unacked = self.unacked, 0
            self.conn.acknowledge(self, amount)

    def abort(self) -> None:
        """Cancel the stream (RST_STREAM CANCEL) and forget the exchange."""
        self.sink = None
        if not self.closed:
            self.conn.reset(self, h2.errors.ErrorCodes.CANCEL)

    def release(self) -> None:
        """The exchange is done with a complete response."""
        self.sink = None
        if not (self.response_complete and self.queue.finished):
            self.abort()

    # -- from the connection ---------------------------------------------------------

    def data(self, data: bytes, flow_length: int) -> None:
        sink = self.sink
        if sink is not None:
            sink.response_body(data)
        if self.paused and sink is not None:
            self.unacked += flow_length
        else:
            self.conn.acknowledge(self, flow_length)

    def update_blocked(self) -> None:
        blocked = self.queue.queued > SEND_BUFFER_LIMIT or self.conn.write_blocked
        if blocked != self.blocked:
            self.blocked = blocked
            if self.sink is not None:
                self.sink.upstream_write_blocked(blocked)


class H2UpstreamConnection(asyncio.Protocol):
    """One HTTP/2 connection to one backend (owned by the pool)."""

    def __init__(self, pool: H2UpstreamPool, backend: Backend) -> None:
        self.pool = pool
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, H2UpstreamStream] = {}
        self.write_blocked = False
        self.goaway = False  # the backend sent GOAWAY, or we stop using it
        self.closed = False
        self.idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._write()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.info("HTTP/2 protocol error from backend %s: %s", self.backend.key, exc)
            self._write()
            self._fail_all("the backend broke the HTTP/2 protocol")
            self.abort()
            return
        for event in events:
            self._event(event)
        self._write()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None and stream.sink is not None:
                fields = _text(cast(list[tuple[bytes, bytes]], event.headers or []))
                status = next((int(v) for n, v in fields if n == ":status"), 502)
                stream.ended_with_head = event.stream_ended is not None
                rest = [(n, v) for n, v in fields if not n.startswith(":")]
                stream.sink.response_head(status, rest, "2")
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id or 0)
            length = event.flow_controlled_length or 0
            if stream is not None:
                stream.data(event.data or b"", length)
            elif length:
                with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
                    self.h2.acknowledge_received_data(length, event.stream_id or 0)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None and stream.sink is not None:
                fields = _text(cast(list[tuple[bytes, bytes]], event.headers or []))
                stream.sink.response_trailers(fields)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.response_complete = True
                if stream.sink is not None:
                    stream.sink.response_done()
                self._stream_closed_maybe(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                self._drop(stream)
                if stream.sink is not None:
                    sink, stream.sink = stream.sink, None
                    if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                        sink.upstream_refused()
                    else:
                        sink.upstream_failed(f"the backend reset the stream ({event.error_code})")
        elif isinstance(event, h2.events.WindowUpdated):
            targets = (
                list(self.streams.values())
                if not event.stream_id
                else [s for s in (self.streams.get(event.stream_id),) if s is not None]
            )
            for stream in targets:
                self.flush_stream(stream, write=False)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = True
            last = event.last_stream_id or 0
            for stream in [s for s in self.streams.values() if s.stream_id > last]:
                # Never processed by the backend (RFC 9113 section 6.8): safe to retry.
                self._drop(stream)
                if stream.sink is not None:
                    sink, stream.sink = stream.sink, None
                    sink.upstream_refused()
            self.pool.retire(self)
            if not self.streams:
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.goaway = True
        self._cancel_idle_timer()
        self.pool.forget(self)
        self._fail_all("the backend closed the HTTP/2 connection")

    def pause_writing(self) -> None:
        self.write_blocked = True
        for stream in list(self.streams.values()):
            stream.update_blocked()

    def resume_writing(self) -> None:
        self.write_blocked = False
        for stream in list(self.streams.values()):
            stream.update_blocked()

    # -- streams -------------------------------------------------------------------

    def has_room(self) -> bool:
        if self.goaway or self.closed or self.transport is None or self.transport.is_closing():
            return False
        limit = min(self.h2.remote_settings.max_concurrent_streams, DEFAULT_MAX_STREAMS * 10)
        return len(self.streams) < limit

    def open_stream(self, sink: StreamSink) -> H2UpstreamStream:
        self._cancel_idle_timer()
        stream = H2UpstreamStream(self, self.h2.get_next_available_stream_id(), sink)
        self.streams[stream.stream_id] = stream
        return stream

    def send_headers(self, stream: H2UpstreamStream, fields: Fields, *, end_stream: bool) -> None:
        try:
            self.h2.send_headers(stream.stream_id, fields, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            self._drop(stream)
            if stream.sink is not None:
                sink, stream.sink = stream.sink, None
                sink.upstream_refused() if self.goaway else sink.upstream_failed(str(exc))
            return
        self._write()

    def flush_stream(self, stream: H2UpstreamStream, *, write: bool = True) -> None:
        if stream.closed:
            return
        flush(self.h2, stream.stream_id, stream.queue)
        stream.update_blocked()
        self._stream_closed_maybe(stream)
        if write:
            self._write()

    def acknowledge(self, stream: H2UpstreamStream, amount: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError, ValueError):
            self.h2.acknowledge_received_data(amount, stream.stream_id)
        self._write()

    def reset(self, stream: H2UpstreamStream, code: h2.errors.ErrorCodes) -> None:
        if not stream.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
                self.h2.reset_stream(stream.stream_id, code)
            self._drop(stream)
            self._write()

    def _stream_closed_maybe(self, stream: H2UpstreamStream) -> None:
        if stream.response_complete and stream.queue.finished:
            self._drop(stream)

    def _drop(self, stream: H2UpstreamStream) -> None:
        stream.closed = True
        if self.streams.pop(stream.stream_id, None) is None:
            return
        self.pool.stream_ended(self)
        if not self.streams:
            if self.goaway or not self.pool.runtime.wanted(self.backend.key):
                self.close()
            else:
                self._arm_idle_timer()

    def _fail_all(self, message: str) -> None:
        for stream in list(self.streams.values()):
            self._drop(stream)
            if stream.sink is not None:
                sink, stream.sink = stream.sink, None
                sink.upstream_failed(message)

    # -- the connection ------------------------------------------------------------

    def _write(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        delay = self.pool.runtime.settings.http.upstream_idle_timeout_seconds
        self.idle_timer = self.pool.runtime.loop.call_later(delay, self.close)

    def _cancel_idle_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def close(self) -> None:
        """GOAWAY and close (streams still open are failed)."""
        self.goaway = True
        self._cancel_idle_timer()
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
            self._write()
            self.transport.close()

    def abort(self) -> None:
        self.goaway = True
        if self.transport is not None:
            self.transport.abort()


class H2UpstreamPool:
    """HTTP/2 connections per backend and the streams on them (owned by the data plane)."""

    def __init__(self, runtime: HttpRuntime) -> None:
        self.runtime = runtime
        self.conns: dict[str, list[H2UpstreamConnection]] = {}
        self._all: set[H2UpstreamConnection] = set()
        self._connecting: dict[str, asyncio.Future[None]] = {}
        self._waiters = Waiters()

    async def open_stream(
        self, backend: Backend, sink: StreamSink
    ) -> tuple[H2UpstreamStream, bool]:
        """A new stream to ``backend`` and whether its connection was reused.

        Raises OSError or TimeoutError when connecting fails, PoolExhausted when every
        allowed connection is full for the connect timeout.
        """
        key = backend.key
        loop = self.runtime.loop
        settings = self.runtime.settings
        deadline = loop.time() + settings.connect_timeout_seconds
        while True:
            for conn in self.conns.get(key, ()):
                if conn.has_room():
                    return conn.open_stream(sink), True
            pending = self._connecting.get(key)
            if pending is not None:
                async with asyncio.timeout(max(0.001, deadline - loop.time())):
                    await asyncio.shield(pending)
                continue
            if len(self.conns.get(key, ())) < settings.http.max_connections_per_backend:
                conn = await self._connect(backend, deadline)
                return conn.open_stream(sink), False
            await self._waiters.wait(key, loop, deadline)

    async def _connect(self, backend: Backend, deadline: float) -> H2UpstreamConnection:
        key = backend.key
        loop = self.runtime.loop
        done: asyncio.Future[None] = loop.create_future()
        self._connecting[key] = done
        try:
            async with asyncio.timeout(max(0.001, deadline - loop.time())):
                _, conn = await loop.create_connection(
                    lambda: H2UpstreamConnection(self, backend), backend.address, backend.port
                )
        finally:
            del self._connecting[key]
            done.set_result(None)
        self._all.add(conn)
        self.conns.setdefault(key, []).append(conn)
        return conn

    def stream_ended(self, conn: H2UpstreamConnection) -> None:
        self._waiters.wake(conn.backend.key)

    def retire(self, conn: H2UpstreamConnection) -> None:
        """``conn`` takes no new streams (GOAWAY): new streams open another connection."""
        group = self.conns.get(conn.backend.key)
        if group is not None and conn in group:
            group.remove(conn)
            if not group:
                del self.conns[conn.backend.key]
        self.stream_ended(conn)

    def forget(self, conn: H2UpstreamConnection) -> None:
        self.retire(conn)
        self._all.discard(conn)

    def prune(self) -> None:
        """Backends that left every set: idle connections close, busy ones take no new
        streams and close after their last."""
        for conn in list(self._all):
            if not self.runtime.wanted(conn.backend.key):
                self.retire(conn)
                conn.goaway = True
                if not conn.streams:
                    conn.close()

    def connection_count(self, key: str | None = None) -> int:
        return sum(1 for c in self._all if key is None or c.backend.key == key)

    def close_all(self) -> None:
        for conn in list(self._all):
            conn.abort()

"""TCP proxying: a listener, and connections spliced between a client and a backend.

Built on ``asyncio.Protocol`` callbacks rather than streams: bytes go from one
transport straight into the other, without a task per direction. Backpressure is
the transports' own: when one side's write buffer passes its high-water mark
(``pause_writing``), reading stops on the other side until it drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from typing import cast

from seaway.accesslog import (
    RESULT_CONNECT_FAILED,
    RESULT_NO_BACKEND,
    RESULT_OK,
    RESULT_REJECTED,
    RESULT_RESET,
    ConnectionRecord,
)
from seaway.core.config import Backend, Listener
from seaway.core.live_set import LiveBackendSet
from seaway.dataplane.base import BackendCounters, ListenerCounters
from seaway.dataplane.proxy import sockopts
from seaway.dataplane.proxy.proxy_protocol import (
    MalformedProxyHeader,
    decode,
    encode_v1,
    encode_v2,
)
from seaway.dataplane.proxy.runtime import ProxyRuntime
from seaway.dataplane.proxy.source_ranges import source_allowed
from seaway.model.objects import KeepaliveSettings
from seaway.workers import listeners_shared

log = logging.getLogger(__name__)

# Write buffer limits of both legs: above HIGH_WATER the other side stops reading,
# below LOW_WATER it reads again. 256 KiB keeps a 10 Gbit/s link busy for ~200 us
# per connection while bounding each connection's memory.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# Client bytes held while the backend connection is being made; past this the
# client is not read until the backend is up.
PENDING_LIMIT = 256 * 1024
# proxy-protocol.txt section 2: a receiver may abort when no header came within a
# few seconds, "at least 3 seconds to cover a TCP retransmit".
PROXY_HEADER_TIMEOUT = 3.0
# listen(2) backlog: enough for bursts of new connections without SYN drops.
LISTEN_BACKLOG = 1024
# Linux copies a listening socket's options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT,
# TCP_NODELAY) to the sockets it accepts (sk_clone_lock copies the socket), so the
# client leg's keepalive is set once on the listener instead of four setsockopt(2)
# calls per connection. Elsewhere each connection is tuned through sockopts.
LINUX = sys.platform == "linux"
# After the listener's keepalive options change, connections already waiting in the
# kernel's accept queue still carry the old ones: for this long every accepted
# connection is tuned by itself as well.
ACCEPT_QUEUE_GRACE = 2.0


class TcpListener:
    """One TCP listening socket; its specification can change while it stays open."""

    __slots__ = ("_keepalive", "_tuned_until", "runtime", "server", "spec")

    def __init__(self, spec: Listener, runtime: ProxyRuntime) -> None:
        self.spec = spec
        self.runtime = runtime
        self.server: asyncio.AbstractServer | None = None
        # The keepalive options the listening socket carries (None: not set), and
        # until when accepted connections are tuned one by one all the same.
        self._keepalive: KeepaliveSettings | None = None
        self._tuned_until = 0.0

    async def open(self) -> None:
        """Bind and listen; raises OSError when the address cannot be bound."""
        self.server = await self.runtime.loop.create_server(
            lambda: TcpConnection(self),
            host=self.spec.address,
            port=self.spec.port,
            reuse_address=True,
            # Several workers (seaway run --workers): the kernel spreads connections.
            reuse_port=listeners_shared() or None,
            backlog=LISTEN_BACKLOG,
        )

    def update(self, spec: Listener) -> None:
        """Take a new specification; it applies to connections accepted from now on."""
        self.spec = spec

    def inherits(self, keepalive: KeepaliveSettings) -> bool:
        """Whether a connection accepted now carries ``keepalive`` from the listening
        socket. When the settings changed, the listening socket is given them, and for
        ``ACCEPT_QUEUE_GRACE`` this says no."""
        current = self._keepalive
        if current is keepalive:
            return self._tuned_until == 0.0 or self._expire_grace()
        if current is not None and current == keepalive:
            self._keepalive = keepalive  # an equal copy from a new apply
            return self._tuned_until == 0.0 or self._expire_grace()
        self._keepalive = None
        server = self.server
        if not LINUX or server is None:
            return False
        try:
            for sock in cast(asyncio.Server, server).sockets:
                _set_keepalive(sock, keepalive)
        except OSError:
            return False
        self._keepalive = keepalive
        self._tuned_until = self.runtime.loop.time() + ACCEPT_QUEUE_GRACE
        return False

    def _expire_grace(self) -> bool:
        if self.runtime.loop.time() < self._tuned_until:
            return False
        self._tuned_until = 0.0
        return True

    def close(self) -> None:
        """Stop accepting. Established connections are not touched."""
        if self.server is not None:
            self.server.close()
            self.server = None


def _set_keepalive(sock: socket.socket, keepalive: KeepaliveSettings) -> None:
    """seaway's keepalive options on a socket (Linux names, tcp(7); only where LINUX).
    On a listening socket they are inherited by the sockets it accepts."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if keepalive.enabled else 0)
    if keepalive.enabled:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, keepalive.idle_seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, keepalive.interval_seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, keepalive.count)


class _BackendLeg(asyncio.Protocol):
    """The backend side of a connection: forwards its events to the TcpConnection."""

    __slots__ = ("conn", "discarded", "lost", "transport")

    def __init__(self, conn: TcpConnection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.discarded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.discarded:
            self.transport.abort()
            return
        self.conn._leg_made(self)

    def discard(self) -> None:
        """Give up on this attempt (timed out, failed or cancelled)."""
        self.discarded = True
        if self.transport is not None:
            self.transport.abort()
        self.conn._leg_discarded(self)

    def data_received(self, data: bytes) -> None:
        if not self.discarded:
            self.conn._from_backend(data)

    def eof_received(self) -> bool:
        if not self.discarded:
            self.conn._backend_eof_received()
        return True

    def pause_writing(self) -> None:
        self.conn._backend_write_blocked(True)

    def resume_writing(self) -> None:
        self.conn._backend_write_blocked(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.discarded:
            self.conn._backend_lost(self, exc)


class TcpConnection(asyncio.Protocol):
    """One proxied TCP connection: the client leg's protocol, which owns the backend leg.

    Owns its connect task. Counts itself in the listener's and the backend's counters.
    The specification of the listener that accepted it is captured at accept time.
    """

    __slots__ = (
        "_accepted_at",
        "_adopted",
        "_backend",
        "_backend_counters",
        "_backend_eof",
        "_backend_writes_blocked",
        "_backlog_full",
        "_bytes_in",
        "_bytes_out",
        "_chosen",
        "_client",
        "_client_address",
        "_client_closed",
        "_client_eof",
        "_client_reading_paused",
        "_client_writes_blocked",
        "_connect_seconds",
        "_header_buffer",
        "_header_timer",
        "_leg",
        "_listener",
        "_listener_counters",
        "_live",
        "_local_address",
        "_pending",
        "_pending_size",
        "_result",
        "_runtime",
        "_spec",
        "_task",
        "_timed_out",
    )

    def __init__(self, listener: TcpListener) -> None:
        self._listener = listener
        self._spec = listener.spec
        self._runtime = listener.runtime
        self._listener_counters: ListenerCounters = listener.runtime.listener_counters(
            listener.spec.key
        )
        self._client: asyncio.Transport | None = None
        # The backend transport, set once the connection is up and the PROXY header
        # (if any) is written: from then on client bytes go straight to it.
        self._backend: asyncio.Transport | None = None
        self._leg: _BackendLeg | None = None  # the attempt in progress, or the live one
        self._adopted = False
        self._chosen: Backend | None = None
        self._live: LiveBackendSet | None = None
        # Replaced by the chosen backend's counters once connected.
        self._backend_counters = BackendCounters()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._header_buffer: bytearray | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._client_address: tuple[str, int] = ("", 0)
        self._local_address: tuple[str, int] = ("", 0)
        self._client_eof = False
        self._backend_eof = False
        self._backlog_full = False
        self._backend_writes_blocked = False
        self._client_writes_blocked = False
        self._client_reading_paused = False
        self._client_closed = False
        self._task: asyncio.Task[None] | None = None
        self._timed_out = False  # the connect attempt in progress was cancelled by its timer
        # For the access log: per-connection bytes (client to backend, and back), when
        # the client was accepted and how long the connect took (perf_counter seconds),
        # and how the connection ended ("" until known; see seaway.accesslog).
        self._bytes_in = 0
        self._bytes_out = 0
        self._accepted_at = 0.0
        self._connect_seconds: float | None = None
        self._result = ""

    # -- introspection ---------------------------------------------------------

    @property
    def backend(self) -> Backend | None:
        """The backend this connection is forwarded to, once connected."""
        return self._chosen

    @property
    def backend_set_key(self) -> str:
        """The backend set this connection's backend was chosen from."""
        return self._spec.backend_set

    @property
    def client_address(self) -> tuple[str, int]:
        """The client's address (from the PROXY header when the listener accepts one)."""
        return self._client_address

    def buffered_bytes(self) -> tuple[int, int, int]:
        """Bytes held now: (to the client, to the backend, waiting for the backend)."""
        to_client = self._client.get_write_buffer_size() if self._client is not None else 0
        to_backend = self._backend.get_write_buffer_size() if self._backend is not None else 0
        return to_client, to_backend, self._pending_size

    # -- client leg ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = cast(asyncio.Transport, transport)
        self._client = client
        client.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        runtime = self._runtime
        runtime.connections.add(self)
        self._accepted_at = time.perf_counter()
        self._listener_counters.total += 1
        self._listener_counters.active += 1
        peer = client.get_extra_info("peername")
        if not peer:
            self._reject()  # gone before we could look at it
            return
        self._client_address = (peer[0], peer[1])
        # The local address is looked up only when a PROXY header needs it (a system
        # call per connection otherwise).
        keepalive = runtime.settings.keepalive
        if not self._listener.inherits(keepalive):
            self._tune(client, keepalive)
        if self._spec.accept_proxy_protocol:
            self._header_buffer = bytearray()
            self._header_timer = runtime.loop.call_later(PROXY_HEADER_TIMEOUT, self._reject)
        else:
            self._admit()

    def data_received(self, data: bytes) -> None:
        backend = self._backend
        if backend is not None:
            backend.write(data)
            self._backend_counters.bytes_to_backend += len(data)
            self._bytes_in += len(data)
        elif self._header_buffer is not None:
            self._header_received(data)
        else:
            self._hold(data)

    def eof_received(self) -> bool:
        self._client_eof = True
        if self._header_buffer is not None:
            self._reject()  # the peer in front gave up before a whole header
            return True
        backend = self._backend
        if backend is not None and not backend.is_closing():
            backend.write_eof()
        if self._backend_eof:
            self._finish()
        # Keep the connection: the backend may still be answering (half-close).
        return True

    def pause_writing(self) -> None:
        # The client reads slower than the backend sends: stop reading the backend.
        self._client_writes_blocked = True
        leg = self._leg
        if leg is not None and leg.transport is not None and not leg.transport.is_closing():
            leg.transport.pause_reading()

    def resume_writing(self) -> None:
        self._client_writes_blocked = False
        leg = self._leg
        if leg is not None and leg.transport is not None and not leg.transport.is_closing():
            leg.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client_closed = True
        self._listener_counters.active -= 1
        if exc is not None and not self._result:
            self._result = RESULT_RESET
        self._log_access()
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._task is not None:
            self._timed_out = False  # a cancel of the owner's, whatever the timer did
            self._task.cancel()
        self._pending.clear()
        self._pending_size = 0
        leg = self._leg
        if leg is not None and leg.transport is not None and not leg.transport.is_closing():
            if exc is None:
                leg.transport.close()  # sends what is buffered, then FIN
            else:
                sockopts.reset(leg.transport)  # the client reset: pass it on
        self._forget_if_done()

    def abort(self) -> None:
        """Reset both legs now (the data plane is shutting down)."""
        self._result = self._result or RESULT_RESET
        if self._task is not None:
            self._timed_out = False  # a cancel of the owner's, whatever the timer did
            self._task.cancel()
        leg = self._leg
        if leg is not None and leg.transport is not None:
            sockopts.reset(leg.transport)
        if self._client is not None:
            sockopts.reset(self._client)

    # -- choosing and connecting -----------------------------------------------

    def _tune(self, transport: asyncio.Transport, keepalive: KeepaliveSettings) -> None:
        # TCP_NODELAY needs no call here: asyncio and uvloop set it on every TCP
        # transport (asyncio since Python 3.7, see loop.create_connection).
        with contextlib.suppress(OSError):  # the peer is gone; the next I/O will tell
            if not LINUX:
                sockopts.set_keepalive(transport, keepalive)
                return
            # uvloop's transport socket makes a new socket object for every
            # setsockopt; one object for the four options is cheaper.
            wrapped = transport.get_extra_info("socket")
            if wrapped is None:
                return
            sock = socket.socket(wrapped.family, wrapped.type, wrapped.proto, wrapped.fileno())
            try:
                _set_keepalive(sock, keepalive)
            finally:
                sock.detach()

    def _header_received(self, data: bytes) -> None:
        buffer = cast(bytearray, self._header_buffer)
        buffer += data
        try:
            result = decode(buffer)
        except MalformedProxyHeader:
            self._reject()
            return
        if result is None:
            return
        header, consumed = result
        self._header_buffer = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if header.addresses_known:
            self._client_address = (header.source_address, header.source_port)
            self._local_address = (header.destination_address, header.destination_port)
        if consumed < len(buffer):
            self._hold(bytes(buffer[consumed:]))
        self._admit()

    def _admit(self) -> None:
        spec = self._spec
        client_address, client_port = self._client_address
        if spec.source_ranges and not source_allowed(client_address, spec.source_ranges):
            self._reject(RESULT_REJECTED)
            return
        runtime = self._runtime
        live = runtime.sets.get(spec.backend_set)
        first = None
        if live is not None:
            first = live.choose(
                client_address, client_port, spec.address, spec.port, now=runtime.loop.time()
            )
        if first is None:
            self._reject(RESULT_NO_BACKEND)
            return
        task = runtime.loop.create_task(self._connect(first))
        self._task = task
        runtime.tasks.add(task)
        task.add_done_callback(self._connect_done)

    async def _connect(self, first: Backend) -> None:
        """Try backends until one accepts, up to ``connect_attempts`` in all."""
        runtime = self._runtime
        settings = runtime.settings
        set_key = self._spec.backend_set
        client_address, client_port = self._client_address
        attempts = max(1, settings.connect_attempts)
        avoid: set[Backend] = set()
        backend: Backend | None = first
        for attempt in range(attempts):
            if backend is None:
                break
            leg = await self._attempt(backend)
            if leg is not None:
                runtime.report(set_key, backend.key, "connect-succeeded")
                self._backend_up(backend, leg)
                return
            runtime.backend_counters(set_key, backend.key).failed += 1
            runtime.report(set_key, backend.key, "connect-failed")
            avoid.add(backend)
            live = runtime.sets.get(set_key)
            backend = None
            if live is not None and attempt + 1 < attempts:
                backend = live.choose(
                    client_address,
                    client_port,
                    self._spec.address,
                    self._spec.port,
                    now=runtime.loop.time(),
                    avoid=avoid,
                )
        self._reject(RESULT_CONNECT_FAILED)

    async def _attempt(self, backend: Backend) -> _BackendLeg | None:
        """One connect attempt: the connected leg, or None when refused or timed out."""
        leg = _BackendLeg(self)
        connected = False
        loop = self._runtime.loop
        # perf_counter, not loop.time(): uvloop's loop.time() is libuv's millisecond
        # clock, cached per loop iteration, too coarse for sub-millisecond connects.
        started = time.perf_counter()
        # A plain timer that cancels this task, not asyncio.timeout(): no context
        # manager object and reschedule per connection.
        timer = loop.call_later(self._runtime.settings.connect_timeout_seconds, self._time_out)
        try:
            await loop.create_connection(lambda: leg, backend.address, backend.port)
            connected = True
            elapsed = time.perf_counter() - started
            self._connect_seconds = elapsed
            self._runtime.backend_counters(
                self._spec.backend_set, backend.key
            ).connect_duration.observe(elapsed)
            return leg
        except OSError:  # refused, unreachable
            return None
        except asyncio.CancelledError:
            if not self._timed_out:
                raise
            # Our own timer, not an owner, cancelled the connect: a timed-out attempt.
            self._timed_out = False
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return None
        finally:
            timer.cancel()
            if not connected:
                leg.discard()

    def _time_out(self) -> None:
        """The connect attempt took longer than the connect timeout: cancel it."""
        if self._task is not None:
            self._timed_out = True
            self._task.cancel()

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        self._runtime.tasks.discard(task)
        if self._task is task:
            self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("connect task failed", exc_info=task.exception())
            self._reject()

    def _leg_made(self, leg: _BackendLeg) -> None:
        self._leg = leg
        if self._client_writes_blocked and leg.transport is not None:
            leg.transport.pause_reading()

    def _leg_discarded(self, leg: _BackendLeg) -> None:
        if self._leg is leg:
            self._leg = None
        self._forget_if_done()

    def _backend_up(self, backend: Backend, leg: _BackendLeg) -> None:
        transport = cast(asyncio.Transport, leg.transport)
        runtime = self._runtime
        set_key = self._spec.backend_set
        self._leg = leg
        self._adopted = True
        self._chosen = backend
        counters = runtime.backend_counters(set_key, backend.key)
        self._backend_counters = counters
        counters.total += 1
        counters.active += 1
        live = runtime.sets.get(set_key)
        self._live = live
        if live is not None:
            now = runtime.loop.time()
            live.balancer.started(backend)
            # At L4 the only latency seaway sees is the connect time (peak-EWMA's input).
            if self._connect_seconds is not None:
                live.balancer.observe(backend, self._connect_seconds, now)
            live.remember(self._client_address[0], backend, now)
        if leg.lost:
            self._release_backend()  # came and went; _backend_lost closed the client
            return
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        self._tune(transport, runtime.settings.keepalive)
        if live is not None and live.spec.proxy_protocol is not None:
            transport.write(self._proxy_header(live.spec.proxy_protocol))
        if self._pending:
            transport.writelines(self._pending)
            counters.bytes_to_backend += self._pending_size
            self._bytes_in += self._pending_size
            self._pending.clear()
            self._pending_size = 0
        self._backend = transport
        if self._client_eof:
            transport.write_eof()
        self._backlog_full = False
        self._sync_client_reading()

    def _proxy_header(self, version: str) -> bytes:
        source, source_port = self._client_address
        if not self._local_address[0]:
            local = self._client.get_extra_info("sockname") if self._client is not None else None
            # A client already gone: the listener's own address is the one it reached.
            self._local_address = (
                (local[0], local[1]) if local else (self._spec.address, self._spec.port)
            )
        destination, destination_port = self._local_address
        if version == "v1":
            return encode_v1(source, source_port, destination, destination_port)
        return encode_v2(source, source_port, destination, destination_port)

    # -- backend leg events ----------------------------------------------------

    def _from_backend(self, data: bytes) -> None:
        client = self._client
        if client is not None and not self._client_closed:
            client.write(data)
        self._backend_counters.bytes_from_backend += len(data)
        self._bytes_out += len(data)

    def _backend_eof_received(self) -> None:
        self._backend_eof = True
        client = self._client
        if client is not None and not client.is_closing():
            client.write_eof()
        if self._client_eof:
            self._finish()

    def _backend_write_blocked(self, blocked: bool) -> None:
        self._backend_writes_blocked = blocked
        self._sync_client_reading()

    def _backend_lost(self, leg: _BackendLeg, exc: Exception | None) -> None:
        if exc is not None and leg is self._leg and not self._result:
            self._result = RESULT_RESET
        if self._adopted and leg is self._leg:
            self._release_backend()
        client = self._client
        if client is not None and not client.is_closing():
            if exc is None:
                client.close()
            else:
                sockopts.reset(client)  # the backend reset: pass it on
        self._forget_if_done()

    # -- ending ----------------------------------------------------------------

    def _hold(self, data: bytes) -> None:
        if self._client_closed:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= PENDING_LIMIT:
            self._backlog_full = True
            self._sync_client_reading()

    def _sync_client_reading(self) -> None:
        client = self._client
        if client is None or client.is_closing():
            return
        pause = self._backlog_full or self._backend_writes_blocked
        if pause != self._client_reading_paused:
            self._client_reading_paused = pause
            if pause:
                client.pause_reading()
            else:
                client.resume_reading()

    def _finish(self) -> None:
        """Both directions are done: close both legs (after their buffers drain)."""
        if self._client is not None:
            self._client.close()
        leg = self._leg
        if leg is not None and leg.transport is not None:
            leg.transport.close()

    def _reject(self, result: str = RESULT_REJECTED) -> None:
        """Refuse the client with an RST (no backend, outside the source ranges, ...)."""
        if self._client is None or self._client.is_closing():
            return
        self._result = self._result or result
        self._listener_counters.rejected += 1
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        sockopts.reset(self._client)

    def _log_access(self) -> None:
        """Hand the finished connection to the access log (a queue put; no I/O here)."""
        access_log = self._runtime.access_log
        if access_log is None or not access_log.enabled:
            return
        duration = time.perf_counter() - self._accepted_at
        chosen = self._chosen
        access_log.emit(
            ConnectionRecord(
                start=time.time() - duration,
                duration=duration,
                protocol="TCP",
                client=self._client_address,
                listener=self._spec.key,
                service=self._spec.service,
                backend=chosen.key if chosen is not None else None,
                bytes_to_backend=self._bytes_in,
                bytes_from_backend=self._bytes_out,
                result=self._result or RESULT_OK,
                connect_duration=self._connect_seconds,
            )
        )

    def _release_backend(self) -> None:
        if self._adopted:
            self._backend_counters.active -= 1
            self._adopted = False
            if self._live is not None and self._chosen is not None:
                self._live.balancer.ended(self._chosen)

    def _forget_if_done(self) -> None:
        leg = self._leg
        if self._client_closed and (leg is None or leg.lost):
            self._runtime.connections.discard(self)

"""The client side: HTTP listeners and the connections they accept.

A ``ClientConnection`` parses requests with httptools (llhttp, strict: it rejects
Content-Length with Transfer-Encoding, duplicate Content-Length, bad chunk sizes,
obsolete line folding and invalid characters) and adds the checks llhttp leaves to
servers: exactly one Host in HTTP/1.1, only the ``chunked`` transfer coding, size
and count limits, HTTP/1.x only. A request that fails them gets a short error and
the connection is closed: after a framing error nothing that follows can be trusted.

Each parsed request becomes an ``Exchange``; exchanges run one at a time in arrival
order, so pipelined requests are answered in order. Reading stops while the active
exchange's backend cannot take more, while too much body is held for exchanges not
yet forwarding, or while too many requests wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import cast

import httptools

from seaway.core.config import HttpListener
from seaway.dataplane.http.exchange import Exchange, RequestHead
from seaway.dataplane.http.h2_downstream import H2ClientConnection
from seaway.dataplane.http.headers import VIA, encode_head
from seaway.dataplane.http.lazy_timer import LazyTimer
from seaway.dataplane.http.protocol_selector import ProtocolSelector
from seaway.dataplane.http.runtime import MAX_BUFFERED_BODY, HttpRuntime
from seaway.dataplane.http.tls_contexts import TlsContexts
from seaway.http1.limits import MAX_PIPELINED
from seaway.http1.protocol import LINGER_SECONDS
from seaway.model.secrets import KeyPairError
from seaway.workers import listeners_shared

log = logging.getLogger(__name__)

# The request fields whose values decide how a request is framed and checked.
_CHECKED_FIELDS = frozenset({"host", "transfer-encoding", "content-length", "upgrade", "expect"})
# listen(2) backlog, as the L4 proxy's.
LISTEN_BACKLOG = 1024
# Corked writes up to this size are joined into one buffer (a copy cheaper than the
# iovec setup of writev for small pieces); larger ones are handed over as they are.
_JOIN_LIMIT = 16 * 1024


class HttpServer:
    """One HTTP listening socket; its specification (routes, certificates) changes while
    it stays open.

    Each accepted connection starts with a ``ProtocolSelector`` that hands it to a
    ``ClientConnection`` (HTTP/1.x) or an ``H2ClientConnection`` (HTTP/2). On a TLS
    listener, ``tls`` holds the certificates; new ones apply from the next handshake.
    """

    def __init__(self, spec: HttpListener, runtime: HttpRuntime) -> None:
        self.spec = spec
        self.runtime = runtime
        self.server: asyncio.AbstractServer | None = None
        self.tls = TlsContexts(spec.tls) if spec.tls is not None else None

    async def open(self) -> None:
        """Bind and listen; raises OSError when the address cannot be bound."""
        secure = self.tls is not None
        self.server = await self.runtime.loop.create_server(
            lambda: ProtocolSelector(self, tls=secure),
            host=self.spec.address,
            port=self.spec.port,
            reuse_address=True,
            # Several workers (seaway run --workers): the kernel spreads connections.
            reuse_port=listeners_shared() or None,
            backlog=LISTEN_BACKLOG,
            ssl=self.tls.front if self.tls is not None else None,
            ssl_handshake_timeout=(
                self.runtime.settings.http.header_timeout_seconds if secure else None
            ),
        )

    def update(self, spec: HttpListener) -> None:
        """Take new routes and certificates: they apply to the next request of every
        connection and the next TLS handshake; nothing open is closed."""
        if self.tls is not None and spec.tls is not None and spec.tls != self.spec.tls:
            try:
                self.tls.update(spec.tls)
            except KeyPairError as exc:  # validated when parsed: only a bug gets here
                log.error("keeping the previous certificates of %s: %s", spec.key, exc)
        self.spec = spec

    def close(self) -> None:
        """Stop accepting; open connections carry on (HTTP/2 ones are sent GOAWAY)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for connection in list(self.runtime.connections):
            if connection.server is self and isinstance(connection, H2ClientConnection):
                connection.drain()


class _Timer(enum.Enum):
    HEAD = "head"
    BODY = "body"
    IDLE = "idle"
    LINGER = "linger"


class _Reject(Exception):
    """Raised in a parser callback; the status and message are on the connection."""


class ClientConnection(asyncio.Protocol):
    """One client connection (owns its exchanges and timers)."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.runtime = server.runtime
        # How the client reached seaway, for X-Forwarded-Proto and redirects.
        self.scheme = "https" if server.spec.tls is not None else "http"
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.parser = httptools.HttpRequestParser(self)
        # Requests read and not yet answered, oldest first: at most MAX_PIPELINED, so a
        # list (56 bytes empty; a deque takes 760 on every idle connection).
        self.exchanges: list[Exchange] = []
        self.parsing: Exchange | None = None  # the exchange whose body is being read
        self.write_blocked = False
        self._listener_key = server.spec.key
        # Why reading is paused: a few names at most, in a list (an empty set is 216 B).
        self._blockers: list[str] = []
        self._reading_paused = False
        self._buffered = 0
        self._accepting = True
        self._failed = False
        self._lingering = False
        self._reject: tuple[int, str] | None = None
        self._final_error: tuple[int, str] | None = None
        self._tunnel: Exchange | None = None
        self._tunnel_pending: Exchange | None = None
        # The first exchange whose head this read completed: started once the whole
        # read is parsed, so that body bytes of the same read go with the head.
        self._starting: Exchange | None = None
        # Writes held until the end of a backend read (``cork``), or None.
        self._corked: list[bytes] | None = None
        self._corked_size = 0
        # One timer for the connection's head, body, idle and linger timeouts, re-armed
        # several times per request: lazily, so that no timer is scheduled per request.
        self._timer = LazyTimer(self.runtime.loop, self._timer_fired)
        self._timer_kind: _Timer | None = None
        # The request head being parsed.
        self._url: list[bytes] = []
        self._url_bytes = 0
        self._headers: list[tuple[str, str]] = []
        self._head_bytes = 0

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = self.runtime.client_connected(self, transport, self._listener_key)
        self._set_timer(_Timer.HEAD, self.runtime.settings.http.header_timeout_seconds)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.tunnel_from_client(data)
            self.rearm_idle_timer()
            return
        if self._tunnel_pending is not None:
            self._tunnel_pending.tunnel_from_client(data)
            return
        if self._failed or self._lingering:
            return  # input after an error or our close is dropped
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_requested(data[int(upgrade.args[0]) :])
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Reject) and self._reject is not None:
                self._fail(*self._reject)
            else:
                log.error("bug while reading a request", exc_info=exc.__context__)
                self._fail(500, "internal error")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed request ({exc})")
        else:
            if self.parsing is not None and self.parsing.head.body != "none":
                self._set_timer(_Timer.BODY, self.runtime.settings.http.idle_timeout_seconds)
        starting = self._starting
        if starting is not None:
            self._starting = None
            starting.start()

    def eof_received(self) -> bool:
        if self._tunnel is not None:
            self._tunnel.tunnel_client_eof()
            return True
        if self.parsing is not None:
            self.parsing.abort_request(400, "the request body ended early")
        if not self.exchanges:
            return False  # close now
        # Answer what was asked, then close (RFC 9112 section 9.6: a half-closed
        # client may still read).
        self._accepting = False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._timer.cancel()  # the scheduled handle references this connection
        self.runtime.client_disconnected(self, self._listener_key)
        for exchange in list(self.exchanges):
            exchange.client_lost()
        if self._tunnel is not None:
            self._tunnel.client_lost()
        self.transport = None

    def pause_writing(self) -> None:
        self.write_blocked = True
        if self.exchanges:
            self.exchanges[0].client_write_blocked(True)

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.exchanges:
            self.exchanges[0].client_write_blocked(False)

    # -- httptools callbacks ----------------------------------------------------------

    def _reject_with(self, status: int, message: str) -> None:
        self._reject = (status, message)
        raise _Reject(message)

    def on_message_begin(self) -> None:
        if not self._accepting:
            self._reject_with(400, "no request may follow one that closes the connection")
        self._url = []
        self._url_bytes = 0
        self._headers = []
        self._head_bytes = 0
        if self._timer_kind is not _Timer.HEAD:
            self._set_timer(_Timer.HEAD, self.runtime.settings.http.header_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_bytes += len(url)
        if self._url_bytes > self.runtime.settings.http.max_uri_bytes:
            self._reject_with(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.parsing is not None:
            return  # a trailer field of a chunked body: not forwarded
        limits = self.runtime.settings.http
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes + self._url_bytes > limits.max_head_bytes:
            self._reject_with(431, "request header fields too large")
        if len(self._headers) >= limits.max_header_count:
            self._reject_with(431, "too many request header fields")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        head = self._request_head()
        # The head owns the fields now; an idle connection keeps no request's fields.
        self._headers = []
        self._url = []
        exchange = Exchange(self, head)
        self.exchanges.append(exchange)
        self.parsing = exchange if head.body != "none" else None
        if not head.keep_alive:
            self._accepting = False
        self._cancel_timer()
        if len(self.exchanges) == 1:
            self._starting = exchange  # started at the end of data_received
        if len(self.exchanges) >= MAX_PIPELINED:
            self.set_blocker("pipeline", True)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.body_chunk(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            exchange, self.parsing = self.parsing, None
            exchange.body_complete()
            if self._timer_kind is _Timer.BODY:
                self._cancel_timer()

    def _request_head(self) -> RequestHead:
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            self._reject_with(505, f"HTTP/{version} is not supported")
        method = self.parser.get_method().decode("ascii")
        if method == "CONNECT":
            self._reject_with(405, "CONNECT is not supported")
        headers = self._headers
        # One pass over the fields, lower-casing each name once.
        found: dict[str, list[str]] = {}
        for name, value in headers:
            lower = name.lower()
            if lower in _CHECKED_FIELDS:
                found.setdefault(lower, []).append(value)
        hosts = found.get("host", [])
        if version == "1.1" and len(hosts) != 1:
            # RFC 9112 section 3.2: exactly one Host field in HTTP/1.1.
            self._reject_with(400, "an HTTP/1.1 request needs exactly one Host header")
        codings = found.get("transfer-encoding", [])
        lengths = found.get("content-length", [])
        if codings and lengths:  # llhttp rejects this too; never forward both
            self._reject_with(400, "Content-Length and Transfer-Encoding together")
        if len(lengths) > 1:
            self._reject_with(400, "more than one Content-Length")
        body: str = "none"
        length = 0
        if codings:
            if len(codings) != 1 or codings[0].strip().lower() != "chunked":
                # RFC 9112 section 6.1: only chunked is understood here; anything
                # else cannot be framed safely (and is a classic smuggling vector).
                self._reject_with(501, f"transfer coding {', '.join(codings)!r} is not supported")
            body = "chunked"
        elif lengths:
            length = int(lengths[0])
            body = "length" if length > 0 else "none"
        upgrade = None
        if self.parser.should_upgrade() and "upgrade" in found:
            upgrade = found["upgrade"][0]
        expect = found["expect"][0] if "expect" in found else None
        if expect is not None and expect.strip().lower() != "100-continue":
            self._reject_with(417, f"expectation {expect!r} is not supported")
        return RequestHead(
            method=method,
            target=b"".join(self._url).decode("latin-1"),
            version=version,
            headers=headers,
            keep_alive=bool(self.parser.should_keep_alive()),
            body=body,  # type: ignore[arg-type]
            content_length=length,
            expect_continue=expect is not None and body != "none",
            upgrade=upgrade,
        )

    # -- upgrades and tunnels -------------------------------------------------------

    def _upgrade_requested(self, rest: bytes) -> None:
        """httptools stops at an upgrade request's head: what follows is the new protocol."""
        exchange = self.exchanges[-1] if self.exchanges else None
        if exchange is None or exchange.head.upgrade is None:
            self._fail(400, "unexpected upgrade")
            return
        self._accepting = False
        self._tunnel_pending = exchange
        if rest:
            exchange.tunnel_from_client(rest)

    def start_tunnel(self, exchange: Exchange) -> None:
        self._tunnel = exchange
        self._tunnel_pending = None
        self.set_blocker("body", False)
        self._buffered = 0
        self.rearm_idle_timer()

    # -- used by exchanges ----------------------------------------------------------

    def write(self, data: bytes) -> None:
        corked = self._corked
        if corked is not None:
            corked.append(data)
            self._corked_size += len(data)
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        corked = self._corked
        if corked is not None:
            corked.extend(data)
            self._corked_size += sum(map(len, data))
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(data)

    def cork(self) -> None:
        """Hold writes until ``uncork`` (called around one backend read): a response's
        head and the body bytes of the same read then leave in one send, as with
        TCP_CORK. Never held past the read, so streaming and backpressure are kept."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        """Send what ``cork`` held, and write straight through again."""
        self._flush_corked()
        self._corked = None

    def _flush_corked(self) -> None:
        held = self._corked
        if not held:
            return
        size = self._corked_size
        self._corked = []
        self._corked_size = 0
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(held) == 1:
            transport.write(held[0])
        elif size <= _JOIN_LIMIT:
            transport.write(b"".join(held))
        else:
            transport.writelines(held)  # one writev(2) in uvloop, no copy

    def write_eof(self) -> None:
        self._flush_corked()
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()

    def abort(self) -> None:
        if self._corked is not None:
            self._corked = []
            self._corked_size = 0
        if self.transport is not None:
            self.transport.abort()

    def close_soon(self) -> None:
        self._set_timer(_Timer.LINGER, LINGER_SECONDS)

    def closing_after_current(self) -> bool:
        """Whether the connection closes after the active response."""
        return (not self._accepting and len(self.exchanges) <= 1) or self._failed

    def buffered_changed(self, delta: int) -> None:
        self._buffered += delta
        self.set_blocker("body", self._buffered > MAX_BUFFERED_BODY)

    def set_blocker(self, name: str, blocked: bool) -> None:
        """Stop reading while any reason to is present (backpressure)."""
        blockers = self._blockers
        if blocked:
            if name not in blockers:
                blockers.append(name)
        elif name in blockers:
            blockers.remove(name)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._blockers and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not self._blockers and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def rearm_idle_timer(self) -> None:
        """Traffic flowed: a body or tunnel in progress is not idle."""
        if self._tunnel is not None or self._timer_kind in (None, _Timer.IDLE):
            self._set_timer(_Timer.IDLE, self.runtime.settings.http.idle_timeout_seconds)

    def exchange_done(self, exchange: Exchange) -> None:
        """``exchange`` is answered: close, or go on with the next request."""
        if exchange is self._tunnel:
            self._tunnel = None
            self.close_soon()
            return
        if self.exchanges and self.exchanges[0] is exchange:
            del self.exchanges[0]
        if self.transport is None:
            return
        if len(self.exchanges) < MAX_PIPELINED:
            self.set_blocker("pipeline", False)
        if exchange.close_after or (self._tunnel_pending is exchange):
            self._close_lingering()
            return
        if self.exchanges:
            self.exchanges[0].start()
            if self.write_blocked:
                self.exchanges[0].client_write_blocked(True)
            return
        if self._final_error is not None:
            self._write_error(*self._final_error)
            return
        if not self._accepting:
            self._close_lingering()
            return
        if self.parsing is None and self._timer_kind is not _Timer.HEAD:
            self._set_timer(_Timer.IDLE, self.runtime.settings.http.idle_timeout_seconds)

    # -- failures and closing -----------------------------------------------------------

    def _fail(self, status: int, message: str) -> None:
        """A request cannot be read: answer ``status`` after the pending ones, then close."""
        if self._failed:
            return
        self._failed = True
        self._accepting = False
        self.runtime.listener_counters(self._listener_key).rejected += 1
        if self.parsing is not None:
            exchange, self.parsing = self.parsing, None
            exchange.abort_request(status, message)
            return
        if self.exchanges:
            self._final_error = (status, message)
            return
        self._write_error(status, message)

    def _write_error(self, status: int, message: str) -> None:
        body = f"{status} {_phrase(status)}: {message}\n".encode()
        head = encode_head(
            f"HTTP/1.1 {status} {_phrase(status)}",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Via", VIA),
                ("Connection", "close"),
            ],
        )
        self.writelines([head, body])
        self._close_lingering()

    def _close_lingering(self) -> None:
        """Close our side now, the whole connection after LINGER_SECONDS at most.

        Lingering (RFC 9112 section 9.6) lets the client read the last response
        instead of getting a reset for the bytes it sent meanwhile.
        """
        self._flush_corked()
        transport = self.transport
        if transport is None or self._lingering:
            return
        self._lingering = True
        self._failed = True
        self._blockers.clear()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if not transport.can_write_eof():
            transport.close()
            return
        with contextlib.suppress(OSError, RuntimeError):
            transport.write_eof()
        self._set_timer(_Timer.LINGER, LINGER_SECONDS)

    # -- timers ---------------------------------------------------------------------

    def _set_timer(self, kind: _Timer, delay: float) -> None:
        self._timer_kind = kind
        self._timer.set(delay)

    def _cancel_timer(self) -> None:
        self._timer.clear()
        self._timer_kind = None

    def _timer_fired(self) -> None:
        kind = self._timer_kind
        if kind is not None:
            self._on_timer(kind)

    def _on_timer(self, kind: _Timer) -> None:
        self._timer_kind = None
        transport = self.transport
        if transport is None:
            return
        if kind is _Timer.HEAD:
            if self.exchanges:  # waiting on a backend, not on the client
                return
            self._fail(408, "the request head took too long to arrive")
        elif kind is _Timer.BODY:
            self._fail(408, "the request body stalled")
        elif kind is _Timer.IDLE:
            if self._tunnel is not None or not self.exchanges:
                transport.close()
            # An exchange in progress has its own timeouts.
        else:
            transport.close()

    def abort_now(self) -> None:
        """Close at once (the plane is shutting down)."""
        if self.transport is not None:
            self.transport.abort()

    def drain(self) -> None:
        """Close once the requests already read are answered (shutting down)."""
        self._accepting = False
        if not self.exchanges and self._tunnel is None and self.parsing is None:
            self._close_lingering()


def _phrase(status: int) -> str:
    from http import HTTPStatus  # noqa: PLC0415

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"

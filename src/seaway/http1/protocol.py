"""One HTTP/1.1 server connection: httptools parses, a handler answers, in order.

The protocol reads requests (``Content-Length`` or chunked bodies), hands each
complete request to the handler, and writes the responses in request order, also
when clients pipeline (RFC 9112 section 9.3.2). It keeps connections alive unless
the client or the handler asks to close, or the request is HTTP/1.0 without
``Connection: keep-alive``. Hostile input gets a status and a closed connection:
400 (unparseable), 408 (too slow), 413 (body too large), 414/431 (head too large),
505 (not HTTP/1.x).

When built with ``not_http``, the protocol first looks at the connection's first
bytes; if they are not an HTTP request line it hands the connection to the
protocol ``not_http()`` returns (see :mod:`seaway.http1.handover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from seaway.http1.connections import ConnectionSet
from seaway.http1.handover import hand_over, looks_like_http
from seaway.http1.limits import Limits
from seaway.http1.message import Handler, Request, Response

logger = logging.getLogger(__name__)

# Connection-level headers the protocol writes itself (RFC 9112 sections 6 and 9.6);
# a handler's own values for them are not sent.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
# Statuses that never carry content (RFC 9110 sections 6.4.1 and 15.3.5, 15.4.5).
_NO_CONTENT = frozenset({204, 304})
# After answering a request with an error and closing our side, input is read and
# dropped for this long so that the client sees the answer instead of a reset
# (RFC 9112 section 9.6: "lingering close").
LINGER_SECONDS = 2.0
# A first chunk that might still become a request line ("GE") but stays incomplete
# this long is not HTTP: real clients send the request line in one write.
UNDECIDED_SECONDS = 1.0


class _State(enum.Enum):
    IDLE = "idle"  # between requests
    HEAD = "head"  # reading a request line and header fields
    BODY = "body"  # reading a request body
    FAILED = "failed"  # answered with an error; input is dropped


class _Timer(enum.Enum):
    HEAD = "head"
    BODY = "body"
    IDLE = "idle"
    LINGER = "linger"
    UNDECIDED = "undecided"


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the reason is on the protocol."""


class HTTPServerProtocol(asyncio.Protocol):
    """The server side of one HTTP/1.1 connection (owns its worker task and timers).

    ``client`` replaces the peer address reported to handlers (the original client
    named by a PROXY protocol header). ``connections`` is the server's set of live
    connections, which this protocol joins and leaves. ``extra_headers`` go on every
    response, the protocol's own error responses included.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits | None = None,
        connections: ConnectionSet | None = None,
        not_http: Callable[[], asyncio.Protocol] | None = None,
        client: tuple[str, int] | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._handler = handler
        self._extra_headers = extra_headers
        self._limits = limits or Limits()
        self._connections = connections
        self._not_http = not_http
        self._client = client
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._sniff_buffer = b""
        self._state = _State.IDLE
        self._accepting = True  # more requests may be parsed on this connection
        self._shutdown = False
        self._peer_eof = False
        self._messages_begun = 0
        self._rejection: Response | None = None
        # The request being parsed.
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head_bytes = 0
        self._head_raw_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._continue_pending = False
        # Requests parsed and waiting for their turn, and the one task answering them.
        self._queue: deque[tuple[Request, bool] | Response] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._lost = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind: _Timer | None = None

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not inherit asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        if self._client is None:
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple) and len(peer) >= 2:
                self._client = (str(peer[0]), int(peer[1]))
        if self._connections is not None:
            self._connections.add(self)
        if self._not_http is None:
            self._set_timer(_Timer.HEAD, self._limits.header_timeout)
        else:
            # A silent client may be a raw TCP client waiting for its turn to speak;
            # it is not answered with an HTTP 408, only closed when idle too long.
            self._set_timer(_Timer.IDLE, self._limits.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._accepting = False
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        if self._connections is not None:
            self._connections.discard(self)
        self._can_write.set()
        self._lost.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        if self._not_http is not None:
            self._sniff(data)
            return
        self._feed(data)

    def eof_received(self) -> bool | None:
        if self._not_http is not None and self._sniff_buffer:
            return self._give_away().eof_received()
        self._peer_eof = True
        self._accepting = False
        if self._state in (_State.HEAD, _State.BODY):
            self._fail(400, "the request ended before it was complete")
        if self._queue or self._busy():
            return True  # answer what was asked (a half-closing client waits), then close
        return None  # nothing left to say, or lingering is over

    # -- Connection (for ConnectionSet) --------------------------------------------

    def shutdown(self) -> None:
        """Answer the request in progress, if any, with ``Connection: close``, then close."""
        self._shutdown = True
        self._accepting = False
        if not self._busy() and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await self._lost.wait()
        if self._worker is not None:
            await asyncio.wait([self._worker])

    # -- first bytes ---------------------------------------------------------------

    def _sniff(self, data: bytes) -> None:
        self._sniff_buffer += data
        verdict = looks_like_http(self._sniff_buffer)
        if verdict is None:
            if self._timer_kind is not _Timer.UNDECIDED:
                self._set_timer(_Timer.UNDECIDED, UNDECIDED_SECONDS)
            return
        if verdict:
            buffered, self._sniff_buffer, self._not_http = self._sniff_buffer, b"", None
            self._set_timer(_Timer.HEAD, self._limits.header_timeout)
            self._feed(buffered)
        else:
            self._give_away()

    def _give_away(self) -> asyncio.Protocol:
        """Hand the connection to the non-HTTP protocol, with the bytes read so far."""
        assert self._not_http is not None and self._transport is not None
        self._cancel_timer()
        if self._connections is not None:
            self._connections.discard(self)
        protocol = self._not_http()
        buffered, self._sniff_buffer = self._sniff_buffer, b""
        self._accepting = False
        hand_over(self._transport, protocol, buffered)
        return protocol

    # -- parsing -------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._state is _State.FAILED or not self._accepting:
            return  # lingering, or closing after the current response: drop input
        began, was_head = self._messages_begun, self._state is _State.HEAD
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request before the upgrade was queued; this server does not switch
            # protocols (RFC 9110 section 7.8 lets it ignore Upgrade): answer, then close.
            self._accepting = False
        except httptools.HttpParserError as exc:
            rejection, self._rejection = self._rejection, None
            if rejection is not None:
                self._fail_with(rejection)
            else:
                self._fail(400, f"malformed request: {exc}")
        else:
            if was_head and self._state is _State.HEAD and began == self._messages_begun:
                # Whole chunks of header bytes also count, whitespace included.
                self._head_raw_bytes += len(data)
                if self._head_raw_bytes > self._limits.max_head_bytes:
                    self._fail(431, "request header fields too large")
        if self._queue and not self._busy():
            self._start_worker()
        if len(self._queue) >= self._limits.max_pipelined and not self._reading_paused:
            self._pause_reading()
        self._update_timer()

    def _reject(self, status: int, message: str) -> None:
        self._rejection = _error_response(status, message)
        raise _Reject(message)

    # httptools callbacks (called from feed_data).

    def on_message_begin(self) -> None:
        if not self._accepting:
            self._reject(400, "no request may follow a request that closes the connection")
        self._messages_begun += 1
        self._state = _State.HEAD
        self._url = []
        self._headers = []
        self._head_bytes = self._head_raw_bytes = 0
        self._body = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head_bytes += len(url)
        if self._head_bytes > self._limits.max_head_bytes:
            self._reject(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state is not _State.HEAD:  # a trailer field after a chunked body
            self._count_body(len(name) + len(value))
            return
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > self._limits.max_head_bytes:
            self._reject(431, "request header fields too large")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._state = _State.BODY
        version = self._parser.get_http_version()
        if version not in ("1.0", "1.1"):
            self._reject(505, f"HTTP/{version} is not supported")
        names = [name.lower() for name, _ in self._headers]
        if version == "1.1" and names.count("host") != 1:
            # RFC 9112 section 3.2: exactly one Host header field in HTTP/1.1.
            self._reject(400, "an HTTP/1.1 request needs exactly one Host header")
        length = self._header_value("content-length")
        if length is not None and int(length) > self._limits.max_body_bytes:
            self._reject(413, f"request body larger than {self._limits.max_body_bytes} bytes")
        expect = self._header_value("expect")
        has_body = (length is not None and int(length) > 0) or "transfer-encoding" in names
        if expect is not None and expect.lower() == "100-continue" and has_body:
            # RFC 9110 section 10.1.1: say "go on" when we are ready to read the body,
            # that is, when earlier pipelined requests have been answered.
            if self._queue or self._busy():
                self._continue_pending = True
            else:
                self._write_continue()

    def on_body(self, body: bytes) -> None:
        self._count_body(len(body))
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            target=b"".join(self._url).decode("latin-1"),
            version=self._parser.get_http_version(),
            headers=tuple(self._headers),
            body=b"".join(self._body),
            client=self._client,
        )
        keep_alive = bool(self._parser.should_keep_alive())
        self._queue.append((request, keep_alive))
        self._state = _State.IDLE
        self._continue_pending = False
        if not keep_alive:
            self._accepting = False

    def _count_body(self, size: int) -> None:
        self._body_bytes += size
        if self._body_bytes > self._limits.max_body_bytes:
            self._reject(413, f"request body larger than {self._limits.max_body_bytes} bytes")

    def _header_value(self, lower_name: str) -> str | None:
        for name, value in self._headers:
            if name.lower() == lower_name:
                return value
        return None

    # -- failures ------------------------------------------------------------------

    def _fail(self, status: int, message: str) -> None:
        self._fail_with(_error_response(status, message))

    def _fail_with(self, response: Response) -> None:
        """Queue ``response`` after the pending ones, then close; read nothing more."""
        if self._state is _State.FAILED:
            return
        self._state = _State.FAILED
        self._accepting = False
        self._cancel_timer()
        self._queue.append(response)
        if not self._busy():
            self._start_worker()

    # -- answering -----------------------------------------------------------------

    def _busy(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def _start_worker(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._answer_all())

    async def _answer_all(self) -> None:
        """Answer queued requests in order; close when the connection is done."""
        transport = self._transport
        assert transport is not None
        while self._queue and not transport.is_closing():
            item = self._queue.popleft()
            if self._reading_paused and len(self._queue) < self._limits.max_pipelined:
                self._resume_reading()
            if isinstance(item, Response):
                await self._send(item, head_only=False, keep_alive=False)
                self._close_lingering()
                return
            request, keep_alive = item
            response = await self._call_handler(request)
            keep_alive = await self._send(
                response,
                head_only=request.method == "HEAD",
                # The last response before closing says so (RFC 9112 section 9.6).
                keep_alive=keep_alive
                and not self._shutdown
                and (self._accepting or bool(self._queue)),
                http10=request.version == "1.0",
            )
            if not keep_alive:
                self._accepting = False
                self._close_lingering()
                return
        self._worker = None
        if transport.is_closing():
            return
        if not self._accepting and self._state is not _State.FAILED:
            self._close_lingering()
            return
        if self._continue_pending:
            self._continue_pending = False
            self._write_continue()
        self._update_timer()

    async def _call_handler(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except Exception:
            logger.exception("handler failed on %s %s", request.method, request.target)
            # The request was read whole, so the connection is still in a known state.
            return Response.text(500, "internal server error\n")

    async def _send(
        self, response: Response, *, head_only: bool, keep_alive: bool, http10: bool = False
    ) -> bool:
        """Write one response; return whether the connection stays open after it."""
        transport = self._transport
        assert transport is not None
        try:
            head, keep_alive = _encode_head(
                response, self._extra_headers, keep_alive=keep_alive, http10=http10
            )
        except ValueError:
            logger.exception("handler returned an invalid response")
            response = _error_response(500, "internal server error")
            head, keep_alive = _encode_head(
                response, self._extra_headers, keep_alive=keep_alive, http10=http10
            )
        if head_only or response.status in _NO_CONTENT or not response.body:
            transport.write(head)
        else:
            transport.writelines((head, response.body))
        if not self._can_write.is_set():
            try:
                async with asyncio.timeout(self._limits.idle_timeout):
                    await self._can_write.wait()
            except TimeoutError:
                transport.abort()  # the client stopped reading
                return False
        return keep_alive

    def _write_continue(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _close_lingering(self) -> None:
        """Close our side now, the whole connection when the client is done or later."""
        transport = self._transport
        assert transport is not None
        self._state = _State.FAILED  # drop any further input
        if self._peer_eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self._reading_paused:
            self._resume_reading()
        self._set_timer(_Timer.LINGER, LINGER_SECONDS)

    # -- flow control and timers ---------------------------------------------------

    def _pause_reading(self) -> None:
        assert self._transport is not None
        self._reading_paused = True
        self._transport.pause_reading()

    def _resume_reading(self) -> None:
        assert self._transport is not None
        self._reading_paused = False
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def _update_timer(self) -> None:
        """Arm the timer that fits what the connection is waiting for now."""
        if self._transport is None or self._transport.is_closing():
            return
        if self._state is _State.HEAD:
            if self._timer_kind is not _Timer.HEAD:  # the deadline runs from the first byte
                self._set_timer(_Timer.HEAD, self._limits.header_timeout)
        elif self._state is _State.BODY:
            self._set_timer(_Timer.BODY, self._limits.idle_timeout)  # any progress re-arms
        elif self._state is _State.IDLE:
            if self._queue or self._busy():
                self._cancel_timer()  # the server is busy, not the client
            elif self._messages_begun and self._timer_kind is not _Timer.IDLE:
                self._set_timer(_Timer.IDLE, self._limits.idle_timeout)

    def _set_timer(self, kind: _Timer, delay: float) -> None:
        self._cancel_timer()
        self._timer_kind = kind
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer, kind)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_kind = None

    def _on_timer(self, kind: _Timer) -> None:
        self._timer = None
        self._timer_kind = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if kind is _Timer.UNDECIDED:
            self._give_away()
        elif kind in (_Timer.HEAD, _Timer.BODY):
            self._fail(408, "the request took too long to arrive")
        else:  # IDLE, LINGER
            transport.close()


def _error_response(status: int, message: str) -> Response:
    return Response.text(status, message + "\n", (("Connection", "close"),))


def _encode_head(
    response: Response,
    extra_headers: tuple[tuple[str, str], ...],
    *,
    keep_alive: bool,
    http10: bool,
) -> tuple[bytes, bool]:
    """The status line and header block, and whether the connection stays open.

    Raises ValueError when a header would break the framing (CR, LF or NUL in it).
    """
    lines = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
    for name, value in (*response.headers, *extra_headers):
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid response header {name!r}")
        lower = name.lower()
        if lower == "connection" and "close" in value.lower():
            keep_alive = False
        if lower not in _FRAMING_HEADERS:
            lines.append(f"{name}: {value}\r\n")
    if response.status not in _NO_CONTENT and response.status >= 200:
        lines.append(f"Content-Length: {len(response.body)}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif http10:
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    with contextlib.suppress(UnicodeEncodeError):
        return "".join(lines).encode("latin-1"), keep_alive
    raise ValueError("response headers must be latin-1")

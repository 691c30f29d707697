"""HTTP/2 from clients (RFC 9113): over TLS after ALPN "h2", or cleartext with prior
knowledge (the connection preface on the plain listener).

An ``H2ClientConnection`` runs the h2 state machine (sans-I/O) and turns each request
stream into a ``StreamExchange``. Limits and protections (defaults in docs/l7.md):

- at most ``MAX_CONCURRENT_STREAMS`` streams at once (SETTINGS_MAX_CONCURRENT_STREAMS,
  RFC 9113 section 6.5.2); streams beyond it, including ones whose exchange is still
  ending after the client reset them, are refused with REFUSED_STREAM;
- header lists up to the HTTP ``maxHeadBytes`` setting (SETTINGS_MAX_HEADER_LIST_SIZE),
  frames up to 16 KiB (SETTINGS_MAX_FRAME_SIZE default);
- CONTINUATION floods (CVE-2024-27316 and kin): a header block may span at most
  ``MAX_CONTINUATION_FRAMES`` frames and ``maxHeadBytes`` encoded bytes, checked as
  frames arrive, before anything is decoded;
- rapid reset (CVE-2023-44487): a client resetting more than ``RAPID_RESET_LIMIT``
  streams within ``RAPID_RESET_WINDOW`` seconds gets GOAWAY ENHANCE_YOUR_CALM and the
  connection is closed;
- flow control: request data is acknowledged only as it is forwarded; response data
  waits for the client's window, and a stream's backend is not read while its queued
  output exceeds ``SEND_BUFFER_LIMIT`` (or the socket's buffer is full);
- draining (listener removed, shutdown): GOAWAY with the last stream taken; streams in
  flight finish, new ones are refused, the connection closes after the last.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.frame_buffer import FrameBuffer
from hyperframe.frame import ContinuationFrame, Frame, GoAwayFrame

from seaway.dataplane.http.h2_flow import SendQueue, flush
from seaway.dataplane.http.stream_exchange import StreamExchange, StreamHead

if TYPE_CHECKING:
    from seaway.dataplane.http.downstream import HttpServer

log = logging.getLogger(__name__)

# The HTTP/2 connection preface a client sends first (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Streams a client may have open at once: RFC 9113 section 6.5.2 recommends no less
# than 100; nginx and Envoy's defaults are 128 and 100.
MAX_CONCURRENT_STREAMS = 100
# Receive windows: 256 KiB per stream, 4 MiB for the connection (RFC 9113 section
# 6.9.2). Request data beyond what was forwarded is bounded by these.
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 4 * 1024 * 1024
# CONTINUATION frames after one HEADERS frame: a 16 KiB header list needs at most two
# at the default frame size; h2's own bound is 64.
MAX_CONTINUATION_FRAMES = 16
# Rapid reset (CVE-2023-44487): streams the client resets (or that are refused)
# within the window before the connection is closed: twice the stream limit in 10 s.
RAPID_RESET_LIMIT = 2 * MAX_CONCURRENT_STREAMS
RAPID_RESET_WINDOW = 10.0
# Response bytes queued per stream before its backend stops being read.
SEND_BUFFER_LIMIT = 64 * 1024


class BoundedFrameBuffer(FrameBuffer):
    """h2's frame buffer with a cap on the CONTINUATION frames and encoded bytes of one
    header block, checked per frame (h2 alone allows 64 frames of any size)."""

    def __init__(self, max_block_bytes: int) -> None:
        super().__init__(server=True)
        self.max_block_bytes = max_block_bytes

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        if self._headers_buffer and isinstance(f, ContinuationFrame):
            size = sum(len(x.data) for x in self._headers_buffer) + len(f.data)
            if len(self._headers_buffer) >= MAX_CONTINUATION_FRAMES or size > self.max_block_bytes:
                raise h2.exceptions.DenialOfServiceError("header block too large")
        return super()._update_header_buffer(f)


def _text(fields: object) -> list[tuple[str, str]]:
    pairs = cast(list[tuple[bytes, bytes]], fields or [])
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in pairs]


def _encoded(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in fields]


class H2ClientConnection(asyncio.Protocol):
    """One HTTP/2 client connection (owns its stream exchanges and timers)."""

    def __init__(self, server: HttpServer, scheme: str) -> None:
        self.server = server
        self.runtime = server.runtime
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            # What seaway sends it built from fields the inbound checks (or the HTTP/1.1
            # parser and the configuration checks) already passed, with lower-case names
            # and no connection-specific fields: h2's own re-validation of every
            # outbound field is the costliest step of a response. Normalisation stays
            # on: it keeps credentials out of the HPACK dynamic table.
            validate_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        limits = self.runtime.settings.http
        self.h2.incoming_buffer = BoundedFrameBuffer(limits.max_head_bytes)
        self.exchanges: dict[int, StreamExchange] = {}
        self.queues: dict[int, SendQueue] = {}
        self.write_blocked = False
        self.draining = False
        self._blocked: set[int] = set()
        self._stop_reading: set[int] = set()
        self._resets: collections.deque[float] = collections.deque()
        self._listener_key = server.spec.key
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False
        # A write of what h2 queued is scheduled for the end of this loop iteration:
        # the frames of every stream answered meanwhile leave in one send.
        self._write_scheduled = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = self.runtime.client_connected(self, transport, self._listener_key)
        limits = self.runtime.settings.http
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_head_bytes,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        # The decoder enforces the list size from the first request on, before the
        # client acknowledged the setting.
        self.h2.decoder.max_header_list_size = limits.max_head_bytes
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._write()
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("HTTP/2 protocol error from %s: %s", self.peer, exc)
            self.runtime.listener_counters(self._listener_key).rejected += 1
            self._write_now()  # h2 queued the GOAWAY
            self._close_now()
            return
        for event in events:
            self._event(event)
            if self._closed:
                return
        self._write()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            length = event.flow_controlled_length or 0
            exchange = self.exchanges.get(stream_id)
            if exchange is not None and not exchange.body_done:
                exchange.body_chunk(event.data or b"", length)
            else:
                self.acknowledge(stream_id, length, write=False)
        elif isinstance(event, h2.events.TrailersReceived):
            exchange = self.exchanges.get(event.stream_id or 0)
            if exchange is not None:
                exchange.request_trailers = _text(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            exchange = self.exchanges.get(event.stream_id or 0)
            if exchange is not None and not exchange.body_done:
                exchange.body_complete(exchange.request_trailers)
        elif isinstance(event, h2.events.StreamReset):
            self._client_reset(event.stream_id or 0)
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                self._flush(event.stream_id)
            else:
                for stream_id in list(self.queues):
                    self._flush(stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            # The client is leaving. h2 stops sending after any GOAWAY; a graceful one
            # (NO_ERROR) lets the streams it processed finish (RFC 9113 section 6.8).
            if event.error_code == h2.errors.ErrorCodes.NO_ERROR and self.exchanges:
                self.h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
                self.draining = True
            else:
                self._close_now()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_idle()
        self.runtime.client_disconnected(self, self._listener_key)
        for exchange in list(self.exchanges.values()):
            exchange.client_lost()
        self.exchanges.clear()
        self.queues.clear()
        self.transport = None

    def pause_writing(self) -> None:
        self.write_blocked = True
        for stream_id in list(self.exchanges):
            self._update_blocked(stream_id)

    def resume_writing(self) -> None:
        self.write_blocked = False
        for stream_id in list(self.queues):
            self._flush(stream_id, write=False)
        self._write()

    # -- streams -------------------------------------------------------------------

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id or 0
        if self.draining or len(self.exchanges) >= MAX_CONCURRENT_STREAMS:
            # Refused streams were never processed: the client may retry them
            # (RFC 9113 section 8.7). A client that keeps trying counts as abusive.
            self._reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            self._count_reset()
            return
        fields = _text(event.headers)
        pseudo = {n: v for n, v in fields if n.startswith(":")}
        regular = [(n, v) for n, v in fields if not n.startswith(":")]
        method = pseudo.get(":method", "")
        self._cancel_idle()
        queue = self.queues[stream_id] = SendQueue()
        if method == "CONNECT":
            # Neither CONNECT tunnels nor extended CONNECT (RFC 8441) are served.
            self.h2.send_headers(stream_id, _encoded([(":status", "405")]), end_stream=True)
            queue.ended = queue.finished = True
            self._maybe_forget(stream_id)
            return
        length_text = next((v for n, v in regular if n == "content-length"), None)
        head = StreamHead(
            method=method,
            scheme=pseudo.get(":scheme", self.scheme),
            authority=pseudo.get(":authority", ""),
            target=pseudo.get(":path", "/"),
            fields=regular,
            end_stream=event.stream_ended is not None,
            content_length=int(length_text) if length_text is not None else None,
        )
        exchange = StreamExchange(self, stream_id, head)
        self.exchanges[stream_id] = exchange
        exchange.start()

    def _client_reset(self, stream_id: int) -> None:
        self.queues.pop(stream_id, None)
        self._blocked.discard(stream_id)
        self._stop_reading.discard(stream_id)
        exchange = self.exchanges.get(stream_id)
        if exchange is not None:
            if not exchange.response_ended:
                self._count_reset()
            # The exchange stays in ``exchanges`` until its task has ended: reset
            # streams are not free work, they count against the stream limit.
            exchange.client_lost()

    def _count_reset(self) -> None:
        now = self.runtime.loop.time()
        self._resets.append(now)
        while self._resets and self._resets[0] < now - RAPID_RESET_WINDOW:
            self._resets.popleft()
        if len(self._resets) > RAPID_RESET_LIMIT and not self._closed:
            log.warning("closing HTTP/2 connection from %s: rapid stream resets", self.peer)
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            self._write_now()
            self._close_now()

    # -- used by stream exchanges ------------------------------------------------------

    def send_response_head(
        self, stream_id: int, block: list[tuple[str, str]], *, end_stream: bool
    ) -> None:
        queue = self.queues.get(stream_id)
        if queue is None or self._closed:
            return
        try:
            self.h2.send_headers(stream_id, _encoded(block), end_stream=end_stream)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError, KeyError) as exc:
            log.debug("cannot answer stream %d: %s", stream_id, exc)
            queue.ended = queue.finished = True
        if end_stream:
            queue.ended = queue.finished = True
            self._after_end(stream_id)
        self._write()

    def send_body(self, stream_id: int, data: bytes) -> None:
        queue = self.queues.get(stream_id)
        if queue is None:
            return
        queue.push(data)
        self._flush(stream_id)

    def end_response(self, stream_id: int, trailers: list[tuple[str, str]] | None) -> None:
        queue = self.queues.get(stream_id)
        if queue is None:
            return
        queue.end(_encoded(trailers) if trailers else None)
        self._flush(stream_id)

    def reset_stream(self, stream_id: int) -> None:
        """Abort a response already started (RST_STREAM INTERNAL_ERROR)."""
        self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        self._write()

    def stop_reading_request(self, stream_id: int) -> None:
        """The response is complete before the request: once it is sent, RST_STREAM
        NO_ERROR tells the client to stop sending (RFC 9113 section 8.1)."""
        self._stop_reading.add(stream_id)
        queue = self.queues.get(stream_id)
        if queue is not None and queue.finished:
            self._after_end(stream_id)

    def acknowledge(self, stream_id: int, amount: int, *, write: bool = True) -> None:
        if amount <= 0 or self._closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError, ValueError):
            self.h2.acknowledge_received_data(amount, stream_id)
        if write:
            self._write()

    def exchange_done(self, exchange: StreamExchange) -> None:
        stream_id = exchange.stream_id
        if self.exchanges.get(stream_id) is exchange:
            del self.exchanges[stream_id]
        self._maybe_forget(stream_id)
        if not self.exchanges:
            if self.draining:
                self._close_after_flush()
            else:
                self._arm_idle()

    # -- flow control ----------------------------------------------------------------

    def _flush(self, stream_id: int, *, write: bool = True) -> None:
        queue = self.queues.get(stream_id)
        if queue is None or self._closed:
            return
        if not self.write_blocked:
            was_finished = queue.finished
            flush(self.h2, stream_id, queue)
            if queue.finished and not was_finished:
                self._after_end(stream_id)
        self._update_blocked(stream_id)
        if write:
            self._write()

    def _update_blocked(self, stream_id: int) -> None:
        queue = self.queues.get(stream_id)
        exchange = self.exchanges.get(stream_id)
        if exchange is None:
            return
        blocked = self.write_blocked or (queue is not None and queue.queued > SEND_BUFFER_LIMIT)
        if blocked != (stream_id in self._blocked):
            if blocked:
                self._blocked.add(stream_id)
            else:
                self._blocked.discard(stream_id)
            exchange.client_write_blocked(blocked)

    def _after_end(self, stream_id: int) -> None:
        if stream_id in self._stop_reading:
            self._stop_reading.discard(stream_id)
            stream = self.h2.streams.get(stream_id)
            if stream is not None and not stream.closed:
                self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        self._maybe_forget(stream_id)

    def _maybe_forget(self, stream_id: int) -> None:
        queue = self.queues.get(stream_id)
        if queue is not None and queue.finished and stream_id not in self.exchanges:
            del self.queues[stream_id]
            self._blocked.discard(stream_id)

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            self.h2.reset_stream(stream_id, code)
        queue = self.queues.get(stream_id)
        if queue is not None:
            queue.data.clear()
            queue.queued = 0
            queue.ended = queue.finished = True
        self._maybe_forget(stream_id)

    # -- the connection ------------------------------------------------------------

    def _write(self) -> None:
        """Send what h2 queued, soon: once per loop iteration, whatever called for it."""
        if not self._write_scheduled:
            self._write_scheduled = True
            self.runtime.loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        """Send what h2 queued, now (before a frame written past h2, or a close)."""
        self._write_scheduled = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def drain(self) -> None:
        """GOAWAY (NO_ERROR, last stream taken): streams in flight finish, then close."""
        if self.draining or self._closed:
            return
        self.draining = True
        # h2 refuses to send anything after its own GOAWAY, so the frame is written
        # here, after everything h2 queued, and h2 keeps serving the open streams.
        self._write_now()
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.h2.highest_inbound_stream_id
        frame.error_code = h2.errors.ErrorCodes.NO_ERROR
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame.serialize())
        if not self.exchanges:
            self._close_after_flush()

    def _close_after_flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write_now()
            self.transport.close()

    def _close_now(self) -> None:
        self._closed = True
        for exchange in list(self.exchanges.values()):
            exchange.client_lost()
        if self.transport is not None:
            self.transport.close()

    def _arm_idle(self) -> None:
        self._cancel_idle()
        delay = self.runtime.settings.http.idle_timeout_seconds
        self._idle = self.runtime.loop.call_later(delay, self._on_idle)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _on_idle(self) -> None:
        self._idle = None
        if not self.exchanges:
            self.drain()

    def abort_now(self) -> None:
        """Close at once (the plane is shutting down)."""
        if self.transport is not None:
            self.transport.abort()

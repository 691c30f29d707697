"""One HTTP/2 stream from a client, forwarded to a backend over HTTP/1.1 or HTTP/2.

A ``StreamExchange`` is created for each request stream of an ``H2ClientConnection``.
Its task routes the request, picks a backend for this stream alone through the backend
set's balancer (so the streams of one long-lived connection spread over every
backend), and forwards: to an HTTP/2 backend on a pooled stream (trailers pass both
ways), to an HTTP/1.1 backend on a pooled connection (translated: Host from
:authority, cookies joined, chunked when the length is unknown).

Flow control, end to end: request data is acknowledged to the client only once
written to the backend side and that side is not blocked; response data is passed on
within the client's window, and while the stream's output is queued beyond a limit the
backend is not read (HTTP/1.1: the socket is paused; HTTP/2: its data is not
acknowledged).

gRPC: errors the proxy answers itself are trailers-only responses with grpc-status
(see ``seaway.dataplane.http.grpc``), and ``grpc-timeout`` bounds the whole call.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seaway.core.config import Backend
from seaway.core.live_set import LiveBackendSet
from seaway.core.routes import replace_path
from seaway.dataplane.base import BackendCounters
from seaway.dataplane.http import grpc
from seaway.dataplane.http import headers as hdr
from seaway.dataplane.http.backend_exchange import (
    LAST_CHUNK,
    NO_CONTENT,
    BackendExchange,
    Upstream,
    reason,
)
from seaway.dataplane.http.h2_upstream import H2UpstreamStream
from seaway.dataplane.http.upstream import UpstreamConnection

if TYPE_CHECKING:
    from seaway.dataplane.http.h2_downstream import H2ClientConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamHead:
    """A request's header block as an HTTP/2 client sent it (pseudo-fields split off)."""

    method: str
    scheme: str
    authority: str
    target: str  # :path
    fields: list[tuple[str, str]]  # regular fields, lower-case names
    end_stream: bool  # no request content
    content_length: int | None


def _field(fields: list[tuple[str, str]], lower_name: str) -> str | None:
    for name, value in fields:
        if name == lower_name:
            return value
    return None


class StreamExchange(BackendExchange):
    """The forwarding of one client stream (owned by its ``H2ClientConnection``)."""

    head: StreamHead
    location_field = "location"  # HTTP/2 field names are lower-case (RFC 9113 8.2.1)

    def __init__(self, conn: H2ClientConnection, stream_id: int, head: StreamHead) -> None:
        super().__init__(conn)
        self.conn = conn
        self.stream_id = stream_id
        self.head = head
        self.grpc = head.method == "POST" and grpc.is_grpc(_field(head.fields, "content-type"))
        # Request data held until a backend takes it, and its flow-controlled size.
        self.pending: collections.deque[bytes] = collections.deque()
        self.unacked = 0
        self.body_done = head.end_stream
        self.request_trailers: list[tuple[str, str]] | None = None
        # The backend side.
        self.upstream_blocked = False
        # The response side.
        self.response_ended = False
        self.client_blocked = False
        self._deadline: asyncio.TimerHandle | None = None

    # -- from the client connection ---------------------------------------------------

    def body_chunk(self, data: bytes, flow_length: int) -> None:
        self.request_body_bytes += len(data)
        if self.sending and self.upstream is not None:
            self._send_body(data)
            self._ack_client(flow_length)
        else:
            self.pending.append(data)
            self.unacked += flow_length

    def body_complete(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.body_done = True
        self.request_trailers = trailers
        if self.sending and self.upstream is not None:
            self._end_body()

    def client_write_blocked(self, blocked: bool) -> None:
        self.client_blocked = blocked
        super().client_write_blocked(blocked)

    def client_lost(self) -> None:
        """The client reset the stream or the connection is gone: cancel the backend side."""
        self.response_ended = True
        super().client_lost()

    # -- the task -----------------------------------------------------------------

    def start(self) -> None:
        timeout = None
        if self.grpc:
            timeout = grpc.parse_timeout(_field(self.head.fields, "grpc-timeout"))
        if timeout is not None:
            self._deadline = self.runtime.loop.call_later(timeout, self._deadline_exceeded)
        # Over an idle pooled connection at once; otherwise a task connects (and retries
        # a refused stream or a stale pooled connection once).
        super().start()

    def _pooled(self, live: LiveBackendSet) -> bool:
        return live.spec.upstream_protocol != "h2c"

    def _forwarding_failed(self) -> None:
        log.exception("forwarding stream %s %s failed", self.head.method, self.head.target)
        if not self.response_started:
            self.local_response(502, "the request could not be forwarded")
        else:
            self.conn.reset_stream(self.stream_id)
        self._release(False)

    def _done(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._log_access()
        self.conn.exchange_done(self)

    def _route(self) -> LiveBackendSet | None:
        head = self.head
        path, _, query = head.target.partition("?")
        host_field = head.authority or _field(head.fields, "host") or ""
        return self._route_to(host_field, path, query, head.fields)

    def _redirect_port(self, host_field: str, listener_port: int) -> int:
        _, sep, port_text = host_field.rpartition(":")
        return int(port_text) if sep and port_text.isdigit() else listener_port

    def _open(self, backend: Backend, live: LiveBackendSet) -> Awaitable[tuple[Upstream, bool]]:
        if live.spec.upstream_protocol == "h2c":
            assert self.runtime.h2_pool is not None
            return self.runtime.h2_pool.open_stream(backend, self)
        assert self.runtime.pool is not None
        return self.runtime.pool.acquire(backend)

    def _may_retry_connect(self) -> bool:
        return True  # nothing reached the backend: any request may go to another one

    def _request_fields(self, h2_upstream: bool) -> tuple[str, list[tuple[str, str]]]:
        """The target and the fields the backend receives."""
        head = self.head
        assert self.action is not None and self.match is not None
        path, _, query = head.target.partition("?")
        host = head.authority or _field(head.fields, "host") or ""
        rewrite = self.action.rewrite
        if rewrite is not None:
            if rewrite.hostname:
                host = rewrite.hostname
            if rewrite.path is not None:
                path = replace_path(path, rewrite.path, self.match.match)
        fields = self._backend_fields(head.fields, host, None)
        target = f"{path}?{query}" if query else path
        if h2_upstream:
            out = self._h2_head(host, target, fields, hdr.wants_trailers(head.fields))
            if head.content_length is not None:
                out.append(("content-length", str(head.content_length)))
            return target, out
        fields = hdr.join_cookies(fields)
        if head.content_length is not None:
            fields.append(("Content-Length", str(head.content_length)))
        elif not head.end_stream:
            fields.append(("Transfer-Encoding", "chunked"))
        return target, fields

    def _send_request(self, upstream: Upstream, counters: BackendCounters) -> None:
        self.upstream_blocked = False
        if isinstance(upstream, H2UpstreamStream):
            _, fields = self._request_fields(True)
            no_body = self.body_done and not self.pending and not self.request_trailers
            upstream.send_head(fields, end_stream=no_body)
            self.sending = True
            for chunk in self.pending:
                upstream.send_body(chunk)
                counters.bytes_to_backend += len(chunk)
            if self.body_done and not no_body:
                upstream.end_body(self.request_trailers)
        else:
            upstream.start(self, head_only=self.head.method == "HEAD")  # type: ignore[arg-type]
            target, fields = self._request_fields(False)
            parts = [hdr.encode_head(f"{self.head.method} {target} HTTP/1.1", fields)]
            for chunk in self.pending:
                parts.extend(self._frame(chunk))
            if self.body_done and self._chunked():
                parts.append(LAST_CHUNK)
            counters.bytes_to_backend += sum(len(p) for p in parts)
            upstream.writelines(parts)
            self.sending = True
        self.pending.clear()
        if self.client_blocked:
            upstream.pause_reading()
        if self.unacked:
            amount, self.unacked = self.unacked, 0
            self._ack_client(amount)
        if self.body_done:
            self._request_sent()

    def _chunked(self) -> bool:
        return self.head.content_length is None and not self.head.end_stream

    def _frame(self, data: bytes) -> list[bytes]:
        if self._chunked():
            return [b"%x\r\n" % len(data), data, b"\r\n"]
        return [data]

    def _send_body(self, data: bytes) -> None:
        upstream = self.upstream
        assert upstream is not None
        if self.backend_counters is not None:
            self.backend_counters.bytes_to_backend += len(data)
        if isinstance(upstream, H2UpstreamStream):
            upstream.send_body(data)
        else:
            upstream.writelines(self._frame(data))

    def _end_body(self) -> None:
        upstream = self.upstream
        if isinstance(upstream, H2UpstreamStream):
            upstream.end_body(self.request_trailers)
        elif upstream is not None and self._chunked():
            upstream.write(LAST_CHUNK)
        self._request_sent()

    def _ack_client(self, amount: int) -> None:
        """Acknowledge client data now, or once the backend side can take more."""
        if self.upstream_blocked:
            self.unacked += amount
        elif amount:
            self.conn.acknowledge(self.stream_id, amount)

    def _request_sent(self) -> None:
        self.body_sent = True
        self.sent_at = self.runtime.loop.time()
        if not self.response_started and self._deadline is None:
            self._cancel_timer()
            self._timer = self.runtime.loop.call_later(
                self.runtime.settings.http.upstream_timeout_seconds, self._upstream_timeout
            )

    def _upstream_timeout(self) -> None:
        self._timer = None
        if self.response_started or self.finished.done():
            return
        self._drop_upstream()
        self.local_response(504, "the backend did not answer in time")
        self._finish("timeout")

    def _deadline_exceeded(self) -> None:
        """grpc-timeout passed: end the call with DEADLINE_EXCEEDED, cancel the backend."""
        self._deadline = None
        if self.finished.done() or self.response_ended:
            return
        self._drop_upstream()
        message = "deadline exceeded (grpc-timeout)"
        if not self.response_started:
            self.local_response(504, message)
        else:
            self.response_ended = True
            self.conn.end_response(
                self.stream_id, grpc.status_trailers(grpc.GrpcStatus.DEADLINE_EXCEEDED, message)
            )
        self._finish("timeout")

    # -- from the upstream side (both protocols) --------------------------------------

    def response_head(self, status: int, fields: list[tuple[str, str]], version: str) -> None:
        self._cancel_timer()
        if self.finished.done() or self.response_started:
            return
        self._response_began()
        out, length, chunked, _ = hdr.response_fields(fields)
        if self.route_backend is not None and self.route_backend.response_headers is not None:
            out = self.route_backend.response_headers.apply(out)
        block = [(":status", str(status)), *hdr.h2_fields(out)]
        if length is not None and not chunked:
            block.append(("content-length", length))
        self.status = status
        self.response_started = True
        upstream = self.upstream
        ends = isinstance(upstream, H2UpstreamStream) and upstream.ended_with_head
        self.conn.send_response_head(self.stream_id, block, end_stream=ends)
        if ends:
            self.response_ended = True

    def response_body(self, data: bytes) -> None:
        if self.finished.done() or not data or self.response_ended:
            return
        if self.backend_counters is not None:
            self.backend_counters.bytes_from_backend += len(data)
        if self.head.method != "HEAD" and self.status not in NO_CONTENT:
            self.response_body_bytes += len(data)
            self.conn.send_body(self.stream_id, data)

    def response_trailers(self, fields: list[tuple[str, str]]) -> None:
        if self.finished.done() or self.response_ended:
            return
        self.response_ended = True
        self.conn.end_response(self.stream_id, hdr.h2_fields(fields))

    def response_done(self) -> None:
        if self.finished.done():
            return
        if not self.response_ended:
            self.response_ended = True
            self.conn.end_response(self.stream_id, None)
        upstream = self.upstream
        if isinstance(upstream, UpstreamConnection) and not self.body_sent:
            upstream.reusable = False
        if not self.body_done:
            # The backend answered before the request ended: nothing more is wanted.
            self.conn.stop_reading_request(self.stream_id)
        self._finish("ok")

    def upstream_write_blocked(self, blocked: bool) -> None:
        self.upstream_blocked = blocked
        if not blocked and self.unacked:
            amount, self.unacked = self.unacked, 0
            self.conn.acknowledge(self.stream_id, amount)

    def upstream_refused(self) -> None:
        """The backend did not process the stream (REFUSED_STREAM, GOAWAY): retry."""
        if self.finished.done():
            return
        self.upstream = None
        self._end_backend()
        if not self.response_started and self.head.end_stream:
            self._finish("retry")  # nothing of the request is lost: send it again
        else:
            self.upstream_failed("the backend refused the stream")

    def upstream_closed(self) -> None:
        """The HTTP/1.1 backend closed its side (or the connection is gone)."""
        if self.finished.done():
            return
        upstream = self.upstream
        if (
            self.response_started
            and isinstance(upstream, UpstreamConnection)
            and self.status not in NO_CONTENT
        ):
            self.response_done()  # a close-delimited body ends here (RFC 9112 section 6.3)
            return
        if not self.response_started and self.reused and self.head.end_stream:
            self._drop_upstream()
            self._finish("retry")
            return
        self.upstream_failed("the backend closed the connection without a response")

    def upstream_failed(self, message: str) -> None:
        if self.finished.done():
            return
        self._drop_upstream()
        if self.response_started:
            if not self.response_ended:
                self.response_ended = True
                if self.grpc:
                    trailers = grpc.status_trailers(grpc.GrpcStatus.UNAVAILABLE, message)
                    self.conn.end_response(self.stream_id, trailers)
                else:
                    self.conn.reset_stream(self.stream_id)
        else:
            self.local_response(502, message)
        self._finish("failed")

    # HTTP/1.1 upgrades are never requested on this path.
    def upstream_upgraded(self, rest: bytes) -> None:
        self.upstream_failed("unexpected protocol switch from the backend")

    def tunnel_from_upstream(self, data: bytes) -> None:
        return

    def tunnel_upstream_eof(self) -> None:
        return

    # -- answers of our own -----------------------------------------------------------

    def local_response(
        self, status: int, message: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Answer without a backend: for gRPC a trailers-only response with grpc-status,
        otherwise ``status`` with a short text body saying why."""
        if self.response_started:
            return
        self._cancel_timer()
        self.status = status
        self.response_started = True
        self.response_ended = True
        if self.grpc and not extra:
            code = grpc.status_for_http(status)
            self.conn.send_response_head(
                self.stream_id, grpc.trailers_only(code, message), end_stream=True
            )
        else:
            body = f"{status} {reason(status)}: {message}\n".encode() if message else b""
            block = [
                (":status", str(status)),
                *extra,
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))),
                ("via", hdr.VIA),
            ]
            head_only = self.head.method == "HEAD" or not body
            self.conn.send_response_head(self.stream_id, block, end_stream=head_only)
            if not head_only:
                self.response_body_bytes += len(body)
                self.conn.send_body(self.stream_id, body)
                self.conn.end_response(self.stream_id, None)
        if not self.body_done:
            self.conn.stop_reading_request(self.stream_id)
        if not self.finished.done() and self.upstream is None:
            self._finish("local")

    # -- ending -------------------------------------------------------------------

    def _access_protocol(self) -> str:
        return "HTTP/2"

    def _access_host(self) -> str:
        return self.head.authority or _field(self.head.fields, "host") or ""

    def _release(self, reuse: bool) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            self._put_back(upstream, reuse, False)
        self._end_backend()
        if self.unacked:
            amount, self.unacked = self.unacked, 0
            self.conn.acknowledge(self.stream_id, amount)

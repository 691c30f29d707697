"""One request and its response, forwarded between a client connection and a backend.

An ``Exchange`` is created when a request head has been parsed. Its body chunks are
held (bounded by the client connection) until it becomes the connection's active
exchange and has a backend connection; from then on they are written straight
through, and so is the response. Only the active exchange forwards, so responses go
back in request order (RFC 9112 section 9.3.2).

Owned by its ``ClientConnection``. ``start`` routes and picks a backend per request
through the backend set's balancer; over an idle pooled connection the exchange then
runs on the connections' callbacks alone, otherwise its task (``_run``) connects or
waits for a connection. Either way ``finished`` says when the response is done.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from seaway.core.config import Backend
from seaway.core.live_set import LiveBackendSet
from seaway.core.routes import replace_path
from seaway.dataplane.base import BackendCounters
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
    from seaway.dataplane.http.downstream import ClientConnection

log = logging.getLogger(__name__)

BodyKind = Literal["none", "length", "chunked"]

# RFC 9110 section 9.2.2.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, and one is built per request. Nothing changes a head once made.
@dataclass(slots=True)
class RequestHead:
    """A parsed request head, as the client sent it (never changed once made)."""

    method: str
    target: str
    version: str  # "1.0" or "1.1"
    headers: list[tuple[str, str]]
    keep_alive: bool
    body: BodyKind
    content_length: int
    expect_continue: bool
    upgrade: str | None  # the Upgrade field of an upgrade request


class Exchange(BackendExchange):
    """The forwarding of one request (see the module docstring)."""

    head: RequestHead
    # Constant starting values are the class's (see BackendExchange).
    buffered = 0
    # (path, query, Host or the target's authority), set when the request is routed.
    target: tuple[str, str, str] = ("/", "", "")
    # The response side.
    response_complete = False
    chunked_out = False
    close_delimited_out = False
    upstream_close_delimited = False
    tunnel = False
    # The HTTP/1.1 connection whose response timer this exchange armed.
    _timed_upstream: UpstreamConnection | None = None
    _upstream_paused = False

    def __init__(self, client: ClientConnection, head: RequestHead) -> None:
        super().__init__(client)
        self.client = client
        self.head = head
        # Request body held until it can be written to a backend.
        self.chunks: collections.deque[bytes] = collections.deque()
        self.body_done = head.body == "none"
        # The backend side.
        self.trailers_out: list[tuple[str, str]] = []
        self.close_after = not head.keep_alive
        self.tunnel_input: list[bytes] = []

    # -- from the client connection ---------------------------------------------------

    def body_chunk(self, data: bytes) -> None:
        self.request_body_bytes += len(data)
        if self.sending and self.upstream is not None:
            self._send_chunk(data)
            return
        self.chunks.append(data)
        self.buffered += len(data)
        self.client.buffered_changed(len(data))

    def body_complete(self) -> None:
        self.body_done = True
        if self.sending and self.upstream is not None:
            self._finish_body()

    def tunnel_from_client(self, data: bytes) -> None:
        """Bytes after an upgrade request's head: for the tunnel, once it is up."""
        self.request_body_bytes += len(data)
        if self.tunnel and isinstance(self.upstream, UpstreamConnection):
            self.upstream.write(data)
        else:
            self.tunnel_input.append(data)
            self.client.buffered_changed(len(data))

    def abort_request(self, status: int, message: str) -> None:
        """The rest of the request cannot be read (malformed, too slow)."""
        self.close_after = True
        if not self.response_started:
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                upstream.abort()
            self.local_response(status, message)
        else:
            self.client.abort()
        self._finish("aborted")

    # -- starting -------------------------------------------------------------------

    def _pooled(self, live: LiveBackendSet) -> bool:
        # An upgrade (WebSocket) is tunnelled over HTTP/1.1 even to an h2c backend.
        return live.spec.upstream_protocol != "h2c" or self.head.upgrade is not None

    def _done(self) -> None:
        self._log_access()
        self.client.exchange_done(self)

    def _forwarding_failed(self) -> None:
        log.exception("forwarding %s %s failed", self.head.method, self.head.target)
        if not self.response_started:
            self.local_response(502, "the request could not be forwarded")
        else:
            self.client.abort()
        self._release(False)

    def _route(self) -> LiveBackendSet | None:
        head = self.head
        path, query, target_host = _split_target(head.target)
        host_field = target_host or _field(head.headers, "host") or ""
        # Kept for the request sent upstream: the target is not parsed twice.
        self.target = (path, query, host_field)
        return self._route_to(host_field, path, query, head.headers)

    def _open(self, backend: Backend, live: LiveBackendSet) -> Awaitable[tuple[Upstream, bool]]:
        assert self.runtime.pool is not None and self.runtime.h2_pool is not None
        if live.spec.upstream_protocol == "h2c" and self.head.upgrade is None:
            # HTTP/1.1 from the client, HTTP/2 to the backend: one stream each.
            return self.runtime.h2_pool.open_stream(backend, self)
        return self.runtime.pool.acquire(backend)

    def _may_retry_connect(self) -> bool:
        # Nothing reached the backend; only idempotent requests are retried.
        return self.head.method in IDEMPOTENT

    def _send_request(self, upstream: Upstream, counters: BackendCounters) -> None:
        head = self.head
        assert self.action is not None and self.match is not None
        if isinstance(upstream, UpstreamConnection):
            upstream.start(self, head_only=head.method == "HEAD", writer=self.client)
        if self.client.write_blocked:
            upstream.pause_reading()
        path, query, host = self.target
        rewrite = self.action.rewrite
        if rewrite is not None:
            if rewrite.hostname:
                host = rewrite.hostname
            if rewrite.path is not None:
                path = replace_path(path, rewrite.path, self.match.match)
        fields = self._backend_fields(head.headers, host, head.upgrade)
        if isinstance(upstream, H2UpstreamStream):
            self._attach_h2(
                upstream, fields=fields, path=path, query=query, host=host, counters=counters
            )
            return
        if head.body == "length":
            fields.append(("Content-Length", str(head.content_length)))
        elif head.body == "chunked":
            fields.append(("Transfer-Encoding", "chunked"))
        target = f"{path}?{query}" if query else path
        parts = [hdr.encode_head(f"{head.method} {target} HTTP/1.1", fields)]
        for chunk in self.chunks:
            parts.extend(self._frame(chunk))
        released = self.buffered
        self.chunks.clear()
        self.buffered = 0
        if released:
            self.client.buffered_changed(-released)
        if self.body_done and head.body == "chunked":
            parts.append(LAST_CHUNK)
        counters.bytes_to_backend += sum(map(len, parts))
        upstream.writelines(parts)
        self.sending = True
        if head.expect_continue and not self.body_done:
            # RFC 9110 section 10.1.1: the client may now send the body; the backend
            # never sees Expect, it gets the body right away.
            self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.body_done:
            self._request_sent()

    def _attach_h2(
        self,
        upstream: H2UpstreamStream,
        *,
        fields: list[tuple[str, str]],
        path: str,
        query: str,
        host: str,
        counters: BackendCounters,
    ) -> None:
        """Send the request as an HTTP/2 stream (pseudo-fields, lower-case names)."""
        head = self.head
        target = f"{path}?{query}" if query else path
        block = self._h2_head(host, target, fields, hdr.wants_trailers(head.headers))
        if head.body == "length":
            block.append(("content-length", str(head.content_length)))
        upstream.send_head(block, end_stream=head.body == "none")
        for chunk in self.chunks:
            upstream.send_body(chunk)
            counters.bytes_to_backend += len(chunk)
        released = self.buffered
        self.chunks.clear()
        self.buffered = 0
        if released:
            self.client.buffered_changed(-released)
        self.sending = True
        if head.expect_continue and not self.body_done:
            self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.body_done:
            if head.body != "none":
                upstream.end_body()
            self._request_sent()

    def _frame(self, data: bytes) -> list[bytes]:
        if self.head.body == "chunked":
            return [b"%x\r\n" % len(data), data, b"\r\n"]
        return [data]

    def _send_chunk(self, data: bytes) -> None:
        assert self.upstream is not None
        if self.backend_counters is not None:
            self.backend_counters.bytes_to_backend += len(data)
        if isinstance(self.upstream, H2UpstreamStream):
            self.upstream.send_body(data)
        elif self.head.body == "chunked":
            self.upstream.writelines(self._frame(data))
        else:
            self.upstream.write(data)

    def _finish_body(self) -> None:
        if isinstance(self.upstream, H2UpstreamStream):
            self.upstream.end_body()
        elif self.head.body == "chunked" and self.upstream is not None:
            self.upstream.write(LAST_CHUNK)
        self._request_sent()

    def _request_sent(self) -> None:
        self.body_sent = True
        self.sent_at = self.runtime.loop.time()
        if not self.response_started and not self.tunnel:
            self._set_timer(
                self.runtime.settings.http.upstream_timeout_seconds, self._upstream_timeout
            )

    def _upstream_timeout(self) -> None:
        self._timer = None
        self._timed_upstream = None
        if self.response_started or self.finished.done():
            return
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        self.local_response(504, "the backend did not answer in time")
        self._finish("timeout")

    # -- from the upstream connection -------------------------------------------------

    def response_head(self, status: int, fields: list[tuple[str, str]], version: str) -> None:
        self._cancel_timer()
        if self.finished.done():
            return
        self._response_began()
        head = self.head
        out, length, chunked, upgrade = hdr.response_fields(fields)
        if self.route_backend is not None and self.route_backend.response_headers is not None:
            out = self.route_backend.response_headers.apply(out)
        if status == 101 and head.upgrade is not None:
            out += [("Connection", "upgrade"), ("Upgrade", upgrade or head.upgrade)]
        elif head.method == "HEAD" or status in NO_CONTENT:
            if length is not None and head.method == "HEAD":
                out.append(("Content-Length", length))
        elif length is not None and not chunked:
            out.append(("Content-Length", length))
        else:
            self.upstream_close_delimited = not chunked
            if head.version == "1.1":
                self.chunked_out = True
                out.append(("Transfer-Encoding", "chunked"))
            else:
                self.close_delimited_out = True
                self.close_after = True
        if head.upgrade is not None and status != 101:
            # The client may already be sending the other protocol: this connection
            # cannot carry another request.
            self.close_after = True
        if self.close_after or self.client.closing_after_current():
            self.close_after = True
            if status != 101:
                out.append(("Connection", "close"))
        elif head.version == "1.0":
            out.append(("Connection", "keep-alive"))
        phrase = reason(status)
        self.status = status
        self.response_started = True
        self.client.write(hdr.encode_head(f"HTTP/1.1 {status} {phrase}", out))

    def response_body(self, data: bytes) -> None:
        if self.finished.done():
            return
        if self.backend_counters is not None:
            self.backend_counters.bytes_from_backend += len(data)
        self.response_body_bytes += len(data)
        if self.chunked_out:
            if data:
                self.client.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.client.write(data)
        self.client.rearm_idle_timer()

    def response_done(self) -> None:
        if self.finished.done() or (self.status == 101 and self.head.upgrade is not None):
            return  # a 101 ends in upstream_upgraded, not here
        if self.chunked_out and self.trailers_out:
            # Trailers from an HTTP/2 backend (gRPC status, say) end the chunked body
            # (RFC 9112 section 7.1.2).
            self.client.write(hdr.encode_head("0", self.trailers_out))
        elif self.chunked_out:
            self.client.write(LAST_CHUNK)
        self.response_complete = True
        if not self.body_done:
            # The backend answered before the whole body arrived (an early 413, say):
            # the rest of the body would be read as a request; close after this.
            self.close_after = True
        upstream = self.upstream
        if isinstance(upstream, UpstreamConnection) and not self.body_sent:
            upstream.reusable = False
        self._finish("ok")

    def response_trailers(self, fields: list[tuple[str, str]]) -> None:
        """Trailers of an HTTP/2 backend: kept for the end of a chunked response."""
        drop = hdr.HOP_BY_HOP | {"content-length", "host"}
        self.trailers_out = [(n, v) for n, v in fields if n.lower() not in drop]

    def upstream_refused(self) -> None:
        """The HTTP/2 backend did not process the stream (REFUSED_STREAM, GOAWAY)."""
        if self.finished.done():
            return
        if not self.response_started and self.head.body == "none":
            self.upstream = None
            self._end_backend()
            self._finish("retry")
            return
        self.upstream_failed("the backend refused the stream")

    def upstream_upgraded(self, rest: bytes) -> None:
        """The backend switched protocols (101): splice both connections from now on."""
        if self.finished.done() or not isinstance(self.upstream, UpstreamConnection):
            return
        self.tunnel = True
        self.upstream.tunnel = True
        self.upstream.reusable = False
        if rest:
            self.client.write(rest)
        for data in self.tunnel_input:
            self.upstream.write(data)
        released = sum(len(d) for d in self.tunnel_input)
        self.tunnel_input.clear()
        if released:
            self.client.buffered_changed(-released)
        self.client.start_tunnel(self)

    def tunnel_from_upstream(self, data: bytes) -> None:
        self.response_body_bytes += len(data)
        self.client.write(data)
        self.client.rearm_idle_timer()

    def tunnel_upstream_eof(self) -> None:
        self.client.write_eof()

    def tunnel_client_eof(self) -> None:
        if isinstance(self.upstream, UpstreamConnection):
            self.upstream.write_eof()

    def upstream_write_blocked(self, blocked: bool) -> None:
        self._upstream_paused = blocked
        self.client.set_blocker("upstream", blocked)

    def upstream_closed(self) -> None:
        """The backend closed its side (or the connection is gone)."""
        if self.finished.done():
            return
        if self.tunnel:
            self.client.write_eof()
            self.client.close_soon()
            self._finish("ok")
            return
        if self.response_started and self.upstream_close_delimited:
            self.response_done()  # a close-delimited body ends here (RFC 9112 section 6.3)
            return
        if not self.response_started:
            if self.reused and self.head.method in IDEMPOTENT and self.head.body == "none":
                self._drop_upstream()
                self._finish("retry")
                return
            self.upstream_failed("the backend closed the connection without a response")
            return
        self.client.abort()  # mid-body: the client must see a truncated response
        self._finish("aborted")

    def upstream_failed(self, message: str) -> None:
        if self.finished.done():
            return
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        if self.response_started:
            self.client.abort()
        else:
            self.close_after = self.close_after or not self.body_done
            self.local_response(502, message)
        self._finish("failed")

    # -- answers of our own -----------------------------------------------------------

    def local_response(
        self, status: int, message: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Answer the client without a backend: a short text body saying why."""
        if self.response_started:
            return
        self._cancel_timer()
        if not self.body_done or self.head.upgrade is not None:
            # The body (or tunnel data) was not read: nothing after it can be parsed.
            self.close_after = True
        body = f"{status} {reason(status)}: {message}\n".encode() if message else b""
        fields = [
            *extra,
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Via", hdr.VIA),
        ]
        if self.close_after or self.client.closing_after_current():
            self.close_after = True
            fields.append(("Connection", "close"))
        self.status = status
        self.response_started = True
        self.response_complete = True
        head = hdr.encode_head(f"HTTP/1.1 {status} {reason(status)}", fields)
        if self.head.method == "HEAD":
            self.client.write(head)
        else:
            self.response_body_bytes += len(body)
            self.client.writelines([head, body])

    # -- ending -------------------------------------------------------------------

    def _access_protocol(self) -> str:
        return f"HTTP/{self.head.version}"

    def _access_host(self) -> str:
        return self.target[2] or _field(self.head.headers, "host") or ""

    def _release(self, reuse: bool) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            if self._upstream_paused:
                self.client.set_blocker("upstream", False)
                self._upstream_paused = False
            self._put_back(upstream, reuse, self.tunnel)
        self._end_backend()

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        upstream = self.upstream
        if isinstance(upstream, UpstreamConnection):
            # The pooled connection's lazy timer: no timer scheduled per request.
            self._timed_upstream = upstream
            upstream.expect_response(delay, callback)
        else:
            self._timer = self.runtime.loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        timed = self._timed_upstream
        if timed is not None:
            self._timed_upstream = None
            timed.response_arrived()


def _field(fields: list[tuple[str, str]], lower_name: str) -> str | None:
    for name, value in fields:
        if name.lower() == lower_name:
            return value
    return None


def _split_target(target: str) -> tuple[str, str, str | None]:
    """(path, query, host from an absolute-form target or None)."""
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query, None
    parts = urlsplit(target)  # absolute-form (RFC 9112 section 3.2.2)
    return parts.path or "/", parts.query, parts.netloc or None

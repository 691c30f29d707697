"""The part of forwarding one request to a backend that does not depend on the client's
protocol.

``BackendExchange`` is the base of the HTTP/1.1 ``Exchange`` and the HTTP/2
``StreamExchange``: it holds the state both keep (the route, the backend chosen, its
counters, timings for the access log) and the steps both take the same way: routing,
the balancer's pick, connecting with retries, attaching to and releasing a backend
connection, and what the balancer, the counters and the access log are told when a
request ends. Each subclass keeps what its protocol does differently: how heads are
written, how bodies flow, HTTP/1.1 pipelining and upgrades, HTTP/2 flow control and
gRPC.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from collections.abc import Set as AbstractSet
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal, Protocol

from seaway.accesslog import RequestRecord
from seaway.core.config import Backend
from seaway.core.live_set import LiveBackendSet
from seaway.core.routes import (
    RouteAction,
    RouteBackend,
    RouteMatchResult,
    normalize_host,
    redirect_location,
)
from seaway.dataplane.base import BackendCounters
from seaway.dataplane.http import headers as hdr
from seaway.dataplane.http.h2_upstream import H2UpstreamStream
from seaway.dataplane.http.outcome import connect_failed, request_ended
from seaway.dataplane.http.runtime import HttpRuntime
from seaway.dataplane.http.upstream import PoolExhausted, UpstreamConnection

if TYPE_CHECKING:
    from seaway.dataplane.http.downstream import HttpServer

log = logging.getLogger(__name__)

# Statuses without content (RFC 9110 sections 15.3.5 and 15.4.5).
NO_CONTENT = frozenset({204, 304})
# The last chunk of a chunked body, without trailers (RFC 9112 section 7.1).
LAST_CHUNK = b"0\r\n\r\n"

Upstream = UpstreamConnection | H2UpstreamStream
_NO_BACKENDS: frozenset[Backend] = frozenset()


class Downstream(Protocol):
    """The client connection an exchange answers, as far as the shared steps need it."""

    runtime: HttpRuntime
    server: HttpServer
    scheme: str
    peer: tuple[str, int]


class RequestLine(Protocol):
    """What every request head has, whichever protocol carried it."""

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> str: ...


class BackendExchange:
    """The protocol-independent state and steps of one forwarded request."""

    head: RequestLine
    body_done: bool  # the whole request body was read (set by each protocol)
    # A redirect's Location field, named as the client's protocol writes names.
    location_field = "Location"

    # Where an attribute starts from a constant, the constant is the class's: an
    # exchange is made per request, and setting twenty attributes each time costs
    # more than reading the class's until the first write.
    #
    # For the access log: body bytes each way, when the backend was asked last, and
    # how long it took to answer (perf_counter seconds; see ``received_at``).
    asked_at = 0.0
    request_body_bytes = 0
    response_body_bytes = 0
    last_backend: Backend | None = None
    upstream_ttfb: float | None = None
    body_sent = False
    # The backend side.
    upstream: Upstream | None = None
    backend: Backend | None = None
    live: LiveBackendSet | None = None
    backend_counters: BackendCounters | None = None
    action: RouteAction | None = None
    route_backend: RouteBackend | None = None  # the backendRef chosen; its header edits
    match: RouteMatchResult | None = None
    reused = False
    sending = False
    sent_at = 0.0
    started_at = 0.0
    # The response side.
    status = 0
    response_started = False
    task: asyncio.Task[None] | None = None
    _timer: asyncio.TimerHandle | None = None

    def __init__(self, downstream: Downstream) -> None:
        self.downstream = downstream
        self.runtime = downstream.runtime
        # When the head was read. perf_counter, not loop.time(): uvloop's clock counts
        # whole milliseconds.
        self.received_at = time.perf_counter()
        self.finished: asyncio.Future[str] = self.runtime.loop.create_future()

    # -- what each protocol does its own way ---------------------------------------------

    def local_response(
        self, status: int, message: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Answer the client without a backend."""
        raise NotImplementedError

    def _route(self) -> LiveBackendSet | None:
        """The backend set the request goes to; None when it was answered here."""
        raise NotImplementedError

    def _open(self, backend: Backend, live: LiveBackendSet) -> Awaitable[tuple[Upstream, bool]]:
        """A connection (or stream) to ``backend`` and whether it was reused."""
        raise NotImplementedError

    def _may_retry_connect(self) -> bool:
        """Whether a failed connection may be tried again on another backend."""
        raise NotImplementedError

    def _send_request(self, upstream: Upstream, counters: BackendCounters) -> None:
        """Send the request (what of it has arrived) over ``upstream``."""
        raise NotImplementedError

    def _forwarding_failed(self) -> None:
        """An unexpected error while forwarding: answer or cut off the client."""
        raise NotImplementedError

    def _done(self) -> None:
        """The exchange is over: log it and tell the client connection."""
        raise NotImplementedError

    def _release(self, reuse: bool) -> None:
        """Give the backend connection back (or close it) and end the backend's count."""
        raise NotImplementedError

    def _access_protocol(self) -> str:
        """The protocol the access log names ("HTTP/1.1", "HTTP/2")."""
        raise NotImplementedError

    def _access_host(self) -> str:
        """The host the access log names: the authority the client asked for."""
        raise NotImplementedError

    def _redirect_port(self, host_field: str, listener_port: int) -> int:
        """The port a redirect keeps: the Host field's, else the listener's."""
        return _port_of(host_field) or listener_port

    # -- routing and connecting -----------------------------------------------------------

    def _route_to(
        self, host_field: str, path: str, query: str, fields: list[tuple[str, str]]
    ) -> LiveBackendSet | None:
        """The backend set the request goes to; None when it was answered here."""
        listener = self.downstream.server.spec
        host = normalize_host(host_field)
        match = listener.routes.match(host, path, self.head.method, fields, query)
        if match is None:
            self.local_response(404, f"no route for host {host or '-'} and path {path}")
            return None
        self.match = match
        action = self.action = match.action
        if action.redirect is not None:
            location = redirect_location(
                action.redirect,
                scheme=self.downstream.scheme,
                host=host,
                port=self._redirect_port(host_field, listener.port),
                path=path,
                query=query,
                match=match.match,
            )
            self.local_response(action.redirect.status, "", ((self.location_field, location),))
            return None
        choice = self.route_backend = self.runtime.pick_route_backend(action)
        if choice is None:
            self.local_response(action.status, f"{action.route} has no backend")
            return None
        if not choice.backend_set:
            self.local_response(choice.status, choice.reason or "backend not found")
            return None
        live = self.runtime.sets.get(choice.backend_set)
        if live is None:
            self.local_response(503, f"no backend set {choice.backend_set}")
            return None
        self.live = live
        return live

    def _choose(
        self, live: LiveBackendSet, now: float, avoid: AbstractSet[Backend]
    ) -> Backend | None:
        """The balancer's pick; None when there is none (and the client was answered)."""
        listener = self.downstream.server.spec
        backend = live.choose(
            self.downstream.peer[0],
            self.runtime.next_sequence(),
            listener.address,
            listener.port,
            now=now,
            avoid=avoid,
        )
        if backend is None and avoid:
            self.local_response(502, f"cannot connect to any backend of {live.spec.key}")
        elif backend is None:
            why = live.spec.empty_reason or "no usable endpoint"
            self.local_response(503, f"no backend available for {live.spec.key}: {why}")
        return backend

    def _pooled(self, live: LiveBackendSet) -> bool:
        """Whether the request goes over a pooled HTTP/1.1 connection (not an h2c stream)."""
        raise NotImplementedError

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Route the request and forward it.

        Over an idle pooled HTTP/1.1 connection this happens here and now, with no
        task: the rest is driven by the connections' callbacks, and the end of the
        exchange by a callback on ``finished``. Only when a connection must be made (or
        waited for), or the backend speaks HTTP/2, does a task take over. The same for
        an HTTP/1.1 request and an HTTP/2 stream.
        """
        try:
            started = self._start()
        except Exception:
            self._forwarding_failed()
            started = "answered"
        if started == "task":
            return
        if started == "answered" and not self.finished.done():
            self.finished.set_result("local")
        self.finished.add_done_callback(self._ended)

    def _start(self) -> Literal["answered", "attached", "task"]:
        """Forward the request: "attached" to an idle pooled connection, "task" when a
        task took over, "answered" when there is nothing more to do (answered here, or
        aborted before it started)."""
        if self.finished.done():  # aborted before it could start
            return "answered"
        live = self._route()
        if live is None:
            return "answered"
        now = self.runtime.loop.time()
        self.asked_at = time.perf_counter()
        backend = self._choose(live, now, _NO_BACKENDS)
        if backend is None:
            return "answered"
        pool = self.runtime.pool
        if pool is not None and self._pooled(live):
            upstream = pool.take_idle(backend)
            if upstream is not None:
                counters = self.runtime.backend_counters(live.spec.key, backend.key)
                self._attach(upstream, backend, counters, True, now)
                return "attached"
        self._spawn_task(live, backend, now, stale_retry=True)
        return "task"

    def _ended(self, finished: asyncio.Future[str]) -> None:
        """``finished`` is done on the task-less path: retry, or hand the connection on."""
        if finished is not self.finished:
            return
        if finished.result() == "retry" and self.live is not None:
            # A reused connection closed (or the stream was refused) before any
            # response: the backend may have timed it out as we sent. Safe to resend
            # only a request without a body (RFC 9112 section 9.3.1.1), once, over
            # another connection.
            self.finished = self.runtime.loop.create_future()
            self._spawn_task(self.live, None, 0.0, stale_retry=False)
            return
        self._done()

    def _spawn_task(
        self,
        live: LiveBackendSet | None,
        backend: Backend | None,
        now: float,
        *,
        stale_retry: bool,
    ) -> None:
        """Start the task that forwards the request (see ``_run``)."""
        self.task = self.runtime.loop.create_task(
            self._run(live, backend, now, stale_retry=stale_retry)
        )
        self.runtime.tasks.add(self.task)
        self.task.add_done_callback(self.runtime.tasks.discard)

    async def _run(
        self,
        live: LiveBackendSet | None,
        backend: Backend | None,
        now: float,
        *,
        stale_retry: bool,
    ) -> None:
        """The task: route first when ``live`` is None, connect and forward (see
        ``_forward_to``), then end the exchange whatever happened."""
        try:
            if live is None:
                live = self._route()
            if live is not None:
                await self._forward_to(live, backend, now, stale_retry=stale_retry)
        except asyncio.CancelledError:
            self._release(False)
            self._log_access()
            raise
        except Exception:
            self._forwarding_failed()
        self._done()

    async def _forward_to(
        self, live: LiveBackendSet, backend: Backend | None, now: float, *, stale_retry: bool
    ) -> None:
        """Connect and forward, retrying as allowed; ``backend`` is the first pick, if
        already made. ``stale_retry``: the request may be sent once more when a reused
        connection closes before any response."""
        avoid: set[Backend] = set()
        attempts = max(1, self.runtime.settings.connect_attempts)
        while True:
            if backend is None:
                now = self.runtime.loop.time()
                self.asked_at = time.perf_counter()
                backend = self._choose(live, now, avoid)
                if backend is None:
                    return
            counters = self.runtime.backend_counters(live.spec.key, backend.key)
            try:
                upstream, reused = await self._open(backend, live)
            except PoolExhausted:
                busy = f"every connection to a backend of {live.spec.key} is busy"
                self.local_response(503, busy)
                return
            except (OSError, TimeoutError) as exc:
                connect_failed(self.runtime, live, backend, counters)
                avoid.add(backend)
                attempts -= 1
                backend = None
                # Nothing reached the backend: another one may be asked, if allowed.
                if attempts > 0 and self._may_retry_connect():
                    continue
                if isinstance(exc, TimeoutError):
                    why = f"connecting to a backend of {live.spec.key} timed out"
                    self.local_response(504, why)
                else:
                    why = f"cannot connect to a backend of {live.spec.key}"
                    self.local_response(502, why)
                return
            if self.finished.done():  # the client left (or a deadline passed) meanwhile
                if isinstance(upstream, H2UpstreamStream):
                    upstream.abort()
                else:
                    assert self.runtime.pool is not None
                    self.runtime.pool.release(upstream)
                return
            self._attach(upstream, backend, counters, reused, now)
            outcome = await self.finished
            if outcome == "retry" and stale_retry:
                # A reused connection closed (or the stream was refused) before any
                # response: the backend may have timed it out as we sent. Safe to resend
                # only a request without a body (RFC 9112 section 9.3.1.1), once.
                stale_retry = False
                self.finished = self.runtime.loop.create_future()
                backend = None
                continue
            if outcome == "retry":
                self.local_response(502, "the backend closed the connection without a response")
            return

    def _attach(
        self,
        upstream: Upstream,
        backend: Backend,
        counters: BackendCounters,
        reused: bool,
        now: float,
    ) -> None:
        """Let ``upstream`` to ``backend`` serve this request, and send it."""
        assert self.live is not None
        self.live.remember(self.downstream.peer[0], backend, now)
        self.live.balancer.started(backend)
        self.backend, self.backend_counters, self.reused = backend, counters, reused
        self.last_backend = backend
        counters.active += 1
        counters.total += 1
        counters.request_started()
        self.started_at = now
        self.upstream = upstream
        self._send_request(upstream, counters)

    def _backend_fields(
        self, fields: list[tuple[str, str]], host: str, upgrade: str | None
    ) -> list[tuple[str, str]]:
        """The client's ``fields`` as the backend gets them: hop-by-hop fields gone,
        forwarding fields added, the route's changes applied (no framing fields)."""
        assert self.action is not None
        peer = self.downstream.peer[0]
        out = hdr.request_headers(
            fields,
            client_ip=peer,
            trusted=hdr.is_trusted(peer, self.runtime.trusted),
            host=host,
            upgrade=upgrade,
            scheme=self.downstream.scheme,
        )
        if self.route_backend is not None and self.route_backend.request_headers is not None:
            out = self.route_backend.request_headers.apply(out)
        return out

    def _h2_head(
        self, host: str, target: str, fields: list[tuple[str, str]], trailers: bool
    ) -> list[tuple[str, str]]:
        """The header block of the request to an HTTP/2 backend, without framing fields;
        ``trailers``: the client takes trailers (TE: trailers is kept)."""
        return [
            (":method", self.head.method),
            (":scheme", "http"),
            (":authority", host),
            (":path", target),
            *hdr.h2_fields(fields, keep_te_trailers=trailers),
        ]

    # -- from the client connection -------------------------------------------------------

    def client_write_blocked(self, blocked: bool) -> None:
        upstream = self.upstream
        if upstream is None:
            return
        if blocked:
            upstream.pause_reading()
        else:
            upstream.resume_reading()

    def client_lost(self) -> None:
        """The client went away: drop the backend side, end the exchange."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        self._finish("client-lost")

    # -- the response ---------------------------------------------------------------------

    def _response_began(self) -> None:
        """The backend answered: tell the balancer how long it took."""
        if self.backend is not None and self.live is not None:
            now = self.runtime.loop.time()
            self.live.balancer.observe(self.backend, now - self.sent_at, now)
            self.upstream_ttfb = time.perf_counter() - self.asked_at

    # -- ending ---------------------------------------------------------------------------

    def _log_access(self) -> None:
        """Hand the finished request to the access log (a queue put; no I/O here)."""
        access_log = self.runtime.access_log
        if access_log is None or not access_log.enabled:
            return
        head = self.head
        duration = time.perf_counter() - self.received_at
        backend = self.last_backend
        action = self.action
        access_log.emit(
            RequestRecord(
                start=time.time() - duration,
                duration=duration,
                protocol=self._access_protocol(),
                client=self.downstream.peer,
                listener=self.downstream.server.spec.key,
                host=self._access_host(),
                method=head.method,
                target=head.target,
                status=self.status if self.response_started else 0,
                backend=backend.key if backend is not None else None,
                route=action.route if action is not None else None,
                request_body_bytes=self.request_body_bytes,
                response_body_bytes=self.response_body_bytes,
                upstream_ttfb=self.upstream_ttfb,
            )
        )

    def _drop_upstream(self) -> None:
        """Abort the backend connection and end the backend's count."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        self._end_backend()

    def _end_backend(self) -> None:
        if self.backend is not None and self.live is not None:
            request_ended(
                self.runtime,
                self.live,
                self.backend,
                counters=self.backend_counters,
                status=self.status if self.response_started else 0,
                started_at=self.started_at,
            )
        self.backend = None
        self.backend_counters = None

    def _finish(self, outcome: str) -> None:
        self._cancel_timer()
        if outcome != "retry":
            self._release(outcome == "ok")
        if not self.finished.done():
            self.finished.set_result(outcome)

    def _put_back(self, upstream: Upstream, reuse: bool, tunnel: bool) -> None:
        """Return ``upstream`` to its pool when it can serve again; otherwise close it."""
        upstream.resume_reading()
        if isinstance(upstream, H2UpstreamStream):
            if reuse:
                upstream.release()
            else:
                upstream.abort()
        elif reuse and not tunnel and self.runtime.pool is not None:
            self.runtime.pool.release(upstream)
        elif tunnel:
            upstream.close()
        else:
            upstream.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _port_of(host_field: str) -> int | None:
    _, sep, port = host_field.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return int(port)
    return None


# Looked up once per response: a dict, not an enum construction each time.
_REASONS = {status.value: status.phrase for status in HTTPStatus}


def reason(status: int) -> str:
    """The reason phrase of ``status`` (RFC 9110 section 15)."""
    return _REASONS.get(status, "Unknown")

"""What happens when a request's work on a backend ends, for HTTP/1.1 and HTTP/2 alike."""

from __future__ import annotations

from seaway.core.config import Backend
from seaway.core.health import EventKind
from seaway.core.live_set import LiveBackendSet
from seaway.dataplane.base import BackendCounters
from seaway.dataplane.http.runtime import HttpRuntime

# Responses that say the backend (or the path to it) failed, as outlier detection
# counts them (Envoy's consecutive_gateway_failure: 502, 503, 504).
GATEWAY_ERRORS = frozenset({502, 503, 504})


def request_ended(
    runtime: HttpRuntime,
    live: LiveBackendSet,
    backend: Backend,
    *,
    counters: BackendCounters | None,
    status: int,
    started_at: float,
) -> None:
    """Tell the balancer, the counters and outlier detection how a request went.

    ``status`` is the response status, or 0 when no response began (the backend went
    away, or the client did: neither says the backend is healthy, and only the
    first is the backend's fault, so no health event is sent for 0).
    """
    live.balancer.ended(backend)
    now = runtime.loop.time()
    if counters is not None:
        counters.active -= 1
        counters.request_finished(status, now - started_at)
    if status:
        kind: EventKind = "gateway-error" if status in GATEWAY_ERRORS else "request-succeeded"
        runtime.report(live.spec.key, backend.key, kind)


def connect_failed(
    runtime: HttpRuntime, live: LiveBackendSet, backend: Backend, counters: BackendCounters
) -> None:
    """A connection to ``backend`` could not be made: counted, and a gateway error."""
    counters.failed += 1
    runtime.report(live.spec.key, backend.key, "gateway-error")

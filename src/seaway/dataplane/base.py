"""The interface every data plane implements."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from seaway.core.config import DesiredConfig

# Upper bounds (seconds) of latency histogram buckets: Envoy's default histogram
# buckets (0.5 ms to 60 s, in its stats config), so that dashboards built for Envoy fit.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


@dataclass(slots=True)
class Histogram:
    """Counts of observed values per bucket (``counts[i]``: values <= ``bounds[i]``, not
    cumulative; the last count is above every bound) and their sum.

    Only integer increments and one float add per observation: data planes observe on
    their hot path, the metrics endpoint makes it cumulative at scrape time.
    """

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    sum: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(slots=True)
class BackendCounters:
    """Traffic counters for one backend of one backend set (owned by the data plane).

    The request fields are for L7 data planes, which call :meth:`request_started` and
    :meth:`request_finished`; an L4 plane leaves them at zero (and the metrics endpoint
    then shows no request metric at all).
    """

    active: int = 0  # connections (TCP) or flows (UDP) open now
    total: int = 0  # connections or flows ever opened
    failed: int = 0  # connect attempts that failed (refused, timed out)
    bytes_to_backend: int = 0
    bytes_from_backend: int = 0
    # Time from starting a connect to the backend to being connected (successes only).
    connect_duration: Histogram = field(default_factory=Histogram)
    requests_active: int = 0
    requests: int = 0  # requests finished (answered or failed)
    # Responses per status class: "2xx", "3xx", "4xx", "5xx" (and "1xx").
    responses: dict[str, int] = field(default_factory=dict)
    # From the request's start to the end of its response.
    request_duration: Histogram = field(default_factory=Histogram)

    def request_started(self) -> None:
        """An L7 data plane sent a request to this backend."""
        self.requests_active += 1

    def request_finished(self, status: int, seconds: float) -> None:
        """The request ended with ``status`` (0: no response) after ``seconds``."""
        self.requests_active -= 1
        self.requests += 1
        klass = _STATUS_CLASSES[status // 100] if 100 <= status <= 599 else "none"
        self.responses[klass] = self.responses.get(klass, 0) + 1
        self.request_duration.observe(seconds)


# "1xx" .. "5xx" by status // 100: looked up, not formatted, once per response.
_STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(slots=True)
class ListenerCounters:
    active: int = 0
    total: int = 0
    rejected: int = 0  # refused: no usable backend, or outside loadBalancerSourceRanges
    # Packets and bytes from clients (the kernel data plane counts them; the proxies don't).
    packets: int = 0
    bytes: int = 0


@dataclass(slots=True)
class Counters:
    """A data plane's counters: per (backend set key, backend key) and per listener key."""

    backends: dict[tuple[str, str], BackendCounters] = field(default_factory=dict)
    listeners: dict[str, ListenerCounters] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What happened when a configuration was applied.

    ``errors`` maps a listener key to why it could not be opened (address in use,
    address not on this host, ...); the rest of the configuration is applied anyway.
    """

    errors: Mapping[str, str] = field(default_factory=dict)


class DataPlane(Protocol):
    """Applies desired configurations; never restarts what did not change."""

    async def apply(self, config: DesiredConfig) -> ApplyResult:
        """Move from the configuration applied last to ``config``."""
        ...

    def counters(self) -> Counters:
        """Live counters (read by the admin API; do not mutate)."""
        ...

    async def close(self) -> None:
        """Stop listening and close every connection."""
        ...


@runtime_checkable
class DrainingDataPlane(Protocol):
    """A data plane that can stop accepting and let open connections finish (shutdown)."""

    def stop_accepting(self) -> None:
        """Close every listener; established connections go on."""
        ...

    async def wait_drained(self, limit: float | None) -> int:
        """Wait until every connection ended or ``limit`` s passed; how many are left."""
        ...

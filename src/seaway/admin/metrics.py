"""Prometheus metrics at ``/metrics``, read from the data planes' counters at scrape time.

Nothing here runs per connection: data planes only increment integers (and observe
into :class:`seaway.dataplane.base.Histogram`); :class:`SeawayCollector` turns those
counters into metric families when Prometheus scrapes. Names and labels follow what
operators know from HAProxy's and Envoy's exporters: ``frontend`` is a listener
(``TCP/127.240.0.1:8080``), ``service`` a Service (``default/web``), ``port`` a
Service port (``8080/TCP``), ``backend`` an endpoint (``10.0.0.5:8000``).

L7 data planes feed the request metrics through the same counters
(``BackendCounters.request_started`` / ``request_finished``); request metrics appear
only once some request was counted, so that an L4-only seaway shows no empty series.
Every metric is documented in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from seaway.core.config import DesiredConfig, join_host_port
from seaway.dataplane.base import BackendCounters, Counters, Histogram

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BACKEND_LABELS = ("service", "port", "backend")
_FRONTEND_LABELS = ("frontend", "service", "protocol")


@dataclass(frozen=True, slots=True)
class ReloadStats:
    """Configuration changes seen so far: applied, refused, and when the last one applied."""

    successes: int = 0
    failures: int = 0
    last_success: float = 0.0  # seconds since the epoch; 0: never
    last_errors: int = 0  # errors of the last refused change while it is the latest word


@dataclass(frozen=True, slots=True)
class MetricsView:
    """Everything the collector reads, taken at scrape time (built by ``Seaway``)."""

    version: str
    config: DesiredConfig
    counters: Counters
    reloads: ReloadStats
    generation: int = 0
    listener_errors: Mapping[str, str] = field(default_factory=dict)
    # Access log records written and dropped (queue full); None when access logs are off.
    access_log: tuple[int, int] | None = None


def _port_label(set_key: str, service: str) -> str:
    """``8080/TCP`` out of ``default/web:8080/TCP``; the whole key for other shapes."""
    prefix = f"{service}:"
    return set_key[len(prefix) :] if set_key.startswith(prefix) else set_key


def _service_of(set_key: str, config: DesiredConfig) -> str:
    spec = config.backend_sets.get(set_key)
    if spec is not None:
        return spec.service
    return set_key.rsplit(":", 1)[0]  # a set that left the configuration, still draining


def _histogram(
    name: str, doc: str, series: Iterable[tuple[Sequence[str], Histogram]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=_BACKEND_LABELS)
    for labels, hist in series:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric(list(labels), buckets, hist.sum)
    return family


class SeawayCollector(Collector):
    """A Prometheus collector over one ``MetricsView`` source, read at every scrape."""

    def __init__(self, view: Callable[[], MetricsView]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        yield from self._build_info(view)
        yield from self._frontends(view)
        yield from self._backends(view)
        yield from self._config(view)
        yield from self._access_log(view)

    # -- families ------------------------------------------------------------------

    def _build_info(self, view: MetricsView) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "seaway_build_info", "seaway's version; always 1.", labels=("version",)
        )
        info.add_metric([view.version], 1)
        yield info

    def _frontends(self, view: MetricsView) -> Iterator[Metric]:
        config, counters = view.config, view.counters
        total = CounterMetricFamily(
            "seaway_frontend_connections",
            "Connections (TCP) or flows (UDP) accepted by a listener.",
            labels=_FRONTEND_LABELS,
        )
        active = GaugeMetricFamily(
            "seaway_frontend_connections_active",
            "Connections (TCP) or flows (UDP) open now on a listener.",
            labels=_FRONTEND_LABELS,
        )
        rejected = CounterMetricFamily(
            "seaway_frontend_rejected",
            "Connections or datagrams refused: no usable backend, every connect failed, "
            "outside loadBalancerSourceRanges, or a bad PROXY protocol header.",
            labels=_FRONTEND_LABELS,
        )
        up = GaugeMetricFamily(
            "seaway_frontend_up",
            "1 when the listener is open, 0 when it could not be opened (see the admin API).",
            labels=_FRONTEND_LABELS,
        )
        flows = GaugeMetricFamily(
            "seaway_udp_flows",
            "UDP flows in the flow table of a listener (seaway's conntrack).",
            labels=("frontend", "service"),
        )
        packets = CounterMetricFamily(
            "seaway_frontend_packets",
            "Packets from clients to a listener (kernel data plane only).",
            labels=_FRONTEND_LABELS,
        )
        octets = CounterMetricFamily(
            "seaway_frontend_bytes",
            "Bytes of the packets from clients to a listener (kernel data plane only).",
            labels=_FRONTEND_LABELS,
        )
        counted_packets = False
        keys = sorted(set(config.listeners) | set(counters.listeners))
        for key in keys:
            spec = config.listeners.get(key)
            protocol = spec.protocol if spec is not None else key.split("/", 1)[0]
            service = spec.service if spec is not None else ""
            labels = [key, service, protocol]
            lc = counters.listeners.get(key)
            total.add_metric(labels, lc.total if lc else 0)
            active.add_metric(labels, lc.active if lc else 0)
            rejected.add_metric(labels, lc.rejected if lc else 0)
            if spec is not None:
                up.add_metric(labels, 0 if key in view.listener_errors else 1)
            if protocol == "UDP":
                flows.add_metric([key, service], lc.active if lc else 0)
            if lc is not None and lc.packets:
                counted_packets = True
                packets.add_metric(labels, lc.packets)
                octets.add_metric(labels, lc.bytes)
        yield from (total, active, rejected, up, flows)
        # Only when some plane counts packets: the proxies would show empty series.
        if counted_packets:
            yield from (packets, octets)

    def _backends(self, view: MetricsView) -> Iterator[Metric]:
        config, counters = view.config, view.counters
        total = CounterMetricFamily(
            "seaway_backend_connections",
            "Connections (TCP) or flows (UDP) forwarded to a backend.",
            labels=_BACKEND_LABELS,
        )
        active = GaugeMetricFamily(
            "seaway_backend_connections_active",
            "Connections (TCP) or flows (UDP) open now to a backend.",
            labels=_BACKEND_LABELS,
        )
        failures = CounterMetricFamily(
            "seaway_backend_connect_failures",
            "Connect attempts to a backend that failed (refused, unreachable, timed out).",
            labels=_BACKEND_LABELS,
        )
        bytes_in = CounterMetricFamily(
            "seaway_backend_bytes_in",
            "Bytes forwarded from clients to a backend (HAProxy's bytes in: requests).",
            labels=_BACKEND_LABELS,
        )
        bytes_out = CounterMetricFamily(
            "seaway_backend_bytes_out",
            "Bytes forwarded from a backend to clients (HAProxy's bytes out: responses).",
            labels=_BACKEND_LABELS,
        )
        connect_series: list[tuple[Sequence[str], Histogram]] = []
        by_key: list[tuple[list[str], BackendCounters]] = []
        for (set_key, backend_key), c in sorted(counters.backends.items()):
            service = _service_of(set_key, config)
            labels = [service, _port_label(set_key, service), backend_key]
            by_key.append((labels, c))
            total.add_metric(labels, c.total)
            active.add_metric(labels, c.active)
            failures.add_metric(labels, c.failed)
            bytes_in.add_metric(labels, c.bytes_to_backend)
            bytes_out.add_metric(labels, c.bytes_from_backend)
            spec = config.backend_sets.get(set_key)
            # A UDP "connect" only records the peer: there is no time to measure.
            if (spec is None or spec.protocol == "TCP") and not set_key.endswith("/UDP"):
                connect_series.append((labels, c.connect_duration))
        yield from (total, active, failures, bytes_in, bytes_out)
        yield _histogram(
            "seaway_backend_connect_duration_seconds",
            "Time from starting a TCP connect to a backend to being connected.",
            connect_series,
        )
        yield self._backend_up(config)
        yield from self._requests(by_key)

    def _backend_up(self, config: DesiredConfig) -> Metric:
        up = GaugeMetricFamily(
            "seaway_backend_up",
            "1 when the endpoint receives new traffic (usable), 0 when not (not ready, "
            "terminating, other node, other zone, unhealthy, ejected); see seaway explain.",
            labels=_BACKEND_LABELS,
        )
        for set_key in sorted(config.backend_sets):
            spec = config.backend_sets[set_key]
            port = _port_label(set_key, spec.service)
            seen: set[str] = set()
            for ep in spec.endpoints:
                key = join_host_port(ep.address, ep.port)
                if key in seen:
                    continue
                seen.add(key)
                up.add_metric([spec.service, port, key], 1 if ep.usable else 0)
        return up

    def _requests(self, series: list[tuple[list[str], BackendCounters]]) -> Iterator[Metric]:
        """L7 request metrics, only when an L7 data plane counted some."""
        counted = [(labels, c) for labels, c in series if c.requests or c.requests_active]
        if not counted:
            return
        total = CounterMetricFamily(
            "seaway_backend_requests",
            "HTTP requests sent to a backend that finished.",
            labels=_BACKEND_LABELS,
        )
        active = GaugeMetricFamily(
            "seaway_backend_requests_active",
            "HTTP requests in progress at a backend.",
            labels=_BACKEND_LABELS,
        )
        responses = CounterMetricFamily(
            "seaway_backend_responses",
            "HTTP responses from a backend by status class (Envoy's upstream_rq_2xx...); "
            "code_class none: no response.",
            labels=(*_BACKEND_LABELS, "code_class"),
        )
        for labels, c in counted:
            total.add_metric(labels, c.requests)
            active.add_metric(labels, c.requests_active)
            for klass in sorted(c.responses):
                responses.add_metric([*labels, klass], c.responses[klass])
        yield from (total, active, responses)
        yield _histogram(
            "seaway_backend_request_duration_seconds",
            "Time from sending a request to a backend to the end of its response.",
            [(labels, c.request_duration) for labels, c in counted],
        )

    def _config(self, view: MetricsView) -> Iterator[Metric]:
        reloads = CounterMetricFamily(
            "seaway_config_reloads",
            "Configuration changes: applied (success) and refused as invalid (failure).",
            labels=("result",),
        )
        reloads.add_metric(["success"], view.reloads.successes)
        reloads.add_metric(["failure"], view.reloads.failures)
        yield reloads
        if view.reloads.last_success:
            yield GaugeMetricFamily(
                "seaway_config_last_reload_success_timestamp_seconds",
                "When the configuration served now was applied (seconds since the epoch).",
                value=view.reloads.last_success,
            )
        yield GaugeMetricFamily(
            "seaway_config_last_reload_errors",
            "Errors in the last configuration change when it was refused; 0 once a change applies.",
            value=view.reloads.last_errors,
        )
        yield GaugeMetricFamily(
            "seaway_config_generation",
            "How many configurations were applied since seaway started.",
            value=view.generation,
        )

    def _access_log(self, view: MetricsView) -> Iterator[Metric]:
        if view.access_log is None:
            return
        written, dropped = view.access_log
        records = CounterMetricFamily(
            "seaway_access_log_records",
            "Access log records written, or dropped because the writer fell behind.",
            labels=("result",),
        )
        records.add_metric(["written"], written)
        records.add_metric(["dropped"], dropped)
        yield records


class MetricsEndpoint:
    """A registry holding one :class:`SeawayCollector`; ``render`` is one scrape."""

    content_type = CONTENT_TYPE

    def __init__(self, view: Callable[[], MetricsView]) -> None:
        # A registry of our own: the default one would add process/GC collectors that
        # tests and other instances in the same process would share.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SeawayCollector(view))
        # process_cpu_seconds_total, process_resident_memory_bytes, open fds (Linux).
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        """The metrics in Prometheus text format 0.0.4."""
        return generate_latest(self.registry)

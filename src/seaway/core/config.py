"""The desired configuration: what the data planes should be doing.

The core computes a ``DesiredConfig`` from a ``ClusterState`` (see
``seaway.core.plan``); data planes receive the difference between two of them
(``seaway.core.diff``) and apply it without touching what did not change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from seaway.core.route_views import RoutesView
from seaway.core.routes import RouteTable
from seaway.core.tls import ListenerTls
from seaway.model.objects import SeawaySettings

HashOn = Literal["5-tuple", "source-ip"]
ProxyProtocolVersion = Literal["v1", "v2"]
L4Protocol = Literal["TCP", "UDP"]
UpstreamProtocol = Literal["http1", "h2c"]


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Backend:
    """One destination of a backend set: an endpoint address and port."""

    address: str
    port: int
    weight: int = 1
    name: str = ""  # who this is for people: the pod (targetRef) or the address
    node: str | None = None
    zone: str | None = None
    # Identity of the backend within a set ("host:port"); also the host key hashed by
    # Maglev. Derived, and stored once: the proxies read it several times per request.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", join_host_port(self.address, self.port))


@dataclass(frozen=True, slots=True)
class EndpointView:
    """An endpoint as the admin state shows it: its conditions and whether it is used."""

    address: str
    port: int
    name: str
    node: str | None
    zone: str | None
    ready: bool
    serving: bool
    terminating: bool
    usable: bool
    reason: str  # why it is not usable ("" when usable)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """How the backends of a set are actively checked (resolved from settings and annotations).

    ``port`` None means each backend's own port. ``expected_statuses`` are inclusive
    ranges of HTTP status codes that pass.
    """

    protocol: Literal["http", "tcp"] = "tcp"
    port: int | None = None
    path: str = "/healthz"
    expected_statuses: tuple[tuple[int, int], ...] = ((200, 399),)
    interval: float = 5.0
    timeout: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    initial_jitter: float = 5.0

    def time_to_unhealthy(self) -> float:
        """Worst time from a backend's failure to its removal: interval x threshold + timeout."""
        return self.interval * self.unhealthy_threshold + self.timeout


@dataclass(frozen=True, slots=True)
class BackendSet:
    """The backends of one Service port, and how to choose among them."""

    key: str  # "namespace/service:port" e.g. "default/web:80/TCP"
    service: str
    port_name: str
    protocol: L4Protocol
    backends: tuple[Backend, ...]
    algorithm: str = "maglev"
    hash_on: HashOn = "5-tuple"
    # sessionAffinity ClientIP timeout in seconds; None when affinity is off.
    affinity_timeout: float | None = None
    # PROXY protocol header sent to the backends, if any.
    proxy_protocol: ProxyProtocolVersion | None = None
    maglev_table_size: int = 65537
    # Slow start window in seconds for round-robin and least-request (0: off).
    slow_start_window: float = 0.0
    # Every endpoint considered, with its verdict, for the admin state and explain.
    endpoints: tuple[EndpointView, ...] = ()
    # Why the set is empty, when it is ("no ready endpoints", ...).
    empty_reason: str = ""
    # Active health check of ``candidates``; None when off.
    health_check: HealthCheck | None = None
    # The backends Kubernetes says may serve (before health checks and outlier
    # detection took some out); ``backends`` is a subset, or all of them in panic.
    candidates: tuple[Backend, ...] = ()
    # Too few candidates are healthy: every candidate is used (healthy_panic_threshold).
    panic: bool = False
    # "pods" (EndpointSlice endpoints) or "nodes" (eligible Nodes at the nodePort).
    mode: str = "pods"
    # The protocol the L7 proxy speaks to these backends: "http1" or "h2c" (HTTP/2
    # with prior knowledge), from appProtocol or seaway.io/upstream-protocol.
    upstream_protocol: UpstreamProtocol = "http1"
    # The Service's seaway.io/ kernel annotations (annotations.KERNEL) as (name, value),
    # sorted; read only by the nftables data plane (seaway.dataplane.nftables.options).
    kernel_annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Listener:
    """One address:port:protocol seaway listens on for a LoadBalancer Service port."""

    protocol: L4Protocol
    address: str
    port: int
    service: str  # "namespace/name"
    port_name: str
    backend_set: str  # BackendSet.key
    # loadBalancerSourceRanges as parsed networks; empty means everyone is allowed.
    source_ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Expect a PROXY protocol header (v1 or v2) from the peer in front of seaway.
    accept_proxy_protocol: bool = False

    @property
    def key(self) -> str:
        return f"{self.protocol}/{join_host_port(self.address, self.port)}"


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Service as the admin state shows it, with its Kubernetes-shaped status."""

    key: str
    type: str
    ingress: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    ports: tuple[str, ...]  # BackendSet keys, in spec order
    listeners: tuple[str, ...]  # Listener keys
    message: str = ""  # why no address, or why not served


@dataclass(frozen=True, slots=True)
class HttpListener:
    """One address:port seaway serves HTTP (1.1, and HTTP/2) on, with its compiled routes.

    ``owner`` is ``Ingress`` (the shared Ingress listener) or ``Gateway namespace/name``.
    Route backends name keys of ``DesiredConfig.http_backend_sets``. ``tls`` set: the
    listener terminates TLS with those certificates (HTTPS).
    """

    address: str
    port: int
    owner: str
    routes: RouteTable
    tls: ListenerTls | None = None

    @property
    def key(self) -> str:
        scheme = "HTTPS" if self.tls is not None else "HTTP"
        return f"{scheme}/{join_host_port(self.address, self.port)}"


def _empty() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DesiredConfig:
    """Everything the data planes should serve, keyed for cheap diffing."""

    listeners: Mapping[str, Listener] = field(default_factory=_empty)  # type: ignore[arg-type]
    backend_sets: Mapping[str, BackendSet] = field(default_factory=_empty)  # type: ignore[arg-type]
    services: Mapping[str, ServiceView] = field(default_factory=_empty)  # type: ignore[arg-type]
    settings: SeawaySettings = field(default_factory=SeawaySettings)
    # L7: HTTP listeners with their routes, the backend sets they balance per request
    # (same keys as backend_sets, with the L7 algorithm), the route objects' status,
    # and the addresses handed to Gateways and Ingresses (by claim key, remembered
    # across restarts like Services' addresses).
    http_listeners: Mapping[str, HttpListener] = field(default_factory=_empty)  # type: ignore[arg-type]
    http_backend_sets: Mapping[str, BackendSet] = field(default_factory=_empty)  # type: ignore[arg-type]
    routes: RoutesView = field(default_factory=RoutesView)
    route_addresses: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)  # type: ignore[arg-type]

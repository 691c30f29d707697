"""Typed, immutable Kubernetes objects as seaway reads them.

These are the validated forms of the manifests users write. Parsing lives in
``seaway.model.parse``; everything downstream (the core, the data planes, the
admin API) only ever sees these frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Protocol = Literal["TCP", "UDP", "SCTP"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
TrafficPolicy = Literal["Cluster", "Local"]
AddressType = Literal["IPv4", "IPv6", "FQDN"]


def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


# The label that ties an EndpointSlice to its Service (discovery.k8s.io/v1).
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Well-known node label for the zone, read by topology-aware routing (KEP-2433).
ZONE_LABEL = "topology.kubernetes.io/zone"
# Service annotations that turn on topology-aware routing; the second is the
# deprecated name kube-proxy still reads when the first is absent.
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """The part of ``metadata`` seaway uses, plus where the object came from."""

    name: str
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=_empty_map)
    annotations: Mapping[str, str] = field(default_factory=_empty_map)
    deletion_timestamp: str | None = None
    source: str = ""  # "path/to/file.yaml#3" (document index), for error messages
    # RFC 3339 UTC, e.g. "2024-01-02T03:04:05Z"; orders Gateway API routes on ties.
    creation_timestamp: str | None = None

    @property
    def key(self) -> str:
        """``namespace/name``, the identity used across seaway."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One entry of ``Service.spec.ports``."""

    port: int
    protocol: Protocol = "TCP"
    name: str = ""
    target_port: int | str = 0  # 0 means "same as port", as the API server defaults it
    node_port: int | None = None
    app_protocol: str | None = None

    @property
    def effective_target_port(self) -> int | str:
        return self.target_port if self.target_port != 0 else self.port


@dataclass(frozen=True, slots=True)
class Service:
    """A ``v1`` Service."""

    meta: ObjectMeta
    type: ServiceType = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] = field(default_factory=_empty_map)
    cluster_ip: str | None = None
    external_ips: tuple[str, ...] = ()
    external_traffic_policy: TrafficPolicy = "Cluster"
    internal_traffic_policy: TrafficPolicy = "Cluster"
    health_check_node_port: int | None = None
    load_balancer_ip: str | None = None
    load_balancer_class: str | None = None
    load_balancer_source_ranges: tuple[str, ...] = ()
    session_affinity: Literal["None", "ClientIP"] = "None"
    # sessionAffinityConfig.clientIP.timeoutSeconds; the API default is 10800 (3 h).
    session_affinity_timeout: int = 10800
    traffic_distribution: str | None = None

    @property
    def key(self) -> str:
        return self.meta.key


@dataclass(frozen=True, slots=True)
class EndpointConditions:
    """Endpoint conditions exactly as written; ``None`` means the field was absent.

    How absent fields are read (ready/serving default true, terminating false) is
    decided in one place, ``seaway.core.endpoints``.
    """

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One entry of ``EndpointSlice.endpoints``."""

    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    node_name: str | None = None
    zone: str | None = None
    hints_for_zones: tuple[str, ...] = ()
    target_ref: str | None = None  # "Pod/namespace/name", informational


@dataclass(frozen=True, slots=True)
class EndpointPort:
    """One entry of ``EndpointSlice.ports``."""

    port: int
    name: str = ""
    protocol: Protocol = "TCP"
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    """A ``discovery.k8s.io/v1`` EndpointSlice."""

    meta: ObjectMeta
    service_name: str
    address_type: AddressType = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()

    @property
    def service_key(self) -> str:
        return f"{self.meta.namespace}/{self.service_name}"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True)
class Node:
    """A ``v1`` Node (cluster-scoped: ``meta.namespace`` is empty)."""

    meta: ObjectMeta
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address), e.g. ("InternalIP", "10.0.0.1")
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False

    def address(self, kind: str) -> str | None:
        for address_type, address in self.addresses:
            if address_type == kind:
                return address
        return None

    @property
    def zone(self) -> str | None:
        return self.meta.labels.get(ZONE_LABEL)


@dataclass(frozen=True, slots=True)
class IPAddressPool:
    """A ``metallb.io/v1beta1`` IPAddressPool: CIDRs or ``first-last`` ranges."""

    meta: ObjectMeta
    addresses: tuple[str, ...]
    auto_assign: bool = True


@dataclass(frozen=True, slots=True)
class KeepaliveSettings:
    """TCP keepalive applied to both legs of every proxied TCP connection.

    Defaults: first probe after 60 s idle, then every 10 s, 6 probes. That finds a
    dead peer within 2 minutes and keeps idle flows alive through middleboxes whose
    idle timeouts are commonly 350 s (cloud NAT) or 432000 s (Linux conntrack
    established); the Linux defaults (7200 s idle) would let such flows be dropped.
    """

    enabled: bool = True
    idle_seconds: int = 60
    interval_seconds: int = 10
    count: int = 6


@dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    """``spec.healthCheck``: active health check defaults for every Service.

    A Service's ``seaway.io/health-check-*`` annotations override each field. Defaults
    (justified in docs/health.md): a probe every 5 s, 2 s to answer, 2 results in a
    row to change state, as Google Cloud's load balancer health checks default to;
    HTTP checks pass on 200-399 as HAProxy's and AWS NLB's do.
    """

    # Check pods-mode Services that have no health-check annotation. Off: Kubernetes
    # readiness already decides which pods get traffic, as kube-proxy relies on it.
    pods: bool = False
    # Check nodes-mode Services (HTTP /healthz on the kube-proxy health port), as every
    # cloud load balancer does.
    nodes: bool = True
    protocol: Literal["http", "tcp"] = "tcp"
    path: str = "/healthz"
    expected_statuses: str = "200-399"
    interval_seconds: float = 5.0
    timeout_seconds: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    # The first probe of a backend waits a random time up to this, so that probes
    # started together (seaway's start, a new Service) spread out; None: the interval.
    initial_jitter_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class OutlierSettings:
    """``spec.outlierDetection``: passive health, Envoy's defaults.

    ``consecutive_failures`` connect failures (L4) or gateway errors (L7) in a row
    eject a backend for ``base_ejection_seconds`` times the number of times it was
    ejected, at most ``max_ejection_seconds``; at most ``max_ejection_percent`` of a
    set (but always at least one backend) is ejected at a time.
    """

    enabled: bool = True
    consecutive_failures: int = 5
    base_ejection_seconds: float = 30.0
    max_ejection_seconds: float = 300.0
    max_ejection_percent: int = 10


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """Where Ingresses of seaway's class are served: one address and port for all.

    ``address`` None: the first free address of the address pools (the loopback pool
    by default), taken only while some Ingress is served. Port 8080: unprivileged, so
    no root is needed. ``serve_without_class``: also serve Ingresses that name no
    class, as if seaway's IngressClass carried the default-class annotation.
    """

    address: str | None = None
    port: int = 8080
    serve_without_class: bool = False
    # HTTPS (TLS termination) for Ingresses with spec.tls, on the same address.
    tls_port: int = 8443


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The L7 (HTTP/1.1) proxy's limits, timeouts and trust; every field has a default.

    Sizes and timeouts follow ``seaway.http1.limits`` where they mean the same thing.
    ``trusted_proxies`` are CIDRs of peers whose X-Forwarded-*/Forwarded headers are
    kept and extended; from anyone else they are replaced.
    """

    # Request line plus header fields (431 beyond; RFC 6585 section 5).
    max_head_bytes: int = 16 * 1024
    # Header fields per request (431 beyond).
    max_header_count: int = 100
    # Request-target length (414 beyond; RFC 9112 section 3 recommends at least 8000).
    max_uri_bytes: int = 8 * 1024
    # From the first byte of a request to the end of its header block (408 beyond).
    header_timeout_seconds: float = 10.0
    # Silence allowed on an idle keep-alive connection, and within a body or tunnel
    # in either direction.
    idle_timeout_seconds: float = 60.0
    # From the request sent to the response head received from the backend (504 beyond).
    upstream_timeout_seconds: float = 60.0
    # Idle pooled upstream connections are closed after this.
    upstream_idle_timeout_seconds: float = 30.0
    # Upstream connections per backend at most (in use plus idle).
    max_connections_per_backend: int = 256
    # Balancing algorithm per request when the Service has no seaway.io/algorithm
    # annotation (Envoy's and nginx's default is round-robin as well).
    algorithm: str = "round-robin"
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessLogSettings:
    """``spec.accessLog``: one line per L4 connection (and L7 request), off by default.

    ``path`` "-" is standard output; ``format`` "json" (JSON lines) or "text".
    """

    path: str | None = None
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True, slots=True)
class SeawaySettings:
    """Global settings: the ``seaway.io/v1alpha1`` kind ``SeawayConfig``.

    Every field has a default, so an empty configuration (or none) is valid.
    """

    meta: ObjectMeta = field(default_factory=lambda: ObjectMeta(name="default", namespace=""))
    # Services whose spec.loadBalancerClass is set to something else are left alone.
    load_balancer_class: str = "seaway.io/lb"
    # Used for LoadBalancer addresses when no IPAddressPool is given.
    loopback_pool: str = "127.240.0.0/16"
    admin_address: str = "127.0.0.1:9980"
    algorithm: str = "maglev"
    maglev_table_size: int = 65537
    # The node seaway runs on; when set, traffic policy Local selects that node's endpoints.
    node_name: str | None = None
    connect_timeout_seconds: float = 2.0
    connect_attempts: int = 3
    udp_idle_timeout_seconds: float = 30.0
    udp_flow_table_size: int = 65536
    keepalive: KeepaliveSettings = KeepaliveSettings()
    # Where assigned addresses are remembered across restarts; None disables.
    state_file: str | None = None
    # A file holding the admin API's bearer token; required when the admin address is
    # not loopback (docs/operations.md).
    admin_token_file: str | None = None
    access_log: AccessLogSettings = AccessLogSettings()
    ingress: IngressSettings = IngressSettings()
    http: HttpSettings = HttpSettings()
    health_check: HealthCheckSettings = HealthCheckSettings()
    outlier_detection: OutlierSettings = OutlierSettings()
    # When fewer than this percentage of a set's backends are healthy (active checks,
    # outlier detection), the set uses all of them: Envoy's healthy_panic_threshold.
    healthy_panic_threshold: int = 50
    # How long connections to a backend that left its set may go on; 0: until they end.
    drain_timeout_seconds: float = 0.0
    # After SIGTERM, how long seaway fails /readyz while still accepting connections.
    shutdown_delay_seconds: float = 5.0

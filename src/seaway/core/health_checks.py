"""Which active health check a Service's backends get (pure).

``resolve_health_check`` merges the global defaults (SeawayConfig ``spec.healthCheck``)
with the Service's ``seaway.io/health-check-*`` annotations and its backend mode. The
small value readers are shared with the manifest parser, which reports bad values.
"""

from __future__ import annotations

import math
from typing import Literal

from seaway.core.config import HealthCheck
from seaway.model import annotations as notes
from seaway.model.objects import HealthCheckSettings, Service

# kube-proxy's health server for externalTrafficPolicy Cluster: /healthz on port 10256
# (the default of --healthz-bind-address). Cloud load balancers check nodes there
# since KEP-3458, so that a node whose kube-proxy is down or which is being deleted
# (KEP-3836) stops getting traffic.
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_HEALTHZ_PATH = "/healthz"
# HTTP status codes are three digits (RFC 9110 section 15).
STATUS_MIN, STATUS_MAX = 100, 599

BackendMode = Literal["pods", "nodes"]


def parse_statuses(text: str) -> tuple[tuple[int, int], ...] | None:
    """``"200"``, ``"200-399"`` or ``"200,204,300-399"`` as inclusive ranges; None if malformed."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        if not first.strip().isdigit() or (sep and not last.strip().isdigit()):
            return None
        low = int(first)
        high = int(last) if sep else low
        if not STATUS_MIN <= low <= high <= STATUS_MAX:
            return None
        ranges.append((low, high))
    return tuple(ranges) if ranges else None


def parse_seconds(text: str) -> float | None:
    """A positive, finite number of seconds (``"0.5"``, ``"10"``); None if not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def parse_count(text: str) -> int | None:
    """A threshold: an integer from 1; None if not one."""
    text = text.strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None


def parse_port(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= 65535 else None


def backend_mode(service: Service) -> BackendMode:
    """The Service's ``seaway.io/backends`` annotation; ``pods`` by default."""
    return "nodes" if service.meta.annotations.get(notes.BACKENDS) == "nodes" else "pods"


def resolve_health_check(
    service: Service, mode: BackendMode, defaults: HealthCheckSettings
) -> HealthCheck | None:
    """The check for the Service's backends, or None when its backends are not checked.

    - Annotations win over ``defaults``; a value that does not read falls back to the
      default (the manifest parser reports it).
    - ``seaway.io/health-check-protocol: none`` turns checks off; ``http`` or ``tcp``
      turns them on. Without it, pods-mode Services are checked when ``defaults.pods``
      (off by default: readiness decides, as for kube-proxy) and nodes-mode Services
      when ``defaults.nodes`` (on by default, as cloud load balancers do), and so is a
      Service with any other ``seaway.io/health-check-*`` annotation.
    - Nodes mode checks what cloud load balancers check: HTTP ``/healthz`` on the
      Service's healthCheckNodePort for externalTrafficPolicy Local (kube-proxy
      answers 200 only on nodes with a ready local endpoint), and on port 10256 for
      Cluster (kube-proxy's own health, KEP-3458).
    """
    given = service.meta.annotations
    protocol_text = given.get(notes.HEALTH_CHECK_PROTOCOL)
    if protocol_text == "none":
        return None
    annotated = any(key in given for key in notes.HEALTH_CHECK)
    enabled = defaults.nodes if mode == "nodes" else defaults.pods
    if not (enabled or annotated):
        return None

    protocol: Literal["http", "tcp"] = defaults.protocol
    path = defaults.path
    port: int | None = None
    if mode == "nodes":
        protocol, path = "http", KUBE_PROXY_HEALTHZ_PATH
        if service.external_traffic_policy == "Local" and service.health_check_node_port:
            port = service.health_check_node_port
        else:
            port = KUBE_PROXY_HEALTHZ_PORT
    if protocol_text in ("http", "tcp"):
        protocol = "http" if protocol_text == "http" else "tcp"
    path = given.get(notes.HEALTH_CHECK_PATH, path) or path
    if not path.startswith("/"):
        path = "/" + path
    port_text = given.get(notes.HEALTH_CHECK_PORT)
    if port_text is not None:
        port = parse_port(port_text) or port

    statuses = parse_statuses(defaults.expected_statuses) or ((200, 399),)
    statuses_text = given.get(notes.HEALTH_CHECK_EXPECTED_STATUSES)
    if statuses_text is not None:
        statuses = parse_statuses(statuses_text) or statuses

    def seconds(key: str, default: float) -> float:
        text = given.get(key)
        return (parse_seconds(text) or default) if text is not None else default

    def count(key: str, default: int) -> int:
        text = given.get(key)
        return (parse_count(text) or default) if text is not None else default

    interval = seconds(notes.HEALTH_CHECK_INTERVAL, defaults.interval_seconds)
    timeout = seconds(notes.HEALTH_CHECK_TIMEOUT, defaults.timeout_seconds)
    jitter = defaults.initial_jitter_seconds
    return HealthCheck(
        protocol=protocol,
        port=port,
        path=path,
        expected_statuses=statuses,
        interval=interval,
        # A probe never outlives its interval: that is what keeps probes from piling up.
        timeout=min(timeout, interval),
        healthy_threshold=count(notes.HEALTH_CHECK_HEALTHY_THRESHOLD, defaults.healthy_threshold),
        unhealthy_threshold=count(
            notes.HEALTH_CHECK_UNHEALTHY_THRESHOLD, defaults.unhealthy_threshold
        ),
        initial_jitter=interval if jitter is None else jitter,
    )

"""What the node agent answers, as kube-proxy answers it (pure: state and times in, answers out).

The rules follow kube-proxy's ``pkg/proxy/healthcheck``:

- ``service_health`` (``service_health.go``): the health check node port of a
  Service answers 200 when the node has at least one local ready endpoint and the
  proxy is healthy, else 503; any path; a JSON body naming the Service, with
  ``localEndpoints`` and ``serviceProxyHealthy``; the count is also sent as
  ``X-Load-Balancing-Endpoint-Weight``.
- ``local_ready_endpoints`` (``LocalReadyEndpoints``): distinct IP addresses of the
  Service's endpoints on this node that are ready, over all its ports. Terminating
  endpoints never count, even when they still serve: the health signal must fail
  on a node that only has terminating endpoints, so the load balancer moves away.
- ``proxy_healthy`` (``proxy_health.go``): unhealthy once a change has waited to be
  applied for ``health_timeout`` or longer; healthy while starting and when in sync.
- ``node_eligible`` (``SyncNode``, KEP-3836): a node being deleted or tainted
  ``ToBeDeletedByClusterAutoscaler`` is not eligible; an unknown node is eligible.
- ``healthz`` is healthy and eligible; ``livez`` ignores the node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from seaway.core.nodes import is_tainted_for_deletion
from seaway.model.cluster import ClusterState
from seaway.model.objects import Node

JSON_HEADERS = (("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"))
WEIGHT_HEADER = "X-Load-Balancing-Endpoint-Weight"
# kube-proxy's --healthz-bind-address default port.
HEALTHZ_PORT = 10256
# kube-proxy gives its health server 2 x the iptables sync period (30 s by default)
# before a pending change makes it unhealthy.
DEFAULT_HEALTH_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def health_check_ports(state: ClusterState) -> dict[str, int]:
    """Service key -> healthCheckNodePort, for the Services that have one.

    The API server only allows the field on type LoadBalancer with
    externalTrafficPolicy Local; the checks here keep that true for any input.
    """
    return {
        key: service.health_check_node_port
        for key, service in sorted(state.services.items())
        if service.health_check_node_port
        and service.type == "LoadBalancer"
        and service.external_traffic_policy == "Local"
    }


def local_ready_endpoints(state: ClusterState, service_key: str, node_name: str) -> int:
    """Distinct IPs of the Service's ready, non-terminating endpoints on ``node_name``."""
    addresses: set[str] = set()
    for endpoint_slice in state.slices_for(service_key):
        for endpoint in endpoint_slice.endpoints:
            if endpoint.node_name != node_name or not endpoint.addresses:
                continue
            conditions = endpoint.conditions
            ready = conditions.ready is None or conditions.ready  # absent reads as ready
            if ready and conditions.terminating is not True:
                addresses.add(endpoint.addresses[0])
    return len(addresses)


def proxy_healthy(now: float, oldest_pending: float | None, health_timeout: float) -> bool:
    """Whether the agent is in sync: no change has been waiting ``health_timeout`` or more."""
    return oldest_pending is None or now - oldest_pending < health_timeout


def node_eligible(node: Node | None) -> bool:
    """kube-proxy's SyncNode: not being deleted and not tainted for deletion."""
    if node is None:
        return True
    return not node.meta.deletion_timestamp and not is_tainted_for_deletion(node)


def rfc3339(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def service_health(namespace: str, name: str, local_endpoints: int, healthy: bool) -> Answer:
    """The answer of a Service's health check node port."""
    body: Mapping[str, object] = {
        "service": {"namespace": namespace, "name": name},
        "localEndpoints": local_endpoints,
        "serviceProxyHealthy": healthy,
    }
    status = 200 if local_endpoints > 0 and healthy else 503
    headers = (*JSON_HEADERS, (WEIGHT_HEADER, str(local_endpoints)))
    return Answer(status, headers, json.dumps(body, indent="\t").encode())


def healthz(healthy: bool, eligible: bool, last_updated: float, now: float) -> Answer:
    """``/healthz``: the proxy is healthy and the node is eligible."""
    ok = healthy and eligible
    body = {
        # As kube-proxy: a healthy server reports "now", so lastUpdated looks recent.
        "lastUpdated": rfc3339(now if ok else last_updated),
        "currentTime": rfc3339(now),
        "nodeEligible": eligible,
    }
    return Answer(200 if ok else 503, JSON_HEADERS, json.dumps(body).encode())


def livez(healthy: bool, last_updated: float, now: float) -> Answer:
    """``/livez``: the proxy is healthy, whatever the node's state."""
    body = {
        "lastUpdated": rfc3339(now if healthy else last_updated),
        "currentTime": rfc3339(now),
    }
    return Answer(200 if healthy else 503, JSON_HEADERS, json.dumps(body).encode())

"""Which endpoints of a Service port may receive traffic, exactly as kube-proxy decides.

One pure function, ``select_endpoints``, and the frozen result it returns. The rules
follow kube-proxy's ``pkg/proxy/endpointslicecache.go`` (how slices become endpoints)
and ``pkg/proxy/topology.go`` (``CategorizeEndpoints`` and ``canUseTopology``); each
rule is listed on ``select_endpoints``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from seaway.core.config import Backend, EndpointView
from seaway.model.objects import (
    TOPOLOGY_HINTS_ANNOTATION,
    TOPOLOGY_MODE_ANNOTATION,
    ZONE_LABEL,
    Endpoint,
    EndpointSlice,
    Service,
    ServicePort,
)
from seaway.model.ports import slice_port_for

# Values of the topology annotation that turn topology-aware routing on (KEP-2433,
# KEP-4444 for trafficDistribution); "Disabled"/"" and anything else leave it off.
TOPOLOGY_AUTO_VALUES = frozenset({"Auto", "auto"})

# Verdicts shown for endpoints that are not used (EndpointView.reason).
REASON_NOT_READY = "not ready"
REASON_TERMINATING = "terminating"
REASON_TERMINATING_NOT_SERVING = "terminating and not serving"
REASON_OTHER_NODE = "other node under traffic policy Local"
REASON_OTHER_ZONE = "hinted for another zone"
REASON_DUPLICATE = "duplicate"
REASON_NO_ADDRESS = "no address"
REASON_INVALID_ADDRESS = "invalid address"
REASON_WRONG_FAMILY = "wrong address family for the slice"
REASON_FQDN = "FQDN EndpointSlices are not supported"
REASON_NO_PORT = "slice has no port matching the Service port"


@dataclass(frozen=True, slots=True)
class EndpointSelection:
    """The usable endpoints of one Service port, and a verdict for every endpoint seen.

    ``cluster`` is what traffic policy Cluster uses, ``local`` what traffic policy Local
    uses; ``external`` and ``internal`` are whichever of the two the Service's
    externalTrafficPolicy and internalTrafficPolicy select. ``has_any`` says whether a
    usable endpoint exists anywhere in the cluster (an empty ``local`` set with
    ``has_any`` means "drop", kube-proxy's answer for Local; without ``has_any`` it
    means "reject"). ``views`` holds every endpoint considered, in address order, with
    ``usable``/``reason`` relative to the ``external`` set.
    """

    cluster: tuple[Backend, ...]
    local: tuple[Backend, ...]
    external: tuple[Backend, ...]
    internal: tuple[Backend, ...]
    has_any: bool
    views: tuple[EndpointView, ...]
    # True when zone hints filtered ``cluster`` (topology-aware routing in effect).
    topology: bool = False
    # True when a set fell back to serving-and-terminating endpoints (KEP-1669).
    cluster_uses_terminating: bool = False
    local_uses_terminating: bool = False


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One endpoint (first address, one port) with its conditions as kube-proxy reads them."""

    address: str
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    name: str
    node: str | None
    zone: str | None
    hints: tuple[str, ...]
    ready: bool
    serving: bool
    terminating: bool

    @property
    def serving_terminating(self) -> bool:
        return self.serving and self.terminating

    def backend(self) -> Backend:
        return Backend(
            address=self.address, port=self.port, name=self.name, node=self.node, zone=self.zone
        )

    def view(self, usable: bool, reason: str) -> EndpointView:
        return EndpointView(
            address=self.address,
            port=self.port,
            name=self.name,
            node=self.node,
            zone=self.zone,
            ready=self.ready,
            serving=self.serving,
            terminating=self.terminating,
            usable=usable,
            reason=reason,
        )


def endpoint_name(endpoint: Endpoint, address: str) -> str:
    """Who an endpoint is for people: the name in its targetRef, else its address."""
    if endpoint.target_ref:
        return endpoint.target_ref.rsplit("/", 1)[-1]
    return address


def topology_requested(service: Service) -> bool:
    """Whether the Service asks for topology-aware routing.

    trafficDistribution, when set, wins over the annotations (kube-proxy ignores the
    annotation then; the EndpointSlice controller only writes hints for values it
    knows). Otherwise ``service.kubernetes.io/topology-mode`` is read, or, only when
    that annotation is absent, the deprecated ``service.kubernetes.io/topology-aware-hints``;
    ``Auto``/``auto`` turns topology on.
    """
    if service.traffic_distribution:
        return True
    annotations = service.meta.annotations
    if TOPOLOGY_MODE_ANNOTATION in annotations:
        value = annotations[TOPOLOGY_MODE_ANNOTATION]
    else:
        value = annotations.get(TOPOLOGY_HINTS_ANNOTATION, "")
    return value in TOPOLOGY_AUTO_VALUES


def _sort_key(view: EndpointView) -> tuple[int, int, int, int, str]:
    try:
        ip = ipaddress.ip_address(view.address)
    except ValueError:
        return (1, 0, 0, view.port, view.address)
    return (0, ip.version, int(ip), view.port, view.address)


def _read(
    service_port: ServicePort, slices: Iterable[EndpointSlice]
) -> tuple[list[_Candidate], list[EndpointView]]:
    """Slices to de-duplicated candidates, plus views of everything that was dropped."""
    dropped: list[EndpointView] = []
    chosen: dict[tuple[int, int, int], _Candidate] = {}
    order: list[tuple[int, int, int]] = []

    def drop(endpoint: Endpoint, address: str, port: int, reason: str) -> None:
        conditions = endpoint.conditions
        dropped.append(
            EndpointView(
                address=address,
                port=port,
                name=endpoint_name(endpoint, address) if address else "",
                node=endpoint.node_name,
                zone=endpoint.zone,
                ready=conditions.ready is not False,
                serving=conditions.serving is not False,
                terminating=conditions.terminating is True,
                usable=False,
                reason=reason,
            )
        )

    for endpoint_slice in slices:
        port = slice_port_for(service_port, endpoint_slice)
        for endpoint in endpoint_slice.endpoints:
            first = endpoint.addresses[0] if endpoint.addresses else ""
            if endpoint_slice.address_type == "FQDN":
                drop(endpoint, first, port.port if port else 0, REASON_FQDN)
                continue
            if port is None or port.port == 0:
                drop(endpoint, first, 0, REASON_NO_PORT)
                continue
            if not first:
                drop(endpoint, first, port.port, REASON_NO_ADDRESS)
                continue
            try:
                ip = ipaddress.ip_address(first)
            except ValueError:
                drop(endpoint, first, port.port, REASON_INVALID_ADDRESS)
                continue
            if (ip.version == 6) != (endpoint_slice.address_type == "IPv6"):
                drop(endpoint, first, port.port, REASON_WRONG_FAMILY)
                continue
            address = str(ip)  # canonical text: the host key Maglev hashes
            conditions = endpoint.conditions
            candidate = _Candidate(
                address=address,
                ip=ip,
                port=port.port,
                name=endpoint_name(endpoint, address),
                node=endpoint.node_name,
                zone=endpoint.zone,
                hints=endpoint.hints_for_zones,
                # How kube-proxy reads absent conditions (endpointslicecache.go).
                ready=conditions.ready is None or conditions.ready,
                serving=conditions.serving is None or conditions.serving,
                terminating=conditions.terminating is not None and conditions.terminating,
            )
            key = (ip.version, int(ip), port.port)
            existing = chosen.get(key)
            if existing is None:
                chosen[key] = candidate
                order.append(key)
            elif candidate.ready and not existing.ready:
                chosen[key] = candidate
                dropped.append(existing.view(False, REASON_DUPLICATE))
            else:
                dropped.append(candidate.view(False, REASON_DUPLICATE))
    candidates = [chosen[key] for key in sorted(order)]
    return candidates, dropped


def _use_topology(candidates: list[_Candidate], zone: str | None) -> bool:
    """canUseTopology, after the annotation check: the node has a zone, every ready
    endpoint has zone hints, and at least one is hinted for the node's zone."""
    if not zone:
        return False
    has_for_zone = False
    for candidate in candidates:
        if not candidate.ready:
            continue
        if not candidate.hints:
            return False
        if zone in candidate.hints:
            has_for_zone = True
    return has_for_zone


def select_endpoints(
    service: Service,
    service_port: ServicePort,
    slices: Iterable[EndpointSlice],
    local_node: str | None,
    node_labels: Mapping[str, str],
) -> EndpointSelection:
    """The usable endpoints of ``service_port``, as kube-proxy categorises them.

    ``slices`` are the Service's EndpointSlices; ``local_node`` is the name of the node
    seaway runs on (None when seaway runs outside the cluster), ``node_labels`` that
    node's labels (the zone is read from ``topology.kubernetes.io/zone``).

    Reading the slices (kube-proxy ``endpointslicecache.go``):

    1. The slice port is the one matching the Service port (``slice_port_for``: same
       protocol, and the slice port's name is the Service port's name or its named
       targetPort). Endpoints of a slice without such a port, or whose port is 0, are
       not endpoints of this Service port.
    2. FQDN slices are skipped; kube-proxy only programs IP endpoints.
    3. Only the first address of an endpoint is used; an endpoint without addresses is
       skipped, and so is one whose first address is not of the slice's address type.
       IPv4 and IPv6 slices are used together (kube-proxy keeps one proxier per family;
       seaway connects to the pods itself, so either family is reachable).
    4. Absent conditions read as kube-proxy reads them: ready absent = true, serving
       absent = true, terminating absent = false.
    5. Endpoints are de-duplicated by (ip, port) across slices, keeping a ready copy
       when there is one (else the first seen; slices come sorted by name), and ordered
       by IP address (IPv4 before IPv6, numerically), then port.

    Categorising (kube-proxy ``CategorizeEndpoints``):

    6. Cluster set: the ready endpoints, filtered by zone hints when topology applies
       (rule 8). When no endpoint is ready, it falls back to the endpoints that are
       serving and terminating (KEP-1669, graceful termination), without topology:
       the fallback is a best effort not to drop connections.
    7. Local set: the ready endpoints on ``local_node``; when none of those is ready,
       the serving-and-terminating endpoints on ``local_node``. Topology is never
       applied to the local set.
    8. Topology (``canUseTopology``) applies to the cluster set only, and only when all
       of these hold: the Service asks for it (``topology_requested``: trafficDistribution
       set, or the topology annotation is ``Auto``/``auto``); the node has a zone label;
       every ready endpoint has zone hints; at least one ready endpoint is hinted for the
       node's zone. Otherwise hints are ignored and every ready endpoint is used.
    9. ``has_any``: some endpoint anywhere is ready, or serving and terminating.
    10. ``external`` is the local set when externalTrafficPolicy is Local, else the
        cluster set; ``internal`` likewise with internalTrafficPolicy.

    Outside the cluster (``local_node`` is None) "Local" cannot be evaluated, since no
    endpoint is on seaway's node. The local set is then the cluster set: seaway
    connects to the pods itself, so the client address that Local exists to preserve
    is kept anyway (by PROXY protocol or by the source address seen by seaway).
    """
    candidates, dropped = _read(service_port, slices)
    zone = node_labels.get(ZONE_LABEL)

    topology = topology_requested(service) and _use_topology(candidates, zone)
    cluster = [c for c in candidates if c.ready and (not topology or zone in c.hints)]
    cluster_uses_terminating = False
    if not cluster:
        # Topology never empties the set (it needs a ready endpoint for this zone), so
        # no endpoint is ready anywhere: fall back, without topology.
        cluster = [c for c in candidates if c.serving_terminating]
        cluster_uses_terminating = bool(cluster)

    if local_node is None:
        local = cluster
        local_uses_terminating = cluster_uses_terminating
    else:
        on_node = [c for c in candidates if c.node == local_node]
        local = [c for c in on_node if c.ready]
        local_uses_terminating = False
        if not local:
            local = [c for c in on_node if c.serving_terminating]
            local_uses_terminating = bool(local)

    external_is_local = service.external_traffic_policy == "Local"
    internal_is_local = service.internal_traffic_policy == "Local"
    external = local if external_is_local else cluster
    internal = local if internal_is_local else cluster
    has_any = any(c.ready or c.serving_terminating for c in candidates)

    used = {(c.ip.version, int(c.ip), c.port) for c in external}
    views = list(dropped)
    for c in candidates:
        if (c.ip.version, int(c.ip), c.port) in used:
            views.append(c.view(True, ""))
            continue
        views.append(c.view(False, _reason(c, external_is_local, local_node, zone)))
    views.sort(key=_sort_key)

    return EndpointSelection(
        cluster=tuple(c.backend() for c in cluster),
        local=tuple(c.backend() for c in local),
        external=tuple(c.backend() for c in external),
        internal=tuple(c.backend() for c in internal),
        has_any=has_any,
        views=tuple(views),
        topology=topology,
        cluster_uses_terminating=cluster_uses_terminating,
        local_uses_terminating=local_uses_terminating,
    )


def _reason(
    candidate: _Candidate, external_is_local: bool, local_node: str | None, zone: str | None
) -> str:
    """Why a de-duplicated endpoint is not in the external set."""
    if external_is_local and local_node is not None and candidate.node != local_node:
        return REASON_OTHER_NODE
    if candidate.ready:
        # A ready endpoint is left out of the cluster set only by zone hints.
        hinted = ", ".join(candidate.hints)
        return f"{REASON_OTHER_ZONE} ({hinted}; this node is in {zone})"
    if candidate.terminating:
        # Serving-and-terminating endpoints are unused while ready ones exist.
        return REASON_TERMINATING if candidate.serving else REASON_TERMINATING_NOT_SERVING
    return REASON_NOT_READY

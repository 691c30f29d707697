"""From a ClusterState to a DesiredConfig: what seaway should serve (pure).

``plan`` builds a backend set for every TCP/UDP Service port, listeners for every
LoadBalancer Service of seaway's class, and a view of every Service for the admin
state. The same snapshot and remembered addresses always give an equal result, and a
change to one Service leaves the other Services' backend sets and listeners equal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import cast

from seaway.core.addresses import allocate_addresses, is_seaway_load_balancer
from seaway.core.balancers.registry import ALGORITHM_NAMES
from seaway.core.config import (
    Backend,
    BackendSet,
    DesiredConfig,
    EndpointView,
    HashOn,
    L4Protocol,
    Listener,
    ProxyProtocolVersion,
    ServiceView,
    join_host_port,
)
from seaway.core.endpoints import EndpointSelection, select_endpoints
from seaway.core.health import NO_HEALTH, HealthView
from seaway.core.health_checks import BackendMode, backend_mode, resolve_health_check
from seaway.core.nodes import node_backends, nodes_mode_problem
from seaway.core.route_plan import plan_routes, route_address_claims
from seaway.model.annotations import (
    ACCEPT_PROXY_PROTOCOL,
    ALGORITHM,
    HASH_ON,
    HASH_ON_VALUES,
    KERNEL,
    PROXY_PROTOCOL,
    PROXY_PROTOCOL_VALUES,
    SLOW_START_WINDOW,
    parse_slow_start_window,
)
from seaway.model.cluster import ClusterState
from seaway.model.objects import SeawaySettings, Service, ServicePort

SourceRange = ipaddress.IPv4Network | ipaddress.IPv6Network

SCTP_MESSAGE = "SCTP ports are not supported by the proxy"


def backend_set_key(service: Service, port: ServicePort) -> str:
    """``namespace/name:port/PROTOCOL``, e.g. ``default/web:80/TCP``."""
    return f"{service.key}:{port.port}/{port.protocol}"


def node_labels(state: ClusterState, node_name: str | None) -> Mapping[str, str]:
    """Labels of the node called ``node_name`` (empty when unknown or None)."""
    if node_name is None:
        return MappingProxyType({})
    node = state.nodes.get(node_name)  # nodes are keyed by name
    if node is not None:
        return node.meta.labels
    for node in state.nodes.values():
        if node.meta.name == node_name:
            return node.meta.labels
    return MappingProxyType({})


def plan(
    state: ClusterState,
    previous_addresses: Mapping[str, tuple[str, ...]],
    health: HealthView = NO_HEALTH,
) -> DesiredConfig:
    """The desired configuration for ``state``.

    ``previous_addresses`` are the LoadBalancer addresses handed out before (by Service
    key), so Services keep them (see ``allocate_addresses``).

    - Every TCP/UDP port of every Service (ExternalName excepted) gets a backend set
      keyed ``ns/name:port/PROTOCOL`` whose backends are the endpoints selected for
      external traffic on ``settings.node_name`` (``select_endpoints``); SCTP ports get
      none, and the Service's view says so.
    - Per-Service annotations: ``seaway.io/algorithm`` (default: the global setting),
      ``seaway.io/hash-on`` (default ``5-tuple``), ``seaway.io/proxy-protocol`` and
      ``seaway.io/accept-proxy-protocol``; a value seaway does not know falls back to
      the default (the manifest parser reports it).
    - sessionAffinity ClientIP sets the backend set's affinity timeout.
    - ``seaway.io/backends: nodes`` makes the eligible Nodes (``node_backends``) at the
      port's nodePort the candidates instead of the endpoints; a port without a
      nodePort then gets none, and the Service's view says so.
    - Health (``health``, from ``HealthTracker.view``) takes unhealthy and ejected
      backends out of the candidates, with the reason in the endpoint views. When
      fewer than ``healthy_panic_threshold`` percent of the candidates are left, the
      set is in panic and uses every candidate (Envoy's panic threshold): sending to
      possibly failing backends beats sending nowhere or overloading the few left.
    - Every LoadBalancer Service of seaway's class gets its allocated address plus its
      spec.externalIPs, and a listener per (address, TCP/UDP port) with
      loadBalancerSourceRanges. Services of another class get a view and no listener.
    """
    settings = state.settings
    labels = node_labels(state, settings.node_name)
    # Gateways and the Ingress listener take addresses from the same pools (after Services).
    claims = {**state.services, **route_address_claims(state)}
    allocation = allocate_addresses(claims, state.pools, settings, previous_addresses)

    backend_sets: dict[str, BackendSet] = {}
    listeners: dict[str, Listener] = {}
    views: dict[str, ServiceView] = {}

    for key in sorted(state.services):
        service = state.services[key]
        if service.type == "ExternalName":
            views[service.key] = ServiceView(
                key=service.key,
                type=service.type,
                ingress=(),
                ports=(),
                listeners=(),
                message="ExternalName Services are answered by DNS, not by seaway",
            )
            continue

        messages: list[str] = []
        port_keys: list[str] = []
        served_ports: list[tuple[ServicePort, str]] = []
        for port in service.ports:
            if port.protocol == "SCTP":
                if SCTP_MESSAGE not in messages:
                    messages.append(SCTP_MESSAGE)
                continue
            mode = backend_mode(service)
            if mode == "nodes":
                node_problem = nodes_mode_problem(service, port)
                if node_problem and node_problem not in messages:
                    messages.append(node_problem)
                backends, node_views = node_backends(port, state.nodes.values())
                empty = node_problem or ("no nodes" if not node_views else "no node is eligible")
                backend_set = _backend_set(
                    service,
                    port,
                    candidates=backends,
                    views=node_views,
                    empty_reason=empty,
                    settings=settings,
                    mode=mode,
                    health=health,
                )
            else:
                selection = select_endpoints(
                    service, port, state.slices_for(service.key), settings.node_name, labels
                )
                backend_set = _backend_set(
                    service,
                    port,
                    candidates=selection.external,
                    views=selection.views,
                    empty_reason=_empty_reason(service, selection, settings),
                    settings=settings,
                    mode=mode,
                    health=health,
                )
            backend_sets[backend_set.key] = backend_set
            port_keys.append(backend_set.key)
            served_ports.append((port, backend_set.key))

        ingress: tuple[str, ...] = ()
        listener_keys: list[str] = []
        if service.type == "LoadBalancer":
            if not is_seaway_load_balancer(service, settings):
                messages.insert(
                    0,
                    f"loadBalancerClass {service.load_balancer_class} is not seaway's "
                    f"({settings.load_balancer_class}); left to its controller",
                )
            else:
                ingress = allocation.addresses.get(service.key, ())
                problem = allocation.messages.get(service.key)
                if problem:
                    messages.insert(0, f"no address because {problem}")
                source_ranges, bad_range = _source_ranges(service)
                if bad_range:
                    # Serving with fewer ranges than asked would let everyone in: fail closed.
                    messages.append(
                        f"not served: loadBalancerSourceRanges entry {bad_range!r} is invalid"
                    )
                    served_ports = []
                for listener in _listeners(service, ingress, served_ports, source_ranges):
                    owner = listeners.get(listener.key)
                    if owner is not None:
                        messages.append(f"{listener.key} is already served for {owner.service}")
                        continue
                    listeners[listener.key] = listener
                    listener_keys.append(listener.key)

        views[service.key] = ServiceView(
            key=service.key,
            type=service.type,
            ingress=ingress,
            ports=tuple(port_keys),
            listeners=tuple(listener_keys),
            message="; ".join(messages),
        )

    routes = plan_routes(state, allocation, backend_sets)
    return DesiredConfig(
        listeners=MappingProxyType(dict(sorted(listeners.items()))),
        backend_sets=MappingProxyType(dict(sorted(backend_sets.items()))),
        services=MappingProxyType(dict(sorted(views.items()))),
        settings=settings,
        http_listeners=routes.http_listeners,
        http_backend_sets=routes.http_backend_sets,
        routes=routes.routes,
        route_addresses=routes.route_addresses,
    )


def _apply_health(
    set_key: str,
    candidates: tuple[Backend, ...],
    views: tuple[EndpointView, ...],
    health: HealthView,
    panic_threshold: int,
) -> tuple[tuple[Backend, ...], tuple[EndpointView, ...], bool]:
    """The candidates health leaves in (all of them in panic), the views, and the panic flag."""
    if not health.verdicts or not candidates:
        return candidates, views, False
    verdicts = {b.key: health.verdict(set_key, b.key) for b in candidates}
    healthy = tuple(b for b in candidates if verdicts[b.key] is None)
    if len(healthy) == len(candidates):
        return candidates, views, False
    # Envoy: panic when the healthy share is below the threshold.
    panic = len(healthy) * 100 < panic_threshold * len(candidates)
    marked: list[EndpointView] = []
    for view in views:
        verdict = verdicts.get(join_host_port(view.address, view.port)) if view.usable else None
        if verdict is None:
            marked.append(view)
        elif panic:
            marked.append(replace(view, reason=f"{verdict} (used: panic)"))
        else:
            marked.append(replace(view, usable=False, reason=verdict))
    return (candidates if panic else healthy), tuple(marked), panic


def _backend_set(
    service: Service,
    port: ServicePort,
    *,
    candidates: tuple[Backend, ...],
    views: tuple[EndpointView, ...],
    empty_reason: str,
    settings: SeawaySettings,
    mode: BackendMode,
    health: HealthView,
) -> BackendSet:
    notes = service.meta.annotations
    algorithm = notes.get(ALGORITHM, settings.algorithm)
    if algorithm not in ALGORITHM_NAMES:
        algorithm = settings.algorithm
    hash_on_text = notes.get(HASH_ON, "5-tuple")
    hash_on = cast(HashOn, hash_on_text if hash_on_text in HASH_ON_VALUES else "5-tuple")
    proxy_text = notes.get(PROXY_PROTOCOL)
    proxy_protocol = (
        cast(ProxyProtocolVersion, proxy_text) if proxy_text in PROXY_PROTOCOL_VALUES else None
    )
    affinity = (
        float(service.session_affinity_timeout) if service.session_affinity == "ClientIP" else None
    )
    key = backend_set_key(service, port)
    backends, views, panic = _apply_health(
        key, candidates, views, health, settings.healthy_panic_threshold
    )
    if candidates and not backends:
        empty_reason = "every backend is unhealthy or ejected"
    return BackendSet(
        key=key,
        service=service.key,
        port_name=port.name,
        protocol=cast(L4Protocol, port.protocol),
        backends=backends,
        algorithm=algorithm,
        hash_on=hash_on,
        affinity_timeout=affinity,
        proxy_protocol=proxy_protocol,
        maglev_table_size=settings.maglev_table_size,
        slow_start_window=parse_slow_start_window(notes.get(SLOW_START_WINDOW, "0")) or 0.0,
        endpoints=views,
        empty_reason="" if backends else empty_reason,
        health_check=resolve_health_check(service, mode, settings.health_check),
        candidates=candidates,
        panic=panic,
        mode=mode,
        kernel_annotations=tuple(sorted((k, v) for k, v in notes.items() if k in KERNEL)),
    )


def _empty_reason(service: Service, selection: EndpointSelection, settings: SeawaySettings) -> str:
    if not selection.views:
        return "no endpoints"
    if not any(view.port for view in selection.views):
        return "no EndpointSlice port matches this Service port"
    if selection.has_any and service.external_traffic_policy == "Local":
        return (
            f"no ready endpoint on node {settings.node_name} "
            "(externalTrafficPolicy Local): traffic is dropped"
        )
    return "no ready endpoints (and none serving while terminating)"


def _listeners(
    service: Service,
    allocated: tuple[str, ...],
    ports: list[tuple[ServicePort, str]],
    source_ranges: tuple[SourceRange, ...],
) -> list[Listener]:
    addresses: list[str] = []
    for text in (*allocated, *service.external_ips):
        try:
            address = str(ipaddress.ip_address(text.strip()))
        except ValueError:
            continue  # the manifest parser reports invalid externalIPs
        if address not in addresses:
            addresses.append(address)
    accept = service.meta.annotations.get(ACCEPT_PROXY_PROTOCOL) == "true"
    return [
        Listener(
            protocol=cast(L4Protocol, port.protocol),
            address=address,
            port=port.port,
            service=service.key,
            port_name=port.name,
            backend_set=set_key,
            source_ranges=source_ranges,
            accept_proxy_protocol=accept,
        )
        for address in addresses
        for port, set_key in ports
    ]


def _source_ranges(service: Service) -> tuple[tuple[SourceRange, ...], str]:
    """The parsed loadBalancerSourceRanges, and the first entry that does not parse."""
    ranges: list[SourceRange] = []
    for text in service.load_balancer_source_ranges:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            return (), text
        if network not in ranges:
            ranges.append(network)
    return tuple(ranges), ""

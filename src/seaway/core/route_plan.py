"""L7 planning: HTTP listeners, their compiled routes and the route objects' status (pure).

``plan`` (``seaway.core.plan``) calls ``route_address_claims`` to get addresses for
Gateways and the shared Ingress listener from the same allocation as Services, then
``plan_routes`` with the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from seaway.core.addresses import Allocation
from seaway.core.config import BackendSet, HttpListener
from seaway.core.route_backends import BackendResolver
from seaway.core.route_tls import ingress_certificates
from seaway.core.route_views import IngressView, RoutesView
from seaway.core.routes_gateway import compile_gateways, served_gateways
from seaway.core.routes_ingress import compile_ingresses, served_ingresses
from seaway.core.tls import listener_tls
from seaway.model.cluster import ClusterState
from seaway.model.objects import ObjectMeta, Service
from seaway.model.routes import Ingress

# Allocation keys of route addresses. Real Service keys are "namespace/name" with
# lower-case DNS labels, so these never collide, and "~" sorts them after every
# Service: a new Gateway never takes an address a Service would have been given.
INGRESS_CLAIM_KEY = "~ingress/seaway"
GATEWAY_CLAIM_NAMESPACE = "~gateway"


def gateway_claim_key(gateway_key: str) -> str:
    return f"{GATEWAY_CLAIM_NAMESPACE}/{gateway_key}"


def route_address_claims(state: ClusterState) -> dict[str, Service]:
    """Pseudo LoadBalancer Services asking for the addresses routes need from the pools.

    The Ingress listener claims one while some Ingress is served and no address is
    configured; each served Gateway without ``spec.addresses`` claims one.
    """
    claims: dict[str, Service] = {}
    if state.settings.ingress.address is None and served_ingresses(state)[0]:
        meta = ObjectMeta(name="seaway", namespace="~ingress")
        claims[meta.key] = Service(meta=meta, type="LoadBalancer")
    for gateway in served_gateways(state):
        if not gateway.addresses:
            meta = ObjectMeta(name=gateway.key, namespace=GATEWAY_CLAIM_NAMESPACE)
            claims[meta.key] = Service(meta=meta, type="LoadBalancer")
    return claims


def _with_tls(
    views: tuple[IngressView, ...],
    served: list[Ingress],
    serving_tls: bool,
    tls_port: int,
    problems: Mapping[str, str],
) -> tuple[IngressView, ...]:
    """Ingress views with the HTTPS port of those with spec.tls, and their TLS problems."""
    with_tls = {i.key for i in served if i.tls}
    result = []
    for view in views:
        if view.key in with_tls and view.served:
            ports = (*view.ports, tls_port) if serving_tls else view.ports
            problem = problems.get(view.key, "")
            message = "; ".join(m for m in (view.message, problem) if m)
            result.append(dataclasses.replace(view, ports=ports, message=message))
        else:
            result.append(view)
    return tuple(result)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    http_listeners: Mapping[str, HttpListener]
    http_backend_sets: Mapping[str, BackendSet]
    routes: RoutesView
    route_addresses: Mapping[str, tuple[str, ...]]


def plan_routes(
    state: ClusterState, allocation: Allocation, backend_sets: Mapping[str, BackendSet]
) -> RoutePlan:
    """HTTP listeners for the Ingress listener and every served Gateway, and all status.

    When a Gateway's socket is the Ingress listener's, the Ingresses keep it.
    """
    resolver = BackendResolver(state, backend_sets)
    settings = state.settings.ingress
    remembered: dict[str, tuple[str, ...]] = {}

    if settings.address is not None:
        ingress_addresses: tuple[str, ...] = (settings.address,)
        ingress_problem = ""
    else:
        ingress_addresses = allocation.addresses.get(INGRESS_CLAIM_KEY, ())[:1]
        ingress_problem = allocation.messages.get(INGRESS_CLAIM_KEY, "")
        if ingress_addresses:
            remembered[INGRESS_CLAIM_KEY] = ingress_addresses
    ingress = compile_ingresses(state, resolver, ingress_addresses, settings.port, ingress_problem)

    gateway_addresses: dict[str, tuple[str, ...]] = {}
    gateway_problems: dict[str, str] = {}
    for gateway in served_gateways(state):
        if gateway.addresses:
            gateway_addresses[gateway.key] = gateway.addresses
            continue
        claim = gateway_claim_key(gateway.key)
        given = allocation.addresses.get(claim, ())
        if given:
            gateway_addresses[gateway.key] = given
            remembered[claim] = given
        else:
            gateway_problems[gateway.key] = allocation.messages.get(claim, "no address")
    gateways = compile_gateways(state, resolver, gateway_addresses, gateway_problems)

    listeners: dict[str, HttpListener] = {}
    ingress_views = ingress.views
    if ingress.table is not None:
        served = served_ingresses(state)[0]
        entries, tls_problems = ingress_certificates(state, served)
        tls = listener_tls(entries) if entries else None
        for address in ingress_addresses:
            listener = HttpListener(address, settings.port, "Ingress", ingress.table)
            listeners[listener.key] = listener
            if tls is not None:
                secure = HttpListener(address, settings.tls_port, "Ingress", ingress.table, tls)
                listeners[secure.key] = secure
        ingress_views = _with_tls(
            ingress.views, served, tls is not None, settings.tls_port, tls_problems
        )
    taken = {(lst.address, lst.port) for lst in listeners.values()}
    for (address, port), table in gateways.tables.items():
        if (address, port) in taken:
            continue  # the Ingress listener keeps its socket
        owner = f"Gateway {gateways.owners[(address, port)]}"
        listener = HttpListener(address, port, owner, table, gateways.tls.get((address, port)))
        listeners.setdefault(listener.key, listener)

    return RoutePlan(
        http_listeners=MappingProxyType(dict(sorted(listeners.items()))),
        http_backend_sets=MappingProxyType(dict(sorted(resolver.used.items()))),
        routes=RoutesView(
            ingresses=ingress_views,
            gateway_classes=gateways.classes,
            gateways=gateways.gateways,
            http_routes=gateways.routes,
        ),
        route_addresses=MappingProxyType(dict(sorted(remembered.items()))),
    )

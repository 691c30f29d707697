"""Route objects as the admin state shows them: Kubernetes-shaped status (pure data).

Computed by the route planners in the core; ``seaway.app`` turns them into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Condition:
    """A ``metav1.Condition`` without times: type, status, reason, message."""

    type: str
    status: bool
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class RouteParentStatus:
    """One entry of ``HTTPRoute.status.parents``."""

    parent: str  # "Gateway namespace/name" plus "/section" or ":port" when given
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class HTTPRouteView:
    key: str
    hostnames: tuple[str, ...]
    parents: tuple[RouteParentStatus, ...]


@dataclass(frozen=True, slots=True)
class GatewayListenerView:
    name: str
    port: int
    protocol: str
    hostname: str | None
    attached_routes: int
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class GatewayView:
    key: str
    gateway_class: str
    addresses: tuple[str, ...]
    conditions: tuple[Condition, ...]
    listeners: tuple[GatewayListenerView, ...]


@dataclass(frozen=True, slots=True)
class GatewayClassView:
    name: str
    controller: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class IngressView:
    """An Ingress: whether seaway serves it, where, and what is wrong with it."""

    key: str
    ingress_class: str | None
    served: bool
    addresses: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    ports: tuple[int, ...]  # status.loadBalancer.ingress[].ports[].port
    message: str = ""


@dataclass(frozen=True, slots=True)
class RoutesView:
    """Every route object's status, sorted by key."""

    ingresses: tuple[IngressView, ...] = ()
    gateway_classes: tuple[GatewayClassView, ...] = ()
    gateways: tuple[GatewayView, ...] = ()
    http_routes: tuple[HTTPRouteView, ...] = ()

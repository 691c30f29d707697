"""The L7 part of the admin state: route objects with Kubernetes-shaped status, and
HTTP listeners with their counters (plain JSON-ready data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seaway.core.config import DesiredConfig
from seaway.core.route_views import Condition
from seaway.dataplane.base import Counters


def _conditions(conditions: tuple[Condition, ...]) -> list[dict[str, str]]:
    return [
        {
            "type": c.type,
            "status": "True" if c.status else "False",
            "reason": c.reason,
            "message": c.message,
        }
        for c in conditions
    ]


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def routes_snapshot(
    config: DesiredConfig, counters: Counters, errors: Mapping[str, str]
) -> dict[str, Any]:
    """``ingresses``, ``gatewayClasses``, ``gateways``, ``httpRoutes``, ``httpListeners``."""
    routes = config.routes
    ingresses = []
    for view in routes.ingresses:
        namespace, name = _split(view.key)
        ingress_status = [
            {"ip": ip, "ports": [{"port": port, "protocol": "TCP"} for port in view.ports]}
            for ip in view.addresses
        ]
        ingresses.append(
            {
                "namespace": namespace,
                "name": name,
                "ingressClassName": view.ingress_class,
                "served": view.served,
                "message": view.message,
                "status": {"loadBalancer": {"ingress": ingress_status}},
            }
        )
    gateways = []
    for gateway in routes.gateways:
        namespace, name = _split(gateway.key)
        gateways.append(
            {
                "namespace": namespace,
                "name": name,
                "gatewayClassName": gateway.gateway_class,
                "status": {
                    "addresses": [{"type": "IPAddress", "value": a} for a in gateway.addresses],
                    "conditions": _conditions(gateway.conditions),
                    "listeners": [
                        {
                            "name": listener.name,
                            "port": listener.port,
                            "protocol": listener.protocol,
                            "hostname": listener.hostname,
                            "attachedRoutes": listener.attached_routes,
                            "conditions": _conditions(listener.conditions),
                        }
                        for listener in gateway.listeners
                    ],
                },
            }
        )
    http_routes = []
    for route in routes.http_routes:
        namespace, name = _split(route.key)
        http_routes.append(
            {
                "namespace": namespace,
                "name": name,
                "hostnames": list(route.hostnames),
                "status": {
                    "parents": [
                        {
                            "parentRef": parent.parent,
                            "controllerName": "seaway.io/gateway-controller",
                            "conditions": _conditions(parent.conditions),
                        }
                        for parent in route.parents
                    ]
                },
            }
        )
    listeners = []
    for key, listener in config.http_listeners.items():
        lc = counters.listeners.get(key)
        listeners.append(
            {
                "key": key,
                "address": listener.address,
                "port": listener.port,
                "owner": listener.owner,
                "tls": listener.tls is not None,
                "routes": len(listener.routes.actions),
                "active": lc.active if lc else 0,
                "total": lc.total if lc else 0,
                "rejected": lc.rejected if lc else 0,
                "error": errors.get(key, ""),
            }
        )
    return {
        "ingresses": ingresses,
        "gatewayClasses": [
            {
                "name": c.name,
                "controllerName": c.controller,
                "conditions": _conditions(c.conditions),
            }
            for c in routes.gateway_classes
        ],
        "gateways": gateways,
        "httpRoutes": http_routes,
        "httpListeners": listeners,
    }

"""Ingress (``networking.k8s.io/v1``) compiled into one route table (pure).

Which Ingresses seaway serves: those whose ``ingressClassName`` names an IngressClass
with ``spec.controller: seaway.io/ingress-controller``; those naming no class when
such a class carries ``ingressclass.kubernetes.io/is-default-class: "true"`` or when
``SeawayConfig.spec.ingress.serveWithoutClass`` is true. All of them share one
listener (``spec.ingress.address`` / ``port``).

Matching follows the Kubernetes Ingress documentation: hosts exact, or ``*.`` covering
exactly one label; paths ``Exact``, ``Prefix`` (element-wise, trailing ``/`` ignored)
and ``ImplementationSpecific`` (seaway treats it as ``Prefix``); the longest matching
path wins, and ``Exact`` wins over ``Prefix`` of the same length. Rules of several
Ingresses for one host are merged; on a complete tie the oldest Ingress (then the
first by namespace/name) wins. When the request's host has rules but no path matches,
or no rule covers the host, the ``defaultBackend`` answers (the oldest Ingress's, when
several define one), else 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from seaway.core.route_backends import BackendResolver
from seaway.core.route_views import IngressView
from seaway.core.routes import (
    CompiledMatch,
    HostRoutes,
    RouteAction,
    RouteBackend,
    RouteTable,
    prefix_value,
)
from seaway.model.cluster import ClusterState
from seaway.model.routes import INGRESS_CONTROLLER, Ingress, IngressBackend

# The annotation that named an Ingress's class before spec.ingressClassName existed;
# still read by ingress-nginx and others when the field is absent.
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
# Status for requests whose Ingress backend does not resolve (no such Service or
# port): the backend is unavailable, as ingress-nginx answers.
UNRESOLVED_STATUS = 503


def age_key(created: str | None, key: str) -> tuple[bool, str, str]:
    """Sort key: oldest creationTimestamp first (absent last), then namespace/name."""
    return (created is None, created or "", key)


def served_ingresses(state: ClusterState) -> tuple[list[Ingress], dict[str, str]]:
    """The Ingresses seaway serves (oldest first), and why each other one is not."""
    ours = {
        name for name, cls in state.ingress_classes.items() if cls.controller == INGRESS_CONTROLLER
    }
    default = state.settings.ingress.serve_without_class or any(
        state.ingress_classes[name].is_default for name in ours
    )
    served: list[Ingress] = []
    skipped: dict[str, str] = {}
    for key in sorted(state.ingresses):
        ingress = state.ingresses[key]
        name = ingress.ingress_class_name or ingress.meta.annotations.get(LEGACY_CLASS_ANNOTATION)
        if name is None:
            if default:
                served.append(ingress)
            else:
                skipped[key] = (
                    "no ingressClassName, and no IngressClass of seaway is the default "
                    "(ingressclass.kubernetes.io/is-default-class) nor is "
                    "spec.ingress.serveWithoutClass set"
                )
        elif name in ours:
            served.append(ingress)
        elif name in state.ingress_classes:
            controller = state.ingress_classes[name].controller
            skipped[key] = f"IngressClass {name} belongs to {controller}"
        else:
            skipped[key] = f"IngressClass {name} not found"
    served.sort(key=lambda i: age_key(i.meta.creation_timestamp, i.key))
    return served, skipped


@dataclass(frozen=True, slots=True)
class IngressPlan:
    table: RouteTable | None
    views: tuple[IngressView, ...]


def compile_ingresses(
    state: ClusterState,
    resolver: BackendResolver,
    addresses: tuple[str, ...],
    port: int,
    address_problem: str = "",
) -> IngressPlan:
    """The route table of every served Ingress (None when none is), and their views."""
    served, skipped = served_ingresses(state)
    actions: list[RouteAction] = []
    groups: dict[str | None, list[tuple[tuple[object, ...], CompiledMatch]]] = {}
    problems: dict[str, list[str]] = {}
    fallback: int | None = None
    fallback_owner = ""

    def action_for(ingress: Ingress, backend: IngressBackend, what: str) -> int:
        set_key, why = resolver.resolve(
            ingress.meta.namespace, backend.service, backend.port_number, backend.port_name
        )
        if why:
            problems.setdefault(ingress.key, []).append(f"{what}: {why}")
        actions.append(
            RouteAction(
                route=f"Ingress {ingress.key} {what}",
                backends=(RouteBackend(set_key, 1, UNRESOLVED_STATUS, why),),
            )
        )
        return len(actions) - 1

    for order, ingress in enumerate(served):
        if ingress.default_backend is not None:
            if fallback is None:
                fallback = action_for(ingress, ingress.default_backend, "defaultBackend")
                fallback_owner = ingress.key
            else:
                problems.setdefault(ingress.key, []).append(
                    f"defaultBackend not used: Ingress {fallback_owner}'s is (older)"
                )
        for rule_index, rule in enumerate(ingress.rules):
            for path_index, item in enumerate(rule.paths):
                exact = item.path_type == "Exact"
                value = item.path if exact else prefix_value(item.path)
                index = action_for(ingress, item.backend, f"{rule.host or '*'}{item.path}")
                match = CompiledMatch(
                    path_type="Exact" if exact else "Prefix", path=value, action=index
                )
                # Longest path first; Exact before Prefix of equal length; then the
                # older Ingress, then rule and path order.
                rank = (-len(value), 0 if exact else 1, order, rule_index, path_index)
                groups.setdefault(rule.host, []).append((rank, match))

    def host_routes(entries: Sequence[tuple[tuple[object, ...], CompiledMatch]]) -> HostRoutes:
        ordered = sorted(entries, key=lambda e: e[0])
        return HostRoutes(tuple(m for _, m in ordered))

    exact_hosts = {
        host: host_routes(entries)
        for host, entries in sorted(groups.items(), key=lambda kv: kv[0] or "")
        if host is not None and not host.startswith("*.")
    }
    wildcards = sorted(
        (
            (host[1:], host_routes(entries))
            for host, entries in groups.items()
            if host is not None and host.startswith("*.")
        ),
        key=lambda w: (-len(w[0]), w[0]),
    )
    table = None
    if served:
        table = RouteTable(
            actions=tuple(actions),
            exact_hosts=MappingProxyType(exact_hosts),
            wildcards=tuple(wildcards),
            any_host=host_routes(groups[None]) if None in groups else None,
            fallback=fallback,
            single_label_wildcards=True,
        )

    views: list[IngressView] = []
    served_keys = {i.key for i in served}
    for key in sorted(state.ingresses):
        ingress = state.ingresses[key]
        if key in served_keys:
            message = "; ".join(problems.get(key, []))
            if address_problem:
                message = "; ".join(m for m in (f"no address: {address_problem}", message) if m)
            views.append(
                IngressView(
                    key=key,
                    ingress_class=ingress.ingress_class_name,
                    served=True,
                    addresses=addresses,
                    ports=(port,) if addresses else (),
                    message=message,
                )
            )
        else:
            views.append(
                IngressView(
                    key=key,
                    ingress_class=ingress.ingress_class_name,
                    served=False,
                    addresses=(),
                    ports=(),
                    message=f"not served: {skipped.get(key, '')}",
                )
            )
    return IngressPlan(table=table, views=tuple(views))

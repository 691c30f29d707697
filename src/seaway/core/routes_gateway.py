"""Gateway API (``gateway.networking.k8s.io/v1``) compiled into route tables (pure).

seaway serves the Gateways whose GatewayClass has ``controllerName:
seaway.io/gateway-controller``; each listens on its addresses (``spec.addresses`` of
type IPAddress, else one from the pool) and its HTTP listeners' ports. An HTTPRoute
attaches to a Gateway through ``parentRefs`` (``sectionName`` and ``port`` narrow the
listeners), where the listener's ``allowedRoutes`` admit its namespace and kind and
its hostnames intersect the listener's. A listener's namespace selector holds
``matchLabels`` and ``matchExpressions`` (``seaway.model.label_selectors``). A
backendRef to a Service of another namespace is followed only when a ReferenceGrant
there allows it (``seaway.core.reference_grants``). A backendRef's header filters are
composed after the rule's into the edits its ``RouteBackend`` carries.

Precedence among the rules of every route attached to one listener, per the
specification (HTTPRouteRule): the most specific hostname first (see
``seaway.core.routes``), then an Exact path, then the longest PathPrefix, then a
method match, then the most header matches, then the most query parameter matches;
ties go to the oldest route (creationTimestamp), then the first by namespace/name,
then the first rule and match in list order. RegularExpression paths, whose
precedence the specification leaves to implementations, come after Exact paths and
before PathPrefix ones, the longest pattern first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from seaway.core.reference_grants import Reference, ReferenceGrants, refusal
from seaway.core.route_backends import BackendResolver
from seaway.core.route_tls import gateway_listener_certificates
from seaway.core.route_views import (
    Condition,
    GatewayClassView,
    GatewayListenerView,
    GatewayView,
    HTTPRouteView,
    RouteParentStatus,
)
from seaway.core.routes import (
    CompiledMatch,
    HeaderEdit,
    HostRoutes,
    PathEdit,
    Redirect,
    Rewrite,
    RouteAction,
    RouteBackend,
    RouteTable,
    ValueCondition,
    compose_edits,
    prefix_value,
)
from seaway.core.routes_ingress import age_key
from seaway.core.tls import ListenerTls, TlsCertificate, listener_tls
from seaway.model.cluster import ClusterState
from seaway.model.routes import (
    GATEWAY_CONTROLLER,
    GATEWAY_GROUP,
    NAMESPACE_NAME_LABEL,
    Gateway,
    GatewayListener,
    HeaderModifier,
    HTTPRoute,
    HTTPRouteRule,
    ParentRef,
    PathModifier,
    RouteFilter,
    ValueMatch,
)

# Listener protocols the HTTP data plane serves (HTTPS: TLS terminated by seaway).
SERVED_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
# backendRefs seaway resolves: core Services.
SERVICE_GROUPS = frozenset({"", "core"})

Socket = tuple[str, int]  # (address, port)


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    """Route tables per listening socket, their owners, and every object's status."""

    tables: Mapping[Socket, RouteTable]
    owners: Mapping[Socket, str]  # socket -> "namespace/name" of its Gateway
    classes: tuple[GatewayClassView, ...]
    gateways: tuple[GatewayView, ...]
    routes: tuple[HTTPRouteView, ...]
    # HTTPS sockets: their certificates (SNI name or "" for the default, certificate).
    tls: Mapping[Socket, ListenerTls] = field(default_factory=lambda: MappingProxyType({}))


def seaway_gateway_classes(state: ClusterState) -> set[str]:
    return {
        name
        for name, cls in state.gateway_classes.items()
        if cls.controller_name == GATEWAY_CONTROLLER
    }


def served_gateways(state: ClusterState) -> list[Gateway]:
    """The Gateways of seaway's GatewayClasses, by key."""
    ours = seaway_gateway_classes(state)
    return [
        state.gateways[k]
        for k in sorted(state.gateways)
        if state.gateways[k].gateway_class_name in ours
    ]


def covers(wildcard: str, name: str) -> bool:
    """Whether ``*.suffix`` covers ``name`` (one or more labels, Gateway API hostnames)."""
    return wildcard.startswith("*.") and name.endswith(wildcard[1:]) and name != wildcard


def intersect_hostnames(listener: str | None, route: tuple[str, ...]) -> list[str | None]:
    """The hostnames a route serves on a listener (None: any host); [] when disjoint."""
    if not route:
        return [listener]
    if listener is None:
        return list(route)
    result: list[str | None] = []
    for name in route:
        if name == listener or covers(listener, name):
            chosen = name
        elif covers(name, listener):
            chosen = listener
        else:
            continue
        if chosen not in result:
            result.append(chosen)
    return result


@dataclass(slots=True)
class _Builder:
    """One socket's table under construction."""

    actions: list[RouteAction] = field(default_factory=list)
    groups: dict[str | None, list[tuple[tuple[object, ...], CompiledMatch]]] = field(
        default_factory=dict
    )
    seen: dict[tuple[str, int], int] = field(default_factory=dict)  # (route, rule) -> action

    def build(self) -> RouteTable:
        def routes(entries: list[tuple[tuple[object, ...], CompiledMatch]]) -> HostRoutes:
            ordered = sorted(entries, key=lambda e: e[0])
            # The same rule attached through two listeners of one port appears twice.
            unique: list[CompiledMatch] = []
            for _, m in ordered:
                if m not in unique:
                    unique.append(m)
            return HostRoutes(tuple(unique))

        exact = {
            h: routes(e)
            for h, e in sorted(self.groups.items(), key=lambda kv: kv[0] or "")
            if h is not None and not h.startswith("*.")
        }
        wildcards = sorted(
            (
                (h[1:], routes(e))
                for h, e in self.groups.items()
                if h is not None and h.startswith("*.")
            ),
            key=lambda w: (-len(w[0]), w[0]),
        )
        return RouteTable(
            actions=tuple(self.actions),
            exact_hosts=MappingProxyType(exact),
            wildcards=tuple(wildcards),
            any_host=routes(self.groups[None]) if None in self.groups else None,
            single_label_wildcards=False,
        )


def _namespace_labels(state: ClusterState, namespace: str) -> Mapping[str, str]:
    ns = state.namespaces.get(namespace)
    labels = dict(ns.meta.labels) if ns is not None else {}
    labels.setdefault(NAMESPACE_NAME_LABEL, namespace)
    return labels


def _allows(state: ClusterState, gateway: Gateway, listener: GatewayListener, ns: str) -> bool:
    if listener.allowed_kinds and "HTTPRoute" not in listener.allowed_kinds:
        return False
    if listener.allowed_from == "All":
        return True
    if listener.allowed_from == "Same":
        return ns == gateway.meta.namespace
    return listener.selector.matches(_namespace_labels(state, ns))


def _parent_text(ref: ParentRef, namespace: str) -> str:
    text = f"Gateway {namespace}/{ref.name}"
    if ref.section_name:
        text += f"/{ref.section_name}"
    if ref.port is not None:
        text += f":{ref.port}"
    return text


def _edit(modifier: HeaderModifier | None) -> HeaderEdit | None:
    if modifier is None:
        return None
    return HeaderEdit(
        set=modifier.set, add=modifier.add, remove=tuple(n.lower() for n in modifier.remove)
    )


def _header_edits(
    filters: tuple[RouteFilter, ...],
) -> tuple[HeaderEdit | None, HeaderEdit | None]:
    """The request and response header edits among ``filters`` (a rule's or a
    backendRef's; each modifier appears at most once)."""
    request = response = None
    for f in filters:
        if f.request_header_modifier is not None:
            request = _edit(f.request_header_modifier)
        if f.response_header_modifier is not None:
            response = _edit(f.response_header_modifier)
    return request, response


def _path_edit(modifier: PathModifier | None) -> PathEdit | None:
    return PathEdit(modifier.type, modifier.value) if modifier is not None else None


def _conditions(values: tuple[ValueMatch, ...], *, lower: bool) -> tuple[ValueCondition, ...]:
    seen: set[str] = set()
    result = []
    for v in values:
        name = v.name.lower() if lower else v.name
        if name in seen:
            continue  # "only the first entry with an equivalent name MUST be considered"
        seen.add(name)
        regex = re.compile(v.value) if v.type == "RegularExpression" else None
        result.append(ValueCondition(name, v.value, regex))
    return tuple(result)


def _rule_action(
    route: HTTPRoute,
    index: int,
    rule: HTTPRouteRule,
    resolver: BackendResolver,
    grants: ReferenceGrants,
) -> tuple[RouteAction, list[tuple[str, str]]]:
    """The action of one rule, and its unresolved references as (reason, message)."""
    problems: list[tuple[str, str]] = []
    request_headers, response_headers = _header_edits(rule.filters)
    redirect = rewrite = None
    for f in rule.filters:
        if f.request_redirect is not None:
            r = f.request_redirect
            redirect = Redirect(r.scheme, r.hostname, r.port, _path_edit(r.path), r.status_code)
        if f.url_rewrite is not None:
            u = f.url_rewrite
            rewrite = Rewrite(u.hostname, _path_edit(u.path))
    backends: list[RouteBackend] = []
    for ref in rule.backend_refs:
        namespace = ref.namespace or route.meta.namespace
        what = f"backendRef {namespace}/{ref.name}"
        reference = Reference(
            GATEWAY_GROUP, "HTTPRoute", route.meta.namespace, "", "Service", namespace, ref.name
        )
        if ref.group not in SERVICE_GROUPS or ref.kind != "Service":
            why = f"{what}: kind {ref.group or 'core'}/{ref.kind} is not supported (Service)"
            problems.append(("InvalidKind", why))
        elif not grants.permits(reference):
            why = f"{what}: {refusal(reference)}"
            problems.append(("RefNotPermitted", why))
        elif ref.port is None:
            why = f"{what}: port is required for a Service"
            problems.append(("UnsupportedValue", why))
        else:
            set_key, why = resolver.resolve(namespace, ref.name, ref.port, None)
            if why:
                problems.append(("BackendNotFound", f"{what}: {why}"))
            elif ref.weight > 0:
                # The backendRef's filters run after the rule's (HTTPBackendRef.filters).
                ref_request, ref_response = _header_edits(ref.filters)
                backends.append(
                    RouteBackend(
                        set_key,
                        ref.weight,
                        request_headers=compose_edits(request_headers, ref_request),
                        response_headers=compose_edits(response_headers, ref_response),
                    )
                )
                continue
        if why and ref.weight > 0:
            backends.append(RouteBackend("", ref.weight, 500, why))
    action = RouteAction(
        route=f"HTTPRoute {route.key} rule {index}",
        backends=tuple(backends),
        request_headers=request_headers,
        response_headers=response_headers,
        redirect=redirect,
        rewrite=rewrite,
        status=500,
    )
    return action, problems


def _matches(
    route: HTTPRoute, order: tuple[bool, str, str], index: int, rule: HTTPRouteRule, action: int
) -> list[tuple[tuple[object, ...], CompiledMatch]]:
    result: list[tuple[tuple[object, ...], CompiledMatch]] = []
    for match_index, m in enumerate(rule.matches):
        value = m.path.value
        if m.path.type == "Exact":
            compiled = CompiledMatch("Exact", value, action)
            path_rank: tuple[int, int] = (0, -len(value))
        elif m.path.type == "RegularExpression":
            compiled = CompiledMatch("RegularExpression", value, action, re.compile(value))
            path_rank = (1, -len(value))
        else:
            compiled = CompiledMatch("Prefix", prefix_value(value), action)
            path_rank = (2, -len(value))
        compiled = CompiledMatch(
            compiled.path_type,
            compiled.path,
            action,
            compiled.path_regex,
            m.method,
            _conditions(m.headers, lower=True),
            _conditions(m.query_params, lower=False),
        )
        rank = (
            *path_rank,
            m.method is None,
            -len(compiled.headers),
            -len(compiled.query),
            *order,
            index,
            match_index,
        )
        result.append((rank, compiled))
    return result


def compile_gateways(
    state: ClusterState,
    resolver: BackendResolver,
    addresses: Mapping[str, tuple[str, ...]],
    address_problems: Mapping[str, str],
) -> GatewayPlan:
    """Tables, owners and status of every Gateway of seaway's classes and their routes.

    ``addresses`` maps a Gateway key to its addresses (given or allocated);
    ``address_problems`` says why one got none.
    """
    ours = seaway_gateway_classes(state)
    gateways = served_gateways(state)
    grants = ReferenceGrants.of(state)
    builders: dict[Socket, _Builder] = {}
    owners: dict[Socket, str] = {}
    attached: dict[tuple[str, str], int] = {}
    listener_problems: dict[tuple[str, str], tuple[str, str]] = {}
    socket_problems: dict[str, list[str]] = {}
    socket_tls: dict[Socket, list[tuple[str, TlsCertificate]]] = {}

    for gateway in gateways:
        seen_hosts: dict[tuple[int, str | None], str] = {}
        for listener in gateway.listeners:
            if listener.protocol not in SERVED_PROTOCOLS:
                listener_problems[(gateway.key, listener.name)] = (
                    "UnsupportedProtocol",
                    f"protocol {listener.protocol} is not served (HTTP and HTTPS only)",
                )
                continue
            certificates: list[tuple[str, TlsCertificate]] = []
            if listener.protocol == "HTTPS":
                certificates, tls_problem = gateway_listener_certificates(
                    state, gateway, listener, grants
                )
                if tls_problem is not None:
                    listener_problems[(gateway.key, listener.name)] = tls_problem
                    continue
            other = next(
                (
                    o
                    for o in gateway.listeners
                    if o.port == listener.port
                    and o.protocol != listener.protocol
                    and o.protocol in SERVED_PROTOCOLS
                ),
                None,
            )
            if other is not None:
                listener_problems[(gateway.key, listener.name)] = (
                    "ProtocolConflict",
                    f"listener {other.name} uses {other.protocol} on the same port",
                )
                continue
            host_key = (listener.port, listener.hostname)
            if host_key in seen_hosts:
                listener_problems[(gateway.key, listener.name)] = (
                    "HostnameConflict",
                    f"listener {seen_hosts[host_key]} has the same port and hostname",
                )
                continue
            seen_hosts[host_key] = listener.name
            for address in addresses.get(gateway.key, ()):
                socket = (address, listener.port)
                owner = owners.setdefault(socket, gateway.key)
                if owner != gateway.key:
                    socket_problems.setdefault(gateway.key, []).append(
                        f"{address}:{listener.port} is already served for Gateway {owner}"
                    )
                    continue
                builders.setdefault(socket, _Builder())
                if listener.protocol == "HTTPS":
                    socket_tls.setdefault(socket, []).extend(certificates)

    route_views: list[HTTPRouteView] = []
    by_key = {g.key: g for g in gateways}
    for route_key in sorted(state.http_routes):
        route = state.http_routes[route_key]
        order = age_key(route.meta.creation_timestamp, route.key)
        compiled = [
            _rule_action(route, i, rule, resolver, grants) for i, rule in enumerate(route.rules)
        ]
        problems = [p for _, rule_problems in compiled for p in rule_problems]
        resolved = (
            Condition("ResolvedRefs", False, problems[0][0], "; ".join(m for _, m in problems))
            if problems
            else Condition("ResolvedRefs", True, "ResolvedRefs")
        )
        parents: list[RouteParentStatus] = []
        for ref in route.parent_refs:
            if ref.kind != "Gateway" or ref.group != GATEWAY_GROUP:
                continue  # another kind of parent: not seaway's to answer for
            namespace = ref.namespace or route.meta.namespace
            gateway_key = f"{namespace}/{ref.name}"
            text = _parent_text(ref, namespace)
            existing = state.gateways.get(gateway_key)
            if existing is not None and existing.gateway_class_name not in ours:
                continue  # another controller's Gateway
            parent = by_key.get(gateway_key)
            if parent is None:
                accepted = Condition(
                    "Accepted", False, "NoMatchingParent", f"Gateway {gateway_key} not found"
                )
                parents.append(RouteParentStatus(text, (accepted, resolved)))
                continue
            accepted, listeners = _attach(state, parent, ref, route, listener_problems)
            parents.append(RouteParentStatus(text, (accepted, resolved)))
            for listener, hostnames in listeners:
                attached[(parent.key, listener.name)] = (
                    attached.get((parent.key, listener.name), 0) + 1
                )
                for address in addresses.get(parent.key, ()):
                    socket = (address, listener.port)
                    builder = builders.get(socket)
                    if builder is None or owners.get(socket) != parent.key:
                        continue
                    for i, rule in enumerate(route.rules):
                        action_index = builder.seen.get((route.key, i))
                        if action_index is None:
                            builder.actions.append(compiled[i][0])
                            action_index = builder.seen[(route.key, i)] = len(builder.actions) - 1
                        for host in hostnames:
                            builder.groups.setdefault(host, []).extend(
                                _matches(route, order, i, rule, action_index)
                            )
        route_views.append(HTTPRouteView(route.key, route.hostnames, tuple(parents)))

    gateway_views = [
        _gateway_view(
            g,
            addresses=addresses.get(g.key, ()),
            address_problem=address_problems.get(g.key, ""),
            socket_problems=socket_problems.get(g.key, []),
            listener_problems=listener_problems,
            attached=attached,
        )
        for g in gateways
    ]
    class_views = [
        GatewayClassView(
            name,
            state.gateway_classes[name].controller_name,
            (Condition("Accepted", True, "Accepted"),),
        )
        for name in sorted(ours)
    ]
    return GatewayPlan(
        tables=MappingProxyType({s: b.build() for s, b in sorted(builders.items())}),
        owners=MappingProxyType(dict(sorted(owners.items()))),
        classes=tuple(class_views),
        gateways=tuple(gateway_views),
        routes=tuple(route_views),
        tls=MappingProxyType(
            {s: listener_tls(entries) for s, entries in sorted(socket_tls.items())}
        ),
    )


def _attach(
    state: ClusterState,
    gateway: Gateway,
    ref: ParentRef,
    route: HTTPRoute,
    listener_problems: Mapping[tuple[str, str], tuple[str, str]],
) -> tuple[Condition, list[tuple[GatewayListener, list[str | None]]]]:
    """Whether the route is accepted by ``gateway``, and on which listeners for which hosts."""
    candidates = [
        listener
        for listener in gateway.listeners
        if (ref.section_name is None or listener.name == ref.section_name)
        and (ref.port is None or listener.port == ref.port)
    ]
    if not candidates:
        return (
            Condition("Accepted", False, "NoMatchingParent", "no listener matches the parentRef"),
            [],
        )
    allowed = [
        listener
        for listener in candidates
        if (gateway.key, listener.name) not in listener_problems
        and _allows(state, gateway, listener, route.meta.namespace)
    ]
    if not allowed:
        return (
            Condition(
                "Accepted",
                False,
                "NotAllowedByListeners",
                "no HTTP listener admits routes of this namespace and kind",
            ),
            [],
        )
    result = []
    for listener in allowed:
        hostnames = intersect_hostnames(listener.hostname, route.hostnames)
        if hostnames:
            result.append((listener, hostnames))
    if not result:
        return (
            Condition(
                "Accepted",
                False,
                "NoMatchingListenerHostname",
                "no hostname of the route intersects a listener's hostname",
            ),
            [],
        )
    return Condition("Accepted", True, "Accepted"), result


def _gateway_view(
    gateway: Gateway,
    *,
    addresses: tuple[str, ...],
    address_problem: str,
    socket_problems: list[str],
    listener_problems: Mapping[tuple[str, str], tuple[str, str]],
    attached: Mapping[tuple[str, str], int],
) -> GatewayView:
    listeners = []
    for listener in gateway.listeners:
        problem = listener_problems.get((gateway.key, listener.name))
        conditions: tuple[Condition, ...]
        if problem is not None:
            reason, message = problem
            conditions = (
                Condition("Accepted", False, reason, message),
                Condition("Programmed", False, "Invalid", message),
            )
        else:
            conditions = (
                Condition("Accepted", True, "Accepted"),
                Condition("Programmed", bool(addresses), "Programmed" if addresses else "Pending"),
                Condition("ResolvedRefs", True, "ResolvedRefs"),
            )
        listeners.append(
            GatewayListenerView(
                listener.name,
                listener.port,
                listener.protocol,
                listener.hostname,
                attached.get((gateway.key, listener.name), 0),
                conditions,
            )
        )
    if addresses:
        programmed = Condition(
            "Programmed",
            not socket_problems,
            "Programmed" if not socket_problems else "Invalid",
            "; ".join(socket_problems),
        )
    else:
        programmed = Condition("Programmed", False, "AddressNotAssigned", address_problem)
    return GatewayView(
        key=gateway.key,
        gateway_class=gateway.gateway_class_name,
        addresses=addresses,
        conditions=(Condition("Accepted", True, "Accepted"), programmed),
        listeners=tuple(listeners),
    )

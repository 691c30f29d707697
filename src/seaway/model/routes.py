"""Typed, immutable route objects: Ingress and IngressClass (``networking.k8s.io/v1``),
GatewayClass, Gateway, HTTPRoute and ReferenceGrant (``gateway.networking.k8s.io/v1``),
and Namespace.

Parsed by ``seaway.model.parse_routes``; compiled into lookup tables by
``seaway.core.routes_ingress`` and ``seaway.core.routes_gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seaway.model.label_selectors import LabelSelector
from seaway.model.objects import ObjectMeta

IngressPathType = Literal["Exact", "Prefix", "ImplementationSpecific"]
PathMatchType = Literal["Exact", "PathPrefix", "RegularExpression"]
ValueMatchType = Literal["Exact", "RegularExpression"]
FromNamespaces = Literal["Same", "All", "Selector"]
PathModifierType = Literal["ReplaceFullPath", "ReplacePrefixMatch"]
FilterType = Literal[
    "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"
]

# The controllers seaway implements (IngressClass.spec.controller and
# GatewayClass.spec.controllerName).
INGRESS_CONTROLLER = "seaway.io/ingress-controller"
GATEWAY_CONTROLLER = "seaway.io/gateway-controller"
# The API group of Gateway API kinds (parentRefs default to it).
GATEWAY_GROUP = "gateway.networking.k8s.io"
# networking.k8s.io/v1 IngressClass annotation marking the cluster's default class.
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
# The label the API server puts on every Namespace (KEP-2161); used for Namespaces
# seaway was not given as objects.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Namespace:
    """A ``v1`` Namespace (cluster-scoped); only its labels matter (allowedRoutes)."""

    meta: ObjectMeta


# -- Ingress ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngressClass:
    """A ``networking.k8s.io/v1`` IngressClass (cluster-scoped)."""

    meta: ObjectMeta
    controller: str

    @property
    def is_default(self) -> bool:
        return self.meta.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


@dataclass(frozen=True, slots=True)
class IngressBackend:
    """``service.name`` and ``service.port.number`` or ``.name``."""

    service: str
    port_number: int | None = None
    port_name: str | None = None


@dataclass(frozen=True, slots=True)
class IngressPath:
    path: str
    path_type: IngressPathType
    backend: IngressBackend


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None
    paths: tuple[IngressPath, ...] = ()


@dataclass(frozen=True, slots=True)
class IngressTLS:
    """One entry of ``Ingress.spec.tls``: hosts served with the Secret's certificate.

    No hosts: the certificate is the listener's default (clients without SNI, or with a
    name no other certificate covers).
    """

    hosts: tuple[str, ...] = ()
    secret_name: str | None = None


@dataclass(frozen=True, slots=True)
class Ingress:
    """A ``networking.k8s.io/v1`` Ingress."""

    meta: ObjectMeta
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()

    @property
    def key(self) -> str:
        return self.meta.key


# -- Gateway API -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayClass:
    """A ``gateway.networking.k8s.io/v1`` GatewayClass (cluster-scoped)."""

    meta: ObjectMeta
    controller_name: str


@dataclass(frozen=True, slots=True)
class CertificateRef:
    """One entry of a Gateway listener's ``tls.certificateRefs`` (a Secret by default)."""

    name: str
    namespace: str | None = None
    group: str = ""
    kind: str = "Secret"


@dataclass(frozen=True, slots=True)
class GatewayListener:
    """One entry of ``Gateway.spec.listeners``."""

    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_from: FromNamespaces = "Same"
    # allowedRoutes.namespaces.selector (matchLabels and matchExpressions).
    selector: LabelSelector = field(default_factory=LabelSelector)
    # allowedRoutes.kinds (kind names; empty means the protocol's default: HTTPRoute).
    allowed_kinds: tuple[str, ...] = ()
    # tls.mode ("Terminate" or "Passthrough"; None without a tls section) and
    # tls.certificateRefs.
    tls_mode: str | None = None
    certificate_refs: tuple[CertificateRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Gateway:
    """A ``gateway.networking.k8s.io/v1`` Gateway."""

    meta: ObjectMeta
    gateway_class_name: str
    listeners: tuple[GatewayListener, ...] = ()
    # spec.addresses of type IPAddress, as given.
    addresses: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.meta.key


@dataclass(frozen=True, slots=True)
class ParentRef:
    name: str
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"


@dataclass(frozen=True, slots=True)
class PathMatch:
    type: PathMatchType = "PathPrefix"
    value: str = "/"


@dataclass(frozen=True, slots=True)
class ValueMatch:
    """A header or query parameter match."""

    name: str
    value: str
    type: ValueMatchType = "Exact"


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One entry of ``HTTPRouteRule.matches`` (every condition must hold)."""

    path: PathMatch = PathMatch()
    headers: tuple[ValueMatch, ...] = ()
    query_params: tuple[ValueMatch, ...] = ()
    method: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderModifier:
    """RequestHeaderModifier / ResponseHeaderModifier: set, add, remove."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathModifier:
    type: PathModifierType
    value: str


@dataclass(frozen=True, slots=True)
class RequestRedirect:
    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = None
    status_code: int = 302


@dataclass(frozen=True, slots=True)
class URLRewrite:
    hostname: str | None = None
    path: PathModifier | None = None


@dataclass(frozen=True, slots=True)
class RouteFilter:
    """One entry of ``HTTPRouteRule.filters`` or of a backendRef's ``filters``; the field
    named by ``type`` is set."""

    type: FilterType
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = None


@dataclass(frozen=True, slots=True)
class BackendRef:
    """One entry of ``HTTPRouteRule.backendRefs``.

    ``filters`` apply only to requests forwarded to this backendRef, after the rule's
    (Gateway API HTTPBackendRef.filters); seaway accepts the header modifiers there.
    """

    name: str
    namespace: str | None = None
    port: int | None = None
    weight: int = 1
    group: str = ""
    kind: str = "Service"
    filters: tuple[RouteFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class HTTPRouteRule:
    # An absent or empty matches list means one match: PathPrefix "/".
    matches: tuple[RouteMatch, ...] = (RouteMatch(),)
    filters: tuple[RouteFilter, ...] = ()
    backend_refs: tuple[BackendRef, ...] = ()


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    """A ``gateway.networking.k8s.io/v1`` HTTPRoute."""

    meta: ObjectMeta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = ()

    @property
    def key(self) -> str:
        return self.meta.key


@dataclass(frozen=True, slots=True)
class GrantFrom:
    """One entry of ``ReferenceGrant.spec.from``: objects of a kind in a namespace."""

    group: str
    kind: str
    namespace: str


@dataclass(frozen=True, slots=True)
class GrantTo:
    """One entry of ``ReferenceGrant.spec.to``: objects of a kind in the grant's own
    namespace; ``name`` None means every object of that kind."""

    group: str
    kind: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    """A ``gateway.networking.k8s.io`` ReferenceGrant (read in v1 and v1beta1).

    It lets the objects described by ``grant_from`` refer to the objects of its own
    namespace described by ``grant_to``. Groups are stored with "core" read as "" (the
    core API group).
    """

    meta: ObjectMeta
    grant_from: tuple[GrantFrom, ...] = ()
    grant_to: tuple[GrantTo, ...] = ()

    @property
    def key(self) -> str:
        return self.meta.key

"""Parsers of the route kinds (Ingress, IngressClass, GatewayClass, Gateway, HTTPRoute,
Namespace), of label selectors, and of SeawayConfig's ``ingress`` and ``http`` sections.
(ReferenceGrant: ``seaway.model.parse_reference_grants``.)

Registered in ``seaway.model.parse``; like the other parsers they report every problem
with its field path and never coerce types.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from seaway.model.fields import (
    PORT_MAX,
    PORT_MIN,
    FieldReader,
    check_label,
    check_subdomain,
    item_cidr,
    item_string,
    join_path,
    mapping_item,
    parse_ip,
    port_name_ok,
)
from seaway.model.label_selectors import (
    OPERATORS_WITH_VALUES,
    SELECTOR_OPERATORS,
    LabelRequirement,
    LabelSelector,
)
from seaway.model.objects import HttpSettings, IngressSettings, ObjectMeta
from seaway.model.routes import (
    BackendRef,
    CertificateRef,
    FilterType,
    FromNamespaces,
    Gateway,
    GatewayClass,
    GatewayListener,
    HeaderModifier,
    HTTPRoute,
    HTTPRouteRule,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressPathType,
    IngressRule,
    IngressTLS,
    Namespace,
    ParentRef,
    PathMatch,
    PathMatchType,
    PathModifier,
    PathModifierType,
    RequestRedirect,
    RouteFilter,
    RouteMatch,
    URLRewrite,
    ValueMatch,
    ValueMatchType,
)

_INGRESS_PATH_TYPES: tuple[IngressPathType, ...] = ("Exact", "Prefix", "ImplementationSpecific")
_PATH_MATCH_TYPES: tuple[PathMatchType, ...] = ("Exact", "PathPrefix", "RegularExpression")
_VALUE_MATCH_TYPES: tuple[ValueMatchType, ...] = ("Exact", "RegularExpression")
_FROM: tuple[FromNamespaces, ...] = ("Same", "All", "Selector")
# Gateway API listener tls.mode values (GatewayTLSConfig).
_TLS_MODES = ("Terminate", "Passthrough")
_MODIFIER_TYPES: tuple[PathModifierType, ...] = ("ReplaceFullPath", "ReplacePrefixMatch")
_FILTER_TYPES: tuple[FilterType, ...] = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
)
# HTTPBackendRef.filters ("Support: Implementation-specific" in the Gateway API): seaway
# applies the header modifiers there. Redirects and rewrites are taken in the rule's
# filters only; RequestMirror and ExtensionRef nowhere.
_BACKEND_FILTER_TYPES: tuple[FilterType, ...] = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
)
# HTTPRoute methods (gateway.networking.k8s.io/v1 HTTPMethod enum).
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# RequestRedirect.statusCode: the Gateway API allows only these two.
_REDIRECT_CODES = (301, 302)
# Header names are tokens (RFC 9110 section 5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Gateway API weights: 0 to 1,000,000.
_WEIGHT_MAX = 1_000_000
# Label names and values (k8s.io/apimachinery/pkg/util/validation, qualified names):
# at most 63 characters, alphanumeric at both ends, '-', '_' and '.' inside.
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_NAME_MAX = 63


def _hostname(r: FieldReader, path: str, value: str) -> bool:
    """A DNS name, optionally with one leading ``*.`` label; never an IP address."""
    if parse_ip(value) is not None:
        r.error(path, f"{value!r} must be a DNS name, not an IP address")
        return False
    name = value[2:] if value.startswith("*.") else value
    return check_subdomain(r, path, name)


def _regex(r: FieldReader, path: str, value: str) -> bool:
    try:
        re.compile(value)
    except re.error as exc:
        r.error(path, f"{value!r} is not a valid regular expression: {exc}")
        return False
    return True


# -- label selectors -------------------------------------------------------------------


def _label_name_ok(name: str) -> bool:
    return len(name) <= LABEL_NAME_MAX and _LABEL_NAME.fullmatch(name) is not None


def _label_key(r: FieldReader, path: str, key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if (slash and not prefix) or not name or not _label_name_ok(name):
        r.error(
            path,
            f"{key!r} is not a label key ([prefix/]name; the name at most {LABEL_NAME_MAX} "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
        )
        return False
    return not prefix or check_subdomain(r, path, prefix)


@mapping_item
def _label_requirement(
    r: FieldReader, m: Mapping[str, object], path: str
) -> LabelRequirement | None:
    key = r.string(m, path, "key", required=True)
    operator = r.string(m, path, "operator", required=True)
    values: list[str] = []
    for item_path, item in r.list_of(m, path, "values", item_string):
        if item and not _label_name_ok(item):
            r.error(item_path, f"{item!r} is not a label value")
        values.append(item)
    # Judged on the list as written, so that a bad item is not also reported as missing.
    raw_values = m.get("values")
    has_values = isinstance(raw_values, list) and bool(raw_values)
    if key is not None and not _label_key(r, join_path(path, "key"), key):
        return None
    if operator is None:
        return None
    chosen = next((o for o in SELECTOR_OPERATORS if o == operator), None)
    if chosen is None:
        r.error(
            join_path(path, "operator"),
            f"must be one of {', '.join(SELECTOR_OPERATORS)}, got {operator!r}",
        )
        return None
    if chosen in OPERATORS_WITH_VALUES and not has_values:
        r.error(join_path(path, "values"), f"must not be empty when operator is {chosen}")
        return None
    if chosen not in OPERATORS_WITH_VALUES and has_values:
        r.error(join_path(path, "values"), f"must be empty when operator is {chosen}")
        return None
    if key is None:
        return None
    return LabelRequirement(key=key, operator=chosen, values=frozenset(values))


def parse_label_selector(r: FieldReader, m: Mapping[str, object], path: str) -> LabelSelector:
    """A ``metav1.LabelSelector``: ``matchLabels`` and ``matchExpressions``."""
    labels = r.string_map(m, path, "matchLabels")
    for key, value in labels.items():
        item_path = f"{join_path(path, 'matchLabels')}[{key}]"
        _label_key(r, item_path, key)
        if value and not _label_name_ok(value):
            r.error(item_path, f"{value!r} is not a label value")
    expressions = r.list_of(m, path, "matchExpressions", _label_requirement)
    return LabelSelector(match_labels=labels, match_expressions=tuple(e for _, e in expressions))


# -- Namespace, IngressClass, GatewayClass ---------------------------------------------


def parse_namespace(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Namespace:
    return Namespace(meta=meta)


def parse_ingress_class(
    r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta
) -> IngressClass:
    spec = r.mapping(doc, "", "spec", required=True) or {}
    controller = r.string(spec, "spec", "controller", required=True) or ""
    return IngressClass(meta=meta, controller=controller)


def parse_gateway_class(
    r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta
) -> GatewayClass:
    spec = r.mapping(doc, "", "spec", required=True) or {}
    controller = r.string(spec, "spec", "controllerName", required=True) or ""
    return GatewayClass(meta=meta, controller_name=controller)


# -- Ingress ---------------------------------------------------------------------------


def _ingress_backend(r: FieldReader, m: Mapping[str, object], path: str) -> IngressBackend | None:
    if m.get("resource") is not None:
        r.error(join_path(path, "resource"), "resource backends are not supported by seaway")
        return None
    service = r.mapping(m, path, "service", required=True)
    if service is None:
        return None
    here = join_path(path, "service")
    name = r.string(service, here, "name", required=True)
    port = r.mapping(service, here, "port", required=True)
    if name is None or port is None:
        return None
    port_path = join_path(here, "port")
    number = r.integer(port, port_path, "number", PORT_MIN, PORT_MAX)
    port_name = r.string(port, port_path, "name")
    if (number is None) == (port_name is None):
        r.error(port_path, "exactly one of number and name is required")
        return None
    if port_name is not None and not port_name_ok(port_name):
        r.error(join_path(port_path, "name"), f"{port_name!r} is not a valid port name")
        return None
    return IngressBackend(service=name, port_number=number, port_name=port_name)


@mapping_item
def _ingress_path(r: FieldReader, m: Mapping[str, object], path: str) -> IngressPath | None:
    if m.get("pathType") is None:
        r.error(
            join_path(path, "pathType"), "is required (Exact, Prefix or ImplementationSpecific)"
        )
    path_type = r.choice(m, path, "pathType", _INGRESS_PATH_TYPES, "Prefix")
    text = r.string(m, path, "path") or "/"
    if not text.startswith("/"):
        r.error(join_path(path, "path"), f"must be an absolute path (start with '/'), got {text!r}")
    backend_map = r.mapping(m, path, "backend", required=True)
    backend = (
        _ingress_backend(r, backend_map, join_path(path, "backend"))
        if backend_map is not None
        else None
    )
    if backend is None:
        return None
    return IngressPath(path=text, path_type=path_type, backend=backend)


@mapping_item
def _ingress_rule(r: FieldReader, m: Mapping[str, object], path: str) -> IngressRule | None:
    host = r.string(m, path, "host")
    if host is not None:
        _hostname(r, join_path(path, "host"), host)
    http = r.mapping(m, path, "http")
    paths: list[IngressPath] = []
    if http is not None:
        here = join_path(path, "http")
        paths = [p for _, p in r.list_of(http, here, "paths", _ingress_path, required=True)]
    return IngressRule(host=host or None, paths=tuple(paths))


def parse_ingress(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Ingress:
    spec = r.mapping(doc, "", "spec") or {}
    class_name = r.string(spec, "spec", "ingressClassName")
    default = None
    default_map = r.mapping(spec, "spec", "defaultBackend")
    if default_map is not None:
        default = _ingress_backend(r, default_map, "spec.defaultBackend")
    rules = [rule for _, rule in r.list_of(spec, "spec", "rules", _ingress_rule)]
    tls = [entry for _, entry in r.list_of(spec, "spec", "tls", _ingress_tls)]
    if default_map is None and not rules:
        r.error("spec", "an Ingress needs rules or a defaultBackend")
    return Ingress(
        meta=meta,
        ingress_class_name=class_name,
        default_backend=default,
        rules=tuple(rules),
        tls=tuple(tls),
    )


@mapping_item
def _ingress_tls(r: FieldReader, m: Mapping[str, object], path: str) -> IngressTLS | None:
    hosts = []
    for host_path, host in r.list_of(m, path, "hosts", item_string):
        if _hostname(r, host_path, host):
            hosts.append(host)
    secret = r.string(m, path, "secretName")
    if secret is not None:
        check_subdomain(r, join_path(path, "secretName"), secret)
    return IngressTLS(hosts=tuple(hosts), secret_name=secret)


# -- Gateway ---------------------------------------------------------------------------


@mapping_item
def _gateway_listener(r: FieldReader, m: Mapping[str, object], path: str) -> GatewayListener | None:
    name = r.string(m, path, "name", required=True)
    if name is not None:
        check_label(r, join_path(path, "name"), name)
    port = r.integer(m, path, "port", PORT_MIN, PORT_MAX, required=True)
    protocol = r.string(m, path, "protocol", required=True)
    hostname = r.string(m, path, "hostname")
    if hostname is not None:
        _hostname(r, join_path(path, "hostname"), hostname)
    allowed_from: FromNamespaces = "Same"
    selector = LabelSelector()
    kinds: list[str] = []
    allowed = r.mapping(m, path, "allowedRoutes")
    if allowed is not None:
        here = join_path(path, "allowedRoutes")
        namespaces = r.mapping(allowed, here, "namespaces")
        if namespaces is not None:
            ns_path = join_path(here, "namespaces")
            allowed_from = r.choice(namespaces, ns_path, "from", _FROM, "Same")
            sel = r.mapping(namespaces, ns_path, "selector")
            if sel is not None:
                selector = parse_label_selector(r, sel, join_path(ns_path, "selector"))
            if allowed_from == "Selector" and sel is None:
                r.error(join_path(ns_path, "selector"), "is required when from is Selector")
        for _, kind in r.list_of(allowed, here, "kinds", _route_kind):
            kinds.append(kind)
    tls_mode: str | None = None
    refs: list[CertificateRef] = []
    tls = r.mapping(m, path, "tls")
    if tls is not None:
        tls_path = join_path(path, "tls")
        tls_mode = r.choice(tls, tls_path, "mode", _TLS_MODES, "Terminate")
        refs = [ref for _, ref in r.list_of(tls, tls_path, "certificateRefs", _certificate_ref)]
        if tls_mode == "Terminate" and not refs and protocol == "HTTPS":
            r.error(join_path(tls_path, "certificateRefs"), "is required when mode is Terminate")
    elif protocol == "HTTPS":
        r.error(join_path(path, "tls"), "is required for an HTTPS listener")
    if name is None or port is None or protocol is None:
        return None
    return GatewayListener(
        name=name,
        port=port,
        protocol=protocol,
        hostname=hostname,
        allowed_from=allowed_from,
        selector=selector,
        allowed_kinds=tuple(kinds),
        tls_mode=tls_mode,
        certificate_refs=tuple(refs),
    )


@mapping_item
def _certificate_ref(r: FieldReader, m: Mapping[str, object], path: str) -> CertificateRef | None:
    name = r.string(m, path, "name", required=True)
    if name is None:
        return None
    return CertificateRef(
        name=name,
        namespace=r.string(m, path, "namespace"),
        group=r.string(m, path, "group") or "",
        kind=r.string(m, path, "kind") or "Secret",
    )


@mapping_item
def _route_kind(r: FieldReader, m: Mapping[str, object], path: str) -> str | None:
    return r.string(m, path, "kind", required=True)


@mapping_item
def _gateway_address(r: FieldReader, m: Mapping[str, object], path: str) -> str | None:
    kind = r.string(m, path, "type") or "IPAddress"
    text = r.string(m, path, "value", required=True)
    if kind != "IPAddress":
        r.error(join_path(path, "type"), f"only IPAddress addresses are supported, got {kind!r}")
        return None
    if text is None:
        return None
    address = parse_ip(text)
    if address is None:
        r.error(join_path(path, "value"), f"{text!r} is not a valid IP address")
        return None
    return str(address)


def parse_gateway(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Gateway:
    spec = r.mapping(doc, "", "spec", required=True) or {}
    class_name = r.string(spec, "spec", "gatewayClassName", required=True) or ""
    listeners = r.list_of(spec, "spec", "listeners", _gateway_listener, required=True)
    names: dict[str, str] = {}
    for path, listener in listeners:
        if listener.name in names:
            r.error(join_path(path, "name"), f"duplicate listener name {listener.name!r}")
        names.setdefault(listener.name, path)
    addresses = r.list_of(spec, "spec", "addresses", _gateway_address)
    return Gateway(
        meta=meta,
        gateway_class_name=class_name,
        listeners=tuple(item for _, item in listeners),
        addresses=tuple(a for _, a in addresses),
    )


# -- HTTPRoute -------------------------------------------------------------------------


@mapping_item
def _parent_ref(r: FieldReader, m: Mapping[str, object], path: str) -> ParentRef | None:
    name = r.string(m, path, "name", required=True)
    if name is None:
        return None
    return ParentRef(
        name=name,
        namespace=r.string(m, path, "namespace"),
        section_name=r.string(m, path, "sectionName"),
        port=r.integer(m, path, "port", PORT_MIN, PORT_MAX),
        group=r.string(m, path, "group") or "gateway.networking.k8s.io",
        kind=r.string(m, path, "kind") or "Gateway",
    )


@mapping_item
def _value_match(r: FieldReader, m: Mapping[str, object], path: str) -> ValueMatch | None:
    kind = r.choice(m, path, "type", _VALUE_MATCH_TYPES, "Exact")
    name = r.string(m, path, "name", required=True)
    text = r.string(m, path, "value")
    if text is None:
        r.error(join_path(path, "value"), "is required")
        return None
    if name is None:
        return None
    if kind == "RegularExpression" and not _regex(r, join_path(path, "value"), text):
        return None
    return ValueMatch(name=name, value=text, type=kind)


@mapping_item
def _route_match(r: FieldReader, m: Mapping[str, object], path: str) -> RouteMatch | None:
    path_match = PathMatch()
    pm = r.mapping(m, path, "path")
    if pm is not None:
        here = join_path(path, "path")
        kind = r.choice(pm, here, "type", _PATH_MATCH_TYPES, "PathPrefix")
        text = r.string(pm, here, "value") or "/"
        if kind == "RegularExpression":
            _regex(r, join_path(here, "value"), text)
        elif not text.startswith("/"):
            r.error(join_path(here, "value"), f"must start with '/', got {text!r}")
        path_match = PathMatch(type=kind, value=text)
    headers = r.list_of(m, path, "headers", _value_match)
    for item_path, header in headers:
        if _TOKEN.fullmatch(header.name) is None:
            r.error(join_path(item_path, "name"), f"{header.name!r} is not a header name")
    method = r.string(m, path, "method")
    if method is not None and method not in _METHODS:
        r.error(join_path(path, "method"), f"must be one of {', '.join(sorted(_METHODS))}")
        method = None
    return RouteMatch(
        path=path_match,
        headers=tuple(h for _, h in headers),
        query_params=tuple(q for _, q in r.list_of(m, path, "queryParams", _value_match)),
        method=method,
    )


@mapping_item
def _header_pair(r: FieldReader, m: Mapping[str, object], path: str) -> tuple[str, str] | None:
    name = r.string(m, path, "name", required=True)
    text = r.string(m, path, "value")
    if name is not None and _TOKEN.fullmatch(name) is None:
        r.error(join_path(path, "name"), f"{name!r} is not a header name")
        return None
    if text is not None and any(c in text for c in "\r\n\0"):
        r.error(join_path(path, "value"), "must not contain CR, LF or NUL")
        return None
    return (name, text or "") if name is not None else None


def _header_modifier(r: FieldReader, m: Mapping[str, object], path: str) -> HeaderModifier:
    removes = [name for _, name in r.list_of(m, path, "remove", item_string)]
    return HeaderModifier(
        set=tuple(p for _, p in r.list_of(m, path, "set", _header_pair)),
        add=tuple(p for _, p in r.list_of(m, path, "add", _header_pair)),
        remove=tuple(removes),
    )


def _path_modifier(r: FieldReader, m: Mapping[str, object], path: str) -> PathModifier | None:
    pm = r.mapping(m, path, "path")
    if pm is None:
        return None
    here = join_path(path, "path")
    kind = r.choice(pm, here, "type", _MODIFIER_TYPES, "ReplaceFullPath")
    field_name = "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch"
    text = r.string(pm, here, field_name)
    if text is None:
        r.error(join_path(here, field_name), f"is required when type is {kind}")
        return None
    if not text.startswith("/"):
        r.error(join_path(here, field_name), f"must start with '/', got {text!r}")
    return PathModifier(type=kind, value=text)


def _route_filter(
    r: FieldReader,
    m: Mapping[str, object],
    path: str,
    allowed: tuple[FilterType, ...],
    scope: str,
) -> RouteFilter | None:
    """One filter of a rule or of a backendRef; ``allowed`` are the types ``scope``
    (words for the error, such as "in a rule") takes."""
    raw_type = r.string(m, path, "type", required=True)
    if raw_type is None:
        return None
    kind = next((k for k in allowed if k == raw_type), None)
    if kind is None:
        hint = "; the rule's filters take it" if raw_type in _FILTER_TYPES else ""
        r.error(
            join_path(path, "type"),
            f"filter {raw_type!r} is not supported {scope} (supported: {', '.join(allowed)}){hint}",
        )
        return None
    field_name = "urlRewrite" if kind == "URLRewrite" else kind[0].lower() + kind[1:]
    body = r.mapping(m, path, field_name, required=True)
    if body is None:
        return None
    here = join_path(path, field_name)
    if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
        modifier = _header_modifier(r, body, here)
        if kind == "RequestHeaderModifier":
            return RouteFilter(type=kind, request_header_modifier=modifier)
        return RouteFilter(type=kind, response_header_modifier=modifier)
    if kind == "RequestRedirect":
        scheme = r.string(body, here, "scheme")
        if scheme is not None and scheme not in ("http", "https"):
            r.error(join_path(here, "scheme"), f"must be http or https, got {scheme!r}")
        hostname = r.string(body, here, "hostname")
        if hostname is not None:
            _hostname(r, join_path(here, "hostname"), hostname)
        code = r.integer(body, here, "statusCode", 100, 599)
        if code is not None and code not in _REDIRECT_CODES:
            r.error(join_path(here, "statusCode"), f"must be 301 or 302, got {code}")
            code = None
        redirect = RequestRedirect(
            scheme=scheme,
            hostname=hostname,
            path=_path_modifier(r, body, here),
            port=r.integer(body, here, "port", PORT_MIN, PORT_MAX),
            status_code=code or 302,
        )
        return RouteFilter(type=kind, request_redirect=redirect)
    hostname = r.string(body, here, "hostname")
    if hostname is not None:
        _hostname(r, join_path(here, "hostname"), hostname)
    rewrite = URLRewrite(hostname=hostname, path=_path_modifier(r, body, here))
    return RouteFilter(type=kind, url_rewrite=rewrite)


def _filters(
    r: FieldReader,
    m: Mapping[str, object],
    path: str,
    allowed: tuple[FilterType, ...],
    scope: str,
) -> tuple[RouteFilter, ...]:
    """The ``filters`` list of a rule or a backendRef, read and checked the same way."""

    @mapping_item
    def read(r: FieldReader, m: Mapping[str, object], item_path: str) -> RouteFilter | None:
        return _route_filter(r, m, item_path, allowed, scope)

    filters = r.list_of(m, path, "filters", read)
    kinds = [f.type for _, f in filters]
    if "RequestRedirect" in kinds and "URLRewrite" in kinds:
        r.error(join_path(path, "filters"), "RequestRedirect and URLRewrite cannot be combined")
    for kind in sorted(set(kinds)):
        if kinds.count(kind) > 1:
            r.error(join_path(path, "filters"), f"{kind} may appear at most once")
    return tuple(f for _, f in filters)


@mapping_item
def _backend_ref(r: FieldReader, m: Mapping[str, object], path: str) -> BackendRef | None:
    name = r.string(m, path, "name", required=True)
    weight = r.integer(m, path, "weight", 0, _WEIGHT_MAX)
    filters = _filters(r, m, path, _BACKEND_FILTER_TYPES, "in a backendRef")
    if name is None:
        return None
    return BackendRef(
        name=name,
        namespace=r.string(m, path, "namespace"),
        port=r.integer(m, path, "port", PORT_MIN, PORT_MAX),
        weight=1 if weight is None else weight,
        group=r.string(m, path, "group") or "",
        kind=r.string(m, path, "kind") or "Service",
        filters=filters,
    )


@mapping_item
def _route_rule(r: FieldReader, m: Mapping[str, object], path: str) -> HTTPRouteRule | None:
    matches = tuple(x for _, x in r.list_of(m, path, "matches", _route_match))
    filters = _filters(r, m, path, _FILTER_TYPES, "in a rule")
    return HTTPRouteRule(
        matches=matches or (RouteMatch(),),
        filters=filters,
        backend_refs=tuple(b for _, b in r.list_of(m, path, "backendRefs", _backend_ref)),
    )


def parse_http_route(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> HTTPRoute:
    spec = r.mapping(doc, "", "spec") or {}
    hostnames = []
    for item_path, name in r.list_of(spec, "spec", "hostnames", item_string):
        if _hostname(r, item_path, name):
            hostnames.append(name)
    rules = [rule for _, rule in r.list_of(spec, "spec", "rules", _route_rule)]
    return HTTPRoute(
        meta=meta,
        parent_refs=tuple(p for _, p in r.list_of(spec, "spec", "parentRefs", _parent_ref)),
        hostnames=tuple(hostnames),
        rules=tuple(rules) or (HTTPRouteRule(),),
    )


# -- SeawayConfig sections -------------------------------------------------------------

INGRESS_SETTINGS_FIELDS = frozenset({"address", "port", "serveWithoutClass", "tlsPort"})
HTTP_SETTINGS_FIELDS = frozenset(
    {
        "maxHeadBytes",
        "maxHeaderCount",
        "maxURIBytes",
        "headerTimeoutSeconds",
        "idleTimeoutSeconds",
        "upstreamTimeoutSeconds",
        "upstreamIdleTimeoutSeconds",
        "maxConnectionsPerBackend",
        "algorithm",
        "trustedProxies",
    }
)


def parse_ingress_settings(r: FieldReader, spec: Mapping[str, object]) -> IngressSettings:
    """``spec.ingress`` of a SeawayConfig."""
    d = IngressSettings()
    m = r.section(spec, "spec", "ingress", INGRESS_SETTINGS_FIELDS)
    if m is None:
        return d
    here = "spec.ingress"
    address = r.string(m, here, "address")
    if address is not None:
        parsed = parse_ip(address)
        if parsed is None:
            r.error(join_path(here, "address"), f"{address!r} is not a valid IP address")
        address = str(parsed) if parsed is not None else None
    serve = r.boolean(m, here, "serveWithoutClass")
    return IngressSettings(
        address=address,
        port=r.integer(m, here, "port", PORT_MIN, PORT_MAX) or d.port,
        tls_port=r.integer(m, here, "tlsPort", PORT_MIN, PORT_MAX) or d.tls_port,
        serve_without_class=d.serve_without_class if serve is None else serve,
    )


def parse_http_settings(
    r: FieldReader, spec: Mapping[str, object], algorithms: frozenset[str]
) -> HttpSettings:
    """``spec.http`` of a SeawayConfig."""
    d = HttpSettings()
    m = r.section(spec, "spec", "http", HTTP_SETTINGS_FIELDS)
    if m is None:
        return d
    here = "spec.http"
    algorithm = r.string(m, here, "algorithm")
    if algorithm is not None and algorithm not in algorithms:
        r.error(
            join_path(here, "algorithm"),
            f"must be one of {', '.join(sorted(algorithms))}, got {algorithm!r}",
        )
        algorithm = None
    trusted = []
    for item_path, cidr in r.list_of(m, here, "trustedProxies", item_cidr):
        network = ipaddress.ip_network(cidr)
        if network.prefixlen == 0:
            r.note(f"{item_path}: {cidr} trusts every peer's X-Forwarded-For")
        trusted.append(cidr)
    return HttpSettings(
        max_head_bytes=r.integer(m, here, "maxHeadBytes", 1024) or d.max_head_bytes,
        max_header_count=r.integer(m, here, "maxHeaderCount", 1) or d.max_header_count,
        max_uri_bytes=r.integer(m, here, "maxURIBytes", 256) or d.max_uri_bytes,
        header_timeout_seconds=r.positive_number(m, here, "headerTimeoutSeconds")
        or d.header_timeout_seconds,
        idle_timeout_seconds=r.positive_number(m, here, "idleTimeoutSeconds")
        or d.idle_timeout_seconds,
        upstream_timeout_seconds=r.positive_number(m, here, "upstreamTimeoutSeconds")
        or d.upstream_timeout_seconds,
        upstream_idle_timeout_seconds=r.positive_number(m, here, "upstreamIdleTimeoutSeconds")
        or d.upstream_idle_timeout_seconds,
        max_connections_per_backend=r.integer(m, here, "maxConnectionsPerBackend", 1)
        or d.max_connections_per_backend,
        algorithm=algorithm or d.algorithm,
        trusted_proxies=tuple(trusted),
    )


__all__ = [
    "HTTP_SETTINGS_FIELDS",
    "INGRESS_SETTINGS_FIELDS",
    "parse_gateway",
    "parse_gateway_class",
    "parse_http_route",
    "parse_http_settings",
    "parse_ingress",
    "parse_ingress_class",
    "parse_ingress_settings",
    "parse_label_selector",
    "parse_namespace",
]

"""Manifest parsing: YAML or JSON text into the typed objects of ``seaway.model.objects``.

Parsing is strict and complete: every problem in a document is reported, not just the
first, each as a ``ConfigError`` naming the source (``path#N``), the object
(``Kind namespace/name``) and the field (``spec.ports[1].targetPort``). Types are never
coerced: ``port: "80"`` is an error, as it is for the Kubernetes API server. An object
with any error is left out of the result. Checks that need more than one object
(duplicates, ports no EndpointSlice offers) live in ``seaway.model.validate``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import yaml

try:  # libyaml parses about 7 times faster; the pure-Python loader behaves the same
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from seaway.core.balancers.registry import ALGORITHM_NAMES
from seaway.model import annotations as seaway_annotations
from seaway.model.annotations import parse_slow_start_window
from seaway.model.errors import ConfigError
from seaway.model.fields import (
    DNS1035_LABEL,
    DNS_LABEL_MAX,
    PORT_MAX,
    PORT_MIN,
    FieldReader,
    check_label,
    check_name,
    check_subdomain,
    item_cidr,
    item_ip,
    item_mapping,
    item_string,
    join_path,
    mapping_item,
    parse_ip,
    port_name_ok,
    type_name,
)
from seaway.model.objects import (
    SERVICE_NAME_LABEL,
    AccessLogSettings,
    AddressType,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    IPAddressPool,
    KeepaliveSettings,
    Node,
    ObjectMeta,
    Protocol,
    SeawaySettings,
    Service,
    ServicePort,
    ServiceType,
    Taint,
    TrafficPolicy,
)
from seaway.model.parse_health import (
    HEALTH_SETTINGS_FIELDS,
    check_health_annotations,
    non_negative_number,
    parse_health_check_settings,
    parse_outlier_settings,
    parse_panic_threshold,
)
from seaway.model.parse_reference_grants import parse_reference_grant
from seaway.model.parse_routes import (
    parse_gateway,
    parse_gateway_class,
    parse_http_route,
    parse_http_settings,
    parse_ingress,
    parse_ingress_class,
    parse_ingress_settings,
    parse_namespace,
)
from seaway.model.parse_secrets import parse_secret
from seaway.model.parse_workloads import parse_deployment, parse_pod
from seaway.model.routes import (
    Gateway,
    GatewayClass,
    HTTPRoute,
    Ingress,
    IngressClass,
    Namespace,
    ReferenceGrant,
)
from seaway.model.secrets import Secret
from seaway.model.workloads import Deployment, Pod

ParsedObject = (
    Service
    | EndpointSlice
    | Node
    | IPAddressPool
    | SeawaySettings
    | Namespace
    | IngressClass
    | Ingress
    | GatewayClass
    | Gateway
    | HTTPRoute
    | ReferenceGrant
    | Deployment
    | Pod
    | Secret
)
Syntax = Literal["yaml", "json"]

# The kinds seaway reads, with the one apiVersion it reads each in.
API_VERSIONS: Mapping[str, str] = MappingProxyType(
    {
        "Service": "v1",
        "EndpointSlice": "discovery.k8s.io/v1",
        "Node": "v1",
        "IPAddressPool": "metallb.io/v1beta1",
        "SeawayConfig": "seaway.io/v1alpha1",
        "Namespace": "v1",
        "IngressClass": "networking.k8s.io/v1",
        "Ingress": "networking.k8s.io/v1",
        "GatewayClass": "gateway.networking.k8s.io/v1",
        "Gateway": "gateway.networking.k8s.io/v1",
        "HTTPRoute": "gateway.networking.k8s.io/v1",
        "ReferenceGrant": "gateway.networking.k8s.io/v1",
        "Deployment": "apps/v1",
        "Pod": "v1",
        "Secret": "v1",
    }
)
# Older apiVersions read as well, their fields being the same: ReferenceGrant was long
# served as v1beta1 only, and many manifests still say so.
ALSO_READ: Mapping[str, frozenset[str]] = MappingProxyType(
    {"ReferenceGrant": frozenset({"gateway.networking.k8s.io/v1beta1"})}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {"Node", "SeawayConfig", "Namespace", "IngressClass", "GatewayClass"}
)
DEFAULT_NAMESPACE = "default"

_PROTOCOLS: tuple[Protocol, ...] = ("TCP", "UDP", "SCTP")
_SERVICE_TYPES: tuple[ServiceType, ...] = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_TRAFFIC_POLICIES: tuple[TrafficPolicy, ...] = ("Cluster", "Local")
_ADDRESS_TYPES: tuple[AddressType, ...] = ("IPv4", "IPv6", "FQDN")
_AFFINITIES: tuple[Literal["None", "ClientIP"], ...] = ("None", "ClientIP")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# sessionAffinityConfig.clientIP.timeoutSeconds: 0 < t <= 86400, default 10800
# (Kubernetes core API: MaxClientIPServiceAffinitySeconds and
# DefaultClientIPServiceAffinitySeconds).
AFFINITY_TIMEOUT_MAX = 86400
AFFINITY_TIMEOUT_DEFAULT = 10800
# Linux caps TCP_KEEPIDLE and TCP_KEEPINTVL at MAX_TCP_KEEPIDLE/MAX_TCP_KEEPINTVL = 32767
# seconds and TCP_KEEPCNT at MAX_TCP_KEEPCNT = 127 (include/net/tcp.h); larger values
# make setsockopt fail with EINVAL, so they are rejected here, where the user sees them.
KEEPALIVE_SECONDS_MAX = 32767
KEEPALIVE_COUNT_MAX = 127


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The objects read from some text, the problems found, and notes on what was skipped."""

    objects: tuple[ParsedObject, ...] = ()
    errors: tuple[ConfigError, ...] = ()
    notes: tuple[str, ...] = ()


def kind_of(obj: ParsedObject) -> str:
    """The Kubernetes kind an object was read from."""
    return "SeawayConfig" if isinstance(obj, SeawaySettings) else type(obj).__name__


def describe(kind: str, meta: ObjectMeta) -> str:
    """``Kind namespace/name``, or ``Kind name`` for cluster-scoped objects."""
    return f"{kind} {meta.key}" if meta.namespace else f"{kind} {meta.name}"


def parse_text(text: str, source: str, *, syntax: Syntax = "yaml") -> ParseResult:
    """Parse one file's text (multi-document YAML, or one JSON document).

    ``source`` names the file in errors; documents are ``source#N`` (N from 1, empty
    documents counted so that N matches the file).
    """
    collector = _Collector()
    if syntax == "json":
        try:
            document = json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            message = f"invalid JSON at {where}: {exc.msg}"
            collector.errors.append(ConfigError(source, "", "", message))
        except ValueError as exc:  # duplicate key
            collector.errors.append(ConfigError(source, "", "", f"invalid JSON: {exc}"))
        else:
            _parse_document(document, f"{source}#1", collector)
        return collector.result()
    index = 0
    try:
        for document in yaml.load_all(text, Loader=_StrictLoader):
            index += 1
            _parse_document(document, f"{source}#{index}", collector)
    except yaml.MarkedYAMLError as exc:
        collector.errors.append(ConfigError(source, "", "", _yaml_message(exc)))
    except yaml.YAMLError as exc:
        collector.errors.append(ConfigError(source, "", "", f"invalid YAML: {exc}"))
    return collector.result()


def parse_document(document: object, source: str) -> ParseResult:
    """Parse one already-loaded document (a mapping, or ``None`` for an empty one)."""
    collector = _Collector()
    _parse_document(document, source, collector)
    return collector.result()


# -- loading ---------------------------------------------------------------------------


class _StrictLoader(_SafeLoader):
    """SafeLoader that rejects duplicate keys, as the Kubernetes API machinery does.

    PyYAML silently keeps the last of two equal keys, which hides typos such as a
    second ``ports:`` in the same spec.
    """


def _construct_strict_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> object:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<" merge keys may legitimately be overridden
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key; construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_strict_mapping,
)


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = exc.problem or exc.context or "syntax error"
    return f"invalid YAML{where}: {problem}"


# -- documents -------------------------------------------------------------------------


@dataclass(slots=True)
class _Collector:
    objects: list[ParsedObject] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def result(self) -> ParseResult:
        return ParseResult(tuple(self.objects), tuple(self.errors), tuple(self.notes))


def _api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _parse_document(document: object, source: str, out: _Collector) -> None:
    if document is None:
        return
    r = FieldReader(source, "", out)
    if not isinstance(document, dict):
        r.error("", f"expected a Kubernetes object (a mapping), got {type_name(document)}")
        return
    doc = r.checked_mapping(document, "")
    if doc is None:
        return
    r.obj = _identify(doc)
    api_version = r.string(doc, "", "apiVersion", required=True)
    kind = r.string(doc, "", "kind", required=True)
    if kind == "List" and api_version == "v1":
        for path, item in r.list_of(doc, "", "items", _as_object):
            _parse_document(item, f"{source} {path}", out)
        return
    metadata = r.mapping(doc, "", "metadata", required=True)
    name = r.string(metadata, "metadata", "name", required=True) if metadata is not None else None
    if api_version is None or kind is None or metadata is None or name is None:
        return
    namespaced = kind not in CLUSTER_SCOPED_KINDS
    namespace = ""
    if namespaced:
        namespace = r.string(metadata, "metadata", "namespace") or DEFAULT_NAMESPACE
    expected = API_VERSIONS.get(kind)
    if expected is None or (
        api_version != expected
        and kind != "SeawayConfig"
        and _api_group(api_version) != _api_group(expected)
    ):
        # Not a kind seaway reads; a known kind name in another API group (a Knative
        # serving.knative.dev/v1 Service, say) is a different kind altogether.
        where = f"{namespace}/{name}" if namespace else name
        out.notes.append(f"{source}: skipped {kind} {where} ({api_version}): not read by seaway")
        return
    if api_version != expected and api_version not in ALSO_READ.get(kind, ()):
        r.error("apiVersion", f"{kind} is read as {expected}, got {api_version!r}")
        return
    errors_before = len(out.errors)
    meta = _metadata(r, metadata, name=name, namespace=namespace, kind=kind)
    obj = _PARSERS[kind](r, doc, meta)
    if len(out.errors) == errors_before:
        out.objects.append(obj)


def _identify(doc: Mapping[str, object]) -> str:
    """``Kind namespace/name`` from whatever of it is present, for error messages."""
    kind, metadata = doc.get("kind"), doc.get("metadata")
    if not isinstance(kind, str):
        return ""
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name or not isinstance(metadata, dict):
        return kind
    if kind in CLUSTER_SCOPED_KINDS:
        return f"{kind} {name}"
    namespace = metadata.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        namespace = DEFAULT_NAMESPACE
    return f"{kind} {namespace}/{name}"


def _as_object(r: FieldReader, value: object, path: str) -> object:
    return value


def _metadata(
    r: FieldReader, metadata: Mapping[str, object], *, name: str, namespace: str, kind: str
) -> ObjectMeta:
    if kind == "Service":
        # Service names become DNS labels (RFC 1035): they must start with a letter.
        check_name(
            r,
            "metadata.name",
            name,
            pattern=DNS1035_LABEL,
            limit=DNS_LABEL_MAX,
            what="an RFC 1035 label",
        )
    else:
        check_subdomain(r, "metadata.name", name)
    if namespace:
        check_label(r, "metadata.namespace", namespace)
    deletion: str | None = None
    value = metadata.get("deletionTimestamp")
    if isinstance(value, datetime.datetime):
        # YAML reads an unquoted RFC 3339 time as a timestamp; keep the API's form.
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        deletion = value.isoformat(timespec="seconds") + "Z"
    elif value is not None:
        deletion = r.string(metadata, "metadata", "deletionTimestamp")
    creation = _timestamp(r, metadata, "creationTimestamp")
    return ObjectMeta(
        name=name,
        namespace=namespace,
        labels=r.string_map(metadata, "metadata", "labels"),
        annotations=r.string_map(metadata, "metadata", "annotations"),
        deletion_timestamp=deletion,
        source=r.source,
        creation_timestamp=creation,
    )


def _timestamp(r: FieldReader, metadata: Mapping[str, object], key: str) -> str | None:
    """An RFC 3339 time as the API writes it (``2024-01-02T03:04:05Z``), or None."""
    value = metadata.get(key)
    if isinstance(value, datetime.datetime):
        # YAML reads an unquoted RFC 3339 time as a timestamp; keep the API's form.
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    text = r.string(metadata, "metadata", key)
    if text is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        r.error(f"metadata.{key}", f"{text!r} is not an RFC 3339 time")
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed.isoformat(timespec="seconds") + "Z"


# -- Service ---------------------------------------------------------------------------


@mapping_item
def _service_port(r: FieldReader, m: Mapping[str, object], path: str) -> ServicePort | None:
    name = r.string(m, path, "name") or ""
    if name:
        check_label(r, join_path(path, "name"), name)
    protocol = r.choice(m, path, "protocol", _PROTOCOLS, "TCP")
    port = r.integer(m, path, "port", PORT_MIN, PORT_MAX, required=True)
    target: int | str = 0
    raw_target = m.get("targetPort")
    if isinstance(raw_target, str):
        if port_name_ok(raw_target):
            target = raw_target
        else:
            r.error(
                join_path(path, "targetPort"),
                f"{raw_target!r} is neither a port number nor a port name (IANA_SVC_NAME: "
                "at most 15 lowercase letters, digits and '-', with at least one letter)",
            )
    elif raw_target is not None:
        target = r.integer(m, path, "targetPort", PORT_MIN, PORT_MAX) or 0
    node_port = r.integer(m, path, "nodePort", PORT_MIN, PORT_MAX)
    app_protocol = r.string(m, path, "appProtocol")
    if port is None:
        return None
    return ServicePort(port, protocol, name, target, node_port, app_protocol)


def _service(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Service:
    spec = r.mapping(doc, "", "spec") or {}
    service_type = r.choice(spec, "spec", "type", _SERVICE_TYPES, "ClusterIP")
    cluster_ip = r.string(spec, "spec", "clusterIP") or None
    if cluster_ip is not None and cluster_ip != "None" and parse_ip(cluster_ip) is None:
        r.error("spec.clusterIP", f"{cluster_ip!r} is neither a valid IP address nor 'None'")
    ports = r.list_of(spec, "spec", "ports", _service_port)
    _check_service_ports(r, service_type, cluster_ip, spec, ports)

    etp = r.choice(spec, "spec", "externalTrafficPolicy", _TRAFFIC_POLICIES, "Cluster")
    itp = r.choice(spec, "spec", "internalTrafficPolicy", _TRAFFIC_POLICIES, "Cluster")
    hc_port = r.integer(spec, "spec", "healthCheckNodePort", PORT_MIN, PORT_MAX)
    if hc_port is not None and (service_type != "LoadBalancer" or etp != "Local"):
        # As the API server enforces (core/v1 ServiceSpec.healthCheckNodePort): the
        # node health check only exists for LoadBalancer Services that keep traffic
        # on the node.
        r.error(
            "spec.healthCheckNodePort",
            "may only be set when type is LoadBalancer and externalTrafficPolicy is Local",
        )
    lb_ip = r.string(spec, "spec", "loadBalancerIP") or None
    if lb_ip is not None:
        lb_ip = item_ip(r, lb_ip, "spec.loadBalancerIP")
    lb_class = r.string(spec, "spec", "loadBalancerClass")
    if lb_class is not None and service_type != "LoadBalancer":
        r.error("spec.loadBalancerClass", "may only be set when type is LoadBalancer")

    affinity = r.choice(spec, "spec", "sessionAffinity", _AFFINITIES, "None")
    timeout = AFFINITY_TIMEOUT_DEFAULT
    affinity_config = r.mapping(spec, "spec", "sessionAffinityConfig")
    client_ip = (
        r.mapping(affinity_config, "spec.sessionAffinityConfig", "clientIP")
        if affinity_config is not None
        else None
    )
    if client_ip is not None:
        timeout = (
            r.integer(
                client_ip,
                "spec.sessionAffinityConfig.clientIP",
                "timeoutSeconds",
                1,
                AFFINITY_TIMEOUT_MAX,
            )
            or timeout
        )
    _check_service_annotations(r, meta)
    return Service(
        meta=meta,
        type=service_type,
        ports=tuple(port for _, port in ports),
        selector=r.string_map(spec, "spec", "selector"),
        cluster_ip=cluster_ip,
        external_ips=tuple(ip for _, ip in r.list_of(spec, "spec", "externalIPs", item_ip)),
        external_traffic_policy=etp,
        internal_traffic_policy=itp,
        health_check_node_port=hc_port,
        load_balancer_ip=lb_ip,
        load_balancer_class=lb_class,
        load_balancer_source_ranges=tuple(
            cidr for _, cidr in r.list_of(spec, "spec", "loadBalancerSourceRanges", item_cidr)
        ),
        session_affinity=affinity,
        session_affinity_timeout=timeout,
        traffic_distribution=r.string(spec, "spec", "trafficDistribution"),
    )


def _check_service_ports(
    r: FieldReader,
    service_type: str,
    cluster_ip: str | None,
    spec: Mapping[str, object],
    ports: list[tuple[str, ServicePort]],
) -> None:
    raw_ports = spec.get("ports")
    if service_type != "ExternalName" and cluster_ip != "None" and not raw_ports:
        r.error("spec.ports", "at least one port is required (except for headless Services)")
    names: dict[str, str] = {}
    pairs: dict[tuple[int, str], str] = {}
    for path, port in ports:
        if isinstance(raw_ports, list) and len(raw_ports) > 1 and not port.name:
            r.error(join_path(path, "name"), "is required when a Service has more than one port")
        if port.name:
            if port.name in names:
                r.error(
                    join_path(path, "name"), f"duplicate name {port.name!r} ({names[port.name]})"
                )
            names.setdefault(port.name, path)
        pair = (port.port, port.protocol)
        if pair in pairs:
            r.error(path, f"duplicate port {port.port}/{port.protocol} ({pairs[pair]})")
        pairs.setdefault(pair, path)
        if port.node_port is not None and service_type not in ("NodePort", "LoadBalancer"):
            r.error(
                join_path(path, "nodePort"), "may only be set when type is NodePort or LoadBalancer"
            )


def _check_service_annotations(r: FieldReader, meta: ObjectMeta) -> None:
    choices = {
        seaway_annotations.ALGORITHM: ALGORITHM_NAMES,
        seaway_annotations.HASH_ON: seaway_annotations.HASH_ON_VALUES,
        seaway_annotations.PROXY_PROTOCOL: seaway_annotations.PROXY_PROTOCOL_VALUES,
        seaway_annotations.ACCEPT_PROXY_PROTOCOL: seaway_annotations.BOOLEAN_VALUES,
        seaway_annotations.UPSTREAM_PROTOCOL: seaway_annotations.UPSTREAM_PROTOCOL_VALUES,
    }
    for key, value in meta.annotations.items():
        path = f"metadata.annotations[{key}]"
        allowed = choices.get(key)
        if allowed is not None:
            if value not in allowed:
                r.error(path, f"must be one of {', '.join(sorted(allowed))}, got {value!r}")
        elif key == seaway_annotations.SLOW_START_WINDOW:
            if parse_slow_start_window(value) is None:
                r.error(
                    path,
                    "must be a number of seconds from 0 to "
                    f"{seaway_annotations.SLOW_START_WINDOW_MAX:.0f}, got {value!r}",
                )
        elif key == seaway_annotations.METALLB_LOAD_BALANCER_IPS:
            for part in value.split(","):
                if parse_ip(part.strip()) is None:
                    r.error(path, f"{part.strip()!r} is not a valid IP address")
        elif key.startswith(seaway_annotations.PREFIX) and key not in seaway_annotations.KNOWN:
            r.note(f"unknown annotation {key} ignored")
    check_health_annotations(r, meta)


# -- EndpointSlice ---------------------------------------------------------------------


def _endpoint(
    r: FieldReader,
    m: Mapping[str, object],
    path: str,
    *,
    address_type: AddressType,
    namespace: str,
) -> Endpoint | None:
    addresses: list[str] = []
    for item_path, text in r.list_of(m, path, "addresses", item_string, required=True):
        if address_type == "FQDN":
            if check_subdomain(r, item_path, text):
                addresses.append(text)
            continue
        address = parse_ip(text)
        family = "IPv4" if isinstance(address, ipaddress.IPv4Address) else "IPv6"
        if address is None or family != address_type:
            r.error(item_path, f"{text!r} is not a valid {address_type} address (addressType)")
        else:
            addresses.append(str(address))
    conditions = EndpointConditions()
    cond = r.mapping(m, path, "conditions")
    if cond is not None:
        here = join_path(path, "conditions")
        conditions = EndpointConditions(
            ready=r.boolean(cond, here, "ready"),
            serving=r.boolean(cond, here, "serving"),
            terminating=r.boolean(cond, here, "terminating"),
        )
    zones: list[str] = []
    hints = r.mapping(m, path, "hints")
    if hints is not None:
        for zone_path, zone in r.list_of(hints, join_path(path, "hints"), "forZones", item_mapping):
            zone_name = r.string(zone, zone_path, "name", required=True)
            if zone_name is not None:
                zones.append(zone_name)
    target_ref: str | None = None
    ref = r.mapping(m, path, "targetRef")
    if ref is not None:
        here = join_path(path, "targetRef")
        kind = r.string(ref, here, "kind") or "Pod"
        ref_namespace = r.string(ref, here, "namespace") or namespace
        name = r.string(ref, here, "name", required=True)
        target_ref = f"{kind}/{ref_namespace}/{name}"
    if not addresses:
        return None
    return Endpoint(
        addresses=tuple(addresses),
        conditions=conditions,
        node_name=r.string(m, path, "nodeName"),
        zone=r.string(m, path, "zone"),
        hints_for_zones=tuple(zones),
        target_ref=target_ref,
    )


@mapping_item
def _endpoint_port(r: FieldReader, m: Mapping[str, object], path: str) -> EndpointPort | None:
    name = r.string(m, path, "name") or ""
    if name:
        check_label(r, join_path(path, "name"), name)
    protocol = r.choice(m, path, "protocol", _PROTOCOLS, "TCP")
    # Kubernetes allows an absent port ("all ports"); seaway needs a number to connect to.
    port = r.integer(m, path, "port", PORT_MIN, PORT_MAX, required=True)
    app_protocol = r.string(m, path, "appProtocol")
    if port is None:
        return None
    return EndpointPort(port, name, protocol, app_protocol)


def _endpoint_slice(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> EndpointSlice:
    service_name = meta.labels.get(SERVICE_NAME_LABEL, "")
    if not service_name:
        r.error(
            f"metadata.labels[{SERVICE_NAME_LABEL}]",
            "is required: it names the Service this EndpointSlice belongs to",
        )
    if doc.get("addressType") is None:
        r.error("addressType", "is required (IPv4, IPv6 or FQDN)")
    address_type = r.choice(doc, "", "addressType", _ADDRESS_TYPES, "IPv4")

    @mapping_item
    def read_endpoint(reader: FieldReader, m: Mapping[str, object], path: str) -> Endpoint | None:
        return _endpoint(reader, m, path, address_type=address_type, namespace=meta.namespace)

    ports = r.list_of(doc, "", "ports", _endpoint_port)
    seen: dict[tuple[str, str], str] = {}
    for path, port in ports:
        key = (port.name, port.protocol)
        if key in seen:
            r.error(path, f"duplicate port name {port.name!r}/{port.protocol} ({seen[key]})")
        seen.setdefault(key, path)
    return EndpointSlice(
        meta=meta,
        service_name=service_name,
        address_type=address_type,
        endpoints=tuple(e for _, e in r.list_of(doc, "", "endpoints", read_endpoint)),
        ports=tuple(p for _, p in ports),
    )


# -- Node ------------------------------------------------------------------------------


@mapping_item
def _node_address(r: FieldReader, m: Mapping[str, object], path: str) -> tuple[str, str] | None:
    kind = r.string(m, path, "type", required=True)
    address = r.string(m, path, "address", required=True)
    return (kind, address) if kind is not None and address is not None else None


@mapping_item
def _taint(r: FieldReader, m: Mapping[str, object], path: str) -> Taint | None:
    key = r.string(m, path, "key", required=True)
    value_text = r.string(m, path, "value") or ""
    if m.get("effect") is None:
        r.error(join_path(path, "effect"), f"is required ({', '.join(_TAINT_EFFECTS)})")
    effect = r.choice(m, path, "effect", _TAINT_EFFECTS, "NoSchedule")
    return Taint(key, value_text, effect) if key is not None else None


def _node(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Node:
    spec = r.mapping(doc, "", "spec") or {}
    status = r.mapping(doc, "", "status") or {}
    return Node(
        meta=meta,
        addresses=tuple(a for _, a in r.list_of(status, "status", "addresses", _node_address)),
        taints=tuple(t for _, t in r.list_of(spec, "spec", "taints", _taint)),
        unschedulable=bool(r.boolean(spec, "spec", "unschedulable")),
    )


# -- IPAddressPool ---------------------------------------------------------------------


def _pool_address(r: FieldReader, value: object, path: str) -> str | None:
    text = item_string(r, value, path)
    if text is None:
        return None
    if "-" not in text:
        return item_cidr(r, text, path)
    # "first-last", as MetalLB writes ranges (spaces around '-' allowed).
    first_text, _, last_text = (part.strip() for part in text.partition("-"))
    first, last = parse_ip(first_text), parse_ip(last_text)
    if first is None or last is None:
        r.error(path, f"{text!r} is not a valid range (first-last, both IP addresses)")
    elif first.version != last.version:
        r.error(path, f"{text!r} mixes IPv4 and IPv6")
    elif first > last:  # type: ignore[operator]  # same family, checked above
        r.error(path, f"{text!r} is empty: the first address is after the last")
    else:
        return f"{first}-{last}"
    return None


def _pool(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> IPAddressPool:
    spec = r.mapping(doc, "", "spec", required=True)
    if spec is None:
        return IPAddressPool(meta=meta, addresses=())
    addresses = r.list_of(spec, "spec", "addresses", _pool_address, required=True)
    auto_assign = r.boolean(spec, "spec", "autoAssign")
    return IPAddressPool(
        meta=meta,
        addresses=tuple(a for _, a in addresses),
        auto_assign=True if auto_assign is None else auto_assign,
    )


# -- SeawayConfig ----------------------------------------------------------------------

_SETTINGS_FIELDS = frozenset(
    {
        "loadBalancerClass",
        "loopbackPool",
        "adminAddress",
        "algorithm",
        "maglevTableSize",
        "nodeName",
        "connectTimeoutSeconds",
        "connectAttempts",
        "udpIdleTimeoutSeconds",
        "udpFlowTableSize",
        "keepalive",
        "stateFile",
        "adminTokenFile",
        "accessLog",
        "ingress",
        "http",
        *HEALTH_SETTINGS_FIELDS,
    }
)
_KEEPALIVE_FIELDS = frozenset({"enabled", "idleSeconds", "intervalSeconds", "count"})
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")  # RFC 1122 section 3.2.1.3 (g)


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime (deterministic Miller-Rabin, exact below 3.3e24)."""
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in bases:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def split_host_port(text: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` split, or None when malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not isinstance(parse_ip(host), ipaddress.IPv6Address):
            return None
    elif ":" in host:
        return None  # an IPv6 host needs brackets
    port = int(port_text)
    return (host, port) if port <= PORT_MAX else None


_ACCESS_LOG_FIELDS = frozenset({"path", "format"})
_ACCESS_LOG_FORMATS = ("json", "text")


def _access_log_settings(r: FieldReader, spec: Mapping[str, object]) -> AccessLogSettings:
    raw = r.section(spec, "spec", "accessLog", _ACCESS_LOG_FIELDS)
    if raw is None:
        return AccessLogSettings()
    here = "spec.accessLog"
    path = r.string(raw, here, "path")
    fmt = r.string(raw, here, "format")
    if fmt is not None and fmt not in _ACCESS_LOG_FORMATS:
        r.error(f"{here}.format", f"must be json or text, got {fmt!r}")
        fmt = None
    if path == "":
        r.error(f"{here}.path", 'must be a file path or "-" for standard output')
        path = None
    return AccessLogSettings(path=path, format="text" if fmt == "text" else "json")


def _settings(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> SeawaySettings:
    spec = r.mapping(doc, "", "spec") or {}
    r.reject_unknown(spec, "spec", _SETTINGS_FIELDS)
    d = SeawaySettings()
    loopback_pool = d.loopback_pool
    raw_pool = spec.get("loopbackPool")
    if raw_pool is not None:
        pool = item_cidr(r, raw_pool, "spec.loopbackPool")
        if pool is not None and not ipaddress.ip_network(pool).subnet_of(_LOOPBACK):  # type: ignore[arg-type]
            r.error("spec.loopbackPool", f"{pool} is not inside 127.0.0.0/8")
        loopback_pool = pool or loopback_pool
    admin = r.string(spec, "spec", "adminAddress")
    if admin is not None and split_host_port(admin) is None:
        r.error("spec.adminAddress", f"{admin!r} is not host:port (or [IPv6]:port)")
    algorithm = r.string(spec, "spec", "algorithm")
    if algorithm is not None and algorithm not in ALGORITHM_NAMES:
        r.error(
            "spec.algorithm",
            f"must be one of {', '.join(sorted(ALGORITHM_NAMES))}, got {algorithm!r}",
        )
    table_size = r.integer(spec, "spec", "maglevTableSize", 3)
    if table_size is not None and not is_prime(table_size):
        # Maglev (NSDI 2016, section 3.4) needs a prime table size so that every
        # backend's permutation visits every slot.
        r.error("spec.maglevTableSize", f"must be a prime number, got {table_size}")
    keepalive = d.keepalive
    raw_keepalive = r.section(spec, "spec", "keepalive", _KEEPALIVE_FIELDS)
    if raw_keepalive is not None:
        here = "spec.keepalive"
        enabled = r.boolean(raw_keepalive, here, "enabled")
        keepalive = KeepaliveSettings(
            enabled=keepalive.enabled if enabled is None else enabled,
            idle_seconds=r.integer(raw_keepalive, here, "idleSeconds", 1, KEEPALIVE_SECONDS_MAX)
            or keepalive.idle_seconds,
            interval_seconds=r.integer(
                raw_keepalive, here, "intervalSeconds", 1, KEEPALIVE_SECONDS_MAX
            )
            or keepalive.interval_seconds,
            count=r.integer(raw_keepalive, here, "count", 1, KEEPALIVE_COUNT_MAX)
            or keepalive.count,
        )
    return SeawaySettings(
        meta=meta,
        load_balancer_class=r.string(spec, "spec", "loadBalancerClass") or d.load_balancer_class,
        loopback_pool=loopback_pool,
        admin_address=admin or d.admin_address,
        algorithm=algorithm or d.algorithm,
        maglev_table_size=table_size or d.maglev_table_size,
        node_name=r.string(spec, "spec", "nodeName") or d.node_name,
        connect_timeout_seconds=r.positive_number(spec, "spec", "connectTimeoutSeconds")
        or d.connect_timeout_seconds,
        connect_attempts=r.integer(spec, "spec", "connectAttempts", 1) or d.connect_attempts,
        udp_idle_timeout_seconds=r.positive_number(spec, "spec", "udpIdleTimeoutSeconds")
        or d.udp_idle_timeout_seconds,
        udp_flow_table_size=r.integer(spec, "spec", "udpFlowTableSize", 1) or d.udp_flow_table_size,
        keepalive=keepalive,
        state_file=r.string(spec, "spec", "stateFile") or d.state_file,
        admin_token_file=r.string(spec, "spec", "adminTokenFile") or d.admin_token_file,
        access_log=_access_log_settings(r, spec),
        ingress=parse_ingress_settings(r, spec),
        http=parse_http_settings(r, spec, ALGORITHM_NAMES),
        health_check=parse_health_check_settings(r, spec),
        outlier_detection=parse_outlier_settings(r, spec),
        healthy_panic_threshold=parse_panic_threshold(r, spec, d.healthy_panic_threshold),
        drain_timeout_seconds=non_negative_number(r, spec, "spec", "drainTimeoutSeconds")
        or d.drain_timeout_seconds,
        shutdown_delay_seconds=_shutdown_delay(r, spec, d.shutdown_delay_seconds),
    )


def _shutdown_delay(r: FieldReader, spec: Mapping[str, object], default: float) -> float:
    value = non_negative_number(r, spec, "spec", "shutdownDelaySeconds")
    return default if value is None else value  # 0 is meaningful: no delay


_PARSERS: Mapping[str, Callable[[FieldReader, Mapping[str, object], ObjectMeta], ParsedObject]] = (
    MappingProxyType(
        {
            "Service": _service,
            "EndpointSlice": _endpoint_slice,
            "Node": _node,
            "IPAddressPool": _pool,
            "SeawayConfig": _settings,
            "Namespace": parse_namespace,
            "IngressClass": parse_ingress_class,
            "Ingress": parse_ingress,
            "GatewayClass": parse_gateway_class,
            "Gateway": parse_gateway,
            "HTTPRoute": parse_http_route,
            "ReferenceGrant": parse_reference_grant,
            "Deployment": parse_deployment,
            "Pod": parse_pod,
            "Secret": parse_secret,
        }
    )
)

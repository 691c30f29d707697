"""Cross-object checks, and the one place a ``ClusterState`` is built from parsed objects.

``seaway.model.parse`` checks each object on its own; this module checks what needs
several: the same object defined twice, more than one SeawayConfig, and Service ports
with a named ``targetPort`` that none of the Service's EndpointSlices offers. A slice
whose Service is missing is only noted: in Kubernetes, Services and slices arrive
independently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import MappingProxyType

from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError, InvalidConfiguration
from seaway.model.objects import (
    EndpointSlice,
    IPAddressPool,
    Node,
    SeawaySettings,
    Service,
    ServicePort,
)
from seaway.model.parse import ParsedObject, ParseResult, describe, kind_of
from seaway.model.ports import slice_port_for
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
from seaway.model.workloads import Deployment, Pod, Workload


def build_state(results: Iterable[ParseResult]) -> ClusterState:
    """The ClusterState of everything parsed, or ``InvalidConfiguration`` with every error.

    Parse errors and cross-object errors are reported together, in input order.
    """
    objects: list[ParsedObject] = []
    errors: list[ConfigError] = []
    notes: list[str] = []
    for result in results:
        objects.extend(result.objects)
        errors.extend(result.errors)
        notes.extend(result.notes)
    cross_errors, cross_notes = cross_check(objects)
    errors.extend(cross_errors)
    if errors:
        raise InvalidConfiguration(errors)
    return _assemble(objects, [*notes, *cross_notes])


def cross_check(objects: Sequence[ParsedObject]) -> tuple[list[ConfigError], list[str]]:
    """Errors and notes about how ``objects`` fit together."""
    errors = _duplicates(objects)
    notes: list[str] = []
    services = {o.key: o for o in objects if isinstance(o, Service)}
    slices: dict[str, list[EndpointSlice]] = {}
    for obj in objects:
        if isinstance(obj, EndpointSlice):
            slices.setdefault(obj.service_key, []).append(obj)
            if obj.service_key not in services:
                notes.append(
                    f"{obj.meta.source}: {describe('EndpointSlice', obj.meta)}: Service "
                    f"{obj.service_key} not found; its endpoints are not used"
                )
    for key, service in services.items():
        if key in slices:
            errors.extend(_unmatched_ports(service, slices[key], notes))
    return errors, notes


def _identity(obj: ParsedObject) -> tuple[str, str]:
    kind = kind_of(obj)
    # At most one SeawayConfig, whatever its name: two would disagree on every setting.
    return (kind, "" if kind == "SeawayConfig" else obj.meta.key)


def _duplicates(objects: Sequence[ParsedObject]) -> list[ConfigError]:
    first: dict[tuple[str, str], ParsedObject] = {}
    errors: list[ConfigError] = []
    for obj in objects:
        identity = _identity(obj)
        earlier = first.setdefault(identity, obj)
        if earlier is obj:
            continue
        kind = identity[0]
        what = "a second SeawayConfig" if kind == "SeawayConfig" else "duplicate object"
        errors.append(
            ConfigError(
                obj.meta.source,
                describe(kind, obj.meta),
                "metadata.name",
                f"{what}: {describe(kind, earlier.meta)} is already defined in "
                f"{earlier.meta.source}",
            )
        )
    return errors


def _offered(slices: Sequence[EndpointSlice]) -> str:
    names = sorted({f"{p.name!r}/{p.protocol}" for s in slices for p in s.ports})
    return ", ".join(names) if names else "no ports"


def _unmatched_ports(
    service: Service, slices: Sequence[EndpointSlice], notes: list[str]
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for index, port in enumerate(service.ports):
        if any(slice_port_for(port, s) is not None for s in slices):
            continue
        wanted = _wanted(port)
        message = f"no EndpointSlice port matches {wanted}; the slices offer {_offered(slices)}"
        if isinstance(port.target_port, str):
            # A named targetPort can only be resolved through the slices: without a
            # matching slice port there is no number to connect to.
            errors.append(
                ConfigError(
                    service.meta.source,
                    describe("Service", service.meta),
                    f"spec.ports[{index}].targetPort",
                    message,
                )
            )
        else:
            notes.append(
                f"{service.meta.source}: {describe('Service', service.meta)}: "
                f"spec.ports[{index}]: {message}; the port has no endpoints"
            )
    return errors


def _wanted(port: ServicePort) -> str:
    names = [repr(port.name)]
    if isinstance(port.target_port, str) and port.target_port != port.name:
        names.append(repr(port.target_port))
    return f"name {' or '.join(names)}/{port.protocol}"


def _assemble(objects: Sequence[ParsedObject], notes: list[str]) -> ClusterState:
    services: dict[str, Service] = {}
    slices: dict[str, list[EndpointSlice]] = {}
    nodes: dict[str, Node] = {}
    pools: dict[str, IPAddressPool] = {}
    settings = SeawaySettings()
    routes = _RouteObjects()
    workloads: dict[str, Workload] = {}
    for obj in objects:
        if routes.take(obj):
            continue
        if isinstance(obj, Deployment | Pod):
            workloads[f"{kind_of(obj)} {obj.meta.key}"] = obj
            continue
        if isinstance(obj, Service):
            services[obj.key] = obj
        elif isinstance(obj, EndpointSlice):
            slices.setdefault(obj.service_key, []).append(obj)
        elif isinstance(obj, Node):
            nodes[obj.meta.name] = obj
        elif isinstance(obj, IPAddressPool):
            pools[obj.meta.key] = obj
        elif isinstance(obj, SeawaySettings):
            settings = obj
    return ClusterState(
        services=MappingProxyType(services),
        slices_by_service=MappingProxyType(
            {key: tuple(sorted(group, key=lambda s: s.meta.name)) for key, group in slices.items()}
        ),
        nodes=MappingProxyType(nodes),
        pools=MappingProxyType(pools),
        settings=settings,
        notes=tuple(notes),
        ingresses=MappingProxyType(routes.ingresses),
        ingress_classes=MappingProxyType(routes.ingress_classes),
        gateway_classes=MappingProxyType(routes.gateway_classes),
        gateways=MappingProxyType(routes.gateways),
        http_routes=MappingProxyType(routes.http_routes),
        namespaces=MappingProxyType(routes.namespaces),
        reference_grants=MappingProxyType(routes.reference_grants),
        secrets=MappingProxyType(routes.secrets),
        workloads=MappingProxyType(workloads),
    )


class _RouteObjects:
    """The route kinds of a snapshot, keyed as ``ClusterState`` keys them."""

    def __init__(self) -> None:
        self.ingresses: dict[str, Ingress] = {}
        self.ingress_classes: dict[str, IngressClass] = {}
        self.gateway_classes: dict[str, GatewayClass] = {}
        self.gateways: dict[str, Gateway] = {}
        self.http_routes: dict[str, HTTPRoute] = {}
        self.namespaces: dict[str, Namespace] = {}
        self.reference_grants: dict[str, ReferenceGrant] = {}
        self.secrets: dict[str, Secret] = {}

    def take(self, obj: ParsedObject) -> bool:
        """Keep ``obj`` if it is a route kind; whether it was."""
        if isinstance(obj, Ingress):
            self.ingresses[obj.meta.key] = obj
        elif isinstance(obj, IngressClass):
            self.ingress_classes[obj.meta.name] = obj
        elif isinstance(obj, GatewayClass):
            self.gateway_classes[obj.meta.name] = obj
        elif isinstance(obj, Gateway):
            self.gateways[obj.meta.key] = obj
        elif isinstance(obj, HTTPRoute):
            self.http_routes[obj.meta.key] = obj
        elif isinstance(obj, Namespace):
            self.namespaces[obj.meta.name] = obj
        elif isinstance(obj, ReferenceGrant):
            self.reference_grants[obj.meta.key] = obj
        elif isinstance(obj, Secret):
            self.secrets[obj.meta.key] = obj
        else:
            return False
        return True

"""ClusterState: one immutable snapshot of everything seaway was told."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from seaway.model.objects import EndpointSlice, IPAddressPool, Node, SeawaySettings, Service
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
from seaway.model.workloads import Workload


def _frozen_map() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ClusterState:
    """A validated snapshot, built by ``seaway.model.validate.build_state``.

    ``services`` and ``pools`` are keyed ``namespace/name``; ``nodes`` (cluster-scoped)
    are keyed by name alone.

    ``slices_by_service`` maps a Service key to its slices, sorted by slice name so
    that everything computed from a snapshot is deterministic.
    """

    services: Mapping[str, Service] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    slices_by_service: Mapping[str, tuple[EndpointSlice, ...]] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    nodes: Mapping[str, Node] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    pools: Mapping[str, IPAddressPool] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    settings: SeawaySettings = field(default_factory=SeawaySettings)
    # Route kinds: namespaced ones keyed ``namespace/name``, cluster-scoped by name.
    ingresses: Mapping[str, Ingress] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    ingress_classes: Mapping[str, IngressClass] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    gateway_classes: Mapping[str, GatewayClass] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    gateways: Mapping[str, Gateway] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    http_routes: Mapping[str, HTTPRoute] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    namespaces: Mapping[str, Namespace] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    reference_grants: Mapping[str, ReferenceGrant] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    # TLS Secrets (kubernetes.io/tls), keyed ``namespace/name``; checked when parsed.
    secrets: Mapping[str, Secret] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    # Notes about skipped input (unknown kinds), shown in the admin state; not errors.
    notes: tuple[str, ...] = ()
    # Deployments and Pods, keyed "Kind namespace/name": read only by the timeline rule.
    workloads: Mapping[str, Workload] = field(default_factory=_frozen_map)  # type: ignore[arg-type]

    def slices_for(self, service_key: str) -> tuple[EndpointSlice, ...]:
        return self.slices_by_service.get(service_key, ())

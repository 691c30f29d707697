"""Resolving a route's Service reference to a backend set of the HTTP data plane (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from seaway.core.balancers.registry import ALGORITHM_NAMES
from seaway.core.config import BackendSet, UpstreamProtocol
from seaway.model.annotations import ALGORITHM, UPSTREAM_PROTOCOL
from seaway.model.cluster import ClusterState
from seaway.model.objects import Service, ServicePort
from seaway.model.ports import slice_port_for

# appProtocol values that mean HTTP/2 over cleartext: kubernetes.io/h2c is the standard
# name (KEP-3726); "grpc" and "h2c" are what Istio and others read.
H2C_APP_PROTOCOLS = frozenset({"kubernetes.io/h2c", "h2c", "grpc"})


@dataclasses.dataclass(slots=True)
class BackendResolver:
    """Finds the backend set of a Service port and collects the HTTP variants used.

    The HTTP variant of a backend set is the same set balanced per request with the
    Service's ``seaway.io/algorithm`` annotation, or ``settings.http.algorithm``
    (round-robin by default) when it has none: a per-connection hash would send every
    request of a keep-alive connection to one pod.
    """

    state: ClusterState
    backend_sets: Mapping[str, BackendSet]
    used: dict[str, BackendSet] = dataclasses.field(default_factory=dict)

    def resolve(
        self, namespace: str, name: str, number: int | None, port_name: str | None
    ) -> tuple[str, str]:
        """``(backend set key, "")``, or ``("", why)`` when the reference does not resolve."""
        service = self.state.services.get(f"{namespace}/{name}")
        if service is None:
            return "", f"Service {namespace}/{name} not found"
        if service.type == "ExternalName":
            return "", f"Service {namespace}/{name} is an ExternalName Service"
        for port in service.ports:
            if port.protocol != "TCP":
                continue
            if (number is not None and port.port == number) or (
                port_name is not None and port.name == port_name
            ):
                # Keyed as seaway.core.plan keys backend sets: ns/name:port/TCP.
                key = f"{service.key}:{port.port}/TCP"
                spec = self.backend_sets.get(key)
                if spec is None:
                    return "", f"Service {namespace}/{name} port {port.port} has no backend set"
                if key not in self.used:
                    algorithm = service.meta.annotations.get(ALGORITHM)
                    if algorithm not in ALGORITHM_NAMES:
                        algorithm = self.state.settings.http.algorithm
                    self.used[key] = dataclasses.replace(
                        spec,
                        algorithm=algorithm,
                        upstream_protocol=self._upstream_protocol(service, port),
                    )
                return key, ""
        wanted = f"port {number}" if number is not None else f"port named {port_name!r}"
        return "", f"Service {namespace}/{name} has no TCP {wanted}"

    def _upstream_protocol(self, service: Service, port: ServicePort) -> UpstreamProtocol:
        """h2c or http1: the annotation, else the Service port's appProtocol, else the
        appProtocol of the EndpointSlice port it resolves to."""
        chosen = service.meta.annotations.get(UPSTREAM_PROTOCOL)
        if chosen == "h2c":
            return "h2c"
        if chosen == "http1":
            return "http1"
        protocols = [port.app_protocol]
        for endpoint_slice in self.state.slices_for(service.key):
            slice_port = slice_port_for(port, endpoint_slice)
            if slice_port is not None:
                protocols.append(slice_port.app_protocol)
        if any(p is not None and p.lower() in H2C_APP_PROTOCOLS for p in protocols):
            return "h2c"
        return "http1"

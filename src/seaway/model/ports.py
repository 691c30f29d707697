"""Which EndpointSlice port serves a Service port: the one matching rule seaway uses."""

from __future__ import annotations

from seaway.model.objects import EndpointPort, EndpointSlice, ServicePort


def slice_port_for(service_port: ServicePort, slice: EndpointSlice) -> EndpointPort | None:
    """The port of ``slice`` that carries traffic for ``service_port``, or None.

    A slice port belongs to a Service port when their protocols are equal and the
    slice port's name equals the Service port's name: the EndpointSlice controller
    names slice ports after Service ports, and kube-proxy matches them by name.
    For hand-written manifests, a slice port named like the Service port's named
    ``targetPort`` (the container port name) matches too, when no name matches.
    """
    for port in slice.ports:
        if port.protocol == service_port.protocol and port.name == service_port.name:
            return port
    target = service_port.target_port
    if isinstance(target, str):
        for port in slice.ports:
            if port.protocol == service_port.protocol and port.name == target:
                return port
    return None

"""slice_port_for: which EndpointSlice port serves a Service port."""

from __future__ import annotations

import pytest

from seaway.model.objects import EndpointPort, EndpointSlice, ObjectMeta, ServicePort
from seaway.model.ports import slice_port_for


def endpoint_slice(*ports: EndpointPort) -> EndpointSlice:
    return EndpointSlice(meta=ObjectMeta(name="web-1"), service_name="web", ports=ports)


HTTP = EndpointPort(8080, "http", "TCP")
WEB = EndpointPort(8081, "web", "TCP")
HTTP_UDP = EndpointPort(8082, "http", "UDP")
UNNAMED = EndpointPort(9000, "", "TCP")

CASES = [
    ("same name", ServicePort(80, name="http"), (HTTP,), HTTP),
    (
        "same name wins over target name",
        ServicePort(80, name="http", target_port="web"),
        (WEB, HTTP),
        HTTP,
    ),
    (
        "named targetPort as convenience",
        ServicePort(80, name="http", target_port="web"),
        (WEB,),
        WEB,
    ),
    (
        "numeric targetPort does not match by name",
        ServicePort(80, name="x", target_port=8081),
        (WEB,),
        None,
    ),
    ("protocol must be equal", ServicePort(80, "UDP", name="http"), (HTTP,), None),
    (
        "protocol picks among same names",
        ServicePort(80, "UDP", name="http"),
        (HTTP, HTTP_UDP),
        HTTP_UDP,
    ),
    ("unnamed single port", ServicePort(80), (UNNAMED,), UNNAMED),
    ("unnamed service port, named slice port", ServicePort(80), (HTTP,), None),
    ("no ports in slice", ServicePort(80, name="http"), (), None),
]


@pytest.mark.parametrize(
    ("service_port", "ports", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_slice_port_for(
    service_port: ServicePort, ports: tuple[EndpointPort, ...], expected: EndpointPort | None
) -> None:
    assert slice_port_for(service_port, endpoint_slice(*ports)) == expected

"""A cross-namespace backendRef through the real L7 proxy: refused (500) without a
ReferenceGrant, served once a grant is applied, refused again when it is deleted —
on one kept-alive client connection, without restarting the listener."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from tests.l7.conftest import IO_TIMEOUT, Lab, config_from, gateway_docs, next_address, service_docs

GRANT: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {"name": "routes-from-default", "namespace": "backends"},
    "spec": {
        "from": [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "default"}
        ],
        "to": [{"group": "", "kind": "Service", "name": "shared"}],
    },
}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def test_cross_namespace_backend_is_served_once_granted(lab: Lab) -> None:
    backend = await lab.backend("shared-pod")
    address = next_address()
    port = _free_port(address)
    route = {"rules": [{"backendRefs": [{"name": "shared", "namespace": "backends", "port": 80}]}]}
    docs = [
        *service_docs("shared", [backend], namespace="backends"),
        *gateway_docs(port, address, [route]),
    ]

    async def apply(extra: list[dict[str, Any]]) -> None:
        result = await lab.plane.apply(config_from([*docs, *extra]))
        assert not result.errors

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=IO_TIMEOUT) as client:
        url = f"http://{address}:{port}/hostname"

        await apply([])
        refused = await client.get(url)
        assert refused.status_code == 500
        assert "x-seaway-backend" not in refused.headers

        await apply([GRANT])
        served = await client.get(url)
        assert (served.status_code, served.headers["x-seaway-backend"]) == (200, "shared-pod")

        await apply([])  # the grant deleted: access is revoked
        assert (await client.get(url)).status_code == 500

    assert lab.plane.counters().listeners[f"HTTP/{address}:{port}"].total == 1

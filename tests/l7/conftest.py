"""Fixtures for the L7 proxy: manifests -> ClusterState -> plan -> HttpDataPlane, in process,
with real `seaway backend` servers (in process) on loopback."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from seaway.backend.server import BackendServer
from seaway.core.config import DesiredConfig
from seaway.core.plan import plan
from seaway.dataplane.http import HttpDataPlane
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

# Every network await in these tests is bounded by this.
IO_TIMEOUT = 5.0

_pools = itertools.count(1)


def config_from(docs: list[dict[str, Any]]) -> DesiredConfig:
    """The desired configuration for manifests, as `seaway run` would plan it."""
    result = parse_text(yaml.safe_dump_all(docs), "test.yaml")
    assert not result.errors, result.errors
    return plan(build_state([result]), {})


def service_docs(
    name: str,
    ports: list[int],
    *,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A ClusterIP Service on port 80 whose endpoints are 127.0.0.1 at ``ports``."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }
    ]
    for i, port in enumerate(ports):
        docs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-{i}",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            }
        )
    return docs


def gateway_docs(port: int, address: str, routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """seaway's GatewayClass, one Gateway with an HTTP listener, and ``routes`` (specs)."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "seaway"},
            "spec": {"controllerName": "seaway.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {
                "gatewayClassName": "seaway",
                "addresses": [{"type": "IPAddress", "value": address}],
                "listeners": [{"name": "http", "port": port, "protocol": "HTTP"}],
            },
        },
    ]
    for i, spec in enumerate(routes):
        docs.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": f"route-{i}", "namespace": "default"},
                "spec": {"parentRefs": [{"name": "gw"}], **spec},
            }
        )
    return docs


def next_address() -> str:
    n = next(_pools)
    return f"127.241.{n // 250}.{n % 250 + 1}"


@dataclass
class Lab:
    """In-process backends and one HTTP data plane (all closed at teardown)."""

    plane: HttpDataPlane
    backends: dict[str, BackendServer] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    async def backend(self, name: str) -> int:
        server = BackendServer(name, udp=False)
        await server.start("127.0.0.1:0")
        self.backends[name] = server
        port = int(server.tcp_address.rsplit(":", 1)[1])
        self.ports[name] = port
        return port


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = Lab(HttpDataPlane(rng=random.Random(7)))
    try:
        yield lab
    finally:
        await lab.plane.close()
        for server in lab.backends.values():
            await server.close()

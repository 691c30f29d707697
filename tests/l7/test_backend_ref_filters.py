"""Per-backendRef header filters through the real L7 proxy: two backendRefs of equal
weight, each with its own request and response header edits, over HTTP/1.1 and HTTP/2;
every response shows exactly the edits of the backend that served it."""

from __future__ import annotations

import collections
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.l7.conftest import IO_TIMEOUT, Lab, config_from, gateway_docs, next_address, service_docs

from seaway.core.config import DesiredConfig
from seaway.http1 import HTTPServer, Request, Response

NAMES = ("blue", "green")
REQUESTS = 8


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def echo_pods() -> AsyncIterator[dict[str, int]]:
    """One header-echo server per name: the body is its name, then the request's fields."""
    servers: list[HTTPServer] = []
    ports: dict[str, int] = {}
    try:
        for name in NAMES:

            async def handle(request: Request, name: str = name) -> Response:
                lines = [name] + [f"{n.lower()}: {v}" for n, v in request.headers]
                return Response.text(200, "\n".join(lines) + "\n", (("X-Pod", name),))

            server = HTTPServer(handle)
            servers.append(server)
            await server.start("127.0.0.1:0")
            ports[name] = int(server.bound_address.rsplit(":", 1)[1])
        yield ports
    finally:
        for server in servers:
            await server.close()


def _header_filters(name: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "X-Via", "value": name}],
                "add": [{"name": f"X-Only-{name}", "value": "1"}],
            },
        },
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "X-Pool", "value": name}]},
        },
    ]


async def _serve(lab: Lab, pods: dict[str, int]) -> str:
    """A Gateway whose one rule sends to blue and green 1:1, each with its own filters,
    after the rule's own: the base URL."""
    rule = {
        "filters": [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {
                    "set": [{"name": "X-Via", "value": "rule"}, {"name": "X-Rule", "value": "1"}]
                },
            },
        ],
        "backendRefs": [
            {"name": name, "port": 80, "weight": 1, "filters": _header_filters(name)}
            for name in NAMES
        ],
    }
    address = next_address()
    port = _free_port(address)
    services = [doc for name in NAMES for doc in service_docs(name, [pods[name]])]
    config = config_from([*services, *gateway_docs(port, address, [{"rules": [rule]}])])
    (route,) = config.routes.http_routes
    (parent,) = route.parents
    assert {c.type: c.status for c in parent.conditions} == {
        "Accepted": True,
        "ResolvedRefs": True,
    }
    result = await lab.plane.apply(config)
    assert not result.errors
    return f"http://{address}:{port}"


def _check(response: httpx.Response) -> str:
    """The backend that served ``response``, after checking it carries that backend's
    edits and none of the other's."""
    assert response.status_code == 200
    served, *lines = response.text.splitlines()
    (other,) = [n for n in NAMES if n != served]
    assert response.headers["x-pod"] == served
    assert response.headers.get_list("x-pool") == [served]
    # The backendRef's set replaced the rule's: X-Via once, with the backend's name.
    assert [line for line in lines if line.startswith("x-via:")] == [f"x-via: {served}"]
    assert "x-rule: 1" in lines
    assert f"x-only-{served}: 1" in lines
    assert not any(line.startswith(f"x-only-{other}:") for line in lines)
    return served


async def test_each_backend_ref_edits_only_its_own_requests_http1(
    lab: Lab, echo_pods: dict[str, int]
) -> None:
    base = await _serve(lab, echo_pods)
    served: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
        for _ in range(REQUESTS):
            response = await client.get(f"{base}/", headers={"X-Via": "client"})
            assert response.http_version == "HTTP/1.1"
            served[_check(response)] += 1
    assert served == {"blue": REQUESTS // 2, "green": REQUESTS // 2}


async def test_each_backend_ref_edits_only_its_own_requests_http2(
    lab: Lab, echo_pods: dict[str, int]
) -> None:
    base = await _serve(lab, echo_pods)
    served: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(http1=False, http2=True, timeout=IO_TIMEOUT) as client:
        for _ in range(REQUESTS):
            response = await client.get(f"{base}/", headers={"X-Via": "client"})
            assert response.http_version == "HTTP/2"
            served[_check(response)] += 1
    assert served == {"blue": REQUESTS // 2, "green": REQUESTS // 2}


async def test_a_changed_backend_ref_filter_applies_to_the_next_request(
    lab: Lab, echo_pods: dict[str, int]
) -> None:
    """Only the backendRef's filter changes between two configurations: the route
    table differs, and the next request gets the new edit."""
    address = next_address()
    port = _free_port(address)

    def config(value: str) -> DesiredConfig:
        ref = {
            "name": "blue",
            "port": 80,
            "filters": [
                {
                    "type": "ResponseHeaderModifier",
                    "responseHeaderModifier": {"set": [{"name": "X-Pool", "value": value}]},
                }
            ],
        }
        route = {"rules": [{"backendRefs": [ref]}]}
        return config_from(
            [*service_docs("blue", [echo_pods["blue"]]), *gateway_docs(port, address, [route])]
        )

    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
        assert not (await lab.plane.apply(config("v1"))).errors
        first = await client.get(f"http://{address}:{port}/")
        assert first.headers.get_list("x-pool") == ["v1"]
        assert not (await lab.plane.apply(config("v2"))).errors
        second = await client.get(f"http://{address}:{port}/")
        assert second.headers.get_list("x-pool") == ["v2"]

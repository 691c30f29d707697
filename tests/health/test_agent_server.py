"""The node agent on real sockets: its Service health ports and /healthz, /livez."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway.health.agent import NodeAgent
from seaway.testing.processes import PYTHON, Processes, free_port, wait_until, write_manifests

IO_TIMEOUT = 5.0


def manifests(
    hc_port: int, *, ready: bool, node_extra: dict[str, Any] | None = None, bad_port: bool = False
) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-a"},
            "spec": node_extra or {},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": hc_port,
                "ports": [{"port": 70000 if bad_port else 80, "nodePort": 30080}],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-1",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "ports": [{"port": 8080}],
            "endpoints": [
                {
                    "addresses": ["10.0.0.1"],
                    "nodeName": "node-a",
                    "conditions": {"ready": ready, "serving": True, "terminating": not ready},
                }
            ],
        },
    ]


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[NodeAgent, Path, int]]:
    hc_port = free_port()
    path = tmp_path / "m.yaml"
    write_manifests(path, manifests(hc_port, ready=True))
    node_agent = NodeAgent(
        [str(path)],
        node="node-a",
        healthz_address="127.0.0.1:0",
        address="127.0.0.1",
        health_timeout=0.5,
        poll_interval=0.05,
    )
    await node_agent.start()
    task = asyncio.create_task(node_agent.serve())
    try:
        yield node_agent, path, hc_port
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node_agent.close()


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
        return await client.get(url)


async def eventually(url: str, status: int) -> httpx.Response:
    async with asyncio.timeout(IO_TIMEOUT):
        while True:
            response = await get(url)
            if response.status_code == status:
                return response
            await asyncio.sleep(0.05)


async def test_service_port_answers_any_path_like_kube_proxy(
    agent: tuple[NodeAgent, Path, int],
) -> None:
    _, path, hc_port = agent
    response = await get(f"http://127.0.0.1:{hc_port}/any/path?x=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-load-balancing-endpoint-weight"] == "1"
    assert response.json() == {
        "service": {"namespace": "shop", "name": "web"},
        "localEndpoints": 1,
        "serviceProxyHealthy": True,
    }
    # The only local endpoint starts terminating: 503, so the load balancer moves away.
    write_manifests(path, manifests(hc_port, ready=False))
    response = await eventually(f"http://127.0.0.1:{hc_port}/healthz", 503)
    assert response.json()["localEndpoints"] == 0
    assert response.headers["x-load-balancing-endpoint-weight"] == "0"


async def test_healthz_fails_for_a_node_being_deleted_but_livez_does_not(
    agent: tuple[NodeAgent, Path, int],
) -> None:
    node_agent, path, hc_port = agent
    base = f"http://{node_agent.healthz_bound}"
    assert (await get(f"{base}/healthz")).status_code == 200
    assert (await get(f"{base}/nothing")).status_code == 404
    taint = {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}
    write_manifests(path, manifests(hc_port, ready=True, node_extra=taint))
    response = await eventually(f"{base}/healthz", 503)
    assert response.json()["nodeEligible"] is False
    assert (await get(f"{base}/livez")).status_code == 200
    assert (await get(f"http://127.0.0.1:{hc_port}/")).status_code == 200  # endpoints are fine


async def test_a_change_that_cannot_be_applied_makes_the_agent_stale(
    agent: tuple[NodeAgent, Path, int],
) -> None:
    node_agent, path, hc_port = agent
    base = f"http://{node_agent.healthz_bound}"
    write_manifests(path, manifests(hc_port, ready=True, bad_port=True))
    started = time.monotonic()
    await eventually(f"{base}/livez", 503)
    assert time.monotonic() - started >= 0.4  # health timeout 0.5 s, minus polling slack
    assert (await get(f"{base}/healthz")).status_code == 503
    response = await get(f"http://127.0.0.1:{hc_port}/")
    assert response.status_code == 503 and response.json()["serviceProxyHealthy"] is False
    write_manifests(path, manifests(hc_port, ready=True))  # fixed: in sync again
    await eventually(f"{base}/healthz", 200)


def test_node_agent_command(processes: Processes, tmp_path: Path) -> None:
    hc_port, healthz_port = free_port(), free_port()
    path = tmp_path / "m.yaml"
    write_manifests(path, manifests(hc_port, ready=True))
    proc = processes.start(
        PYTHON,
        "-m",
        "seaway",
        "node-agent",
        "-f",
        str(path),
        "--node",
        "node-a",
        "--healthz-address",
        f"127.0.0.1:{healthz_port}",
        "--address",
        "127.0.0.1",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{healthz_port}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    wait_until(healthy)
    response = httpx.get(f"http://127.0.0.1:{hc_port}/", timeout=IO_TIMEOUT)
    assert response.status_code == 200 and response.json()["localEndpoints"] == 1
    proc.terminate()
    assert proc.wait(5) == 0

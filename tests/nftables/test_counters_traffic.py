"""The kernel's counters end to end: `seaway run --dataplane nftables` in a network
namespace, clients in another, real connections through the VIP, and what the admin
API, /metrics and `seaway top` make of them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seaway.admin.top import samples
from seaway.core.config import Backend as Endpoint
from seaway.core.config import BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.host import why_unavailable
from seaway.dataplane.nftables.plane import NftablesDataPlane
from seaway.testing.processes import (
    Backend,
    Processes,
    seaway_config,
    service_manifests,
    wait_until,
    write_manifests,
)

needs_netns = pytest.mark.skipif(bool(why_unavailable()), reason=why_unavailable() or "ok")
ADMIN = "127.0.0.1:9980"  # inside the load balancer's namespace: nothing else is there
WEB_VIP = "198.18.100.1"
EMPTY_VIP = "198.18.100.2"
PODS = {"pod-0": "198.18.1.1", "pod-1": "198.18.1.2", "pod-2": "198.18.1.3"}

# One connection per line of output: the backend's name, or "refused".
CLIENT = """
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.sendall(b"GET /hostname HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        print(data.split(b"\\r\\n\\r\\n", 1)[1].decode().strip())
    except ConnectionRefusedError:
        print("refused")
"""

FETCH = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.stdout.write(r.read().decode())
"""


@dataclass(frozen=True)
class Topology:
    lb: str  # seaway, the backends and the admin API
    client: str


@pytest.fixture
def topology() -> Iterator[Topology]:
    """Two namespaces joined by a veth: the client reaches 198.18.100.0/24 through lb."""
    tag = uuid.uuid4().hex[:8]
    lb, client = f"seaway-nft-lb-{tag}", f"seaway-nft-cl-{tag}"
    made: list[str] = []
    try:
        for name in (lb, client):
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
            made.append(name)
        for cmd in (
            ["ip", "-n", lb, "link", "set", "lo", "up"],
            ["ip", "-n", client, "link", "set", "lo", "up"],
            [
                "ip",
                "-n",
                lb,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                client,
            ],
            ["ip", "-n", lb, "addr", "add", "198.18.0.2/24", "dev", "eth0"],
            ["ip", "-n", client, "addr", "add", "198.18.0.1/24", "dev", "eth0"],
            ["ip", "-n", lb, "link", "set", "eth0", "up"],
            ["ip", "-n", client, "link", "set", "eth0", "up"],
            ["ip", "-n", client, "route", "add", "198.18.100.0/24", "via", "198.18.0.2"],
            # The pods' addresses are the lb namespace's own: DNAT delivers locally.
            *(["ip", "-n", lb, "addr", "add", f"{a}/32", "dev", "lo"] for a in PODS.values()),
        ):
            subprocess.run(cmd, check=True, timeout=10)
        yield Topology(lb, client)
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], check=False, timeout=10)


def _in(netns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *args]


def _fetch(topo: Topology, path: str) -> str:
    out = subprocess.run(
        _in(topo.lb, sys.executable, "-c", FETCH, f"http://{ADMIN}{path}"),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return out.stdout


def _state(topo: Topology) -> dict[str, Any]:
    return dict(json.loads(_fetch(topo, "/api/v1/state")))


def _connect(topo: Topology, vip: str, count: int) -> Counter[str]:
    out = subprocess.run(
        _in(topo.client, sys.executable, "-c", CLIENT, vip, "80", str(count)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Counter(out.stdout.split())


def _manifests(path: Path, pods: list[str]) -> None:
    backends = [Backend(name, PODS[name], 8000, None) for name in pods]  # type: ignore[arg-type]
    pool = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "test", "namespace": "default"},
        "spec": {"addresses": [f"{WEB_VIP}/32", f"{EMPTY_VIP}/32"]},
    }
    write_manifests(
        path,
        [
            pool,
            seaway_config("127.241.9.0/24", adminAddress=ADMIN),
            *service_manifests(
                "a-web",
                backends,
                port=80,
                annotations={"seaway.io/kernel-backend-counters": "true"},
            ),
            *service_manifests("b-empty", [], port=80),
        ],
    )


def _listener(state: dict[str, Any], vip: str) -> dict[str, Any]:
    return next(item for item in state["listeners"] if item["address"] == vip)


def _totals(state: dict[str, Any]) -> dict[str, int]:
    port = next(s for s in state["services"] if s["name"] == "a-web")["ports"][0]
    return {ep["name"]: ep["total"] for ep in port["endpoints"]}


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in /metrics")


@needs_netns
def test_counters_through_the_admin_api_metrics_and_top(
    topology: Topology, processes: Processes, tmp_path: Path
) -> None:
    for name, address in PODS.items():
        processes.start(
            *_in(
                topology.lb,
                sys.executable,
                "-m",
                "seaway",
                "backend",
                "--listen",
                f"{address}:8000",
                "--name",
                name,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    manifest = tmp_path / "services.yaml"
    _manifests(manifest, ["pod-0", "pod-1"])
    log = tmp_path / "seaway.log"
    seaway = processes.start(
        *_in(
            topology.lb,
            sys.executable,
            "-m",
            "seaway",
            "run",
            "--dataplane",
            "nftables",
            "-f",
            str(manifest),
            "--admin",
            ADMIN,
            "--shutdown-delay",
            "0",
            "--state-file",
            str(tmp_path / "addresses.json"),
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )

    def programmed() -> bool:
        assert seaway.poll() is None, log.read_text()
        try:
            state = _state(topology)
        except subprocess.CalledProcessError:
            return False
        return any(item["address"] == WEB_VIP for item in state["listeners"])

    wait_until(programmed, timeout=20)
    names = _connect(topology, WEB_VIP, 40)
    assert set(names) == {"pod-0", "pod-1"}, names
    refused = _connect(topology, EMPTY_VIP, 3)
    assert refused == Counter({"refused": 3})

    def counted(flows: int) -> dict[str, Any] | None:
        state = _state(topology)  # the plane reads the kernel at most once a second
        return state if _listener(state, WEB_VIP)["total"] == flows else None

    state = wait_until(lambda: counted(40), timeout=5)
    web = _listener(state, WEB_VIP)
    assert _totals(state) == dict(names)  # per backend flows add up to the listener's
    # Each connection: SYN, ACK, request, FIN, ACK at least, all from the client.
    assert web["packets"] >= 5 * 40 and web["bytes"] > web["packets"] * 40
    assert web["rejected"] == 0 and web["active"] == 0
    assert _listener(state, EMPTY_VIP)["rejected"] == 3
    top = samples(state)
    assert {s.name: s.total for s in top.values() if s.service == "default/a-web"} == dict(names)

    metrics = _fetch(topology, "/metrics")
    frontend = f"TCP/{WEB_VIP}:80"
    assert _metric(metrics, "seaway_frontend_connections_total", frontend=frontend) == 40
    assert _metric(metrics, "seaway_frontend_packets_total", frontend=frontend) == web["packets"]
    assert _metric(metrics, "seaway_frontend_rejected_total", frontend=f"TCP/{EMPTY_VIP}:80") == 3
    assert (
        _metric(metrics, "seaway_backend_connections_total", backend=f"{PODS['pod-0']}:8000")
        == names["pod-0"]
    )

    # An endpoint comes: the rules change by elements; the others keep their counts.
    _manifests(manifest, ["pod-0", "pod-1", "pod-2"])
    wait_until(lambda: "pod-2" in _totals(_state(topology)), timeout=10)
    after = _totals(_state(topology))
    assert after == {**dict(names), "pod-2": 0}
    more = _connect(topology, WEB_VIP, 40)
    assert set(more) == {"pod-0", "pod-1", "pod-2"}, more
    final = wait_until(lambda: counted(80), timeout=5)
    assert _totals(final) == dict(names + more)

    seaway.terminate()
    seaway.wait(timeout=15)
    listed = subprocess.run(
        _in(topology.lb, "nft", "list", "tables"),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert "seaway" not in listed.stdout


@needs_netns
def test_the_plane_reads_in_the_background_and_leaves_nothing(netns: str) -> None:
    pods = (Endpoint("198.18.1.1", 8000), Endpoint("198.18.1.2", 8000))
    backends = BackendSet(
        key="default/web:80/TCP",
        service="default/web",
        port_name="http",
        protocol="TCP",
        backends=pods,
        candidates=pods,
        kernel_annotations=(("seaway.io/kernel-backend-counters", "true"),),
    )
    listener = Listener("TCP", WEB_VIP, 80, "default/web", "http", backends.key)
    config = DesiredConfig(
        listeners={listener.key: listener}, backend_sets={backends.key: backends}
    )
    plane = NftablesDataPlane(prefix=_in(netns))
    assert plane.counters().listeners == {}  # nothing applied: nothing read

    async def run() -> None:
        try:
            assert (await plane.apply(config)).errors == {}
            wait_until(lambda: listener.key in plane.counters().listeners, timeout=10)
            counters = plane.counters()
            assert counters.listeners[listener.key].total == 0
            assert {k for _, k in counters.backends} == {"198.18.1.1:8000", "198.18.1.2:8000"}
        finally:
            await plane.close()

    asyncio.run(run())
    assert plane.counters().listeners == {}
    listed = subprocess.run(
        _in(netns, "nft", "list", "tables"), capture_output=True, text=True, check=True, timeout=10
    )
    assert "seaway" not in listed.stdout

"""[keepalive-spread] Keep-alive clients against an L4 Service and an L7 route: how requests
spread over pods.

The Service also gets an Ingress (``ingress: true``: host ``NAME.lab``, served by
seaway's L7 proxy on the load balancer's address, port 8080, sending to the pods).
Several clients each open one keep-alive connection to the Service's address (L4) and
one to the Ingress (L7), and send requests on them; then the deployment scales up by
one pod, and the same connections send again.

Promises:

- L4 balances connections, not requests: every request of a connection goes to the
  pod the connection was given, the spread over pods is as uneven as the connections
  happened to be, and the pod added later gets none of the existing connections'
  requests;
- L7 balances each request (round-robin by default): the same keep-alive clients
  spread their requests evenly over every pod (max/mean per pod below 1.2), the pod
  added later included.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from seaway.lab import topology
from seaway.lab.lab import Lab
from seaway.lab.manifests import ingress_address, ingress_host
from seaway.lab.namespace_threads import NamespaceThread
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec

NAME = "keepalive-spread"
CLIENTS = 6
REQUESTS = 10
REQUEST_SECONDS = 3.0
# L7 per-request balancing spreads within this of the mean (round-robin: exactly even).
L7_MAX_OVER_MEAN = 1.2
# seaway reads the manifests every 0.2 s; the new pod is in the L7 set well within this.
NEW_POD_WAIT_SECONDS = 10.0


class KeepAliveClient:
    """One HTTP/1.1 connection from the lab's client, reused for every request."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str = "lab"
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def connect(
        cls, thread: NamespaceThread, address: str, port: int, host: str = "lab"
    ) -> KeepAliveClient:
        reader, writer = await thread.open_connection(address, port, REQUEST_SECONDS)
        return cls(reader, writer, host)

    async def get(self, path: str) -> str:
        """The pod (X-Seaway-Backend) that answered ``GET path`` on this connection."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        async with asyncio.timeout(REQUEST_SECONDS):
            head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        backend = ""
        lines = head.decode(errors="replace").split("\r\n")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "x-seaway-backend":
                backend = value.strip()
        async with asyncio.timeout(REQUEST_SECONDS):
            await self.reader.readexactly(length)
        if not lines[0].startswith("HTTP/1.1 200"):
            raise ValueError(f"{self.host}{path}: {lines[0]}")
        return backend

    def close(self) -> None:
        self.writer.close()


async def _round(clients: list[KeepAliveClient]) -> list[Counter[str]]:
    async def one(c: KeepAliveClient) -> Counter[str]:
        return Counter([await c.get("/hostname") for _ in range(REQUESTS)])

    return list(await asyncio.gather(*(one(c) for c in clients)))


def max_over_mean(counts: Counter[str], pods: Iterable[str]) -> float:
    """The busiest pod's requests over the mean per pod (1.0: perfectly even); ``pods``
    are every pod that could have served, those that got nothing included."""
    names = set(pods) | set(counts)
    total = sum(counts.values())
    if not names or not total:
        return 0.0
    return max(counts[p] for p in names) / (total / len(names))


def _show(label: str, rounds: list[Counter[str]], say: Say) -> Counter[str]:
    total = Counter[str]()
    for i, counts in enumerate(rounds):
        say(
            f"  {label} connection {i + 1}: "
            + ", ".join(f"{p} {n}" for p, n in sorted(counts.items()))
        )
        total.update(counts)
    return total


async def _wait_for_l7_pod(client: KeepAliveClient, pods: set[str]) -> None:
    """Send on ``client`` until one of ``pods`` answers (seaway read the new pod)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NEW_POD_WAIT_SECONDS
    while await client.get("/hostname") not in pods:
        if loop.time() > deadline:
            raise TimeoutError(f"seaway's L7 route did not reach {', '.join(pods)} in time")
        await asyncio.sleep(0.05)


def with_ingress(spec: LabSpec) -> LabSpec:
    """``spec`` with an Ingress for the scenario's Service (whatever LAB.yaml said)."""
    name = spec.cluster_service().name
    return replace(
        spec,
        services=tuple(replace(s, ingress=True) if s.name == name else s for s in spec.services),
    )


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    spec = with_ingress(spec)
    service = spec.cluster_service()
    l7_address, l7_port = ingress_address(spec)
    host = ingress_host(service)
    async with Lab(spec, state_dir=state_dir, say=say) as lab:
        thread = lab.threads[topology.CLIENT]
        l4: list[KeepAliveClient] = []
        l7: list[KeepAliveClient] = []
        try:
            for _ in range(CLIENTS):
                l4.append(
                    await KeepAliveClient.connect(thread, service.load_balancer_ip, service.port)
                )
                l7.append(await KeepAliveClient.connect(thread, l7_address, l7_port, host))
            say("")
            say(
                f"{CLIENTS} keep-alive connections to the L4 Service "
                f"{service.load_balancer_ip}:{service.port} and {CLIENTS} to the L7 route "
                f"(Ingress, Host {host}) at {l7_address}:{l7_port}; {REQUESTS} requests each"
            )
            first_l4 = await _round(l4)
            first_l7 = await _round(l7)
            pods_before = {p.name for p in lab.pods()}
            state = lab.deployments.deployments[service.deployment]
            state.spec = replace(state.spec, replicas=state.spec.replicas + 1)
            await lab.deployments.scale(service.deployment)
            await lab.deployments.wait_ready(service.deployment, 30)
            await lab.settle()
            pods_after = {p.name for p in lab.pods()}
            added = sorted(pods_after - pods_before)
            probe = await KeepAliveClient.connect(thread, l7_address, l7_port, host)
            try:
                await _wait_for_l7_pod(probe, set(added))
            finally:
                probe.close()
            second_l4 = await _round(l4)
            second_l7 = await _round(l7)
        finally:
            for c in l4 + l7:
                c.close()
        say(f"before the scale-up ({len(pods_before)} pods):")
        l4_first = _show("L4", first_l4, say)
        l7_first = _show("L7", first_l7, say)
        say(f"scaled up: {', '.join(added)} added; the same connections send again:")
        l4_second = _show("L4", second_l4, say)
        l7_second = _show("L7", second_l7, say)
        ratios = {
            "l4_before": max_over_mean(l4_first, pods_before),
            "l7_before": max_over_mean(l7_first, pods_before),
            "l4_after": max_over_mean(l4_second, pods_after),
            "l7_after": max_over_mean(l7_second, pods_after),
        }
        for label, before, after, r1, r2 in (
            ("L4", l4_first, l4_second, ratios["l4_before"], ratios["l4_after"]),
            ("L7", l7_first, l7_second, ratios["l7_before"], ratios["l7_after"]),
        ):
            say(
                f"  {label} requests per pod: before "
                + ", ".join(f"{p} {before[p]}" for p in sorted(pods_before))
                + f" (max/mean {r1:.2f}); after "
                + ", ".join(f"{p} {after[p]}" for p in sorted(pods_after))
                + f" (max/mean {r2:.2f})"
            )
        pinned = all(
            len(a) == 1 and a.keys() == b.keys() for a, b in zip(first_l4, second_l4, strict=True)
        )
        l4_new = sum(l4_second[p] for p in added)
        l7_new = sum(l7_second[p] for p in added)
        total = l4_first + l4_second
        result.numbers.update(
            per_pod=dict(total),
            new_pod_requests=l4_new,
            l4={"before": dict(l4_first), "after": dict(l4_second)},
            l7={"before": dict(l7_first), "after": dict(l7_second)},
            l7_new_pod_requests=l7_new,
            max_over_mean={k: round(v, 3) for k, v in ratios.items()},
        )
        result.check("L4: every request of a connection went to that connection's pod", pinned, say)
        result.check(
            f"L4: the pod added later got none of the existing connections' requests ({l4_new})",
            bool(added) and l4_new == 0,
            say,
        )
        result.check(
            f"L4: uneven once a pod is added (max/mean {ratios['l4_after']:.2f} "
            f">= {L7_MAX_OVER_MEAN})",
            ratios["l4_after"] >= L7_MAX_OVER_MEAN,
            say,
        )
        result.check(
            f"L7: the same keep-alive clients spread over every pod (max/mean "
            f"{ratios['l7_before']:.2f} before, {ratios['l7_after']:.2f} after "
            f"< {L7_MAX_OVER_MEAN})",
            0 < ratios["l7_before"] < L7_MAX_OVER_MEAN
            and 0 < ratios["l7_after"] < L7_MAX_OVER_MEAN,
            say,
        )
        result.check(
            f"L7: the pod added later got its share of the existing connections' "
            f"requests ({l7_new})",
            l7_new > 0,
            say,
        )
    return result

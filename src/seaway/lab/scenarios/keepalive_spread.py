"""[keepalive-spread] Keep-alive clients against an L4 Service: how requests spread over pods.

Several clients each open one keep-alive connection to the Service's address on
seaway and send requests on it; then the deployment scales up by one pod, and the
same connections send again.

Promise of an L4 load balancer: it balances connections, not requests, so every
request of a connection goes to the pod the connection was given, and the pod added
later gets none of the existing connections' requests (an L7 route balances each
request; the comparison is shown when seaway serves one in the lab).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

from seaway.lab import topology
from seaway.lab.lab import Lab
from seaway.lab.namespace_threads import NamespaceThread
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec

NAME = "keepalive-spread"
CLIENTS = 6
REQUESTS = 10
REQUEST_SECONDS = 3.0


class KeepAliveClient:
    """One HTTP/1.1 connection from the lab's client, reused for every request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, thread: NamespaceThread, host: str, port: int) -> KeepAliveClient:
        reader, writer = await thread.open_connection(host, port, REQUEST_SECONDS)
        return cls(reader, writer)

    async def get(self, path: str) -> str:
        """The pod (X-Seaway-Backend) that answered ``GET path`` on this connection."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_SECONDS)
        length = 0
        backend = ""
        for line in head.decode(errors="replace").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "x-seaway-backend":
                backend = value.strip()
        await asyncio.wait_for(self.reader.readexactly(length), REQUEST_SECONDS)
        return backend

    def close(self) -> None:
        self.writer.close()


async def _round(clients: list[KeepAliveClient]) -> list[Counter[str]]:
    async def one(c: KeepAliveClient) -> Counter[str]:
        return Counter([await c.get("/hostname") for _ in range(REQUESTS)])

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    service = next(
        (s for s in spec.services if s.external_traffic_policy == "Cluster"), spec.services[0]
    )
    async with Lab(spec, state_dir=state_dir, say=say) as lab:
        client = lab.threads[topology.CLIENT]
        clients = [
            await KeepAliveClient.connect(client, service.load_balancer_ip, service.port)
            for _ in range(CLIENTS)
        ]
        try:
            say("")
            say(f"L4: {CLIENTS} keep-alive connections to {service.load_balancer_ip}:"
                f"{service.port}, {REQUESTS} requests each")
            first = await _round(clients)
            for i, counts in enumerate(first):
                say(f"  connection {i + 1}: " + ", ".join(f"{p} {n}" for p, n in counts.items()))
            state = lab.deployments.deployments[service.deployment]
            state.spec = replace(state.spec, replicas=state.spec.replicas + 1)
            before = {p.name for p in lab.pods()}
            await lab.deployments.scale(service.deployment)
            await lab.deployments.wait_ready(service.deployment, 30)
            await lab.settle()
            added = sorted({p.name for p in lab.pods()} - before)
            say(f"scaled up: {', '.join(added)} added; the same connections send again")
            second = await _round(clients)
            for i, counts in enumerate(second):
                say(f"  connection {i + 1}: " + ", ".join(f"{p} {n}" for p, n in counts.items()))
        finally:
            for c in clients:
                c.close()
        total = Counter[str]()
        for counts in first + second:
            total.update(counts)
        say("  requests per pod: " + ", ".join(f"{p} {n}" for p, n in sorted(total.items())))
        pinned = all(len(a) == 1 and a.keys() == b.keys() for a, b in zip(first, second,
                                                                           strict=True))
        new_pod_requests = sum(total[p] for p in added)
        result.numbers.update(per_pod=dict(total), new_pod_requests=new_pod_requests)
        result.check("L4: every request of a connection went to that connection's pod",
                     pinned, say)
        result.check(f"L4: the pod added later got none of the existing connections' requests "
                     f"({new_pod_requests})", bool(added) and new_pod_requests == 0, say)
        note = ("L7 comparison not run: the lab does not write an L7 route (Ingress/HTTPRoute) "
                "yet, so only the L4 Service is shown")
        result.notes.append(note)
        say(f"  note: {note}")
    return result

"""[dsr-client-ip] externalTrafficPolicy Local with direct server return, through the kernel.

seaway runs with ``--dataplane nftables``; the Local Service is annotated
``seaway.io/forwarding: dsr``. The client sends requests to the Service's address: the
load balancer forwards each packet, its destination unchanged, to a node with a local
pod (health checks leave the others out); the node's kube-proxy rules DNAT it to the
pod without SNAT (policy Local), and the node answers the client directly.

Promises: the pod sees the client's own address, and no reply passes through the load
balancer: its conntrack holds no entry for the client's flows, and its DSR counters
count only the client's packets.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from seaway.dataplane.nftables.rules import mark_of
from seaway.lab import topology
from seaway.lab.http_probe import http_get
from seaway.lab.lab import Lab
from seaway.lab.namespaces import run as run_command
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec
from seaway.model.annotations import FORWARDING

NAME = "dsr-client-ip"
REQUESTS = 12
REQUEST_SECONDS = 2.0
RULES_WAIT_SECONDS = 20.0


def _lb(*args: str) -> str:
    return run_command(["ip", "netns", "exec", topology.LOAD_BALANCER, *args], check=False)


async def run_scenario(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    service = next(s for s in spec.services if s.external_traffic_policy == "Local")
    async with Lab(spec, state_dir=state_dir, say=say, dataplane="nftables") as lab:
        await lab.annotate_service(service.name, {FORWARDING: "dsr"})
        # The kernel does not retry another node as the proxy does: wait until the health
        # checks (the nodes' healthCheckNodePort) took nodes without a local pod out.
        with_pods = {p.node.address for p in lab.pods()}
        without = [mark_of(n.address) for n in spec.nodes if n.address not in with_pods]
        deadline = asyncio.get_running_loop().time() + RULES_WAIT_SECONDS
        while True:
            table = await asyncio.to_thread(_lb, "nft", "list", "table", "netdev", "seaway")
            at = table.find("map maglev-")
            slots = table[at : table.find("\n\t}", at)] if at >= 0 else ""
            if slots and not any(mark in slots for mark in without):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("seaway did not program direct server return in time")
            await asyncio.sleep(0.2)
        client = lab.threads[topology.CLIENT]
        pod_node = {p.name: p.node.name for p in lab.pods()}
        say("")
        say(
            f"{REQUESTS} requests to {service.load_balancer_ip}:{service.port} "
            "(policy Local, direct server return)"
        )
        seen: list[tuple[str, str]] = []
        for _ in range(REQUESTS):
            answer = await http_get(
                client, service.load_balancer_ip, service.port, "/clientip", REQUEST_SECONDS
            )
            seen.append((answer.backend, answer.body.rsplit(":", 1)[0]))
        for pod, source in sorted(set(seen)):
            say(f"  pod {pod} on {pod_node.get(pod, '?')} saw {source}")
        table = await asyncio.to_thread(_lb, "nft", "list", "table", "netdev", "seaway")
        forwarded = sum(int(n) for n in re.findall(r"counter packets (\d+) bytes \d+ fwd", table))
        conntrack = await asyncio.to_thread(_lb, "cat", "/proc/net/nf_conntrack")
        client_flows = [
            line for line in conntrack.splitlines() if f"src={spec.client.address} " in line
        ]
        say(
            f"  load balancer: {forwarded} packets forwarded to nodes; conntrack entries for "
            f"the client: {len(client_flows)} (replies went from the nodes to the client)"
        )
        result.numbers.update(
            requests=len(seen), forwarded=forwarded, lb_conntrack_client=len(client_flows)
        )
        result.check(
            f"every pod saw the client's address {spec.client.address}",
            len(seen) == REQUESTS and all(s == spec.client.address for _, s in seen),
            say,
        )
        result.check(
            "the load balancer forwarded the client's packets (DSR counters)",
            forwarded >= REQUESTS,
            say,
        )
        result.check(
            "no reply passed through the load balancer (no conntrack entry for the client's flows)",
            not client_flows,
            say,
        )
    return result


run = run_scenario  # the registry's entry point: ``run(spec, state_dir, say)``

"""[packet-life] The life of a packet, with externalTrafficPolicy Cluster and Local.

For each Service: the client sends to every node's nodePort (as a passthrough load
balancer would deliver it) and to the Service's address on the load balancer (seaway,
which sends to the nodes); for each request: which node it entered, which pod
answered, and which source address the pod saw. Then the load balancer's view of the
nodes: which pass its health check.

Promises (kube-proxy's rules): Cluster: every node answers and the pod sees a node's
address (source NAT). Local: only nodes with a local pod answer, the pod is on the
node the packet entered, and it sees the client's own address; the others drop it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from seaway.lab import topology
from seaway.lab.http_probe import http_get
from seaway.lab.lab import Lab
from seaway.lab.node_agent import KUBE_PROXY_HEALTHZ_PORT
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec, NodeSpec, ServiceSpec

NAME = "packet-life"
REQUESTS_PER_NODE = 3
DROP_WAIT_SECONDS = 1.0  # a dropped SYN is retried by the kernel after 1 s: give up then


def _who(spec: LabSpec, source: str) -> str:
    """Name the owner of ``source`` (a node, its pod bridge, the client, the LB)."""
    if source == spec.client.address:
        return "the client"
    if source in (spec.load_balancer.address, *spec.extra_lb_addresses):
        return "the load balancer"
    for node in spec.nodes:
        if source == node.address:
            return node.name
        if source == node.pod_gateway:
            return f"{node.name} (its pod bridge)"
    return "?"


def _node_of(spec: LabSpec, source: str) -> NodeSpec | None:
    for node in spec.nodes:
        if source in (node.address, node.pod_gateway):
            return node
    return None


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    async with Lab(spec, state_dir=state_dir, say=say) as lab:
        client = lab.threads[topology.CLIENT]
        pod_node = {p.name: p.node.name for p in lab.pods()}
        local_nodes = sorted({p.node.name for p in lab.pods()})
        for service in sorted(spec.services, key=lambda s: s.external_traffic_policy):
            say("")
            say(
                f"Service {service.name}: externalTrafficPolicy {service.external_traffic_policy},"
                f" nodePort {service.node_port}, load-balancer address "
                f"{service.load_balancer_ip}:{service.port}"
            )
            local = service.external_traffic_policy == "Local"
            for node in spec.nodes:
                answers: list[tuple[str, str]] = []
                dropped = 0
                for _ in range(REQUESTS_PER_NODE):
                    try:
                        answer = await http_get(
                            client,
                            node.address,
                            service.node_port,
                            "/clientip",
                            DROP_WAIT_SECONDS,
                        )
                        answers.append((answer.backend, answer.body.rsplit(":", 1)[0]))
                    except (OSError, TimeoutError, ValueError):
                        dropped += 1
                path = (
                    f"  client {spec.client.address} -> {node.name} {node.address}:"
                    f"{service.node_port}"
                )
                if not answers:
                    say(f"{path}: no answer ({dropped} dropped: no local pod)")
                for pod, source in answers:
                    say(
                        f"{path} -> pod {pod} on {pod_node.get(pod, '?')}: "
                        f"pod saw {source} ({_who(spec, source)})"
                    )
                if local:
                    has_local = node.name in local_nodes
                    if has_local:
                        result.check(
                            f"{node.name} (has a local pod): answered by a pod on {node.name}, "
                            f"client address {spec.client.address} preserved",
                            len(answers) == REQUESTS_PER_NODE
                            and all(
                                pod_node.get(p) == node.name and s == spec.client.address
                                for p, s in answers
                            ),
                            say,
                        )
                    else:
                        result.check(
                            f"{node.name} (no local pod): traffic dropped",
                            not answers,
                            say,
                        )
                else:
                    result.check(
                        f"{node.name}: answered, the pod saw {node.name}'s address (SNAT)",
                        len(answers) == REQUESTS_PER_NODE
                        and all(_node_of(spec, s) == node for _, s in answers),
                        say,
                    )
            await _through_load_balancer(lab, service, result, say)
            await _health_checks(lab, service, local_nodes, result, say)
        await _cluster_ip(lab, result, say)
    return result


async def _through_load_balancer(
    lab: Lab, service: ServiceSpec, result: ScenarioResult, say: Say
) -> None:
    spec = lab.spec
    client = lab.threads[topology.CLIENT]
    seen: list[tuple[str, str]] = []
    for _ in range(REQUESTS_PER_NODE):
        try:
            answer = await http_get(
                client, service.load_balancer_ip, service.port, "/clientip", 3.0
            )
            seen.append((answer.backend, answer.body.rsplit(":", 1)[0]))
        except (OSError, TimeoutError, ValueError) as exc:
            say(f"  client -> load balancer {service.load_balancer_ip}:{service.port}: {exc!r}")
    for pod, source in seen:
        say(
            f"  client -> load balancer {service.load_balancer_ip}:{service.port} (seaway, "
            f"to a node's nodePort) -> pod {pod}: pod saw {source} ({_who(spec, source)})"
        )
    if service.external_traffic_policy == "Local":
        say(
            "    seaway's L4 proxy opens its own connection to the node, so with Local the pod "
            "sees the load balancer; seaway.io/proxy-protocol passes the client's address on"
        )
    result.check(
        f"through the load balancer {service.load_balancer_ip}:{service.port}: every request "
        "answered",
        len(seen) == REQUESTS_PER_NODE,
        say,
    )


async def _health_checks(
    lab: Lab, service: ServiceSpec, local_nodes: list[str], result: ScenarioResult, say: Say
) -> None:
    spec = lab.spec
    local = service.external_traffic_policy == "Local"
    port = service.health_check_node_port if local else KUBE_PROXY_HEALTHZ_PORT
    path = "/" if local else "/healthz"
    expected = [n.name for n in spec.nodes if not local or n.name in local_nodes]
    what = (
        f"healthCheckNodePort {port}: passes where the node has a ready local pod"
        if local
        else f"kube-proxy's /healthz on port {port}: passes on every healthy node"
    )
    if not lab.node_agents:
        say(
            f"  health check ({what}): expected to pass on {', '.join(expected)}; not checked: "
            + "; ".join(lab.notes)
        )
        result.notes.append("health checks not verified: no node agent")
        return
    lb = lab.threads[topology.LOAD_BALANCER]
    passing: list[str] = []
    for node in spec.nodes:
        try:
            answer = await http_get(lb, node.address, port or 0, path, 1.0)
            verdict = f"HTTP {answer.status}"
            if answer.status == 200:
                passing.append(node.name)
        except (OSError, TimeoutError, ValueError) as exc:
            verdict = repr(exc)
        say(f"  load balancer -> {node.name} {node.address}:{port}{path}: {verdict}")
    result.check(
        f"health check ({what}): passing {', '.join(passing) or 'none'}",
        passing == expected,
        say,
    )


async def _cluster_ip(lab: Lab, result: ScenarioResult, say: Say) -> None:
    """From a node without pods, the ClusterIP reaches a pod on another node."""
    spec = lab.spec
    service = spec.services[0]
    node = next((n for n in spec.nodes if not n.pods), spec.nodes[-1])
    thread = lab.threads[node.name]
    say("")
    try:
        answer = await http_get(thread, service.cluster_ip, service.port, "/clientip", 2.0)
        source = answer.body.rsplit(":", 1)[0]
        say(
            f"in-cluster: {node.name} -> ClusterIP {service.cluster_ip}:{service.port} -> pod "
            f"{answer.backend}: pod saw {source} ({_who(spec, source)})"
        )
        ok = ipaddress.ip_address(source) is not None and answer.status == 200
    except (OSError, TimeoutError, ValueError) as exc:
        say(f"in-cluster: {node.name} -> ClusterIP {service.cluster_ip}: {exc!r}")
        ok = False
    result.check(f"ClusterIP {service.cluster_ip} answers from {node.name}", ok, say)

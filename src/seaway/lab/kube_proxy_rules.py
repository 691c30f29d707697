"""A node's Service rules as kube-proxy's nftables mode builds them (rendering is pure).

One table per node, ``ip seaway-lab-kube-proxy``, replaced as a whole in one ``nft -f``
transaction on every change. Its shape follows kube-proxy's nftables proxier
(pkg/proxy/nftables/proxier.go, KEP-3866):

- ``services``, jumped to from the nat prerouting and output hooks: the ClusterIP,
  the load-balancer address (ipMode VIP: kube-proxy short-circuits traffic to it on
  every node, KEP-1860) and the nodePort on any local address.
- the external chain of a Service with ``externalTrafficPolicy: Cluster`` marks every
  packet for masquerade (the node's address becomes the source, so replies come back
  through this node) and goes to the cluster endpoints.
- with ``Local``: traffic from pods (the cluster CIDR) and from the node itself is
  treated as Cluster (short-circuit; node traffic masqueraded), everything else goes
  to this node's endpoints only, without masquerade: the pod sees the client.
- endpoint chains DNAT to the pod; a pod reaching itself through the Service
  (hairpin) is masqueraded.
- one endpoint per new connection: ``numgen random mod N`` over the endpoints.
- no endpoints: ``reject`` (ICMP port unreachable, so the client's connect fails at
  once); ``Local`` with endpoints elsewhere but none here: external traffic is
  dropped, as kube-proxy does.
- ``masquerading`` in nat postrouting: masquerade what was marked (mark 0x4000).
"""

from __future__ import annotations

from dataclasses import dataclass

from seaway.core.config import Backend
from seaway.core.endpoints import select_endpoints
from seaway.core.plan import node_labels
from seaway.lab.namespaces import PREFIX, run
from seaway.model.cluster import ClusterState

TABLE = f"{PREFIX}kube-proxy"
# kube-proxy's masquerade bit (--masquerade-bit default 14).
MASQUERADE_MARK = "0x00004000"


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """What one Service port needs on one node (for tests and ``lab status``)."""

    name: str
    cluster: tuple[Backend, ...]
    local: tuple[Backend, ...]
    policy: str


def _chain(kind: str, name: str) -> str:
    return f"{kind}-{name}"


def _endpoint_chain(backend: Backend) -> str:
    return f"ep-{backend.address.replace('.', '-')}-{backend.port}"


def node_service_rules(state: ClusterState, node: str) -> list[ServiceRules]:
    """The endpoints each TCP Service port uses on ``node``, by kube-proxy's rules."""
    rules: list[ServiceRules] = []
    labels = node_labels(state, node)
    for key in sorted(state.services):
        service = state.services[key]
        if service.type == "ExternalName":
            continue
        for port in service.ports:
            if port.protocol != "TCP":
                continue
            selection = select_endpoints(service, port, state.slices_for(key), node, labels)
            suffix = f"{service.meta.name}-{port.port}"
            rules.append(
                ServiceRules(
                    suffix, selection.cluster, selection.local, service.external_traffic_policy
                )
            )
    return rules


def render_node_rules(state: ClusterState, node: str, cluster_cidr: str) -> str:
    """The ``nft -f`` script that replaces ``node``'s Service table with the current one."""
    nat: list[str] = []
    no_endpoints: list[str] = []
    chains: dict[str, list[str]] = {}
    endpoints: dict[str, Backend] = {}
    by_name = {r.name: r for r in node_service_rules(state, node)}
    for key in sorted(state.services):
        service = state.services[key]
        for port in service.ports:
            rules = by_name.get(f"{service.meta.name}-{port.port}")
            if rules is None:
                continue
            matches: list[tuple[str, bool]] = []  # (match, external)
            if service.cluster_ip:
                matches.append((f"ip daddr {service.cluster_ip} tcp dport {port.port}", False))
            if service.type == "LoadBalancer" and service.load_balancer_ip:
                matches.append((f"ip daddr {service.load_balancer_ip} tcp dport {port.port}", True))
            if port.node_port:
                matches.append(
                    (
                        f"fib daddr type local ip daddr != 127.0.0.0/8 tcp dport {port.node_port}",
                        True,
                    )
                )
            svc = _chain("svc", rules.name)
            ext = _chain("ext", rules.name)
            local = _chain("local", rules.name)
            if not rules.cluster:
                no_endpoints += [f"{m} reject" for m, _ in matches]
                continue
            for match, external in matches:
                if external:
                    nat.append(f"{match} goto {ext}")
                else:
                    nat.append(f"{match} ip saddr != {cluster_cidr} jump mark-for-masquerade")
                    nat.append(f"{match} goto {svc}")
            chains[svc] = [_pick(rules.cluster)]
            for backend in rules.cluster + rules.local:
                endpoints[_endpoint_chain(backend)] = backend
            if rules.policy == "Local":
                ext_rules = [
                    f"ip saddr {cluster_cidr} goto {svc}",
                    "fib saddr type local jump mark-for-masquerade",
                    f"fib saddr type local goto {svc}",
                ]
                if rules.local:
                    chains[local] = [_pick(rules.local)]
                    ext_rules.append(f"goto {local}")
                else:
                    # Endpoints elsewhere, none here: external traffic is dropped.
                    no_endpoints += [f"{m} drop" for m, external in matches if external]
                chains[ext] = ext_rules
            else:
                chains[ext] = ["jump mark-for-masquerade", f"goto {svc}"]
    for name, backend in sorted(endpoints.items()):
        chains[name] = [
            f"ip saddr {backend.address} jump mark-for-masquerade",
            f"meta l4proto tcp dnat to {backend.address}:{backend.port}",
        ]
    lines = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "  chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept;"
        " jump services; }",
        "  chain nat-output { type nat hook output priority -100; policy accept; jump services; }",
        "  chain nat-postrouting { type nat hook postrouting priority srcnat; policy accept;"
        " jump masquerading; }",
        "  chain filter-input { type filter hook input priority -110; policy accept;"
        " ct state new jump no-endpoints; }",
        "  chain filter-forward { type filter hook forward priority -110; policy accept;"
        " ct state new jump no-endpoints; }",
        "  chain filter-output { type filter hook output priority -110; policy accept;"
        " ct state new jump no-endpoints; }",
        "  chain mark-for-masquerade {",
        f"    meta mark set meta mark or {MASQUERADE_MARK}",
        "  }",
        "  chain masquerading {",
        f"    meta mark & {MASQUERADE_MARK} == 0 return",
        f"    meta mark set meta mark xor {MASQUERADE_MARK}",
        "    masquerade fully-random",
        "  }",
        *_block("services", nat),
        *_block("no-endpoints", no_endpoints),
    ]
    for name, body in chains.items():
        lines += _block(name, body)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _block(name: str, rules: list[str]) -> list[str]:
    return [f"  chain {name} {{", *(f"    {r}" for r in rules), "  }"]


def _pick(backends: tuple[Backend, ...]) -> str:
    if len(backends) == 1:
        return f"goto {_endpoint_chain(backends[0])}"
    arms = ", ".join(f"{i} : goto {_endpoint_chain(b)}" for i, b in enumerate(backends))
    return f"numgen random mod {len(backends)} vmap {{ {arms} }}"


def apply_node_rules(namespace: str, script: str) -> None:
    """Replace the table inside ``namespace`` with ``script`` in one transaction."""
    run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], stdin=script)

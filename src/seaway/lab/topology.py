"""The lab's wiring: which namespaces, links, addresses and routes, as ``ip`` commands.

The plan is pure (a list of argument lists, tested without root); ``apply`` runs it.

- ``seaway-lab-router`` holds a bridge ``lab0`` for the node network (the router's
  address) and a point-to-point link to the client, and forwards between them.
- The load-balancer host and every node hang off ``lab0`` with a veth pair each.
- Each node has a bridge ``cni0`` for its pods (the first address of its pod CIDR)
  and routes to the other nodes' pod CIDRs through those nodes, as flannel's
  host-gw or Calico without overlay do.
- Every route names a lab network: no namespace has a default route, so nothing can
  leave the lab; and no interface is ever made in the host's namespace (both ends
  of every veth pair are created directly inside lab namespaces).
"""

from __future__ import annotations

import ipaddress

from seaway.lab.namespaces import PREFIX, create_namespace, run
from seaway.lab.spec import LabSpec, NodeSpec

CLIENT = f"{PREFIX}client"
ROUTER = f"{PREFIX}router"
LOAD_BALANCER = f"{PREFIX}lb"
NODE_BRIDGE = "cni0"
ROUTER_BRIDGE = "lab0"

Command = list[str]


def node_namespace(node: str) -> str:
    return f"{PREFIX}{node}"


def pod_namespace(pod: str) -> str:
    return f"{PREFIX}pod-{pod}"


def infrastructure_namespaces(spec: LabSpec) -> list[str]:
    """The namespaces ``up`` creates before any pod: client, router, LB host, nodes."""
    return [CLIENT, ROUTER, LOAD_BALANCER, *(node_namespace(n.name) for n in spec.nodes)]


def _routes(namespace: str, networks: list[str], via: str, own: list[str]) -> list[Command]:
    return [
        ["ip", "-n", namespace, "route", "add", net, "via", via]
        for net in networks
        if not any(ipaddress.ip_network(net).overlaps(ipaddress.ip_network(o)) for o in own)
    ]


def _veth(namespace: str, peer: str, peer_namespace: str) -> Command:
    """A veth pair: ``eth0`` in ``namespace``, its peer ``peer`` in ``peer_namespace``."""
    return [
        "ip",
        "-n",
        namespace,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        peer,
        "netns",
        peer_namespace,
    ]


def _bridged_host(
    namespace: str, port: str, bridge_namespace: str, bridge: str, cidr: str
) -> list[Command]:
    """``namespace``'s ``eth0`` (address ``cidr``) plugged as ``port`` into ``bridge``."""
    return [
        _veth(namespace, port, bridge_namespace),
        ["ip", "-n", bridge_namespace, "link", "set", port, "master", bridge],
        ["ip", "-n", bridge_namespace, "link", "set", port, "up"],
        ["ip", "-n", namespace, "addr", "add", cidr, "dev", "eth0"],
        ["ip", "-n", namespace, "link", "set", "eth0", "up"],
    ]


def topology_commands(spec: LabSpec) -> list[Command]:
    """The ``ip`` commands that wire ``spec`` (after its namespaces exist)."""
    cmds: list[Command] = []
    # Router: the node-network bridge and the client link.
    cmds += [
        ["ip", "-n", ROUTER, "link", "add", ROUTER_BRIDGE, "type", "bridge"],
        ["ip", "-n", ROUTER, "addr", "add", spec.router.cidr, "dev", ROUTER_BRIDGE],
        ["ip", "-n", ROUTER, "link", "set", ROUTER_BRIDGE, "up"],
        _veth(CLIENT, "client", ROUTER),
        [
            "ip",
            "-n",
            ROUTER,
            "addr",
            "add",
            f"{spec.client_gateway}/{spec.client.prefix}",
            "dev",
            "client",
        ],
        ["ip", "-n", ROUTER, "link", "set", "client", "up"],
        ["ip", "-n", CLIENT, "addr", "add", spec.client.cidr, "dev", "eth0"],
        ["ip", "-n", CLIENT, "link", "set", "eth0", "up"],
    ]
    # The client reaches the node network (load balancer, nodes) through the router.
    cmds += _routes(CLIENT, [spec.router.network], spec.client_gateway, [])
    # Hosts on the node network: the load balancer and the nodes.
    hosts: list[tuple[str, str, str]] = [(LOAD_BALANCER, "lb", spec.load_balancer.cidr)]
    hosts += [
        (node_namespace(n.name), f"n{i}", f"{n.address}/{spec.router.prefix}")
        for i, n in enumerate(spec.nodes)
    ]
    for namespace, port, cidr in hosts:
        cmds += _bridged_host(namespace, port, ROUTER, ROUTER_BRIDGE, cidr)
        cmds += _routes(namespace, [spec.client.network], spec.router.address, [])
    for address in spec.extra_lb_addresses:
        cmds.append(["ip", "-n", LOAD_BALANCER, "addr", "add", f"{address}/32", "dev", "eth0"])
    # The load balancer reaches pods directly (container-native load balancing).
    for node in spec.nodes:
        cmds.append(["ip", "-n", LOAD_BALANCER, "route", "add", node.pod_cidr, "via", node.address])
    for node in spec.nodes:
        cmds += node_commands(spec, node)
    return cmds


def node_commands(spec: LabSpec, node: NodeSpec) -> list[Command]:
    """A node's pod bridge and its routes to the other nodes' pods."""
    ns = node_namespace(node.name)
    prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
    cmds: list[Command] = [
        ["ip", "-n", ns, "link", "add", NODE_BRIDGE, "type", "bridge"],
        ["ip", "-n", ns, "addr", "add", f"{node.pod_gateway}/{prefix}", "dev", NODE_BRIDGE],
        ["ip", "-n", ns, "link", "set", NODE_BRIDGE, "up"],
        # Locally made packets need a route before the nat output hook rewrites their
        # destination; real nodes use their default route, the lab has none.
        ["ip", "-n", ns, "route", "add", spec.service_cidr, "dev", NODE_BRIDGE],
    ]
    for other in spec.nodes:
        if other.name != node.name:
            cmds.append(["ip", "-n", ns, "route", "add", other.pod_cidr, "via", other.address])
    return cmds


def pod_interface(index: int) -> str:
    """The node-side name of a pod's veth (at most 15 characters, IFNAMSIZ)."""
    return f"veth{index}"


def pod_commands(
    spec: LabSpec, node: NodeSpec, pod: str, address: str, index: int
) -> list[Command]:
    """The ``ip`` commands that plug pod ``pod`` (its namespace exists) into ``node``."""
    ns = pod_namespace(pod)
    node_ns = node_namespace(node.name)
    port = pod_interface(index)
    prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
    cmds = _bridged_host(ns, port, node_ns, NODE_BRIDGE, f"{address}/{prefix}")
    cmds += _routes(ns, list(spec.networks), node.pod_gateway, [node.pod_cidr])
    return cmds


def sysctl_commands(spec: LabSpec) -> list[Command]:
    """Forwarding on the router and the nodes (they route pod traffic)."""
    forwarders = [ROUTER, *(node_namespace(n.name) for n in spec.nodes)]
    return [
        ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"] for ns in forwarders
    ]


def build(spec: LabSpec) -> None:
    """Create the namespaces of ``spec`` and wire them (no pods yet)."""
    for namespace in infrastructure_namespaces(spec):
        create_namespace(namespace)
    for cmd in topology_commands(spec) + sysctl_commands(spec):
        run(cmd)


def add_pod(spec: LabSpec, node: NodeSpec, pod: str, address: str, index: int) -> None:
    """Create pod ``pod``'s namespace and plug it into ``node``."""
    create_namespace(pod_namespace(pod))
    for cmd in pod_commands(spec, node, pod, address, index):
        run(cmd)

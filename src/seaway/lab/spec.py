"""The lab's topology and workloads as written in LAB.yaml (``kind: Lab``), parsed and checked.

Parsing is pure: :func:`parse_lab` takes the text and returns a :class:`LabSpec` or
raises :class:`LabSpecError` listing every problem with its field path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")
TrafficPolicy = Literal["Cluster", "Local"]
BackendsMode = Literal["nodes", "pods"]

# Kubernetes' defaults (core/v1 Probe, PodSpec), used when LAB.yaml leaves a field out.
DEFAULT_PROBE_PERIOD = 10.0  # Probe.periodSeconds
DEFAULT_FAILURE_THRESHOLD = 3  # Probe.failureThreshold
DEFAULT_GRACE_SECONDS = 30.0  # PodSpec.terminationGracePeriodSeconds
# Deployment RollingUpdate defaults are 25 % / 25 %; the lab takes absolute numbers.
DEFAULT_MAX_SURGE = 1
DEFAULT_MAX_UNAVAILABLE = 0
# kube-proxy's --min-sync-period default.
DEFAULT_PROPAGATION_SECONDS = 1.0
# Names of the lab's other namespaces (seaway-lab-client, ...); a node may not take them.
RESERVED_NODE_NAMES = frozenset({"client", "router", "lb"})
NODE_PORT_RANGE = (30000, 32767)  # the API server's default --service-node-port-range


class LabSpecError(ValueError):
    """LAB.yaml is not a valid lab; ``problems`` are ``field: message`` strings."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: invalid lab:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Interface:
    """An address with its prefix length, e.g. 198.18.0.11/24."""

    address: str
    prefix: int

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefix}"

    @property
    def network(self) -> str:
        return str(ipaddress.ip_interface(self.cidr).network)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A worker node: its address on the node network, its zone and pod CIDR."""

    name: str
    address: str
    zone: str
    pod_cidr: str
    pods: bool = True  # whether pods are scheduled here

    @property
    def pod_gateway(self) -> str:
        """The node's address on its pod bridge (first address of the pod CIDR)."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """An HTTP readiness probe (httpGet on the container port)."""

    path: str = "/readyz"
    period_seconds: float = DEFAULT_PROBE_PERIOD
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    success_threshold: int = 1
    timeout_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A Deployment-like workload whose pods run ``seaway backend``."""

    name: str
    replicas: int
    container_port: int = 8000
    readiness_probe: ProbeSpec = ProbeSpec()
    pre_stop_sleep_seconds: float = 0.0
    termination_grace_period_seconds: float = DEFAULT_GRACE_SECONDS
    delay_shutdown_seconds: float = 0.0  # the backend's --delay-shutdown
    max_surge: int = DEFAULT_MAX_SURGE
    max_unavailable: int = DEFAULT_MAX_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A LoadBalancer Service selecting one deployment's pods."""

    name: str
    deployment: str
    port: int
    node_port: int
    cluster_ip: str
    load_balancer_ip: str
    external_traffic_policy: TrafficPolicy = "Cluster"
    health_check_node_port: int | None = None
    # What seaway sends to: the nodes at the nodePort (as a cloud load balancer) or
    # the pods directly (container-native); see seaway.io/backends.
    backends: BackendsMode = "nodes"
    # More Service annotations (name, value), e.g. seaway.io/forwarding; set by scenarios.
    annotations: tuple[tuple[str, str], ...] = ()
    # Also an L7 route: an Ingress of seaway's class, host NAME.lab, to the pods
    # (through a ClusterIP Service NAME-http), served by seaway at the ingress address.
    ingress: bool = False


@dataclass(frozen=True, slots=True)
class LabSpec:
    """A whole lab: client, router, load-balancer host, nodes, deployments, Services."""

    client: Interface
    client_gateway: str
    router: Interface
    load_balancer: Interface
    extra_lb_addresses: tuple[str, ...]
    nodes: tuple[NodeSpec, ...]
    deployments: tuple[DeploymentSpec, ...]
    services: tuple[ServiceSpec, ...]
    service_cidr: str = "10.96.0.0/16"
    propagation_seconds: float = DEFAULT_PROPAGATION_SECONDS
    source: str = field(default="", compare=False)

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def deployment(self, name: str) -> DeploymentSpec:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        raise KeyError(name)

    def cluster_service(self) -> ServiceSpec:
        """The first Service with externalTrafficPolicy Cluster, else the first Service."""
        return next(
            (s for s in self.services if s.external_traffic_policy == "Cluster"), self.services[0]
        )

    def with_deployment(self, deployment: DeploymentSpec) -> LabSpec:
        """This lab with ``deployment`` replacing the one of the same name."""
        others = tuple(deployment if d.name == deployment.name else d for d in self.deployments)
        return replace(self, deployments=others)

    @property
    def networks(self) -> tuple[str, ...]:
        """Every network of the lab: the only destinations any namespace has a route to."""
        pods = [n.pod_cidr for n in self.nodes]
        return (self.client.network, self.router.network, *pods, self.service_cidr)


class _Reader:
    """Reads typed fields from YAML mappings, collecting problems with their paths."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def mapping(self, m: Mapping[str, Any], path: str, key: str) -> Mapping[str, Any]:
        value = m.get(key, {})
        if not isinstance(value, dict):
            self.problems.append(f"{_join(path, key)}: must be a mapping")
            return {}
        return value

    def items(self, m: Mapping[str, Any], path: str, key: str) -> list[Mapping[str, Any]]:
        value = m.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.append(f"{_join(path, key)}: must be a list of mappings")
            return []
        return value

    def get(
        self,
        m: Mapping[str, Any],
        path: str,
        key: str,
        kind: Callable[[Any], T],
        default: T | None = None,
    ) -> T:
        value = m.get(key)
        where = _join(path, key)
        if value is None:
            if default is not None:
                return default
            self.problems.append(f"{where}: required")
        else:
            try:
                return kind(value)
            except (TypeError, ValueError) as exc:
                self.problems.append(f"{where}: {exc}")
        # A well-formed stand-in, so that parsing goes on and reports every problem.
        return kind(_PLACEHOLDERS[kind])


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def ipv4(value: Any) -> str:
    """A dotted IPv4 address."""
    return str(ipaddress.IPv4Address(str(value)))


def interface(value: Any) -> Interface:
    """``address/prefix``."""
    parsed = ipaddress.IPv4Interface(str(value))
    if "/" not in str(value):
        raise ValueError(f"{value!r} needs a prefix length, e.g. {value}/24")
    return Interface(str(parsed.ip), parsed.network.prefixlen)


def ipv4_list(value: Any) -> tuple[str, ...]:
    """A list of IPv4 addresses."""
    if not isinstance(value, list):
        raise ValueError(f"{value!r} must be a list of addresses")
    return tuple(ipv4(v) for v in value)


def cidr(value: Any) -> str:
    return str(ipaddress.IPv4Network(str(value)))


def name(value: Any) -> str:
    text = str(value)
    # Interface and namespace names derive from it: keep it short and DNS-label-like.
    if not text or len(text) > 20 or not all(c.isalnum() or c == "-" for c in text):
        raise ValueError(f"{text!r} must be 1-20 letters, digits or '-'")
    return text.lower()


def non_negative(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{value!r} must be a number >= 0")
    return float(value)


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} must be an integer >= 0")
    return value


def port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} must be a port (1-65535)")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


def text(value: Any) -> str:
    return str(value)


_PLACEHOLDERS: dict[Any, Any] = {
    ipv4: "0.0.0.0",
    ipv4_list: [],
    interface: "0.0.0.0/32",
    cidr: "0.0.0.0/32",
    name: "x",
    non_negative: 0,
    count: 0,
    port: 1,
    boolean: False,
    text: "",
}


def parse_lab(source_text: str, source: str = "LAB.yaml") -> LabSpec:
    """The lab described by ``source_text``; raises LabSpecError naming each bad field."""
    try:
        doc = yaml.safe_load(source_text)
    except yaml.YAMLError as exc:
        raise LabSpecError(source, [f"not YAML: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise LabSpecError(source, ["the document must be a mapping (kind: Lab)"])
    r = _Reader()
    if doc.get("kind") != "Lab":
        r.problems.append(f"kind: must be Lab, got {doc.get('kind')!r}")
    client = r.mapping(doc, "", "client")
    router = r.mapping(doc, "", "router")
    lb = r.mapping(doc, "", "loadBalancer")
    nodes = tuple(_node(r, m, f"nodes[{i}]") for i, m in enumerate(r.items(doc, "", "nodes")))
    deployments = tuple(
        _deployment(r, m, f"deployments[{i}]")
        for i, m in enumerate(r.items(doc, "", "deployments"))
    )
    services = tuple(
        _service(r, m, f"services[{i}]") for i, m in enumerate(r.items(doc, "", "services"))
    )
    spec = LabSpec(
        client=r.get(client, "client", "address", interface),
        client_gateway=r.get(client, "client", "gateway", ipv4),
        router=r.get(router, "router", "address", interface),
        load_balancer=r.get(lb, "loadBalancer", "address", interface),
        extra_lb_addresses=r.get(lb, "loadBalancer", "extraAddresses", ipv4_list, ()),
        nodes=nodes,
        deployments=deployments,
        services=services,
        service_cidr=r.get(doc, "", "serviceCIDR", cidr, "10.96.0.0/16"),
        propagation_seconds=r.get(
            doc, "", "propagationSeconds", non_negative, DEFAULT_PROPAGATION_SECONDS
        ),
        source=source,
    )
    if not r.problems:
        r.problems.extend(check_lab(spec))
    if r.problems:
        raise LabSpecError(source, r.problems)
    return spec


def _node(r: _Reader, m: Mapping[str, Any], path: str) -> NodeSpec:
    return NodeSpec(
        name=r.get(m, path, "name", name),
        address=r.get(m, path, "address", ipv4),
        zone=r.get(m, path, "zone", text, ""),
        pod_cidr=r.get(m, path, "podCIDR", cidr),
        pods=r.get(m, path, "pods", boolean, True),
    )


def _deployment(r: _Reader, m: Mapping[str, Any], path: str) -> DeploymentSpec:
    probe = r.mapping(m, path, "readinessProbe")
    probe_path = f"{path}.readinessProbe"
    strategy = r.mapping(m, path, "strategy")
    strategy_path = f"{path}.strategy"
    return DeploymentSpec(
        name=r.get(m, path, "name", name),
        replicas=r.get(m, path, "replicas", count),
        container_port=r.get(m, path, "containerPort", port, 8000),
        readiness_probe=ProbeSpec(
            path=r.get(probe, probe_path, "path", text, "/readyz"),
            period_seconds=r.get(probe, probe_path, "periodSeconds", non_negative, 10.0),
            failure_threshold=max(1, r.get(probe, probe_path, "failureThreshold", count, 3)),
            success_threshold=max(1, r.get(probe, probe_path, "successThreshold", count, 1)),
            timeout_seconds=r.get(probe, probe_path, "timeoutSeconds", non_negative, 1.0),
        ),
        pre_stop_sleep_seconds=r.get(m, path, "preStopSleepSeconds", non_negative, 0.0),
        termination_grace_period_seconds=r.get(
            m, path, "terminationGracePeriodSeconds", non_negative, DEFAULT_GRACE_SECONDS
        ),
        delay_shutdown_seconds=r.get(m, path, "delayShutdownSeconds", non_negative, 0.0),
        max_surge=r.get(strategy, strategy_path, "maxSurge", count, DEFAULT_MAX_SURGE),
        max_unavailable=r.get(
            strategy, strategy_path, "maxUnavailable", count, DEFAULT_MAX_UNAVAILABLE
        ),
    )


def _service(r: _Reader, m: Mapping[str, Any], path: str) -> ServiceSpec:
    policy = r.get(m, path, "externalTrafficPolicy", text, "Cluster")
    if policy not in ("Cluster", "Local"):
        r.problems.append(f"{path}.externalTrafficPolicy: must be Cluster or Local")
    backends = r.get(m, path, "backends", text, "nodes")
    if backends not in ("nodes", "pods"):
        r.problems.append(f"{path}.backends: must be nodes or pods")
    hc = m.get("healthCheckNodePort")
    return ServiceSpec(
        name=r.get(m, path, "name", name),
        deployment=r.get(m, path, "deployment", name),
        port=r.get(m, path, "port", port),
        node_port=r.get(m, path, "nodePort", port),
        cluster_ip=r.get(m, path, "clusterIP", ipv4),
        load_balancer_ip=r.get(m, path, "loadBalancerIP", ipv4),
        external_traffic_policy=policy,  # type: ignore[arg-type]
        health_check_node_port=None if hc is None else r.get(m, path, "healthCheckNodePort", port),
        backends=backends,  # type: ignore[arg-type]
        ingress=r.get(m, path, "ingress", boolean, False),
    )


def check_lab(spec: LabSpec) -> list[str]:
    """Problems across fields: names, addresses inside their networks, references."""
    problems: list[str] = []
    router_net = ipaddress.ip_network(spec.router.network)
    if ipaddress.ip_address(spec.client_gateway) not in ipaddress.ip_network(spec.client.network):
        problems.append("client.gateway: must be inside the client's network")
    if ipaddress.ip_network(spec.load_balancer.network) != router_net:
        problems.append("loadBalancer.address: must be on the router's network")
    names = [n.name for n in spec.nodes]
    for i, node in enumerate(spec.nodes):
        if node.name in RESERVED_NODE_NAMES:
            problems.append(f"nodes[{i}].name: {node.name!r} names another lab namespace")
    if len(set(names)) != len(names):
        problems.append("nodes: names must be unique")
    if not spec.nodes:
        problems.append("nodes: at least one node")
    seen_cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i, node in enumerate(spec.nodes):
        if ipaddress.ip_address(node.address) not in router_net:
            problems.append(f"nodes[{i}].address: must be inside {router_net}")
        net = ipaddress.ip_network(node.pod_cidr)
        if net.num_addresses < 4:
            problems.append(f"nodes[{i}].podCIDR: too small")
        if any(net.overlaps(other) for other in seen_cidrs):
            problems.append(f"nodes[{i}].podCIDR: overlaps another node's")
        seen_cidrs.append(net)
    if not any(n.pods for n in spec.nodes) and spec.deployments:
        problems.append("nodes: no node takes pods (pods: false everywhere)")
    deployment_names = {d.name for d in spec.deployments}
    for i, d in enumerate(spec.deployments):
        if d.max_surge == 0 and d.max_unavailable == 0:
            problems.append(f"deployments[{i}].strategy: maxSurge and maxUnavailable both 0")
    service_net = ipaddress.ip_network(spec.service_cidr)
    node_ports: set[int] = set()
    for i, s in enumerate(spec.services):
        if s.deployment not in deployment_names:
            problems.append(f"services[{i}].deployment: no deployment named {s.deployment!r}")
        for label, value in (
            ("nodePort", s.node_port),
            ("healthCheckNodePort", s.health_check_node_port),
        ):
            if value is None:
                continue
            if not NODE_PORT_RANGE[0] <= value <= NODE_PORT_RANGE[1]:
                problems.append(f"services[{i}].{label}: must be in 30000-32767")
            if value in node_ports:
                problems.append(f"services[{i}].{label}: {value} is taken")
            node_ports.add(value)
        if ipaddress.ip_address(s.cluster_ip) not in service_net:
            problems.append(f"services[{i}].clusterIP: must be inside {service_net}")
        lb_addresses = {spec.load_balancer.address, *spec.extra_lb_addresses}
        if s.load_balancer_ip not in lb_addresses:
            problems.append(
                f"services[{i}].loadBalancerIP: must be one of the load balancer's addresses"
            )
        if s.external_traffic_policy == "Local" and s.health_check_node_port is None:
            problems.append(f"services[{i}].healthCheckNodePort: required with policy Local")
    return problems


def default_lab_text() -> str:
    """The text of the packaged default lab (seaway/lab/examples/default.yaml)."""
    return resources.files("seaway.lab").joinpath("examples/default.yaml").read_text()


def load_lab(path: str | None) -> LabSpec:
    """The lab in ``path``, or the default lab when ``path`` is None."""
    if path is None:
        return parse_lab(default_lab_text(), "default lab")
    return parse_lab(Path(path).read_text(), path)

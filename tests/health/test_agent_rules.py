"""The node agent's answers, case by case, against kube-proxy's rules (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType

import pytest

from seaway.core.nodes import TO_BE_DELETED_TAINT
from seaway.health import agent_rules
from seaway.model.cluster import ClusterState
from seaway.model.objects import (
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Node,
    ObjectMeta,
    Service,
    ServicePort,
    Taint,
)

NODE = "node-a"
R = EndpointConditions(ready=True, serving=True, terminating=False)
T = EndpointConditions(ready=False, serving=True, terminating=True)  # terminating, serving
NR = EndpointConditions(ready=False, serving=False, terminating=False)
ABSENT = EndpointConditions()  # absent conditions read as ready


@dataclass(frozen=True)
class Case:
    name: str
    endpoints: tuple[tuple[str, str, EndpointConditions], ...]  # (address, node, conditions)
    pending_for: float | None = None  # seconds a change has waited to be applied
    node: Node | None = None
    local: int = 0
    service_status: int = 503
    healthz_status: int = 200
    livez_status: int = 200


def node(*, deleting: bool = False, taint: str | None = None) -> Node:
    return Node(
        meta=ObjectMeta(
            name=NODE, namespace="", deletion_timestamp="2024-01-01T00:00:00Z" if deleting else None
        ),
        taints=(Taint(taint, "", "NoSchedule"),) if taint else (),
    )


CASES = [
    Case("no endpoints", ()),
    Case("one ready local", (("10.0.0.1", NODE, R),), local=1, service_status=200),
    Case("ready conditions absent", (("10.0.0.1", NODE, ABSENT),), local=1, service_status=200),
    Case(
        "two ready local",
        (("10.0.0.1", NODE, R), ("10.0.0.2", NODE, R)),
        local=2,
        service_status=200,
    ),
    Case("ready on another node only", (("10.0.0.1", "node-b", R),)),
    Case("only terminating local", (("10.0.0.1", NODE, T),)),
    Case(
        "terminating and ready local",
        (("10.0.0.1", NODE, T), ("10.0.0.2", NODE, R)),
        local=1,
        service_status=200,
    ),
    Case("not ready local", (("10.0.0.1", NODE, NR),)),
    Case(
        "same IP in two slices counts once",
        (("10.0.0.1", NODE, R), ("10.0.0.1", NODE, R)),
        local=1,
        service_status=200,
    ),
    Case(
        "stale agent",
        (("10.0.0.1", NODE, R),),
        pending_for=60.0,
        local=1,
        healthz_status=503,
        livez_status=503,
    ),
    Case(
        "change pending, not yet late",
        (("10.0.0.1", NODE, R),),
        pending_for=59.0,
        local=1,
        service_status=200,
    ),
    Case(
        "node being deleted",
        (("10.0.0.1", NODE, R),),
        node=node(deleting=True),
        local=1,
        service_status=200,
        healthz_status=503,
    ),
    Case(
        "node tainted for deletion",
        (("10.0.0.1", NODE, R),),
        node=node(taint=TO_BE_DELETED_TAINT),
        local=1,
        service_status=200,
        healthz_status=503,
    ),
    Case(
        "node with another taint",
        (("10.0.0.1", NODE, R),),
        node=node(taint="dedicated"),
        local=1,
        service_status=200,
    ),
]


def state_for(case: Case) -> ClusterState:
    service = Service(
        meta=ObjectMeta(name="web", namespace="shop"),
        type="LoadBalancer",
        ports=(ServicePort(port=80, name="http"), ServicePort(port=443, name="https")),
        external_traffic_policy="Local",
        health_check_node_port=32000,
    )
    slices = tuple(
        EndpointSlice(
            meta=ObjectMeta(name=f"web-{i}", namespace="shop"),
            service_name="web",
            endpoints=(Endpoint(addresses=(address,), conditions=conditions, node_name=on),),
            ports=(EndpointPort(port=8080, name="http"), EndpointPort(port=8443, name="https")),
        )
        for i, (address, on, conditions) in enumerate(case.endpoints)
    )
    return ClusterState(
        services=MappingProxyType({service.key: service}),
        slices_by_service=MappingProxyType({service.key: slices}),
        nodes=MappingProxyType({NODE: case.node} if case.node else {}),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_agent_answers(case: Case) -> None:
    state = state_for(case)
    now = 1000.0
    pending = None if case.pending_for is None else now - case.pending_for
    healthy = agent_rules.proxy_healthy(now, pending, agent_rules.DEFAULT_HEALTH_TIMEOUT)
    eligible = agent_rules.node_eligible(state.nodes.get(NODE))
    assert agent_rules.health_check_ports(state) == {"shop/web": 32000}

    count = agent_rules.local_ready_endpoints(state, "shop/web", NODE)
    assert count == case.local
    answer = agent_rules.service_health("shop", "web", count, healthy)
    assert answer.status == case.service_status
    assert dict(answer.headers) == {
        "Content-Type": "application/json",
        "X-Content-Type-Options": "nosniff",
        "X-Load-Balancing-Endpoint-Weight": str(case.local),
    }
    assert json.loads(answer.body) == {
        "service": {"namespace": "shop", "name": "web"},
        "localEndpoints": case.local,
        "serviceProxyHealthy": healthy,
    }

    healthz = agent_rules.healthz(healthy, eligible, 900.0, 1_700_000_000.0)
    assert healthz.status == case.healthz_status
    assert json.loads(healthz.body)["nodeEligible"] == eligible
    livez = agent_rules.livez(healthy, 900.0, 1_700_000_000.0)
    assert livez.status == case.livez_status


def test_only_load_balancer_local_services_get_a_health_port() -> None:
    cluster = Service(meta=ObjectMeta(name="c"), type="LoadBalancer", ports=(ServicePort(port=1),))
    state = ClusterState(services=MappingProxyType({cluster.key: cluster}))
    assert agent_rules.health_check_ports(state) == {}

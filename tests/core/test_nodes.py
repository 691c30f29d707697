"""Nodes as backends: eligibility as the cloud service controller decides it, and plan()."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from seaway.core.nodes import (
    EXCLUDE_BALANCERS_LABEL,
    REASON_DELETING,
    REASON_EXCLUDED,
    REASON_NO_ADDRESS,
    REASON_TAINTED,
    TO_BE_DELETED_TAINT,
    node_backends,
    node_exclusion,
)
from seaway.core.plan import plan
from seaway.model import annotations as notes
from seaway.model.cluster import ClusterState
from seaway.model.objects import Node, ObjectMeta, Service, ServicePort, Taint


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
    deleting: bool = False,
    address: str | None = "10.1.0.1",
    unschedulable: bool = False,
) -> Node:
    return Node(
        meta=ObjectMeta(
            name=name,
            namespace="",
            labels=MappingProxyType(labels or {}),
            deletion_timestamp="2024-01-01T00:00:00Z" if deleting else None,
        ),
        addresses=(("InternalIP", address),) if address else (("Hostname", name),),
        taints=taints,
        unschedulable=unschedulable,
    )


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (node("plain"), ""),
        # Readiness and cordoning are not rules any more (KEP-3458): health checks decide.
        (node("cordoned", unschedulable=True), ""),
        (node("deleting", deleting=True), REASON_DELETING),
        (node("excluded", labels={EXCLUDE_BALANCERS_LABEL: ""}), REASON_EXCLUDED),
        (node("excluded-true", labels={EXCLUDE_BALANCERS_LABEL: "true"}), REASON_EXCLUDED),
        (node("excluded-garbage", labels={EXCLUDE_BALANCERS_LABEL: "maybe"}), REASON_EXCLUDED),
        (node("label-false", labels={EXCLUDE_BALANCERS_LABEL: "false"}), ""),
        (node("label-0", labels={EXCLUDE_BALANCERS_LABEL: "0"}), ""),
        (
            node("tainted", taints=(Taint(TO_BE_DELETED_TAINT, "1700000000", "NoSchedule"),)),
            REASON_TAINTED,
        ),
        (node("other-taint", taints=(Taint("dedicated", "x", "NoSchedule"),)), ""),
    ],
    ids=lambda v: v.meta.name if isinstance(v, Node) else None,
)
def test_node_exclusion(case: Node, reason: str) -> None:
    assert node_exclusion(case) == reason


def test_node_backends_are_eligible_nodes_at_the_node_port() -> None:
    nodes = [
        node("b", address="10.1.0.2"),
        node("a", address="10.1.0.1"),
        node("gone", address="10.1.0.3", deleting=True),
        node("noip", address=None),
    ]
    backends, views = node_backends(ServicePort(port=80, node_port=30080), nodes)
    assert [(b.address, b.port, b.name) for b in backends] == [
        ("10.1.0.1", 30080, "a"),
        ("10.1.0.2", 30080, "b"),
    ]
    assert [(v.name, v.usable, v.reason) for v in views] == [
        ("a", True, ""),
        ("b", True, ""),
        ("gone", False, REASON_DELETING),
        ("noip", False, REASON_NO_ADDRESS),
    ]


def cluster(service: Service, *nodes: Node) -> ClusterState:
    return ClusterState(
        services=MappingProxyType({service.key: service}),
        nodes=MappingProxyType({n.meta.name: n for n in nodes}),
    )


NODES_MODE = MappingProxyType({notes.BACKENDS: "nodes"})


def test_plan_nodes_mode_uses_nodes_and_checks_them() -> None:
    service = Service(
        meta=ObjectMeta(name="web", annotations=NODES_MODE),
        type="LoadBalancer",
        ports=(ServicePort(port=80, node_port=30080),),
        external_traffic_policy="Local",
        health_check_node_port=32000,
    )
    config = plan(cluster(service, node("n1", address="10.1.0.1")), {})
    backend_set = config.backend_sets["default/web:80/TCP"]
    assert backend_set.mode == "nodes"
    assert [b.key for b in backend_set.backends] == ["10.1.0.1:30080"]
    assert backend_set.health_check is not None
    assert (backend_set.health_check.port, backend_set.health_check.path) == (32000, "/healthz")


def test_plan_nodes_mode_without_node_port_says_why() -> None:
    service = Service(
        meta=ObjectMeta(name="web", annotations=NODES_MODE),
        type="LoadBalancer",
        ports=(ServicePort(port=80),),
    )
    config = plan(cluster(service, node("n1")), {})
    backend_set = config.backend_sets["default/web:80/TCP"]
    assert backend_set.backends == ()
    assert "no nodePort" in backend_set.empty_reason
    assert "nodes mode needs" in config.services["default/web"].message

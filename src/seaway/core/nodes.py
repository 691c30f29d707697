"""Nodes as backends: which Nodes a load balancer may send to, as Kubernetes decides it (pure).

The rules are those of the cloud service controller (k8s.io/cloud-provider
``controllers/service``, ``stableNodeSetPredicates``, KEP-3458): a Node is a load
balancer backend unless it is being deleted, is labelled
``node.kubernetes.io/exclude-from-external-load-balancers``, or is tainted
``ToBeDeletedByClusterAutoscaler``. Node readiness is deliberately not a rule any
more (KEP-3458): the load balancer's health check of each node decides, so that a
flapping kubelet does not reprogram every load balancer.
"""

from __future__ import annotations

from collections.abc import Iterable

from seaway.core.config import Backend, EndpointView
from seaway.model.objects import Node, Service, ServicePort

# Well-known label (k8s.io/api core/v1 LabelNodeExcludeBalancers).
EXCLUDE_BALANCERS_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# The taint the cluster autoscaler puts on a node it is about to delete
# (cluster-autoscaler utils/taints ToBeDeletedTaint); kube-proxy reads it too (KEP-3836).
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
# The values Go's strconv.ParseBool reads; the controller parses the label's value
# with it: "false" keeps the node, "true" or an unreadable value excludes it.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

REASON_DELETING = "node is being deleted"
REASON_EXCLUDED = f"node is labelled {EXCLUDE_BALANCERS_LABEL}"
REASON_TAINTED = f"node is tainted {TO_BE_DELETED_TAINT}"
REASON_NO_ADDRESS = "node has no InternalIP"


def node_exclusion(node: Node) -> str:
    """Why ``node`` is not a load balancer backend, or "" when it is one."""
    if node.meta.deletion_timestamp:
        return REASON_DELETING
    label = node.meta.labels.get(EXCLUDE_BALANCERS_LABEL)
    if label is not None and (label in _GO_TRUE or label not in _GO_FALSE):
        return REASON_EXCLUDED
    if is_tainted_for_deletion(node):
        return REASON_TAINTED
    return ""


def is_tainted_for_deletion(node: Node) -> bool:
    """Whether the cluster autoscaler marked ``node`` for deletion (any effect)."""
    return any(taint.key == TO_BE_DELETED_TAINT for taint in node.taints)


def node_backends(
    port: ServicePort, nodes: Iterable[Node]
) -> tuple[tuple[Backend, ...], tuple[EndpointView, ...]]:
    """The eligible Nodes' InternalIP at ``port``'s nodePort, and a view of every Node.

    Nodes come sorted by name. Without a nodePort there are no backends (the caller
    says why).
    """
    backends: list[Backend] = []
    views: list[EndpointView] = []
    node_port = port.node_port or 0
    for node in sorted(nodes, key=lambda n: n.meta.name):
        address = node.address("InternalIP") or ""
        reason = node_exclusion(node) or ("" if address else REASON_NO_ADDRESS)
        if node_port == 0 and not reason:
            reason = "the Service port has no nodePort"
        name = node.meta.name
        views.append(
            EndpointView(
                address=address,
                port=node_port,
                name=name,
                node=name,
                zone=node.zone,
                ready=not node.unschedulable,
                serving=True,
                terminating=bool(node.meta.deletion_timestamp),
                usable=not reason,
                reason=reason,
            )
        )
        if not reason:
            backends.append(
                Backend(address=address, port=node_port, name=name, node=name, zone=node.zone)
            )
    return tuple(backends), tuple(views)


def nodes_mode_problem(service: Service, port: ServicePort) -> str:
    """Why nodes mode cannot serve ``port`` ("" when it can)."""
    if port.node_port is None:
        return (
            f"port {port.port}/{port.protocol} has no nodePort: nodes mode needs "
            "spec.ports[].nodePort (type NodePort or LoadBalancer)"
        )
    return ""

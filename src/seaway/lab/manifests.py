"""The lab's cluster as manifests: Service, EndpointSlice and Node, as the controllers keep them.

Services with ``ingress: true`` also get an L7 route: seaway's IngressClass, an
Ingress (host ``NAME.lab``) and the ClusterIP Service it routes to (``NAME-http``,
the same pods); seaway serves every Ingress on the load balancer's address, port 8080.

Rendering is pure (:func:`render_manifests`); :func:`write_manifests` writes the
documents atomically into the directory that ``seaway run -f DIR`` watches, and
:func:`cluster_state` reads them back through seaway's own parser, so the lab's
kube-proxy rules come from the same validated objects seaway serves.

EndpointSlice conditions follow the EndpointSlice controller
(pkg/controller/util/endpointslice, KEP-1672): a pod is listed once it has an
address; ``serving`` is the pod's Ready condition (its readiness probe), ``terminating``
is whether the pod has a deletionTimestamp, and ``ready`` is serving and not
terminating.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from seaway.lab.spec import LabSpec, ServiceSpec
from seaway.model.annotations import BACKENDS
from seaway.model.cluster import ClusterState
from seaway.model.objects import SERVICE_NAME_LABEL, ZONE_LABEL
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

MANIFEST_FILE = "lab.yaml"
PORT_NAME = "http"
APP_LABEL = "app"
# The lab's L7 routes (Services with ``ingress: true``): seaway's IngressClass, and the
# one listener every served Ingress shares (SeawayConfig spec.ingress), on the load
# balancer's address. 8080 is seaway's default Ingress port.
INGRESS_CLASS = "seaway"
INGRESS_CONTROLLER = "seaway.io/ingress-controller"
INGRESS_PORT = 8080


@dataclass(frozen=True, slots=True)
class PodEndpoint:
    """What the EndpointSlice controller reads from one pod."""

    name: str
    deployment: str
    address: str
    node: str
    zone: str
    serving: bool  # the Ready condition: the readiness probe passes
    terminating: bool  # deletionTimestamp set

    @property
    def ready(self) -> bool:
        return self.serving and not self.terminating


@dataclass(frozen=True, slots=True)
class NodeView:
    """A Node as the lab shows it: its address, zone and taints (key, effect)."""

    name: str
    address: str
    zone: str
    taints: tuple[tuple[str, str], ...] = ()
    unschedulable: bool = False


def render_service(service: ServiceSpec, target_port: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": {APP_LABEL: service.deployment},
        "clusterIP": service.cluster_ip,
        "loadBalancerIP": service.load_balancer_ip,
        "externalTrafficPolicy": service.external_traffic_policy,
        "ports": [
            {
                "name": PORT_NAME,
                "protocol": "TCP",
                "port": service.port,
                "targetPort": target_port,
                "nodePort": service.node_port,
            }
        ],
    }
    if service.health_check_node_port is not None:
        spec["healthCheckNodePort"] = service.health_check_node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": "default",
            "annotations": {BACKENDS: service.backends, **dict(service.annotations)},
        },
        "spec": spec,
    }


def render_endpoint_slice(
    service: ServiceSpec, target_port: int, pods: Iterable[PodEndpoint]
) -> dict[str, Any]:
    endpoints = [
        {
            "addresses": [pod.address],
            "conditions": {
                "ready": pod.ready,
                "serving": pod.serving,
                "terminating": pod.terminating,
            },
            "nodeName": pod.node,
            "zone": pod.zone,
            "targetRef": {"kind": "Pod", "namespace": "default", "name": pod.name},
        }
        for pod in sorted(pods, key=lambda p: p.name)
        if pod.deployment == service.deployment
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service.name}-lab",
            "namespace": "default",
            "labels": {SERVICE_NAME_LABEL: service.name},
        },
        "addressType": "IPv4",
        "ports": [{"name": PORT_NAME, "protocol": "TCP", "port": target_port}],
        "endpoints": endpoints,
    }


def ingress_service_name(service: ServiceSpec) -> str:
    """The ClusterIP Service an Ingress for ``service`` routes to: ``NAME-http``."""
    return f"{service.name}-http"


def ingress_host(service: ServiceSpec) -> str:
    """The host of ``service``'s Ingress rule: ``NAME.lab``."""
    return f"{service.name}.lab"


def ingress_address(spec: LabSpec) -> tuple[str, int]:
    """Where seaway serves the lab's Ingresses: the load balancer's address, port 8080."""
    return spec.load_balancer.address, INGRESS_PORT


def render_ingress_objects(
    service: ServiceSpec, target_port: int, pods: Iterable[PodEndpoint]
) -> list[dict[str, Any]]:
    """An Ingress for ``service`` and what it routes to.

    An Ingress names a Service that is usually of type ClusterIP, and an ingress
    controller sends to that Service's endpoints, the pods, per request; the
    LoadBalancer Service may send to the nodes (``backends: nodes``), so the Ingress
    gets a ClusterIP Service of its own, ``NAME-http``, selecting the same pods, with
    ``seaway.io/backends: pods``, and its EndpointSlice.
    """
    companion = replace(service, name=ingress_service_name(service))
    http_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": companion.name,
            "namespace": "default",
            "annotations": {BACKENDS: "pods"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: service.deployment},
            "ports": [
                {
                    "name": PORT_NAME,
                    "protocol": "TCP",
                    "port": service.port,
                    "targetPort": target_port,
                }
            ],
        },
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": service.name, "namespace": "default"},
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "rules": [
                {
                    "host": ingress_host(service),
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {
                                        "name": companion.name,
                                        "port": {"number": service.port},
                                    }
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }
    return [http_service, render_endpoint_slice(companion, target_port, pods), ingress]


def render_node(node: NodeView) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {ZONE_LABEL: node.zone}},
        "spec": {},
        "status": {"addresses": [{"type": "InternalIP", "address": node.address}]},
    }
    if node.taints:
        doc["spec"]["taints"] = [{"key": k, "effect": e} for k, e in node.taints]
    if node.unschedulable:
        doc["spec"]["unschedulable"] = True
    return doc


def render_lb_settings(spec: LabSpec) -> list[dict[str, Any]]:
    """The load balancer's own objects: its address pool and settings for the lab."""
    addresses = [spec.load_balancer.address, *spec.extra_lb_addresses]
    # A node that drops SYNs (policy Local without local pods) must not stall a
    # connection for the default 2 s; the lab's links answer in microseconds.
    settings: dict[str, Any] = {"adminAddress": "127.0.0.1:9980", "connectTimeoutSeconds": 0.5}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": {"name": "lab", "namespace": "default"},
            "spec": {"addresses": [f"{a}/32" for a in addresses]},
        },
        {
            "apiVersion": "seaway.io/v1alpha1",
            "kind": "SeawayConfig",
            "metadata": {"name": "seaway"},
            "spec": settings,
        },
    ]
    if any(s.ingress for s in spec.services):
        address, port = ingress_address(spec)
        settings["ingress"] = {"address": address, "port": port}
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": INGRESS_CLASS},
                "spec": {"controller": INGRESS_CONTROLLER},
            }
        )
    return docs


def render_manifests(
    spec: LabSpec, pods: Sequence[PodEndpoint], nodes: Sequence[NodeView]
) -> list[dict[str, Any]]:
    """Every object of the lab's cluster, in a stable order."""
    docs = render_lb_settings(spec)
    for service in spec.services:
        target = spec.deployment(service.deployment).container_port
        docs.append(render_service(service, target))
        docs.append(render_endpoint_slice(service, target, pods))
        if service.ingress:
            docs.extend(render_ingress_objects(service, target, pods))
    docs.extend(render_node(node) for node in sorted(nodes, key=lambda n: n.name))
    return docs


def manifest_text(docs: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def write_manifests(directory: Path, docs: Sequence[dict[str, Any]]) -> Path:
    """Write ``docs`` to ``directory/lab.yaml`` atomically (a reader never sees half)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST_FILE
    tmp = directory / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(manifest_text(docs))
    os.replace(tmp, path)
    return path


def cluster_state(docs: Sequence[dict[str, Any]]) -> ClusterState:
    """The ClusterState seaway reads from ``docs`` (raises InvalidConfiguration)."""
    return build_state([parse_text(manifest_text(docs), "lab.yaml")])

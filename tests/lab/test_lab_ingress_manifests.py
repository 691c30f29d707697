"""The lab's L7 route: ``ingress: true`` writes an IngressClass, an Ingress and the
ClusterIP Service it routes to, and seaway plans an HTTP listener for it (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from seaway.core.plan import plan
from seaway.lab.manifests import (
    INGRESS_PORT,
    NodeView,
    PodEndpoint,
    cluster_state,
    render_manifests,
)
from seaway.lab.spec import LabSpecError, default_lab_text, load_lab, parse_lab

SPEC = load_lab(None)
NODES = [NodeView(n.name, n.address, n.zone) for n in SPEC.nodes]
PODS = [
    PodEndpoint("web-1", "web", "100.64.1.2", "node-a", "zone-a", True, False),
    PodEndpoint("web-2", "web", "100.64.2.2", "node-b", "zone-b", True, False),
    PodEndpoint("web-3", "web", "100.64.1.3", "node-a", "zone-a", False, False),
]


def test_lab_yaml_asks_for_an_ingress_per_service() -> None:
    text = default_lab_text().replace(
        "    externalTrafficPolicy: Cluster\n",
        "    externalTrafficPolicy: Cluster\n    ingress: true\n",
    )
    spec = parse_lab(text)
    assert [s.ingress for s in spec.services] == [True, False]
    bad = default_lab_text().replace(
        "    externalTrafficPolicy: Cluster\n", "    externalTrafficPolicy: Cluster\n"
        "    ingress: yes-please\n")
    with pytest.raises(LabSpecError, match=r"services\[0\]\.ingress: 'yes-please' must be"):
        parse_lab(bad)


def test_no_ingress_objects_unless_asked() -> None:
    kinds = [d["kind"] for d in render_manifests(SPEC, PODS, NODES)]
    assert "Ingress" not in kinds and "IngressClass" not in kinds
    config = plan(cluster_state(render_manifests(SPEC, PODS, NODES)), {})
    assert not config.http_listeners


def test_ingress_routes_to_the_pods_on_the_load_balancer_address() -> None:
    spec = replace(SPEC, services=tuple(
        replace(s, ingress=s.name == "web") for s in SPEC.services))
    docs = render_manifests(spec, PODS, NODES)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert ("IngressClass", "seaway") in kinds
    assert ("Ingress", "web") in kinds and ("Ingress", "web-local") not in kinds
    config = plan(cluster_state(docs), {})
    listener_key = f"HTTP/198.18.0.99:{INGRESS_PORT}"
    assert set(config.http_listeners) == {listener_key}
    routes = config.http_listeners[listener_key].routes
    assert set(routes.exact_hosts) == {"web.lab"}
    backend_set = config.http_backend_sets["default/web-http:80/TCP"]
    # The pods themselves (serving ones), balanced per request.
    assert backend_set.mode == "pods"
    assert {b.address for b in backend_set.backends} == {"100.64.1.2", "100.64.2.2"}
    assert backend_set.algorithm == "round-robin"
    # The LoadBalancer Service still sends to the nodes.
    assert config.backend_sets["default/web:80/TCP"].mode == "nodes"

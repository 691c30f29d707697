"""select_endpoints: one named case per kube-proxy rule and fallback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from seaway.core.config import EndpointView, join_host_port
from seaway.core.endpoints import (
    REASON_DUPLICATE,
    REASON_FQDN,
    REASON_NO_PORT,
    REASON_NOT_READY,
    REASON_OTHER_NODE,
    REASON_OTHER_ZONE,
    REASON_TERMINATING,
    REASON_TERMINATING_NOT_SERVING,
    REASON_WRONG_FAMILY,
    select_endpoints,
)
from seaway.model.objects import (
    TOPOLOGY_HINTS_ANNOTATION,
    TOPOLOGY_MODE_ANNOTATION,
    ZONE_LABEL,
    AddressType,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    Service,
    ServicePort,
)

HTTP = ServicePort(port=80, name="http", target_port=8080)
SLICE_PORTS = (EndpointPort(port=8080, name="http"),)


def ep(
    address: str | tuple[str, ...],
    *,
    ready: bool | None = None,
    serving: bool | None = None,
    terminating: bool | None = None,
    node: str | None = None,
    zone: str | None = None,
    hints: tuple[str, ...] = (),
    ref: str | None = None,
) -> Endpoint:
    addresses = (address,) if isinstance(address, str) else address
    return Endpoint(
        addresses=addresses,
        conditions=EndpointConditions(ready=ready, serving=serving, terminating=terminating),
        node_name=node,
        zone=zone,
        hints_for_zones=hints,
        target_ref=ref,
    )


def es(
    *endpoints: Endpoint,
    name: str = "web-1",
    ports: tuple[EndpointPort, ...] = SLICE_PORTS,
    family: AddressType = "IPv4",
) -> EndpointSlice:
    return EndpointSlice(
        meta=ObjectMeta(name=name),
        service_name="web",
        address_type=family,
        endpoints=endpoints,
        ports=ports,
    )


def svc(
    *,
    etp: str = "Cluster",
    itp: str = "Cluster",
    annotations: Mapping[str, str] | None = None,
    distribution: str | None = None,
) -> Service:
    return Service(
        meta=ObjectMeta(name="web", annotations=MappingProxyType(dict(annotations or {}))),
        type="LoadBalancer",
        ports=(HTTP,),
        external_traffic_policy=etp,  # type: ignore[arg-type]
        internal_traffic_policy=itp,  # type: ignore[arg-type]
        traffic_distribution=distribution,
    )


AUTO = {TOPOLOGY_MODE_ANNOTATION: "Auto"}
ZONE_A = {ZONE_LABEL: "a"}


@dataclass
class Case:
    """Inputs, and the expected sets as ``ip:port`` keys (``local`` None: same as cluster)."""

    slices: tuple[EndpointSlice, ...]
    cluster: tuple[str, ...]
    local: tuple[str, ...] | None = None
    has_any: bool = True
    service: Service = field(default_factory=svc)
    port: ServicePort = HTTP
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    external: str = "cluster"  # which set external traffic uses
    internal: str = "cluster"
    reasons: Mapping[str, str] = field(default_factory=dict)  # key -> reason prefix
    topology: bool = False


CASES = {
    "all-ready-are-used": Case(
        (es(ep("10.0.0.1", ready=True), ep("10.0.0.2", ready=True)),),
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "absent-conditions-read-as-ready": Case((es(ep("10.0.0.1")),), cluster=("10.0.0.1:8080",)),
    "not-ready-is-excluded": Case(
        (es(ep("10.0.0.1", ready=True), ep("10.0.0.2", ready=False)),),
        cluster=("10.0.0.1:8080",),
        reasons={"10.0.0.2:8080": REASON_NOT_READY},
    ),
    "no-endpoints-at-all": Case((), cluster=(), has_any=False),
    "empty-slice": Case((es(),), cluster=(), has_any=False),
    "fallback-to-serving-terminating-when-none-ready": Case(
        (
            es(
                ep("10.0.0.1", ready=False, serving=True, terminating=True),
                ep("10.0.0.2", ready=False, serving=False, terminating=True),
                ep("10.0.0.3", ready=False, serving=False, terminating=False),
            ),
        ),
        cluster=("10.0.0.1:8080",),
        reasons={
            "10.0.0.2:8080": REASON_TERMINATING_NOT_SERVING,
            "10.0.0.3:8080": REASON_NOT_READY,
        },
    ),
    "serving-terminating-unused-while-ready-exist": Case(
        (
            es(
                ep("10.0.0.1", ready=True),
                ep("10.0.0.2", ready=False, serving=True, terminating=True),
            ),
        ),
        cluster=("10.0.0.1:8080",),
        reasons={"10.0.0.2:8080": REASON_TERMINATING},
    ),
    "terminating-not-serving-is-never-used": Case(
        (es(ep("10.0.0.1", ready=False, serving=False, terminating=True)),),
        cluster=(),
        has_any=False,
        reasons={"10.0.0.1:8080": REASON_TERMINATING_NOT_SERVING},
    ),
    "absent-serving-reads-as-serving-in-fallback": Case(
        (es(ep("10.0.0.1", ready=False, terminating=True)),), cluster=("10.0.0.1:8080",)
    ),
    "absent-terminating-reads-as-not-terminating": Case(
        (es(ep("10.0.0.1", ready=False, serving=True)),),
        cluster=(),
        has_any=False,
        reasons={"10.0.0.1:8080": REASON_NOT_READY},
    ),
    "only-first-address-is-used": Case(
        (es(ep(("10.0.0.1", "10.0.0.9"))),), cluster=("10.0.0.1:8080",)
    ),
    "wrong-family-for-slice-is-skipped": Case(
        (es(ep("10.0.0.1"), ep("fd00::1")),),
        cluster=("10.0.0.1:8080",),
        reasons={"[fd00::1]:8080": REASON_WRONG_FAMILY},
    ),
    "ipv6-slice-canonical-and-numeric-order": Case(
        (es(ep("fd00::a"), ep("fd00:0:0::9"), ep("10.0.0.1"), family="IPv6"),),
        cluster=("[fd00::9]:8080", "[fd00::a]:8080"),
        reasons={"10.0.0.1:8080": REASON_WRONG_FAMILY},
    ),
    "ordered-by-ip-as-address-not-text": Case(
        (es(ep("10.0.0.10"), ep("10.0.0.9"), ep("9.0.0.1")),),
        cluster=("9.0.0.1:8080", "10.0.0.9:8080", "10.0.0.10:8080"),
    ),
    "duplicate-across-slices-prefers-ready-copy": Case(
        (
            es(ep("10.0.0.1", ready=False), name="web-a"),
            es(ep("10.0.0.1", ready=True), name="web-b"),
        ),
        cluster=("10.0.0.1:8080",),
        reasons={"10.0.0.1:8080": REASON_DUPLICATE},
    ),
    "duplicate-ready-copies-collapse": Case(
        (es(ep("10.0.0.1"), name="web-a"), es(ep("10.0.0.1"), name="web-b")),
        cluster=("10.0.0.1:8080",),
    ),
    "slice-port-matched-by-named-target-port": Case(
        (es(ep("10.0.0.1"), ports=(EndpointPort(port=9090, name="web"),)),),
        port=ServicePort(port=80, name="", target_port="web"),
        cluster=("10.0.0.1:9090",),
    ),
    "slice-without-matching-port-gives-nothing": Case(
        (es(ep("10.0.0.1"), ports=(EndpointPort(port=9090, name="metrics"),)),),
        cluster=(),
        has_any=False,
        reasons={"10.0.0.1:0": REASON_NO_PORT},
    ),
    "slice-port-of-other-protocol-does-not-match": Case(
        (es(ep("10.0.0.1"), ports=(EndpointPort(port=8080, name="http", protocol="UDP"),)),),
        cluster=(),
        has_any=False,
    ),
    "slice-port-zero-is-ignored": Case(
        (es(ep("10.0.0.1"), ports=(EndpointPort(port=0, name="http"),)),),
        cluster=(),
        has_any=False,
    ),
    "fqdn-slice-is-skipped": Case(
        (es(ep("db.example.com"), family="FQDN"),),
        cluster=(),
        has_any=False,
        reasons={"db.example.com:8080": REASON_FQDN},
    ),
    "etp-local-uses-ready-endpoints-on-this-node": Case(
        (es(ep("10.0.0.1", node="n1"), ep("10.0.0.2", node="n2"), ep("10.0.0.3", node="n1")),),
        service=svc(etp="Local"),
        node="n1",
        cluster=("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"),
        local=("10.0.0.1:8080", "10.0.0.3:8080"),
        external="local",
        reasons={"10.0.0.2:8080": REASON_OTHER_NODE},
    ),
    "etp-local-without-local-endpoints-is-empty-but-has-any": Case(
        (es(ep("10.0.0.2", node="n2")),),
        service=svc(etp="Local"),
        node="n1",
        cluster=("10.0.0.2:8080",),
        local=(),
        external="local",
        reasons={"10.0.0.2:8080": REASON_OTHER_NODE},
    ),
    "etp-local-falls-back-to-local-serving-terminating": Case(
        (
            es(
                ep("10.0.0.1", ready=False, serving=True, terminating=True, node="n1"),
                ep("10.0.0.2", ready=True, node="n2"),
            ),
        ),
        service=svc(etp="Local"),
        node="n1",
        cluster=("10.0.0.2:8080",),
        local=("10.0.0.1:8080",),
        external="local",
    ),
    "etp-local-not-ready-local-endpoint-is-not-used": Case(
        (es(ep("10.0.0.1", ready=False, node="n1"), ep("10.0.0.2", node="n2")),),
        service=svc(etp="Local"),
        node="n1",
        cluster=("10.0.0.2:8080",),
        local=(),
        external="local",
        reasons={"10.0.0.1:8080": REASON_NOT_READY},
    ),
    "itp-local-selects-local-for-internal-only": Case(
        (es(ep("10.0.0.1", node="n1"), ep("10.0.0.2", node="n2")),),
        service=svc(itp="Local"),
        node="n1",
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
        local=("10.0.0.1:8080",),
        internal="local",
    ),
    "outside-cluster-local-is-cluster-set": Case(
        (es(ep("10.0.0.1", node="n1"), ep("10.0.0.2", node="n2")),),
        service=svc(etp="Local", itp="Local"),
        node=None,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
        external="local",
        internal="local",
    ),
    "topology-mode-auto-keeps-zone-hinted": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(annotations=AUTO),
        node="n1",
        labels=ZONE_A,
        cluster=("10.0.0.1:8080",),
        local=(),
        reasons={"10.0.0.2:8080": REASON_OTHER_ZONE},
        topology=True,
    ),
    "topology-deprecated-annotation-lowercase-auto": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(annotations={TOPOLOGY_HINTS_ANNOTATION: "auto"}),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080",),
        topology=True,
    ),
    "topology-mode-annotation-wins-over-deprecated": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(
            annotations={TOPOLOGY_MODE_ANNOTATION: "Disabled", TOPOLOGY_HINTS_ANNOTATION: "Auto"}
        ),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-empty-mode-annotation-hides-deprecated": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(annotations={TOPOLOGY_MODE_ANNOTATION: "", TOPOLOGY_HINTS_ANNOTATION: "Auto"}),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-other-annotation-value-is-off": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(annotations={TOPOLOGY_MODE_ANNOTATION: "PreferZone"}),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-traffic-distribution-prefer-close": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(distribution="PreferClose"),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080",),
        topology=True,
    ),
    "topology-hints-ignored-without-request": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-off-when-node-has-no-zone": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2", hints=("b",))),),
        service=svc(annotations=AUTO),
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-off-when-a-ready-endpoint-lacks-hints": Case(
        (es(ep("10.0.0.1", hints=("a",)), ep("10.0.0.2")),),
        service=svc(annotations=AUTO),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-off-when-nothing-hinted-for-this-zone": Case(
        (es(ep("10.0.0.1", hints=("b",)), ep("10.0.0.2", hints=("c",))),),
        service=svc(annotations=AUTO),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-ignores-unready-endpoints-without-hints": Case(
        (
            es(
                ep("10.0.0.1", hints=("a",)),
                ep("10.0.0.2", hints=("b",)),
                ep("10.0.0.3", ready=False),
            ),
        ),
        service=svc(annotations=AUTO),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080",),
        topology=True,
    ),
    "topology-not-applied-in-terminating-fallback": Case(
        (
            es(
                ep("10.0.0.1", ready=False, terminating=True, hints=("a",)),
                ep("10.0.0.2", ready=False, terminating=True, hints=("b",)),
            ),
        ),
        service=svc(annotations=AUTO),
        labels=ZONE_A,
        cluster=("10.0.0.1:8080", "10.0.0.2:8080"),
    ),
    "topology-never-filters-the-local-set": Case(
        (es(ep("10.0.0.1", hints=("a",), node="n2"), ep("10.0.0.2", hints=("b",), node="n1")),),
        service=svc(etp="Local", annotations=AUTO),
        node="n1",
        labels=ZONE_A,
        cluster=("10.0.0.1:8080",),
        local=("10.0.0.2:8080",),
        external="local",
        reasons={"10.0.0.1:8080": REASON_OTHER_NODE},
        topology=True,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_select_endpoints(case: Case) -> None:
    result = select_endpoints(case.service, case.port, case.slices, case.node, case.labels)

    local = case.cluster if case.local is None else case.local
    sets = {"cluster": case.cluster, "local": local}
    assert tuple(b.key for b in result.cluster) == case.cluster
    assert tuple(b.key for b in result.local) == local
    assert tuple(b.key for b in result.external) == sets[case.external]
    assert tuple(b.key for b in result.internal) == sets[case.internal]
    assert result.has_any is case.has_any
    assert result.topology is case.topology

    external_keys = {b.key for b in result.external}
    for view in result.views:
        if view.usable:
            assert key_of(view) in external_keys and view.reason == ""
        else:
            assert view.reason != ""
    assert sorted(key_of(v) for v in result.views if v.usable) == sorted(external_keys)
    for key, reason in case.reasons.items():
        found = [v.reason for v in result.views if not v.usable and key_of(v) == key]
        assert found, f"no unusable view for {key}"
        assert any(r.startswith(reason) for r in found), found


def key_of(view: EndpointView) -> str:
    return join_host_port(view.address, view.port)


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_backend_carries_node_zone_and_pod_name() -> None:
    slices = (
        es(
            ep("10.0.0.1", node="n1", zone="a", ref="Pod/default/web-abc"),
            ep("10.0.0.2", node="n2"),
        ),
    )
    result = select_endpoints(svc(), HTTP, slices, None, {})
    first, second = result.cluster
    assert (first.name, first.node, first.zone, first.port) == ("web-abc", "n1", "a", 8080)
    assert (second.name, second.node, second.zone) == ("10.0.0.2", "n2", None)


def test_views_report_conditions_as_interpreted_in_address_order() -> None:
    slices = (
        es(
            ep("10.0.0.3", ready=False, terminating=True),
            ep("10.0.0.1"),
            ep("10.0.0.2", ready=False, serving=False),
        ),
    )
    views = select_endpoints(svc(), HTTP, slices, None, {}).views
    assert [v.address for v in views] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [(v.ready, v.serving, v.terminating) for v in views] == [
        (True, True, False),
        (False, False, False),
        (False, True, True),
    ]
    assert [v.usable for v in views] == [True, False, False]


def test_fallback_flags_are_reported() -> None:
    slices = (es(ep("10.0.0.1", ready=False, terminating=True, node="n1")),)
    result = select_endpoints(svc(etp="Local"), HTTP, slices, "n1", {})
    assert result.cluster_uses_terminating and result.local_uses_terminating
    ready = select_endpoints(svc(), HTTP, (es(ep("10.0.0.1")),), "n1", {})
    assert not ready.cluster_uses_terminating and not ready.local_uses_terminating


def test_same_input_gives_equal_result() -> None:
    slices = (es(ep("10.0.0.2"), ep("10.0.0.1", ready=False)),)
    one = select_endpoints(svc(), HTTP, slices, "n1", ZONE_A)
    two = select_endpoints(svc(), HTTP, slices, "n1", ZONE_A)
    assert one == two

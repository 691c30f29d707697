"""plan: backend sets, listeners and Service views for a small cluster."""

from __future__ import annotations

import dataclasses
import ipaddress
from types import MappingProxyType

from seaway.core.config import DesiredConfig
from seaway.core.plan import plan
from seaway.model.annotations import (
    ACCEPT_PROXY_PROTOCOL,
    ALGORITHM,
    HASH_ON,
    METALLB_LOAD_BALANCER_IPS,
    PROXY_PROTOCOL,
)
from seaway.model.cluster import ClusterState
from seaway.model.objects import (
    ZONE_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    IPAddressPool,
    Node,
    ObjectMeta,
    SeawaySettings,
    Service,
    ServicePort,
)

WEB = Service(
    meta=ObjectMeta(
        name="web",
        annotations=MappingProxyType(
            {
                ALGORITHM: "round-robin",
                HASH_ON: "source-ip",
                PROXY_PROTOCOL: "v2",
                ACCEPT_PROXY_PROTOCOL: "true",
            }
        ),
    ),
    type="LoadBalancer",
    ports=(
        ServicePort(port=80, name="http", target_port="web"),
        ServicePort(port=53, name="dns", protocol="UDP", target_port=5353),
    ),
    external_ips=("127.0.0.50",),
    load_balancer_source_ranges=("10.0.0.0/8", "192.168.1.7/24"),
    session_affinity="ClientIP",
    session_affinity_timeout=600,
)
API = Service(
    meta=ObjectMeta(name="api"),
    type="LoadBalancer",
    ports=(
        ServicePort(port=443, name="https", target_port=8443),
        ServicePort(port=9999, name="sig", protocol="SCTP"),
    ),
    external_traffic_policy="Local",
)
OTHER = Service(
    meta=ObjectMeta(name="other"),
    type="LoadBalancer",
    ports=(ServicePort(port=80, name="http"),),
    load_balancer_class="example.com/lb",
)
EXTERNAL_NAME = Service(meta=ObjectMeta(name="db"), type="ExternalName")
INTERNAL = Service(
    meta=ObjectMeta(name="cache"), type="ClusterIP", ports=(ServicePort(port=6379, name="redis"),)
)


def web_slice(*extra: Endpoint) -> EndpointSlice:
    return EndpointSlice(
        meta=ObjectMeta(name="web-x1"),
        service_name="web",
        endpoints=(
            Endpoint(("10.1.0.2",), node_name="n1", target_ref="Pod/default/web-b"),
            Endpoint(("10.1.0.1",), node_name="n2", target_ref="Pod/default/web-a"),
            Endpoint(("10.1.0.3",), EndpointConditions(ready=False), node_name="n2"),
            *extra,
        ),
        # Hand-written: the TCP port is named after the container port (targetPort "web").
        ports=(EndpointPort(port=8080, name="web"), EndpointPort(5353, "dns", "UDP")),
    )


def api_slice(*extra: Endpoint) -> EndpointSlice:
    return EndpointSlice(
        meta=ObjectMeta(name="api-x1"),
        service_name="api",
        endpoints=(
            Endpoint(("10.2.0.1",), node_name="n1"),
            Endpoint(("10.2.0.2",), node_name="n2"),
            *extra,
        ),
        ports=(EndpointPort(port=8443, name="https"), EndpointPort(9999, "sig", "SCTP")),
    )


def state(
    web: EndpointSlice | None = None,
    api: EndpointSlice | None = None,
    *,
    extra: tuple[Service, ...] = (),
    settings: SeawaySettings | None = None,
) -> ClusterState:
    services = (WEB, API, OTHER, EXTERNAL_NAME, INTERNAL, *extra)
    return ClusterState(
        services=MappingProxyType({s.key: s for s in services}),
        slices_by_service=MappingProxyType(
            {"default/web": (web or web_slice(),), "default/api": (api or api_slice(),)}
        ),
        nodes=MappingProxyType(
            {
                "n1": Node(meta=ObjectMeta(name="n1", namespace="", labels={ZONE_LABEL: "a"})),
                "n2": Node(meta=ObjectMeta(name="n2", namespace="", labels={ZONE_LABEL: "b"})),
            }
        ),
        pools=MappingProxyType(
            {
                "metallb-system/main": IPAddressPool(
                    meta=ObjectMeta(name="main", namespace="metallb-system"),
                    addresses=("127.241.0.0/24",),
                )
            }
        ),
        settings=settings or SeawaySettings(node_name="n1", maglev_table_size=251),
    )


def test_listeners_for_each_address_and_port() -> None:
    config = plan(state(), {})
    assert list(config.listeners) == sorted(
        [
            "TCP/127.0.0.50:80",
            "UDP/127.0.0.50:53",
            "TCP/127.241.0.0:443",  # api sorts first and gets the lowest address
            "TCP/127.241.0.1:80",
            "UDP/127.241.0.1:53",
        ]
    )
    listener = config.listeners["TCP/127.241.0.1:80"]
    assert listener.backend_set == "default/web:80/TCP"
    assert (listener.service, listener.port_name) == ("default/web", "http")
    assert listener.accept_proxy_protocol is True
    assert listener.source_ranges == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.0/24"),
    )
    udp = config.listeners["UDP/127.241.0.1:53"]
    assert (udp.protocol, udp.backend_set) == ("UDP", "default/web:53/UDP")
    api = config.listeners["TCP/127.241.0.0:443"]
    assert api.source_ranges == () and api.accept_proxy_protocol is False


def test_backend_sets_resolve_named_target_port_and_annotations() -> None:
    config = plan(state(), {})
    web = config.backend_sets["default/web:80/TCP"]
    assert [(b.address, b.port, b.name) for b in web.backends] == [
        ("10.1.0.1", 8080, "web-a"),
        ("10.1.0.2", 8080, "web-b"),
    ]
    assert (web.algorithm, web.hash_on, web.proxy_protocol) == ("round-robin", "source-ip", "v2")
    assert web.affinity_timeout == 600.0
    assert web.maglev_table_size == 251
    assert [(v.address, v.usable, v.reason) for v in web.endpoints] == [
        ("10.1.0.1", True, ""),
        ("10.1.0.2", True, ""),
        ("10.1.0.3", False, "not ready"),
    ]
    dns = config.backend_sets["default/web:53/UDP"]
    assert (dns.protocol, [b.port for b in dns.backends]) == ("UDP", [5353, 5353])


def test_defaults_and_traffic_policy_local_on_this_node() -> None:
    config = plan(state(), {})
    api = config.backend_sets["default/api:443/TCP"]
    assert (api.algorithm, api.hash_on, api.proxy_protocol) == ("maglev", "5-tuple", None)
    assert api.affinity_timeout is None
    # externalTrafficPolicy Local on node n1: only n1's endpoint.
    assert [b.address for b in api.backends] == ["10.2.0.1"]
    assert api.endpoints[1].reason == "other node under traffic policy Local"


def test_empty_backend_set_says_why() -> None:
    lone = EndpointSlice(
        meta=ObjectMeta(name="api-x1"),
        service_name="api",
        endpoints=(Endpoint(("10.2.0.2",), node_name="n2"),),
        ports=(EndpointPort(port=8443, name="https"),),
    )
    api = plan(state(api=lone), {}).backend_sets["default/api:443/TCP"]
    assert api.backends == ()
    assert "no ready endpoint on node n1" in api.empty_reason
    cache = plan(state(), {}).backend_sets["default/cache:6379/TCP"]
    assert cache.backends == () and cache.empty_reason == "no endpoints"


def test_service_views() -> None:
    config = plan(state(), {})
    web = config.services["default/web"]
    assert web.type == "LoadBalancer"
    assert web.ingress == ("127.241.0.1",)
    assert web.ports == ("default/web:80/TCP", "default/web:53/UDP")
    assert set(web.listeners) == {
        "TCP/127.241.0.1:80",
        "UDP/127.241.0.1:53",
        "TCP/127.0.0.50:80",
        "UDP/127.0.0.50:53",
    }
    assert web.message == ""
    api = config.services["default/api"]
    assert api.ports == ("default/api:443/TCP",)
    assert "SCTP" in api.message
    assert "default/api:9999/SCTP" not in config.backend_sets


def test_other_class_gets_a_view_and_no_listener() -> None:
    config = plan(state(), {})
    other = config.services["default/other"]
    assert other.listeners == () and other.ingress == ()
    assert "example.com/lb" in other.message
    assert not any(lst.service == "default/other" for lst in config.listeners.values())


def test_external_name_and_cluster_ip_get_no_listener() -> None:
    config = plan(state(), {})
    db = config.services["default/db"]
    assert (db.ports, db.listeners, db.ingress) == ((), (), ())
    assert not any(s.service == "default/db" for s in config.backend_sets.values())
    cache = config.services["default/cache"]
    assert cache.ports == ("default/cache:6379/TCP",)
    assert (cache.listeners, cache.ingress) == ((), ())


def test_previous_addresses_are_kept() -> None:
    config = plan(state(), {"default/web": ("127.241.0.9",)})
    assert config.services["default/web"].ingress == ("127.241.0.9",)
    assert "TCP/127.241.0.9:80" in config.listeners


def test_no_address_is_explained() -> None:
    wanted = Service(
        meta=ObjectMeta(
            name="wants", annotations=MappingProxyType({METALLB_LOAD_BALANCER_IPS: "10.9.9.9"})
        ),
        type="LoadBalancer",
        ports=(ServicePort(port=80),),
    )
    view = plan(state(extra=(wanted,)), {}).services["default/wants"]
    assert view.ingress == () and view.listeners == ()
    assert view.message.startswith("no address because")


def test_invalid_source_range_fails_closed() -> None:
    bad = dataclasses.replace(
        WEB,
        meta=dataclasses.replace(WEB.meta, name="bad"),
        load_balancer_source_ranges=("10.0.0.0/8", "not-a-cidr"),
    )
    config = plan(state(extra=(bad,)), {})
    view = config.services["default/bad"]
    assert view.listeners == ()
    assert "not-a-cidr" in view.message


def test_unrelated_change_leaves_other_sets_equal() -> None:
    before = plan(state(), {})
    after = plan(
        state(api=api_slice(Endpoint(("10.2.0.3",), node_name="n1"))),
        {key: view.ingress for key, view in before.services.items() if view.ingress},
    )
    assert after.backend_sets["default/api:443/TCP"] != before.backend_sets["default/api:443/TCP"]
    for key in ("default/web:80/TCP", "default/web:53/UDP", "default/cache:6379/TCP"):
        assert after.backend_sets[key] == before.backend_sets[key]
    assert after.listeners == before.listeners
    assert after.services == before.services


def test_plan_is_deterministic_and_sorted() -> None:
    one = plan(state(), {})
    two = plan(state(), {})
    assert one == two
    assert isinstance(one, DesiredConfig)
    for mapping in (one.listeners, one.backend_sets, one.services):
        assert list(mapping) == sorted(mapping)

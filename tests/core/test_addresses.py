"""allocate_addresses: requests, remembered addresses, lowest free, conflicts, stability."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from seaway.core.addresses import (
    Allocation,
    allocate_addresses,
    is_seaway_load_balancer,
    parse_range,
)
from seaway.model.annotations import METALLB_LOAD_BALANCER_IPS
from seaway.model.objects import (
    IPAddressPool,
    ObjectMeta,
    SeawaySettings,
    Service,
    ServicePort,
    ServiceType,
)


def lb(
    name: str,
    *,
    ip: str | None = None,
    ips: str | None = None,
    cls: str | None = None,
    kind: ServiceType = "LoadBalancer",
) -> Service:
    annotations = {METALLB_LOAD_BALANCER_IPS: ips} if ips is not None else {}
    return Service(
        meta=ObjectMeta(name=name, annotations=MappingProxyType(annotations)),
        type=kind,
        ports=(ServicePort(80),),
        load_balancer_ip=ip,
        load_balancer_class=cls,
    )


def pool(name: str, *addresses: str, auto: bool = True) -> IPAddressPool:
    return IPAddressPool(
        meta=ObjectMeta(name=name, namespace="metallb-system"),
        addresses=addresses,
        auto_assign=auto,
    )


def services(*items: Service) -> dict[str, Service]:
    return {s.key: s for s in items}


def pools(*items: IPAddressPool) -> dict[str, IPAddressPool]:
    return {p.meta.key: p for p in items}


@dataclass
class Case:
    services: dict[str, Service]
    addresses: Mapping[str, tuple[str, ...]]
    pools: dict[str, IPAddressPool] = field(default_factory=dict)
    previous: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)  # key -> message substring
    settings: SeawaySettings = field(default_factory=SeawaySettings)


CASES = {
    "loopback-pool-when-no-pool-skips-network-address": Case(
        services(lb("b"), lb("a")),
        addresses={"default/a": ("127.240.0.1",), "default/b": ("127.240.0.2",)},
    ),
    "loopback-range-is-inclusive-and-can-run-out": Case(
        services(lb("a"), lb("b"), lb("c")),
        settings=SeawaySettings(loopback_pool="127.0.0.10-127.0.0.11"),
        addresses={"default/a": ("127.0.0.10",), "default/b": ("127.0.0.11",)},
        messages={"default/c": "no free address"},
    ),
    "pool-cidr-hands-out-every-address-network-included": Case(
        services(lb("a"), lb("b"), lb("c"), lb("d"), lb("e")),
        pools=pools(pool("p", "10.0.0.0/30")),
        addresses={
            "default/a": ("10.0.0.0",),
            "default/b": ("10.0.0.1",),
            "default/c": ("10.0.0.2",),
            "default/d": ("10.0.0.3",),
        },
        messages={"default/e": "no free address"},
    ),
    "pool-range-with-spaces": Case(
        services(lb("a")),
        pools=pools(pool("p", "192.168.1.50 - 192.168.1.60")),
        addresses={"default/a": ("192.168.1.50",)},
    ),
    "lowest-address-across-a-pools-ranges": Case(
        services(lb("a")),
        pools=pools(pool("p", "10.0.9.0/24", "10.0.1.5-10.0.1.6")),
        addresses={"default/a": ("10.0.1.5",)},
    ),
    "first-auto-assign-pool-by-key": Case(
        services(lb("a")),
        pools=pools(pool("b-pool", "10.0.2.0/24"), pool("a-pool", "10.0.1.0/24")),
        addresses={"default/a": ("10.0.1.0",)},
    ),
    "next-pool-when-first-is-full": Case(
        services(lb("a"), lb("b")),
        pools=pools(pool("a-pool", "10.0.1.7/32"), pool("b-pool", "10.0.2.0/24")),
        addresses={"default/a": ("10.0.1.7",), "default/b": ("10.0.2.0",)},
    ),
    "non-auto-assign-pool-is-not-used-unasked": Case(
        services(lb("a")),
        pools=pools(pool("a-pool", "10.0.1.0/24", auto=False), pool("b-pool", "10.0.2.0/24")),
        addresses={"default/a": ("10.0.2.0",)},
    ),
    "no-auto-assign-pool-at-all": Case(
        services(lb("a")),
        pools=pools(pool("p", "10.0.1.0/24", auto=False)),
        addresses={},
        messages={"default/a": "no address pool has autoAssign"},
    ),
    "annotation-request-from-non-auto-pool": Case(
        services(lb("a", ips="10.0.1.20")),
        pools=pools(pool("p", "10.0.1.0/24", auto=False)),
        addresses={"default/a": ("10.0.1.20",)},
    ),
    "spec-load-balancer-ip-request": Case(
        services(lb("a", ip="10.0.1.30")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={"default/a": ("10.0.1.30",)},
    ),
    "annotation-wins-over-spec-load-balancer-ip": Case(
        services(lb("a", ip="10.0.1.30", ips="10.0.1.31")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={"default/a": ("10.0.1.31",)},
    ),
    "dual-stack-request-gives-both": Case(
        services(lb("a", ips="10.0.1.1, fd00::5")),
        pools=pools(pool("p", "10.0.1.0/24", "fd00::/120")),
        addresses={"default/a": ("10.0.1.1", "fd00::5")},
    ),
    "request-outside-every-pool": Case(
        services(lb("a", ips="10.9.9.9")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={},
        messages={"default/a": "not in any address pool"},
    ),
    "request-of-loopback-network-address-is-outside-the-pool": Case(
        services(lb("a", ip="127.240.0.0")),
        addresses={},
        messages={"default/a": "not in any address pool"},
    ),
    "request-that-is-not-an-ip": Case(
        services(lb("a", ips="ten.zero")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={},
        messages={"default/a": "not an IP address"},
    ),
    "two-requests-for-one-ip-first-by-key-wins": Case(
        services(lb("b", ip="10.0.1.9"), lb("a", ip="10.0.1.9")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={"default/a": ("10.0.1.9",)},
        messages={"default/b": "already assigned to default/a"},
    ),
    "requests-are-served-before-new-services": Case(
        services(lb("a"), lb("z", ip="10.0.1.0")),
        pools=pools(pool("p", "10.0.1.0/24")),
        addresses={"default/a": ("10.0.1.1",), "default/z": ("10.0.1.0",)},
    ),
    "previous-address-is-kept-over-a-lower-free-one": Case(
        services(lb("a")),
        pools=pools(pool("p", "10.0.1.0/24")),
        previous={"default/a": ("10.0.1.77",)},
        addresses={"default/a": ("10.0.1.77",)},
    ),
    "previous-address-outside-auto-pools-is-replaced": Case(
        services(lb("a")),
        pools=pools(pool("p", "10.0.1.0/24"), pool("q", "10.0.2.0/24", auto=False)),
        previous={"default/a": ("10.0.2.5",)},
        addresses={"default/a": ("10.0.1.0",)},
    ),
    "previous-address-taken-by-a-request-moves": Case(
        services(lb("a"), lb("b", ip="10.0.1.77")),
        pools=pools(pool("p", "10.0.1.0/24")),
        previous={"default/a": ("10.0.1.77",)},
        addresses={"default/a": ("10.0.1.0",), "default/b": ("10.0.1.77",)},
    ),
    "previous-addresses-are-avoided-by-new-services": Case(
        services(lb("a"), lb("b")),
        pools=pools(pool("p", "10.0.1.0/24")),
        previous={"default/b": ("10.0.1.0",)},
        addresses={"default/a": ("10.0.1.1",), "default/b": ("10.0.1.0",)},
    ),
    "previous-of-a-deleted-service-is-free-again": Case(
        services(lb("a")),
        pools=pools(pool("p", "10.0.1.0/24")),
        previous={"default/gone": ("10.0.1.0",)},
        addresses={"default/a": ("10.0.1.0",)},
    ),
    "other-class-and-non-load-balancer-are-skipped": Case(
        services(
            lb("a", cls="other.io/lb"),
            lb("b", cls="seaway.io/lb"),
            lb("c", kind="ClusterIP"),
            lb("d", kind="NodePort"),
        ),
        addresses={"default/b": ("127.240.0.1",)},
    ),
    "ipv6-pool": Case(
        services(lb("a"), lb("b")),
        pools=pools(pool("p", "fd00:10::/64")),
        addresses={"default/a": ("fd00:10::",), "default/b": ("fd00:10::1",)},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_allocate_addresses(case: Case) -> None:
    result = allocate_addresses(case.services, case.pools, case.settings, case.previous)
    assert dict(result.addresses) == dict(case.addresses)
    assert set(result.messages) == set(case.messages)
    for key, text in case.messages.items():
        assert text in result.messages[key]
    assert list(result.addresses) == sorted(result.addresses)


def test_stability_adding_and_removing_services_moves_no_one() -> None:
    the_pools = pools(pool("p", "10.0.1.0/24"))
    settings = SeawaySettings()
    first = allocate_addresses(services(lb("b"), lb("d"), lb("f")), the_pools, settings, {})
    assert dict(first.addresses) == {
        "default/b": ("10.0.1.0",),
        "default/d": ("10.0.1.1",),
        "default/f": ("10.0.1.2",),
    }
    # A Service sorting before all others arrives: nobody moves, it takes a free one.
    grown = allocate_addresses(
        services(lb("a"), lb("b"), lb("d"), lb("f")), the_pools, settings, first.addresses
    )
    assert {k: grown.addresses[k] for k in first.addresses} == dict(first.addresses)
    assert grown.addresses["default/a"] == ("10.0.1.3",)
    # One leaves: the others keep theirs; a newcomer gets the freed lowest address.
    shrunk = allocate_addresses(
        services(lb("a"), lb("d"), lb("f"), lb("g")), the_pools, settings, grown.addresses
    )
    for key in ("default/a", "default/d", "default/f"):
        assert shrunk.addresses[key] == grown.addresses[key]
    assert shrunk.addresses["default/g"] == ("10.0.1.0",)


def test_same_input_gives_equal_result() -> None:
    args = (services(lb("a"), lb("b", ip="10.0.1.9")), pools(pool("p", "10.0.1.0/24")))
    one = allocate_addresses(*args, SeawaySettings(), {})
    two = allocate_addresses(*args, SeawaySettings(), {})
    assert one == two
    assert isinstance(one, Allocation)


def test_huge_pools_are_not_materialised() -> None:
    taken = {f"default/s{i}": (f"10.0.0.{i}",) for i in range(50)}
    many = services(*(lb(f"s{i}") for i in range(50)), lb("new"))
    start = time.perf_counter()
    result = allocate_addresses(
        many, pools(pool("big", "10.0.0.0/8", "fd00::/48")), SeawaySettings(), taken
    )
    assert time.perf_counter() - start < 0.5
    assert result.addresses["default/new"] == ("10.0.0.50",)


def test_parse_range_forms() -> None:
    assert parse_range("10.0.0.0/30") == parse_range("10.0.0.0-10.0.0.3")
    loopback = parse_range("127.240.0.0/16", skip_network=True)
    assert (loopback.first, loopback.last) == (0x7FF00001, 0x7FF0FFFF)
    for bad in ("10.0.0.5-10.0.0.1", "10.0.0.1-fd00::1", "nonsense"):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_is_seaway_load_balancer() -> None:
    settings = SeawaySettings()
    assert is_seaway_load_balancer(lb("a"), settings)
    assert is_seaway_load_balancer(lb("a", cls="seaway.io/lb"), settings)
    assert not is_seaway_load_balancer(lb("a", cls="other"), settings)
    assert not is_seaway_load_balancer(lb("a", kind="ClusterIP"), settings)

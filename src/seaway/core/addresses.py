"""LoadBalancer address allocation from MetalLB-shaped address pools.

One pure function, ``allocate_addresses``: it gives every LoadBalancer Service of
seaway's class one address, honouring explicit requests, keeping what a Service had
before, and otherwise taking the lowest free address. Pools are walked lazily, so a
``/8`` (or an IPv6 ``/64``) is never materialised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from seaway.model.annotations import METALLB_LOAD_BALANCER_IPS
from seaway.model.objects import IPAddressPool, SeawaySettings, Service

# Key of the implicit pool built from settings.loopback_pool when no pool is given.
LOOPBACK_POOL_KEY = "seaway/loopback"

IPKey = tuple[int, int]  # (IP version, address as an integer): one address, any family


def _frozen() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Allocation:
    """Addresses per Service key, and why a Service got none (per Service key)."""

    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)  # type: ignore[arg-type]
    messages: Mapping[str, str] = field(default_factory=_frozen)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AddressRange:
    """An inclusive range of addresses of one IP version, as integers."""

    version: int
    first: int
    last: int

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        version, value = key
        return bool(version == self.version and self.first <= value <= self.last)


@dataclass(frozen=True, slots=True)
class Pool:
    """A parsed address pool: its ranges, lowest first."""

    key: str
    auto_assign: bool
    ranges: tuple[AddressRange, ...]

    def __contains__(self, key: object) -> bool:
        return any(key in r for r in self.ranges)


def is_seaway_load_balancer(service: Service, settings: SeawaySettings) -> bool:
    """A LoadBalancer Service whose loadBalancerClass is unset or is seaway's."""
    return service.type == "LoadBalancer" and service.load_balancer_class in (
        None,
        settings.load_balancer_class,
    )


def parse_range(text: str, *, skip_network: bool = False) -> AddressRange:
    """``a.b.c.d/n`` (every address of the CIDR) or ``first-last`` (inclusive).

    MetalLB hands out every address of a pool CIDR, network and broadcast included
    (unless ``avoidBuggyIPs``, which seaway does not implement). ``skip_network`` drops
    the network address, for the loopback pool. A bare address is a one-address range.
    Raises ``ValueError`` on anything else.
    """
    text = text.strip()
    if "-" in text:
        first_text, last_text = (part.strip() for part in text.split("-", 1))
        first = ipaddress.ip_address(first_text)
        last = ipaddress.ip_address(last_text)
        if first.version != last.version or int(first) > int(last):
            raise ValueError(f"invalid address range {text!r}")
        return AddressRange(first.version, int(first), int(last))
    network = ipaddress.ip_network(text, strict=False)
    start = int(network.network_address)
    end = int(network.broadcast_address)
    if skip_network and end > start:
        start += 1
    return AddressRange(network.version, start, end)


def parse_pools(pools: Mapping[str, IPAddressPool], settings: SeawaySettings) -> tuple[Pool, ...]:
    """The pools sorted by key, or the loopback pool when none is given.

    Entries that do not parse are left out (the manifest parser reports them).
    """
    if not pools:
        loopback = parse_range(settings.loopback_pool, skip_network=True)
        return (Pool(LOOPBACK_POOL_KEY, True, (loopback,)),)
    parsed = []
    for key in sorted(pools):
        ranges = []
        for text in pools[key].addresses:
            try:
                ranges.append(parse_range(text))
            except ValueError:
                continue
        ranges.sort(key=lambda r: (r.version, r.first))
        parsed.append(Pool(key, pools[key].auto_assign, tuple(ranges)))
    return tuple(parsed)


def _ip_key(text: str) -> IPKey:
    ip = ipaddress.ip_address(text.strip())
    return (ip.version, int(ip))


def _text(key: IPKey) -> str:
    version, value = key
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


def _free_in(pool: Pool, used: Mapping[IPKey, str]) -> Iterator[IPKey]:
    """Free addresses of ``pool``, lowest first; steps over used ones without listing."""
    for r in pool.ranges:
        value = r.first
        while value <= r.last:
            key = (r.version, value)
            if key not in used:
                yield key
            value += 1


def requested_addresses(service: Service) -> tuple[str, ...]:
    """Addresses the Service asks for: MetalLB's annotation, else spec.loadBalancerIP."""
    annotation = service.meta.annotations.get(METALLB_LOAD_BALANCER_IPS, "")
    requested = tuple(part.strip() for part in annotation.split(",") if part.strip())
    if requested:
        return requested
    if service.load_balancer_ip:
        return (service.load_balancer_ip,)
    return ()


def allocate_addresses(
    services: Mapping[str, Service],
    pools: Mapping[str, IPAddressPool],
    settings: SeawaySettings,
    previous: Mapping[str, tuple[str, ...]],
) -> Allocation:
    """Addresses for every LoadBalancer Service of seaway's class (pure, deterministic).

    For each such Service, in this order of precedence:

    1. Requested addresses (``metallb.io/loadBalancerIPs``, comma-separated, else
       ``spec.loadBalancerIP``) must each lie in some pool (autoAssign or not) and be
       free; otherwise the Service gets a message and no address.
    2. Else its ``previous`` addresses are kept when each still lies in an autoAssign
       pool and is free, so a Service keeps its address across restarts and unrelated
       changes (``previous`` is what the caller remembered).
    3. Else it gets the lowest free address of the first autoAssign pool (pools sorted
       by key) that has one; when all are full, a message.

    Services with requests are served first, then those keeping previous addresses,
    then new ones, each group in key order; so two Services asking for one address
    resolve the same way every time. With no pool at all, ``settings.loopback_pool``
    is the one autoAssign pool (its network address skipped).
    """
    parsed = parse_pools(pools, settings)
    auto = [pool for pool in parsed if pool.auto_assign]
    candidates = sorted(
        (key, service)
        for key, service in ((s.key, s) for s in services.values())
        if is_seaway_load_balancer(service, settings)
    )
    requesting = [(k, s, requested_addresses(s)) for k, s in candidates]
    explicit = [(k, req) for k, s, req in requesting if req]
    rest = [k for k, s, req in requesting if not req]
    keeping = [k for k in rest if previous.get(k)]
    new = [k for k in rest if not previous.get(k)]

    used: dict[IPKey, str] = {}
    addresses: dict[str, tuple[str, ...]] = {}
    messages: dict[str, str] = {}

    for key, requested in explicit:
        problem, keys = _check_request(requested, parsed, used)
        if problem:
            messages[key] = problem
            continue
        for ip_key in keys:
            used[ip_key] = key
        addresses[key] = tuple(_text(k) for k in keys)

    for key in keeping:
        kept = _keep(previous[key], auto, used)
        if kept is None:
            new.append(key)
            continue
        for ip_key in kept:
            used[ip_key] = key
        addresses[key] = tuple(_text(k) for k in kept)
    new.sort()

    for key in new:
        chosen = _lowest_free(auto, used)
        if chosen is None:
            messages[key] = (
                "no address pool has autoAssign enabled"
                if not auto
                else "no free address left in any autoAssign address pool"
            )
            continue
        used[chosen] = key
        addresses[key] = (_text(chosen),)

    return Allocation(
        addresses=MappingProxyType(dict(sorted(addresses.items()))),
        messages=MappingProxyType(dict(sorted(messages.items()))),
    )


def _check_request(
    requested: Sequence[str], pools: Sequence[Pool], used: Mapping[IPKey, str]
) -> tuple[str, list[IPKey]]:
    """(message, []) when the request cannot be met, else ("", the addresses)."""
    keys: list[IPKey] = []
    for text in requested:
        try:
            ip_key = _ip_key(text)
        except ValueError:
            return f"requested address {text!r} is not an IP address", []
        if ip_key in keys:
            continue
        if not any(ip_key in pool for pool in pools):
            return f"requested address {_text(ip_key)} is not in any address pool", []
        owner = used.get(ip_key)
        if owner is not None:
            return f"requested address {_text(ip_key)} is already assigned to {owner}", []
        keys.append(ip_key)
    return "", keys


def _keep(
    remembered: Sequence[str], auto: Sequence[Pool], used: Mapping[IPKey, str]
) -> list[IPKey] | None:
    """The remembered addresses if all are still in an autoAssign pool and free."""
    keys: list[IPKey] = []
    for text in remembered:
        try:
            ip_key = _ip_key(text)
        except ValueError:
            return None
        if ip_key in used or not any(ip_key in pool for pool in auto):
            return None
        if ip_key not in keys:
            keys.append(ip_key)
    return keys or None


def _lowest_free(auto: Sequence[Pool], used: Mapping[IPKey, str]) -> IPKey | None:
    for pool in auto:
        for ip_key in _free_in(pool, used):
            return ip_key
    return None

"""Ring hash: the ring Envoy builds (test vectors from Envoy's ring_hash_lb_test.cc)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import xxhash

from seaway.core.balancers.ring_hash import RingHashBalancer, build_ring
from seaway.core.config import Backend

UINT64_MAX = 2**64 - 1


def ports(*numbers: int, weights: tuple[int, ...] = ()) -> list[Backend]:
    return [
        Backend("127.0.0.1", p, weight=weights[i] if weights else 1) for i, p in enumerate(numbers)
    ]


def test_ring_matches_envoy_basic_test_vector() -> None:
    # Envoy RingHashLoadBalancerTest.Basic: hosts :90..:95, minimum_ring_size 12, xxHash.
    balancer = RingHashBalancer(ports(90, 91, 92, 93, 94, 95), minimum_ring_size=12)
    assert [(h, b.port) for h, b in balancer.ring] == [
        (833437586790550860, 94),
        (928266305478181108, 92),
        (1033482794131418490, 90),
        (3551244743356806947, 95),
        (3851675632748031481, 93),
        (5583722120771150861, 91),
        (6311230543546372928, 91),
        (7700377290971790572, 93),
        (13144177310400110813, 95),
        (13444792449719432967, 92),
        (15516499411664133160, 94),
        (16117243373044804889, 90),
    ]
    pick = balancer.pick
    assert pick(0) is not None and pick(0).port == 94  # type: ignore[union-attr]
    assert pick(UINT64_MAX).port == 94  # type: ignore[union-attr]
    assert pick(3551244743356806947).port == 95  # type: ignore[union-attr]
    assert pick(3551244743356806948).port == 93  # type: ignore[union-attr]


def test_uneven_hosts_round_up_to_whole_entries() -> None:
    # Envoy RingHashLoadBalancerTest.UnevenHosts: 2 hosts, minimum 3 -> 2 entries each.
    balancer = RingHashBalancer(ports(80, 81), minimum_ring_size=3)
    assert [(h, b.port) for h, b in balancer.ring] == [
        (5454692015285649509, 80),
        (7859399908942313493, 81),
        (13838424394637650569, 80),
        (16064866803292627174, 81),
    ]
    balancer.update(ports(81, 82))
    assert [(h, b.port) for h, b in balancer.ring] == [
        (7859399908942313493, 81),
        (8241336090459785962, 82),
        (12882406409176325258, 82),
        (16064866803292627174, 81),
    ]


def test_weights_in_a_tiny_ring() -> None:
    # Envoy RingHashLoadBalancerTest.HostWeightedTinyRing: weights 1, 2, 3 in 6 entries.
    balancer = RingHashBalancer(
        ports(90, 91, 92, weights=(1, 2, 3)), minimum_ring_size=6, maximum_ring_size=6
    )
    assert Counter(b.port for _, b in balancer.ring) == {90: 1, 91: 2, 92: 3}


def test_entries_hash_key_underscore_index() -> None:
    backends = ports(1, 2, 3)
    balancer = RingHashBalancer(backends)
    # ceil(1024 / 3) = 342 entries each: the lightest host gets a whole number.
    assert len(balancer.ring) == 1026
    mine = {h for h, b in balancer.ring if b == backends[0]}
    assert mine == {xxhash.xxh64_intdigest(f"127.0.0.1:1_{i}".encode(), 0) for i in range(342)}


def test_maximum_ring_size_caps_the_ring() -> None:
    # 3 hosts at minimum 100 would take ceil(100 / 3) * 3 = 102 entries; the cap is 100.
    balancer = RingHashBalancer(ports(1, 2, 3), minimum_ring_size=100, maximum_ring_size=100)
    assert len(balancer.ring) == 100
    assert sorted(Counter(b.port for _, b in balancer.ring).values()) == [33, 33, 34]


def ketama_choose(hashes: list[int], h: int) -> int:
    """Envoy's Ring::chooseHost binary search (ported from libketama), literally."""
    lowp, highp = 0, len(hashes)
    while True:
        midp = (lowp + highp) // 2
        if midp == len(hashes):
            return 0
        midval = hashes[midp]
        midval1 = 0 if midp == 0 else hashes[midp - 1]
        if midval1 < h <= midval:
            return midp
        if midval < h:
            lowp = midp + 1
        else:
            highp = midp - 1
        if lowp > highp:
            return 0


def test_lookup_is_the_ketama_binary_search() -> None:
    backends = ports(*range(1, 8), weights=(1, 2, 3, 1, 1, 5, 2))
    balancer = RingHashBalancer(backends, minimum_ring_size=64)
    hashes = [h for h, _ in balancer.ring]
    owners = [b for _, b in balancer.ring]
    rng = random.Random(5)
    probes = [rng.getrandbits(64) for _ in range(3000)] + hashes + [h + 1 for h in hashes] + [0]
    for h in probes:
        assert balancer.pick(h) == owners[ketama_choose(hashes, h)]


def test_retry_walks_clockwise_and_gives_up_when_all_avoided() -> None:
    backends = ports(90, 91, 92, 93, 94, 95)
    balancer = RingHashBalancer(backends, minimum_ring_size=12)
    first = balancer.pick(0)
    assert first is not None and first.port == 94
    # The next entry clockwise from hash 0 is :92 (Envoy's retry test expects the same).
    assert balancer.pick(0, avoid={first}).port == 92  # type: ignore[union-attr]
    assert balancer.pick(0, avoid=set(backends)) is None
    assert RingHashBalancer([]).pick(0) is None


def test_bad_sizes_and_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="sizes"):
        RingHashBalancer(ports(1), minimum_ring_size=10, maximum_ring_size=5)
    with pytest.raises(ValueError, match="sizes"):
        RingHashBalancer(ports(1), maximum_ring_size=2**24)
    with pytest.raises(ValueError, match="weight"):
        build_ring([("a", 0)])


def test_weight_zero_backends_get_no_entries() -> None:
    backends = ports(1, 2, weights=(1, 0))
    balancer = RingHashBalancer(backends)
    assert {b for _, b in balancer.ring} == {backends[0]}

"""Maglev: the exact Envoy table, balance, stability under change, and the avoid walk."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
import xxhash

from seaway.core.balancers.maglev import MaglevBalancer, build_maglev_table, is_prime
from seaway.core.balancers.registry import make_balancer
from seaway.core.config import Backend


def keys(count: int, weight: int = 1) -> list[tuple[str, int]]:
    return [(f"10.1.{i // 250}.{i % 250 + 1}:8080", weight) for i in range(count)]


def backends(count: int) -> list[Backend]:
    return [Backend(f"10.1.{i // 250}.{i % 250 + 1}", 8080) for i in range(count)]


def test_hand_computed_table_m7_three_hosts() -> None:
    m = 7
    hosts = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]

    def permutation(key: str) -> list[int]:
        offset = xxhash.xxh64_intdigest(key.encode(), 0) % m
        skip = xxhash.xxh64_intdigest(key.encode(), 1) % (m - 1) + 1
        return [(offset + skip * j) % m for j in range(m)]

    # The permutations, from xxHash64 with seeds 0 (offset) and 1 (skip).
    assert permutation(hosts[0]) == [6, 4, 2, 0, 5, 3, 1]
    assert permutation(hosts[1]) == [4, 1, 5, 2, 6, 3, 0]
    assert permutation(hosts[2]) == [3, 2, 1, 0, 6, 5, 4]
    # Walk, hosts A, B, C in key order, each taking its next free slot per turn:
    #   turn 1: A takes 6; B takes 4; C takes 3.
    #   turn 2: A tries 4 (taken), takes 2; B takes 1; C tries 2, 1 (taken), takes 0.
    #   turn 3: A tries 0 (taken), takes 5; the table is full.
    expected = [2, 1, 0, 2, 1, 0, 0]
    assert build_maglev_table([(h, 1) for h in hosts], m) == expected


# Known answers from Envoy's own tests (test/extensions/load_balancing_policies/maglev/
# maglev_lb_test.cc, "Basic", "BasicWithHostName" and "Weighted"): host indices by slot.
ENVOY_CASES = [
    pytest.param(
        [(f"127.0.0.1:{p}", 1) for p in range(90, 96)], 7, [2, 4, 0, 1, 5, 0, 3], id="basic"
    ),
    pytest.param([(f"{p}", 1) for p in range(90, 96)], 7, [2, 5, 0, 3, 4, 1, 0], id="hostnames"),
    pytest.param(
        [("127.0.0.1:90", 1), ("127.0.0.1:91", 2)],
        17,
        [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1],
        id="weighted-1-2",
    ),
]


@pytest.mark.parametrize(("hosts", "size", "expected"), ENVOY_CASES)
def test_table_matches_envoy(hosts: list[tuple[str, int]], size: int, expected: list[int]) -> None:
    assert build_maglev_table(hosts, size) == expected
    shuffled = list(reversed(hosts))
    assert build_maglev_table(shuffled, size) == expected


def test_single_weighted_host_owns_every_slot() -> None:
    assert build_maglev_table([("127.0.0.1:90", 7)], 17) == [0] * 17


@pytest.mark.parametrize("size", [0, 1, 4, 8, 65536, 65535])
def test_non_prime_table_size_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="prime"):
        build_maglev_table([("10.0.0.1:80", 1)], size)
    with pytest.raises(ValueError, match="prime"):
        MaglevBalancer([], table_size=size)


def test_is_prime() -> None:
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert is_prime(65537)


def test_weight_below_one_and_repeated_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="weight"):
        build_maglev_table([("10.0.0.1:80", 0)], 7)
    with pytest.raises(ValueError, match="more than once"):
        build_maglev_table([("10.0.0.1:80", 1), ("10.0.0.1:80", 1)], 7)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 10, 100])
def test_equal_weights_get_floor_or_ceil_entries(count: int) -> None:
    m = 65537
    counts = Counter(build_maglev_table(keys(count), m))
    assert len(counts) == count
    assert set(counts.values()) <= {m // count, -(-m // count)}
    assert sum(counts.values()) == m


def test_order_of_hosts_does_not_matter() -> None:
    hosts = keys(20)
    shuffled = hosts[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != hosts
    assert build_maglev_table(shuffled, 65537) == build_maglev_table(hosts, 65537)
    one = MaglevBalancer(backends(20), table_size=65537)
    other_order = backends(20)
    random.Random(3).shuffle(other_order)
    two = MaglevBalancer(other_order, table_size=65537)
    for flow_hash in range(0, 10**6, 997):
        assert one.pick(flow_hash) == two.pick(flow_hash)


def test_weights_two_to_one_give_about_two_to_one_entries() -> None:
    hosts = [("10.0.0.1:80", 2), ("10.0.0.2:80", 1), ("10.0.0.3:80", 2), ("10.0.0.4:80", 1)]
    counts = Counter(build_maglev_table(hosts, 65537))
    heavy = counts[0] + counts[2]
    light = counts[1] + counts[3]
    assert heavy / light == pytest.approx(2.0, rel=0.02)


def test_removing_one_backend_moves_few_other_entries() -> None:
    m = 65537
    # Table entries index the sorted keys.
    before_keys = sorted(key for key, _ in keys(50))
    after_keys = before_keys[:3] + before_keys[4:]
    before = [before_keys[i] for i in build_maglev_table([(k, 1) for k in before_keys], m)]
    after = [after_keys[i] for i in build_maglev_table([(k, 1) for k in after_keys], m)]
    removed = before_keys[3]
    moved = sum(1 for b, a in zip(before, after, strict=True) if b not in (removed, a))
    owned = before.count(removed)
    # The removed backend's slots must move; others move only a little (paper, 5.3).
    assert owned == pytest.approx(m / 50, rel=0.01)
    assert moved < 0.02 * m


def test_pick_is_table_slot_of_hash() -> None:
    balancer = MaglevBalancer(backends(5), table_size=13)
    hosts = balancer.backends
    table = balancer.table
    for flow_hash in [0, 1, 12, 13, 2**64 - 1, 123456789]:
        assert balancer.pick(flow_hash) == hosts[table[flow_hash % 13]]


def test_avoid_walks_forward_to_the_next_other_backend() -> None:
    balancer = MaglevBalancer(backends(3), table_size=13)
    hosts = balancer.backends
    table = balancer.table
    for flow_hash in range(13):
        first = hosts[table[flow_hash]]
        step = 1
        while hosts[table[(flow_hash + step) % 13]] == first:
            step += 1
        expected = hosts[table[(flow_hash + step) % 13]]
        assert balancer.pick(flow_hash, frozenset({first})) == expected
        others = set(hosts) - {first}
        remaining = balancer.pick(flow_hash, frozenset({first, expected}))
        assert remaining in others and remaining != expected


def test_avoiding_every_backend_returns_none() -> None:
    balancer = MaglevBalancer(backends(3), table_size=13)
    assert balancer.pick(5) is not None
    assert balancer.pick(5, frozenset(balancer.backends)) is None


def test_empty_set_picks_none() -> None:
    balancer = MaglevBalancer([], table_size=13)
    assert balancer.pick(42) is None
    balancer.update(backends(2))
    assert balancer.pick(42) in backends(2)
    balancer.update([])
    assert balancer.pick(42) is None


def test_zero_weight_backends_are_left_out() -> None:
    kept = Backend("10.0.0.1", 80)
    balancer = MaglevBalancer([kept, Backend("10.0.0.2", 80, weight=0)], table_size=13)
    assert {balancer.pick(h) for h in range(13)} == {kept}


def test_ipv6_host_key_is_bracketed_like_envoy() -> None:
    backend = Backend("fd00::1", 8080)
    assert backend.key == "[fd00::1]:8080"
    balancer = MaglevBalancer([backend, Backend("fd00::2", 8080)], table_size=7)
    expected = build_maglev_table([("[fd00::1]:8080", 1), ("[fd00::2]:8080", 1)], 7)
    assert list(balancer.table) == expected


def test_registry_builds_maglev_with_the_table_size() -> None:
    balancer = make_balancer("maglev", backends(2), rng=random.Random(1), maglev_table_size=7)
    assert isinstance(balancer, MaglevBalancer)
    assert balancer.consistent and balancer.name == "maglev"
    assert len(balancer.table) == 7


def test_build_for_1000_backends_is_fast() -> None:
    start = time.perf_counter()
    table = build_maglev_table(keys(1000), 65537)
    weighted = build_maglev_table([(k, 1 + i % 3) for i, (k, _) in enumerate(keys(1000))], 65537)
    elapsed = time.perf_counter() - start
    assert len(table) == len(weighted) == 65537
    assert min(table) == 0 and max(table) == 999
    assert elapsed < 1.0

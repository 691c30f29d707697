"""Random and round-robin balancers (pure, seeded)."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from seaway.core.balancers.random_choice import RandomBalancer
from seaway.core.balancers.round_robin import RoundRobinBalancer
from seaway.core.config import Backend


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]


def test_random_follows_weights_and_is_reproducible() -> None:
    set_ = backends(1, 3)
    a = RandomBalancer(set_, rng=random.Random(7))
    b = RandomBalancer(set_, rng=random.Random(7))
    picks_a = [a.pick(0) for _ in range(4000)]
    picks_b = [b.pick(0) for _ in range(4000)]
    assert picks_a == picks_b
    share = Counter(p.address for p in picks_a if p is not None)["10.0.0.2"] / 4000
    assert 0.72 < share < 0.78


def test_random_avoids_failed_backends_and_handles_empty() -> None:
    set_ = backends(1, 1, 1)
    balancer = RandomBalancer(set_, rng=random.Random(1))
    for _ in range(200):
        assert balancer.pick(0, avoid={set_[0], set_[1]}) == set_[2]
    assert balancer.pick(0, avoid=set(set_)) is None
    assert RandomBalancer([], rng=random.Random(1)).pick(0) is None


@given(st.lists(st.integers(1, 9), min_size=1, max_size=8))
def test_round_robin_honours_weights_exactly_over_a_cycle(weights: list[int]) -> None:
    set_ = backends(*weights)
    balancer = RoundRobinBalancer(set_)
    cycle = [balancer.pick(0) for _ in range(sum(weights))]
    counts = Counter(cycle)
    assert {b: counts[b] for b in set_} == {b: b.weight for b in set_}


def test_round_robin_interleaves_and_skips_avoided() -> None:
    set_ = backends(1, 1, 1)
    balancer = RoundRobinBalancer(set_)
    assert [balancer.pick(0) for _ in range(6)] == set_ + set_
    assert balancer.pick(0, avoid={set_[0]}) == set_[1]
    assert balancer.pick(0, avoid=set(set_)) is None
    assert RoundRobinBalancer([]).pick(0) is None

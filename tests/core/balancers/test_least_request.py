"""Least request (Envoy's LEAST_REQUEST): P2C with equal weights, dynamic-weight EDF otherwise."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from seaway.core.balancers.least_request import LeastRequestBalancer
from seaway.core.balancers.slow_start import SlowStart
from seaway.core.config import Backend


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]


def test_two_choices_favour_the_least_loaded() -> None:
    a, b, c = backends(1, 1, 1)
    balancer = LeastRequestBalancer([a, b, c], rng=random.Random(3))
    for _ in range(5):
        balancer.started(b)
        balancer.started(c)
    picks = Counter(balancer.pick(0) for _ in range(9000))
    # a wins unless both draws (with replacement) miss it: 1 - (2/3)^2 = 5/9.
    assert picks[a] / 9000 == pytest.approx(5 / 9, abs=0.02)


def test_choice_count_one_is_uniform_and_more_choices_find_the_least() -> None:
    a, b, c = backends(1, 1, 1)
    uniform = LeastRequestBalancer([a, b, c], rng=random.Random(1), choice_count=1)
    for _ in range(4):
        uniform.started(b)
        uniform.started(c)
    share = Counter(uniform.pick(0) for _ in range(6000))[a] / 6000
    assert share == pytest.approx(1 / 3, abs=0.03)
    wide = LeastRequestBalancer([a, b, c], rng=random.Random(1), choice_count=40)
    for _ in range(4):
        wide.started(b)
        wide.started(c)
    assert all(wide.pick(0) == a for _ in range(200))


def test_same_seed_same_picks() -> None:
    set_ = backends(1, 1, 1, 1)
    one = LeastRequestBalancer(set_, rng=random.Random(9))
    two = LeastRequestBalancer(set_, rng=random.Random(9))
    assert [one.pick(0) for _ in range(100)] == [two.pick(0) for _ in range(100)]


def test_unequal_weights_use_weight_over_active_plus_one() -> None:
    a, b = backends(1, 3)
    balancer = LeastRequestBalancer([a, b], rng=random.Random(0))
    for _ in range(5):
        balancer.started(b)
    assert balancer.weight(a) == 1.0
    assert balancer.weight(b) == 3 / 6
    biased = LeastRequestBalancer([a, b], rng=random.Random(0), active_request_bias=2.0)
    for _ in range(2):
        biased.started(b)
    assert biased.weight(b) == pytest.approx(3 / 9)


def test_bias_zero_is_weighted_round_robin() -> None:
    set_ = backends(1, 3, 2)
    balancer = LeastRequestBalancer(set_, rng=random.Random(0), active_request_bias=0.0)
    assert Counter(balancer.pick(0) for _ in range(60)) == {
        set_[0]: 10,
        set_[1]: 30,
        set_[2]: 20,
    }


def test_weighted_path_steers_away_from_busy_backends() -> None:
    a, b = backends(2, 3)
    balancer = LeastRequestBalancer([a, b], rng=random.Random(0))
    for _ in range(20):
        balancer.started(b)
    picks = Counter(balancer.pick(0) for _ in range(100))
    # b's weight is 3 / 21 against a's 2: a gets nearly everything.
    assert picks[a] > 90


def test_avoid_and_empty() -> None:
    set_ = backends(1, 1, 1)
    balancer = LeastRequestBalancer(set_, rng=random.Random(2))
    assert all(balancer.pick(0, avoid={set_[0], set_[1]}) == set_[2] for _ in range(50))
    assert balancer.pick(0, avoid=set(set_)) is None
    weighted = LeastRequestBalancer(backends(1, 2), rng=random.Random(2))
    first = backends(1, 2)[0]
    assert all(weighted.pick(0, avoid={first}) != first for _ in range(20))
    assert LeastRequestBalancer([], rng=random.Random(2)).pick(0) is None


def test_slow_start_takes_the_weighted_path_while_a_backend_is_new() -> None:
    a, b, c = backends(1, 1, 1)
    balancer = LeastRequestBalancer([a, b], rng=random.Random(4), slow_start=SlowStart(window=10.0))
    balancer.pick(0, now=0.0)  # stamps a and b at 0
    assert balancer.pick(0, now=50.0) in (a, b)
    balancer.update([a, b, c])
    counts = Counter(balancer.pick(0, now=50.0) for _ in range(210))
    # c starts at 10% of its weight: about 10 of 210 picks.
    assert 8 <= counts[c] <= 12
    assert balancer.weight(c, now=55.0) == pytest.approx(0.5)
    assert balancer.weight(c, now=60.0) == 1.0
    # Once the window is over, the unweighted two-choice path is back.
    counts = Counter(balancer.pick(0, now=61.0) for _ in range(3000))
    assert counts[c] / 3000 == pytest.approx(1 / 3, abs=0.04)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="choice_count"):
        LeastRequestBalancer([], rng=random.Random(0), choice_count=0)
    with pytest.raises(ValueError, match="bias"):
        LeastRequestBalancer([], rng=random.Random(0), active_request_bias=-1.0)

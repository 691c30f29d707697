"""Slow start (Envoy's formula) and round-robin with slow start."""

from __future__ import annotations

from collections import Counter

import pytest

from seaway.core.balancers.round_robin import RoundRobinBalancer
from seaway.core.balancers.slow_start import SlowStart, StartTimes
from seaway.core.config import Backend


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]


def test_factor_follows_envoys_formula() -> None:
    linear = SlowStart(window=10.0)
    assert linear.factor(0.0) == 0.1  # max(1 ms / 10 s, 10 %)
    assert linear.factor(0.5) == 0.1
    assert linear.factor(5.0) == 0.5
    assert linear.factor(9.999) == pytest.approx(0.9999)
    assert linear.factor(10.0) == 1.0
    assert linear.factor(1e6) == 1.0
    aggressive = SlowStart(window=10.0, aggression=2.0, min_weight_percent=0.0)
    assert aggressive.factor(2.5) == pytest.approx(0.5)  # 0.25 ** (1 / 2)
    assert aggressive.factor(0.0) == pytest.approx((1 / 10000) ** 0.5)
    # Envoy counts in whole milliseconds.
    assert SlowStart(window=1.0, min_weight_percent=0.0).factor(0.0109) == 0.010


def test_off_by_default_and_validated() -> None:
    assert not SlowStart().enabled
    assert SlowStart().factor(0.0) == 1.0
    with pytest.raises(ValueError):
        SlowStart(window=-1.0)
    with pytest.raises(ValueError):
        SlowStart(window=1.0, aggression=0.0)
    with pytest.raises(ValueError):
        SlowStart(window=1.0, min_weight_percent=101.0)


def test_start_times_are_stamped_at_the_next_clock_and_forgotten_on_leave() -> None:
    starts = StartTimes()
    starts.update(["a", "b"])
    assert starts.any_in_window(10.0, 0.0)  # unstamped counts as new
    starts.stamp(5.0)
    assert starts.age("a", 8.0) == 3.0
    starts.stamp(7.0)  # already stamped: unchanged
    assert starts.age("a", 8.0) == 3.0
    assert not starts.any_in_window(10.0, 15.0)
    starts.update(["a"])
    starts.update(["a", "b"])  # b came back: it starts again
    starts.stamp(20.0)
    assert starts.age("b", 21.0) == 1.0
    assert starts.age("a", 21.0) == 16.0


def test_round_robin_ramps_a_new_backend_up() -> None:
    a, b, c = backends(1, 1, 1)
    balancer = RoundRobinBalancer([a, b], slow_start=SlowStart(window=10.0))
    balancer.pick(0, now=0.0)
    balancer.pick(0, now=100.0)
    balancer.update([a, b, c])
    early = Counter(balancer.pick(0, now=100.0) for _ in range(210))
    assert early[c] == 10  # weight 0.1 against 1 and 1
    # Five seconds later c weighs 0.5: about 50 of 250 picks. Like Envoy, a backend's
    # new weight takes effect when it is next picked, so the first gap is still long.
    half = Counter(balancer.pick(0, now=105.0) for _ in range(250))
    assert 45 <= half[c] <= 50
    late = Counter(balancer.pick(0, now=111.0) for _ in range(300))
    assert 95 <= late[c] <= 105  # full weight


def test_round_robin_without_a_clock_or_window_is_unchanged() -> None:
    set_ = backends(1, 2)
    plain = RoundRobinBalancer(set_)
    windowed = RoundRobinBalancer(set_, slow_start=SlowStart(window=10.0))
    assert [plain.pick(0) for _ in range(30)] == [windowed.pick(0) for _ in range(30)]

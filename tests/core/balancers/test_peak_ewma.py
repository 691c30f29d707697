"""Peak EWMA (Finagle/Linkerd): peak-sensitive latency average, cost-based two choices."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from seaway.core.balancers.peak_ewma import PENALTY, PeakEwmaBalancer
from seaway.core.config import Backend


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]


def test_a_peak_is_believed_at_once_and_lower_samples_decay_with_time() -> None:
    (a,) = backends(1)
    balancer = PeakEwmaBalancer([a], rng=random.Random(0))
    balancer.observe(a, 0.1, now=0.0)
    assert balancer.rtt(a) == 0.1
    balancer.observe(a, 0.5, now=1.0)
    assert balancer.rtt(a) == 0.5
    balancer.observe(a, 0.1, now=11.0)  # 10 s later: weight e^-1 on the old value
    assert balancer.rtt(a) == pytest.approx(0.5 * math.exp(-1) + 0.1 * (1 - math.exp(-1)))


def test_cost_is_decayed_rtt_times_pending_plus_one_over_weight() -> None:
    a, b = backends(1, 2)
    balancer = PeakEwmaBalancer([a, b], rng=random.Random(0), decay_seconds=5.0)
    balancer.observe(a, 0.2, now=0.0)
    balancer.observe(b, 0.2, now=0.0)
    balancer.started(a)
    balancer.started(a)
    assert balancer.cost(a, now=0.0) == pytest.approx(0.2 * 3)
    assert balancer.cost(b, now=0.0) == pytest.approx(0.2 / 2)
    # With no new samples the estimate decays towards zero.
    assert balancer.cost(b, now=5.0) == pytest.approx(0.2 * math.exp(-1) / 2)
    balancer.ended(a)
    balancer.ended(a)
    balancer.ended(a)  # unmatched: ignored
    assert balancer.cost(a, now=5.0) == pytest.approx(0.2 * math.exp(-1))


def test_unsampled_backends_are_probed_when_idle_and_penalised_when_busy() -> None:
    a, b = backends(1, 1)
    balancer = PeakEwmaBalancer([a, b], rng=random.Random(0))
    balancer.observe(a, 0.01, now=0.0)
    assert balancer.cost(b, now=0.0) == 0.0
    assert balancer.pick(0, now=0.0) == b  # 0 beats 0.01: new backends get a probe
    balancer.started(b)
    assert balancer.cost(b, now=0.0) == PENALTY + 1
    assert balancer.pick(0, now=0.0) == a


def test_two_choices_avoid_a_slow_backend() -> None:
    set_ = backends(1, 1, 1, 1, 1)
    slow = set_[0]
    balancer = PeakEwmaBalancer(set_, rng=random.Random(7))
    for backend in set_:
        balancer.observe(backend, 1.0 if backend == slow else 0.01, now=0.0)
    picks = Counter(balancer.pick(0, now=0.1) for _ in range(5000))
    # Two distinct draws: the slow backend always loses its comparison.
    assert picks[slow] == 0
    assert len(picks) == 4


def test_distinct_draws_reproducible_avoid_and_empty() -> None:
    set_ = backends(1, 1, 1)
    one = PeakEwmaBalancer(set_, rng=random.Random(3))
    two = PeakEwmaBalancer(set_, rng=random.Random(3))
    assert [one.pick(0, now=1.0) for _ in range(50)] == [two.pick(0, now=1.0) for _ in range(50)]
    assert one.pick(0, avoid={set_[0], set_[1]}) == set_[2]
    assert one.pick(0, avoid=set(set_)) is None
    assert PeakEwmaBalancer([], rng=random.Random(0)).pick(0) is None
    with pytest.raises(ValueError):
        PeakEwmaBalancer([], rng=random.Random(0), decay_seconds=0.0)


def test_state_survives_updates_for_backends_that_stay() -> None:
    a, b = backends(1, 1)
    balancer = PeakEwmaBalancer([a, b], rng=random.Random(0))
    balancer.observe(a, 0.3, now=0.0)
    balancer.started(b)
    balancer.update([a])
    assert balancer.rtt(a) == 0.3
    balancer.update([a, b])
    assert balancer.cost(b, now=0.0) == PENALTY + 1  # its open request is still counted

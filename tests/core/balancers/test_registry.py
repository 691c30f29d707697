"""The registry builds every algorithm by name and tells what each needs."""

from __future__ import annotations

import random

import pytest

from seaway.core.balancers.base import NEEDS, Balancer
from seaway.core.balancers.registry import (
    ALGORITHM_NAMES,
    BALANCER_CLASSES,
    UnknownAlgorithm,
    make_balancer,
    needs_of,
)
from seaway.core.balancers.slow_start import SlowStart
from seaway.core.config import Backend

SET = [Backend(f"10.0.0.{i}", 80) for i in range(1, 4)]


def test_every_name_builds_a_balancer_that_picks_from_the_set() -> None:
    expected = "maglev random round-robin lc wlc sh dh sed nq least-request ring-hash peak-ewma"
    assert set(expected.split()) == ALGORITHM_NAMES
    for name in sorted(ALGORITHM_NAMES):
        balancer = make_balancer(name, SET, rng=random.Random(0), maglev_table_size=251)
        assert isinstance(balancer, BALANCER_CLASSES[name])
        assert balancer.name == name
        chosen = balancer.pick(12345, now=1.0)
        assert chosen in SET
        balancer.started(chosen)
        balancer.observe(chosen, 0.01, 1.0)
        balancer.ended(chosen)
        assert balancer.pick(12345, frozenset(SET), now=1.0) is None
        balancer.update([])
        assert balancer.pick(12345, now=2.0) is None


def test_needs_are_declared_from_the_known_vocabulary() -> None:
    for name in ALGORITHM_NAMES:
        assert needs_of(name) <= NEEDS
        assert needs_of(name), name
    assert needs_of("wlc") == {"connection_counts"}
    assert needs_of("peak-ewma") >= {"latency", "clock"}
    assert needs_of("ring-hash") == {"flow_hash"}
    assert needs_of("sh") == {"source_hash"}
    consistent = {n for n, cls in BALANCER_CLASSES.items() if cls.consistent}
    assert consistent == {"maglev", "ring-hash", "sh", "dh"}


def test_settings_reach_the_algorithms() -> None:
    ring = make_balancer(
        "ring-hash", SET, rng=random.Random(0), ring_hash_minimum_size=6, ring_hash_maximum_size=6
    )
    assert len(ring.ring) == 6  # type: ignore[attr-defined]
    lr = make_balancer("least-request", SET, rng=random.Random(0), choice_count=5)
    assert lr.choice_count == 5  # type: ignore[attr-defined]
    rr = make_balancer("round-robin", SET, rng=random.Random(0), slow_start=SlowStart(10.0))
    rr.pick(0, now=0.0)
    rr.update([*SET, Backend("10.0.0.9", 80)])
    picks = [rr.pick(0, now=100.0) for _ in range(31)]  # the new one weighs 0.1
    assert picks.count(Backend("10.0.0.9", 80)) == 1


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(UnknownAlgorithm, match=r"'fastest'.*least-request.*wlc"):
        make_balancer("fastest", SET, rng=random.Random(0))
    with pytest.raises(UnknownAlgorithm):
        needs_of("fastest")


def test_the_base_observe_is_a_no_op_for_others() -> None:
    balancer: Balancer = make_balancer("maglev", SET, rng=random.Random(0), maglev_table_size=251)
    before = balancer.pick(99)
    balancer.observe(SET[0], 5.0, 0.0)
    assert balancer.pick(99) == before

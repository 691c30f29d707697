"""Algorithm names and the one factory that builds a balancer by name."""

from __future__ import annotations

import random
from collections.abc import Sequence

from seaway.core.balancers.base import Balancer
from seaway.core.balancers.destination_hashing import DestinationHashingBalancer
from seaway.core.balancers.least_connection import LeastConnectionBalancer
from seaway.core.balancers.least_request import (
    DEFAULT_ACTIVE_REQUEST_BIAS,
    DEFAULT_CHOICE_COUNT,
    LeastRequestBalancer,
)
from seaway.core.balancers.maglev import MaglevBalancer
from seaway.core.balancers.never_queue import NeverQueueBalancer
from seaway.core.balancers.peak_ewma import DEFAULT_DECAY_SECONDS, PeakEwmaBalancer
from seaway.core.balancers.random_choice import RandomBalancer
from seaway.core.balancers.ring_hash import (
    DEFAULT_MAXIMUM_RING_SIZE,
    DEFAULT_MINIMUM_RING_SIZE,
    RingHashBalancer,
)
from seaway.core.balancers.round_robin import RoundRobinBalancer
from seaway.core.balancers.shortest_expected_delay import ShortestExpectedDelayBalancer
from seaway.core.balancers.slow_start import SlowStart
from seaway.core.balancers.source_hashing import SourceHashingBalancer
from seaway.core.balancers.weighted_least_connection import WeightedLeastConnectionBalancer
from seaway.core.config import Backend, BackendSet

# Every balancer class by the name a Service or the global settings may give.
BALANCER_CLASSES: dict[str, type[Balancer]] = {
    cls.name: cls
    for cls in (
        MaglevBalancer,
        RandomBalancer,
        RoundRobinBalancer,
        LeastConnectionBalancer,
        WeightedLeastConnectionBalancer,
        SourceHashingBalancer,
        DestinationHashingBalancer,
        ShortestExpectedDelayBalancer,
        NeverQueueBalancer,
        LeastRequestBalancer,
        RingHashBalancer,
        PeakEwmaBalancer,
    )
}

# Every algorithm a Service or the global settings may name.
ALGORITHM_NAMES: frozenset[str] = frozenset(BALANCER_CLASSES)


class UnknownAlgorithm(ValueError):
    """Raised for an algorithm name seaway does not have."""


def needs_of(algorithm: str) -> frozenset[str]:
    """What the named algorithm needs from its caller (``Balancer.needs``)."""
    cls = BALANCER_CLASSES.get(algorithm)
    if cls is None:
        raise _unknown(algorithm)
    return cls.needs


def _unknown(algorithm: str) -> UnknownAlgorithm:
    known = ", ".join(sorted(ALGORITHM_NAMES))
    return UnknownAlgorithm(f"unknown balancing algorithm {algorithm!r} (known: {known})")


def make_balancer(
    algorithm: str,
    backends: Sequence[Backend],
    *,
    rng: random.Random,
    maglev_table_size: int = 65537,
    ring_hash_minimum_size: int = DEFAULT_MINIMUM_RING_SIZE,
    ring_hash_maximum_size: int = DEFAULT_MAXIMUM_RING_SIZE,
    choice_count: int = DEFAULT_CHOICE_COUNT,
    active_request_bias: float = DEFAULT_ACTIVE_REQUEST_BIAS,
    slow_start: SlowStart | None = None,
    peak_ewma_decay_seconds: float = DEFAULT_DECAY_SECONDS,
) -> Balancer:
    """Build the named balancer over ``backends``.

    ``rng`` is the random source for algorithms that need one (never the module-level
    ``random``), so tests and simulations are reproducible. The other settings apply
    only to the algorithms they name: ``slow_start`` to round-robin and least-request.
    """
    if algorithm == "maglev":
        return MaglevBalancer(backends, table_size=maglev_table_size)
    if algorithm == "random":
        return RandomBalancer(backends, rng=rng)
    if algorithm == "round-robin":
        return RoundRobinBalancer(backends, slow_start=slow_start)
    if algorithm == "lc":
        return LeastConnectionBalancer(backends)
    if algorithm == "wlc":
        return WeightedLeastConnectionBalancer(backends)
    if algorithm == "sed":
        return ShortestExpectedDelayBalancer(backends)
    if algorithm == "nq":
        return NeverQueueBalancer(backends)
    if algorithm == "sh":
        return SourceHashingBalancer(backends)
    if algorithm == "dh":
        return DestinationHashingBalancer(backends)
    if algorithm == "least-request":
        return LeastRequestBalancer(
            backends,
            rng=rng,
            choice_count=choice_count,
            active_request_bias=active_request_bias,
            slow_start=slow_start,
        )
    if algorithm == "ring-hash":
        return RingHashBalancer(
            backends,
            minimum_ring_size=ring_hash_minimum_size,
            maximum_ring_size=ring_hash_maximum_size,
        )
    if algorithm == "peak-ewma":
        return PeakEwmaBalancer(backends, rng=rng, decay_seconds=peak_ewma_decay_seconds)
    raise _unknown(algorithm)


def balancer_for(spec: BackendSet, *, rng: random.Random) -> Balancer:
    """The balancer a backend set asks for: its algorithm and the settings it carries."""
    slow_start = SlowStart(window=spec.slow_start_window) if spec.slow_start_window > 0 else None
    return make_balancer(
        spec.algorithm,
        spec.backends,
        rng=rng,
        maglev_table_size=spec.maglev_table_size,
        slow_start=slow_start,
    )

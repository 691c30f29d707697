"""Algorithm names and the one factory that builds a balancer by name."""

from __future__ import annotations

import random
from collections.abc import Sequence

from seaway.core.balancers.base import Balancer
from seaway.core.balancers.maglev import MaglevBalancer
from seaway.core.balancers.random_choice import RandomBalancer
from seaway.core.balancers.round_robin import RoundRobinBalancer
from seaway.core.config import Backend

# Every algorithm a Service or the global settings may name.
ALGORITHM_NAMES: frozenset[str] = frozenset({"maglev", "random", "round-robin"})


class UnknownAlgorithm(ValueError):
    """Raised for an algorithm name seaway does not have."""


def make_balancer(
    algorithm: str,
    backends: Sequence[Backend],
    *,
    rng: random.Random,
    maglev_table_size: int = 65537,
) -> Balancer:
    """Build the named balancer over ``backends``.

    ``rng`` is the random source for algorithms that need one (never the module-level
    ``random``), so tests and simulations are reproducible.
    """
    if algorithm == "maglev":
        return MaglevBalancer(backends, table_size=maglev_table_size)
    if algorithm == "random":
        return RandomBalancer(backends, rng=rng)
    if algorithm == "round-robin":
        return RoundRobinBalancer(backends)
    known = ", ".join(sorted(ALGORITHM_NAMES))
    raise UnknownAlgorithm(f"unknown balancing algorithm {algorithm!r} (known: {known})")

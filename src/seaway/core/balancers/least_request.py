"""Least request, as Envoy's LEAST_REQUEST load balancer chooses.

Envoy (``LeastRequestLoadBalancer`` in
``source/extensions/load_balancing_policies/least_request/least_request_lb.cc``, and
``EdfLoadBalancerBase`` in ``source/common/upstream/load_balancer_impl.cc``) has two
paths:

- **all weights equal and no backend in slow start**: ``choice_count`` (default 2)
  backends are drawn at random, *with* replacement, and the one with the fewest active
  requests wins; the first drawn keeps ties (strict ``<``). This is the power of two
  choices (Mitzenmacher): the busiest backend never gets a new request.
- **otherwise**: an earliest-deadline-first schedule over dynamic weights,
  ``weight / (active_requests + 1) ** active_request_bias`` (bias 1.0 by default; 0
  gives plain weighted round-robin), times the slow-start factor. The chosen backend is
  put back with its weight at the moment it is picked (``EdfScheduler::pickAndAdd``).

"Active requests" are what ``started``/``ended`` count: connections at L4, requests at
L7, summed over the workers of ``seaway run --workers N`` (``ConnectionCounts.share``).
seaway decides between the two paths at every pick (Envoy at every host-set
change), so the weighted path ends as soon as the last slow start does.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import CLOCK, CONNECTION_COUNTS, RANDOM, Balancer
from seaway.core.balancers.connection_counts import ConnectionCounts
from seaway.core.balancers.slow_start import SlowStart, StartTimes
from seaway.core.config import Backend

# LeastRequest.choice_count default: two-choice selection.
DEFAULT_CHOICE_COUNT = 2
# LeastRequest.active_request_bias default.
DEFAULT_ACTIVE_REQUEST_BIAS = 1.0


class LeastRequestBalancer(Balancer):
    """Power of N choices over active requests; weighted EDF when weights differ."""

    name: ClassVar[str] = "least-request"
    needs: ClassVar[frozenset[str]] = frozenset({CONNECTION_COUNTS, RANDOM, CLOCK})
    counts: ConnectionCounts

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        rng: random.Random,
        choice_count: int = DEFAULT_CHOICE_COUNT,
        active_request_bias: float = DEFAULT_ACTIVE_REQUEST_BIAS,
        slow_start: SlowStart | None = None,
    ) -> None:
        if choice_count < 1:
            raise ValueError(f"least-request choice_count must be at least 1, got {choice_count}")
        if not active_request_bias >= 0.0:
            raise ValueError(
                f"least-request active_request_bias must be >= 0, got {active_request_bias}"
            )
        self._rng = rng
        self.choice_count = choice_count
        self.active_request_bias = active_request_bias
        self._slow_start = slow_start if slow_start is not None and slow_start.enabled else None
        self._starts = StartTimes()
        self._now: float | None = None
        self.counts = ConnectionCounts()
        self._backends: tuple[Backend, ...] = ()
        self._equal_weights = True
        # The EDF schedule: (deadline, position, backend); None while the unweighted
        # path is in use, built when the weighted path is entered.
        self._schedule: list[tuple[float, int, Backend]] | None = None
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        self._equal_weights = len({b.weight for b in self._backends}) <= 1
        if self._slow_start is not None:
            self._starts.update(b.key for b in self._backends)
        self._schedule = None

    def started(self, backend: Backend) -> None:
        self.counts.started(backend)

    def ended(self, backend: Backend) -> None:
        self.counts.ended(backend)

    def weight(self, backend: Backend, now: float | None = None) -> float:
        """The dynamic weight the weighted path uses for ``backend`` (Envoy's ``hostWeight``)."""
        weight = float(backend.weight)
        bias = self.active_request_bias
        if bias == 1.0:
            weight /= self.counts.active(backend) + 1
        elif bias != 0.0:
            weight /= float(self.counts.active(backend) + 1) ** bias
        slow_start = self._slow_start
        when = self._now if now is None else now
        if slow_start is not None and when is not None:
            weight *= slow_start.factor(self._starts.age(backend.key, when))
        return weight

    def _in_slow_start(self) -> bool:
        slow_start = self._slow_start
        if slow_start is None or self._now is None:
            return False
        return self._starts.any_in_window(slow_start.window, self._now)

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        if self._slow_start is not None and now is not None:
            self._now = now
            self._starts.stamp(now)
        if self._equal_weights and not self._in_slow_start():
            self._schedule = None
            return self._pick_unweighted(avoid)
        return self._pick_weighted(avoid)

    def _pick_unweighted(self, avoid: Set[Backend]) -> Backend | None:
        hosts: Sequence[Backend] = self._backends
        if avoid:
            hosts = [b for b in hosts if b not in avoid]
        if not hosts:
            return None
        active = self.counts.active
        randrange = self._rng.randrange
        size = len(hosts)
        candidate = hosts[randrange(size)]
        candidate_active = active(candidate)
        for _ in range(self.choice_count - 1):
            sampled = hosts[randrange(size)]
            sampled_active = active(sampled)
            if sampled_active < candidate_active:
                candidate = sampled
                candidate_active = sampled_active
        return candidate

    def _pick_weighted(self, avoid: Set[Backend]) -> Backend | None:
        schedule = self._schedule
        if schedule is None:
            # Ties are ordered by position so that the schedule is reproducible.
            schedule = [(1.0 / self.weight(b), i, b) for i, b in enumerate(self._backends)]
            heapq.heapify(schedule)
            self._schedule = schedule
        skipped: list[tuple[float, int, Backend]] = []
        chosen: Backend | None = None
        while schedule:
            deadline, index, backend = heapq.heappop(schedule)
            if backend in avoid:
                skipped.append((deadline, index, backend))
                continue
            heapq.heappush(schedule, (deadline + 1.0 / self.weight(backend), index, backend))
            chosen = backend
            break
        for item in skipped:
            heapq.heappush(schedule, item)
        return chosen

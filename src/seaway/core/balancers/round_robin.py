"""Weighted round-robin by earliest deadline first, the way Envoy schedules weighted hosts.

Each backend has a deadline; picking takes the earliest and pushes its deadline
forward by ``1 / weight``. Over a full cycle (sum of weights picks) every backend is
picked exactly ``weight`` times, and picks of heavy backends are spread out rather
than bunched.

With slow start (``seaway.core.balancers.slow_start``) the weight used when a backend
is put back is its weight scaled by its slow-start factor at that moment, as Envoy's
``EdfScheduler::pickAndAdd`` re-inserts a host with its current weight.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import CLOCK, Balancer
from seaway.core.balancers.slow_start import SlowStart, StartTimes
from seaway.core.config import Backend


class RoundRobinBalancer(Balancer):
    """Deterministic weighted round-robin (EDF scheduling), with optional slow start."""

    name: ClassVar[str] = "round-robin"
    # The clock is used only for slow start.
    needs: ClassVar[frozenset[str]] = frozenset({CLOCK})

    def __init__(self, backends: Sequence[Backend], *, slow_start: SlowStart | None = None) -> None:
        self._heap: list[tuple[float, int, Backend]] = []
        self._backends: tuple[Backend, ...] = ()
        self._slow_start = slow_start if slow_start is not None and slow_start.enabled else None
        self._starts = StartTimes()
        self._now: float | None = None
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        if self._slow_start is not None:
            self._starts.update(b.key for b in self._backends)
        # Order ties by position so that the schedule is the same on every instance.
        self._heap = [
            (1.0 / self._weight(b, self._now), i, b) for i, b in enumerate(self._backends)
        ]
        heapq.heapify(self._heap)

    def _weight(self, backend: Backend, now: float | None) -> float:
        slow_start = self._slow_start
        if slow_start is None or now is None:
            return float(backend.weight)
        return backend.weight * slow_start.factor(self._starts.age(backend.key, now))

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
        heap = self._heap
        if not avoid and heap:
            # The usual pick (nothing to avoid): the earliest deadline moves on by one
            # period, in one sift, and no backend is hashed for an empty ``avoid``.
            deadline, index, backend = heap[0]
            heapq.heapreplace(
                heap, (deadline + 1.0 / self._weight(backend, self._now), index, backend)
            )
            return backend
        skipped: list[tuple[float, int, Backend]] = []
        chosen: Backend | None = None
        while heap:
            deadline, index, backend = heapq.heappop(heap)
            if backend in avoid:
                skipped.append((deadline, index, backend))
                continue
            heapq.heappush(
                heap, (deadline + 1.0 / self._weight(backend, self._now), index, backend)
            )
            chosen = backend
            break
        for item in skipped:
            heapq.heappush(heap, item)
        return chosen

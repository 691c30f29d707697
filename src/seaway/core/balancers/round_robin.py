"""Weighted round-robin by earliest deadline first, the way Envoy schedules weighted hosts.

Each backend has a deadline; picking takes the earliest and pushes its deadline
forward by ``1 / weight``. Over a full cycle (sum of weights picks) every backend is
picked exactly ``weight`` times, and picks of heavy backends are spread out rather
than bunched.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import Balancer
from seaway.core.config import Backend


class RoundRobinBalancer(Balancer):
    """Deterministic weighted round-robin (EDF scheduling)."""

    name: ClassVar[str] = "round-robin"

    def __init__(self, backends: Sequence[Backend]) -> None:
        self._heap: list[tuple[float, int, Backend]] = []
        self._backends: tuple[Backend, ...] = ()
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        # Order ties by position so that the schedule is the same on every instance.
        self._heap = [(1.0 / b.weight, i, b) for i, b in enumerate(self._backends)]
        heapq.heapify(self._heap)

    def pick(self, flow_hash: int, avoid: Set[Backend] = frozenset()) -> Backend | None:
        skipped: list[tuple[float, int, Backend]] = []
        chosen: Backend | None = None
        while self._heap:
            deadline, index, backend = heapq.heappop(self._heap)
            entry = (deadline + 1.0 / backend.weight, index, backend)
            if backend in avoid:
                skipped.append((deadline, index, backend))
                continue
            heapq.heappush(self._heap, entry)
            chosen = backend
            break
        for item in skipped:
            heapq.heappush(self._heap, item)
        return chosen

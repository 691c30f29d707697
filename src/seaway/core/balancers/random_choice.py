"""Weighted random choice: what kube-proxy's iptables and nftables modes do per new flow."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence, Set
from itertools import accumulate
from typing import ClassVar

from seaway.core.balancers.base import RANDOM, Balancer
from seaway.core.config import Backend


class RandomBalancer(Balancer):
    """Picks a backend with probability proportional to its weight.

    The random source is injected so that tests and simulations are reproducible.
    """

    name: ClassVar[str] = "random"
    needs: ClassVar[frozenset[str]] = frozenset({RANDOM})

    def __init__(self, backends: Sequence[Backend], *, rng: random.Random) -> None:
        self._rng = rng
        self._backends: tuple[Backend, ...] = ()
        self._cumulative: list[int] = []
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        self._cumulative = list(accumulate(b.weight for b in self._backends))

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        if not self._backends:
            return None
        if avoid:
            candidates = [b for b in self._backends if b not in avoid]
            if not candidates:
                return None
            return self._rng.choices(candidates, weights=[b.weight for b in candidates])[0]
        point = self._rng.random() * self._cumulative[-1]
        return self._backends[bisect.bisect_right(self._cumulative, point)]

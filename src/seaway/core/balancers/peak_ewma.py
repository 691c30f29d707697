"""Peak EWMA: latency-aware power of two choices, as Finagle and Linkerd define it.

Finagle's ``PeakEwma`` (``finagle-core``, ``loadbalancer/PeakEwma.scala``) and
Linkerd's proxy (tower's ``load::PeakEwma``) keep, per backend, a moving average of
round-trip time that is sensitive to peaks:

- a sample **above** the current estimate replaces it at once (peaks are believed);
- a sample **below** it pulls the estimate down with a weight that depends on the time
  since the last update: ``w = exp(-elapsed / tau)``, ``rtt = rtt * w + sample * (1 - w)``
  (an EWMA over an unevenly spaced series), ``tau`` = 10 s by default;
- before each comparison the estimate decays towards 0 with the time elapsed (an
  update with a 0 sample), so a backend that was slow long ago is tried again.

The cost of a backend is ``rtt * (pending + 1)``: its latency times the work it would
have if it got this request. A backend with no sample yet costs 0 while it is idle (so
new backends are probed at once) and ``PENALTY + pending`` once it has work in flight,
so that it is not flooded before its first answer comes back. A pick draws two distinct
backends at random and takes the cheaper (the first on ties); weights divide the cost.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import CLOCK, CONNECTION_COUNTS, LATENCY, RANDOM, Balancer
from seaway.core.config import Backend

# Finagle's and Linkerd's decay time constant (tau) default: 10 seconds.
DEFAULT_DECAY_SECONDS = 10.0
# Finagle's penalty for a backend with work in flight and no latency sample:
# Long.MaxValue >> 16 nanoseconds (about 39 hours), in seconds.
PENALTY = float((2**63 - 1) >> 16) / 1e9


class _Estimate:
    """One backend's peak-EWMA round-trip time, its last update time and pending count."""

    __slots__ = ("pending", "rtt", "stamp")

    def __init__(self) -> None:
        self.rtt = 0.0
        self.stamp: float | None = None
        self.pending = 0


class PeakEwmaBalancer(Balancer):
    """Power of two choices over ``peak_ewma_rtt * (pending + 1) / weight``."""

    name: ClassVar[str] = "peak-ewma"
    needs: ClassVar[frozenset[str]] = frozenset({LATENCY, CONNECTION_COUNTS, CLOCK, RANDOM})

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        rng: random.Random,
        decay_seconds: float = DEFAULT_DECAY_SECONDS,
    ) -> None:
        if not decay_seconds > 0.0:
            raise ValueError(f"peak-ewma decay must be > 0 seconds, got {decay_seconds}")
        self._rng = rng
        self.decay_seconds = decay_seconds
        self._backends: tuple[Backend, ...] = ()
        # By key, kept for backends that left while work was pending (they count down).
        self._estimates: dict[str, _Estimate] = {}
        self._now: float | None = None
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(b for b in backends if b.weight > 0)
        keys = {b.key for b in self._backends}
        for key in [k for k, e in self._estimates.items() if k not in keys and e.pending == 0]:
            del self._estimates[key]
        for key in keys:
            self._estimates.setdefault(key, _Estimate())

    def _estimate(self, backend: Backend) -> _Estimate:
        estimate = self._estimates.get(backend.key)
        if estimate is None:
            estimate = self._estimates[backend.key] = _Estimate()
        return estimate

    def _update(self, estimate: _Estimate, sample: float, now: float) -> None:
        if sample > estimate.rtt:
            # Peak-sensitive: a worse sample is believed at once.
            estimate.rtt = sample
        else:
            elapsed = 0.0 if estimate.stamp is None else max(0.0, now - estimate.stamp)
            weight = math.exp(-elapsed / self.decay_seconds)
            estimate.rtt = estimate.rtt * weight + sample * (1.0 - weight)
        estimate.stamp = now

    def cost(self, backend: Backend, now: float | None = None) -> float:
        """The backend's current cost (decaying its estimate to ``now`` first)."""
        estimate = self._estimate(backend)
        when = self._now if now is None else now
        if when is not None:
            self._update(estimate, 0.0, when)
        if estimate.rtt == 0.0 and estimate.pending != 0:
            return PENALTY + estimate.pending
        return estimate.rtt * (estimate.pending + 1) / backend.weight

    def rtt(self, backend: Backend) -> float:
        """The current estimate in seconds (0 before the first sample), without decaying it."""
        estimate = self._estimates.get(backend.key)
        return 0.0 if estimate is None else estimate.rtt

    def started(self, backend: Backend) -> None:
        self._estimate(backend).pending += 1

    def ended(self, backend: Backend) -> None:
        estimate = self._estimates.get(backend.key)
        if estimate is None or estimate.pending == 0:
            return
        estimate.pending -= 1

    def observe(self, backend: Backend, latency_seconds: float, now: float) -> None:
        if latency_seconds < 0.0 or math.isnan(latency_seconds):
            return
        self._now = now if self._now is None else max(self._now, now)
        self._update(self._estimate(backend), latency_seconds, now)

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        if now is not None:
            self._now = now
        hosts: Sequence[Backend] = self._backends
        if avoid:
            hosts = [b for b in hosts if b not in avoid]
        size = len(hosts)
        if size == 0:
            return None
        if size == 1:
            return hosts[0]
        randrange = self._rng.randrange
        first = randrange(size)
        # A second, distinct draw (Finagle's P2C never compares a backend with itself).
        second = randrange(size - 1)
        if second >= first:
            second += 1
        a = hosts[first]
        b = hosts[second]
        return a if self.cost(a) <= self.cost(b) else b

"""Slow start: a new backend's weight ramps up over a window, as Envoy's slow start mode does.

Envoy (``EdfLoadBalancerBase::applySlowStartFactor`` in
``source/common/upstream/load_balancer_impl.cc``; docs "Slow start mode") scales a
backend's weight while it is younger than ``slow_start_window``::

    time_factor = max(1 ms, age) / window            (both in whole milliseconds)
    weight     *= max(min_weight_percent / 100, time_factor ** (1 / aggression))

A backend's age counts from when it first appeared in the set. The balancer has no
clock: it learns the time from ``pick(now=...)``, so a backend that arrives with
``update`` is stamped with the ``now`` of the next pick. A backend that leaves the set
and comes back starts again (it is a new pod, or one that was unready).
Used by round-robin and least-request, as in Envoy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Envoy's defaults (SlowStartConfig): aggression 1.0 (linear), min_weight_percent 10.
DEFAULT_AGGRESSION = 1.0
DEFAULT_MIN_WEIGHT_PERCENT = 10.0


@dataclass(frozen=True, slots=True)
class SlowStart:
    """Slow start settings; ``window`` 0 (the default) turns slow start off."""

    window: float = 0.0  # seconds
    aggression: float = DEFAULT_AGGRESSION
    min_weight_percent: float = DEFAULT_MIN_WEIGHT_PERCENT

    def __post_init__(self) -> None:
        if not self.window >= 0.0 or math.isinf(self.window):
            raise ValueError(f"slow start window must be a finite number >= 0, got {self.window}")
        if not self.aggression > 0.0 or math.isinf(self.aggression):
            raise ValueError(f"slow start aggression must be > 0, got {self.aggression}")
        if not 0.0 <= self.min_weight_percent <= 100.0:
            raise ValueError(
                "slow start min_weight_percent must be within 0..100, "
                f"got {self.min_weight_percent}"
            )

    @property
    def enabled(self) -> bool:
        """Whether the window is long enough to matter (Envoy works in whole ms)."""
        return self._window_ms > 0

    @property
    def _window_ms(self) -> int:
        return int(self.window * 1000.0)

    def factor(self, age: float) -> float:
        """The weight multiplier for a backend ``age`` seconds after it appeared."""
        window_ms = self._window_ms
        # Envoy truncates both durations to milliseconds (std::chrono::duration_cast).
        age_ms = int(age * 1000.0) if age > 0.0 else 0
        if window_ms <= 0 or age_ms >= window_ms:
            return 1.0
        time_factor = max(1, age_ms) / window_ms
        if self.aggression != 1.0:
            time_factor = time_factor ** (1.0 / self.aggression)
        return max(time_factor, self.min_weight_percent / 100.0)


class StartTimes:
    """When each backend (by key) joined the set, as far as the balancer can tell.

    Owned by one balancer. Keys added by ``update`` are unstamped until ``stamp(now)``.
    """

    __slots__ = ("_latest", "_since", "_unstamped")

    def __init__(self) -> None:
        self._since: dict[str, float | None] = {}
        self._unstamped: list[str] = []
        self._latest: float | None = None

    def update(self, keys: Iterable[str]) -> None:
        """Take the set's keys: remember new ones, forget departed ones."""
        current = set(keys)
        for key in [k for k in self._since if k not in current]:
            del self._since[key]
        for key in sorted(current):
            if key not in self._since:
                self._since[key] = None
                self._unstamped.append(key)

    def stamp(self, now: float) -> None:
        """Give every backend not yet stamped the start time ``now``."""
        if not self._unstamped:
            return
        for key in self._unstamped:
            if key in self._since and self._since[key] is None:
                self._since[key] = now
                self._latest = now
        self._unstamped.clear()

    def age(self, key: str, now: float) -> float:
        """Seconds since ``key`` joined (0 when not yet stamped)."""
        since = self._since.get(key)
        return 0.0 if since is None else max(0.0, now - since)

    def any_in_window(self, window: float, now: float) -> bool:
        """Whether some backend joined less than ``window`` seconds before ``now``."""
        if self._unstamped:
            return True
        return self._latest is not None and now - self._latest < window

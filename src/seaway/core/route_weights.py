"""Weighted choice among a route's backendRefs (Gateway API weights, pure)."""

from __future__ import annotations

from seaway.core.routes import RouteBackend


class SmoothWeights:
    """Smooth weighted round-robin over a route's backends (nginx's algorithm).

    Every pick adds each weight to its entry's current value, takes the largest and
    subtracts the total from it: over ``sum(weights)`` picks each entry is picked
    ``weight`` times, interleaved.
    """

    __slots__ = ("current", "entries", "total")

    def __init__(self, entries: tuple[RouteBackend, ...]) -> None:
        self.entries = tuple(e for e in entries if e.weight > 0)
        self.current = [0] * len(self.entries)
        self.total = sum(e.weight for e in self.entries)

    def pick(self) -> RouteBackend | None:
        if not self.entries:
            return None
        best = 0
        for i, entry in enumerate(self.entries):
            self.current[i] += entry.weight
            if self.current[i] > self.current[best]:
                best = i
        self.current[best] -= self.total
        return self.entries[best]

"""FlowTable: a bounded, idle-expiring map (seaway's user-space conntrack).

Used for UDP flows (client -> backend socket) and ClientIP session affinity
(client IP -> backend). Every operation is O(1): an insertion-ordered dict kept in
least-recently-used order (``move_to_end`` on each hit). Time is passed in, so the
table is pure and tests use exact times. (The workers of ``seaway run --workers N``
keep ClientIP affinity in one table they share instead:
``seaway.core.sharing.SharedAffinityTable``, with the same ``get``/``put``/``expire``.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FlowTable(Generic[K, V]):
    """At most ``max_entries`` flows; a flow unseen for ``idle_timeout`` seconds is gone.

    When the table is full, inserting evicts the least recently used flow.
    ``on_evict(key, value)`` is called for every flow removed by expiry or eviction
    (not for ``pop``), so the owner can release what the flow holds.
    """

    __slots__ = ("_entries", "idle_timeout", "max_entries", "on_evict")

    def __init__(
        self,
        max_entries: int,
        idle_timeout: float,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self.max_entries = max_entries
        self.idle_timeout = idle_timeout
        self.on_evict = on_evict
        # key -> (value, last seen); order = least recently used first.
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K, now: float) -> V | None:
        """The flow's value, refreshing it; None when absent or idle past the timeout."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, last_seen = entry
        if now - last_seen >= self.idle_timeout:
            del self._entries[key]
            if self.on_evict is not None:
                self.on_evict(key, value)
            return None
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, now: float) -> None:
        """Insert or replace a flow, evicting the least recently used one when full."""
        if key in self._entries:
            self._entries[key] = (value, now)
            self._entries.move_to_end(key)
            return
        while len(self._entries) >= self.max_entries:
            old_key, (old_value, _) = self._entries.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old_key, old_value)
        self._entries[key] = (value, now)

    def pop(self, key: K) -> V | None:
        """Remove a flow without calling ``on_evict``."""
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[0]

    def expire(self, now: float) -> int:
        """Remove every flow idle for ``idle_timeout`` or longer; return how many."""
        removed = 0
        # LRU order means the idle flows are at the front: stop at the first live one.
        while self._entries:
            key, (value, last_seen) = next(iter(self._entries.items()))
            if now - last_seen < self.idle_timeout:
                break
            del self._entries[key]
            removed += 1
            if self.on_evict is not None:
                self.on_evict(key, value)
        return removed

    def items(self) -> Iterator[tuple[K, V]]:
        """Flows in least-recently-used order (a snapshot; safe to mutate the table)."""
        return iter([(k, v) for k, (v, _) in self._entries.items()])

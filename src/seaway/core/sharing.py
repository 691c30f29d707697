"""What the core asks of state shared between the worker processes of one seaway.

With ``seaway run --workers N`` the workers balance on connection counts summed over
every worker and share one ClientIP affinity table. The store lives in shared memory
(``seaway.shared_state``, an edge module); the core sees it only through the small
Protocols here, and keys its entries with ``shared_key`` (xxHash64 with a fixed seed,
so that every worker computes the same key for the same thing).

``SharedAffinityTable`` puts a shared affinity store behind the ``get``/``put``/
``expire`` that ``LiveBackendSet`` uses on its own ``FlowTable``.

Active health checks are shared too: worker 0 probes and publishes each target's
results as a sequence number and a window of the last ``HEALTH_HISTORY_BITS``
results; the other workers replay what they missed (``missed_results``) as the
events the prober would have reported. ``health_target_key`` names a target and
``health_slot_check`` guards a published slot against torn reads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Protocol

import xxhash

from seaway.core.config import Backend, HealthCheck

# Fixed seed of the shared-state keys. Every worker must compute the same key, and
# the key never changes between releases without a layout version change.
SHARED_KEY_SEED = 0x5EA1A7

# Key hashes cached per backend set before the cache starts over (backends churn as
# pods come and go; the cache must not grow with every pod that ever existed).
MAX_CACHED_KEYS = 4096

# Results of one health check target kept in its shared slot: one bit each, newest
# in bit 0. A follower that missed more than this replays the last ones only.
HEALTH_HISTORY_BITS = 64
HEALTH_HISTORY_MASK = (1 << HEALTH_HISTORY_BITS) - 1
_SLOT_WORDS = struct.Struct("<QQQ")


def shared_key(*parts: str) -> int:
    """The 64-bit key of a shared entry: xxHash64 of the parts joined by NUL.

    Never 0: the shared tables use 0 for "empty slot".
    """
    digest = int(xxhash.xxh64_intdigest("\0".join(parts).encode(), SHARED_KEY_SEED))
    return digest or 1


class SharedCounts(Protocol):
    """Connection counts of every worker: this process adds to its own row only."""

    def increment(self, key: int) -> None:
        """One more connection of this process to ``key``."""

    def decrement(self, key: int) -> None:
        """One connection of this process to ``key`` ended (never below zero)."""

    def reset(self, key: int) -> None:
        """Forget this process's count of ``key`` (its balancer no longer counts)."""

    def total(self, key: int) -> int:
        """The count of ``key`` summed over every worker."""

    def reader(self, key_of: Callable[[str], int]) -> Callable[[str, int], int]:
        """``count_of(name, default)``: ``total(key_of(name))``, for the balancers'
        scans (one call per backend per pick: the store may cache per name)."""


class SharedAffinity(Protocol):
    """One ClientIP affinity table for every worker: client key -> backend key."""

    def lookup(self, key: int, now: float, timeout: float) -> int | None:
        """The backend key remembered for ``key``, unless unseen for ``timeout`` s."""

    def store(self, key: int, value: int, now: float) -> None:
        """Remember ``value`` for ``key``, seen at ``now``."""


class SharedState(Protocol):
    """What a data plane gives its backend sets to share with the other workers.

    ``scope`` keeps apart the sets of different planes that have the same key (the
    L4 proxy and the HTTP proxy may both serve ``default/web:80/TCP``).
    """

    @property
    def scope(self) -> str: ...

    @property
    def counts(self) -> SharedCounts: ...

    @property
    def affinity(self) -> SharedAffinity: ...


class SharedAffinityTable:
    """A backend set's ClientIP affinity in the shared store.

    Maps client addresses to backend keys as ``FlowTable[str, str]`` does for one
    process; entries idle for ``idle_timeout`` are misses. The shared store is
    bounded and overwrites old entries itself, so ``expire`` has nothing to do.
    """

    __slots__ = ("_by_hash", "_hashes", "_prefix", "_store", "idle_timeout")

    def __init__(
        self,
        store: SharedAffinity,
        prefix: str,
        idle_timeout: float,
        backends: Iterable[Backend] = (),
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self._store = store
        self._prefix = prefix
        self.idle_timeout = idle_timeout
        self._hashes: dict[str, int] = {}
        self._by_hash: dict[int, str] = {}
        self.update_backends(backends)

    def update_backends(self, backends: Iterable[Backend]) -> None:
        """The set's members: the backends an entry may name."""
        self._hashes = {b.key: shared_key(b.key) for b in backends}
        self._by_hash = {h: key for key, h in self._hashes.items()}

    def get(self, client: str, now: float) -> str | None:
        """The backend key remembered for ``client``; None when unknown, idle or gone."""
        value = self._store.lookup(shared_key(self._prefix, client), now, self.idle_timeout)
        return None if value is None else self._by_hash.get(value)

    def put(self, client: str, backend_key: str, now: float) -> None:
        """Remember ``backend_key`` for ``client`` (refreshes the entry's idle time)."""
        value = self._hashes.get(backend_key)
        if value is None:
            value = shared_key(backend_key)
        self._store.store(shared_key(self._prefix, client), value, now)

    def expire(self, now: float) -> int:
        """Nothing to sweep: lookups ignore idle entries and the store reuses them."""
        return 0


def health_target_key(address: str, port: int, check: HealthCheck) -> int:
    """The shared key of one probe target: its address, port and every field of its
    check (two sets whose checks differ in anything are two targets, as for the
    scheduler). Floats are written with ``repr``: the same text in every process."""
    statuses = ",".join(f"{low}-{high}" for low, high in check.expected_statuses)
    return shared_key(
        "health",
        address,
        str(port),
        check.protocol,
        "" if check.port is None else str(check.port),
        check.path,
        statuses,
        repr(check.interval),
        repr(check.timeout),
        str(check.healthy_threshold),
        str(check.unhealthy_threshold),
        repr(check.initial_jitter),
    )


def health_slot_check(key: int, sequence: int, history: int) -> int:
    """The check word of a published health slot: a hash of its three other words.

    A reader that catches the single writer between its stores sees words of two
    different results, whose hash is not the check (a xor could match by chance:
    consecutive results change sequence and history together).
    """
    return int(xxhash.xxh64_intdigest(_SLOT_WORDS.pack(key, sequence, history), SHARED_KEY_SEED))


def record_result(sequence: int, history: int, passed: bool) -> tuple[int, int]:
    """The (sequence, history) of a slot after one more result."""
    return sequence + 1, ((history << 1) | int(passed)) & HEALTH_HISTORY_MASK


def missed_results(last_sequence: int | None, sequence: int, history: int) -> tuple[bool, ...]:
    """The results a follower has not applied yet, oldest first (True: passed).

    ``last_sequence`` is the sequence the follower applied up to; None when it never
    saw the slot, or when the slot's sequence went backwards (the slot was given up
    and taken again): then everything the window holds is new to it. At most
    ``HEALTH_HISTORY_BITS`` results: the last ones when more were missed.
    """
    if last_sequence is None or sequence < last_sequence:
        missed = sequence
    else:
        missed = sequence - last_sequence
    missed = min(missed, HEALTH_HISTORY_BITS)
    return tuple(bool((history >> i) & 1) for i in range(missed - 1, -1, -1))

"""Maglev consistent hashing, producing the same lookup table as Envoy.

Maglev (D. E. Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
Balancer", NSDI 2016, section 3.4, pseudocode listing 1) fills a table of prime size M:
each backend has a permutation of the table slots, ``(offset + skip * j) % M``, and the
backends take turns claiming their next unclaimed slot until the table is full. A
flow goes to ``table[hash % M]``. When a backend is removed, only the slots it held
and a few others change owner, so most flows keep their backend.

Matched against Envoy's ``source/extensions/load_balancing_policies/maglev/maglev_lb.cc``
(``MaglevTable::constructMaglevTableInternal`` and
``OriginalMaglevTable::constructImplementationInternals``, Envoy 1.30+; the same
algorithm as ``source/common/upstream/maglev_lb.cc`` since weights were added), with
the weights normalised as ``normalizeHostWeights`` in
``source/common/upstream/thread_aware_lb_impl.cc`` does for one locality:

- the host key is ``host->address()->asString()``: ``ip:port`` or ``[ipv6]:port``,
  which is ``Backend.key``;
- hosts are sorted by that key (byte order) before the table is built;
- ``offset = xxHash64(key, seed 0) % M`` and ``skip = xxHash64(key, seed 1) % (M - 1) + 1``;
- each host's weight is normalised to ``weight / sum(weights)`` (a double), and
  ``max_weight`` is the largest normalised weight;
- iteration ``i`` (from 1) visits the hosts in order; a host whose
  ``i * weight < target_weight`` is skipped, otherwise its ``target_weight`` grows by
  ``max_weight`` and it claims the next free slot of its permutation.

Envoy's table holds hosts; ``build_maglev_table`` returns indices into the sorted key
list instead, which is the same table. Python floats are IEEE doubles and the same
operations are done in the same order, so weighted tables match bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import ClassVar

import xxhash

from seaway.core.balancers.base import FLOW_HASH, Balancer, unique_sorted
from seaway.core.config import Backend

# Section 5.3 of the Maglev paper recommends 65537; it is also Envoy's default.
DEFAULT_TABLE_SIZE = 65537
# Envoy hashes the host key with xxHash64 seed 0 for the offset and seed 1 for the skip.
OFFSET_SEED = 0
SKIP_SEED = 1


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime (trial division; table sizes are small)."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


def build_maglev_table(keys_and_weights: Sequence[tuple[str, int]], table_size: int) -> list[int]:
    """The Maglev lookup table for these hosts, as indices into the sorted key list.

    ``keys_and_weights`` holds each host's key (``Backend.key``) and integer weight
    (at least 1); keys must be unique. Returns ``[]`` for no hosts. Raises
    ``ValueError`` when ``table_size`` is not prime (the permutation would not visit
    every slot and the build would never end), a weight is below 1, or a key repeats.
    """
    if not is_prime(table_size):
        raise ValueError(f"Maglev table size must be prime, got {table_size}")
    if not keys_and_weights:
        return []
    hosts = sorted(keys_and_weights)
    previous_key = None
    for key, weight in hosts:
        if weight < 1:
            raise ValueError(f"Maglev host {key!r} has weight {weight}; weights start at 1")
        if key == previous_key:
            raise ValueError(f"Maglev host key {key!r} appears more than once")
        previous_key = key

    m = table_size
    hash64 = xxhash.xxh64_intdigest
    # Current slot of each host's permutation; advancing by ``skip`` modulo M walks
    # (offset + skip * next) % M without a multiplication per probe.
    position = []
    skips = []
    for key, _weight in hosts:
        encoded = key.encode()
        position.append(hash64(encoded, OFFSET_SEED) % m)
        skips.append(hash64(encoded, SKIP_SEED) % (m - 1) + 1)

    table = [-1] * m
    count = len(hosts)
    weights = [weight for _key, weight in hosts]
    if min(weights) == max(weights):
        _fill_unweighted(table, position, skips, count, m)
    else:
        total = sum(weights)
        normalized = [float(weight) / total for weight in weights]
        _fill_weighted(
            table, position, skips, normalized=normalized, max_weight=max(normalized), m=m
        )
    return table


def _fill_unweighted(
    table: list[int], position: list[int], skips: list[int], count: int, m: int
) -> None:
    """Equal weights: every host claims a slot on every iteration.

    Envoy's weight test never skips a host whose weight is the maximum (``i * w`` is a
    full weight ahead of ``(i - 1)`` additions of ``w``), so leaving the test out gives
    the same table, faster.
    """
    filled = 0
    while True:
        for i in range(count):
            c = position[i]
            skip = skips[i]
            while table[c] >= 0:
                c += skip
                if c >= m:
                    c -= m
            table[c] = i
            c += skip
            position[i] = c - m if c >= m else c
            filled += 1
            if filled == m:
                return


def _fill_weighted(
    table: list[int],
    position: list[int],
    skips: list[int],
    *,
    normalized: list[float],
    max_weight: float,
    m: int,
) -> None:
    """Weighted fill, exactly Envoy's ``target_weight`` rule."""
    count = len(normalized)
    target = [0.0] * count
    filled = 0
    iteration = 1
    while filled < m:
        for i in range(count):
            if iteration * normalized[i] < target[i]:
                continue
            target[i] += max_weight
            c = position[i]
            skip = skips[i]
            while table[c] >= 0:
                c += skip
                if c >= m:
                    c -= m
            table[c] = i
            c += skip
            position[i] = c - m if c >= m else c
            filled += 1
            if filled == m:
                return
        iteration += 1


class MaglevBalancer(Balancer):
    """Picks ``table[flow_hash % M]`` from a Maglev table built like Envoy's.

    On retry (``avoid`` not empty) it walks forward through the table from that slot
    to the first entry whose backend is not avoided, so that a retried flow still
    lands on a backend chosen by its hash.
    """

    name: ClassVar[str] = "maglev"
    consistent: ClassVar[bool] = True
    needs: ClassVar[frozenset[str]] = frozenset({FLOW_HASH})

    def __init__(
        self, backends: Sequence[Backend], *, table_size: int = DEFAULT_TABLE_SIZE
    ) -> None:
        if not is_prime(table_size):
            raise ValueError(f"Maglev table size must be prime, got {table_size}")
        self.table_size = table_size
        self._hosts: list[Backend] = []
        self._table: list[int] = []
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        # Weight 0 means "send nothing".
        self._hosts = unique_sorted(b for b in backends if b.weight > 0)
        self._table = build_maglev_table(
            [(host.key, host.weight) for host in self._hosts], self.table_size
        )

    @property
    def table(self) -> tuple[int, ...]:
        """The lookup table (indices into ``backends``), for inspection and tests."""
        return tuple(self._table)

    @property
    def backends(self) -> tuple[Backend, ...]:
        """The backends in table order (sorted by key)."""
        return tuple(self._hosts)

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        table = self._table
        if not table:
            return None
        hosts = self._hosts
        slot = flow_hash % self.table_size
        backend = hosts[table[slot]]
        if not avoid or backend not in avoid:
            return backend
        if all(host in avoid for host in hosts):
            # Every backend already failed for this flow: nothing is left to try.
            return None
        size = self.table_size
        for step in range(1, size):
            backend = hosts[table[(slot + step) % size]]
            if backend not in avoid:
                return backend
        # More hosts than slots: the hosts not avoided own no slot.
        return None

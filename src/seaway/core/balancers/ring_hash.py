"""Ring hash (ketama-style consistent hashing), building the same ring as Envoy's RING_HASH.

Matched against Envoy's ``RingHashLoadBalancer::Ring::Ring`` and ``Ring::chooseHost``
(``source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc``), with the
weights normalised as ``normalizeHostWeights`` does for one locality:

- each host's weight is normalised to ``weight / sum(weights)``;
- ``scale = min(ceil(min_weight * minimum_ring_size) / min_weight, maximum_ring_size)``,
  so that the lightest host gets a whole number of entries;
- walking the hosts, running sums ``target += scale * weight`` and ``current`` (one per
  entry) decide how many entries each host gets; entry ``i`` of a host hashes the key
  ``"<host key>_<i>"`` (``Backend.key``, i.e. ``ip:port``, is Envoy's
  ``address()->asString()``) with xxHash64, seed 0;
- the ring is sorted by hash; a flow goes to the first entry whose hash is ``>=`` the
  flow's hash, wrapping to the first entry (Envoy's binary search, ported from
  libketama's ``ketama_get_server``, finds that same entry).

Envoy walks hosts in the order of its host set; seaway sorts them by key so that the
ring never depends on the order the endpoints were listed in (with fractional entry
counts, the order decides which host gets the extra entry).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence, Set
from typing import ClassVar

import xxhash

from seaway.core.balancers.base import FLOW_HASH, Balancer, unique_sorted
from seaway.core.config import Backend

# Envoy's RingHashLbConfig defaults: minimum_ring_size 1024, maximum_ring_size 8M
# (8388608, also the largest value Envoy accepts).
DEFAULT_MINIMUM_RING_SIZE = 1024
DEFAULT_MAXIMUM_RING_SIZE = 8 * 1024 * 1024
# HashUtil::xxHash64 uses seed 0.
RING_HASH_SEED = 0


def build_ring(
    keys_and_weights: Sequence[tuple[str, int]],
    *,
    minimum_ring_size: int = DEFAULT_MINIMUM_RING_SIZE,
    maximum_ring_size: int = DEFAULT_MAXIMUM_RING_SIZE,
) -> tuple[list[int], list[int]]:
    """The ring as (sorted entry hashes, index of each entry's host in sorted keys).

    ``keys_and_weights``: each host's key and integer weight (at least 1), keys unique.
    Raises ``ValueError`` for bad sizes or weights.
    """
    if not 1 <= minimum_ring_size <= maximum_ring_size <= DEFAULT_MAXIMUM_RING_SIZE:
        raise ValueError(
            "ring hash sizes must satisfy 1 <= minimum <= maximum <= "
            f"{DEFAULT_MAXIMUM_RING_SIZE}, got {minimum_ring_size} and {maximum_ring_size}"
        )
    if not keys_and_weights:
        return [], []
    hosts = sorted(keys_and_weights)
    for index, (key, weight) in enumerate(hosts):
        if weight < 1:
            raise ValueError(f"ring hash host {key!r} has weight {weight}; weights start at 1")
        if index and hosts[index - 1][0] == key:
            raise ValueError(f"ring hash host key {key!r} appears more than once")
    total = sum(weight for _key, weight in hosts)
    normalized = [float(weight) / total for _key, weight in hosts]
    min_weight = min(normalized)
    scale = min(math.ceil(min_weight * minimum_ring_size) / min_weight, float(maximum_ring_size))

    hash64 = xxhash.xxh64_intdigest
    entries: list[tuple[int, int]] = []
    current = 0.0
    target = 0.0
    for host_index, (key, _weight) in enumerate(hosts):
        prefix = f"{key}_"
        target += scale * normalized[host_index]
        i = 0
        while current < target:
            entries.append((hash64(f"{prefix}{i}".encode(), RING_HASH_SEED), host_index))
            i += 1
            current += 1.0
    # Envoy sorts by hash only; equal hashes (never seen in practice) keep host order here.
    entries.sort()
    return [h for h, _ in entries], [i for _, i in entries]


class RingHashBalancer(Balancer):
    """Picks the first ring entry at or after the flow's hash, from a ring built like Envoy's.

    On retry (``avoid`` not empty) it walks clockwise to the first entry whose backend
    is not avoided.
    """

    name: ClassVar[str] = "ring-hash"
    consistent: ClassVar[bool] = True
    needs: ClassVar[frozenset[str]] = frozenset({FLOW_HASH})

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        minimum_ring_size: int = DEFAULT_MINIMUM_RING_SIZE,
        maximum_ring_size: int = DEFAULT_MAXIMUM_RING_SIZE,
    ) -> None:
        self.minimum_ring_size = minimum_ring_size
        self.maximum_ring_size = maximum_ring_size
        self._hosts: list[Backend] = []
        self._hashes: list[int] = []
        self._owners: list[Backend] = []
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        hosts = unique_sorted(b for b in backends if b.weight > 0)
        hashes, owners = build_ring(
            [(host.key, host.weight) for host in hosts],
            minimum_ring_size=self.minimum_ring_size,
            maximum_ring_size=self.maximum_ring_size,
        )
        self._hosts = hosts
        self._hashes = hashes
        self._owners = [self._hosts[i] for i in owners]

    @property
    def ring(self) -> tuple[tuple[int, Backend], ...]:
        """The ring as (hash, backend) pairs in hash order, for inspection and tests."""
        return tuple(zip(self._hashes, self._owners, strict=True))

    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        hashes = self._hashes
        if not hashes:
            return None
        size = len(hashes)
        index = bisect.bisect_left(hashes, flow_hash)
        if index == size:
            index = 0
        backend = self._owners[index]
        if not avoid or backend not in avoid:
            return backend
        if all(host in avoid for host in self._hosts):
            return None
        owners = self._owners
        for step in range(1, size):
            backend = owners[(index + step) % size]
            if backend not in avoid:
                return backend
        return None

"""IPVS ``sh``: source hashing, as ``net/netfilter/ipvs/ip_vs_sh.c`` schedules.

The client's address picks one of 256 buckets; each bucket holds a backend, assigned
by weight (see ``ipvs_hash_table``). Every connection from one client goes to the same
backend as long as the set does not change; when it changes, the buckets are dealt
again and most clients move (this is not consistent hashing, see docs/balancing.md).

The kernel hashes the address with ``hash_32(ntohl(addr), 8)``; seaway takes the low
8 bits of ``source_hash(client address)`` (xxHash64), so a given client may sit in a
different bucket than under IPVS, but the table is the kernel's. When the bucket's
backend is unavailable (weight 0, or in ``avoid`` on retry) seaway walks the table as
the kernel's ``sh-fallback`` flag does, rather than refusing the connection.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.balancers.base import SOURCE_HASH, Balancer, unique_sorted
from seaway.core.balancers.ipvs_hash_table import (
    TABLE_MASK,
    build_bucket_table,
    fallback_buckets,
)
from seaway.core.config import Backend


class SourceHashingBalancer(Balancer):
    """Picks ``table[source_hash & 255]`` from IPVS's weighted 256-bucket table."""

    name: ClassVar[str] = "sh"
    consistent: ClassVar[bool] = True
    needs: ClassVar[frozenset[str]] = frozenset({SOURCE_HASH})
    weighted: ClassVar[bool] = True

    def __init__(self, backends: Sequence[Backend]) -> None:
        self._table: list[Backend] = []
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._table = build_bucket_table(unique_sorted(backends), weighted=self.weighted)

    @property
    def table(self) -> tuple[Backend, ...]:
        """The 256 buckets (empty when there are no backends), for inspection and tests."""
        return tuple(self._table)

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
        bucket = flow_hash & TABLE_MASK
        backend = table[bucket]
        if backend.weight > 0 and not (avoid and backend in avoid):
            return backend
        for other in fallback_buckets(bucket):
            backend = table[other]
            if backend.weight > 0 and backend not in avoid:
                return backend
        return None

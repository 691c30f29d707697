"""The 256-bucket table shared by the IPVS hashing schedulers ``sh`` and ``dh``.

``ip_vs_sh_reassign`` (``net/netfilter/ipvs/ip_vs_sh.c``) walks the destination list
round-robin and gives each destination ``weight`` consecutive buckets (a destination
of weight 0 still takes one bucket, and is then unavailable); ``ip_vs_dh_reassign``
(``ip_vs_dh.c``) gives each destination one bucket per turn, ignoring weights. Both
fill all 256 buckets, wrapping around the list, so with more than 256 buckets' worth
of destinations the last ones get none: that is the kernel's behaviour and seaway
keeps it.

The kernel walks destinations in the order they were added, which differs between
nodes; seaway sorts backends by key so that every instance builds the same table.
"""

from __future__ import annotations

from collections.abc import Sequence

from seaway.core.config import Backend

# IP_VS_SH_TAB_BITS and IP_VS_DH_TAB_BITS are 8: 256 buckets.
TABLE_BITS = 8
TABLE_SIZE = 1 << TABLE_BITS
TABLE_MASK = TABLE_SIZE - 1


def build_bucket_table(hosts: Sequence[Backend], *, weighted: bool) -> list[Backend]:
    """The 256 buckets, each holding a host; ``[]`` for no hosts.

    ``weighted``: ``sh``'s rule (``weight`` consecutive buckets per turn, at least one);
    otherwise ``dh``'s (one bucket per turn).
    """
    if not hosts:
        return []
    table: list[Backend] = []
    index = 0
    given = 0
    while len(table) < TABLE_SIZE:
        host = hosts[index]
        table.append(host)
        given += 1
        # ip_vs_sh_reassign: `if (++d_count >= weight)` move to the next destination.
        if not weighted or given >= host.weight:
            index = (index + 1) % len(hosts)
            given = 0
    return table


def fallback_buckets(bucket: int) -> list[int]:
    """The buckets ``ip_vs_sh_get_fallback`` tries, in order, after ``bucket``.

    The kernel computes ``roffset = (offset + ihash) % 256`` and then hashes again with
    that offset added, ``(roffset + ihash) & 255``: the walk starts at ``2 * ihash``
    and visits all 256 buckets.
    """
    start = 2 * bucket
    return [(start + offset) & TABLE_MASK for offset in range(TABLE_SIZE)]

"""IPVS ``dh``: destination hashing, as ``net/netfilter/ipvs/ip_vs_dh.c`` schedules.

IPVS hashes the packet's destination address into 256 buckets, each holding one
destination (dealt one per turn, weights ignored). It was made for cache farms, where
many destination addresses sit behind one virtual service. In kube-proxy's IPVS mode,
and in seaway at L4, a Service's destination is its virtual IP: every flow to one VIP
hashes to the same bucket, so **all of a VIP's traffic goes to one backend**, and the
others serve nothing unless that one leaves (then the table is dealt again). That is
what ``dh`` does for a Service; seaway reproduces it faithfully and documents it.

What is hashed: ``destination_hash(destination address)``, the VIP (or loopback
address) the client connected to, not its port. The proxy passes it as ``flow_hash``
(``needs`` says ``destination_hash``). When the bucket's backend is unavailable (weight
0, or in ``avoid`` on retry) seaway walks the table like ``sh-fallback`` instead of
refusing the connection (the kernel's ``dh`` has no fallback and refuses).
"""

from __future__ import annotations

from typing import ClassVar

from seaway.core.balancers.base import DESTINATION_HASH
from seaway.core.balancers.source_hashing import SourceHashingBalancer


class DestinationHashingBalancer(SourceHashingBalancer):
    """Picks ``table[destination_hash & 255]`` from IPVS's unweighted 256-bucket table."""

    name: ClassVar[str] = "dh"
    needs: ClassVar[frozenset[str]] = frozenset({DESTINATION_HASH})
    weighted: ClassVar[bool] = False

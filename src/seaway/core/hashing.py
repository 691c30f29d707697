"""Deterministic flow hashing (xxHash64 with fixed seeds, never Python's ``hash()``).

Every seaway instance computes the same hash for the same flow, so instances that
share a backend set choose the same backend.
"""

from __future__ import annotations

import xxhash

# Fixed seed for flow hashing; changing it remaps every flow of every fleet.
FLOW_HASH_SEED = 0


def flow_hash(protocol: str, src_ip: str, src_port: int, dst_ip: str, dst_port: int) -> int:
    """Hash of a flow's 5-tuple."""
    key = f"{protocol}|{src_ip}|{src_port}|{dst_ip}|{dst_port}".encode()
    return int(xxhash.xxh64_intdigest(key, FLOW_HASH_SEED))


def source_hash(src_ip: str) -> int:
    """Hash of the client address alone (for ``hash-on: source-ip``)."""
    return int(xxhash.xxh64_intdigest(src_ip.encode(), FLOW_HASH_SEED))


def destination_hash(destination_address: str) -> int:
    """Hash of the address a client connected to (the VIP), for IPVS-style ``dh``."""
    return int(xxhash.xxh64_intdigest(destination_address.encode(), FLOW_HASH_SEED))

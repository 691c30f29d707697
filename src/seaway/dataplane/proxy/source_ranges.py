"""loadBalancerSourceRanges: whether a client address may use a listener."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def source_allowed(address: str, ranges: Sequence[Network]) -> bool:
    """True when ``ranges`` is empty (everyone allowed) or one of them holds ``address``.

    An IPv4 client seen through a dual-stack socket (``::ffff:a.b.c.d``) is matched
    as the IPv4 address it is; a zone suffix (``fe80::1%eth0``) is ignored.
    """
    if not ranges:
        return True
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in ranges)

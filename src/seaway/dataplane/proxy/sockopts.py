"""Socket options the proxy sets on every TCP leg: keepalive, no-delay, reset on close."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from seaway.model.objects import KeepaliveSettings

# struct linger {int l_onoff; int l_linger;}: on, zero seconds. close() then discards
# unsent data and sends an RST instead of a FIN (socket(7), SO_LINGER).
_LINGER_RESET = struct.pack("ii", 1, 0)


def _socket_of(transport: asyncio.BaseTransport) -> Any:
    # asyncio gives a TransportSocket and uvloop a PseudoSocket; both forward
    # setsockopt to the real descriptor.
    return transport.get_extra_info("socket")


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn off Nagle's algorithm: a proxy should not add latency to small writes."""
    sock = _socket_of(transport)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_keepalive(transport: asyncio.BaseTransport, settings: KeepaliveSettings) -> None:
    """Apply seaway's keepalive settings (or turn keepalive off) on a TCP socket."""
    sock = _socket_of(transport)
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if settings.enabled else 0)
    if not settings.enabled:
        return
    # TCP_KEEPIDLE/INTVL/CNT are Linux names (tcp(7)); macOS has TCP_KEEPALIVE for idle.
    idle_option = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None))
    if idle_option is not None:
        sock.setsockopt(socket.IPPROTO_TCP, idle_option, settings.idle_seconds)
    if hasattr(socket, "TCP_KEEPINTVL"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, settings.interval_seconds)
    if hasattr(socket, "TCP_KEEPCNT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, settings.count)


def reset(transport: asyncio.BaseTransport) -> None:
    """Close a TCP connection with an RST, at once, discarding anything unsent.

    kube-proxy REJECTs connections it cannot serve instead of dropping them, so
    clients fail fast rather than hang; an RST is the user-space equivalent.
    """
    sock = _socket_of(transport)
    if sock is not None:
        # Already closed by the peer: abort() below is all that is left to do.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    # uvloop's transports implement abort() without subclassing asyncio.Transport.
    abort = getattr(transport, "abort", None)
    if abort is not None:
        abort()
    else:
        transport.close()

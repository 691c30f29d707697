"""Listen addresses as people write them: ``host:port`` and ``[v6-host]:port``."""

from __future__ import annotations

import socket

from seaway.core.config import join_host_port


def parse_host_port(address: str) -> tuple[str, int]:
    """Split ``127.0.0.1:8080`` or ``[::1]:8080`` into host and port.

    An IPv6 host must be in brackets (RFC 3986 section 3.2.2), else its last group
    could not be told from the port.
    """
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"invalid address {address!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError(f"invalid address {address!r}: expected HOST:PORT")
        if ":" in host:
            raise ValueError(
                f"invalid address {address!r}: put an IPv6 host in brackets, e.g. [::1]:8080"
            )
    if not host:
        raise ValueError(f"invalid address {address!r}: the host is missing")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"invalid address {address!r}: the port must be 0 to 65535")
    return host, int(port_text)


def format_sockname(sock: socket.socket) -> str:
    """The ``host:port`` (bracketed for IPv6) a socket is bound to."""
    host, port = sock.getsockname()[:2]
    return join_host_port(str(host), int(port))

"""Telling HTTP from other bytes at the start of a connection, and passing it on.

A port that serves HTTP and something else (a raw TCP echo, say) decides from the
first bytes: an HTTP/1.x request starts with a method token followed by a space
(RFC 9112 section 3). Every registered method and every method clients send in
practice is upper-case letters, with ``-`` or ``_`` in a few extensions (``M-SEARCH``),
so that narrower shape is what is recognised: lower-case text, binary data and
PROXY-protocol-less TLS are never mistaken for HTTP.
"""

from __future__ import annotations

import asyncio

# Longer than any registered method (``UPDATEREDIRECTREF`` is 17); a longer run of
# capitals without a space is not a request line.
MAX_METHOD_LENGTH = 20

_METHOD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")


def looks_like_http(prefix: bytes) -> bool | None:
    """Whether a connection starting with ``prefix`` is HTTP/1.x; None: need more bytes."""
    for i, byte in enumerate(prefix[: MAX_METHOD_LENGTH + 1]):
        if byte == 0x20:  # SP ends the method token
            return i > 0
        if byte not in _METHOD_BYTES or (i == 0 and byte in b"-_"):
            return False
    return None if len(prefix) <= MAX_METHOD_LENGTH else False


def hand_over(
    transport: asyncio.BaseTransport, protocol: asyncio.Protocol, buffered: bytes
) -> None:
    """Make ``protocol`` the owner of ``transport``, as if it had been there from the start.

    ``buffered`` is what the previous protocol read and did not consume; the new
    protocol receives it before anything else.
    """
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if buffered and not transport.is_closing():
        protocol.data_received(buffered)

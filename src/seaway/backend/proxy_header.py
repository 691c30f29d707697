"""An optional PROXY protocol header before a backend connection's first byte.

Decoding is :mod:`seaway.dataplane.proxy.proxy_protocol`'s; this module only
decides, from the first bytes, whether a header is there (v1 opens with
``PROXY ``, v2 with its 12-byte signature) and passes the connection on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from seaway.dataplane.proxy.proxy_protocol import (
    V1_PREFIX,
    V2_SIGNATURE,
    MalformedProxyHeader,
    ProxyHeader,
    decode,
)
from seaway.http1 import ConnectionSet, hand_over

logger = logging.getLogger(__name__)

# A first chunk that is only the start of a signature ("P", "\r\n") and stays so
# for this long has no header behind it: senders write the header in one piece.
UNDECIDED_SECONDS = 1.0
# Once a signature has arrived, the whole header must follow within this time.
HEADER_SECONDS = 10.0

NextProtocol = Callable[[tuple[str, int] | None], asyncio.Protocol]
"""Builds the protocol for the rest of the connection, given the client a header named."""


def _client(header: ProxyHeader) -> tuple[str, int] | None:
    # LOCAL and UNKNOWN headers carry no addresses: the real peer is the client.
    if not header.addresses_known:
        return None
    return header.source_address, header.source_port


def _starts_header(data: bytes) -> bool:
    return data.startswith((V1_PREFIX, V2_SIGNATURE))


def _may_start_header(data: bytes) -> bool:
    return V1_PREFIX.startswith(data) or V2_SIGNATURE.startswith(data)


def strip_datagram_header(data: bytes) -> bytes | None:
    """The payload of a datagram without its PROXY header; None when the header is bad."""
    if not _starts_header(data):
        return data
    try:
        decoded = decode(data)
    except MalformedProxyHeader:
        return None
    if decoded is None:
        return None  # a header cut short: a datagram does not continue
    return data[decoded[1] :]


class ProxyHeaderReader(asyncio.Protocol):
    """The first protocol of a backend connection: reads an optional PROXY header.

    Then it hands the connection, and the bytes after the header, to the protocol
    ``next_protocol(client)`` builds, ``client`` being the header's source address
    (None without a header, or with one that carries no addresses). A malformed
    header closes the connection.
    """

    def __init__(self, next_protocol: NextProtocol, connections: ConnectionSet | None) -> None:
        self._next_protocol = next_protocol
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_for_header = False
        self._lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not inherit asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        if self._connections is not None:
            self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if _starts_header(self._buffer):
            try:
                decoded = decode(self._buffer)
            except MalformedProxyHeader as exc:
                logger.debug("closing a connection with a bad PROXY header: %s", exc)
                self.abort()
                return
            if decoded is None:
                if not self._timer_for_header:  # the deadline runs from the signature
                    self._arm(HEADER_SECONDS, self.abort)
                    self._timer_for_header = True
                return
            header, used = decoded
            self._pass_on(_client(header), self._buffer[used:])
        elif _may_start_header(self._buffer):
            if self._timer is None:
                self._arm(UNDECIDED_SECONDS, lambda: self._pass_on(None, self._buffer))
        else:
            self._pass_on(None, self._buffer)

    def eof_received(self) -> bool | None:
        if not self._buffer or _starts_header(self._buffer):
            return None  # nothing, or half a header: there is nothing to answer
        return self._pass_on(None, self._buffer).eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._connections is not None:
            self._connections.discard(self)
        self._lost.set()

    def _pass_on(self, client: tuple[str, int] | None, rest: bytes) -> asyncio.Protocol:
        assert self._transport is not None
        self._disarm()
        if self._connections is not None:
            self._connections.discard(self)
        self._buffer = b""
        protocol = self._next_protocol(client)
        hand_over(self._transport, protocol, rest)
        return protocol

    def _arm(self, delay: float, action: Callable[[], object]) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay, action)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Connection (for ConnectionSet)

    def shutdown(self) -> None:
        self.abort()  # no request has been read yet: nothing to finish

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await self._lost.wait()
